"""A 500-frame run in one process keeps its memory flat (issue 18 §10): nothing per frame is
kept (mattes, flows, neighbours, events), so a long shot runs in the memory of a short one."""

from __future__ import annotations

import sys

import pytest
import yaml

from tests.reliability.conftest import job_dict
from vfxmatte.checkpoint import save_checkpoint
from vfxmatte.examples import make_shot010
from vfxmatte.jobs import load_job
from vfxmatte.model import build_model
from vfxmatte.pipeline import run_job

FRAMES = range(1001, 1501)
MIB = 1 << 20


def rss_bytes() -> int:
    """This process's resident set size now (not the peak: the peak cannot show a plateau)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.mark.slow  # ~20-40 s: 500 plates made and matted
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_500_frames_in_one_process_keep_rss_flat(tmp_path):
    shot = make_shot010(tmp_path / "shot", frames=FRAMES, width=32, height=32)
    ckpt = save_checkpoint(tmp_path / "tiny.safetensors", build_model("tiny"))
    data = job_dict(shot, tmp_path / "out" / "shot010.####.exr", ckpt)
    data["temporal"] = {"enabled": True}  # the stage that holds neighbours and flows
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    rss = {}

    def progress(ev) -> None:
        if ev.kind == "done" and ev.index in (50, 250, 500):
            rss[ev.index] = rss_bytes()

    report = run_job(load_job(path), progress=progress)
    assert report.exit_code == 0 and len(report.done) == 500
    # The allocator's arenas still settle after frame 50 (the first slack); over the last 250
    # frames it must be flat: keeping one 32x32 RGBA float frame per frame would add 4 MiB.
    assert rss[500] - rss[50] < 6 * MIB, {k: v / MIB for k, v in rss.items()}
    assert rss[500] - rss[250] < 2 * MIB, {k: v / MIB for k, v in rss.items()}

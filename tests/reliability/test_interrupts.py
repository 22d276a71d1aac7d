"""``kill -9`` of a real ``vfxmatte run`` while it writes frames, then a resume with
``skip_existing`` (issue 18 §10): no partial frame is ever visible under a frame's name, the
resume leaves no temporary file, and the final mattes are byte-identical to an uninterrupted
run's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.reliability.conftest import checksums, job_dict
from vfxmatte.checkpoint import save_checkpoint
from vfxmatte.cli import main
from vfxmatte.examples import make_shot010
from vfxmatte.io.image import verify_image
from vfxmatte.model import build_model

FRAMES = range(1001, 1031)

#: The real command, with every matte write held open for a moment after its pixels are in
#: the temporary file and before it is checked and renamed: a kill then lands inside a write.
SLOW_WRITES = """
import sys, time
import vfxmatte.io.image as image
real = image.verify_image
def slow(path):
    time.sleep(0.3)
    return real(path)
image.verify_image = slow
from vfxmatte.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def thirty_frames(tmp_path_factory):
    """A 30-frame shot (temporal stage on: a frame's matte reads its neighbours) and the
    mattes of an uninterrupted run."""
    root = tmp_path_factory.mktemp("interrupts")
    shot = make_shot010(root / "shot", frames=FRAMES, width=32, height=32)
    ckpt = save_checkpoint(root / "tiny.safetensors", build_model("tiny"))
    data = job_dict(shot, root / "reference" / "shot010.####.exr", ckpt)
    data["temporal"] = {"enabled": True}
    ref = root / "reference.yaml"
    ref.write_text(yaml.safe_dump(data, sort_keys=False))
    assert main(["--quiet", "run", str(ref)]) == 0
    return data, root


def temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.startswith(".") and ".tmp" in p.name] if folder.exists() else []


def mattes(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".")) if folder.exists() else []


@pytest.mark.parametrize("when", ["inside_a_write", "after_the_first_frame"])
def test_kill_9_then_resume_gives_the_uninterrupted_runs_bytes(thirty_frames, capsys, when):
    data, root = thirty_frames
    reference, out = root / "reference", root / when
    job = root / f"{when}.yaml"  # beside the reference job: plate paths relative to it, hashed alike
    job.write_text(yaml.safe_dump({**data, "output": {"path": str(out / "shot010.####.exr"), "skip_existing": True}},
                                  sort_keys=False))
    command = ["-c", SLOW_WRITES] if when == "inside_a_write" else ["-m", "vfxmatte"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, *command, "--quiet", "run", str(job)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if mattes(out) and (when == "after_the_first_frame" or temporaries(out)):
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.005)
    finally:
        proc.kill()
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
    written = mattes(out)
    assert 1 <= len(written) < len(FRAMES)
    if when == "inside_a_write":
        assert temporaries(out)  # the killed writer's temporary file, never under a frame's name
    for p in written:  # every frame under its own name is whole
        verify_image(p)

    assert main(["run", str(job)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("frame ") and " skipped: " in line for line in lines) == len(written)
    assert temporaries(out) == []  # the killed writer's temporary file is swept
    for p in mattes(out):
        verify_image(p)
    got = {Path(k).name: v for k, v in checksums(out).items()}
    want = {Path(k).name: v for k, v in checksums(reference).items()}
    assert got == want and len(got) == len(FRAMES)

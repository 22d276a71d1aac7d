"""Memory budget: tiles and batch shrink to fit it, the matte stays within the tiling bounds,
and a real run's peak RSS stays under it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest
import torch
import yaml

from vfxmatte.checkpoint import save_checkpoint
from vfxmatte.cli import main
from vfxmatte.devices import set_threads
from vfxmatte.engine import MattingSession
from vfxmatte.errors import MemoryBudgetError
from vfxmatte.examples import make_shot010
from vfxmatte.jobs import load_job
from vfxmatte.memory import (
    GIB,
    HEADROOM,
    HELD_PIXEL_BYTES,
    MIN_TILE,
    estimate_peak_bytes,
    fit_tiling,
    held_bytes,
    temporal_pixel_bytes,
)
from vfxmatte.model import TINY, build_model
from vfxmatte.tiling import DEFAULT_OVERLAP, DEFAULT_TILE

MIB = 2**20


def test_fit_keeps_what_fits_then_drops_the_batch_then_shrinks_the_tile():
    args = (TINY, 2000, 3000)
    need = estimate_peak_bytes(*args, DEFAULT_TILE, DEFAULT_OVERLAP, 4, 4, 32)
    used = 300 * MIB
    plenty = used + int(need / HEADROOM) + MIB
    assert fit_tiling(plenty, used, *args, DEFAULT_TILE, DEFAULT_OVERLAP, 4, 4, 32) == (DEFAULT_TILE, DEFAULT_OVERLAP, 4)
    one = estimate_peak_bytes(*args, DEFAULT_TILE, DEFAULT_OVERLAP, 1, 4, 32)
    assert fit_tiling(used + int(one / HEADROOM) + MIB, used, *args, DEFAULT_TILE, DEFAULT_OVERLAP, 4, 4, 32) == (
        DEFAULT_TILE, DEFAULT_OVERLAP, 1)
    tile, overlap, batch = fit_tiling(used + int(one / HEADROOM / 2), used, *args, DEFAULT_TILE, DEFAULT_OVERLAP, 4, 4, 32)
    assert batch == 1 and MIN_TILE <= tile < DEFAULT_TILE and tile % 32 == 0 and 0 < overlap < tile / 2
    # bf16 activations are half the size: the same budget leaves a larger tile
    assert fit_tiling(used + int(one / HEADROOM / 2), used, *args, DEFAULT_TILE, DEFAULT_OVERLAP, 4, 2, 32)[0] > tile


def test_a_budget_below_the_smallest_tile_is_one_line_naming_the_key():
    with pytest.raises(MemoryBudgetError) as err:
        fit_tiling(400 * MIB, 390 * MIB, TINY, 2160, 4096, DEFAULT_TILE, DEFAULT_OVERLAP, 1, 4, 32)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("model.memory_gb 0.39:") and "4096x2160" in msg
    # the session refuses a budget that the process and the smallest tile exceed up front
    with pytest.raises(MemoryBudgetError) as err:
        MattingSession(build_model("tiny"), device="cpu", memory_budget=300 * MIB)
    assert "\n" not in str(err.value) and str(err.value).startswith("model.memory_gb 0.29: the process with this network")


def _frame(h, w, rng):
    import cv2

    img = cv2.GaussianBlur(rng.random((h, w, 3)).astype(np.float32), (0, 0), 3)
    tri = np.zeros((h, w), np.float32)
    tri[50 : h - 50, 60 : w - 60] = 0.5
    tri[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 1.0
    return img, tri


def test_budgeted_matte_stays_within_the_tiling_bounds(rng):
    torch.manual_seed(0)
    tiny = build_model("tiny").eval()
    h, w = 700, 800
    img, tri = _frame(h, w, rng)
    untiled = MattingSession(tiny, device="cpu", tile_size=0, precision="fp32").matte(img, tri)
    # A budget with room for about a 384 px tile beside what the session assumes held: the
    # default 1408 px tile (the whole frame) does not fit.
    held = held_bytes(2 * sum(p.numel() * 4 for p in tiny.parameters()), h, w)
    room = estimate_peak_bytes(tiny.config, h, w, 384, 128, 1, 4, 32)
    budget = held + int(room / HEADROOM)
    sess = MattingSession(tiny, device="cpu", precision="fp32", batch_size=2, memory_budget=budget)
    tile, overlap, batch = sess.tiling_for(h, w)
    assert tile < h and overlap < tile / 2 and batch == 1
    d = np.abs(untiled - sess.matte(img, tri))[tri == 0.5]
    assert d.mean() <= 2e-3 and d.max() <= 0.05, (tile, d.mean(), d.max())  # tests/test_engine.py's bounds


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_run_under_a_budget_keeps_peak_rss_under_it(tmp_path):
    # A 1024 px frame: run with the default tiles (one 1024 px tile) the tiny model peaks at
    # about 720 MiB here, over the budget.
    size, budget, frames = 1024, 0.6, [1001]
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "tiny.safetensors", build_model("tiny"))
    shot = make_shot010(tmp_path / "shot", frames=frames, width=size, height=size)
    jobs = {}
    for name in ("budget", "default"):
        job = shot.job_dict(tmp_path / name / "a.####.exr", checkpoint=str(ckpt))
        job["model"]["precision"] = "fp32"
        jobs[name] = tmp_path / f"{name}.yaml"
        jobs[name].write_text(yaml.safe_dump(job))
    # (Planned here as the run's session plans it: by then this process holds more than the budget.)
    weights = 2 * sum(p.numel() * 4 for p in build_model("tiny").parameters())
    held = held_bytes(weights, size, size, HELD_PIXEL_BYTES + temporal_pixel_bytes(1))
    assert held + estimate_peak_bytes(TINY, size, size, DEFAULT_TILE, DEFAULT_OVERLAP, 1, 4, 32) > budget * GIB
    plan = fit_tiling(int(budget * GIB), held, TINY, size, size, DEFAULT_TILE, DEFAULT_OVERLAP, 1, 4, 32)
    assert plan[0] < size
    # The child reports its own high-water mark (a child's ru_maxrss can carry its parent's from
    # before the exec).
    hwm = tmp_path / "hwm"
    launcher = ("import atexit, runpy, sys\n"
                "def _hwm():\n"
                "    with open('/proc/self/status') as f:\n"
                "        kib = next(int(l.split()[1]) for l in f if l.startswith('VmHWM:'))\n"
                f"    open({str(hwm)!r}, 'w').write(str(kib * 1024))\n"
                "atexit.register(_hwm)\n"
                "sys.argv[0] = 'vfxmatte'\n"
                "runpy.run_module('vfxmatte', run_name='__main__')\n")
    argv = [sys.executable, "-c", launcher, "run", str(jobs["budget"]), "--threads", "1", "--memory-gb", str(budget), "-q"]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    peak = int(hwm.read_text())
    assert peak < budget * GIB, peak / MIB
    assert main(["run", str(jobs["default"]), "-q"]) == 0
    for f in frames:
        a, b = (oiio.ImageBuf(str(tmp_path / n / f"a.{f}.exr")).get_pixels(oiio.FLOAT)[..., 0] for n in ("budget", "default"))
        tri = oiio.ImageBuf(shot.trimaps.replace("####", str(f))).get_pixels(oiio.FLOAT)[..., 0]
        band = np.abs(tri - 0.5) < 0.1
        d = np.abs(a - b)[band]
        assert band.any() and d.mean() <= 2e-3 and d.max() <= 0.05, (d.mean(), d.max())


def test_the_budget_is_a_job_key_in_the_hash_and_a_cli_option(tmp_path):
    shot = make_shot010(tmp_path / "shot", frames=[1001], width=64, height=48)
    job = shot.job_dict(tmp_path / "out" / "a.####.exr")
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(job))
    job["model"]["memory_gb"] = 2
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(job))
    a, b = load_job(tmp_path / "a.yaml"), load_job(tmp_path / "b.yaml")
    assert a.model.memory_gb is None and b.model.memory_gb == 2
    assert a.job_hash != b.job_hash
    job["model"]["memory_gb"] = 0
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(job))
    assert main(["validate", str(tmp_path / "c.yaml")]) == 2
    assert main(["run", str(tmp_path / "a.yaml"), "--memory-gb", "-1"]) == 2


def test_threads_reach_torch_opencv_and_oiio():
    import cv2

    before = (torch.get_num_threads(), cv2.getNumThreads(), oiio.get_int_attribute("threads"))
    try:
        set_threads(3)
        assert (torch.get_num_threads(), cv2.getNumThreads(), oiio.get_int_attribute("threads")) == (3, 3, 3)
    finally:
        torch.set_num_threads(before[0])
        cv2.setNumThreads(before[1])
        oiio.attribute("threads", before[2])


_RECORD_ARGV = "import json, os, sys; open(os.environ['RECORD'], 'w').write(json.dumps(sys.argv[1:]))"


def test_local_workers_get_the_budget(tmp_path, monkeypatch):
    from vfxmatte.farm.local import run_local

    shot = make_shot010(tmp_path / "shot", frames=[1001], width=48, height=32)
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(shot.job_dict(tmp_path / "out" / "a.####.exr")))
    monkeypatch.setenv("RECORD", str(tmp_path / "argv"))
    report = run_local(load_job(tmp_path / "job.yaml"), None, workers=1, memory_gb=1.5,
                       executable=[sys.executable, "-c", _RECORD_ARGV])
    argv = yaml.safe_load((tmp_path / "argv").read_text())
    assert report.exit_code == 0 and argv[argv.index("--memory-gb") + 1] == "1.5"


def _plain_shot(root: Path, width: int, height: int, memory_gb: float) -> Path:
    """One flat plate and trimap of ``width`` x ``height`` (the tiny network's checkpoint) and
    a job on them with a budget of ``memory_gb``."""
    (root / "plates").mkdir(parents=True)
    (root / "trimaps").mkdir()
    plate = oiio.ImageBuf(oiio.ImageSpec(width, height, 3, oiio.HALF))
    oiio.ImageBufAlgo.fill(plate, (0.2, 0.3, 0.4))
    assert plate.write(str(root / "plates" / "shot.1001.exr"))
    trimap = oiio.ImageBuf(oiio.ImageSpec(width, height, 1, oiio.UINT8))
    oiio.ImageBufAlgo.fill(trimap, (0.5,))
    assert trimap.write(str(root / "trimaps" / "shot.1001.png"))
    save_checkpoint(root / "tiny.safetensors", build_model("tiny"))
    job = {"version": 1, "shot": "shot", "plate": {"path": "plates/shot.####.exr", "colorspace": "lin_rec709"},
           "trimap": {"path": "trimaps/shot.####.png"},
           "model": {"checkpoint": "tiny.safetensors", "device": "cpu", "precision": "fp32", "memory_gb": memory_gb},
           "output": {"path": "out/shot.####.exr"}}
    (root / "job.yaml").write_text(yaml.safe_dump(job, sort_keys=False))
    return root / "job.yaml"


@pytest.mark.parametrize("memory_gb, needs", [(0.3, "the process with this network and one 256 px tile"),
                                              (0.45, "a 2048x1152 frame needs about")])
def test_validate_plans_the_frame_under_the_budget_as_run_does(tmp_path, capsys, memory_gb, needs):
    from vfxmatte.memory import job_budget

    job = _plain_shot(tmp_path, 2048, 1152, memory_gb)
    budget, own = job_budget(load_job(job))
    # The floor check passes for the second budget: only the frame's size is what does not fit.
    if memory_gb == 0.45:
        budget.check_floor(*own)
    line = job.read_text().splitlines().index(f"  memory_gb: {memory_gb}") + 1
    for command in (["validate"], ["run", "--dry-run"], ["run"]):
        assert main([command[0], str(job), *command[1:]]) == 2, command
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"model.memory_gb {memory_gb:.2f}: {needs}" in err[0], (command, err)
        assert f"job.yaml:{line}: model.memory_gb" in err[0]
    assert not (tmp_path / "out").exists()
    # A budget that fits plans what the session plans, and validate says OK.
    ok = _plain_shot(tmp_path / "ok", 2048, 1152, 1.5)
    budget, own = job_budget(load_job(ok))
    session = MattingSession(build_model("tiny"), device="cpu", precision="fp32", memory_budget=int(1.5 * GIB))
    assert budget.tiling(1152, 2048, *own) == session.tiling_for(1152, 2048)
    assert main(["validate", str(ok)]) == 0

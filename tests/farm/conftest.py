"""A tiny shot for the farm tests (48x32 plates, the tiny model), in a folder whose name holds
spaces, quotes and ``$``: every command a farm runs must reach vfxmatte with it unchanged."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from vfxmatte.checkpoint import save_checkpoint
from vfxmatte.examples import make_shot010
from vfxmatte.model import build_model

FRAMES = tuple(range(1001, 1007))
#: a folder name a shell would split, expand or choke on
AWKWARD = "shot dir 'q' \"d\" $HOME"


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """Tiny frames: see conftest.one_torch_thread."""


@pytest.fixture(scope="session")
def tiny_shot(tmp_path_factory) -> tuple[object, Path]:
    root = tmp_path_factory.mktemp("farm")
    shot = make_shot010(root / "shot", frames=FRAMES, width=48, height=32)
    ckpt = save_checkpoint(root / "tiny.safetensors", build_model("tiny"))
    return shot, ckpt


def write_job(folder: Path, tiny_shot, farm: dict | None = None, **plate) -> Path:
    """``folder/AWKWARD/job.yaml`` over the tiny shot, writing mattes to ``out/`` beside it.
    Job values escape ``$`` as ``$$`` (job files expand variables); the file's own path is raw."""
    shot, ckpt = tiny_shot
    root = folder / AWKWARD
    root.mkdir(parents=True, exist_ok=True)
    job = shot.job_dict(root / "out" / "shot010.####.exr", checkpoint=str(ckpt))
    job["model"].update(device="cpu", precision="fp32")
    job["plate"].update(plate)
    if farm is not None:
        job["farm"] = farm
    path = root / "job.yaml"
    path.write_text(yaml.safe_dump(job, sort_keys=False).replace("$HOME", "$$HOME"))
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def outputs(job: Path) -> dict[str, str]:
    out = job.parent / "out"
    return {p.name: sha(p) for p in sorted(out.glob("*.exr"))} if out.exists() else {}


def run_module(*args: str, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "vfxmatte", *args], capture_output=True, text=True, env=env,
                          timeout=300, **kw)

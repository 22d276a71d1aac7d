"""A tiny shot for the reliability tests (32x32 plates, three frames, the tiny model, no temporal
stage), its good mattes made once, and helpers that checksum a folder tree."""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from vfxmatte.checkpoint import save_checkpoint
from vfxmatte.cli import main
from vfxmatte.examples import make_shot010
from vfxmatte.model import build_model

FRAMES = (1001, 1002, 1003)
W = H = 32  # make_shot010's smallest size


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """Tiny frames: see conftest.one_torch_thread."""


def job_dict(src, out: Path, ckpt: Path) -> dict:
    """The job of ``src`` (an ExampleShot) on the CPU in fp32, temporal stage off (one network
    pass per frame), writing to ``out``."""
    data = src.job_dict(out, checkpoint=str(ckpt))
    data["model"].update(device="cpu", precision="fp32")
    data["temporal"] = {"enabled": False}
    return data


@pytest.fixture(scope="session")
def base(tmp_path_factory) -> "Shot":
    """The shot laid out as every test's copy is (so job hashes match), with the good mattes of
    an uninterrupted run in ``out/``."""
    root = tmp_path_factory.mktemp("reliability")
    src = make_shot010(root / "src", frames=FRAMES, width=W, height=H)
    home = root / "shot"
    home.mkdir()
    shutil.copytree(Path(src.plates).parent, home / "plates")
    shutil.copytree(Path(src.trimaps).parent, home / "trimaps")
    save_checkpoint(home / "tiny.safetensors", build_model("tiny"))
    s = Shot.at(home, src)
    assert main(["--quiet", "run", str(s.job())]) == 0
    (home / "job.yaml").unlink()
    return s


@dataclass
class Shot:
    """A private copy of the shot: ``plates/``, ``trimaps/``, the good mattes in ``out/``."""

    root: Path
    plates: Path
    trimaps: Path
    out: Path
    ckpt: Path
    src: object

    @classmethod
    def at(cls, root: Path, src) -> "Shot":
        return cls(root, root / "plates", root / "trimaps", root / "out", root / "tiny.safetensors", src)

    def plate(self, frame: int) -> Path:
        return self.plates / f"shot010.{frame}.exr"

    def trimap(self, frame: int) -> Path:
        return self.trimaps / f"shot010.{frame}.png"

    def matte(self, frame: int) -> Path:
        return self.out / f"shot010.{frame}.exr"

    def job_data(self, **sections) -> dict:
        data = job_dict(self.src, self.out / "shot010.####.exr", self.ckpt)
        data["plate"]["path"] = str(self.plates / "shot010.####.exr")
        data["trimap"]["path"] = str(self.trimaps / "shot010.####.png")
        for key, value in sections.items():
            if isinstance(value, dict):
                data.setdefault(key, {}).update(value)
            else:
                data[key] = value
        return data

    def job(self, name: str = "job.yaml", **sections) -> Path:
        path = self.root / name
        path.write_text(yaml.safe_dump(self.job_data(**sections), sort_keys=False))
        return path


@pytest.fixture
def shot(tmp_path, base) -> Shot:
    """A private copy of :func:`base`'s shot and good mattes."""
    shutil.copytree(base.root, tmp_path / "shot", symlinks=True)
    return Shot.at(tmp_path / "shot", base.src)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def checksums(*folders: Path) -> dict[str, str]:
    """sha256 of every regular file under ``folders`` (or of the file named; symlinks, FIFOs
    and folders left out)."""
    sums = {}
    for folder in folders:
        if folder.is_file():
            sums[str(folder)] = sha(folder)
        for dirpath, _, names in os.walk(folder):
            for name in names:
                p = Path(dirpath) / name
                if not p.is_symlink() and p.is_file():
                    sums[str(p)] = sha(p)
    return sums

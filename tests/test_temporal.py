"""The optional temporal stage (issue 17 §4): what the blend may and may not change, and that
a shot's mattes with it stay byte-identical however the shot is split into chunks."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from vfxmatte import trimap as tm
from vfxmatte.checkpoint import save_checkpoint
from vfxmatte.errors import InputError, JobError
from vfxmatte.flow import flow_image
from vfxmatte.io.image import ImageInfo, read_image, write_image
from vfxmatte.jobs import TemporalSpec, load_job, parse_job
from vfxmatte.model import build_model
from vfxmatte.pipeline import ShotPipeline
from vfxmatte.temporal import Neighbour, TemporalSettings, smooth_alpha

H, W = 48, 64


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """Tiny frames: see conftest.one_torch_thread."""


def _texture(seed: int = 3, shift: int = 0) -> np.ndarray:
    """A blocky random grey texture (so flow is well defined), moved ``shift`` px right."""
    rng = np.random.default_rng(seed)
    tex = np.kron(rng.uniform(0.1, 0.9, (H // 4 + 4, W // 4 + 4)), np.ones((4, 4)))
    return np.ascontiguousarray(tex[8 : 8 + H, 8 - shift : 8 - shift + W]).astype(np.float32)


def _image(grey: np.ndarray) -> np.ndarray:
    return flow_image(np.repeat(grey[..., None], 3, axis=2))


def _band_trimap() -> np.ndarray:
    t = np.zeros((H, W), np.float32)
    t[:, W // 2 :] = tm.FG
    t[:, W // 2 - 10 : W // 2 + 10] = tm.UNKNOWN
    return t


# --------------------------------------------------------------------------- the blend


def test_flicker_on_a_still_scene_is_averaged_out_and_known_pixels_never_change():
    """Still plates, the same true alpha, independent noise per frame: the blend with both
    neighbours cuts the error inside the band (by ~30%: the noise itself lowers each weight
    through the alpha tolerance), and leaves fg/bg as they are."""
    rng = np.random.default_rng(0)
    img = _image(_texture())
    tri = _band_trimap()
    truth = np.clip(np.linspace(0, 1, W, dtype=np.float32)[None].repeat(H, 0), 0, 1)
    noisy = [np.clip(truth + rng.normal(0, 0.02, truth.shape).astype(np.float32), 0, 1) for _ in range(3)]
    noisy[1][tri == tm.BG] = 0.3  # what the network said there must survive: known pixels are the trimap's business
    out = smooth_alpha(noisy[1], tri, img, [Neighbour(noisy[0], img), Neighbour(noisy[2], img)], TemporalSettings())
    band = tri == tm.UNKNOWN
    before = np.abs(noisy[1] - truth)[band].mean()
    after = np.abs(out - truth)[band].mean()
    assert after < 0.8 * before
    assert np.array_equal(out[~band], noisy[1][~band])
    assert out.dtype == np.float32 and 0.0 <= out.min() and out.max() <= 1.0


def test_no_neighbour_or_no_band_returns_the_frame_unchanged():
    img = _image(_texture())
    a = np.random.default_rng(1).uniform(0, 1, (H, W)).astype(np.float32)
    assert np.array_equal(smooth_alpha(a, _band_trimap(), img, [], TemporalSettings()), a)
    known = np.zeros((H, W), np.float32)
    assert np.array_equal(smooth_alpha(a, known, img, [Neighbour(1 - a, img)], TemporalSettings()), a)


def test_motion_is_followed_and_a_disagreeing_strand_is_kept():
    """The plate pans 2 px: the neighbour's alpha is warped along (a matching edge is averaged
    with, not smeared); a strand only this frame has (the neighbour disagrees by more than the
    tolerance) keeps its alpha exactly."""
    here, there = _texture(shift=0), _texture(shift=2)
    edge = np.clip((np.arange(W, dtype=np.float32) - 30) / 6, 0, 1)[None].repeat(H, 0)
    edge_there = np.clip((np.arange(W, dtype=np.float32) - 32) / 6, 0, 1)[None].repeat(H, 0)
    a = edge.copy()
    a[10:12, 12:31] = 1.0  # a strand over the background, which the neighbour lacks
    tri = np.full((H, W), tm.UNKNOWN, np.float32)
    out = smooth_alpha(a, tri, _image(here), [Neighbour(edge_there, _image(there))], TemporalSettings())
    inner = (slice(16, 40), slice(12, 52))  # away from the border the pan reveals
    assert np.abs(out[inner] - edge[inner]).max() < 0.02  # warped: the edge did not move or blur
    assert np.array_equal(out[10:12, 14:30], a[10:12, 14:30])


def test_an_unreliable_neighbour_pixel_gets_no_weight():
    """Where the neighbour's plate differs (an occluder it alone has), its alpha is not used,
    even though it is within the tolerance."""
    img = _texture()
    occluded = img.copy()
    occluded[20:30, 20:30] = 0.0  # darker than any of the texture (0.1..0.9)
    a = np.full((H, W), 0.5, np.float32)
    other = np.full((H, W), 0.55, np.float32)
    tri = np.full((H, W), tm.UNKNOWN, np.float32)
    out = smooth_alpha(a, tri, _image(img), [Neighbour(other, _image(occluded))], TemporalSettings(alpha_tolerance=0.2))
    assert np.allclose(out[22:28, 22:28], 0.5)
    assert out[40:44, 50:54].min() > 0.51  # reliable elsewhere: blended
    valid = np.ones((H, W), bool)
    valid[:, :32] = False  # outside the neighbour's data window: no weight either
    out = smooth_alpha(a, tri, _image(img), [Neighbour(other, _image(img), valid)], TemporalSettings(alpha_tolerance=0.2))
    assert np.allclose(out[:, :28], 0.5) and out[:, 40:].min() > 0.51


def test_settings_are_checked_and_the_job_defaults_equal_the_library_defaults():
    spec = TemporalSpec()
    assert spec.settings() == TemporalSettings()
    for bad in ({"radius": 0}, {"alpha_tolerance": 0.0}, {"strength": 1.5}, {"occlusion_px": -1.0}):
        with pytest.raises(InputError):
            TemporalSettings(**bad)
    with pytest.raises(InputError, match="same shape|one \\[H, W\\] shape"):
        smooth_alpha(np.zeros((4, 4), np.float32), np.zeros((4, 5), np.float32), np.zeros((4, 4), np.uint8), [], TemporalSettings())


def test_the_job_section_is_strict():
    text = """version: 1
shot: s
plate: {path: p.####.exr}
trimap: {mode: sequence, path: t.####.png}
temporal: {enabled: true, radius: 9}
output: {path: o.####.exr}
"""
    with pytest.raises(JobError, match="temporal.radius"):
        parse_job(text, Path("/tmp"))
    with pytest.raises(JobError, match="temporal.smooth"):
        parse_job(text.replace("radius: 9", "smooth: 2"), Path("/tmp"))


# --------------------------------------------------------------------------- through the shot

FRAMES = range(1000, 1008)  # plates and trimaps on disk; the job mattes 1001-1006


def _window(frame: int) -> tuple[int, int, int, int]:
    pad = (frame % 3) * 2
    return -pad, -pad + (frame % 2), W + 2 * pad - (frame % 2), H + 2 * pad - (frame % 2)


def make_shot(root: Path) -> None:
    """Overscan EXR plates (data window changing per frame) of a textured background panning
    1 px per frame behind a soft disc, and per-frame trimaps in each data window's size."""
    rng = np.random.default_rng(7)
    pad = 8
    big = np.kron(rng.uniform(0.05, 0.7, ((H + 2 * pad) // 4 + 4, (W + 2 * pad) // 4 + 4, 3)), np.ones((4, 4, 1)))
    for f in FRAMES:
        x, y, w, h = _window(f)
        yy, xx = np.mgrid[y : y + h, x : x + w].astype(np.float32)
        alpha = np.clip(14.5 - np.hypot(xx - 30, yy - 24), 0, 1)[..., None]
        s = f - 1000
        bg = big[y + pad : y + pad + h, x + pad + s : x + pad + s + w]
        scene = (alpha * np.float32([0.9, 0.6, 0.3]) + (1 - alpha) * bg).astype(np.float16).astype(np.float32)
        info = ImageInfo(path=Path("src.exr"), width=w, height=h, x=x, y=y, full_width=W, full_height=H)
        write_image(root / "plates" / f"shot.{f:04d}.exr", scene, ["R", "G", "B"], info_like=info, pixel_type="half")
        write_image(root / "trimaps" / f"shot.{f:04d}.png", tm.from_alpha(alpha[..., 0], kernel=5), ["Y"], pixel_type="uint8")


def write_job(root: Path, ckpt: Path, temporal: dict | None, name: str = "job.yaml", out: str = "out/shot.####.exr") -> Path:
    job = {
        "version": 1,
        "shot": "shot",
        "plate": {"path": "plates/shot.####.exr", "frames": "1001-1006", "colorspace": "lin_rec709"},
        "trimap": {"mode": "sequence", "path": "trimaps/shot.####.png"},
        "model": {"checkpoint": str(ckpt), "device": "cpu", "tile_size": 0, "precision": "fp32"},
        "output": {"path": out},
    }
    if temporal is not None:
        job["temporal"] = temporal
    path = root / name
    path.write_text(yaml.safe_dump(job, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def shot(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("temporal")
    make_shot(root)
    return root, save_checkpoint(root / "tiny.safetensors", build_model("tiny"))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_module(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "vfxmatte", *args], capture_output=True, text=True, env=env, timeout=300)


def test_chunks_in_separate_processes_give_byte_identical_temporal_mattes(shot):
    """Frame f's matte depends on the plates f-1..f+1 on disk, never on the chunk: the whole
    range and chunks in their own processes give the same bytes, frames in reverse order in one
    process the same pixels; the stage does change the mattes, and says so in their header."""
    root, ckpt = shot
    job = write_job(root, ckpt, {"enabled": True})
    for args in (("run", str(job)), ("run", str(job), "--frames", "1004-1006"), ("run", str(job), "--frames", "1001-1003")):
        proc = run_module(*args)
        assert proc.returncode == 0, proc.stderr
        if len(args) == 2:
            (root / "out").rename(root / "whole")
    with ShotPipeline(load_job(write_job(root, ckpt, {"enabled": True}, "rev.yaml", "rev/shot.####.exr"))) as pipe:
        assert pipe.run(list(range(1006, 1000, -1))).ok
    with ShotPipeline(load_job(write_job(root, ckpt, {"enabled": False}, "off.yaml", "off/shot.####.exr"))) as pipe:
        assert pipe.run().ok
    differ = 0
    for f in range(1001, 1007):
        name = f"shot.{f:04d}.exr"
        assert sha(root / "out" / name) == sha(root / "whole" / name), f
        on, info = read_image(root / "whole" / name, ["A"])
        assert np.array_equal(read_image(root / "rev" / name, ["A"])[0], on), f  # another job file: same pixels
        off, _ = read_image(root / "off" / name, ["A"])
        differ += int(not np.array_equal(on, off))
        assert json.loads(info.metadata["vfxmatte:temporal"])["radius"] == 1
        assert "vfxmatte:temporal" not in read_image(root / "off" / name, ["A"])[1].metadata
    assert differ > 0


def test_a_missing_neighbour_is_left_out_not_a_failure(shot, tmp_path):
    """Frame 1001's window is 1000-1002: with plate 1000 gone the frame still mattes, from
    1001 and 1002 alone (and so differs from the full window's matte only there)."""
    root, ckpt = shot
    for sub in ("plates", "trimaps"):
        (tmp_path / sub).mkdir()
        for p in (root / sub).iterdir():
            if "1000" not in p.name:
                (tmp_path / sub / p.name).write_bytes(p.read_bytes())
    job = load_job(write_job(tmp_path, ckpt, {"enabled": True}))
    with ShotPipeline(job) as pipe:
        report = pipe.run([1001])
    assert report.ok and report.done == [1001]

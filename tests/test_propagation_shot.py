"""Keyframe trimaps through the shot: job -> plates (real overscan EXRs) -> propagated trimaps ->
mattes; written trimaps and their records; chunk independence across separate processes."""

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
from vfxmatte.errors import InputError, TrimapError
from vfxmatte.io.image import ImageInfo, read_image, read_trimap, write_exr, write_image
from vfxmatte.jobs import TemporalSpec, load_job
from vfxmatte.keyframes import RECORD_KEY, to_data_window
from vfxmatte.model import build_model
from vfxmatte.pipeline import ShotPipeline, propagate_job
from vfxmatte.propagate import propagate_trimap

H, W = 48, 64  # display window
PLATES = range(998, 1012)  # on disk; the job mattes 1001-1008
JOB_FRAMES = "1001-1008"
KEYS = (999, 1010)  # both outside the job's range


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """Tiny frames: see conftest.one_torch_thread."""


def _square(frame: int, pad: int = 0) -> np.ndarray:
    """True alpha of a soft square drifting right 1 px per frame: the display window, plus
    ``pad`` pixels of overscan on every side."""
    y, x = np.mgrid[-pad : H + pad, -pad : W + pad].astype(np.float32)
    cx, cy = 22 + (frame - 1000), 24
    d = np.maximum(np.abs(x - cx), np.abs(y - cy))
    return np.clip(10.5 - d, 0, 1).astype(np.float32)


def _window(frame: int) -> tuple[int, int, int, int]:
    """A data window (x, y, w, h) that changes per frame: overscan on some frames, cropped on others."""
    pad = (frame % 3) * 3
    return -pad, -pad + (frame % 2), W + 2 * pad - 2 * (frame % 2), H + 2 * pad - (frame % 2)


PAD = 8  # the scene is made this far beyond the display window


def make_shot(root: Path) -> None:
    """Overscan EXR plates with a textured background panning left and a square moving right;
    keyframe trimaps (display-window size) at KEYS; roto masks every 4th frame."""
    rng = np.random.default_rng(5)
    tex = np.kron(rng.uniform(0.05, 0.6, ((H + 2 * PAD) // 4 + 8, (W + 2 * PAD) // 4 + 8, 3)), np.ones((4, 4, 1)))
    for f in PLATES:
        a = _square(f, PAD)[..., None]
        s = 8 - (f - 998) // 2
        scene = a * np.float32([0.9, 0.7, 0.3]) + (1 - a) * tex[4 : 4 + H + 2 * PAD, s : s + W + 2 * PAD]
        x, y, w, h = _window(f)
        data = scene[y + PAD : y + PAD + h, x + PAD : x + PAD + w].astype(np.float16).astype(np.float32)
        info = ImageInfo(path=Path("src.exr"), width=w, height=h, x=x, y=y, full_width=W, full_height=H)
        write_image(root / "plates" / f"shot.{f:04d}.exr", data, ["R", "G", "B"], info_like=info, pixel_type="half")
        if (f - 998) % 4 == 1:  # 999, 1003, 1007, 1011
            write_exr(root / "roto" / f"shot.{f:04d}.exr", {"A": (_square(f) >= 0.5).astype(np.float32)})
    for k in KEYS:
        write_image(root / "keys" / f"shot.{k:04d}.png", tm.from_alpha(_square(k), kernel=5), ["Y"], pixel_type="uint8")


def write_job(root: Path, ckpt: Path, name: str = "job.yaml", out: str = "out/shot.####.exr", **trimap) -> Path:
    job = {
        "version": 1,
        "shot": "shot",
        "plate": {"path": "plates/shot.####.exr", "frames": JOB_FRAMES, "colorspace": "lin_rec709"},
        "trimap": {"mode": "keyframes", "path": "keys/shot.####.png", **trimap},
        "model": {"checkpoint": str(ckpt), "device": "cpu", "tile_size": 0, "precision": "fp32"},
        "output": {"path": out},
    }
    path = root / name
    path.write_text(yaml.safe_dump(job, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("prop")
    make_shot(root)
    ckpt = save_checkpoint(root / "tiny.safetensors", build_model("tiny"))
    return root, ckpt


@pytest.fixture
def shot(tmp_path: Path, assets) -> Path:
    """A fresh copy of the shot (tests edit keyframes and write trimaps)."""
    src, _ = assets
    for sub in ("plates", "keys", "roto"):
        (tmp_path / sub).mkdir()
        for p in (src / sub).iterdir():
            (tmp_path / sub / p.name).write_bytes(p.read_bytes())
            os.utime(tmp_path / sub / p.name, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns))
    return tmp_path


class RecordingSession:
    model_name, model_hash, device, precision = "recorder", "feedface", "cpu", "fp32"

    def __init__(self) -> None:
        self.trimaps: list[np.ndarray] = []

    def matte(self, image, trimap, progress=None, name="frame"):
        assert image.shape[:2] == trimap.shape
        self.trimaps.append(trimap.copy())
        return trimap.copy()


def recorded(job, frames) -> list[np.ndarray]:
    """The trimaps the network receives for ``frames``, one per frame (the temporal stage off:
    it would also matte each frame's neighbours)."""
    session = RecordingSession()
    job = job.model_copy(update={"temporal": TemporalSpec(enabled=False)})
    with ShotPipeline(job, session=session) as pipe:
        report = pipe.run(frames)
    assert report.ok, report.failed
    return session.trimaps


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_module(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "vfxmatte", *args], capture_output=True, text=True, env=env, timeout=300)


# --------------------------------------------------------------------------- in process


def test_a_keyframe_reaches_the_network_exactly_cropped_to_its_data_window(shot, assets):
    key = tm.from_alpha(_square(1004), kernel=5)
    write_image(shot / "keys" / "shot.1004.png", key, ["Y"], pixel_type="uint8")
    job = load_job(write_job(shot, assets[1], frames="1010,1004,999"))
    (trimap,) = recorded(job, [1004])
    _, info = read_image(shot / "plates" / "shot.1004.exr")
    assert info.has_overscan and trimap.shape == (info.height, info.width)
    np.testing.assert_array_equal(trimap, to_data_window(key, info))
    assert (trimap[:3] == tm.UNKNOWN).all()  # overscan outside the display window: unknown


def test_propagated_trimaps_cover_the_moving_square(shot, assets):
    job = load_job(write_job(shot, assets[1]))
    for f, t in zip(range(1001, 1009), recorded(job, range(1001, 1009))):
        _, info = read_image(shot / "plates" / f"shot.{f:04d}.exr")
        alpha = to_data_window(_square(f), info, fill=0.5)
        edge = (alpha > 0.02) & (alpha < 0.98)
        assert (t[edge] == tm.UNKNOWN).all(), f  # the transition is covered
        assert not ((t == tm.FG) & (alpha < 0.9)).any() and not ((t == tm.BG) & (alpha > 0.1)).any()


def test_written_trimaps_are_8bit_png_with_a_record_that_oiio_reads_back(shot, assets):
    job = load_job(write_job(shot, assets[1]))
    report = propagate_job(job)
    assert report.ok and report.done == list(range(1001, 1009))
    path = Path(job.propagated_trimaps.replace("####", "1004"))
    assert path == shot / "out" / "trimaps" / "shot.propagated.1004.png"
    pixels, info = read_image(path, channels=["Y"])
    assert info.file_format == "png" and info.channel_formats == ("uint8",)
    assert set(np.unique(np.rint(pixels * 255))) <= {0.0, 128.0, 255.0}
    with ShotPipeline(job) as pipe:
        expected = pipe.propagation.record(1004)
    stored = json.loads(info.metadata[RECORD_KEY])
    assert stored == expected and set(stored["keyframes"]) == {"999", "1010"}
    assert stored["keyframes"]["999"] == sha(shot / "keys" / "shot.0999.png")
    assert stored["settings"] == job.trimap.propagation.settings().to_dict()
    # the written trimap is exactly what propagation gives
    with ShotPipeline(job) as pipe:
        prop = pipe.propagation
        direct = propagate_trimap(1004, prop.keyframes((H, W)), prop.flow_image, prop.settings)
    np.testing.assert_array_equal(read_trimap(path), direct)
    # a second run finds every trimap up to date
    again = propagate_job(job)
    assert again.done == [] and sorted(again.skipped) == list(range(1001, 1009))


def test_run_reads_an_up_to_date_written_trimap_and_remakes_a_stale_one(shot, assets):
    job = load_job(write_job(shot, assets[1]))
    propagate_job(job, frames=[1004])
    path = shot / "out" / "trimaps" / "shot.propagated.1004.png"
    # Tamper with the pixels, keep the record: run must take the written file as it is.
    _, info = read_image(path, channels=["Y"])
    write_image(path, np.full((H, W), 128, np.uint8), ["Y"], pixel_type="uint8",
                metadata={RECORD_KEY: info.metadata[RECORD_KEY]})
    assert (recorded(job, [1004])[0][5:-5, 5:-5] == tm.UNKNOWN).all()
    # Change a keyframe the frame uses: the record no longer matches, the trimap is re-made.
    changed = tm.from_alpha(_square(1010), kernel=9)
    write_image(shot / "keys" / "shot.1010.png", changed, ["Y"], pixel_type="uint8")
    job = load_job(write_job(shot, assets[1]))
    fresh = recorded(job, [1004])[0]
    assert not (fresh[5:-5, 5:-5] == tm.UNKNOWN).all()
    report = propagate_job(job, frames=[1004, 1005])
    assert report.done == [1004, 1005]  # both stale (1005 was never written)
    # and settings: a new band width makes every written trimap stale
    job = load_job(write_job(shot, assets[1], propagation={"band_px": 3.0}))
    assert propagate_job(job, frames=[1004]).done == [1004]


def test_a_touched_plate_in_the_chain_makes_the_trimap_stale(shot, assets):
    job = load_job(write_job(shot, assets[1]))
    propagate_job(job, frames=[1002, 1009])
    st = (shot / "plates" / "shot.1001.exr").stat()
    os.utime(shot / "plates" / "shot.1001.exr", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    report = propagate_job(load_job(write_job(shot, assets[1])), frames=[1002, 1009])
    # 1002's chains run 999..1002 and 1002..1010: both include 1001; 1009's: 999..1009 too
    assert report.done == [1002, 1009]
    report = propagate_job(load_job(write_job(shot, assets[1], frames="999")), frames=[1009])
    assert report.done == [1009]  # one keyframe instead of two: another record


def test_a_wrong_size_keyframe_is_one_error_naming_its_file(shot, assets):
    bad = shot / "keys" / "shot.1010.png"
    write_image(bad, np.zeros((H + 2, W), np.uint8), ["Y"], pixel_type="uint8")
    job = load_job(write_job(shot, assets[1]))
    with pytest.raises(TrimapError, match=f"keyframe {bad} is {W}x{H + 2} but the plate's display window is {W}x{H}"):
        ShotPipeline(job, session=RecordingSession()).run([1002])
    with pytest.raises(TrimapError, match=str(bad)):
        propagate_job(job)


def test_validate_finds_a_wrong_size_keyframe_from_its_header(shot, assets, capsys):
    from vfxmatte.cli import main

    bad = shot / "keys" / "shot.1010.png"
    write_image(bad, np.zeros((H + 2, W), np.uint8), ["Y"], pixel_type="uint8")
    for command in (["validate"], ["run", "--dry-run"]):
        assert main([command[0], str(write_job(shot, assets[1])), *command[1:]]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"keyframe {bad} is {W}x{H + 2} but the plate's display window is {W}x{H}" in err


def test_an_off_palette_keyframe_is_one_error_naming_its_file(shot, assets):
    bad = shot / "keys" / "shot.0999.png"
    t = np.zeros((H, W), np.uint8)
    t[10:20, 10:20] = 60
    write_image(bad, t, ["Y"], pixel_type="uint8")
    proc = run_module("propagate", str(write_job(shot, assets[1])))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and "not within 0.1 of bg=0/unknown=0.5/fg=1" in lines[0]


def test_frames_beyond_max_distance_fail_by_name_in_the_plan(shot, assets):
    job = load_job(write_job(shot, assets[1], frames="999", propagation={"max_distance": 4}))
    plans = {p.frame: p for p in ShotPipeline(job).plan()}
    assert plans[1003].fail_reason is None
    assert plans[1004].fail_reason == "frame 1004: nearest keyframe is 5 frames away, beyond max_distance 4"


def test_a_roto_every_fourth_frame_is_propagated_to_the_others(shot, assets):
    job = load_job(write_job(shot, assets[1], mode="mask", path="roto/shot.####.exr", missing="propagate", band_px=2))
    with ShotPipeline(job) as pipe:
        assert pipe.propagation.keyframe_frames == [999, 1003, 1007, 1011]
    trimaps = recorded(job, [1003, 1005])
    _, info = read_image(shot / "plates" / "shot.1003.exr")
    roto, _ = read_image(shot / "roto" / "shot.1003.exr", channels=["A"])
    np.testing.assert_array_equal(trimaps[0], to_data_window(tm.from_mask(roto[..., 0], 2), info))
    assert (trimaps[1] == tm.UNKNOWN).any() and (trimaps[1] == tm.FG).any()
    assert propagate_job(job, frames=[1005]).done == [1005]


def test_out_may_not_overwrite_plates_or_keyframes(shot, assets):
    job = load_job(write_job(shot, assets[1]))
    with pytest.raises(InputError, match="would overwrite the keyframes"):
        propagate_job(job, out=str(shot / "keys" / "shot.%04d.png"))
    with pytest.raises(InputError, match="must end in .png"):
        propagate_job(job, out=str(shot / "plates" / "shot.####.exr"))
    for out, message in ((shot / "keys" / "shot.####.png", "would overwrite the keyframes"),
                         (shot / "plates" / "shot.####.exr", "must end in .png")):
        proc = run_module("propagate", str(write_job(shot, assets[1])), "--out", str(out))
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert sorted(p.name for p in (shot / "keys").iterdir()) == ["shot.0999.png", "shot.1010.png"]
    # elsewhere is fine
    assert propagate_job(job, frames=[1001], out=str(shot / "review" / "t.####.png")).done == [1001]
    assert (shot / "review" / "t.1001.png").is_file()


def test_sequence_mode_has_nothing_to_propagate(shot, assets):
    path = write_job(shot, assets[1], mode="sequence")
    with pytest.raises(InputError, match="nothing to propagate"):
        propagate_job(load_job(path, check=False))


# --------------------------------------------------------------------------- chunk independence


def test_chunks_in_separate_processes_give_byte_identical_trimaps_and_mattes(shot, assets):
    """The whole range vs chunks, each in its own process, with one job: the same trimap PNGs
    and the same matte EXRs; run on the fly gives the mattes run gives after propagate."""
    job = str(write_job(shot, assets[1]))
    out, trimaps = shot / "out", shot / "out" / "trimaps"

    def ok(*args: str) -> None:
        proc = run_module(*args)
        assert proc.returncode == 0, proc.stderr

    ok("run", job)  # on the fly: no trimap is written
    assert not trimaps.exists()
    out.rename(shot / "on_the_fly")
    for chunk in ("1006-1008", "1001-1002", "1003-1005"):
        ok("propagate", job, "--frames", chunk)
    for chunk in ("1005-1008", "1001-1004"):
        ok("run", job, "--frames", chunk)  # reads the written trimaps
    trimaps.rename(shot / "chunked_trimaps")
    ok("propagate", job)
    for f in range(1001, 1009):
        name = f"shot.propagated.{f}.png"
        assert sha(trimaps / name) == sha(shot / "chunked_trimaps" / name), name
        assert sha(out / f"shot.{f:04d}.exr") == sha(shot / "on_the_fly" / f"shot.{f:04d}.exr"), f


def test_propagate_command_prints_one_json_line_per_frame(shot, assets, capsys):
    from vfxmatte.cli import main

    job = write_job(shot, assets[1])
    assert main(["--log-format", "json", "propagate", str(job), "--frames", "1001-1002"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["event"] for e in events] == ["started", "done", "started", "done", "summary"]
    assert events[1]["output"] == str(shot / "out" / "trimaps" / "shot.propagated.1001.png")
    assert events[-1]["done"] == "1001-1002" and events[-1]["failed"] == {}
    assert main(["propagate", str(job), "--frames", "1001-1002"]) == 0
    text = capsys.readouterr().out
    assert "frame 1001 skipped: propagated trimap up to date" in text and "0 written" in text


def test_the_jobs_flow_cache_is_filled_and_changes_no_byte(shot, assets):
    plain = propagate_job(load_job(write_job(shot, assets[1])), frames=[1002])
    cached = write_job(shot, assets[1], "cached.yaml", propagation={"cache": "flows", "out": "c/t.####.png"})
    # its own process: nothing of this one's in-memory state
    proc = run_module("propagate", str(cached), "--frames", "1002")
    assert plain.done == [1002] and proc.returncode == 0, proc.stderr
    assert len(list((shot / "flows").rglob("*.npy"))) > 0
    assert sha(shot / "c" / "t.1002.png") == sha(shot / "out" / "trimaps" / "shot.propagated.1002.png")


def test_validate_and_dry_run_plan_a_keyframes_job_without_reading_pixels(shot, assets, capsys):
    from vfxmatte.cli import main

    job = write_job(shot, assets[1], propagation={"max_distance": 9})
    assert main(["validate", str(job)]) == 0
    assert "trimap keyframes" in capsys.readouterr().out
    far = write_job(shot, assets[1], frames="1010", propagation={"max_distance": 5})
    assert main(["run", str(far), "--dry-run"]) == 1
    captured = capsys.readouterr()
    assert "frame 1004 would fail: frame 1004: nearest keyframe is 6 frames away, beyond max_distance 5" in captured.err
    assert not (shot / "out").exists()


def test_a_single_keyframe_after_the_range_propagates_backwards(shot, assets):
    job = load_job(write_job(shot, assets[1], frames="1010"))
    report = propagate_job(job)
    assert report.ok and report.done == list(range(1001, 1009))
    _, info = read_image(shot / "out" / "trimaps" / "shot.propagated.1008.png", channels=["Y"])
    assert list(json.loads(info.metadata[RECORD_KEY])["keyframes"]) == ["1010"]
    t = read_trimap(shot / "out" / "trimaps" / "shot.propagated.1008.png")
    alpha = _square(1008)
    assert (t[(alpha > 0.02) & (alpha < 0.98)] == tm.UNKNOWN).mean() > 0.95
    assert not ((t == tm.FG) & (alpha < 0.9)).any() and not ((t == tm.BG) & (alpha > 0.1)).any()


@pytest.mark.parametrize("policy", ["hold", "skip"])
def test_a_plate_missing_inside_a_chain_is_stepped_over_under_hold_and_skip(shot, assets, policy):
    """Plate 1003 gone: under error the frames whose chains cross it fail, naming it; under hold
    and skip the chains step over the gap (the nearest plate stands in), every other frame is
    done, and the frame itself is held or skipped as its policy says."""
    (shot / "plates" / "shot.1003.exr").unlink()
    path = write_job(shot, assets[1])
    doc = yaml.safe_load(path.read_text())
    with ShotPipeline(load_job(path), session=RecordingSession()) as pipe:
        report = pipe.run()
    assert "plate frame missing" in report.failed[1003]
    assert any("shot.1003.exr is missing (needed to propagate" in reason for reason in report.failed.values())
    doc["plate"]["missing"] = policy
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    with ShotPipeline(load_job(path), session=RecordingSession()) as pipe:
        report = pipe.run()
    assert report.failed == {}
    expect_done = [f for f in range(1001, 1009) if policy == "hold" or f != 1003]
    assert report.done == expect_done

"""validate and run --dry-run check what run would do (issue 18 §8), bad files give one line
(issue 18's traceback cases), and transient failures are retried (§1).

Every bad file here is a real file written through OpenImageIO (or damaged from one)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import time
import tracemalloc
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest
import torch
import yaml
from safetensors import safe_open
from safetensors.torch import save_file

from vfxmatte import pipeline
from vfxmatte.checkpoint import save_checkpoint
from vfxmatte.cli import main
from vfxmatte.errors import ImageReadError, TrimapError, is_transient
from vfxmatte.examples import make_shot010
from vfxmatte.io.image import read_header, read_image, write_exr
from vfxmatte.io.sequence import FrameRanges, parse_frame_range, parse_frames
from vfxmatte.jobs import load_job
from vfxmatte.model import build_model
from vfxmatte.pipeline import ShotPipeline

FRAMES = (1001, 1002, 1003)
W, H = 48, 32


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """Tiny frames: see conftest.one_torch_thread."""


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("validate")
    shot = make_shot010(root / "shot", frames=FRAMES, width=W, height=H)
    ckpt = save_checkpoint(root / "tiny.safetensors", build_model("tiny"))
    return shot, ckpt


@pytest.fixture
def shot(tmp_path, assets):
    """A private copy of the shot's plates and trimaps, and a job file writer for it."""
    src, ckpt = assets
    plates, trimaps = tmp_path / "plates", tmp_path / "trimaps"
    shutil.copytree(Path(src.plates).parent, plates)
    shutil.copytree(Path(src.trimaps).parent, trimaps)

    def job(checkpoint=None, **sections) -> Path:
        data = src.job_dict(tmp_path / "out" / "shot010.####.exr", checkpoint=str(checkpoint or ckpt))
        data["plate"]["path"] = str(plates / Path(src.plates).name)
        data["trimap"]["path"] = str(trimaps / Path(src.trimaps).name)
        data["model"]["device"] = "cpu"
        for key, value in sections.items():
            data.setdefault(key, {}).update(value)
        path = tmp_path / "job.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return plates, trimaps, job


def plate(plates: Path, frame: int) -> Path:
    return plates / f"shot010.{frame}.exr"


def write_channels(path: Path, names, width=W, height=H) -> None:
    """A flat half EXR with these channel names, written by OIIO."""
    spec = oiio.ImageSpec(width, height, len(names), oiio.HALF)
    spec.channelnames = tuple(names)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec)
    assert out.write_image(np.full((height, width, len(names)), 0.25, np.float32))
    assert out.close()


def write_deep(path: Path) -> None:
    """A deep EXR (one sample per pixel) through OIIO's deep API."""
    spec = oiio.ImageSpec(W, H, 4, oiio.FLOAT)
    spec.channelnames = ("R", "G", "B", "A")
    spec.deep = True
    buf = oiio.ImageBuf(spec)
    for y in range(H):
        for x in range(W):
            buf.set_deep_samples(x, y, 0, 1)
            for c in range(4):
                buf.set_deep_value(x, y, 0, c, 0, 0.5)
    assert buf.write(str(path)), buf.geterror()


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# --------------------------------------------------------------------------- §8: bad plates


@pytest.mark.parametrize(
    "damage, words",
    [
        ("ycc", "luminance/chroma EXR (Y, RY, BY) is not supported"),
        ("deep", "deep images are not supported"),
        ("garbage", "cannot open image"),
        ("no_rgb", "no channels R, G, B"),
    ],
)
def test_validate_and_dry_run_fail_the_frames_run_fails(shot, capsys, damage, words):
    plates, _, job = shot
    bad = plate(plates, 1002)
    if damage == "ycc":
        write_channels(bad, ("Y", "RY", "BY"))
    elif damage == "deep":
        write_deep(bad)
    elif damage == "garbage":
        bad.write_bytes(os.urandom(3000))
    else:
        write_channels(bad, ("X", "Z"))
    path = job()
    assert main(["validate", str(path)]) == 1
    captured = capsys.readouterr()
    line = one_error_line(captured.err)
    assert line.startswith("vfxmatte: frame 1002 would fail: ") and str(bad) in line and words in line
    assert "1 of 3 frames would fail" in captured.out
    assert main(["run", str(path), "--dry-run"]) == 1
    dry = capsys.readouterr()
    assert one_error_line(dry.err) == line and "frames 1001,1003 (2) would be written to" in dry.out
    # run fails that frame with the same words (the same checks)
    assert main(["run", str(path), "--frames", "1002"]) == 1
    assert words in capsys.readouterr().err


def test_a_y_ry_by_plate_is_refused_not_matted_grey(tmp_path):
    write_channels(tmp_path / "ycc.exr", ("Y", "RY", "BY"))
    write_channels(tmp_path / "grey.exr", ("Y",))
    with pytest.raises(ImageReadError, match="luminance/chroma"):
        read_image(tmp_path / "ycc.exr")
    with pytest.raises(ImageReadError, match="luminance/chroma"):
        read_header(tmp_path / "ycc.exr")
    assert read_image(tmp_path / "grey.exr")[0].shape == (H, W, 3)  # plain grey still reads


def test_a_missing_layer_and_a_wrong_size_trimap_fail_validate(shot, capsys):
    plates, trimaps, job = shot
    assert main(["validate", str(job(plate={"layer": "beauty"}))]) == 1
    err = capsys.readouterr().err
    assert f"frames 1001-1003 (3) would fail: {plates}/shot010.####.exr: no layer 'beauty'" in err and err.count("\n") == 1
    tri = trimaps / "shot010.1003.png"
    from vfxmatte.io.image import write_image

    write_image(tri, np.zeros((10, 12), np.float32), ["Y"], pixel_type="uint8")
    assert main(["validate", str(job())]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith("vfxmatte: frame 1003 would fail: frame 1003: trimap ") and "is 12x10 but the plate's data window is 48x32" in line


def test_headers_are_sampled_by_default_and_all_opened_with_all_frames(shot, capsys, monkeypatch):
    plates, _, job = shot
    monkeypatch.setattr(pipeline, "HEADER_SAMPLE", 2)  # first and last only
    plate(plates, 1002).write_bytes(b"not an exr")
    path = job()
    assert main(["validate", str(path)]) == 0
    assert "headers of 2 frames checked" in capsys.readouterr().out
    assert main(["validate", str(path), "--all-frames"]) == 1
    captured = capsys.readouterr()
    assert "frame 1002 would fail" in captured.err and "headers of 3 frames checked" in captured.out


# --------------------------------------------------------------------------- §8: many frames


def test_long_runs_of_one_failure_are_one_line(shot, capsys):
    _, trimaps, job = shot
    path = job(plate={"frames": "1001-1500"})
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.strip() == f"vfxmatte: frames 1004-1500 (497) would fail: plate frame missing: {plate(shot[0], 1).parent}/shot010.####.exr"
    (trimaps / "shot010.1002.png").unlink()
    (trimaps / "shot010.1003.png").unlink()
    assert main(["--log-format", "json", "validate", str(path)]) == 1
    event = json.loads(capsys.readouterr().out)
    assert event["failed"] == [
        {"frames": "1002-1003", "count": 2, "reason": f"trimap missing: {trimaps}/shot010.####.png"},
        {"frames": "1004-1500", "count": 497, "reason": f"plate frame missing: {shot[0]}/shot010.####.exr"},
    ]
    assert event["done"] == [{"frames": "1001", "count": 1, "reason": None}]


def test_a_3_million_frame_range_validates_in_seconds_and_small_memory(shot, capsys):
    path = shot[2](plate={"frames": "1001-3001000"})
    main(["validate", str(path)])  # warm: imports, the checkpoint and the OCIO config
    capsys.readouterr()
    tracemalloc.start()
    t0 = time.perf_counter()
    code = main(["validate", str(path)])
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    captured = capsys.readouterr()
    assert code == 1 and seconds < 5, seconds
    assert peak < 20 * 2**20, peak  # was 2.9 GB: no per-frame list
    assert captured.err.count("\n") == 1 and "frames 1004-3001000 (2999997) would fail" in captured.err
    assert main(["run", str(path), "--dry-run"]) == 1
    assert capsys.readouterr().out.count("\n") == 2


def test_hold_reports_which_frame_each_run_is_held_from(shot, capsys):
    plates, _, job = shot
    plate(plates, 1002).unlink()
    path = job(plate={"frames": "1001-1010", "missing": "hold"})
    assert main(["run", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "frames 1001,1003 (2) would be written to" in out
    assert "frame 1002 would be written to" in out and "(held from frame 1001)" in out
    assert "frames 1004-1010 (7) would be written to" in out and "(held from frame 1003)" in out


def test_frame_ranges_are_runs():
    frames = parse_frames("1001-3001000x2,5,1003")
    assert len(frames) == 1_500_001 and 3000999 in frames and 1002 not in frames
    assert str(frames) == "1001-3000999x2,5" and frames.runs[-1] == range(5, 6)
    assert parse_frame_range("1-10,5,3-12") == list(range(1, 13))
    assert list(FrameRanges.of([1, 2, 3, 7, 9, 11])) == [1, 2, 3, 7, 9, 11]
    assert str(FrameRanges.of([1, 2, 3, 7, 9, 11])) == "1-3,7-11x2"


# --------------------------------------------------------------------------- checkpoints


def checkpoint_parts(ckpt: Path) -> tuple[dict, dict]:
    """A checkpoint's metadata and tensors, as stored."""
    with safe_open(str(ckpt), "pt") as f:
        return dict(f.metadata()), {k: f.get_tensor(k) for k in f.keys()}


def rewritten(ckpt: Path, target: Path, arch_change=None, tensors=None) -> Path:
    meta, state = checkpoint_parts(ckpt)
    if arch_change:
        meta["vfxmatte.arch"] = json.dumps({**json.loads(meta["vfxmatte.arch"]), **arch_change})
    if tensors:
        state.update(tensors)
    save_file(state, str(target), metadata=meta)
    return target


@pytest.mark.parametrize(
    "change, words",
    [
        ({"arch_change": {"tcp_channels": 16}}, "has shape (8, 6, 3, 3), the architecture expects (16, 6, 3, 3)"),
        ({"tensors": {"semantic.encoder.bn1.bias": torch.zeros(3)}}, "tensor 'semantic.encoder.bn1.bias' has shape (3,)"),
        ({"arch_change": {"encoder_widths": [8, 8, 16, 16, 10**12]}}, "encoder_widths: (8, 8, 16, 16, 1000000000000) is not"),
        ({"arch_change": {"tcp_channels": "8"}}, "tcp_channels: '8' is not a whole number"),
    ],
)
def test_a_checkpoint_that_does_not_fit_its_architecture_fails_validate_in_one_line(shot, assets, tmp_path, capsys, change, words):
    bad = rewritten(assets[1], tmp_path / "bad.safetensors", **change)
    for command in (["validate"], ["run"]):
        assert main([command[0], str(shot[2](checkpoint=bad))]) == 2
        line = one_error_line(capsys.readouterr().err)
        assert "model.checkpoint" in line and str(bad) in line and words in line


# --------------------------------------------------------------------------- one line per bad file


def test_a_damaged_exr_whose_oiio_error_is_not_utf8_is_one_line(shot, tmp_path, capsys):
    plates, _, job = shot
    rgb = np.zeros((H, W), np.float32)
    write_exr(plate(plates, 1002), {"R": rgb, "G": rgb, "B": rgb})
    good = plate(plates, 1002).read_bytes()
    damaged = good.replace(b"channels\x00chlist", b"channels\x00chl\xffst", 1)  # OIIO's error names the type
    assert damaged != good
    plate(plates, 1002).write_bytes(damaged)
    with pytest.raises(ImageReadError, match="not UTF-8"):
        read_image(plate(plates, 1002))
    assert main(["validate", str(job())]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert str(plate(plates, 1002)) in line and "not UTF-8" in line
    assert main(["run", str(job()), "--frames", "1002"]) == 1
    assert "not UTF-8" in capsys.readouterr().err


#: What stands where a file should be, and how vfxmatte names it.
NOT_FILES = {"loop": "a symlink loop", "fifo": "a FIFO", "directory": "a directory"}


def make_not_a_file(path: Path, kind: str) -> Path:
    """A symlink loop, a FIFO or a directory at ``path``."""
    if kind == "loop":
        path.symlink_to(path.name)
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.mkdir()
    return path


@pytest.mark.parametrize("kind", list(NOT_FILES))
@pytest.mark.parametrize("where", ["plate", "trimap"])
def test_a_symlink_loop_fifo_or_directory_where_a_frame_should_be(shot, capsys, kind, where):
    plates, trimaps, job = shot
    frame = plate(plates, 1002) if where == "plate" else trimaps / "shot010.1002.png"
    frame.unlink()
    make_not_a_file(frame, kind)
    what = NOT_FILES[kind]
    for command in (["validate"], ["run"]):
        assert main([*command, str(job())]) == 1
        captured = capsys.readouterr()
        # (run's library warning repeats the frame's line: the CLI's printing once is #18 §2's)
        lines = [x for x in captured.err.splitlines() if "1002" in x and "WARNING" not in x]
        assert len(lines) == 1 and "Traceback" not in captured.err
        assert f"{frame} is {what}, not a file" in lines[0]


# --------------------------------------------------------------------------- §1: retries


def flaky_reader(monkeypatch, failures: int, error: Exception):
    """pipeline.read_image failing ``failures`` times with ``error``, then reading."""
    calls = []
    real = pipeline.read_image

    def read(*args, **kwargs):
        calls.append(args[0])
        if len(calls) <= failures:
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "read_image", read)
    return calls


def run_events(path: Path, frames=(1001,)):
    events = []
    report = pipeline.run_job(load_job(path), frames=list(frames), progress=events.append)
    return report, events


def test_a_transient_read_failure_is_retried_and_logged_once(shot, monkeypatch, capsys):
    eio = OSError(errno.EIO, "Input/output error", "plate")
    calls = flaky_reader(monkeypatch, 1, eio)
    path = shot[2](retries={"count": 2, "backoff_s": 0.0}, temporal={"enabled": False})
    report, events = run_events(path)
    assert report.done == [1001] and len(calls) == 2
    retried = [e for e in events if e.kind == "retried"]
    assert len(retried) == 1 and "try 1 of 3 failed (OSError: [Errno 5] Input/output error" in retried[0].reason
    # the CLI prints the retry once
    calls.clear()
    assert main(["run", str(path), "--frames", "1001"]) == 0
    err = capsys.readouterr().err
    assert err.count("frame 1001 retried: try 1 of 3 failed") == 1 and "failed:" not in err.replace("try 1 of 3 failed", "")


def test_without_retries_or_for_a_bad_trimap_the_frame_fails_at_once(shot, monkeypatch):
    calls = flaky_reader(monkeypatch, 1, OSError(errno.EIO, "Input/output error"))
    report, events = run_events(shot[2]())  # default: no retries
    assert report.failed.keys() == {1001} and len(calls) == 1 and not [e for e in events if e.kind == "retried"]
    calls = flaky_reader(monkeypatch, 1, TrimapError("frame 1001: bad trimap"))
    report, events = run_events(shot[2](retries={"count": 3, "backoff_s": 0.0}))
    assert report.failed == {1001: "frame 1001: bad trimap"} and len(calls) == 1


def test_a_truncated_plate_is_not_retried_but_a_read_the_os_fails_is(shot, monkeypatch):
    from vfxmatte.io import image

    plates, _, job = shot
    path = plate(plates, 1001)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    report, events = run_events(job(retries={"count": 3, "backoff_s": 0.0}, temporal={"enabled": False}))
    # Every byte the truncated file holds reads: the same bytes fail the same way on every try.
    assert "cannot read pixels" in report.failed[1001] and not [e for e in events if e.kind == "retried"]
    with pytest.raises(ImageReadError) as err:
        image.read_image(path)
    assert not is_transient(err.value) and err.value.__cause__ is None
    # The OS failing to hand over the bytes (a network filesystem's EIO) may pass: it is retried.
    monkeypatch.setattr(image, "_read_back", lambda p: OSError(errno.EIO, "Input/output error", str(p)))
    with pytest.raises(ImageReadError) as err:
        image.read_image(path)
    assert is_transient(err.value)
    report, events = run_events(job(retries={"count": 1, "backoff_s": 0.0}, temporal={"enabled": False}))
    assert [e.kind for e in events if e.kind in ("retried", "failed")] == ["retried", "failed"]


def test_retries_are_not_in_the_job_hash(shot):
    job = shot[2]
    assert load_job(job()).job_hash == load_job(job(retries={"count": 4, "backoff_s": 1.5})).job_hash


def test_which_errors_are_transient():
    assert is_transient(OSError(errno.EIO, "io")) and is_transient(OSError(errno.ESTALE, "stale"))
    assert not is_transient(OSError(errno.ENOENT, "gone")) and not is_transient(OSError(errno.ENOSPC, "full"))
    assert is_transient(ImageReadError("x: cannot read pixels", transient=True))  # marked by its raiser
    assert not is_transient(ImageReadError("x: no layer")) and not is_transient(TrimapError("t"))
    try:
        raise ImageReadError("wrapped") from OSError(errno.ETIMEDOUT, "timed out")
    except ImageReadError as exc:
        assert is_transient(exc)


@pytest.mark.parametrize("kind", list(NOT_FILES))
def test_a_job_file_or_checkpoint_that_is_no_file_is_one_line(shot, tmp_path, kind):
    import subprocess
    import sys

    what = NOT_FILES[kind]
    job = make_not_a_file(tmp_path / "odd.yaml", kind)
    ckpt = make_not_a_file(tmp_path / "odd.safetensors", kind)
    for path, words in ((job, f"{job}: cannot read job file ({what}, not a file)"),
                        (shot[2](checkpoint=ckpt), f"{ckpt}: {what}, not a checkpoint file")):
        # a subprocess with a timeout: reading a FIFO would block for ever
        proc = subprocess.run([sys.executable, "-m", "vfxmatte", "validate", str(path)],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and words in one_error_line(proc.stderr)


def test_a_zero_byte_image_under_eval_is_one_line(tmp_path, assets, capsys):
    from vfxmatte.io.image import write_image

    for folder in ("image", "trimap1", "alpha"):
        (tmp_path / folder).mkdir()
    tri = np.zeros((16, 16), np.float32)
    tri[4:12, 4:12] = 0.5
    write_image(tmp_path / "trimap1" / "a.png", tri, ["Y"], pixel_type="uint8")
    write_image(tmp_path / "alpha" / "a.png", tri, ["Y"], pixel_type="uint8")
    (tmp_path / "image" / "a.png").write_bytes(b"")
    assert main(["eval", str(tmp_path), "--model", str(assets[1]), "--device", "cpu"]) == 2
    assert str(tmp_path / "image" / "a.png") in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("policy", ["error", "skip", "hold"])
@pytest.mark.parametrize("frames", ["1001-1012", "1012-1001", "1001-1012x3", "1009,1001-1003,1011-1012"])
def test_check_gives_every_frame_the_outcome_plan_gives_it(shot, policy, frames):
    plates, trimaps, job = shot
    for f in (1005, 1007, 1010):  # plates on disk: 1001-1003, 1005, 1007, 1010 (1008: a directory)
        shutil.copy(plate(plates, 1001), plate(plates, f))
    for f in (1005, 1010):
        shutil.copy(trimaps / "shot010.1001.png", trimaps / f"shot010.{f}.png")
    plate(plates, 1008).mkdir()
    pipe = ShotPipeline(load_job(job(plate={"frames": frames, "missing": policy})))
    report = pipe.check(all_frames=True)
    checked = {}
    for kind, reason, runs in report.groups:
        for run in runs:
            for f in run:
                assert f not in checked
                checked[f] = (kind, reason)
    def outcome(p):
        if p.skip_reason is not None:
            return "skipped", p.skip_reason
        if p.fail_reason is not None:
            return "failed", p.fail_reason
        return ("held", f"held from frame {p.held_from}") if p.held_from is not None else ("done", None)

    plans = pipe.plan()
    assert sorted(checked) == sorted(p.frame for p in plans)
    for p in plans:
        kind, reason = outcome(p)
        if kind == "held":  # a held frame fails as its source frame does
            (source,) = pipe.plan([p.held_from])
            if outcome(source)[0] == "failed":
                kind, reason = outcome(source)
        assert checked[p.frame][0] == kind, (p.frame, checked[p.frame], kind, reason)
        if kind == "failed":  # the same reason, the files named by their patterns
            assert checked[p.frame][1] == pipeline._pattern_reason(reason, p.source_frame, pipe)


def test_the_api_dry_run_checks_headers_too(shot):
    plates, _, job = shot
    write_channels(plate(plates, 1003), ("Y", "RY", "BY"))
    report = pipeline.run_job(load_job(job()), dry_run=True)
    assert report.planned == [1001, 1002] and "luminance/chroma" in report.failed[1003] and report.exit_code == 1


def test_checkpoint_metadata_that_is_no_architecture_is_one_line(shot, assets, tmp_path, capsys):
    meta, state = checkpoint_parts(assets[1])
    for arch in ("[1, 2]", '"tiny"', '{"encoder_widths": 8}'):
        save_file(state, str(tmp_path / "odd.safetensors"), metadata={**meta, "vfxmatte.arch": arch})
        assert main(["validate", str(shot[2](checkpoint=tmp_path / "odd.safetensors"))]) == 2
        assert str(tmp_path / "odd.safetensors") in one_error_line(capsys.readouterr().err)


def test_an_off_palette_trimap_fails_validate(shot, capsys):
    from vfxmatte.io.image import write_image

    _, trimaps, job = shot
    bad = trimaps / "shot010.1002.png"
    write_image(bad, np.full((H, W), 0.3, np.float32), ["Y"], pixel_type="uint8")
    assert main(["validate", str(job())]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith("vfxmatte: frame 1002 would fail: ") and str(bad) in line

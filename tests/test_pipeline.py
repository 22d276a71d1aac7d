"""The shot pipeline on small real files: EXR and DPX plates made on the fly through OIIO."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest
import yaml

from vfxmatte import __version__
from vfxmatte.checkpoint import save_checkpoint
from vfxmatte.color import ColorConverter
from vfxmatte.errors import JobError, SequenceError
from vfxmatte.examples import make_shot010
from vfxmatte.io.image import ImageInfo, read_image, read_trimap, write_image
from vfxmatte.jobs import load_job
from vfxmatte.model import build_model
from vfxmatte.pipeline import FrameEvent, ShotPipeline, run_job

FRAMES = (1001, 1002, 1003)
H, W = 20, 32  # display window
PAD = 4  # overscan on every side


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """Tiny frames: see conftest.one_torch_thread."""



@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory) -> Path:
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.safetensors", build_model("tiny"))


def _plate_pixels(frame: int) -> np.ndarray:
    """Overscan-sized linear RGB with HDR highlights and negatives (as real plates have)."""
    y, x = np.mgrid[0 : H + 2 * PAD, 0 : W + 2 * PAD].astype(np.float32)
    rgb = np.stack([x / W, y / H, 0.25 + 0.01 * (frame - 1000) + 0 * x], axis=2)
    rgb[2, 3] = (7.5, 12.0, 3.0)  # HDR
    rgb[4, 5] = (-0.02, 0.1, 0.2)  # negative
    return rgb.astype(np.float16).astype(np.float32)  # exactly representable in half


def _trimap(h: int, w: int) -> np.ndarray:
    t = np.zeros((h, w), np.float32)
    t[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 0.5
    t[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3] = 1.0
    return t


def make_plates(root: Path, ext: str = "exr", frames=FRAMES, overscan: bool = True) -> None:
    """Plates ``root/plates/shot.####.<ext>`` and trimaps ``root/trimaps/shot.####.png``."""
    for f in frames:
        rgb = _plate_pixels(f)
        h, w = rgb.shape[:2]
        if ext == "exr":
            info = ImageInfo(
                path=Path("src.exr"), width=w, height=h,
                x=-PAD if overscan else 0, y=-PAD if overscan else 0,
                full_width=W if overscan else w, full_height=H if overscan else h,
                metadata={"Owner": "unit test", "capDate": "2026:01:01 00:00:00", "camera:lens": "35mm"},
            )
            write_image(root / "plates" / f"shot.{f}.exr", rgb, ["R", "G", "B"], info_like=info, pixel_type="half")
        else:  # 10-bit DPX, values as normalised code values
            write_image(root / "plates" / f"shot.{f}.dpx", np.clip(rgb / 8, 0, 1), ["R", "G", "B"],
                        pixel_type="uint16", bits=10)
        write_image(root / "trimaps" / f"shot.{f}.png", _trimap(h, w), ["Y"], pixel_type="uint8")


def write_job(root: Path, ckpt: Path, **sections) -> Path:
    """A job for ``make_plates``' layout; ``sections`` update its mappings key by key."""
    job = {
        "version": 1,
        "shot": "shot",
        "plate": {"path": "plates/shot.####.exr", "frames": "1001-1003", "colorspace": "lin_rec709"},
        "trimap": {"mode": "sequence", "path": "trimaps/shot.####.png"},
        "model": {"checkpoint": str(ckpt), "device": "cpu", "tile_size": 0},
        "output": {"path": "out/shot.####.exr"},
    }
    for name, values in sections.items():
        job[name] = {**job.get(name, {}), **values}
    path = root / "job.yaml"
    path.write_text(yaml.safe_dump(job, sort_keys=False))
    return path


@pytest.fixture
def shot(tmp_path: Path) -> Path:
    make_plates(tmp_path)
    return tmp_path


class RecordingSession:
    """Stands in for MattingSession (a :class:`vfxmatte.pipeline.Matter`): records what the
    pipeline hands the model; its provenance attributes are made up, so they can be recognised."""

    model_name = "recorder"
    model_hash = "feedface"
    device = "gpu:7"
    precision = "int3"

    def __init__(self) -> None:
        self.images: list[np.ndarray] = []
        self.trimaps: list[np.ndarray] = []

    def matte(self, image, trimap, progress=None, name="frame"):
        self.images.append(image)
        self.trimaps.append(trimap)
        return trimap.copy()


def read_out(path: Path) -> tuple[oiio.ImageSpec, np.ndarray]:
    inp = oiio.ImageInput.open(str(path))
    assert inp is not None, oiio.geterror()
    try:
        spec = inp.spec().copy()
        pixels = inp.read_image(oiio.FLOAT)
    finally:
        inp.close()
    return spec, np.asarray(pixels).reshape(spec.height, spec.width, spec.nchannels)


# --------------------------------------------------------------------------- end to end


def test_example_shot_end_to_end_with_the_tiny_model(tmp_path, tiny_ckpt):
    shot = make_shot010(tmp_path / "ex", frames=FRAMES, width=48, height=32)
    job_path = tmp_path / "job.yaml"
    job_path.write_text(yaml.safe_dump(shot.job_dict(tmp_path / "out" / "a.####.exr", checkpoint=str(tiny_ckpt))))
    events: list[FrameEvent] = []
    report = run_job(load_job(job_path), progress=events.append)
    assert report.exit_code == 0 and report.done == list(FRAMES) and not report.failed
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"a.{f}.exr" for f in FRAMES]
    assert [e.kind for e in events] == ["started", "done"] * 3 and events[-1].index == events[-1].total == 3
    assert report.seconds_per_frame is not None and report.seconds_per_frame > 0
    spec, alpha = read_out(tmp_path / "out" / "a.1002.exr")
    assert list(spec.channelnames) == ["A"] and spec.format == oiio.HALF
    assert np.isfinite(alpha).all() and alpha.min() >= 0 and alpha.max() <= 1
    tri = read_trimap(shot.trimaps.replace("####", "1002"))
    assert np.all(alpha[..., 0][tri == 1.0] == 1.0) and np.all(alpha[..., 0][tri == 0.0] == 0.0)
    assert 0 < (tri == 0.5).mean() < 1  # the example's trimap has an unknown band to solve


def test_windows_metadata_and_provenance_are_kept(shot, tiny_ckpt):
    job = load_job(write_job(shot, tiny_ckpt))
    assert run_job(job).exit_code == 0
    spec, alpha = read_out(shot / "out" / "shot.1002.exr")
    assert (spec.x, spec.y, spec.width, spec.height) == (-PAD, -PAD, W + 2 * PAD, H + 2 * PAD)
    assert (spec.full_x, spec.full_y, spec.full_width, spec.full_height) == (0, 0, W, H)
    assert spec.get_string_attribute("Owner") == "unit test"
    assert spec.get_string_attribute("camera:lens") == "35mm"
    assert spec.get_string_attribute("compression") == "zip"
    assert spec.get_string_attribute("vfxmatte:version") == __version__
    assert spec.get_string_attribute("vfxmatte:model") == "tiny"
    assert spec.get_string_attribute("vfxmatte:model_hash") == job_hash_of(tiny_ckpt)
    assert spec.get_string_attribute("vfxmatte:job_hash") == job.job_hash
    assert spec.get_int_attribute("vfxmatte:frame") == 1002
    from vfxmatte.devices import cpu_has_native_bf16

    assert spec.get_string_attribute("vfxmatte:model_arch") == "tiny"
    assert spec.get_string_attribute("vfxmatte:device") == "cpu"
    assert spec.get_string_attribute("vfxmatte:precision") == ("bf16" if cpu_has_native_bf16() else "fp32")
    # Known regions of the trimap come through exactly.
    tri = _trimap(H + 2 * PAD, W + 2 * PAD)
    assert np.all(alpha[..., 0][tri == 1.0] == 1.0) and np.all(alpha[..., 0][tri == 0.0] == 0.0)


def test_provenance_comes_from_the_matters_own_attributes(shot, tiny_ckpt):
    # Any Matter: the pipeline reads what ran from its public attributes, nothing private.
    job = load_job(write_job(shot, tiny_ckpt))
    with ShotPipeline(job, session=RecordingSession()) as pipe:
        assert pipe.run(frames=[1001]).done == [1001]
    spec, _ = read_out(shot / "out" / "shot.1001.exr")
    assert spec.get_string_attribute("vfxmatte:model_arch") == "recorder"
    assert spec.get_string_attribute("vfxmatte:model_hash") == "feedface"
    assert spec.get_string_attribute("vfxmatte:device") == "gpu:7"
    assert spec.get_string_attribute("vfxmatte:precision") == "int3"
    assert spec.get_string_attribute("vfxmatte:model") == "tiny"  # the job's checkpoint name


def job_hash_of(path: Path) -> str:
    from vfxmatte.checkpoint import file_sha256

    return file_sha256(path)


def test_flip_tta_from_the_job_reaches_the_engine(shot, tiny_ckpt):
    run_job(load_job(write_job(shot, tiny_ckpt)), frames=[1002])
    run_job(load_job(write_job(shot, tiny_ckpt, model={"tta": "flip"}, output={"path": "flip/shot.####.exr"})),
            frames=[1002])
    _, plain = read_out(shot / "out" / "shot.1002.exr")
    _, flip = read_out(shot / "flip" / "shot.1002.exr")
    tri = _trimap(*plain.shape[:2])
    assert np.array_equal(plain[tri != 0.5], flip[tri != 0.5])  # known regions as the trimap says
    assert np.abs(plain - flip)[tri == 0.5].max() > 1e-3  # the unknown band comes from both views


def test_sparse_from_the_job_reaches_the_engine(shot, tiny_ckpt, monkeypatch):
    from vfxmatte.model import TCPMatting

    calls = []
    sparse_forward = TCPMatting.forward_sparse
    monkeypatch.setattr(TCPMatting, "forward_sparse", lambda self, *a, **k: calls.append(1) or sparse_forward(self, *a, **k))
    run_job(load_job(write_job(shot, tiny_ckpt)), frames=[1002])  # sparse by default
    assert calls
    calls.clear()
    run_job(load_job(write_job(shot, tiny_ckpt, model={"sparse": False}, output={"path": "dense/shot.####.exr"})),
            frames=[1002])
    assert not calls
    _, fast = read_out(shot / "out" / "shot.1002.exr")
    _, dense = read_out(shot / "dense" / "shot.1002.exr")
    np.testing.assert_allclose(fast, dense, atol=1e-3)  # same matte, to half-float rounding


@pytest.mark.parametrize("channel", ["A", "matte.A"])
def test_channel_name_comes_from_the_job(shot, tiny_ckpt, channel):
    run_job(load_job(write_job(shot, tiny_ckpt, output={"channel": channel, "compression": "piz"})))
    spec, _ = read_out(shot / "out" / "shot.1001.exr")
    assert list(spec.channelnames) == [channel]
    assert spec.get_string_attribute("compression") == "piz"


@pytest.mark.parametrize("channel,rgb_names", [("A", ["R", "G", "B"]), ("matte.A", ["matte.R", "matte.G", "matte.B"])])
def test_rgba_output_keeps_the_plate_rgb_bit_exact(shot, tiny_ckpt, channel, rgb_names):
    run_job(load_job(write_job(shot, tiny_ckpt, output={"rgba": True, "channel": channel})))
    rgb_in, _ = read_image(shot / "plates" / "shot.1003.exr")
    rgb_out, _ = read_image(shot / "out" / "shot.1003.exr", channels=rgb_names)
    assert np.array_equal(rgb_in, rgb_out)  # HDR and negative values included
    assert rgb_in.max() > 1 and rgb_in.min() < 0
    alpha, _ = read_image(shot / "out" / "shot.1003.exr", channels=[channel])
    assert alpha.min() >= 0 and alpha.max() <= 1


def test_colour_tag_only_on_outputs_that_carry_the_plate_rgb(shot, tiny_ckpt):
    rgb = _plate_pixels(1003)
    info = ImageInfo(path=Path("x.exr"), width=rgb.shape[1], height=rgb.shape[0])
    write_image(shot / "plates" / "shot.1003.exr", rgb, ["R", "G", "B"], info_like=info, pixel_type="half",
                metadata={"colorInteropID": "lin_ap1_scene"})
    run_job(load_job(write_job(shot, tiny_ckpt)), frames=[1003])
    spec, _ = read_out(shot / "out" / "shot.1003.exr")
    assert spec.getattribute("colorInteropID") is None  # an alpha has no colourspace
    run_job(load_job(write_job(shot, tiny_ckpt, output={"rgba": True})), frames=[1003])
    spec, _ = read_out(shot / "out" / "shot.1003.exr")
    assert spec.getattribute("colorInteropID") == "lin_ap1_scene"


# --------------------------------------------------------------------------- colour


def test_only_rgb_is_colour_converted_and_nan_inf_never_reach_the_model(shot, tiny_ckpt):
    rgb = _plate_pixels(1002)
    rgb[1, 1] = (np.nan, np.inf, -np.inf)
    info = ImageInfo(path=Path("x.exr"), width=rgb.shape[1], height=rgb.shape[0])
    write_image(shot / "plates" / "shot.1002.exr", rgb, ["R", "G", "B"], info_like=info, pixel_type="half")
    session = RecordingSession()
    job = load_job(write_job(shot, tiny_ckpt, output={"rgba": True}))
    with ShotPipeline(job, session=session) as pipe:
        report = pipe.run(frames=[1002])
    assert report.done == [1002]
    image = session.images[0]
    assert np.isfinite(image).all() and image.min() >= 0 and image.max() <= 1
    clean = np.nan_to_num(rgb.astype(np.float16).astype(np.float32), nan=0, posinf=0, neginf=0)
    expected = ColorConverter(None, "lin_rec709").apply(clean)
    assert np.allclose(image, expected, atol=1e-6)
    alpha, _ = read_image(shot / "out" / "shot.1002.exr", channels=["A"])
    assert np.isfinite(alpha).all()


def test_dpx_plate_in_cineon(tmp_path, tiny_ckpt):
    make_plates(tmp_path, ext="dpx")
    job = load_job(write_job(tmp_path, tiny_ckpt, plate={"path": "plates/shot.####.dpx", "colorspace": "cineon"}))
    session = RecordingSession()
    with ShotPipeline(job, session=session) as pipe:
        assert pipe.run().exit_code == 0
    code_values, info = read_image(tmp_path / "plates" / "shot.1001.dpx")
    assert info.file_format == "dpx"
    assert np.allclose(session.images[0], ColorConverter(None, "cineon").apply(code_values), atol=1e-6)
    # The real model on the same job writes an EXR matte per frame.
    assert run_job(job).done == list(FRAMES)
    spec, _ = read_out(tmp_path / "out" / "shot.1001.exr")
    assert spec.get_string_attribute("vfxmatte:plate_colorspace") == "cineon"


def test_rgba_from_a_cineon_dpx_plate_can_be_written_as_linear_light(tmp_path, tiny_ckpt):
    make_plates(tmp_path, ext="dpx")
    plate = {"path": "plates/shot.####.dpx", "colorspace": "cineon"}
    run_job(load_job(write_job(tmp_path, tiny_ckpt, plate=plate, output={"rgba": True})), frames=[1001])
    code_values, _ = read_image(tmp_path / "plates" / "shot.1001.dpx")
    as_read, _ = read_image(tmp_path / "out" / "shot.1001.exr", channels=["R", "G", "B"])
    assert np.allclose(as_read, code_values, atol=1e-3)  # default: the log code values (half)
    job = load_job(write_job(tmp_path, tiny_ckpt, plate=plate,
                             output={"rgba": True, "rgb_colorspace": "lin_rec709", "skip_existing": False}))
    run_job(job, frames=[1001])
    linear, _ = read_image(tmp_path / "out" / "shot.1001.exr", channels=["R", "G", "B"])
    expected = ColorConverter(None, "cineon", "lin_rec709").apply(code_values)
    assert np.allclose(linear, expected, rtol=2e-3, atol=1e-4)  # half precision
    assert not np.allclose(linear, code_values, atol=0.05)  # really converted
    spec, _ = read_out(tmp_path / "out" / "shot.1001.exr")
    assert spec.get_string_attribute("vfxmatte:rgb_colorspace") == "Linear Rec.709 (sRGB)"
    assert spec.getattribute("colorInteropID") is None


@pytest.mark.parametrize("output,message", [
    ({"rgb_colorspace": "lin_rec709"}, "output.rgb_colorspace.*needs output.rgba"),
    ({"rgba": True, "rgb_colorspace": "lin_rec7O9"}, "output.rgb_colorspace.*unknown colourspace 'lin_rec7O9'"),
])
def test_rgb_colorspace_errors_name_the_key(shot, tiny_ckpt, output, message):
    with pytest.raises(JobError, match=message):
        load_job(write_job(shot, tiny_ckpt, output=output))


def test_mask_mode_derives_a_trimap_with_an_unknown_band(shot, tiny_ckpt):
    for f in FRAMES:
        m = np.zeros((H + 2 * PAD, W + 2 * PAD), np.float32)
        m[8:20, 10:30] = 1.0
        write_image(shot / "roto" / f"roto.{f}.exr", m, ["A"], pixel_type="half")
    job = load_job(write_job(shot, tiny_ckpt, trimap={"mode": "mask", "path": "roto/roto.####.exr", "band_px": 2}))
    session = RecordingSession()
    with ShotPipeline(job, session=session) as pipe:
        assert pipe.run().exit_code == 0
    t = session.trimaps[0]
    assert set(np.unique(t)) == {0.0, 0.5, 1.0} and t[14, 20] == 1.0 and t[0, 0] == 0.0


def test_a_still_trimap_serves_every_frame(shot, tiny_ckpt):
    write_image(shot / "still.png", _trimap(H + 2 * PAD, W + 2 * PAD), ["Y"], pixel_type="uint8")
    job = load_job(write_job(shot, tiny_ckpt, trimap={"path": "still.png"}))
    plans = ShotPipeline(job).plan()
    assert {p.trimap for p in plans} == {shot / "still.png"}
    assert run_job(job).done == list(FRAMES)


# --------------------------------------------------------------------------- frames


def test_skip_existing_does_not_rewrite(shot, tiny_ckpt):
    run_job(load_job(write_job(shot, tiny_ckpt)))
    before = {p.name: p.stat().st_mtime_ns for p in (shot / "out").iterdir()}
    report = run_job(load_job(write_job(shot, tiny_ckpt, output={"skip_existing": True})))
    assert sorted(report.skipped) == list(FRAMES) and not report.done and report.exit_code == 0
    assert {p.name: p.stat().st_mtime_ns for p in (shot / "out").iterdir()} == before


def test_skip_existing_resumes_only_the_missing_frames(shot, tiny_ckpt):
    run_job(load_job(write_job(shot, tiny_ckpt)), frames=[1001])
    report = run_job(load_job(write_job(shot, tiny_ckpt, output={"skip_existing": True})))
    assert report.done == [1002, 1003] and list(report.skipped) == [1001]


def test_missing_frame_policy_error_fails_that_frame_only(shot, tiny_ckpt):
    (shot / "plates" / "shot.1002.exr").unlink()
    report = run_job(load_job(write_job(shot, tiny_ckpt)))
    assert report.done == [1001, 1003] and list(report.failed) == [1002] and report.exit_code == 1
    assert "plate frame missing" in report.failed[1002]
    assert not (shot / "out" / "shot.1002.exr").exists()


def test_missing_frame_policy_skip(shot, tiny_ckpt):
    (shot / "plates" / "shot.1002.exr").unlink()
    report = run_job(load_job(write_job(shot, tiny_ckpt, plate={"missing": "skip"})))
    assert report.done == [1001, 1003] and list(report.skipped) == [1002] and report.exit_code == 0


def test_missing_frame_policy_hold_reads_the_nearest_earlier_frame(shot, tiny_ckpt):
    (shot / "plates" / "shot.1002.exr").unlink()
    report = run_job(load_job(write_job(shot, tiny_ckpt, plate={"missing": "hold"})))
    assert report.done == list(FRAMES)
    spec, _ = read_out(shot / "out" / "shot.1002.exr")
    assert spec.get_int_attribute("vfxmatte:frame") == 1002
    assert spec.get_int_attribute("vfxmatte:plate_frame") == 1001


def test_a_failed_frame_does_not_stop_the_others(shot, tiny_ckpt):
    write_image(shot / "trimaps" / "shot.1002.png", _trimap(10, 10), ["Y"], pixel_type="uint8")
    events: list[FrameEvent] = []
    report = run_job(load_job(write_job(shot, tiny_ckpt)), progress=events.append)
    assert report.done == [1001, 1003] and report.exit_code == 1
    assert report.failed[1002].startswith("frame 1002: trimap") and "data window is 40x28" in report.failed[1002]
    failed = [e for e in events if e.kind == "failed"]
    assert len(failed) == 1 and failed[0].frame == 1002 and failed[0].error is not None
    assert sorted(p.name for p in (shot / "out").iterdir()) == ["shot.1001.exr", "shot.1003.exr"]


def test_missing_trimap_fails_the_frame_in_the_plan(shot, tiny_ckpt):
    (shot / "trimaps" / "shot.1003.png").unlink()
    plans = ShotPipeline(load_job(write_job(shot, tiny_ckpt))).plan()
    assert [p.fail_reason is not None for p in plans] == [False, False, True]
    assert "trimap missing" in plans[2].fail_reason


def test_dry_run_writes_nothing_and_loads_no_model(shot, tiny_ckpt):
    job = load_job(write_job(shot, tiny_ckpt))
    events: list[FrameEvent] = []
    with ShotPipeline(job) as pipe:
        report = pipe.run(dry_run=True, progress=events.append)
        assert pipe._session is None
    assert report.planned == list(FRAMES) and not report.done and report.exit_code == 0
    assert {e.kind for e in events} == {"planned"} and not (shot / "out").exists()


def test_frames_override_and_no_plate_at_all(shot, tiny_ckpt):
    job = load_job(write_job(shot, tiny_ckpt))
    assert run_job(job, frames=[1003]).done == [1003]
    for p in (shot / "plates").iterdir():
        p.unlink()
    with pytest.raises(SequenceError, match="no frames of"):
        run_job(job)


# --------------------------------------------------------------------------- nothing lost


def outputs_of(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_skip_existing_redoes_truncated_empty_and_foreign_outputs_and_says_why(shot, tiny_ckpt, caplog):
    run_job(load_job(write_job(shot, tiny_ckpt)))
    good = outputs_of(shot / "out")
    out = shot / "out"
    (out / "shot.1001.exr").write_bytes(good["shot.1001.exr"][: len(good["shot.1001.exr"]) // 2])  # truncated
    (out / "shot.1002.exr").write_bytes(b"")  # zero bytes
    resume = load_job(write_job(shot, tiny_ckpt, output={"skip_existing": True}))
    plans = {p.frame: p for p in ShotPipeline(resume).plan()}
    assert "incomplete or unreadable" in plans[1001].redo_reason and "shot.1001.exr" in plans[1001].redo_reason
    assert "incomplete or unreadable" in plans[1002].redo_reason
    assert plans[1003].skip_reason == f"output exists: {out / 'shot.1003.exr'}" and plans[1003].redo_reason is None
    with caplog.at_level("WARNING", logger="vfxmatte"):
        report = run_job(resume)
    assert report.done == [1001, 1002] and list(report.skipped) == [1003]
    assert "frame 1002: existing output is incomplete or unreadable" in caplog.text and "made again" in caplog.text
    assert outputs_of(out) == good  # redone byte for byte

    # A matte another job made (another trimap tolerance: other pixels possible) is redone.
    other = load_job(write_job(shot, tiny_ckpt, trimap={"tolerance": 0.05}, output={"skip_existing": True}))
    plan = ShotPipeline(other).plan(frames=[1003])[0]
    assert plan.skip_reason is None and "was made by another job" in plan.redo_reason
    assert plan.redo_reason.endswith(f"this job: {other.job_hash[:12]})")


def test_the_same_job_writes_the_same_bytes_with_or_without_a_plate_datetime(shot, tiny_ckpt):
    for f in (1001, 1002):  # plates without a DateTime (the fixture's carry capDate)
        rgb, info = read_image(shot / "plates" / f"shot.{f}.exr")
        info.metadata.pop("DateTime")
        write_image(shot / "plates" / f"shot.{f}.exr", rgb, ["R", "G", "B"], info_like=info, pixel_type="half")
        assert read_image(shot / "plates" / f"shot.{f}.exr")[1].metadata.get("DateTime") is None
    job = load_job(write_job(shot, tiny_ckpt))
    run_job(job, frames=[1001, 1002])
    first = outputs_of(shot / "out")
    spec, _ = read_out(shot / "out" / "shot.1001.exr")
    assert spec.getattribute("DateTime") is None  # not the write time (OIIO's default stamp)
    run_job(job, frames=[1001, 1002])
    assert outputs_of(shot / "out") == first
    # A plate that carries a DateTime passes it on, and nothing else changes.
    rgb, info = read_image(shot / "plates" / "shot.1002.exr")
    write_image(shot / "plates" / "shot.1002.exr", rgb, ["R", "G", "B"], info_like=info, pixel_type="half",
                metadata={"DateTime": "2025:07:04 12:00:00"})
    run_job(job, frames=[1002])
    dated = (shot / "out" / "shot.1002.exr").read_bytes()
    spec, _ = read_out(shot / "out" / "shot.1002.exr")
    assert spec.getattribute("DateTime") == "2025:07:04 12:00:00"
    run_job(job, frames=[1002])
    assert (shot / "out" / "shot.1002.exr").read_bytes() == dated


def test_a_full_disk_fails_the_frames_and_keeps_the_outputs(shot, tiny_ckpt, small_disk, fill_disk):
    """A real tmpfs (root only): with the disk full every frame fails with the write error, no
    temporary file is left and the outputs of an earlier run are untouched."""
    disk = small_disk(128)
    job = load_job(write_job(shot, tiny_ckpt, output={"path": str(disk / "shot.####.exr")}))
    assert run_job(job).exit_code == 0
    before = outputs_of(disk)
    fill_disk(disk)
    report = run_job(job)
    assert report.exit_code == 1 and sorted(report.failed) == list(FRAMES) and not report.done
    assert all("cannot" in reason and "shot." in reason for reason in report.failed.values())
    after = outputs_of(disk)
    del after["filler"]
    assert after == before


def test_a_killed_writers_temporary_is_swept_on_the_next_run_of_that_frame(shot, tiny_ckpt):
    import os
    import signal
    import subprocess
    import sys
    import time

    out = shot / "out"
    out.mkdir()
    target = out / "shot.1002.exr"
    writer = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from vfxmatte.io.atomic import atomic_write\n"
        "with atomic_write(Path(sys.argv[1])) as tmp:\n"
        "    tmp.write_bytes(b'half a frame')\n"
        "    print(tmp, flush=True)\n"
        "    time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", writer, str(target)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    stray = Path(proc.stdout.readline().strip())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert stray.exists() and not target.exists()
    # Kept: files that are not atomic_write temporaries of a frame being written, and a live
    # writer's temporary (this process's).
    others = [out / ".shot.1002.exr.notes", out / "shot.1002.exr.bak", out / f".shot.1003.exr.{proc.pid}.0123456789ab.tmp.exr",
              out / f".shot.1002.exr.{os.getpid()}.0123456789ab.tmp.exr"]
    for p in others:
        p.write_bytes(b"keep")
    old_foreign = out / ".shot.1002.exr.1@elsewhere.0123456789ab.tmp.exr"  # another host's, a day old
    old_foreign.write_bytes(b"stale")
    os.utime(old_foreign, (time.time() - 86400,) * 2)
    assert run_job(load_job(write_job(shot, tiny_ckpt)), frames=[1002]).done == [1002]
    assert not stray.exists() and not old_foreign.exists()
    assert all(p.read_bytes() == b"keep" for p in others)
    assert sorted(p.name for p in out.iterdir()) == sorted([target.name, *(p.name for p in others)])


def test_an_rgba_trimap_with_an_empty_alpha_gives_its_painted_trimap(shot, tiny_ckpt):
    tri = _trimap(H + 2 * PAD, W + 2 * PAD)
    codes = np.round(tri * 255).astype(np.uint8)
    pixels = np.stack([codes, codes, codes, np.zeros_like(codes)], axis=2)  # alpha 0 everywhere
    spec = oiio.ImageSpec(pixels.shape[1], pixels.shape[0], 4, oiio.UINT8)
    spec.channelnames, spec.alpha_channel = ("R", "G", "B", "A"), 3
    spec.attribute("oiio:UnassociatedAlpha", 1)  # stored as painted
    out = oiio.ImageOutput.create(str(shot / "trimaps" / "shot.1002.png"))
    assert out.open(str(shot / "trimaps" / "shot.1002.png"), spec) and out.write_image(pixels) and out.close()
    session = RecordingSession()
    with ShotPipeline(load_job(write_job(shot, tiny_ckpt)), session=session) as pipe:
        assert pipe.run(frames=[1002]).done == [1002]
    np.testing.assert_array_equal(session.trimaps[0], tri)

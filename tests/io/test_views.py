"""Stereo plates: a view read by name from real multi-view EXRs written here through OIIO
(single-part with ``multiView``, multi-part with ``view`` attributes), and mattes that Nuke's
reading of the OpenEXR multi-view conventions assigns to the same view."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest
import yaml

from vfxmatte.cli import main
from vfxmatte.color import ColorConverter
from vfxmatte.errors import ImageReadError, InputError, JobError
from vfxmatte.io.image import file_views, read_header, read_image, write_image
from vfxmatte.jobs import load_job, parse_job
from vfxmatte.jobs.schema import job_hash_data
from vfxmatte.pipeline import ShotPipeline

H, W = 12, 16
FRAMES = (1001, 1002)
#: each eye's constant plate value, so a matte shows which eye it was made from
EYE = {"left": 0.125, "right": 0.75}


def _eye(view: str, channels: int = 3) -> np.ndarray:
    return np.full((H, W, channels), EYE[view], np.float32)


def write_single_part(path: Path, default: str = "right") -> None:
    """One part, ``multiView`` = [default, other]: the default view's channels unprefixed
    (``R G B``), the other's ``<view>.R`` ... (the OpenEXR document's own example)."""
    other = "left" if default == "right" else "right"
    spec = oiio.ImageSpec(W, H, 6, oiio.HALF)
    spec.channelnames = ("R", "G", "B", f"{other}.R", f"{other}.G", f"{other}.B")
    spec.attribute("multiView", oiio.TypeDesc("string[2]"), (default, other))
    spec.attribute("Owner", "stereo test")
    _write(path, [spec], [np.concatenate([_eye(default), _eye(other)], axis=2)])


def write_multi_part(path: Path) -> None:
    """Two parts, ``left`` then ``right``, each with plain ``R G B`` and its ``view``."""
    specs = []
    for view in ("left", "right"):
        spec = oiio.ImageSpec(W, H, 3, oiio.HALF)
        spec.attribute("oiio:subimagename", f"rgb_{view}")
        spec.attribute("view", view)
        specs.append(spec)
    _write(path, specs, [_eye("left"), _eye("right")])


def _write(path: Path, specs: list[oiio.ImageSpec], pixels: list[np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), specs if len(specs) > 1 else specs[0]), out.geterror()
    for i, (spec, px) in enumerate(zip(specs, pixels)):
        if i:
            assert out.open(str(path), spec, "AppendSubimage"), out.geterror()
        assert out.write_image(px), out.geterror()
    assert out.close()


def nuke_views(path: Path) -> dict[str | None, dict[str, np.ndarray]]:
    """view -> channel -> pixels as a multi-view reader (Nuke's) assigns a file's channels, by
    the OpenEXR rules written out here independently of vfxmatte: a part with a ``view``
    attribute is that view; in a header with ``multiView`` (default view first) a channel
    without a period is the default view's and ``[layer.]view.X`` is ``view``'s ``[layer.]X``;
    a file naming no views is mono (view None)."""
    inp = oiio.ImageInput.open(str(path))
    assert inp is not None, oiio.geterror()
    found: dict[str | None, dict[str, np.ndarray]] = {}
    try:
        i = 0
        while inp.seek_subimage(i, 0):
            spec = inp.spec()
            px = np.asarray(inp.read_image(i, 0, 0, spec.nchannels, oiio.FLOAT)).reshape(spec.height, spec.width, -1)
            part_view = spec.getattribute("view")
            multi = spec.getattribute("multiView")
            multi = (multi,) if isinstance(multi, str) else tuple(multi or ())
            for k, name in enumerate(spec.channelnames):
                parts = name.split(".")
                if part_view:
                    view, rel = part_view, name
                elif not multi:
                    view, rel = None, name
                elif len(parts) == 1:
                    view, rel = multi[0], name
                elif parts[-2] in multi:
                    view, rel = parts[-2], ".".join(parts[:-2] + parts[-1:])
                else:
                    view, rel = "<no view>", name
                found.setdefault(view, {})[rel] = px[..., k]
            i += 1
    finally:
        inp.close()
    return found


def _attrs(path: Path) -> dict[str, object]:
    inp = oiio.ImageInput.open(str(path))
    try:
        return {a.name: a.value for a in inp.spec().extra_attribs}
    finally:
        inp.close()


# --------------------------------------------------------------------------- reading


@pytest.mark.parametrize("write", [write_single_part, write_multi_part], ids=["single-part", "multi-part"])
@pytest.mark.parametrize("view", ["left", "right"])
def test_a_view_is_read_by_name(tmp_path, write, view):
    path = tmp_path / "plate.exr"
    write(path)
    rgb, info = read_image(path, view=view)
    np.testing.assert_array_equal(rgb, _eye(view))
    assert info.view == view
    assert read_header(path, view=view).view == view


def test_the_default_view_is_its_unprefixed_channels_and_is_read_without_a_view(tmp_path):
    path = tmp_path / "plate.exr"
    write_single_part(path, default="right")
    rgb, info = read_image(path)
    np.testing.assert_array_equal(rgb, _eye("right"))
    assert info.view == "right"
    # The old way to reach the other eye, as a layer, knows which eye it is too.
    assert read_image(path, layer="left")[1].view == "left"
    assert file_views(path) == ["right", "left"]


@pytest.mark.parametrize("write", [write_single_part, write_multi_part], ids=["single-part", "multi-part"])
def test_an_unknown_view_is_one_line_listing_the_views(tmp_path, write):
    path = tmp_path / "plate.exr"
    write(path)
    with pytest.raises(ImageReadError) as exc:
        read_header(path, view="centre")
    message = str(exc.value)
    assert "\n" not in message and str(path) in message and "'centre'" in message
    assert ("views: right, left" if write is write_single_part else "views: left, right") in message


# --------------------------------------------------------------------------- the pipeline


class EyeSession:
    """A :class:`vfxmatte.pipeline.Matter` whose alpha is the plate's working red: each eye's
    matte differs, and shows which eye was read."""

    model_name, model_hash, device, precision = "eye", "0", "cpu", "fp32"

    def matte(self, image, trimap, progress=None, name="frame"):
        return image[..., 0].copy()


def make_shot(root: Path, write, view: str | None, output: str | None = None) -> Path:
    """Plates written by ``write`` and trimaps for FRAMES; a job on them (mattes in
    ``out/shot.<view>.####.exr``, ``out/shot.####.exr`` without a view)."""
    if output is None:
        output = "out/shot.%V.####.exr" if view is not None else "out/shot.####.exr"
    for f in FRAMES:
        write(root / "plates" / f"shot.{f}.exr")
        tri = np.full((H, W), 0.5, np.float32)
        image = oiio.ImageBuf(oiio.ImageSpec(W, H, 1, oiio.UINT8))
        image.set_pixels(oiio.ROI(), tri[..., None])
        (root / "trimaps").mkdir(exist_ok=True)
        assert image.write(str(root / "trimaps" / f"shot.{f}.png"))
    plate = {"path": "plates/shot.####.exr", "colorspace": "lin_rec709"}
    if view is not None:
        plate["view"] = view
    job = {
        "version": 1,
        "shot": "shot",
        "plate": plate,
        "trimap": {"mode": "sequence", "path": "trimaps/shot.####.png"},
        "model": {"device": "cpu"},
        "output": {"path": output},
    }
    path = root / "job.yaml"
    path.write_text(yaml.safe_dump(job, sort_keys=False))
    return path


def _run(job_path: Path) -> None:
    with ShotPipeline(load_job(job_path), session=EyeSession()) as pipe:
        assert pipe.run().exit_code == 0


def _eye_alpha(view: str) -> float:
    """The alpha EyeSession makes from eye ``view``: its working-space red."""
    return float(ColorConverter(None, "lin_rec709").apply(_eye(view))[0, 0, 0])


@pytest.mark.parametrize("write", [write_single_part, write_multi_part], ids=["single-part", "multi-part"])
@pytest.mark.parametrize("view", ["left", "right"])
def test_a_views_matte_reads_in_nuke_as_that_view(tmp_path, write, view):
    _run(make_shot(tmp_path, write, view))
    out = tmp_path / "out" / f"shot.{view}.1001.exr"
    seen = nuke_views(out)
    assert list(seen) == [view] and list(seen[view]) == ["A"]
    np.testing.assert_allclose(seen[view]["A"], _eye_alpha(view), atol=1e-3)
    attrs = _attrs(out)
    # One view, said by multiView (OpenEXR's "files with only one view"); nothing of the plate's layout.
    assert attrs["multiView"] == (view,) and "view" not in attrs and "name" not in attrs
    assert attrs["Owner" if write is write_single_part else "compression"]  # shot metadata still copied


def test_without_a_view_the_matte_is_the_default_views_never_the_plates_multiview(tmp_path):
    # The known bug: plain A with the plate's multiView [right, left] copied would read as the
    # default (right) view whichever eye it was; here the matte says which eye it is.
    _run(make_shot(tmp_path, lambda p: write_single_part(p, default="right"), None))
    seen = nuke_views(tmp_path / "out" / "shot.1001.exr")
    assert list(seen) == ["right"]
    np.testing.assert_allclose(seen["right"]["A"], _eye_alpha("right"), atol=1e-3)


def test_the_other_eye_read_as_a_layer_is_marked_as_that_eye(tmp_path):
    # The known bug as reported: the left eye (``left.R`` ...) of a plate whose multiView is
    # [right, left], read through ``layer: left``, written as plain A with that multiView copied,
    # read in Nuke as the right eye.
    job = make_shot(tmp_path, lambda p: write_single_part(p, default="right"), None)
    data = yaml.safe_load(job.read_text())
    data["plate"]["layer"] = "left"
    job.write_text(yaml.safe_dump(data))
    _run(job)
    seen = nuke_views(tmp_path / "out" / "shot.1001.exr")
    assert list(seen) == ["left"]
    np.testing.assert_allclose(seen["left"]["A"], _eye_alpha("left"), atol=1e-3)


def test_a_mono_plate_gives_a_mono_matte(tmp_path):
    def mono(path: Path) -> None:
        _write(path, [oiio.ImageSpec(W, H, 3, oiio.HALF)], [_eye("left")])

    _run(make_shot(tmp_path, mono, None))
    assert "multiView" not in _attrs(tmp_path / "out" / "shot.1001.exr")


def test_percent_v_names_each_eyes_files_and_both_eyes_run_as_two_jobs(tmp_path):
    for view in ("left", "right"):
        job = make_shot(tmp_path, write_single_part, view, output="out/shot.%V.####.exr")
        assert load_job(job).output.path.endswith("shot.%s.####.exr" % view)
        _run(job)
    # Nuke's Read of out/shot.%V.####.exr: each eye's file holds that eye's matte.
    for view in ("left", "right"):
        seen = nuke_views(tmp_path / "out" / f"shot.{view}.1002.exr")
        assert list(seen) == [view]
        np.testing.assert_allclose(seen[view]["A"], _eye_alpha(view), atol=1e-3)


@pytest.mark.parametrize("command", [["validate"], ["run", "--dry-run"], ["run"]])
def test_an_unknown_view_stops_validate_and_run_with_exit_2(tmp_path, capsys, command):
    job = make_shot(tmp_path, write_multi_part, "centre")
    assert main([command[0], str(job), *command[1:]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no view 'centre'" in err[0] and "views: left, right" in err[0], err
    line = job.read_text().splitlines().index("  view: centre") + 1
    assert f"job.yaml:{line}: plate.view:" in err[0]
    assert not (tmp_path / "out").exists()


def test_check_view_leaves_an_unreadable_plate_to_its_frame(tmp_path):
    job = load_job(make_shot(tmp_path, write_multi_part, "left"))
    (tmp_path / "plates" / "shot.1001.exr").write_bytes(b"not an exr")
    pipe = ShotPipeline(job, session=EyeSession())
    pipe.check_view(tmp_path / "plates" / "shot.1001.exr")  # no raise: that frame fails by itself
    with pytest.raises(InputError):
        ShotPipeline(load_job(make_shot(tmp_path, write_multi_part, "centre"))).check_view(
            tmp_path / "plates" / "shot.1002.exr"
        )


# --------------------------------------------------------------------------- the job keys


def _job_text(plate: str, trimap: str = "trimap: {mode: sequence, path: trimaps/shot.####.png}",
              output: str = "out/shot.%V.####.exr") -> str:
    return f"version: 1\nshot: shot\nplate: {plate}\n{trimap}\noutput: {{path: {output}}}\n"


def test_percent_v_without_a_view_a_pattern_without_the_view_and_a_bad_view_name_are_refused(tmp_path):
    with pytest.raises(JobError, match=r"<job>:5: output\.path: %V / %v stand for the view: set plate\.view"):
        parse_job(_job_text("{path: plates/shot.####.exr}"), tmp_path)
    with pytest.raises(JobError, match=r"<job>:5: output\.path: name the view in the mattes' pattern \(%V, or 'left'\)"):
        parse_job(_job_text("{path: plates/shot.####.exr, view: left}", output="out/shot.####.exr"), tmp_path)
    assert parse_job(_job_text("{path: plates/shot.####.exr, view: left}", output="out/left/shot.####.exr"), tmp_path)
    with pytest.raises(JobError, match=r"<job>:3: plate\.view: .*pattern"):
        parse_job(_job_text("{path: plates/shot.####.exr, view: left.eye}"), tmp_path)


def test_the_view_is_hashed_and_names_each_views_propagated_trimaps(tmp_path):
    keyframes = "trimap: {mode: keyframes, path: keys/shot.%V.####.png}"
    left, right = (parse_job(_job_text(f"{{path: plates/shot.####.exr, view: {v}}}", keyframes), tmp_path)
                   for v in ("left", "right"))
    assert left.trimap.path.endswith("keys/shot.left.####.png")
    assert left.propagated_trimaps.endswith("out/trimaps/shot.left.propagated.####.png")
    assert right.propagated_trimaps.endswith("out/trimaps/shot.right.propagated.####.png")
    assert left.job_hash != right.job_hash
    # A job naming no view hashes as it did before views existed: the key is left out.
    mono = parse_job(_job_text("{path: plates/shot.####.exr}", output="out/shot.####.exr"), tmp_path)
    assert "view" not in job_hash_data(mono)["plate"] and job_hash_data(left)["plate"]["view"] == "left"


def test_a_layered_matte_channel_and_rgba_stay_in_the_view(tmp_path):
    job = make_shot(tmp_path, write_single_part, "left")
    data = yaml.safe_load(job.read_text())
    data["output"].update({"channel": "matte.A", "rgba": True})
    job.write_text(yaml.safe_dump(data))
    _run(job)
    out = tmp_path / "out" / "shot.left.1001.exr"
    # matte.A would belong to no view under multiView's naming: it is written matte.left.A.
    assert sorted(_channels(out)) == ["matte.left.A", "matte.left.B", "matte.left.G", "matte.left.R"]
    seen = nuke_views(out)
    assert list(seen) == ["left"] and sorted(seen["left"]) == ["matte.A", "matte.B", "matte.G", "matte.R"]
    np.testing.assert_allclose(seen["left"]["matte.R"], EYE["left"], atol=1e-3)
    np.testing.assert_allclose(seen["left"]["matte.A"], _eye_alpha("left"), atol=1e-3)


def _channels(path: Path) -> tuple[str, ...]:
    inp = oiio.ImageInput.open(str(path))
    try:
        return tuple(inp.spec().channelnames)
    finally:
        inp.close()


def test_only_an_exr_written_from_a_view_is_marked_as_it(tmp_path):
    plate = tmp_path / "plate.exr"
    write_single_part(plate)
    _, info = read_image(plate, view="left")
    write_image(tmp_path / "m.exr", np.zeros((H, W)), ["matte.A"], info_like=info)
    write_image(tmp_path / "m.png", np.zeros((H, W)), ["Y"], info_like=info)
    assert _channels(tmp_path / "m.exr") == ("matte.left.A",) and _attrs(tmp_path / "m.exr")["multiView"] == ("left",)
    assert "multiView" not in _attrs(tmp_path / "m.png") and "Owner" in _attrs(tmp_path / "m.png")

"""Both eyes in one matte file: a job of several views (``plate.view: [left, right]`` or
``all``) on real single-part stereo EXRs written here through OIIO, read back through OIIO and
compared, view by view, with the mattes of one-view jobs (the tiny network, fp32)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest
import yaml

from tests.io.test_views import nuke_views
from vfxmatte.checkpoint import save_checkpoint
from vfxmatte.cli import main
from vfxmatte.errors import JobError
from vfxmatte.examples import make_shot010
from vfxmatte.io.image import read_image
from vfxmatte.jobs import load_job
from vfxmatte.model import build_model
from vfxmatte.pipeline import pipeline_for, propagate_job, run_job

FRAMES = (1001, 1002, 1003)
W, H = 48, 32
#: each eye's plates come from its own example shot (another seed: another picture)
SEEDS = {"left": 10, "right": 11}


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """Tiny frames: see conftest.one_torch_thread."""


@pytest.fixture(scope="module")
def stereo(tmp_path_factory) -> Path:
    """``plates/shot.####.exr``: one part, ``multiView`` [left, right], the left eye as ``R G B``
    and the right as ``right.R right.G right.B`` (OpenEXR's own layout); each eye's trimaps
    ``trimaps/shot.<view>.####.png`` and keyframes ``keys/shot.<view>.####.png`` (1001, 1003);
    the tiny network's checkpoint."""
    root = tmp_path_factory.mktemp("stereo")
    eyes = {v: make_shot010(root / "eyes" / v, frames=FRAMES, width=W, height=H, seed=s, colorspace="lin_rec709")
            for v, s in SEEDS.items()}
    (root / "plates").mkdir()
    for f in FRAMES:
        rgb = {v: read_image(Path(shot.plates.replace("####", str(f))))[0] for v, shot in eyes.items()}
        spec = oiio.ImageSpec(W, H, 6, oiio.HALF)
        spec.channelnames = ("R", "G", "B", "right.R", "right.G", "right.B")
        spec.attribute("multiView", oiio.TypeDesc("string[2]"), ("left", "right"))
        out = oiio.ImageOutput.create("exr")
        path = str(root / "plates" / f"shot.{f}.exr")
        assert out.open(path, spec), out.geterror()
        assert out.write_image(np.concatenate([rgb["left"], rgb["right"]], axis=2)), out.geterror()
        assert out.close()
        for v, shot in eyes.items():
            for folder in ("trimaps",) + (("keys",) if f != 1002 else ()):
                (root / folder).mkdir(exist_ok=True)
                shutil.copy(shot.trimaps.replace("####", str(f)), root / folder / f"shot.{v}.{f}.png")
    save_checkpoint(root / "tiny.safetensors", build_model("tiny"))
    return root


def job_file(root: Path, name: str, view, pattern: str, **sections) -> Path:
    job = {
        "version": 1,
        "shot": "shot",
        "plate": {"path": "plates/shot.####.exr", "colorspace": "lin_rec709", "view": view},
        "trimap": {"mode": "sequence", "path": "trimaps/shot.%V.####.png"},
        "model": {"checkpoint": "tiny.safetensors", "device": "cpu", "precision": "fp32"},
        "output": {"path": pattern},
    }
    for key, value in sections.items():
        job[key] = {**job.get(key, {}), **value}
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(job, sort_keys=False))
    return path


def spec_of(path: Path) -> oiio.ImageSpec:
    inp = oiio.ImageInput.open(str(path))
    assert inp is not None, oiio.geterror()
    try:
        return inp.spec()
    finally:
        inp.close()


def channels_of(path: Path) -> dict[str, np.ndarray]:
    """channel -> its half values as stored (read as float: every half is exact in float)."""
    inp = oiio.ImageInput.open(str(path))
    try:
        spec = inp.spec()
        px = np.asarray(inp.read_image(0, 0, 0, spec.nchannels, oiio.FLOAT)).reshape(spec.height, spec.width, -1)
        return {name: px[..., k] for k, name in enumerate(spec.channelnames)}
    finally:
        inp.close()


def one_view_mattes(root: Path, tag: str, **sections) -> dict[str, Path]:
    """Each eye matted by a job of that view alone; view -> its output folder pattern."""
    out = {}
    for view in SEEDS:
        job = job_file(root, f"{tag}_{view}", view, f"out/{tag}/one/shot.%V.####.exr", **sections)
        assert run_job(load_job(job)).exit_code == 0
        out[view] = root / "out" / tag / "one"
    return out


def assert_views_match(both: Path, one: Path, order: tuple[str, ...], channel: str = "A") -> None:
    """Every frame of ``both`` holds each view's matte of the one-view jobs, bit for bit, named
    as OpenEXR's multi-view convention names it, with ``multiView`` listing ``order``."""
    for f in FRAMES:
        path = both / f"shot.{f}.exr"
        spec = spec_of(path)
        assert tuple(spec.getattribute("multiView")) == order
        seen = nuke_views(path)
        assert list(seen) == list(order)
        for view in order:
            single = nuke_views(one / f"shot.{view}.{f}.exr")[view]
            assert sorted(seen[view]) == sorted(single)  # the same channels, in that view
            for name, px in single.items():
                np.testing.assert_array_equal(seen[view][name], px, err_msg=f"{path} view {view} {name}")
        assert len(spec.channelnames) == len(order) * len(channels_of(one / f"shot.{order[0]}.{f}.exr"))


def test_both_eyes_in_one_file_hold_each_one_view_jobs_matte(stereo):
    job = job_file(stereo, "both", ["left", "right"], "out/both/shot.####.exr")
    report = run_job(load_job(job))
    assert report.exit_code == 0 and report.done == list(FRAMES)
    one = one_view_mattes(stereo, "plain")
    assert_views_match(stereo / "out" / "both", one["left"], ("left", "right"))
    # OpenEXR's layout: the default (first) view unprefixed, the other by name.
    assert tuple(spec_of(stereo / "out" / "both" / "shot.1001.exr").channelnames) == ("A", "right.A")
    # The two eyes' mattes differ (another picture, other trimaps): the file does not repeat one eye.
    px = channels_of(stereo / "out" / "both" / "shot.1001.exr")
    assert not np.array_equal(px["A"], px["right.A"])


def test_the_first_listed_view_is_the_default_and_all_reads_the_files_views(stereo):
    job = job_file(stereo, "rl", ["right", "left"], "out/rl/shot.####.exr")
    assert run_job(load_job(job)).exit_code == 0
    assert tuple(spec_of(stereo / "out" / "rl" / "shot.1002.exr").channelnames) == ("A", "left.A")
    one = stereo / "out" / "plain" / "one"
    if not (one / "shot.left.1001.exr").exists():
        one_view_mattes(stereo, "plain")
    assert_views_match(stereo / "out" / "rl", one, ("right", "left"))
    job = job_file(stereo, "all", "all", "out/all/shot.####.exr")
    assert run_job(load_job(job)).exit_code == 0
    assert_views_match(stereo / "out" / "all", one, ("left", "right"))  # the plate's own order


def test_a_layered_rgba_matte_keeps_every_channel_in_its_view(stereo):
    extra = {"output": {"channel": "matte.A", "rgba": True}}
    job = job_file(stereo, "layered", ["left", "right"], "out/layered/shot.####.exr", **extra)
    assert run_job(load_job(job)).exit_code == 0
    one = one_view_mattes(stereo, "layered", **extra)
    names = spec_of(stereo / "out" / "layered" / "shot.1001.exr").channelnames
    # matte.A would be in no view: the default view's layered channels carry its name too.
    assert sorted(names) == sorted(f"matte.{v}.{c}" for v in SEEDS for c in "RGBA")
    assert_views_match(stereo / "out" / "layered", one["left"], ("left", "right"))


def test_keyframes_are_propagated_per_view_with_the_temporal_stage(stereo):
    extra = {"trimap": {"mode": "keyframes", "path": "keys/shot.%V.####.png"}, "temporal": {"enabled": True}}
    job = load_job(job_file(stereo, "keys", ["left", "right"], "out/keys/shot.####.exr", **extra))
    report = propagate_job(job)
    assert report.exit_code == 0 and report.done == list(FRAMES)
    written = sorted(p.name for p in (stereo / "out" / "keys" / "trimaps").iterdir())
    assert written == sorted(f"shot.{v}.propagated.{f}.png" for v in SEEDS for f in FRAMES)
    assert run_job(job).exit_code == 0
    one = one_view_mattes(stereo, "keys", **extra)
    assert_views_match(stereo / "out" / "keys", one["left"], ("left", "right"))
    # Each view's propagated trimaps are the bytes a job of that view alone propagates.
    for view in SEEDS:
        propagate_job(load_job(stereo / f"keys_{view}.yaml"))
        for f in FRAMES:
            name = f"shot.{view}.propagated.{f}.png"
            assert (stereo / "out/keys/trimaps" / name).read_bytes() == (stereo / "out/keys/one/trimaps" / name).read_bytes()


def test_skip_existing_keeps_the_file_of_every_view_and_redoes_another_jobs(stereo, tmp_path):
    root = tmp_path / "shot"
    shutil.copytree(stereo, root, ignore=shutil.ignore_patterns("out", "*.yaml"))
    job = load_job(job_file(root, "both", ["left", "right"], "out/shot.####.exr", output={"skip_existing": True}))
    assert run_job(job).done == list(FRAMES)
    before = (root / "out" / "shot.1001.exr").read_bytes()
    again = run_job(job)
    assert again.done == [] and set(again.skipped) == set(FRAMES)
    other = load_job(job_file(root, "rl", ["right", "left"], "out/shot.####.exr", output={"skip_existing": True}))
    assert run_job(other).done == list(FRAMES)  # made by another job: redone
    assert (root / "out" / "shot.1001.exr").read_bytes() != before


def test_validate_counts_each_frame_once_and_names_the_view_that_fails(stereo, tmp_path, capsys):
    root = tmp_path / "shot"
    shutil.copytree(stereo, root, ignore=shutil.ignore_patterns("out", "*.yaml"))
    job = job_file(root, "both", ["left", "right"], "out/shot.####.exr")
    check = pipeline_for(load_job(job)).check()
    assert (check.count("done"), check.count("failed"), check.total) == (3, 0, 3)
    (root / "trimaps" / "shot.right.1002.png").unlink()
    check = pipeline_for(load_job(job)).check()
    assert (check.count("done"), check.count("failed")) == (2, 1)
    assert main(["validate", str(job)]) == 1
    err = capsys.readouterr().err
    assert "frame 1002 would fail: view right: trimap missing:" in err and "shot.right.1002.png" in err
    report = run_job(load_job(job))
    assert report.done == [1001, 1003] and report.failed[1002].startswith("view right: trimap missing:")


def test_views_the_plate_lacks_or_a_mono_plate_under_all_stop_with_exit_2(stereo, tmp_path, capsys):
    job = job_file(stereo, "centre", ["left", "centre"], "out/centre/shot.####.exr")
    for command in (["validate"], ["run", "--dry-run"], ["run"]):
        assert main([command[0], str(job), *command[1:]]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "no view 'centre'" in err[0] and "views: left, right" in err[0], err
    assert not (stereo / "out" / "centre").exists()
    mono = tmp_path / "mono"
    (mono / "plates").mkdir(parents=True)
    shutil.copy(make_shot010(tmp_path / "m", frames=[1001], width=W, height=H).plates.replace("####", "1001"),
                mono / "plates" / "shot.1001.exr")
    shutil.copytree(stereo / "trimaps", mono / "trimaps")
    shutil.copy(stereo / "tiny.safetensors", mono)
    job = job_file(mono, "all", "all", "out/shot.####.exr")
    with pytest.raises(JobError, match=r"all\.yaml:\d+: plate\.view: all: .*shot\.1001\.exr names no views"):
        load_job(job)
    assert main(["run", str(job)]) == 2


def test_views_with_other_data_windows_fail_that_frame(stereo, tmp_path):
    root = tmp_path / "shot"
    (root / "plates").mkdir(parents=True)
    for f in FRAMES:
        for view, dx in (("left", 0), ("right", 2)):
            rgb, _ = read_image(stereo / "plates" / f"shot.{f}.exr", view=view)
            spec = oiio.ImageSpec(W, H, 3, oiio.HALF)
            spec.x = dx if f == 1002 else 0  # frame 1002's right eye has another data window
            buf = oiio.ImageBuf(spec)
            buf.set_pixels(oiio.ROI(spec.x, spec.x + W, 0, H), rgb)
            assert buf.write(str(root / "plates" / f"shot.{view}.{f}.exr"))
    shutil.copytree(stereo / "trimaps", root / "trimaps")
    shutil.copy(stereo / "tiny.safetensors", root)
    job = job_file(root, "both", ["left", "right"], "out/shot.####.exr", plate={"path": "plates/shot.%V.####.exr"})
    report = run_job(load_job(job))
    assert report.done == [1001, 1003]
    assert "other data or display windows" in report.failed[1002] and "shot.right.1002.exr" in report.failed[1002]
    assert not (root / "out" / "shot.1002.exr").exists()


def test_chunks_on_local_workers_give_the_bytes_of_one_run(stereo, tmp_path):
    root = tmp_path / "shot"
    shutil.copytree(stereo, root, ignore=shutil.ignore_patterns("out", "*.yaml"))
    one = job_file(root, "one", ["left", "right"], "out/one/shot.####.exr")
    assert run_job(load_job(one)).exit_code == 0
    farm = job_file(root, "farm", ["left", "right"], "out/farm/shot.####.exr")
    assert main(["submit", str(farm), "--farm", "local", "--workers", "2", "--threads", "1", "--quiet"]) == 0
    assert load_job(one).job_hash == load_job(farm).job_hash  # only where the files go differs
    for f in FRAMES:
        name = f"shot.{f}.exr"
        assert (root / "out" / "one" / name).read_bytes() == (root / "out" / "farm" / name).read_bytes()

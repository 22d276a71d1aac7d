"""Job files: schema, line-numbered errors, paths, environment variables, file checks, hash."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from vfxmatte.checkpoint import save_checkpoint
from vfxmatte.errors import JobError
from vfxmatte.examples import make_shot010
from vfxmatte.jobs import KeyframesTrimap, MaskTrimap, SequenceTrimap, has_frame_token, load_job, parse_job
from vfxmatte.model import build_model

GOOD = """\
version: 1
shot: shot010
plate:
  path: plates/shot010.####.exr
  frames: 1001-1003
  colorspace: acescg
trimap:
  mode: sequence
  path: trimaps/shot010.####.png
model:
  checkpoint: tiny.safetensors
  device: cpu
output:
  path: out/shot010.####.exr
  compression: zip
"""


@pytest.fixture(scope="module")
def shot_dir(tmp_path_factory) -> Path:
    """A folder with a 3-frame example shot and a tiny checkpoint, laid out as GOOD expects."""
    root = tmp_path_factory.mktemp("shot")
    make_shot010(root, frames=range(1001, 1004), width=48, height=32)
    save_checkpoint(root / "tiny.safetensors", build_model("tiny"))
    return root


def write(folder: Path, text: str, name: str = "job.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def error_of(path: Path, check: bool = False) -> str:
    with pytest.raises(JobError) as info:
        load_job(path, check=check)
    return str(info.value)


def test_good_job_loads_with_defaults_and_resolved_paths(shot_dir):
    job = load_job(write(shot_dir, GOOD))
    assert job.shot == "shot010" and job.plate.frame_list == [1001, 1002, 1003]
    assert job.plate.path == str(shot_dir / "plates" / "shot010.####.exr")
    assert isinstance(job.trimap, SequenceTrimap) and job.trimap.tolerance == 0.1
    assert job.output.channel == "A" and job.output.rgba is False and job.model.tile_size == 1408 and job.model.overlap == 512
    assert job.color.config is None and job.plate.missing == "error"


def test_relative_paths_resolve_against_the_job_folder_not_the_cwd(shot_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    job = load_job(write(shot_dir, GOOD))
    assert Path(job.output.path) == shot_dir / "out" / "shot010.####.exr"
    assert Path(job.model.checkpoint) == shot_dir / "tiny.safetensors"


def test_unknown_key_is_reported_with_its_line_and_key_path(tmp_path):
    text = GOOD.replace("  colorspace: acescg\n", "  colorspace: acescg\n  colourspace: acescg\n")
    assert error_of(write(tmp_path, text)).startswith(f"{tmp_path / 'job.yaml'}:7: plate.colourspace: unknown key")


def test_bad_enum_reports_line_and_choices(tmp_path):
    msg = error_of(write(tmp_path, GOOD.replace("compression: zip", "compression: lzw")))
    assert msg == f"{tmp_path / 'job.yaml'}:15: output.compression: Input should be 'zip', 'dwaa' or 'piz'"


@pytest.mark.parametrize(
    "old,new,where",
    [
        ("device: cpu", "device: cpu\n  tile_size: '512'", ":13: model.tile_size: Input should be a valid integer"),
        ("shot: shot010", "shot: 010", ":2: shot: Input should be a valid string"),
        ("frames: 1001-1003", "frames: 1001-", ":5: plate.frames: invalid frame range"),
        ("device: cpu", "device: gpu", ":12: model.device: Input should be 'auto', 'cpu', 'cuda'"),
        ("out/shot010.####.exr", "out/shot010.####.png", ":14: output.path: output must be an OpenEXR"),
        ("version: 1", "version: 2", ":1: version: Input should be 1"),
        ("device: cpu", "device: cpu\n  tta: mirror", ":13: model.tta: Input should be 'none' or 'flip'"),
        ("device: cpu", "device: cpu\n  sparse: sometimes", ":13: model.sparse: Input should be a valid boolean"),
    ],
)
def test_wrong_types_and_values_name_key_and_line(tmp_path, old, new, where):
    assert where in error_of(write(tmp_path, GOOD.replace(old, new)))


def test_missing_required_key_is_named(tmp_path):
    text = GOOD.replace("  path: out/shot010.####.exr\n", "")
    assert ":13: output.path: required key is missing" in error_of(write(tmp_path, text))


def test_every_problem_is_listed_and_the_message_is_one_line(tmp_path):
    text = GOOD.replace("compression: zip", "compression: lzw").replace("device: cpu", "device: gpu")
    with pytest.raises(JobError) as info:
        load_job(write(tmp_path, text), check=False)
    assert len(info.value.errors) == 2 and "\n" not in str(info.value)
    assert "(and 1 more error(s))" in str(info.value)


def test_duplicate_key_is_an_error(tmp_path):
    text = GOOD.replace("  compression: zip\n", "  compression: zip\n  compression: piz\n")
    assert ":16: output.compression: duplicate key (first set on line 15)" in error_of(write(tmp_path, text))


def test_yaml_syntax_error_names_the_line(tmp_path):
    assert ":3: invalid YAML" in error_of(write(tmp_path, "version: 1\nshot: [a\nplate: {\n"))


KEYFRAMES = GOOD.replace("mode: sequence", "mode: keyframes\n  frames: '1040,1001,990'")


def test_keyframes_mode_reads_frames_in_any_order_and_defaults_mirror_the_propagation_settings(tmp_path):
    from vfxmatte.propagate import PropagationSettings

    job = load_job(write(tmp_path, KEYFRAMES), check=False)
    tri = job.trimap
    assert isinstance(tri, KeyframesTrimap) and tri.keyframe_list == [1040, 1001, 990]
    assert tri.propagation.settings() == PropagationSettings()
    assert tri.propagation.cache is None
    assert job.propagated_trimaps == str(tmp_path / "out" / "trimaps" / "shot010.propagated.####.png")
    # without frames the keyframes are the files on disk
    assert load_job(write(tmp_path, GOOD.replace("mode: sequence", "mode: keyframes")), check=False).trimap.keyframe_list is None


def test_propagation_options_are_validated_with_lines(tmp_path):
    text = KEYFRAMES.replace("  path: trimaps/", "  propagation:\n    preset: slow\n    max_distance: -1\n  path: trimaps/")
    with pytest.raises(JobError) as info:
        load_job(write(tmp_path, text), check=False)
    assert info.value.errors == [
        f"{tmp_path / 'job.yaml'}:11: trimap.propagation.preset: Input should be 'ultrafast', 'fast' or 'medium'",
        f"{tmp_path / 'job.yaml'}:12: trimap.propagation.max_distance: Input should be greater than or equal to 0",
    ]
    unknown = KEYFRAMES.replace("  path: trimaps/", "  propagation:\n    band_growth: 1.0\n  path: trimaps/")
    assert ":11: trimap.propagation.band_growth: unknown key" in error_of(write(tmp_path, unknown))


def test_propagated_pattern_may_not_overwrite_the_keyframes(tmp_path):
    # %04d names the same files as the keyframes' ####
    text = KEYFRAMES.replace("  path: trimaps/", "  propagation:\n    out: trimaps/shot010.%04d.png\n  path: trimaps/")
    msg = error_of(write(tmp_path, text))
    assert ":11: trimap.propagation.out: the propagated trimaps" in msg and "would overwrite trimap.path" in msg


def test_propagated_pattern_must_be_png_and_may_not_be_the_plate(tmp_path):
    text = KEYFRAMES.replace("  path: trimaps/", "  propagation:\n    out: prop/shot.####.exr\n  path: trimaps/")
    assert ":11: trimap.propagation.out: propagated trimaps are 8-bit PNG" in error_of(write(tmp_path, text))
    png_plate = KEYFRAMES.replace("plates/shot010.####.exr", "plates/shot010.####.png").replace(
        "  path: trimaps/", "  propagation:\n    out: plates/shot010.####.png\n  path: trimaps/"
    )
    assert ":11: trimap.propagation.out: the propagated trimaps" in error_of(write(tmp_path, png_plate))
    assert "would overwrite plate.path" in error_of(write(tmp_path, png_plate))


def test_keyframes_path_must_be_a_sequence(tmp_path):
    msg = error_of(write(tmp_path, KEYFRAMES.replace("trimaps/shot010.####.png", "trimaps/key.png")))
    assert ":10: trimap.path: sequence pattern" in msg and "no frame token" in msg


def test_mask_propagation_keys_need_missing_propagate_and_a_sequence(tmp_path):
    mask = GOOD.replace("mode: sequence", "mode: mask").replace("trimaps/shot010", "roto/shot010")
    job = load_job(write(tmp_path, mask.replace("mode: mask", "mode: mask\n  missing: propagate\n  frames: 1001-1100x10")), check=False)
    assert job.trimap.propagated and job.trimap.keyframe_list == list(range(1001, 1101, 10))
    plain = load_job(write(tmp_path, mask), check=False)
    assert not plain.trimap.propagated and plain.trimap.missing == "error"
    msg = error_of(write(tmp_path, mask.replace("mode: mask", "mode: mask\n  frames: 1001-1100x10")))
    assert ":9: trimap.frames: needs missing: propagate" in msg
    still = mask.replace("roto/shot010.####.png", "roto/still.png").replace("mode: mask", "mode: mask\n  missing: propagate")
    assert "trimap.path: missing: propagate needs a mask sequence pattern" in error_of(write(tmp_path, still))


def test_job_hash_covers_the_propagation_settings(tmp_path):
    base = load_job(write(tmp_path, KEYFRAMES), check=False).job_hash
    tuned = KEYFRAMES.replace("  path: trimaps/", "  propagation:\n    occlusion_px: 2.0\n  path: trimaps/")
    assert load_job(write(tmp_path, tuned), check=False).job_hash != base
    same = KEYFRAMES.replace("  path: trimaps/", "  propagation:\n    occlusion_px: 1.0\n  path: trimaps/")
    assert load_job(write(tmp_path, same), check=False).job_hash == base


def test_listed_keyframes_must_exist_on_disk(shot_dir):
    text = GOOD.replace("mode: sequence", "mode: keyframes\n  frames: 1001,1500")
    msg = error_of(write(shot_dir, text, "kf.yaml"), check=True)
    assert ":9: trimap.frames: keyframe 1500 missing:" in msg and "shot010.1500.png" in msg
    none = GOOD.replace("mode: sequence", "mode: keyframes").replace("trimaps/shot010", "trimaps/nothing")
    assert "trimap.path: no keyframes of" in error_of(write(shot_dir, none, "kf.yaml"), check=True)


def test_unknown_trimap_mode_lists_modes(tmp_path):
    msg = error_of(write(tmp_path, GOOD.replace("mode: sequence", "mode: painted")))
    assert ":8: trimap.mode: Input should be 'sequence', 'mask' or 'keyframes'" in msg


def test_mask_mode_fields_and_errors_use_the_written_keys(tmp_path):
    text = GOOD.replace("mode: sequence", "mode: mask\n  band_px: 8").replace("trimaps/shot010", "roto/shot010")
    job = load_job(write(tmp_path, text), check=False)
    assert isinstance(job.trimap, MaskTrimap) and job.trimap.band_px == 8
    bad = error_of(write(tmp_path, text.replace("band_px: 8", "band_px: -1")))
    assert ":9: trimap.band_px: Input should be greater than or equal to 0" in bad


def test_overlap_must_leave_a_tile_core(tmp_path):
    text = GOOD.replace("device: cpu", "device: cpu\n  tile_size: 512\n  overlap: 256")
    assert ":14: model.overlap: overlap 256 must be less than half of tile_size 512" in error_of(write(tmp_path, text))


def test_environment_variables_expand_in_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("SHOT_ROOT", "/show/seq/shot010")
    text = GOOD.replace("path: plates/", "path: $SHOT_ROOT/plates/").replace("path: out/", "path: ${SHOT_ROOT}/out/")
    job = load_job(write(tmp_path, text), check=False)
    assert job.plate.path == "/show/seq/shot010/plates/shot010.####.exr"
    assert job.output.path == "/show/seq/shot010/out/shot010.####.exr"


def test_unset_environment_variable_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    msg = error_of(write(tmp_path, GOOD.replace("path: plates/", "path: ${NOT_SET_ANYWHERE}/plates/")))
    assert ":4: plate.path: environment variable $NOT_SET_ANYWHERE is not set" in msg


def test_houdini_frame_token_and_dollar_escape_are_not_variables(tmp_path):
    text = GOOD.replace("out/shot010.####.exr", "out/$$cache/shot010.$F4.exr")
    job = load_job(write(tmp_path, text), check=False)
    assert job.output.path.endswith("out/$cache/shot010.$F4.exr")


def test_missing_checkpoint_file_is_reported_at_its_key(shot_dir, tmp_path):
    text = GOOD.replace("tiny.safetensors", "nope.safetensors")
    msg = error_of(write(shot_dir, text, "missing_ckpt.yaml"), check=True)
    assert ":11: model.checkpoint:" in msg and "nope.safetensors: checkpoint not found" in msg


def test_plate_with_no_frames_on_disk_is_reported(shot_dir):
    msg = error_of(write(shot_dir, GOOD.replace("plates/shot010", "plates/shot999"), "no_plate.yaml"), check=True)
    assert ":4: plate.path: no frames of" in msg


def test_unknown_colourspace_is_reported_with_suggestions(shot_dir):
    msg = error_of(write(shot_dir, GOOD.replace("colorspace: acescg", "colorspace: acesgc"), "bad_cs.yaml"), check=True)
    assert ":6: plate.colorspace: unknown colourspace 'acesgc'" in msg


def test_missing_job_file(tmp_path):
    assert error_of(tmp_path / "nope.yaml") == f"{tmp_path / 'nope.yaml'}: job file not found"


def test_yaml_tags_cannot_run_code(tmp_path):
    text = GOOD.replace("shot: shot010", "shot: !!python/object/apply:os.system ['echo pwned']")
    assert "invalid YAML" in error_of(write(tmp_path, text))


def test_job_hash_ignores_formatting_but_not_values(tmp_path):
    a = load_job(write(tmp_path, GOOD, "a.yaml"), check=False)
    flow = yaml.safe_dump(yaml.safe_load(GOOD), default_flow_style=True)
    b = load_job(write(tmp_path, "# comment\n" + flow, "b.yaml"), check=False)
    c = load_job(write(tmp_path, GOOD.replace("zip", "piz"), "c.yaml"), check=False)
    assert a.job_hash == b.job_hash != c.job_hash and len(a.job_hash) == 64


def test_parse_job_from_text_and_frame_token_detection(tmp_path):
    job = parse_job(GOOD, base_dir=tmp_path)
    assert job.plate.path.startswith(str(tmp_path))
    assert has_frame_token("a/shot.####.exr") and has_frame_token("shot.%04d.exr") and has_frame_token("s.$F4.exr")
    assert not has_frame_token("roto/still_mask.exr")


def test_shipped_example_job_validates_against_the_schema():
    job = load_job(Path(__file__).parents[1] / "jobs" / "shot010.yaml", check=False)
    assert job.shot == "shot010" and job.plate.frame_list == list(range(1001, 1025))
    assert job.model.checkpoint.endswith("starter") or job.model.checkpoint == "starter"


def test_shipped_keyframes_job_reads_what_the_keyframes_example_writes():
    from vfxmatte.propagate import PropagationSettings

    root = Path(__file__).parents[1]
    job = load_job(root / "jobs" / "shot010_keyframes.yaml", check=False)
    assert isinstance(job.trimap, KeyframesTrimap) and job.plate.frame_list == list(range(1001, 1025))
    # where `vfxmatte example shot010 --keyframes` writes (its default folder: examples/shot010)
    assert job.trimap.path == str(root / "examples" / "shot010" / "keyframes" / "shot010.####.png")
    assert job.plate.path == str(root / "examples" / "shot010" / "plates" / "shot010.####.exr")
    assert job.trimap.propagation.settings() == PropagationSettings()


def test_tile_size_must_fit_the_checkpoints_stride(shot_dir):
    text = GOOD.replace("  device: cpu\n", "  device: cpu\n  tile_size: 1248\n  overlap: 256\n")
    assert load_job(write(shot_dir, text, "tile32.yaml"), check=True).model.tile_size == 1248
    msg = error_of(write(shot_dir, text.replace("1248", "1250"), "tile_odd.yaml"), check=True)
    assert ":13: model.tile_size: 1250 is not a multiple of 32" in msg and "(tiny)" in msg


def test_unreadable_checkpoint_is_reported_at_its_key_before_any_frame(shot_dir):
    (shot_dir / "junk.safetensors").write_bytes(b"not a checkpoint")
    msg = error_of(write(shot_dir, GOOD.replace("tiny.safetensors", "junk.safetensors"), "junk.yaml"), check=True)
    assert ":11: model.checkpoint:" in msg and "not a readable safetensors checkpoint" in msg


# --------------------------------------------------------------------------- outputs never land on inputs


@pytest.mark.parametrize(
    "output",
    [
        "plates/shot010.####.exr",  # the plate pattern itself
        "plates/shot010.%04d.exr",
        "plates/shot010.@@@@.exr",
        "plates/shot010.$F4.exr",
        "plates/shot010.#####.exr",  # other padding: frames from 10000 on are the same files
        "out/../plates/shot010.####.exr",
        "./plates/./shot010.%04d.exr",
        "{root}/plates/shot010.####.exr",  # absolute
        "link/shot010.####.exr",  # a symlink to the plates' folder
    ],
)
def test_output_may_not_overwrite_the_plates_in_any_spelling(tmp_path, output):
    (tmp_path / "plates").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "plates", target_is_directory=True)
    text = GOOD.replace("out/shot010.####.exr", output.format(root=tmp_path))
    msg = error_of(write(tmp_path, text))
    assert msg.startswith(f"{tmp_path / 'job.yaml'}:14: output.path: the mattes would overwrite plate.path (")
    assert "\n" not in msg


@pytest.mark.parametrize(
    "trimap,output",
    [
        ("mode: sequence\n  path: trimaps/shot010.####.exr", "trimaps/shot010.%04d.exr"),  # EXR trimaps
        ("mode: sequence\n  path: trimaps/still.1001.exr", "trimaps/still.####.exr"),  # a still trimap
        ("mode: mask\n  path: roto/shot010.####.exr", "roto/../roto/shot010.$F4.exr"),  # roto masks
        ("mode: keyframes\n  path: keys/shot010.@@@@.exr", "keys/shot010.####.exr"),  # keyframes
    ],
)
def test_output_may_not_overwrite_trimaps_masks_or_keyframes(tmp_path, trimap, output):
    text = GOOD.replace("mode: sequence\n  path: trimaps/shot010.####.png", trimap).replace("out/shot010.####.exr", output)
    assert "output.path: the mattes would overwrite trimap.path (" in error_of(write(tmp_path, text))


def test_outputs_beside_the_inputs_are_fine(tmp_path):
    for output in ("plates/shot010_matte.####.exr", "plates/shot010.####.matte.exr", "trimaps/shot010.####.exr"):
        job = load_job(write(tmp_path, GOOD.replace("out/shot010.####.exr", output)), check=False)
        assert job.output.path.endswith(Path(output).name)


# --------------------------------------------------------------------------- bounded YAML

LAUGHS = "\n".join(
    ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]" for i in range(8)]
    + ["version: 1", "shot: [*i, *i, *i]"]
)


def test_a_billion_laughs_job_is_refused_at_once(tmp_path):
    import time

    t0 = time.perf_counter()
    msg = error_of(write(tmp_path, LAUGHS))
    assert time.perf_counter() - t0 < 0.5
    assert msg.startswith(f"{tmp_path / 'job.yaml'}:") and "aliases expand to more than 10000 values" in msg
    assert "\n" not in msg


def test_recursive_aliases_and_huge_or_deep_documents_are_refused(tmp_path):
    assert "an alias refers to a node that contains it" in error_of(write(tmp_path, "version: &v [1, *v]\n"))
    assert "characters; at most 1048576 are read" in error_of(write(tmp_path, GOOD + "#" * (1 << 20)))
    assert "nested too deeply" in error_of(write(tmp_path, "version: " + "[" * 5000 + "]" * 5000 + "\n"))


def test_ordinary_anchors_and_aliases_still_work(tmp_path):
    aliased = GOOD.replace("frames: 1001-1003", "frames: &range 1001-1003").replace(
        "  path: trimaps/shot010.####.png", "  path: trimaps/shot010.####.png\n  frames: *range"
    ).replace("mode: sequence", "mode: keyframes")
    assert load_job(write(tmp_path, aliased), check=False).trimap.keyframe_list == [1001, 1002, 1003]


# --------------------------------------------------------------------------- job hash: what makes the pixels


@pytest.mark.parametrize(
    "old,new",
    [
        ("colorspace: acescg", "colorspace: lin_rec709"),
        ("mode: sequence", "mode: sequence\n  tolerance: 0.05"),
        ("device: cpu", "device: cpu\n  tile_size: 512\n  overlap: 128"),
        ("device: cpu", "device: cpu\n  precision: fp32"),
        ("compression: zip", "compression: piz"),
        ("path: plates/shot010.####.exr", "path: plates_v2/shot010.####.exr"),
        ("trimaps/shot010.####.png", "trimaps_v2/shot010.####.png"),
        ("checkpoint: tiny.safetensors", "checkpoint: other.safetensors"),
        ("shot: shot010", "shot: shot020"),  # written into every matte
    ],
)
def test_job_hash_changes_with_what_makes_the_mattes(tmp_path, old, new):
    base = load_job(write(tmp_path, GOOD), check=False).job_hash
    assert load_job(write(tmp_path, GOOD.replace(old, new)), check=False).job_hash != base


@pytest.mark.parametrize(
    "old,new",
    [
        ("compression: zip", "compression: zip\n  skip_existing: true"),
        ("device: cpu", "device: cuda:1"),
        ("frames: 1001-1003", "frames: 1001-1100"),
        ("out/shot010.####.exr", "elsewhere/v2/shot010.####.exr"),
    ],
)
def test_job_hash_leaves_out_what_leaves_the_mattes_alone(tmp_path, old, new):
    base = load_job(write(tmp_path, GOOD), check=False).job_hash
    assert load_job(write(tmp_path, GOOD.replace(old, new)), check=False).job_hash == base


def test_a_remounted_shot_keeps_its_job_hash(tmp_path, monkeypatch):
    # One shot tree seen at two mount points (a symlink and the real folder), with its paths
    # written relative to the job and absolute through a variable.
    real = tmp_path / "mnt" / "projA" / "shot010"
    real.mkdir(parents=True)
    (tmp_path / "net").symlink_to(tmp_path / "mnt", target_is_directory=True)
    text = GOOD.replace("path: plates/", "path: $SHOT_ROOT/plates/")
    monkeypatch.setenv("SHOT_ROOT", str(real))
    hashes = {load_job(write(real, text), check=False).job_hash}
    monkeypatch.setenv("SHOT_ROOT", str(tmp_path / "net" / "projA" / "shot010"))
    hashes.add(load_job(tmp_path / "net" / "projA" / "shot010" / "job.yaml", check=False).job_hash)
    moved = tmp_path / "archive" / "shot010"
    moved.mkdir(parents=True)
    monkeypatch.setenv("SHOT_ROOT", str(moved))
    hashes.add(load_job(write(moved, text), check=False).job_hash)
    assert len(hashes) == 1


def test_output_may_not_replace_the_files_plate_frames_link_to(tmp_path):
    # plates/ holds symlinks to renders/: writing renders/shot010.####.exr would change the plates.
    (tmp_path / "renders").mkdir()
    (tmp_path / "plates").mkdir()
    for f in (1001, 1002):
        (tmp_path / "renders" / f"shot010.{f}.exr").write_bytes(b"plate")
        (tmp_path / "plates" / f"shot010.{f}.exr").symlink_to(tmp_path / "renders" / f"shot010.{f}.exr")
    text = GOOD.replace("out/shot010.####.exr", "renders/shot010.%04d.exr")
    assert "output.path: the mattes would overwrite plate.path (" in error_of(write(tmp_path, text))
    still = GOOD.replace("trimaps/shot010.####.png", "trimaps/still.png").replace("out/shot010.####.exr", "renders/t.####.exr")
    (tmp_path / "trimaps").mkdir()
    (tmp_path / "trimaps" / "still.png").symlink_to(tmp_path / "renders" / "t.1001.exr")
    assert "output.path: the mattes would overwrite trimap.path (" in error_of(write(tmp_path, still))
    fine = GOOD.replace("out/shot010.####.exr", "renders/matte.####.exr")
    assert load_job(write(tmp_path, fine), check=False).output.path.endswith("matte.####.exr")


def test_job_hash_covers_the_temporal_stage_but_not_its_flow_cache(tmp_path):
    base = load_job(write(tmp_path, GOOD), check=False).job_hash  # the stage is off by default
    off = load_job(write(tmp_path, GOOD + "temporal: {enabled: false}\n"), check=False).job_hash
    on = load_job(write(tmp_path, GOOD + "temporal: {enabled: true}\n"), check=False).job_hash
    wider = load_job(write(tmp_path, GOOD + "temporal: {enabled: true, radius: 2}\n"), check=False).job_hash
    cached = load_job(write(tmp_path, GOOD + "temporal: {enabled: true, cache: flows}\n"), check=False).job_hash
    assert off == base and cached == on and len({base, on, wider}) == 3

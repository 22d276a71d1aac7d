"""A job built from a Read node's knob values is the job vfxmatte reads, frame for frame."""

import pytest
import yaml

from vfxmatte.jobs import parse_job
from vfxmatte_nuke import job as jb
from vfxmatte_nuke.colorspace import STOCK_CONFIG, ColorState
from vfxmatte_nuke.errors import GizmoError

PLATE = "/shots/sh010/plates/sh010_plate.####.exr"


def read(**kw):
    values = dict(file=PLATE, first=1001, last=1100, colorspace="default (linear)", format=(2048, 1152),
                  bbox=(0, 0, 2048, 1152), name="Read1")
    values.update(kw)
    return jb.ReadState(**values)


def build(settings=None, state=None, **read_kw):
    return jb.build_job(settings or {}, read(**read_kw), state or ColorState(), script_dir="/shots/sh010/comp")


def parsed(plan):
    """The job as vfxmatte's own loader reads the gizmo's YAML (schema, no disk checks)."""
    return parse_job(jb.job_yaml(plan.job), base_dir="/shots/sh010/comp/vfxmatte", source=plan.path)


def test_a_plain_read_gives_a_job_vfxmatte_accepts():
    plan = build({"trimap_file": "/shots/sh010/trimaps/sh010.%04d.png"})
    job = parsed(plan)
    assert job.shot == "sh010_plate"
    assert job.plate.path == PLATE and job.plate.frames == "1001-1100"
    assert job.plate.colorspace == "lin_rec709" and job.color.config == STOCK_CONFIG
    assert job.trimap.mode == "sequence" and job.trimap.path == "/shots/sh010/trimaps/sh010.%04d.png"
    assert job.output.path == "/shots/sh010/comp/vfxmatte/out/sh010_plate.matte.####.exr"
    assert plan.path == "/shots/sh010/comp/vfxmatte/sh010_plate.yaml"
    assert plan.render == [] and plan.offset == 0


def test_timeline_knobs_become_file_frames_through_the_read_s_offset():
    # the plate's files are 1001-1100, shown from timeline frame 1 ("start at 1")
    plan = build({"frames": "11-20", "keyframes": "1,50", "trimap_mode": "keyframes"}, frame_mode="start at", frame="1")
    assert plan.offset == -1000
    assert plan.job["plate"]["frames"] == "1011-1020"
    assert plan.job["trimap"] == {"mode": "keyframes", "path": "/shots/sh010/comp/vfxmatte/keyframes/sh010_plate.####.png",
                                  "frames": "1001,1050"}
    # rendered on timeline frames 1 and 50, into files numbered as the plate's
    assert plan.render == [(1, "/shots/sh010/comp/vfxmatte/keyframes/sh010_plate.1001.png"),
                           (50, "/shots/sh010/comp/vfxmatte/keyframes/sh010_plate.1050.png")]
    assert parsed(plan).trimap.keyframe_list == [1001, 1050]


def test_a_roto_becomes_a_mask_job_with_the_edge_width():
    plan = build({"trimap_mode": "mask", "edge_width": 20})
    assert plan.job["trimap"] == {"mode": "mask", "path": "/shots/sh010/comp/vfxmatte/roto/sh010_plate.####.png", "band_px": 20}
    assert plan.render_kind == "mask" and len(plan.render) == 100
    keyed = build({"trimap_mode": "mask", "keyframes": "1001,1100"})
    assert keyed.job["trimap"]["missing"] == "propagate" and [f for f, _ in keyed.render] == [1001, 1100]
    assert parsed(keyed).trimap.propagated


def test_keyframe_mode_without_keyframes_or_files_says_which_knob():
    with pytest.raises(GizmoError, match="keyframes knob"):
        build({"trimap_mode": "keyframes"})


def test_stereo_plates_need_a_view_and_name_it_in_every_written_path():
    with pytest.raises(GizmoError, match="view knob"):
        build(file="/shots/sh010/plates/sh010.%V.####.exr")
    plan = build({"view": "left", "trimap_mode": "keyframes", "keyframes": "1001"}, file="/shots/sh010/plates/sh010.%V.####.exr")
    assert plan.job["output"]["path"].endswith("/out/sh010.%V.matte.####.exr")
    assert plan.render == [(1001, "/shots/sh010/comp/vfxmatte/keyframes/sh010.left.1001.png")]
    job = parsed(plan)
    assert job.plate.view == "left" and job.plate.path == "/shots/sh010/plates/sh010.left.####.exr"
    assert job.output.path.endswith("/out/sh010.left.matte.####.exr")


def test_knobs_reach_the_job():
    plan = build({"model": "/models/mine.safetensors", "tile_size": 512, "device": "cuda", "precision": "fp16",
                  "channel": "matte.A", "layer": "beauty", "colorspace": "ACEScg", "chunk_size": 4,
                  "farm_executable": "/opt/vfxmatte/bin/vfxmatte", "shot": "sh010", "trimap_file": "/t/sh010.####.png"},
                 on_error="nearest frame")
    job = parsed(plan)
    assert (job.model.checkpoint, job.model.tile_size, job.model.device, job.model.precision) == (
        "/models/mine.safetensors", 512, "cuda", "fp16")
    assert 2 * job.model.overlap < 512
    assert job.output.channel == "matte.A" and job.plate.layer == "beauty" and job.plate.missing == "hold"
    assert job.plate.colorspace == "ACEScg" and job.farm.chunk_size == 4
    assert job.farm.executable == "/opt/vfxmatte/bin/vfxmatte" and job.shot == "sh010"


def test_a_write_node_can_set_the_output():
    plan = jb.build_job({"trimap_file": "/t/x.####.png"}, read(), ColorState(), "/c", output_write_file="/renders/sh010/matte.%04d.exr")
    assert plan.job["output"]["path"] == "/renders/sh010/matte.%04d.exr"


def test_relative_paths_resolve_against_the_script_and_need_a_saved_script():
    plan = build({"trimap_file": "trimaps/t.####.png", "output_file": "../out/m.####.exr"})
    assert plan.job["trimap"]["path"] == "/shots/sh010/comp/trimaps/t.####.png"
    assert plan.job["output"]["path"] == "/shots/sh010/out/m.####.exr"
    with pytest.raises(GizmoError, match="save the script"):
        jb.build_job({}, read(), ColorState(), script_dir="")


def test_a_still_plate_is_refused():
    with pytest.raises(GizmoError, match="sequences"):
        build(file="/shots/sh010/plates/still.exr")


@pytest.mark.parametrize("value", [
    "/shots/$SHOW/a b/'q' \"d\"/x.####.exr",
    "C:\\shots\\sh010\\x.####.exr",
    "/shots/ünï/c\u00f6de/x.####.exr",
    "/shots/{a}: #b/x.####.exr",
])
def test_yaml_text_keeps_every_path_exactly(value):
    job = {"version": 1, "shot": "s", "plate": {"path": value, "frames": "1-2"}, "model": {"tile_size": 0, "tta": None},
           "farm": {"tags": ["a", "b"], "x": True}}
    loaded = yaml.safe_load(jb.job_yaml(job))
    assert loaded["plate"]["path"] == value.replace("$", "$$")  # job files expand $VAR; $$ is a literal $
    assert loaded["model"] == {"tile_size": 0, "tta": None} and loaded["farm"] == {"tags": ["a", "b"], "x": True}


def test_a_dollar_in_a_path_arrives_unexpanded_in_vfxmatte():
    plan = build({"trimap_file": "/t/$HOME/t.####.png"}, file="/shots/$HOME/p.####.exr")
    job = parsed(plan)
    assert job.plate.path == "/shots/$HOME/p.####.exr" and job.trimap.path == "/t/$HOME/t.####.png"


def test_a_roto_rendered_as_the_gizmo_writes_it_is_read_by_vfxmatte_as_its_alpha(tmp_path):
    import numpy as np
    import OpenImageIO as oiio

    from vfxmatte.io.image import read_mask
    from vfxmatte_nuke.result import write_settings

    settings = write_settings("mask", str(tmp_path / "roto.1001.png"))
    assert (settings["file_type"], settings["channels"], settings["raw"]) == ("png", "rgba", True)
    rgba = np.zeros((8, 8, 4), np.uint8)  # a Roto: black RGB, the shape in alpha
    rgba[2:6, 2:6, 3] = 255
    buf = oiio.ImageBuf(oiio.ImageSpec(8, 8, 4, oiio.UINT8))
    buf.set_pixels(oiio.ROI(0, 8, 0, 8), rgba)
    assert buf.write(settings["file"])
    assert np.array_equal(read_mask(settings["file"]) > 0.5, rgba[..., 3] > 0)


def test_with_overscan_only_keyframes_are_rendered_from_nuke():
    overscan = dict(bbox=(-64, -32, 2112, 1184))  # 64 px left and right, 32 top and bottom
    assert jb.ReadState(PLATE, 1001, 1100, format=(2048, 1152), **overscan).data_window == (-64, -32, 2111, 1183)
    with pytest.raises(GizmoError, match="overscan"):
        build({}, **overscan)
    with pytest.raises(GizmoError, match="overscan"):
        build({"trimap_mode": "mask"}, **overscan)
    assert build({"trimap_mode": "keyframes", "keyframes": "1001"}, **overscan).render
    assert build({"trimap_mode": "mask", "keyframes": "1001"}, **overscan).render
    assert build({"trimap_file": "/t/sh010.####.exr"}, **overscan).render == []


@pytest.mark.parametrize("plate, script, expected_out", [
    ("C:/shots/sh010/plates/sh010.%04d.exr", "C:/shots/sh010/comp", "C:/shots/sh010/comp/vfxmatte/out/sh010.matte.####.exr"),
    ("\\\\server\\shots\\sh010.####.exr", "//server/comp", "//server/comp/vfxmatte/out/sh010.matte.####.exr"),
])
def test_windows_paths_stay_absolute_with_nukes_forward_slashes(plate, script, expected_out):
    plan = jb.build_job({"trimap_file": "trimaps/t.####.png"}, read(file=plate), ColorState(), script_dir=script)
    assert plan.job["output"]["path"] == expected_out
    assert plan.job["trimap"]["path"] == script + "/trimaps/t.####.png"
    assert "\\" not in plan.job["plate"]["path"]

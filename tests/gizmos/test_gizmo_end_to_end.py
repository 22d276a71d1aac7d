"""From a Read node over the example shot to a comped matte, through the gizmo's Nuke layer
(with the stand-in ``nuke``) and the real ``vfxmatte`` command: the job it writes passes
``vfxmatte validate``, the run's JSON log drives the progress task, and the Read node it
creates matches the files the run wrote (pattern, frames, raw, channel, format and bbox)."""

import shutil
import sys
from pathlib import Path

import OpenImageIO as oiio
import pytest

from gizmo_files import GIZMO_FILE
from vfxmatte_nuke import frames as fr

VFXMATTE = str(Path(sys.executable).with_name("vfxmatte"))


@pytest.fixture
def comp(fake_nuke, tmp_path, example_shot, overscan_shot, tiny_model):
    """A saved script with Read -> Dot -> VfxMatte over the example plates with overscan
    (ACEScg, shown from timeline frame 1), the Root on Nuke's ACES 1.2 config."""
    shot, _ = example_shot
    plates, trimaps = overscan_shot
    nuke = fake_nuke
    nuke.root()["name"].setValue(str(tmp_path / "comp" / "sh010_comp_v001.nk"))
    nuke.root()["colorManagement"].setValue("OCIO")
    nuke.root()["OCIO_config"].setValue("aces_1.2")
    read = nuke.nodes.Read(file=plates, first=1001, last=1003, origfirst=1001, origlast=1003,
                           frame_mode="start at", frame="1", colorspace="ACES - ACEScg")
    spec = oiio.ImageInput.open(plates.replace("####", "1001")).spec()
    read._format = nuke.Format(spec.full_width, spec.full_height)
    read._bbox = [spec.x, spec.full_height - (spec.y + spec.height), spec.width, spec.height]  # x, y, w, h (y up)
    dot = nuke.nodes.Dot()
    dot.setInput(0, read)
    gizmo = nuke.create_gizmo(str(GIZMO_FILE))
    gizmo.setInput(0, dot)
    for name, value in (("executable", VFXMATTE), ("model", str(tiny_model)), ("device", "cpu"), ("precision", "fp32"),
                        ("tile_size", 0), ("trimap_file", trimaps)):
        gizmo[name].setValue(value)
    return nuke, gizmo, read, shot


def _tagged(nuke, role):
    return [n for n in nuke.allNodes() if n.knob("vfxmatte_tag") is not None and n.knob("vfxmatte_tag").value().endswith("/" + role)]


def test_write_job_writes_a_job_that_vfxmatte_validate_accepts(comp):
    nuke, gizmo, _, _ = comp
    import vfxmatte_nuke.nodes as v

    thread = v.write_job(gizmo)
    assert thread is not None, nuke.state()["messages"]
    thread.join(300)
    job = Path(nuke.root()["name"].value()).parent / "vfxmatte" / "shot010.yaml"
    assert job.is_file()
    assert nuke.state()["messages"] == []
    assert gizmo["status"].value() == "job OK: 3 frames, headers of 3 checked"


def test_run_in_background_leaves_a_read_and_copy_that_match_the_written_mattes(comp):
    nuke, gizmo, plate, shot = comp
    import vfxmatte_nuke.nodes as v

    v.run_background(gizmo).join(600)
    assert nuke.state()["messages"] == [], nuke.state()["messages"]
    out = Path(nuke.root()["name"].value()).parent / "vfxmatte" / "out"
    assert gizmo["status"].value() == "3 frames done -> %s" % (out / "shot010.matte.####.exr")
    progress = [value for _, kind, value in nuke.state()["progress"] if kind == "progress"]
    assert progress[-1] == 100 and sorted(progress) == progress
    assert "_finish" in nuke.state()["main_thread_calls"]

    (read,), (copy,) = _tagged(nuke, "matte"), _tagged(nuke, "copy")
    pattern = read["file"].value()
    assert pattern == str(out / "shot010.matte.####.exr")
    first, last = read["first"].value(), read["last"].value()
    files = sorted(out.glob("shot010.matte.*.exr"))
    assert [f.name for f in files] == [Path(fr.frame_path(pattern, f)).name for f in range(first, last + 1)]
    # the plate Read shows file 1001 at timeline 1: so does the matte Read
    assert (read["frame_mode"].value(), read["frame"].value()) == ("offset", "-1000")
    assert read["raw"].value() is True  # an alpha is data: no colour conversion
    plate_window = fr.data_window_from_bbox(
        (plate.bbox()[0], plate.bbox()[1], plate.bbox()[0] + plate.bbox()[2], plate.bbox()[1] + plate.bbox()[3]),
        plate.format().height())
    for path in files:
        spec = oiio.ImageInput.open(str(path)).spec()
        channel = copy["from0"].value()
        assert channel == "rgba.alpha" and list(spec.channelnames) == ["A"]  # Nuke reads A as rgba.alpha
        assert (spec.x, spec.y, spec.x + spec.width - 1, spec.y + spec.height - 1) == plate_window == (-8, -4, 199, 111)
        assert (spec.full_width, spec.full_height) == (plate.format().width(), plate.format().height())
        assert spec.format == oiio.HALF
    assert copy.input(0) is gizmo and copy.input(1) is read and copy["to0"].value() == "rgba.alpha"

    # running again updates the same two nodes
    count = len(nuke.allNodes())
    v.update_result_nodes(gizmo, v.plan(gizmo))
    assert len(nuke.allNodes()) == count and _tagged(nuke, "matte") == [read]


def test_keyframe_trimaps_painted_in_nuke_are_rendered_and_propagated(comp, example_shot):
    nuke, gizmo, _, _ = comp
    _, keys = example_shot
    import vfxmatte_nuke.nodes as v

    painted = nuke.nodes.Roto()
    gizmo.setInput(1, painted)

    def render(write, timeline_frame):  # what Nuke's Write does: here, the painted keyframe
        assert write.input(0) is painted and write["raw"].value() is True and write["file_type"].value() == "png"
        shutil.copy(keys.trimaps.replace("####", str(timeline_frame + 1000)), write["file"].value())

    nuke.state()["on_execute"] = render
    for name, value in (("trimap_mode", "keyframes"), ("trimap_file", ""), ("keyframes", "1,3")):
        gizmo[name].setValue(value)
    v.propagate_trimaps(gizmo).join(600)
    assert nuke.state()["messages"] == [], nuke.state()["messages"]
    assert [(e[1], Path(e[3]["file"]).name) for e in nuke.state()["executed"]] == [(1, "shot010.1001.png"), (3, "shot010.1003.png")]
    assert not any(n.Class() == "Write" for n in nuke.allNodes())  # the temporary Write is gone
    (trimaps,) = _tagged(nuke, "trimaps")
    written = sorted(Path(trimaps["file"].value()).parent.glob("*.png"))
    assert [p.name for p in written] == ["shot010.propagated.%d.png" % f for f in (1001, 1002, 1003)]


def test_a_bad_setting_is_the_tools_one_line_message(comp):
    nuke, gizmo, _, _ = comp
    import vfxmatte_nuke.nodes as v

    gizmo["colorspace"].setValue("NotAColourspace")
    v.write_job(gizmo).join(300)
    (message,) = nuke.state()["messages"]
    assert message.startswith("vfxmatte: ") and "plate.colorspace" in message and "NotAColourspace" in message
    assert "\n" not in message and "Traceback" not in message


def test_submit_to_farm_writes_the_opencue_job_through_vfxmatte_submit(comp):
    nuke, gizmo, _, _ = comp
    import vfxmatte_nuke.nodes as v

    gizmo["chunk_size"].setValue(2)
    v.submit_farm(gizmo).join(300)  # "send to farm" off: the job spec only, no Cuebot
    assert nuke.state()["messages"] == [], nuke.state()["messages"]
    spec = Path(nuke.root()["name"].value()).parent / "vfxmatte" / "out" / "farm" / "shot010.opencue.xml"
    assert gizmo["status"].value() == "opencue job written: %s" % spec
    assert spec.is_file() and "--frames" in spec.read_text()


def test_the_progress_task_s_cancel_stops_the_run(comp):
    nuke, gizmo, _, _ = comp
    import vfxmatte_nuke.nodes as v

    nuke.state()["cancel"].set()  # the user presses cancel on the progress task
    v.run_background(gizmo).join(300)
    assert gizmo["status"].value().startswith("cancelled")
    assert nuke.state()["messages"] == [] and _tagged(nuke, "matte") == []

"""The Nuke layer with the stand-in ``nuke``: knob callbacks, errors shown as one message, and
the nodes a run leaves found again by their tag."""

import pytest

from gizmo_files import GIZMO_FILE
from vfxmatte_nuke.job import JobPlan


@pytest.fixture
def gizmo(fake_nuke, tmp_path):
    nuke = fake_nuke
    nuke.root()["name"].setValue(str(tmp_path / "comp.nk"))
    read = nuke.nodes.Read(file=str(tmp_path / "plates" / "sh010.####.exr"), first=1001, last=1010, colorspace="linear")
    node = nuke.create_gizmo(str(GIZMO_FILE))
    node.setInput(0, read)
    return node


def test_the_trimap_knobs_follow_the_mode(fake_nuke, gizmo):
    import vfxmatte_nuke.nodes as v

    for mode, keyframes, edge in (("sequence", False, False), ("keyframes", True, False), ("mask", True, True)):
        gizmo["trimap_mode"].setValue(mode)
        fake_nuke.state().update(this=gizmo, this_knob=gizmo["trimap_mode"])
        v.knob_changed()
        assert (gizmo["keyframes"].visible, gizmo["edge_width"].visible) == (keyframes, edge), mode


def test_no_executable_is_one_message_and_no_run(fake_nuke, gizmo, monkeypatch):
    import vfxmatte_nuke.nodes as v

    monkeypatch.delenv("VFXMATTE_EXECUTABLE", raising=False)
    monkeypatch.setenv("PATH", "")
    gizmo["trimap_file"].setValue("/t/sh010.####.png")
    assert v.run_background(gizmo) is None
    (message,) = fake_nuke.state()["messages"]
    assert message.startswith("vfxmatte: vfxmatte executable not found: set the gizmo's executable knob")
    assert gizmo["status"].value() == message[len("vfxmatte: "):]


def test_a_gizmo_without_a_plate_read_says_so(fake_nuke, gizmo):
    import vfxmatte_nuke.nodes as v

    gizmo.setInput(0, fake_nuke.nodes.Dot())
    assert v.write_job(gizmo) is None
    assert "connect its plate input to a Read node" in fake_nuke.state()["messages"][0]


def test_rendering_needs_a_trimap_input(fake_nuke, gizmo):
    import vfxmatte_nuke.nodes as v

    gizmo["trimap_mode"].setValue("keyframes")
    gizmo["keyframes"].setValue("1001")
    assert v.render_trimaps(gizmo) is None
    (message,) = fake_nuke.state()["messages"]
    assert "connect the trimap input" in message and gizmo["status"].value() in message
    gizmo["trimap_file"].setValue("/t/sh010.####.png")
    assert v.render_trimaps(gizmo) == 0 and gizmo["status"].value().startswith("nothing to render")


def test_result_nodes_are_found_by_their_tag_after_a_rename(fake_nuke, gizmo):
    import vfxmatte_nuke.nodes as v

    plan = JobPlan({"plate": {"frames": "1001-1010"}, "output": {"path": "/o/sh010.matte.####.exr", "channel": "matte.A"}},
                   "/o/j.yaml", 5, [], "trimap")
    read, copy = v.update_result_nodes(gizmo, plan)
    assert read.name() == "VfxMatte1_matte" and copy["from0"].value() == "matte.alpha"
    assert (read["first"].value(), read["last"].value(), read["frame"].value()) == (1001, 1010, "5")
    read.setName("my_matte")
    plan.job["output"]["path"] = "/o/v2/sh010.matte.####.exr"
    again = v.update_result_nodes(gizmo, plan)
    assert again == (read, copy) and read["file"].value() == "/o/v2/sh010.matte.####.exr"
    other = fake_nuke.create_gizmo(str(GIZMO_FILE), name="VfxMatte2")
    assert v.update_result_nodes(other, plan)[0] is not read  # another gizmo has its own nodes


def test_a_write_node_named_on_the_gizmo_sets_the_output(fake_nuke, gizmo):
    import vfxmatte_nuke.nodes as v

    fake_nuke.nodes.Write(name="MatteOut", file="/renders/sh010/sh010.matte.####.exr")
    gizmo["trimap_file"].setValue("/t/sh010.####.png")
    gizmo["output_write"].setValue("MatteOut")
    assert v.plan(gizmo).output == "/renders/sh010/sh010.matte.%04d.exr"
    gizmo["output_write"].setValue("Nope")
    assert v.write_job(gizmo) is None
    assert "output from Write names 'Nope', which is not a Write node" in fake_nuke.state()["messages"][0]


def test_a_copy_pasted_gizmo_gets_its_own_nodes(fake_nuke, gizmo):
    import vfxmatte_nuke.nodes as v

    plan = JobPlan({"plate": {"frames": "1001-1010"}, "output": {"path": "/o/a.####.exr", "channel": "A"}},
                   "/o/j.yaml", 0, [], "trimap")
    read, _ = v.update_result_nodes(gizmo, plan)
    pasted = fake_nuke.create_gizmo(str(GIZMO_FILE), name="VfxMatte2")
    pasted["vfxmatte_id"].setValue(gizmo["vfxmatte_id"].value())  # what copy and paste does
    assert v.update_result_nodes(gizmo, plan)[0] is read  # the original keeps its nodes, whichever runs first
    assert v.update_result_nodes(pasted, plan)[0] is not read
    assert v.update_result_nodes(gizmo, plan)[0] is read

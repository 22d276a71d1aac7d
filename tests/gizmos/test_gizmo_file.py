"""VfxMatte.gizmo is well-formed Nuke TCL, declares every knob the Python reads or writes, and
its buttons call functions that exist."""

import ast

import pytest

import gizmo_tcl
from gizmo_files import GIZMO_FILE, GIZMOS
from vfxmatte_nuke import job, result

NODES = GIZMOS / "python" / "vfxmatte_nuke" / "nodes.py"


@pytest.fixture(scope="module")
def spec():
    return gizmo_tcl.read_gizmo(str(GIZMO_FILE))


def test_the_gizmo_is_a_group_with_a_plate_and_a_trimap_input(spec):
    assert spec.class_name == "VfxMatte"
    inputs = {k["name"][0]: int(k.get("number", ["0"])[0]) for c, k in spec.nodes if c == "Input"}
    assert inputs == {"plate": 0, "trimap": 1}
    assert [c for c, _ in spec.nodes].count("Output") == 1


@pytest.mark.parametrize("text, problem", [
    ("Gizmo {\n name X\n addUserKnob {3 a}\n}\n Output {\n  name O\n }\n", "end_group"),
    ("Gizmo {\n name X\n addUserKnob {3 a}\n Output {\n  name O\n }\nend_group\n", "unbalanced"),
    ("Gizmo {\n name X\n}\n Output {\n  name O\n }\n}\nend_group\n", "without its"),
    ("Gizmo {\n name X\n addUserKnob {3 a}\n addUserKnob {1 a}\n}\n Output {\n  name O\n }\nend_group\n", "twice"),
    ("Gizmo {\n name X\n b 3\n}\n Output {\n  name O\n }\nend_group\n", "neither declared"),
    ("Gizmo {\n name X\n}\n Output {\n  xpos 0\n }\nend_group\n", "without a name"),
    ("Gizmo {\n name X\n}\n Input {\n  name I\n  number 1\n }\n Output {\n  name O\n }\nend_group\n", "Input numbers"),
    ("Gizmo {\n name X\n addUserKnob {99 a}\n}\n Output {\n  name O\n }\nend_group\n", "unknown knob type"),
    ("Gizmo {\n name \"X\n}\nend_group\n", "unterminated"),
])
def test_the_checker_refuses_broken_structure(tmp_path, text, problem):
    path = tmp_path / "bad.gizmo"
    path.write_text(text)
    with pytest.raises(gizmo_tcl.TclError, match=problem):
        gizmo_tcl.read_gizmo(str(path))


def test_every_knob_of_the_python_is_declared_with_its_default(spec):
    for name, default in job.KNOBS.items():
        knob = spec.knob(name)
        assert knob is not None, "the gizmo lacks knob %s" % name
        assert spec.defaults.get(name, knob.default) == default, name
    for name in job.BUTTONS:
        assert spec.knob(name).type_id == 22, name  # PyScript_Knob
    assert spec.knob("trimap_mode").attrs["M"] == list(job.TRIMAP_MODES)
    assert spec.knob("vfxmatte_id").flags == ["+INVISIBLE"]


def test_enumeration_choices_are_what_the_job_and_cli_accept(spec):
    assert spec.knob("device").attrs["M"] == ["auto", "cpu", "cuda", "mps"]
    assert spec.knob("precision").attrs["M"] == ["auto", "fp32", "fp16", "bf16"]
    assert spec.knob("farm").attrs["M"] == ["opencue", "deadline", "local"]


def _knob_literals(path):
    """(receiver, knob name) of every ``x["name"]`` and ``x.knob("name")`` with a literal name,
    and the names passed to the local ``value()`` helper (Root knobs)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
            found.append((getattr(node.value, "id", "?"), node.slice.value))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("knob", "value"):
                owner = getattr(getattr(func, "value", None), "id", "root" if name == "value" else "?")
                found.append((owner, node.args[0].value))
    return found


def test_every_knob_the_nuke_layer_touches_exists(spec):
    standard = {"read": set(result.READ_KNOBS), "write": set(result.WRITE_KNOBS), "root": set(result.ROOT_KNOBS)}
    literals = _knob_literals(NODES)
    assert ("gizmo", "trimap_mode") in literals and ("read", "first") in literals  # the scan sees them
    for owner, name in literals:
        if owner in ("gizmo", "node") and name not in standard["read"] | set(result.COPY_KNOBS):
            assert name in spec.names, "nodes.py uses gizmo knob %r, which VfxMatte.gizmo lacks" % name
        elif owner in standard:
            assert name in standard[owner], "nodes.py uses %s knob %r" % (owner, name)
        elif owner == "root":
            assert name in standard["root"]


def test_the_settings_applied_to_nukes_nodes_use_their_documented_knobs():
    plan = job.JobPlan({"plate": {"frames": "1001-1003"}, "output": {"path": "/o/s.####.exr", "channel": "A"}},
                       "/o/j.yaml", 0, [], "trimap")
    assert set(result.matte_read_settings(plan)) <= set(result.READ_KNOBS)
    assert set(result.copy_settings("matte.A")) <= set(result.COPY_KNOBS)
    assert set(result.write_settings("trimap", "/t.png")) <= set(result.WRITE_KNOBS)
    assert set(result.write_settings("mask", "/t.png")) <= set(result.WRITE_KNOBS)


def _scripts(spec):
    yield "knobChanged", dict((k, v) for _, k, v in spec.body)["knobChanged"][0]
    for knob in spec.knobs:
        if knob.type_id == 22:
            yield knob.name, knob.attrs["T"]


def test_buttons_and_callbacks_call_functions_of_the_nuke_layer(spec):
    tree = ast.parse(NODES.read_text())
    exported = set(ast.literal_eval(next(
        n.value for n in tree.body if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "__all__")))
    scripts = dict(_scripts(spec))
    assert set(scripts) == {"knobChanged"} | set(job.BUTTONS)
    for name, script in scripts.items():
        calls = [n for n in ast.walk(ast.parse(script, feature_version=(3, 7))) if isinstance(n, ast.Call)]
        called = {c.func.attr for c in calls if isinstance(c.func, ast.Attribute) and getattr(c.func.value, "id", "") == "v"}
        assert called and called <= exported, (name, called)
        assert "import vfxmatte_nuke.nodes as v" in script


def test_init_registers_the_python_folder_and_menu_makes_the_gizmo(fake_nuke, spec):
    for script in ("init.py", "menu.py"):
        exec(compile((GIZMOS / script).read_text(), script, "exec"), {"__name__": "__main__"})
    (path, to_sys_path), = fake_nuke.state()["plugin_paths"]
    assert (GIZMOS / path).resolve() == (GIZMOS / "python").resolve() and to_sys_path
    assert (GIZMOS / "python" / "vfxmatte_nuke" / "nodes.py").is_file()
    create = "nuke.createNode('%s')" % spec.class_name
    assert fake_nuke.state()["menus"] == {"Nuke/vfxmatte/VfxMatte": create, "Nodes/vfxmatte/VfxMatte": create}
    assert GIZMO_FILE.stem == spec.class_name  # Nuke finds a gizmo by its file's name

"""Everything under gizmos/ runs inside Nuke 13-16 (Python 3.7-3.11), never meets vfxmatte's
libraries, and keeps ``nuke`` to one module."""

import ast
import glob
import io
import os
import re
import shutil
import subprocess
import tokenize

import pytest

from gizmo_files import GIZMO_FILE, GIZMOS

SOURCES = sorted(GIZMOS.rglob("*.py"))
PACKAGE = GIZMOS / "python" / "vfxmatte_nuke"

#: names newer than Python 3.7 that parse under feature_version=(3, 7) but fail on it
_NEWER_ATTRIBUTES = {"removeprefix", "removesuffix", "is_relative_to", "with_stem", "isqrt", "prod",
                     "cache", "bit_count", "pairwise", "batched"}
_NEWER_TYPING = {"Literal", "Protocol", "TypedDict", "Final", "Annotated", "TypeAlias", "ParamSpec", "Self"}
_NEWER_MODULES = {"tomllib", "zoneinfo", "graphlib", "importlib.metadata"}
_BUILTIN_GENERICS = {"list", "dict", "tuple", "set", "frozenset", "type"}


def test_there_is_gizmo_python_to_check():
    names = {p.name for p in SOURCES}
    assert {"init.py", "menu.py", "nodes.py", "job.py", "colorspace.py"} <= names


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(GIZMOS)))
def test_parses_as_python_3_7(path):
    ast.parse(path.read_text(), str(path), feature_version=(3, 7))


def _newer_constructs(source):
    """Constructs that ``feature_version=(3, 7)`` lets through but Python 3.7 cannot run."""
    found = []
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.NamedExpr):
            found.append("walrus")
        elif type(node).__name__ == "Match":
            found.append("match")
        elif isinstance(node, ast.Attribute) and node.attr in _NEWER_ATTRIBUTES:
            found.append("." + node.attr)
        elif isinstance(node, ast.ImportFrom) and node.module == "typing":
            found += ["typing." + a.name for a in node.names if a.name in _NEWER_TYPING]
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += ["import " + n for n in names if n in _NEWER_MODULES]
        elif isinstance(node, (ast.BinOp, ast.AugAssign)) and isinstance(node.op, ast.BitOr):
            # dict | dict (3.9) and X | Y types (3.10): no bitwise or on gizmo code at all
            found.append("| operator")
        elif isinstance(node, (ast.arguments,)) and node.posonlyargs:
            found.append("positional-only parameters")
        elif isinstance(node, ast.Call) and any(k.arg == "strict" for k in node.keywords) and getattr(node.func, "id", "") == "zip":
            found.append("zip(strict=)")
        for ann in _annotations(node):
            for sub in ast.walk(ann):
                if isinstance(sub, ast.Subscript) and getattr(sub.value, "id", "") in _BUILTIN_GENERICS:
                    found.append("%s[...] annotation" % sub.value.id)
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.STRING and re.match(r"^[rbuRBU]*[fF]", tok.string):
            if re.search(r"\{[^{}]*?[^=!<>]=\s*(![rsa])?(:[^{}]*)?\}", tok.string):
                found.append("f-string '=' specifier")
    return found


def _annotations(node):
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        args = node.args
        for a in args.args + args.kwonlyargs + [args.vararg, args.kwarg]:
            if a is not None and a.annotation is not None:
                yield a.annotation
        if node.returns is not None:
            yield node.returns
    elif isinstance(node, ast.AnnAssign):
        yield node.annotation


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(GIZMOS)))
def test_uses_nothing_newer_than_python_3_7(path):
    assert _newer_constructs(path.read_text()) == []


@pytest.mark.parametrize("snippet, construct", [
    ("if (n := 3): pass", "walrus"),
    ("match x:\n    case 1: pass", "match"),
    ("a = {} | {}", "| operator"),
    ("def f(x: int | None): pass", "| operator"),
    ("def f(x: list[int]): pass", "list[...] annotation"),
    ("'abc'.removeprefix('a')", ".removeprefix"),
    ("from typing import Literal", "typing.Literal"),
    ("x = 1\nf'{x=}'", "f-string '=' specifier"),
    ("def f(a, /): pass", "positional-only parameters"),
])
def test_the_checker_finds_newer_constructs(snippet, construct):
    assert construct in _newer_constructs(snippet)


def _imports(path):
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(GIZMOS)))
def test_never_imports_vfxmatte_or_its_libraries(path):
    # a pip-installed torch meeting the torch Nuke bundles crashes Nuke: the gizmo runs the command
    forbidden = {"vfxmatte", "torch", "numpy", "OpenImageIO", "PyOpenColorIO", "yaml", "pydantic", "cv2"}
    assert not (_imports(path) & forbidden)


def test_only_the_nuke_layer_and_the_startup_files_import_nuke():
    importing = {str(p.relative_to(GIZMOS)) for p in SOURCES if "nuke" in _imports(p)}
    assert importing == {"init.py", "menu.py", "python/vfxmatte_nuke/nodes.py"}


def _python37():
    """A Python 3.7 interpreter (Nuke 13's), if this machine has one: $NUKE_PYTHON, pyenv's, or
    python3.7 on the PATH."""
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates = [os.environ.get("NUKE_PYTHON", "")] + sorted(glob.glob(os.path.join(root, "versions", "3.7*", "bin", "python3")))
    candidates.append(shutil.which("python3.7") or "")
    for exe in filter(None, candidates):
        try:
            out = subprocess.run([exe, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True, timeout=30)
        except OSError:
            continue
        if out.returncode == 0 and out.stdout.strip() == "(3, 7)":
            return exe
    return None


_SMOKE = """
import sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import fake_nuke
sys.modules["nuke"] = fake_nuke
from vfxmatte_nuke import colorspace, command, job, result
import vfxmatte_nuke.nodes as nodes

read = job.ReadState("/s/p.%04d.exr", 1001, 1003, frame_mode="start at", frame="1", colorspace="ACES - ACEScg",
                     format=(192, 108), bbox=(0, 0, 192, 108))
plan = job.build_job({"trimap_mode": "keyframes", "keyframes": "1,3"}, read, colorspace.ColorState("OCIO", "aces_1.2"), "/s/c")
assert "frames: \\"1001,1003\\"" in job.job_yaml(plan.job)
assert result.matte_read_settings(plan)["frame"] == "-1000"
event = "import json; print(json.dumps({'event': 'done', 'frame': 1, 'index': 1, 'total': 1}))"
log = command.run_command([sys.executable, "-c", event])
assert log.exit_code == 0 and log.progress == 100, log.message()
gizmo = fake_nuke.create_gizmo(sys.argv[3])
gizmo["trimap_mode"].setValue("mask")
fake_nuke.state().update(this=gizmo, this_knob=gizmo["trimap_mode"])
nodes.knob_changed()
assert gizmo["edge_width"].visible
print("ok")
"""


def test_the_package_runs_on_a_real_python_3_7(tmp_path):
    exe = _python37()
    if exe is None:
        pytest.skip("no Python 3.7 interpreter here (set NUKE_PYTHON to one)")
    script = tmp_path / "smoke37.py"
    script.write_text(_SMOKE)
    here = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run([exe, str(script), str(GIZMOS / "python"), here, str(GIZMO_FILE)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr

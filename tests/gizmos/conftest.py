"""Fixtures of the gizmo tests: the gizmo's Python on sys.path (as Nuke's init.py puts it), a
stand-in ``nuke`` module for the Nuke layer, and a tiny example shot with a tiny model."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GIZMOS = ROOT / "gizmos"
GIZMO_FILE = GIZMOS / "VfxMatte.gizmo"
HERE = Path(__file__).resolve().parent

# what gizmos/init.py's nuke.pluginAddPath("./python") does for Nuke
if str(GIZMOS / "python") not in sys.path:
    sys.path.insert(0, str(GIZMOS / "python"))
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # gizmo_tcl, fake_nuke


@pytest.fixture
def fake_nuke(monkeypatch):
    """The stand-in ``nuke`` module, fresh, as ``sys.modules['nuke']``; vfxmatte_nuke.nodes is
    imported against it (and dropped again after the test)."""
    spec = importlib.util.spec_from_file_location("nuke", HERE / "fake_nuke.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setitem(sys.modules, "nuke", module)
    monkeypatch.delitem(sys.modules, "vfxmatte_nuke.nodes", raising=False)
    yield module
    sys.modules.pop("vfxmatte_nuke.nodes", None)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    from vfxmatte.checkpoint import save_checkpoint
    from vfxmatte.model import build_model

    return save_checkpoint(tmp_path_factory.mktemp("model") / "tiny.safetensors", build_model("tiny"))


@pytest.fixture(scope="session")
def example_shot(tmp_path_factory):
    """shot010, frames 1001-1003 at 192x108, as ``vfxmatte example shot010 --frames 1001-1003
    --size 192x108`` writes it (plates, trimaps, truth), plus keyframe trimaps on 1001 and 1003."""
    from vfxmatte.examples import make_example

    root = tmp_path_factory.mktemp("example")
    shot = make_example("shot010", root / "shot010", frames=[1001, 1002, 1003], width=192, height=108)
    keys = make_example("shot010", root / "keys", frames=[1001, 1002, 1003], width=192, height=108, keyframes=[1001, 1003])
    return shot, keys

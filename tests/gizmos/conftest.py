"""Fixtures of the gizmo tests: the gizmo's Python on sys.path (as Nuke's init.py puts it), a
stand-in ``nuke`` module for the Nuke layer, and a tiny example shot with a tiny model."""

import importlib.util
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # gizmo_files, gizmo_tcl, fake_nuke

from gizmo_files import GIZMOS  # noqa: E402

# what gizmos/init.py's nuke.pluginAddPath("./python") does for Nuke
if str(GIZMOS / "python") not in sys.path:
    sys.path.insert(0, str(GIZMOS / "python"))


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


#: overscan of :func:`overscan_shot`'s plates: pixels left/right and top/bottom of the display window
PAD_X, PAD_Y = 8, 4


@pytest.fixture(scope="session")
def overscan_shot(example_shot, tmp_path_factory):
    """The example shot's plates with overscan (a data window of 8 px more on the left and right
    and 4 px more on top and bottom than the 192x108 display window, edge pixels repeated) and
    its trimaps padded to the data window with background: ``(plates, trimaps)`` patterns."""
    import numpy as np
    import OpenImageIO as oiio

    shot, _ = example_shot
    root = tmp_path_factory.mktemp("overscan")
    (root / "plates").mkdir()
    (root / "trimaps").mkdir()
    for frame in shot.frames:
        src = oiio.ImageBuf(shot.plates.replace("####", str(frame)))
        rgb = np.pad(src.get_pixels(oiio.FLOAT), ((PAD_Y, PAD_Y), (PAD_X, PAD_X), (0, 0)), mode="edge")
        spec = oiio.ImageSpec(rgb.shape[1], rgb.shape[0], 3, oiio.HALF)
        spec.x, spec.y = -PAD_X, -PAD_Y
        spec.full_x, spec.full_y, spec.full_width, spec.full_height = 0, 0, src.spec().full_width, src.spec().full_height
        out = oiio.ImageBuf(spec)
        out.set_pixels(oiio.ROI(spec.x, spec.x + spec.width, spec.y, spec.y + spec.height), rgb)
        assert out.write(str(root / "plates" / ("shot010.%d.exr" % frame)))
        tri = oiio.ImageBuf(shot.trimaps.replace("####", str(frame)))
        pixels = np.pad(tri.get_pixels(oiio.UINT8), ((PAD_Y, PAD_Y), (PAD_X, PAD_X), (0, 0)))
        tspec = oiio.ImageSpec(pixels.shape[1], pixels.shape[0], pixels.shape[2], oiio.UINT8)
        tout = oiio.ImageBuf(tspec)
        tout.set_pixels(oiio.ROI(0, tspec.width, 0, tspec.height), pixels)
        assert tout.write(str(root / "trimaps" / ("shot010.%d.png" % frame)))
    return str(root / "plates" / "shot010.####.exr"), str(root / "trimaps" / "shot010.####.png")

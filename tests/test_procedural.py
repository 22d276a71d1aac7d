"""vfxmatte.procedural: sub-pixel strands with true partial coverage, drawn from a seeded stream."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vfxmatte import examples, procedural
from vfxmatte.procedural import FlowField, Outline, StrandBatch, StrandCanvas, draw_strands, edge_alpha, grow_hair, over, value_noise


def _disk_field(h: int, w: int, cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return (1.0 - np.hypot(yy - cy, xx - cx) / r).astype(np.float32)


def _hair(seed: int, h: int = 96, w: int = 96) -> list[StrandBatch]:
    rng = np.random.default_rng(seed)
    field = _disk_field(h, w, h / 2, w / 2, 12.0)
    return grow_hair(rng, Outline(field), FlowField(rng, h, w, 30.0), 40.0, fur=False)


def _resolve(batches: list[StrandBatch], h: int = 96, w: int = 96, ss: int = 3) -> np.ndarray:
    canvas = StrandCanvas(h, w, ss)
    draw_strands(canvas, batches)
    return canvas.resolve()[0]


@pytest.mark.parametrize("width, opacity, coverage", [(0.4, 0.5, 0.2), (0.5, 0.6, 0.3), (0.2, 1.0, 1 / 3)])
def test_a_subpixel_strand_covers_a_fraction_of_each_pixel_it_crosses(width, opacity, coverage):
    """Partial coverage, not a blurred ramp: each column crossed by a horizontal strand sums to
    opacity x width (one canvas pixel, 1/ss px, at the narrowest)."""
    canvas = StrandCanvas(20, 40, 3)
    pts = np.array([[[4.0, 10.2], [36.0, 10.2]]], np.float32)
    canvas.draw(pts, np.array([width]), np.array([opacity]), np.array([1.0]))
    alpha, shade = canvas.resolve()
    columns = alpha[:, 8:32].sum(axis=0)
    np.testing.assert_allclose(columns, coverage, rtol=0.2)
    assert alpha.max() < 1.0 and alpha[:5].max() == 0.0
    np.testing.assert_allclose(shade[alpha > 0.01], 1.0, atol=1 / 7 + 0.02)  # 8 shade levels over 0..2


def test_nothing_drawn_resolves_to_zero_alpha_and_unit_shade():
    alpha, shade = StrandCanvas(8, 8, 3).resolve()
    assert not alpha.any() and np.all(shade == 1.0)


def test_grow_hair_is_a_pure_function_of_its_stream():
    a, b, c = _hair(5), _hair(5), _hair(6)
    assert len(a) == 2  # the locks, then the flyaways
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.points, y.points)
        np.testing.assert_array_equal(x.width, y.width)
        assert x.taper == y.taper
    assert not np.array_equal(a[0].points, c[0].points)


def test_hair_grows_out_of_the_outline_with_mostly_partial_coverage():
    batches = _hair(3)
    roots = batches[0].points[:, 0]
    dist = np.hypot(roots[:, 0] - 48, roots[:, 1] - 48)
    tips = batches[0].points[:, -1]
    tip_dist = np.hypot(tips[:, 0] - 48, tips[:, 1] - 48)
    # Rooted at the 12 px disk (a little inside, splayed around the lock), growing outward.
    assert abs(np.median(dist) - 12.0) < 1.5 and np.median(tip_dist) > np.median(dist) + 2.0
    alpha = _resolve(batches)
    drawn = alpha > 0
    assert drawn.sum() > 200
    assert ((alpha > 0) & (alpha < 0.9)).sum() > 0.5 * drawn.sum()  # dense only at the roots


def test_moving_strands_by_whole_pixels_moves_the_matte_by_whole_pixels():
    """What the example shot relies on to move its hair with the head from frame to frame."""
    batches = _hair(4)
    moved = [StrandBatch(b.points + np.float32([3, 2]), b.width, b.opacity, b.shade, b.taper) for b in batches]
    a, m = _resolve(batches), _resolve(moved)
    np.testing.assert_array_equal(m[2:, 3:], a[:-2, :-3])


def test_outline_normals_point_outward():
    field = _disk_field(64, 64, 30.0, 34.0, 15.0)
    out = Outline(field)
    d = out.points - np.float32([34.0, 30.0])
    assert len(out.points) > 60
    np.testing.assert_allclose(np.hypot(d[:, 0], d[:, 1]), 15.0, atol=1.5)
    cos = (d * out.normals).sum(-1) / np.hypot(d[:, 0], d[:, 1])
    assert cos.min() > 0.9


def test_outline_leaves_out_the_frame_edge():
    """A silhouette cut by the frame grows no hair along the cut."""
    field = _disk_field(40, 40, 40.0, 20.0, 15.0)  # a half disk standing on the bottom edge
    out = Outline(field)
    assert len(out.points) > 20 and out.points[:, 1].max() < 38


@pytest.mark.parametrize("scale", [1.0, 10.0])
def test_edge_alpha_is_a_ramp_softness_pixels_wide_whatever_the_field_scale(scale):
    x = np.arange(40, dtype=np.float32)
    field = np.tile(scale * (x - 20.0), (8, 1))
    a = edge_alpha(field, 2.0)
    row = a[4]
    assert row[20] == pytest.approx(0.5, abs=1e-3)
    assert row[18] == 0.0 and row[22] == 1.0
    np.testing.assert_allclose(row[19:22], [0.0, 0.5, 1.0], atol=1e-3)


def test_value_noise_is_seeded_smooth_and_about_unit_spread():
    a = value_noise(np.random.default_rng(2), 120, 160, 40.0, octaves=3)
    b = value_noise(np.random.default_rng(2), 120, 160, 40.0, octaves=3)
    assert a.shape == (120, 160) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert 0.3 < a.std() < 1.5
    assert np.abs(np.diff(a, axis=1)).mean() < 0.1 * a.std() * 4


def test_over_is_porter_duff_with_straight_colour():
    f1, f0 = np.full((2, 2, 3), 0.8, np.float32), np.full((2, 2, 3), 0.2, np.float32)
    a1, a0 = np.full((2, 2), 0.5, np.float32), np.ones((2, 2), np.float32)
    f, a = over((f1, a1), (f0, a0))
    np.testing.assert_allclose(a, 1.0)
    np.testing.assert_allclose(f, 0.5, atol=1e-3)  # half the top's colour over the bottom's
    f, a = over((f1, np.zeros((2, 2), np.float32)), (f0, np.zeros((2, 2), np.float32)))
    assert np.all(a == 0) and np.allclose(f, 0.8)  # colour stays defined where nothing covers


def test_the_example_shot_draws_hair_with_the_core_strand_code():
    """One implementation: the example shot has no strand code of its own."""
    assert examples.grow_hair is procedural.grow_hair
    assert examples.StrandCanvas is procedural.StrandCanvas
    assert not any(name.lower().startswith(("_strand", "_hair")) for name in vars(examples))
    assert math.isclose(examples._KNOWN_TOLERANCE, 0.5 / 255)


def test_procedural_and_the_example_shot_do_not_import_torch():
    import subprocess
    import sys

    code = "import sys, vfxmatte.procedural, vfxmatte.examples; print(any(m.startswith('torch') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"

"""vfxmatte.trimap: trimaps from a true alpha (paper §3.3, Eq. 2) and from a roto mask."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vfxmatte import trimap as tm
from vfxmatte.errors import TrimapError


def _matte(size: int = 64) -> np.ndarray:
    """A solid disk with a soft edge and one faint anti-aliased strand."""
    a = np.zeros((size, size), np.float32)
    cv2.circle(a, (size // 2, size // 2), size // 4, 1.0, -1, cv2.LINE_AA)
    a = cv2.GaussianBlur(a, (0, 0), 1.5)
    cv2.line(a, (2, 5), (size - 3, 9), 0.3, 1, cv2.LINE_AA)
    a[a < 1e-4] = 0.0
    a[a > 1 - 1e-4] = 1.0
    return a


def test_from_alpha_by_default_is_eq2():
    a = np.array([[0.0, 0.001, 0.5], [0.999, 1.0, 1.0]], np.float32)
    np.testing.assert_array_equal(tm.from_alpha(a), [[tm.BG, tm.UNKNOWN, tm.UNKNOWN], [tm.UNKNOWN, tm.FG, tm.FG]])


def test_from_alpha_tolerance_makes_near_known_values_known():
    a = np.array([[0.0, 0.001, 0.5, 0.999, 1.0]], np.float32)
    np.testing.assert_array_equal(tm.from_alpha(a, tolerance=0.002)[0], [tm.BG, tm.BG, tm.UNKNOWN, tm.FG, tm.FG])


@pytest.mark.parametrize("kernel", [1, 2, 5, 21])
def test_from_alpha_keeps_every_partial_pixel_unknown_and_never_contradicts_the_matte(kernel):
    a = _matte()
    t = tm.validate(tm.from_alpha(a, kernel=kernel))
    assert np.all(t[(a > 0) & (a < 1)] == tm.UNKNOWN)
    assert np.all(a[t == tm.FG] == 1.0) and np.all(a[t == tm.BG] == 0.0)


def test_from_alpha_band_grows_with_the_kernel_by_about_half_its_side_on_each_side():
    a = np.zeros((1, 80), np.float32)
    a[0, 40:] = 1.0
    a[0, 39] = 0.5  # a one-pixel edge
    a = np.repeat(a, 40, axis=0)
    widths = [int((tm.from_alpha(a, kernel=k)[20] == tm.UNKNOWN).sum()) for k in (1, 5, 11)]
    assert widths == [1, 1 + 2 * 2, 1 + 2 * 5]


def test_from_alpha_erosion_does_not_eat_known_regions_at_the_frame_edge():
    a = np.ones((20, 30), np.float32)
    assert np.all(tm.from_alpha(a, kernel=9) == tm.FG)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"alpha": np.zeros((4, 4, 3))}, "shape"), ({"tolerance": 0.5}, "tolerance"), ({"kernel": 0}, "kernel")],
)
def test_from_alpha_bad_inputs_raise_trimap_error(kwargs, match):
    args = {"alpha": np.zeros((4, 4), np.float32), **kwargs}
    with pytest.raises(TrimapError, match=match):
        tm.from_alpha(**args)


def test_ellipse_kernel_is_a_centred_disk():
    assert tm.ellipse_kernel(1).tolist() == [[1]]
    k = tm.ellipse_kernel(7)
    assert k.shape == (7, 7) and k[3].all() and k[:, 3].all() and k[0, 0] == 0 and k[6, 6] == 0


def test_from_mask_band_lies_on_both_sides_of_the_roto_edge():
    m = np.zeros((30, 60), np.float32)
    m[:, 30:] = 1.0
    t = tm.from_mask(m, band_px=4)
    row = t[15]
    assert np.all(row[:26] == tm.BG) and np.all(row[26:34] == tm.UNKNOWN) and np.all(row[34:] == tm.FG)
    np.testing.assert_array_equal(tm.from_mask(m, band_px=0), np.where(m > 0, tm.FG, tm.BG))


def test_from_mask_continues_a_roto_beyond_the_frame_edge():
    """Replicated border: a roto that touches the frame is not eroded from the edge."""
    m = np.ones((20, 20), np.float32)
    assert np.all(tm.from_mask(m, band_px=5) == tm.FG)


def test_from_mask_bad_inputs_raise_trimap_error():
    with pytest.raises(TrimapError, match="band"):
        tm.from_mask(np.zeros((4, 4)), band_px=-1)
    with pytest.raises(TrimapError, match="shape"):
        tm.from_mask(np.zeros((4, 4, 2)), band_px=2)

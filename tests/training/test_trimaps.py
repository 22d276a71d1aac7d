"""Paper §3.3 trimap generation: the properties the training data relies on."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from training.trimaps import (
    ALPHA_TOLERANCE,
    MorphStep,
    dual_trimaps,
    rough_trimap,
    semantic_trimap,
    tcp_step,
    tcp_trimap,
)
from vfxmatte.errors import TrimapError
from vfxmatte.trimap import BG, FG, UNKNOWN, validate


def _alpha(seed: int, size: int = 96) -> np.ndarray:
    """A matte with a solid core, a soft edge and thin partial strands."""
    rng = np.random.default_rng(seed)
    a = np.zeros((size, size), np.float32)
    c = tuple(int(v) for v in rng.integers(size // 4, 3 * size // 4, 2))
    cv2.circle(a, c, int(rng.integers(size // 8, size // 3)), 1.0, -1)
    a = cv2.GaussianBlur(a, (0, 0), float(rng.uniform(0.5, 3.0)))
    for _ in range(5):
        p = rng.integers(0, size, 4)
        cv2.line(a, (int(p[0]), int(p[1])), (int(p[2]), int(p[3])), float(rng.uniform(0.2, 0.9)), 1, cv2.LINE_AA)
    a[a < 1 / 510] = 0
    a[a > 1 - 1 / 510] = 1
    return a


def test_semantic_trimap_keeps_every_partial_pixel_unknown() -> None:
    for seed in range(60):
        alpha = _alpha(seed)
        t = semantic_trimap(alpha, np.random.default_rng(seed))
        validate(t)
        partial = (alpha > ALPHA_TOLERANCE) & (alpha < 1 - ALPHA_TOLERANCE)
        assert partial.any()
        assert np.all(t[partial] == UNKNOWN)
        # Known labels never contradict the matte.
        assert np.all(alpha[t == FG] >= 1 - ALPHA_TOLERANCE)
        assert np.all(alpha[t == BG] <= ALPHA_TOLERANCE)


def test_semantic_trimap_kernel_is_drawn_from_one_to_thirty() -> None:
    alpha = _alpha(0)
    drawn = []
    for seed in range(400):
        out: dict = {}
        semantic_trimap(alpha, np.random.default_rng(seed), out=out)
        drawn.append(out["kernel"])
    assert min(drawn) == 1 and max(drawn) == 30


def test_semantic_trimap_band_grows_with_kernel() -> None:
    alpha = _alpha(3)
    narrow = semantic_trimap(alpha, np.random.default_rng(0), kernel_range=(1, 1))
    wide = semantic_trimap(alpha, np.random.default_rng(0), kernel_range=(25, 25))
    assert np.all(wide[narrow == UNKNOWN] == UNKNOWN)
    assert (wide == UNKNOWN).sum() > (narrow == UNKNOWN).sum()


def test_rough_trimap_widens_the_band_within_its_kernel_range() -> None:
    drawn = []
    for seed in range(200):
        alpha = _alpha(seed % 20, size=160)
        sp = semantic_trimap(alpha, np.random.default_rng(seed))
        out: dict = {}
        rough = rough_trimap(sp, np.random.default_rng(seed), kernel_range=(15, 41), out=out)
        validate(rough)
        drawn.append(out["rough_kernel"])
        # Only known pixels become unknown: every unknown pixel of the paper's trimap stays so,
        # and known labels that survive are unchanged.
        assert np.all(rough[sp == UNKNOWN] == UNKNOWN)
        kept = rough != UNKNOWN
        assert np.array_equal(rough[kept], sp[kept])
        # The band grows by about half the kernel on each side: a pixel ~k/2 from the band is in it.
        dist = cv2.distanceTransform((sp != UNKNOWN).astype(np.uint8), cv2.DIST_L2, 5)
        k = out["rough_kernel"]
        assert np.all(rough[dist <= k // 2 - 1] == UNKNOWN)
        assert np.all(rough[dist > k // 2 + 1] == sp[dist > k // 2 + 1])
    assert min(drawn) == 15 and max(drawn) == 41


def test_tcp_trimap_draws_within_paper_ranges() -> None:
    sp = semantic_trimap(_alpha(1), np.random.default_rng(1))
    n_steps, iters, erode_k, dilate_k = [], [], [], []
    for seed in range(300):
        out: dict = {}
        tcp_trimap(sp, np.random.default_rng(seed), out=out)
        n_steps.append(len(out["steps"]))
        for s in out["steps"]:
            iters.append(s.iterations)
            (erode_k if s.op == "erode" else dilate_k).append(s.kernel)
    assert set(n_steps) == {0, 1, 2, 3}
    assert set(iters) == {0, 1, 2, 3}
    assert min(erode_k) >= 1 and max(erode_k) <= 10 and max(erode_k) == 10
    assert min(dilate_k) >= 1 and max(dilate_k) <= 30 and max(dilate_k) > 10


def test_tcp_trimap_is_its_drawn_steps_replayed() -> None:
    for seed in range(40):
        sp = semantic_trimap(_alpha(seed), np.random.default_rng(seed))
        out: dict = {}
        tcp = tcp_trimap(sp, np.random.default_rng(seed + 1000), out=out)
        validate(tcp)
        replay = sp
        for step in out["steps"]:
            replay = tcp_step(replay, step)
        np.testing.assert_array_equal(tcp, replay)


@pytest.mark.parametrize("op", ["erode", "dilate"])
def test_tcp_step_only_moves_the_unknown_band(op: str) -> None:
    for seed in range(30):
        sp = semantic_trimap(_alpha(seed), np.random.default_rng(seed), kernel_range=(5, 15))
        rng = np.random.default_rng(seed)
        step = MorphStep(op, int(rng.integers(1, 4)), int(rng.integers(2, 11)))
        new = tcp_step(sp, step)
        u_old, u_new = sp == UNKNOWN, new == UNKNOWN
        if op == "erode":
            assert np.all(u_old[u_new])  # band shrinks
        else:
            assert np.all(u_new[u_old])  # band grows
        both_known = ~u_old & ~u_new
        np.testing.assert_array_equal(sp[both_known], new[both_known])


def test_tcp_erosion_hands_band_to_nearest_known_region() -> None:
    t = np.full((1, 21), UNKNOWN, np.float32)
    t[0, :5] = BG
    t[0, 16:] = FG
    out = tcp_step(t, MorphStep("erode", 1, 5))
    # A 5x5 disc reaches two pixels: both sides of the band move two pixels inward.
    assert np.all(out[0, :7] == BG) and np.all(out[0, 14:] == FG)
    assert np.all(out[0, 7:14] == UNKNOWN)


def test_zero_iterations_leave_trimap_unchanged() -> None:
    sp = semantic_trimap(_alpha(2), np.random.default_rng(2))
    np.testing.assert_array_equal(tcp_step(sp, MorphStep("dilate", 0, 30)), sp)
    np.testing.assert_array_equal(tcp_trimap(sp, np.random.default_rng(0), steps_range=(0, 0)), sp)


def test_dual_trimaps_reproducible_from_seed() -> None:
    alpha = _alpha(5)
    a1, b1 = dual_trimaps(alpha, np.random.default_rng(9))
    a2, b2 = dual_trimaps(alpha, np.random.default_rng(9))
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(b1, b2)


def test_bad_inputs_raise_trimap_error() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(TrimapError, match="shape"):
        semantic_trimap(np.zeros((4, 4, 3)), rng)
    with pytest.raises(TrimapError, match="kernel_range"):
        semantic_trimap(np.zeros((4, 4)), rng, kernel_range=(0, 3))
    with pytest.raises(TrimapError, match="shape"):
        tcp_trimap(np.zeros((2, 4, 4)), rng)
    with pytest.raises(TrimapError, match="op"):
        tcp_step(np.full((4, 4), UNKNOWN, np.float32), MorphStep("open", 1, 3))  # type: ignore[arg-type]


def test_semantic_trimap_is_the_cores_from_alpha_with_the_drawn_kernel() -> None:
    """One Eq. 2: the example shot's trimaps and the Semantic Path's come from the same function."""
    from vfxmatte.trimap import from_alpha

    for seed in range(20):
        alpha = _alpha(seed)
        out: dict = {}
        t = semantic_trimap(alpha, np.random.default_rng(seed), out=out)
        np.testing.assert_array_equal(t, from_alpha(alpha, tolerance=ALPHA_TOLERANCE, kernel=out["kernel"]))

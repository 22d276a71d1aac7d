"""Keyframe trimap propagation on synthetic clips with a known alpha per frame.

The clip: a textured disc with a soft edge (a 3 px alpha ramp) moving and spinning over a
textured background, optionally with an opaque striped bar crossing in front of it. Its true
alpha is rendered with it, so every test scores against the truth: the true transition band
(0.02 < alpha < 0.98) must be unknown, and a confident label must match the alpha
(fg where alpha >= 0.9, bg where alpha <= 0.1).
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from vfxmatte import propagate
from vfxmatte.errors import PropagationError, TrimapError
from vfxmatte.flow import FlowCache, FlowSettings, flow_image
from vfxmatte.propagate import METHOD_VERSION, PropagationSettings, keyframes_used, propagate_trimap
from vfxmatte.trimap import BG, FG, UNKNOWN, from_alpha

H, W = 144, 192


def _texture(rng: np.random.Generator, h: int, w: int, sigma: float) -> np.ndarray:
    n = cv2.GaussianBlur(rng.random((h, w, 3)).astype(np.float32), (0, 0), sigma)
    return (n - n.min()) / (n.max() - n.min())


def make_clip(n: int, step=(2.5, 0.75), spin: float = 2.0, occluder: bool = False, seed: int = 0):
    """``n`` frames of (flow image, true alpha); the disc moves ``step`` px and turns ``spin``° a frame."""
    rng = np.random.default_rng(seed)
    bg = 0.15 + 0.6 * _texture(rng, H, W, 3.0)
    fg_tex = 0.3 + 0.7 * _texture(rng, 2 * H, 2 * W, 2.0)[..., ::-1]
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    stripes = (0.5 + 0.4 * np.sin(yy / 3.0))[..., None] * np.array([1.0, 0.6, 0.3], np.float32)
    plates, alphas = [], []
    for t in range(n):
        cx, cy = W * 0.3 + step[0] * t, H * 0.5 + step[1] * t
        alpha = np.clip((36.0 - np.hypot(xx - cx, yy - cy)) / 3.0 + 0.5, 0.0, 1.0)
        turn = cv2.getRotationMatrix2D((float(W), float(H)), spin * t, 1.0)
        turn[:, 2] += (cx - W, cy - H)
        fg = cv2.warpAffine(fg_tex, turn, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        rgb = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
        if occluder:  # a 24 px bar sweeping left to right at 30 px a frame (faster than DIS
            left = -40.0 + 30.0 * t  # follows), in front of the disc
            cover = np.clip(np.minimum(xx - left, left + 24.0 - xx) + 0.5, 0.0, 1.0)
            rgb = cover[..., None] * stripes + (1 - cover[..., None]) * rgb
            alpha = alpha * (1 - cover)
        plates.append(flow_image(rgb.astype(np.float32)))
        alphas.append(alpha.astype(np.float32))
    return plates, alphas


def keyframe(alpha: np.ndarray) -> np.ndarray:
    """An artist's keyframe: the true band, widened by about a pixel each side."""
    return from_alpha(alpha, tolerance=0.02, kernel=3)


def scores(trimap: np.ndarray, alpha: np.ndarray) -> tuple[float, float, float]:
    """(coverage of the true band by unknown, confident wrong fraction of the frame, unknown area / keyframe-style area)."""
    band = (alpha > 0.02) & (alpha < 0.98)
    coverage = float((trimap[band] == UNKNOWN).mean())
    wrong = float((((trimap == FG) & (alpha < 0.9)) | ((trimap == BG) & (alpha > 0.1))).mean())
    area = float((trimap == UNKNOWN).sum() / (keyframe(alpha) == UNKNOWN).sum())
    return coverage, wrong, area


class Plates:
    """``plate(f)`` for propagate_trimap, recording the frames asked for."""

    def __init__(self, images):
        self.images = images
        self.calls: list[int] = []

    def __call__(self, f: int) -> np.ndarray:
        self.calls.append(f)
        return self.images[f]


#: The disc moves 2.6 px and turns 2 degrees a frame against its background: fast motion, for
#: which a job widens the band with distance (jobs/README.md); the defaults are for steadier
#: shots (test_the_default_band_stays_at_the_keyframes_width_on_a_steady_move).
SETTINGS = PropagationSettings(band_px=2.0, band_growth_px=1 / 3)


@pytest.fixture(scope="module")
def clip():
    return make_clip(9)


def test_a_keyframe_returns_its_own_trimap_exactly(clip):
    plates, alphas = clip
    keys = {0: keyframe(alphas[0]), 8: keyframe(alphas[8])}
    plate = Plates(plates)
    for f, trimap in keys.items():
        out = propagate_trimap(f, keys, plate, SETTINGS)
        assert out.dtype == np.float32 and out.tobytes() == trimap.tobytes()
    assert plate.calls == []  # no flow needed


def test_propagated_trimaps_cover_the_true_band_and_are_rarely_confidently_wrong(clip):
    plates, alphas = clip
    keys = {0: keyframe(alphas[0])}
    for f in range(1, 9):
        out = propagate_trimap(f, keys, Plates(plates), SETTINGS)
        assert out.dtype == np.float32 and set(np.unique(out)) <= {BG, UNKNOWN, FG}
        coverage, wrong, area = scores(out, alphas[f])
        # Full coverage, no confident wrong label, area 1.9x (1 frame away) to 3.6x (8 frames)
        # the keyframe-style band, which grows by 1/3 px a frame.
        assert coverage >= 0.995 and wrong <= 0.0005, (f, coverage, wrong)
        assert area < 2.0 + 0.3 * f, (f, area)


def test_a_single_keyframe_at_the_end_propagates_backwards(clip):
    plates, alphas = clip
    keys = {8: keyframe(alphas[8])}
    for f in range(8):
        plate = Plates(plates)
        out = propagate_trimap(f, keys, plate, SETTINGS)
        coverage, wrong, _ = scores(out, alphas[f])
        assert coverage >= 0.995 and wrong <= 0.0005, (f, coverage, wrong)
        assert sorted(set(plate.calls)) == list(range(f, 9))  # only the plates from f to the keyframe
    assert keyframes_used(3, [8], 100) == (8,)


def test_keyframes_outside_the_frames_asked_for():
    plates, alphas = make_clip(21, step=(1.0, 0.5), spin=1.0)
    keys = {20: keyframe(alphas[20]), 0: keyframe(alphas[0])}  # any order
    for f in range(5, 10):
        plate = Plates(plates)
        out = propagate_trimap(f, keys, plate, SETTINGS)
        coverage, wrong, _ = scores(out, alphas[f])
        assert coverage >= 0.995 and wrong <= 0.0005, (f, coverage, wrong)
        assert set(plate.calls) == set(range(21))
        assert keyframes_used(f, keys, 100) == (0, 20)
    # Beyond max_distance on one side, only the other side is used (and read).
    plate = Plates(plates)
    propagate_trimap(5, keys, plate, PropagationSettings(max_distance=10))
    assert keyframes_used(5, keys, 10) == (0,) and set(plate.calls) == set(range(6))


def test_an_occluder_crossing_the_foreground_is_never_labelled_fg():
    plates, alphas = make_clip(9, step=(1.5, 0.0), spin=1.0, occluder=True)
    keys = {0: keyframe(alphas[0])}
    clean_alpha = make_clip(9, step=(1.5, 0.0), spin=1.0)[1]
    crossed = 0
    for f in range(1, 9):
        out = propagate_trimap(f, keys, Plates(plates), SETTINGS)
        covered = (clean_alpha[f] > 0.5) & (alphas[f] < 0.9)  # disc pixels the bar hides
        crossed += int(covered.sum())
        assert not (out[covered] == FG).any(), f
        coverage, wrong, _ = scores(out, alphas[f])
        assert coverage >= 0.99 and wrong <= 0.001, (f, coverage, wrong)
    assert crossed > 2000  # the bar really crossed the disc


def test_results_do_not_depend_on_other_calls_or_the_cache(clip, tmp_path):
    plates, alphas = clip
    keys = {0: keyframe(alphas[0]), 8: keyframe(alphas[8])}
    alone = {f: propagate_trimap(f, keys, Plates(plates), SETTINGS).tobytes() for f in (6, 2)}
    cache = FlowCache(tmp_path / "flow")
    for f in range(9):  # a chunk that runs every frame, filling a shared cache
        assert propagate_trimap(f, keys, Plates(plates), SETTINGS, cache).tobytes() == (
            alone.get(f, propagate_trimap(f, keys, Plates(plates), SETTINGS).tobytes()))
    for f in (2, 6):  # another chunk, reading the cache
        assert propagate_trimap(f, keys, Plates(plates), SETTINGS, FlowCache(tmp_path / "flow")).tobytes() == alone[f]


class CountingCache(FlowCache):
    def __init__(self):
        super().__init__(None)
        self.calls = 0

    def flow(self, src, dst, settings):
        self.calls += 1
        return super().flow(src, dst, settings)


def test_chain_states_reused_within_a_process_give_the_same_bytes():
    plates, alphas = make_clip(13, step=(1.0, 0.5), spin=1.0, seed=4)
    keys = {0: keyframe(alphas[0]), 12: keyframe(alphas[12])}
    frames = list(range(1, 12))
    propagate._MEMO.clear()
    propagate._MEMO.enabled = False
    try:
        plain = CountingCache()
        fresh = {f: propagate_trimap(f, keys, Plates(plates), SETTINGS, plain).tobytes() for f in frames}
    finally:
        propagate._MEMO.enabled = True
    assert plain.calls == len(frames) * 12 * 2  # both chains, 12 steps, two flows a step
    for order in (frames, frames[::-1]):
        propagate._MEMO.clear()
        reused = CountingCache()
        assert all(propagate_trimap(f, keys, Plates(plates), SETTINGS, reused).tobytes() == fresh[f] for f in order)
        assert reused.calls < plain.calls / 2, (reused.calls, plain.calls)


def test_two_sides_that_disagree_leave_the_pixel_unknown():
    still = [np.full((H, W), 100, np.uint8) + (np.indices((H, W)).sum(0) % 7).astype(np.uint8)] * 5
    left = np.zeros((H, W), np.float32)
    left[40:100, 40:100] = FG
    right = np.zeros((H, W), np.float32)
    right[40:100, 70:130] = FG
    out = propagate_trimap(2, {0: left, 4: right}, Plates(still), PropagationSettings(band_px=0.0, band_growth_px=0.0))
    assert (out[45:95, 75:95] == FG).all()  # both say fg
    assert (out[45:95, 45:65] == UNKNOWN).all() and (out[45:95, 105:125] == UNKNOWN).all()  # one says bg
    assert (out[:30] == BG).all()


def test_slow_motion_is_not_rounded_away_along_the_chain():
    # 0.4 px a frame: a label map re-sampled nearest-neighbour at every step would never move.
    plates, alphas = make_clip(9, step=(0.4, 0.0), spin=0.0)
    bare = PropagationSettings(band_px=0.0, band_growth_px=0.0)
    out = propagate_trimap(8, {0: keyframe(alphas[0])}, Plates(plates), bare)
    xs = np.nonzero(out == FG)[1]
    x0 = np.nonzero(keyframe(alphas[0]) == FG)[1]
    assert abs((xs.mean() - x0.mean()) - 3.2) < 0.5, xs.mean() - x0.mean()


def test_a_side_that_saw_nothing_leaves_the_label_to_the_other_side():
    # A camera pan of 2 px a frame: frame 4's left strip comes from outside frame 0 (unknown from
    # that side) but is inside frame 8, whose keyframe labels it.
    rng = np.random.default_rng(3)
    scene = np.rint(_texture(rng, H, W + 32, 2.0)[..., 0] * 255).astype(np.uint8)
    plates = [np.ascontiguousarray(scene[:, 16 - 2 * t: 16 - 2 * t + W]) for t in range(9)]
    bg = np.zeros((H, W), np.float32)
    one = propagate_trimap(4, {0: bg}, Plates(plates), SETTINGS)
    assert (one[:, :6] == UNKNOWN).all() and (one[:, 20:-20] == BG).all()
    two = propagate_trimap(4, {0: bg, 8: bg}, Plates(plates), SETTINGS)
    assert (two[:, :-20] == BG).all()


def test_no_keyframe_within_max_distance_names_the_frame():
    with pytest.raises(PropagationError, match="frame 30") as err:
        keyframes_used(30, [0, 100], 20)
    assert (err.value.frame, err.value.distance) == (30, 30)
    with pytest.raises(PropagationError, match="frame 30") as err:
        propagate_trimap(30, {0: np.zeros((8, 8), np.float32)}, Plates([]), PropagationSettings(max_distance=29))
    assert (err.value.frame, err.value.distance) == (30, 30)
    with pytest.raises(PropagationError, match="frame 3: no keyframes") as err:
        keyframes_used(3, [], 20)
    assert err.value.distance is None


def test_bad_keyframes_raise_one_trimap_error_naming_the_keyframe(clip):
    plates, alphas = clip
    good = keyframe(alphas[0])
    with pytest.raises(TrimapError, match="keyframe 8: shape"):
        propagate_trimap(4, {0: good, 8: good[:-1]}, Plates(plates), SETTINGS)
    off = good.copy()
    off[3, 3] = 0.25
    with pytest.raises(TrimapError, match="keyframe 8: 1 pixels outside the palette"):
        propagate_trimap(2, {0: good, 8: off}, Plates(plates), SETTINGS)
    with pytest.raises(TrimapError, match="keyframe 0"):
        propagate_trimap(2, {0: np.zeros((H, W, 3), np.float32)}, Plates(plates), SETTINGS)
    small = np.zeros((H // 2, W // 2), np.float32)
    with pytest.raises(TrimapError, match="keyframe 0: trimap .* differ in size from the plate"):
        propagate_trimap(2, {0: small}, Plates(plates), SETTINGS)


def test_settings_are_validated_and_recorded_as_json():
    s = PropagationSettings(flow=FlowSettings(preset="fast", max_side=512), band_growth_px=0.5)
    d = s.to_dict()
    assert list(d) == ["method_version", "flow", "band_px", "band_growth_px", "occlusion_px", "max_distance"]
    assert d["method_version"] == METHOD_VERSION
    assert json.loads(json.dumps(d)) == d and d["flow"]["preset"] == "fast"
    assert PropagationSettings().flow == FlowSettings()
    for bad in ({"band_px": -1.0}, {"band_growth_px": float("nan")}, {"occlusion_px": 0.0},
                {"max_distance": -1}, {"max_distance": 2.5}, {"flow": "dis"}):
        with pytest.raises(PropagationError):
            PropagationSettings(**bad)


def test_the_default_band_stays_at_the_keyframes_width_on_a_steady_move():
    # 1 px a frame and a slow turn: the default band (1 px, no growth) covers nearly all of the
    # true band 8 frames away (this clip's blurred-noise texture gives DIS little to hold on
    # to) and stays within the keyframe-style band plus about a pixel each side.
    plates, alphas = make_clip(9, step=(1.0, 0.3), spin=0.5, seed=2)
    for f in (4, 8):
        out = propagate_trimap(f, {0: keyframe(alphas[0])}, Plates(plates), PropagationSettings())
        coverage, wrong, area = scores(out, alphas[f])
        assert coverage >= 0.97 and wrong <= 0.0005, (f, coverage, wrong)
        assert area < 1.6, (f, area)

"""benchmarks/bench_propagation.py: the trimap scores, the plain baseline and the clips it measures."""

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_propagation as bp  # noqa: E402

from vfxmatte import trimap as tm  # noqa: E402
from vfxmatte.flow import FlowCache, FlowSettings  # noqa: E402
from vfxmatte.propagate import PropagationSettings  # noqa: E402

H, W = 90, 160


def ramp_alpha() -> np.ndarray:
    """Background left of column 60, a 10-column ramp 0.05, 0.15, ..., 0.95, foreground right of 69."""
    a = np.zeros((H, W), np.float32)
    a[:, 60:70] = np.linspace(0.05, 0.95, 10, dtype=np.float32)
    a[:, 70:] = 1.0
    return a


def test_a_perfect_trimap_covers_everything_with_no_wrong_label_and_the_true_area():
    a = ramp_alpha()
    s = bp.trimap_scores(bp.true_trimap(a), a)
    assert s == {"coverage": 1.0, "wrong": 0.0, "wrong_fg": 0.0, "wrong_bg": 0.0, "wrong_of_labels": 0.0, "area": 1.0, "transition_px": 10 * H}


def test_known_wrong_labels_and_lost_coverage_give_their_exact_fractions():
    a = ramp_alpha()
    t = bp.true_trimap(a)
    t[:, 65:70] = tm.FG  # alpha 0.55..0.95 called fg: four columns below 0.9 are wrong
    s = bp.trimap_scores(t, a)
    assert s["coverage"] == pytest.approx(0.5)
    assert s["wrong_fg"] == pytest.approx(4 * H / (H * W)) and s["wrong_bg"] == 0.0
    assert s["area"] == pytest.approx(0.5)
    t = bp.true_trimap(a)
    t[10:20, 100:110] = tm.BG  # a bg patch inside the foreground
    t[0:30, 0:20] = tm.UNKNOWN  # an unknown patch in the background (600 px)
    s = bp.trimap_scores(t, a)
    assert s["wrong"] == s["wrong_bg"] == pytest.approx(100 / (H * W))
    assert s["wrong_of_labels"] == pytest.approx(100 / (H * W - 10 * H - 600))
    assert s["coverage"] == 1.0 and s["area"] == pytest.approx((10 * H + 600) / (10 * H))


def test_summary_leaves_keyframes_out_and_judges_the_worst_frame():
    recs = [
        {"distance": 0, "coverage": 0.5, "wrong": 0.5, "area": 9.0},
        {"distance": 1, "coverage": 0.99, "wrong": 0.001, "area": 1.5},
        {"distance": 2, "coverage": 0.97, "wrong": 0.003, "area": 2.0},
    ]
    s = bp.summarise(recs)
    assert s["frames"] == 2 and s["coverage_min"] == 0.97 and s["wrong_max"] == 0.003 and s["area_max"] == 2.0
    assert s["coverage_mean"] == pytest.approx(0.98)
    assert s["pass"] == {"coverage": False, "wrong": False, "area": True}
    rows = bp.by_distance(recs)
    assert [r["distance"] for r in rows] == ["1-2"] and rows[0]["frames"] == 2


def test_baseline_reproduces_keyframes_and_widens_the_band_by_two_px_plus_one_per_three_frames():
    a = ramp_alpha()
    key = bp.true_trimap(a)
    rng = np.random.default_rng(0)
    plate = (rng.random((H, W)) * 255).astype(np.uint8)  # a static shot: zero flow
    cache = FlowCache(None)
    settings = FlowSettings()

    def flow(src, dst):
        return cache.flow(plate, plate, settings)

    assert np.array_equal(bp.baseline_trimap(5, {5: key}, flow), key)
    out = bp.baseline_trimap(8, {5: key, 20: key}, flow)  # nearest keyframe 5, distance 3: radius 3
    unknown_cols = np.flatnonzero((out == tm.UNKNOWN).all(axis=0))
    assert unknown_cols.tolist() == list(range(57, 73))
    assert (out[:, :57] == tm.BG).all() and (out[:, 73:] == tm.FG).all()


def test_generated_clip_is_deterministic_and_both_methods_run_on_it(tmp_path):
    clip = bp.make_generated_clip(W, H, 4, seed=3, backgrounds=tmp_path / "none")
    again = bp.make_generated_clip(W, H, 4, seed=3, backgrounds=tmp_path / "none")
    assert len(clip) == 4 and clip.images[0].shape == (H, W, 3) and clip.alphas[0].shape == (H, W)
    assert all(np.array_equal(x, y) for x, y in zip(clip.alphas + clip.images, again.alphas + again.images))
    assert all(((a > 0.02) & (a < 0.98)).any() for a in clip.alphas)
    res = bp.run_clip(clip, {"one": [0]}, FlowCache(tmp_path / "flow"), PropagationSettings())
    for method in ("baseline", "propagate"):
        r = res[f"one/{method}"]
        assert [f["distance"] for f in r["frames"]] == [0, 1, 2, 3]
        assert r["frames"][0]["coverage"] == 1.0 and r["frames"][0]["wrong"] == 0.0 and r["frames"][0]["area"] == 1.0
        assert r["summary"]["frames"] == 3
    assert "| generated | one (0) | baseline |" in bp.markdown({"clips": {"generated": {"results": res}}})


def test_photo_clip_warps_image_and_alpha_together(tmp_path):
    yy, xx = np.mgrid[0:H, 0:W]
    disc = (((xx - 80) ** 2 + (yy - 45) ** 2) < 25**2).astype(np.uint8) * 255
    for sub in ("image", "alpha"):
        (tmp_path / sub).mkdir()
        cv2.imwrite(str(tmp_path / sub / "GT99.png"), np.repeat(disc[..., None], 3, axis=2))
    clip = bp.make_photo_clip(tmp_path, "GT99", frames=5)
    assert len(clip) == 5
    for im, a in zip(clip.images, clip.alphas):
        np.testing.assert_allclose(im[..., 1], a, atol=1e-6)
    assert not np.array_equal(clip.alphas[0], clip.alphas[-1])  # the camera moved


def test_main_writes_json_and_markdown_with_the_starter_alphas(tmp_path):
    out, md = tmp_path / "p.json", tmp_path / "p.md"
    argv = ["--size", f"{W}x{H}", "--frames", "3", "--speed-frames", "0", "--backgrounds", str(tmp_path / "none"), "--alpha", "starter", "--out", str(out), "--md", str(md)]
    assert bp.main(argv) == 0
    doc = json.loads(out.read_text())
    assert doc["machine"]["cores"] >= 1 and set(doc["clips"]) == {"generated"}
    assert set(doc["clips"]["generated"]["results"]) == {f"{s}/{m}" for s in ("one", "two", "every10") for m in ("baseline", "propagate")}
    alpha = doc["clips"]["generated"]["alpha"]
    plain = {"true trimaps", "one/propagate", "two/propagate", "every10/propagate"}
    assert set(alpha) == plain | {f"{name} + temporal" for name in plain}
    assert all(0 < r["sad"] < 1e3 and r["dtssd"] >= 0 for r in alpha.values())
    assert "coverage worst / mean" in md.read_text() and "| generated | true trimaps |" in md.read_text()


def test_alpha_scores_are_zero_for_the_true_alpha_and_the_alpha_sum_for_an_empty_matte(tmp_path):
    clip = bp.make_generated_clip(W, H, 3, seed=3, backgrounds=tmp_path / "none")
    perfect = bp.alpha_scores(clip, clip.alphas)
    assert perfect == {"sad": 0.0, "grad": 0.0, "dtssd": 0.0, "messddt": 0.0}
    empty = bp.alpha_scores(clip, [np.zeros((H, W), np.float32)] * len(clip))
    assert empty["sad"] == pytest.approx(np.mean([a.astype(np.float64).sum() / 1000 for a in clip.alphas]))
    assert empty["dtssd"] > 0


def test_temporal_rows_blend_each_frame_with_the_clips_neighbours_only(tmp_path):
    """The benchmark's temporal stage is the library's: frame 0 has one neighbour, the middle
    frame two, and a frame's result equals smooth_alpha over exactly that window."""
    clip = bp.make_generated_clip(W, H, 3, seed=3, backgrounds=tmp_path / "none")
    trimaps = [bp.true_trimap(a) for a in clip.alphas]
    rng = np.random.default_rng(0)
    raw = [np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1).astype(np.float32) for a in clip.alphas]
    settings = bp.TemporalSettings()
    out = bp.temporal_alphas(clip, trimaps, raw, settings, bp.FlowCache(None))
    plates = [bp.flow_image(im) for im in clip.images]
    first = bp.smooth_alpha(raw[0], trimaps[0], plates[0], [bp.Neighbour(raw[1], plates[1])], settings)
    assert np.array_equal(out[0], first)
    assert not np.array_equal(out[1], raw[1])


def test_final_check_runs_each_image_with_keyframes_on_its_first_and_last_frame(tmp_path):
    yy, xx = np.mgrid[0:H, 0:W]
    rng = np.random.default_rng(2)
    for name, r in (("GT98", 20), ("GT99", 25)):
        disc = (((xx - 80) ** 2 + (yy - 45) ** 2) < r**2).astype(np.float32)
        soft = cv2.GaussianBlur(disc, (0, 0), 1.5)
        image = (soft[..., None] * 200 + (1 - soft[..., None]) * rng.uniform(0, 255, (H, W, 3))).astype(np.uint8)
        for sub, pixels in (("image", image), ("alpha", (soft * 255).astype(np.uint8))):
            (tmp_path / sub).mkdir(exist_ok=True)
            cv2.imwrite(str(tmp_path / sub / f"{name}.png"), pixels)
    out, md = tmp_path / "p.json", tmp_path / "p.md"
    argv = ["--size", f"{W}x{H}", "--frames", "3", "--speed-frames", "0", "--backgrounds", str(tmp_path / "none"),
            "--real", str(tmp_path), "--real-image", "GT99", "--photo-frames", "5", "--check-images", "GT98", "GT99",
            "--out", str(out), "--md", str(md)]
    assert bp.main(argv) == 0
    checks = json.loads(out.read_text())["final_check"]
    assert set(checks) == {"GT98", "GT99"} and set(checks["GT98"]) == {"baseline", "propagate"}
    assert checks["GT98"]["propagate"]["frames"] == 3  # 5 frames, the two keyframes left out
    assert "| GT98 | propagate |" in md.read_text() and "all three targets met on" in md.read_text()


def _photos(folder: Path) -> Path:
    rng = np.random.default_rng(4)
    folder.mkdir()
    for i in range(2):
        img = cv2.GaussianBlur(rng.uniform(0, 255, (120, 160, 3)).astype(np.float32), (0, 0), 2.0)
        cv2.imwrite(str(folder / f"p{i}.png"), img.astype(np.uint8))
    return folder


def test_validation_clips_are_generated_composites_under_the_photo_clips_camera_move(tmp_path):
    photos = _photos(tmp_path / "photos")
    clips = bp.make_validation_clips(2, seed=5, backgrounds=photos, size=(96, 64), frames=3)
    again = bp.make_validation_clips(2, seed=5, backgrounds=photos, size=(96, 64), frames=3)
    assert [c.name for c in clips] == ["val00_textured", "val01_solid_blur"]
    for c, d in zip(clips, again):
        assert len(c) == 3 and c.images[0].shape == (64, 96, 3) and c.alphas[0].shape == (64, 96)
        assert all(np.array_equal(a, b) for a, b in zip(c.alphas, d.alphas))  # deterministic
        assert 0.0 <= c.alphas[0].min() and c.alphas[0].max() <= 1.0 and ((c.alphas[0] > 0) & (c.alphas[0] < 1)).any()
        assert not np.array_equal(c.alphas[0], c.alphas[-1])  # the camera moved


def test_main_scores_the_validation_clips_with_two_keyframes(tmp_path):
    photos = _photos(tmp_path / "photos")
    out, md = tmp_path / "p.json", tmp_path / "p.md"
    argv = ["--size", f"{W}x{H}", "--frames", "3", "--speed-frames", "0", "--backgrounds", str(photos),
            "--validation", "1", "--photo-frames", "4", "--out", str(out), "--md", str(md)]
    assert bp.main(argv) == 0
    v = json.loads(out.read_text())["validation"]
    assert v["seed"] == 424242 and set(v["clips"]) == {"val00_textured"}
    assert v["clips"]["val00_textured"]["propagate"]["frames"] == 2  # 4 frames, the two keyframes left out
    assert "| val00_textured | propagate |" in md.read_text() and "of 1 clips" in md.read_text()

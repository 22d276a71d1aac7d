"""vfxmatte.evaluate on tiny alphamatting.com-style folders written on the fly."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from vfxmatte import metrics
from vfxmatte.errors import DataError, ImageReadError, InputError, TrimapError
from vfxmatte.evaluate import EvalReport, evaluate_predictor, load_eval_set

H, W = 24, 32


def _scene(seed: int):
    """A plate, an 8-bit ground-truth alpha with a soft edge, and its 0/128/255 trimap."""
    rng = np.random.default_rng(seed)
    xx = np.arange(W)[None, :].repeat(H, 0)
    alpha8 = np.clip((xx - 12) * 32 + rng.integers(-20, 20, (H, W)), 0, 255).astype(np.uint8)
    alpha8[:, :10] = 0
    alpha8[:, 22:] = 255
    tri8 = np.full((H, W), 128, np.uint8)
    tri8[:, :8] = 0
    tri8[:, 24:] = 255
    rgb8 = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    return rgb8, alpha8, tri8


def _write_png_palette(path, grey):
    from PIL import Image  # pillow comes with pymatting, a test dependency

    img = Image.fromarray(grey, mode="L").convert("P")
    img.save(path)


@pytest.fixture
def eval_root(tmp_path):
    for d in ("image", "alpha", "trimap1", "trimap2"):
        (tmp_path / d).mkdir()
    for i, name in enumerate(("GT02", "GT01")):
        rgb8, alpha8, tri8 = _scene(i)
        cv2.imwrite(str(tmp_path / "image" / f"{name}.png"), cv2.cvtColor(rgb8, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(tmp_path / "alpha" / f"{name}.png"), np.dstack([alpha8] * 3))  # R = G = B
        _write_png_palette(tmp_path / "trimap1" / f"{name}.png", tri8)
        cv2.imwrite(str(tmp_path / "trimap2" / f"{name}.png"), tri8)
    return tmp_path


def test_load_eval_set_reads_layout(eval_root):
    samples = load_eval_set(eval_root)
    assert [s.name for s in samples] == ["GT01", "GT02"]
    rgb8, alpha8, tri8 = _scene(1)  # GT01
    s = samples[0]
    assert s.image.dtype == np.float32 and s.image.shape == (H, W, 3)
    np.testing.assert_allclose(s.image, rgb8 / 255.0, atol=1e-6)  # RGB order, 0..1
    np.testing.assert_allclose(s.alpha, alpha8 / 255.0, atol=1e-6)
    assert s.alpha.shape == (H, W)
    assert set(np.unique(s.trimap)) == {0.0, 0.5, 1.0}
    np.testing.assert_array_equal(s.trimap, np.where(tri8 == 0, 0.0, np.where(tri8 == 255, 1.0, 0.5)))


def test_load_eval_set_other_trimap_dir(eval_root):
    a = load_eval_set(eval_root, trimap_dir="trimap1")
    b = load_eval_set(eval_root, trimap_dir="trimap2")
    np.testing.assert_array_equal(a[0].trimap, b[0].trimap)


def test_missing_files_are_named(eval_root):
    (eval_root / "alpha" / "GT02.png").unlink()
    (eval_root / "trimap1" / "GT01.png").unlink()
    with pytest.raises(DataError) as exc:
        load_eval_set(eval_root)
    assert "alpha/GT02.png" in str(exc.value) and "trimap1/GT01.png" in str(exc.value)


def test_missing_trimap_folder_is_named(eval_root):
    with pytest.raises(DataError, match="trimap3"):
        load_eval_set(eval_root, trimap_dir="trimap3")


def test_unreadable_and_mismatched_files(eval_root):
    (eval_root / "alpha" / "GT01.png").write_bytes(b"not a png")
    with pytest.raises(ImageReadError, match="GT01.png: cannot open image"):
        load_eval_set(eval_root)
    cv2.imwrite(str(eval_root / "alpha" / "GT01.png"), np.zeros((H, W + 1), np.uint8))
    with pytest.raises(DataError, match="GT01.png: size"):
        load_eval_set(eval_root)


def test_off_palette_trimap_names_file(eval_root):
    cv2.imwrite(str(eval_root / "trimap1" / "GT02.png"), np.full((H, W), 64, np.uint8))
    with pytest.raises(TrimapError, match="GT02.png"):
        load_eval_set(eval_root)


def test_perfect_predictor_scores_zero_and_reports(eval_root):
    samples = load_eval_set(eval_root)
    alphas = iter([s.alpha for s in samples])
    calls = []

    def predict(image, trimap):
        assert image.shape == (H, W, 3) and trimap.shape == (H, W)
        return next(alphas)

    report = evaluate_predictor(samples, predict, progress=lambda *a: calls.append(a))
    assert calls == [(1, 2, "GT01"), (2, 2, "GT02")]
    assert report.mean == {"sad": 0.0, "mse": 0.0, "grad": 0.0, "conn": 0.0}
    assert report.seconds_per_image >= 0.0
    assert [r["name"] for r in report.rows()] == ["GT01", "GT02"]
    assert set(report.rows()[0]) == {"name", "sad", "mse", "grad", "conn", "seconds"}
    doc = json.loads(json.dumps(report.to_dict()))
    assert doc["count"] == 2 and doc["quantized_8bit"] is True and "peak_rss_delta_mib" in doc


def test_known_regions_are_pasted_before_scoring(eval_root):
    samples = load_eval_set(eval_root)
    alphas = iter([s.alpha for s in samples])

    def predict(image, trimap):
        gt = next(alphas)
        # Right in the band, inverted in the known regions: compositing must undo the latter,
        # otherwise Grad and Conn (which look past the band) would see it.
        return np.where(trimap == 0.5, gt, 1.0 - gt)

    report = evaluate_predictor(samples, predict)
    assert report.mean == {"sad": 0.0, "mse": 0.0, "grad": 0.0, "conn": 0.0}


def test_scores_equal_metrics_on_the_composited_quantised_matte(eval_root):
    samples = load_eval_set(eval_root)
    flat = lambda image, trimap: np.full(trimap.shape, 0.3, np.float32)  # noqa: E731
    report = evaluate_predictor(samples, flat)
    s = samples[0]
    composite = np.where(s.trimap == 1, 1.0, np.where(s.trimap == 0, 0.0, metrics.quantize_8bit(np.full(s.trimap.shape, 0.3, np.float32))))
    expected = metrics.evaluate(composite, s.alpha, s.trimap)
    got = report.rows()[0]
    for k in ("sad", "mse", "grad", "conn"):
        assert got[k] == pytest.approx(expected[k])


def test_quantize_rounds_sub_level_noise_away(eval_root):
    samples = load_eval_set(eval_root)[:1]
    nudge = lambda image, trimap: samples[0].alpha + 0.4 / 255  # noqa: E731
    assert evaluate_predictor(samples, nudge).mean["sad"] == 0.0
    assert evaluate_predictor(samples, nudge, quantize=False).mean["sad"] > 0.0


def test_bad_prediction_names_the_plate(eval_root):
    samples = load_eval_set(eval_root)
    with pytest.raises(InputError, match="GT01.*shape"):
        evaluate_predictor(samples, lambda image, trimap: np.zeros((2, 2)))
    with pytest.raises(InputError, match="GT01.*NaN"):
        evaluate_predictor(samples, lambda image, trimap: np.full(trimap.shape, np.nan))


def test_peak_rss_delta_sees_a_large_allocation(eval_root):
    samples = load_eval_set(eval_root)[:1]

    def hungry(image, trimap):
        # 96 MiB, touched: above glibc's largest mmap threshold (32 MiB), so it is fresh memory
        # even when earlier tests left freed pages resident in the heap.
        block = np.ones(96 * 2**20 // 8)
        return np.full(trimap.shape, block[0] * 0.5, np.float32)

    report = evaluate_predictor(samples, hungry)
    if report.peak_rss_method == "VmHWM":
        assert report.to_dict()["peak_rss_delta_mib"] >= 64
    else:
        assert report.peak_rss_delta_bytes >= 0


def test_empty_report_is_nan():
    r = EvalReport()
    assert np.isnan(r.seconds_per_image) and all(np.isnan(v) for v in r.mean.values())

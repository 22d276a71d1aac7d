"""benchmarks/bench_example.py: the example shot's frames, trimaps and true alphas line up."""

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_example  # noqa: E402

from vfxmatte import metrics  # noqa: E402


def test_example_shot_truth_scores_zero_and_the_starter_beats_a_ramp(tmp_path):
    (s,) = bench_example.load_shot(tmp_path / "shot010", [1003])
    band = s.trimap == 0.5
    assert band.any() and s.image.shape[:2] == s.alpha.shape == s.trimap.shape
    assert metrics.evaluate(s.alpha, s.alpha, s.trimap)["sad"] == 0.0
    # the true alpha is fractional in the band and agrees with the trimap's known regions
    assert ((s.alpha[band] > 0.05) & (s.alpha[band] < 0.95)).any()
    assert np.all(s.alpha[s.trimap == 1] > 0.9) and np.all(s.alpha[s.trimap == 0] < 0.1)
    out = tmp_path / "r.json"
    assert bench_example.main(["--model", "s=starter", "--frames", "1003", "--out", str(out)]) == 0
    r = json.loads(out.read_text())["results"]["s"]
    ramp = metrics.evaluate(np.where(band, 0.5, s.trimap).astype(np.float32), s.alpha, s.trimap)
    assert r["count"] == 1 and 0 < r["mean"]["sad"] < ramp["sad"] / 2
    b = r["mean"]["sad_breakdown"]  # the SAD's parts add up to it, and the partial part to its halves
    assert abs(b["background"] + b["partial"] + b["opaque"] - r["mean"]["sad"]) < 1e-6
    assert abs(b["partial_under"] + b["partial_over"] - b["partial"]) < 1e-9 and b["partial"] > 0


def test_temporal_rows_score_the_same_raw_mattes_through_the_stage(tmp_path):
    out = tmp_path / "r.json"
    assert bench_example.main(["--model", "s=starter", "--frames", "1003-1005", "--temporal", "--out", str(out)]) == 0
    r = json.loads(out.read_text())["results"]
    assert set(r) == {"s", "s + temporal"} and r["s + temporal"]["temporal"]["radius"] == 1
    plain, smooth = r["s"]["mean"], r["s + temporal"]["mean"]
    assert plain["dtssd"] > 0 and smooth["dtssd"] > 0 and plain != smooth

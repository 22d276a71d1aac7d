"""benchmarks/learning_curve.py: power-law fits of a run's validations against samples seen."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import learning_curve  # noqa: E402


def test_fit_recovers_an_exact_power_law():
    samples = np.array([1000.0, 2000.0, 4000.0, 8000.0])
    slope, intercept, resid = learning_curve.fit_power_law(samples, 20.0 * samples**-0.1)
    assert slope == pytest.approx(-0.1) and np.exp(intercept) == pytest.approx(20.0)
    assert resid == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError):
        learning_curve.fit_power_law(np.array([5.0, 5.0]), np.array([1.0, 2.0]))


def test_run_log_gives_a_row_per_weights_and_protocol_and_a_restart_repeat_counts_once(tmp_path):
    log = tmp_path / "metrics.jsonl"
    recs = [{"kind": "train", "step": 5, "loss": 1.0}]
    for step in (100, 200, 400, 800):
        n = step * 4
        recs.append({"kind": "val", "step": step, "sad": 10.0 * (n / 400) ** -0.2, "mesh.sad": 30.0,
                     "ema.sad": 9.0 * (n / 400) ** -0.1, "ema.mesh.sad": 25.0})
    recs.append({"kind": "val", "step": 50, "sad": 99.0})  # before --from-step: left out
    recs.append({**recs[-2], "sad": recs[-2]["sad"]})        # step 800 validated twice
    log.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    out = tmp_path / "curve"
    assert learning_curve.main([str(log), "--batch", "4", "--from-step", "100", "--to-step", "1600",
                                "--out", str(out)]) == 0
    doc = json.loads(out.with_suffix(".json").read_text())
    rows = {(r["weights"], r["protocol"]): r for r in doc["rows"]}
    assert set(rows) == {("raw", "paper"), ("raw", "mesh"), ("average", "paper"), ("average", "mesh")}
    paper = rows[("raw", "paper")]
    assert paper["validations"] == 4 and paper["slope"] == pytest.approx(-0.2)
    assert paper["fit_at_end"] == pytest.approx(10.0 * 16 ** -0.2)  # step 1600: 16x step 100's samples
    assert rows[("average", "paper")]["per_doubling"] == pytest.approx(2 ** -0.1 - 1)
    assert rows[("raw", "mesh")]["slope"] == pytest.approx(0.0, abs=1e-12)
    assert doc["machine"]["cores"] and "| raw | paper | 4 |" in out.with_suffix(".md").read_text()

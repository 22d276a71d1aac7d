"""benchmarks/bench_capacity.py: equal-FLOP budgets, the commands it runs and the curves it reads."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_capacity as bc  # noqa: E402

from training.config import load_config  # noqa: E402
from vfxmatte.model import build_model  # noqa: E402


@pytest.fixture(scope="module")
def planned():
    return bc.plan(small_steps=600, val_every=200, size=64, names=list(bc.ARCHS))


def test_every_validation_falls_at_the_same_training_flops_within_one_step(planned):
    ref = planned["small"]
    assert ref["steps"] == 600 and ref["val_every"] == 200
    budget = ref["val_every"] * ref["forward_gflop_per_sample"]
    for name, p in planned.items():
        assert p["steps"] == 3 * p["val_every"], name
        # rounding to whole steps moves a validation by at most half a step's FLOPs
        assert abs(p["val_every"] * p["forward_gflop_per_sample"] - budget) <= 0.5 * p["forward_gflop_per_sample"], name


def test_the_compared_architectures_are_bigger_than_small_in_the_way_their_names_say(planned):
    small, deep, wide, r34 = (planned[n] for n in ("small", "small-deep", "small-wide", "r34"))
    assert small["forward_gflop_per_sample"] < deep["forward_gflop_per_sample"] < wide["forward_gflop_per_sample"]
    assert wide["forward_gflop_per_sample"] < r34["forward_gflop_per_sample"]
    assert small["params"] < deep["params"] < wide["params"] < r34["params"]
    assert r34["steps"] < wide["steps"] < deep["steps"] < small["steps"]


def test_each_command_is_a_valid_training_config_for_its_architecture(planned, tmp_path):
    for name, p in planned.items():
        cmd = bc.command(name, p, tmp_path)
        assert cmd[1:4] == ["-m", "training", "train"]
        overrides = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--set"]
        cfg = load_config([bc.CONFIG], overrides=overrides)
        assert cfg.train.steps == p["steps"] and cfg.train.val_every == p["val_every"]
        assert Path(cfg.train.out_dir) == tmp_path / name
        assert cfg.init_checkpoint is None  # from scratch, every one
        assert sum(q.numel() for q in build_model(cfg.architecture()).parameters()) == p["params"]


def _val(step, sad):
    row = {"kind": "val", "step": step}
    for prefix in bc.PROTOCOLS.values():
        row[prefix + "sad"], row[prefix + "grad"] = sad, sad / 2
    return row


def test_a_resumed_runs_curve_keeps_the_last_record_of_each_step_and_the_slope_follows_it(tmp_path):
    p = {"model": "small", "params": 10, "forward_gflop_per_sample": 25.0, "val_every": 100, "steps": 300}
    rows = [{"kind": "train", "step": 10, "step_time_s": 2.0}, _val(100, 99.0), _val(100, 20.0),
            {"kind": "train", "step": 200, "step_time_s": 3.0}, _val(200, 10.0),
            {"kind": "train", "step": 300, "step_time_s": 4.0}, _val(300, 20 / 3)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    r = bc.read_run(tmp_path, p, batch=4)
    assert [c["step"] for c in r["curve"]] == [100, 200, 300]
    assert r["curve"][0]["paper"]["sad"] == 20.0 and r["curve"][0]["samples"] == 400
    assert r["curve"][0]["train_pflop"] == pytest.approx(3 * 25.0 * 400 / 1e6)
    assert r["steps_done"] == 300 and r["median_step_s"] == 3.0
    # SAD 20, 10, 6.67 at compute 1, 2, 3 is SAD ~ C^-1 exactly
    assert bc.slope(r["curve"], "mesh") == pytest.approx(-1.0)
    md = bc.markdown({"machine": {"cpu": "x", "cores": 2, "torch": "t", "native_bf16": True}, "protocol": "p",
                      "runs": {"small": {**r, "slopes": {q: bc.slope(r["curve"], q) for q in bc.PROTOCOLS}}},
                      "exit_codes": {"small": 0}})
    assert "| small | 0.00 | 25.0 | 100 | 400 |" in md and "20.00 / 10.00" in md and "-1.00" in md


def test_a_run_that_has_not_started_reads_as_an_empty_curve(tmp_path):
    p = {"model": "r34", "params": 1, "forward_gflop_per_sample": 100.0, "val_every": 50, "steps": 150}
    r = bc.read_run(tmp_path / "missing", p, batch=4)
    assert r["curve"] == [] and r["steps_done"] == 0 and r["median_step_s"] is None
    assert bc.slope(r["curve"], "paper") is None

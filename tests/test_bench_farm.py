"""benchmarks/bench_farm.py on a few frames: both worker counts write every frame with the same
bytes, and the table derives frames/s, speed-up and efficiency from the wall times."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_farm  # noqa: E402

from vfxmatte.checkpoint import save_checkpoint  # noqa: E402
from vfxmatte.model import build_model  # noqa: E402


def test_bench_farm_on_four_frames(tmp_path):
    ckpt = save_checkpoint(tmp_path / "tiny.safetensors", build_model("tiny"))
    out = tmp_path / "farm.json"
    code = bench_farm.main(["--frames", "4", "--size", "32x32", "--workers", "1,2", "--threads", "1",
                            "--model", str(ckpt), "--timeout", "300", "--out", str(out)])
    doc = json.loads(out.read_text())
    assert code == 0, doc["runs"]
    one, two = doc["runs"]
    assert (one["workers"], two["workers"]) == (1, 2)
    for r in (one, two):
        assert r["exit_code"] == 0 and r["frames_written"] == 4 and r["same_bytes_as_1_worker"]
        assert r["frames_per_s"] == pytest.approx(4 / r["wall_s"], rel=1e-2)
    assert one["speedup"] == 1.0 and one["efficiency"] == 1.0
    assert two["speedup"] == pytest.approx(one["wall_s"] / two["wall_s"], rel=1e-2)
    assert two["efficiency"] == pytest.approx(two["speedup"] / 2, rel=1e-2)
    assert doc["machine"]["cores"] and len(doc["load_average_before"]) == 3
    table = out.with_suffix(".md").read_text()
    assert "| 2 |" in table and "32x32" in table and f"{100 * two['efficiency']:.0f}%" in table


def test_a_failed_or_differing_run_is_not_timed():
    base = {"workers": 1, "exit_code": 0, "wall_s": 10.0, "frames_written": 4, "digest": "a"}
    runs = bench_farm.summarise([dict(base), {**base, "workers": 2, "wall_s": 6.0, "digest": "b"},
                                 {"workers": 3, "exit_code": 2, "wall_s": 1.0, "error": "bad job"}], frames=4)
    assert runs[0]["efficiency"] == 1.0
    assert runs[1]["same_bytes_as_1_worker"] is False and "frames_per_s" not in runs[1]
    assert "frames_per_s" not in runs[2]
    assert "NO" in bench_farm.markdown({"machine": {"cpu": "c", "cores": 2, "ram_gib": 1, "torch": "t"},
                                        "load_average_before": [0, 0, 0], "load_average_after": [0, 0, 0],
                                        "shot": "s", "model": "m", "precision": "fp32", "threads": None, "runs": runs})

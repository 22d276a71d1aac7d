"""benchmarks/bench_speed.py: every method timed on the same frames, ratios to closed-form."""

import argparse
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_speed as bs  # noqa: E402


def test_sizes_parse_by_name_and_by_width_x_height():
    assert bs.parse_size("2k") == (2048, 1080) and bs.parse_size("4K") == (4096, 2160)
    assert bs.parse_size("640x360") == (640, 360)
    for bad in ("2048", "x1080", "wide"):
        with pytest.raises(argparse.ArgumentTypeError):
            bs.parse_size(bad)


def test_model_and_peers_run_on_the_same_frames_and_ratios_are_to_cf(tmp_path):
    pytest.importorskip("pymatting")
    out, md = tmp_path / "speed.json", tmp_path / "speed.md"
    assert bs.main(["--model", "v10=starter", "--peers", "cf,ramp", "--size", "192x108", "--frames", "1001",
                    "--out", str(out), "--md", str(md)]) == 0
    doc = json.loads(out.read_text())
    assert doc["size"] == [192, 108] and doc["frames"] == "1001" and 0 < doc["unknown_fraction"] < 1
    res = doc["results"]
    assert set(res) == {"v10", "cf", "ramp"}
    assert res["cf"]["time_vs_cf"] == pytest.approx(1.0)
    for r in res.values():
        assert r["seconds_per_frame"] > 0 and len(r["seconds"]) == 1
        assert r["speedup_over_cf"] == pytest.approx(1 / r["time_vs_cf"])
    assert res["v10"]["precision"] in ("fp32", "bf16") and res["v10"]["sha256"]
    # the ramp ignores the image: a method that worked must beat it in the band
    assert res["v10"]["sad"] < res["ramp"]["sad"] and res["cf"]["sad"] < res["ramp"]["sad"]
    assert "| cf | " in md.read_text() and "speed-up over cf" in md.read_text()


def test_an_unknown_peer_is_refused():
    with pytest.raises(SystemExit):
        bs.main(["--peers", "nope", "--out", "unused.json"])

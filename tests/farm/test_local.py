"""``vfxmatte submit --farm local``: chunks on parallel worker processes give the single run's
bytes; Ctrl-C stops every worker and leaves no half-written frame."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import yaml

from tests.farm.conftest import outputs, run_module, write_job


def test_two_workers_give_the_single_runs_bytes(tmp_path, tiny_shot):
    job = write_job(tmp_path, tiny_shot)
    single = run_module("run", str(job))
    assert single.returncode == 0, single.stderr
    expect = outputs(job)
    shutil.rmtree(job.parent / "out")
    proc = run_module("submit", str(job), "--farm", "local", "--workers", "2", "--chunk-size", "2")
    assert proc.returncode == 0, proc.stderr
    assert outputs(job) == expect and len(expect) == 6
    lines = proc.stdout.splitlines()
    assert sum(line.startswith("chunk ") and line.endswith("exited 0") for line in lines) == 3  # 6 frames / 2
    assert "Progress: 100%" in lines and "shot010: 6 done, 0 skipped, 0 failed" in proc.stdout


def test_dry_run_lists_the_chunks(tmp_path, tiny_shot):
    job = write_job(tmp_path, tiny_shot)
    proc = run_module("submit", str(job), "--farm", "local", "--workers", "2", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["chunk 1/2: frames 1001-1003", "chunk 2/2: frames 1004-1006"]
    assert outputs(job) == {}


def test_ctrl_c_stops_every_worker_cleanly(tmp_path, tiny_shot):
    job = write_job(tmp_path, tiny_shot, frames="1001-1006")
    doc = yaml.safe_load(job.read_text())
    doc["plate"]["missing"] = "hold"  # 1001-1400 held from the six plates: a run long enough to interrupt
    doc["plate"]["frames"] = "1001-1400"
    job.write_text(yaml.safe_dump(doc, sort_keys=False))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "vfxmatte", "submit", str(job), "--farm", "local", "--workers", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    seen = []
    for line in proc.stdout:  # wait until both workers are matting
        seen.append(line)
        if sum(" done in " in s for s in seen) >= 4:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "vfxmatte: interrupted"
    pids = [int(s.split("pid ")[1].split(")")[0]) for s in (seen + out.splitlines()) if s.startswith("chunk ")]
    assert len(pids) == 2  # both workers reported their end
    time.sleep(0.2)
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        raise AssertionError(f"worker {pid} still runs")
    done = outputs(job)
    assert 4 <= len(done) < 400
    assert not [p for p in (job.parent / "out").iterdir() if p.name.startswith(".")]  # no temporary file left


FAKE_WORKER = """
import json, os, sys
args = sys.argv[1:]
chunk = args[args.index("--chunk") + 1]
record = {"argv": args, "threads": os.environ.get("OMP_NUM_THREADS"), "gpu": os.environ.get("CUDA_VISIBLE_DEVICES")}
open(os.path.join(os.environ["RECORD_DIR"], chunk.replace("/", "of")), "w").write(json.dumps(record))
sys.exit(int(os.environ.get("EXIT", "0")))
"""


def test_each_worker_gets_its_chunk_its_share_of_threads_and_a_gpu(tmp_path, tiny_shot, monkeypatch):
    from vfxmatte.farm.local import run_local
    from vfxmatte.jobs import load_job

    job = load_job(write_job(tmp_path, tiny_shot))
    monkeypatch.setenv("RECORD_DIR", str(tmp_path))
    report = run_local(job, None, workers=2, chunks=3, threads=3, gpus=["0", "1"],
                       executable=[sys.executable, "-c", FAKE_WORKER])
    assert report.exit_code == 0 and sorted(w.chunk.index for w in report.workers) == [1, 2, 3]
    records = {n: json.loads((tmp_path / f"{n}of3").read_text()) for n in (1, 2, 3)}
    for n, rec in records.items():
        assert rec["argv"][:4] == ["--log-format", "json", "run", str(job.source)]
        assert rec["argv"][rec["argv"].index("--chunk") + 1] == f"{n}/3"
        assert rec["argv"][rec["argv"].index("--threads") + 1] == "3" and rec["threads"] == "3"
    assert [records[n]["gpu"] for n in (1, 2, 3)] == ["0", "1", "0"]


def test_a_worker_stopped_by_a_bad_job_makes_the_run_exit_2(tmp_path, tiny_shot, monkeypatch):
    from vfxmatte.farm.local import run_local
    from vfxmatte.jobs import load_job

    job = load_job(write_job(tmp_path, tiny_shot))
    monkeypatch.setenv("RECORD_DIR", str(tmp_path))
    monkeypatch.setenv("EXIT", "2")
    assert run_local(job, None, workers=1, executable=[sys.executable, "-c", FAKE_WORKER]).exit_code == 2
    monkeypatch.setenv("EXIT", "3")
    assert run_local(job, None, workers=1, executable=[sys.executable, "-c", FAKE_WORKER]).exit_code == 70


@pytest.mark.parametrize("frames", [[1001, 1002, 1003, 1004], [1004, 1003, 1001], [1003, 1001, 1004]])
def test_each_worker_is_given_the_frames_asked_for_in_their_order(tmp_path, tiny_shot, monkeypatch, frames):
    from vfxmatte.farm.local import run_local
    from vfxmatte.io.sequence import parse_frame_range
    from vfxmatte.jobs import load_job

    job = load_job(write_job(tmp_path, tiny_shot))
    monkeypatch.setenv("RECORD_DIR", str(tmp_path))
    assert run_local(job, frames, workers=1, chunks=2, executable=[sys.executable, "-c", FAKE_WORKER]).exit_code == 0
    for n in (1, 2):
        argv = json.loads((tmp_path / f"{n}of2").read_text())["argv"]
        assert parse_frame_range(argv[argv.index("--frames") + 1]) == frames

"""``vfxmatte run --chunk N/M``: chunks in separate processes give the whole run's bytes; a
chunk none of whose plates is on disk follows plate.missing frame by frame."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.farm.conftest import outputs, run_module, write_job
from vfxmatte.cli import main


def test_chunks_in_separate_processes_give_the_whole_runs_bytes(tmp_path, tiny_shot):
    job = write_job(tmp_path, tiny_shot)
    whole = run_module("run", str(job))
    assert whole.returncode == 0, whole.stderr
    expect = outputs(job)
    assert len(expect) == 6
    shutil.rmtree(job.parent / "out")
    for chunk in ("1/4", "2/4", "3/4", "4/4"):  # 2, 2, 1, 1 frames
        proc = run_module("run", str(job), "--chunk", chunk, "--threads", "1")
        assert proc.returncode == 0, proc.stderr
    assert outputs(job) == expect


def test_chunk_applies_to_frames_given_and_past_the_end_is_empty(tmp_path, tiny_shot, capsys):
    job = write_job(tmp_path, tiny_shot)
    assert main(["--log-format", "json", "run", str(job), "--frames", "1002-1005", "--chunk", "2/2"]) == 0
    done = [json.loads(line)["frame"] for line in capsys.readouterr().out.splitlines() if '"event":"done"' in line]
    assert done == [1004, 1005]
    assert main(["run", str(job), "--frames", "1001-1002", "--chunk", "3/3"]) == 0
    assert "chunk 3/3 holds no frames" in capsys.readouterr().out
    # Its JSON summary has the fields of any run's summary, with nothing done.
    assert main(["--log-format", "json", "run", str(job), "--frames", "1001", "--chunk", "1/1"]) == 0
    full = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert main(["--log-format", "json", "run", str(job), "--frames", "1001-1002", "--chunk", "3/3"]) == 0
    empty = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert empty["event"] == "summary" and set(full) <= set(empty) and empty["chunk"] == "3/3"
    assert (empty["done"], empty["failed"], empty["job_hash"]) == ("", {}, full["job_hash"])


@pytest.mark.parametrize("policy, code", [("error", 1), ("skip", 0)])
def test_a_chunk_with_no_plate_on_disk_follows_the_missing_frame_policy(tmp_path, tiny_shot, capsys, policy, code):
    # The job asks for 1001-1010; plates exist for 1001-1006 only: chunk 3/3 (1008-1010) has none.
    job = write_job(tmp_path, tiny_shot, frames="1001-1010", missing=policy)
    assert main(["run", str(job), "--chunk", "3/3"]) == code
    captured = capsys.readouterr()
    word = "failed" if policy == "error" else "skipped"
    assert f"0 done, {3 if policy == 'skip' else 0} skipped, {3 if policy == 'error' else 0} failed" in captured.out
    for f in (1008, 1009, 1010):
        assert f"frame {f} {word}" in (captured.err if policy == "error" else captured.out)
    assert outputs(job) == {}


def test_no_plate_of_the_shot_on_disk_is_still_a_whole_run_error(tmp_path, tiny_shot, capsys):
    job = write_job(tmp_path, tiny_shot)
    job.write_text(job.read_text().replace("shot010.####.exr", "nothing.####.exr", 1))
    assert main(["run", str(job), "--chunk", "1/2"]) == 2
    assert "exist on disk" in capsys.readouterr().err


def test_fp32_mattes_do_not_depend_on_the_thread_count(tmp_path, tiny_shot):
    """Mixed farm nodes (jobs/README.md): with precision fp32 a node with 1 thread and one with
    2 write the same bytes (on this CPU type; pin --threads where node types differ)."""
    job = write_job(tmp_path, tiny_shot)
    runs = []
    for threads in ("1", "2"):
        proc = run_module("run", str(job), "--threads", threads)
        assert proc.returncode == 0, proc.stderr
        runs.append(outputs(job))
        shutil.rmtree(job.parent / "out")
    assert len(runs[0]) == 6 and runs[0] == runs[1]

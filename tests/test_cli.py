"""The command line, in-process through main(argv) and as a subprocess (python -m vfxmatte)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from vfxmatte.checkpoint import save_checkpoint
from vfxmatte.cli import main
from vfxmatte.examples import make_shot010
from vfxmatte.io.image import read_image
from vfxmatte.model import build_model

FRAMES = (1001, 1002, 1003)


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """Tiny frames: see conftest.one_torch_thread."""


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> tuple[object, Path]:
    root = tmp_path_factory.mktemp("cli")
    shot = make_shot010(root / "shot", frames=FRAMES, width=48, height=32)
    ckpt = save_checkpoint(root / "tiny.safetensors", build_model("tiny"))
    return shot, ckpt


def job_file(tmp_path: Path, assets, **output) -> Path:
    shot, ckpt = assets
    job = shot.job_dict(tmp_path / "out" / "shot010.####.exr", checkpoint=str(ckpt))
    job["model"]["device"] = "cpu"
    job["output"].update(output)
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(job, sort_keys=False))
    return path


def bad_job(tmp_path: Path, assets) -> Path:
    path = job_file(tmp_path, assets)
    path.write_text(path.read_text().replace("checkpoint:", "checkpiont:").replace("version: 1", "version: 1\nshot_name: x"))
    return path


def outputs(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "out").iterdir()) if (tmp_path / "out").exists() else []


def run_module(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "vfxmatte", *args], capture_output=True, text=True, env=env, timeout=300)


# --------------------------------------------------------------------------- subprocess


def test_subprocess_run_with_json_lines(tmp_path, assets):
    proc = run_module("--log-format", "json", "run", str(job_file(tmp_path, assets)))
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [e["event"] for e in events] == ["started", "done"] * 3 + ["summary"]
    assert [e["frame"] for e in events if e["event"] == "done"] == list(FRAMES)
    assert all(e["shot"] == "shot010" and e["total"] == 3 for e in events[:-1])
    assert events[-1]["done"] == "1001-1003" and events[-1]["failed"] == {}
    assert outputs(tmp_path) == [f"shot010.{f}.exr" for f in FRAMES]


def test_subprocess_bad_job_prints_one_line_and_exits_2(tmp_path, assets):
    proc = run_module("run", str(bad_job(tmp_path, assets)))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert lines[0].startswith(f"vfxmatte: error: {tmp_path / 'job.yaml'}:2: shot_name: unknown key")


# --------------------------------------------------------------------------- in-process


def test_run_in_process_text_output(tmp_path, assets, capsys):
    assert main(["run", str(job_file(tmp_path, assets))]) == 0
    out = capsys.readouterr().out
    assert "frame 1002 done" in out and "shot010: 3 done, 0 skipped, 0 failed" in out
    assert f"alphas: {tmp_path / 'out' / 'shot010.####.exr'}" in out


def test_failed_frame_exits_1_and_other_frames_are_written(tmp_path, assets, capsys):
    shot, _ = assets
    job = job_file(tmp_path, assets)
    broken = tmp_path / "trimaps"
    broken.mkdir()
    for f in FRAMES:  # a private trimap sequence in which frame 1002 is the wrong size
        src = Path(shot.trimaps.replace("####", str(f)))
        img = cv2.imread(str(src), cv2.IMREAD_UNCHANGED)
        cv2.imwrite(str(broken / f"t.{f}.png"), img[:10, :10] if f == 1002 else img)
    job.write_text(job.read_text().replace(shot.trimaps, str(broken / "t.####.png")))
    assert main(["run", str(job)]) == 1
    captured = capsys.readouterr()
    assert "vfxmatte: frame 1002 failed: frame 1002: trimap" in captured.err
    assert len(captured.err.splitlines()) == 1  # each failure printed once (not again as a log warning)
    assert "failed frames: 1002" in captured.out
    assert outputs(tmp_path) == ["shot010.1001.exr", "shot010.1003.exr"]


def test_bad_job_one_line_without_traceback_unless_debug(tmp_path, assets, capsys):
    job = str(bad_job(tmp_path, assets))
    assert main(["run", job]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("vfxmatte: error: ") and "Traceback" not in err
    assert main(["--debug", "run", job]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "JobError" in err


def test_validate_lists_every_problem(tmp_path, assets, capsys):
    assert main(["validate", str(job_file(tmp_path, assets))]) == 0
    assert ": OK: shot shot010, frames 1001-1003 (3)" in capsys.readouterr().out
    assert main(["validate", str(bad_job(tmp_path, assets))]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "shot_name: unknown key" in err[0] and "model.checkpiont: unknown key" in err[1]


@pytest.mark.parametrize(
    "argv",
    [["run"], ["run", "job.yaml", "--frames", "abc"], ["run", "job.yaml", "--device", "tpu"], ["bogus"],
     ["example", "shot999"], ["--log-format", "xml", "validate", "job.yaml"], ["run", "job.yaml", "--chunk", "0/3"],
     ["run", "job.yaml", "--chunk", "3/2"], ["run", "job.yaml", "--threads", "0"], ["submit", "job.yaml"]],
)
def test_usage_errors_exit_2(argv, capsys):
    assert main(argv) == 2
    assert "vfxmatte: error:" in capsys.readouterr().err


def test_help_and_version_exit_0(capsys):
    assert main(["--version"]) == 0 and "vfxmatte" in capsys.readouterr().out
    assert main(["run", "--help"]) == 0 and "--dry-run" in capsys.readouterr().out


def test_dry_run_writes_nothing(tmp_path, assets, capsys):
    assert main(["run", str(job_file(tmp_path, assets)), "--dry-run", "--frames", "1002-1003"]) == 0
    out = capsys.readouterr().out
    assert "frames 1002-1003 (2) would be written to" in out and "1001" not in out
    assert outputs(tmp_path) == []


def test_quiet_prints_nothing_and_global_flags_go_after_the_command(tmp_path, assets, capsys):
    assert main(["run", str(job_file(tmp_path, assets)), "--quiet", "--frames", "1001"]) == 0
    assert capsys.readouterr() == ("", "")
    assert outputs(tmp_path) == ["shot010.1001.exr"]


def test_json_error_event(tmp_path, assets, capsys):
    assert main(["--log-format", "json", "run", str(bad_job(tmp_path, assets))]) == 2
    captured = capsys.readouterr()
    event = json.loads(captured.out)
    assert event["event"] == "error" and event["type"] == "JobError" and len(event["errors"]) == 2
    assert captured.err.startswith("vfxmatte: error: ")


def test_text_mode_prints_a_flushed_progress_line_after_each_frame(tmp_path, assets, capsys):
    job = str(job_file(tmp_path, assets))
    assert main(["run", job]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if line.startswith("Progress:")] == ["Progress: 33%", "Progress: 66%", "Progress: 100%"]
    assert lines.index("Progress: 33%") == 1 and lines[0].startswith("frame 1001 done")  # one line per frame, then its progress
    assert main(["run", job, "--progress", "alf", "--frames", "1001-1002"]) == 0
    out = capsys.readouterr().out
    assert "ALF_PROGRESS 50%" in out and "ALF_PROGRESS 100%" in out and "Progress:" not in out
    assert main(["--log-format", "json", "run", job, "--frames", "1001"]) == 0
    assert "Progress" not in capsys.readouterr().out  # JSON events carry index and total instead
    assert main(["run", job, "--progress", "none", "--frames", "1001"]) == 0
    assert "Progress" not in capsys.readouterr().out


def test_an_internal_error_exits_70_never_1(tmp_path, assets, capsys, monkeypatch):
    import vfxmatte.pipeline

    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(vfxmatte.pipeline, "run_job", broken)
    assert main(["--log-format", "json", "run", str(job_file(tmp_path, assets))]) == 70
    captured = capsys.readouterr()
    assert captured.err == "vfxmatte: internal error: ZeroDivisionError: division by zero (a bug; --debug shows the traceback)\n"
    assert json.loads(captured.out)["event"] == "internal_error"


def test_a_bug_inside_one_frame_exits_70_never_1(tmp_path, assets, capsys, monkeypatch):
    # A frame whose processing raises an exception that is not a VfxMatteError (nor an OS or
    # memory error) is a bug: the other frames still run, but the exit code says so.
    from vfxmatte.pipeline import ShotPipeline

    real = ShotPipeline.process

    def broken_on_1002(self, item):
        if item.frame == 1002:
            raise ZeroDivisionError("division by zero")
        return real(self, item)

    monkeypatch.setattr(ShotPipeline, "process", broken_on_1002)
    assert main(["run", str(job_file(tmp_path, assets)), "--frames", "1001-1003"]) == 70
    captured = capsys.readouterr()
    assert "frame 1002 failed: ZeroDivisionError: division by zero" in captured.err
    assert "frame 1001 done" in captured.out and "frame 1003 done" in captured.out


def test_an_os_error_inside_one_frame_is_a_failed_frame_exit_1(tmp_path, assets, capsys, monkeypatch):
    from vfxmatte.pipeline import ShotPipeline

    def unreadable(self, item):
        raise PermissionError(13, "Permission denied", str(item.plate))

    monkeypatch.setattr(ShotPipeline, "process", unreadable)
    assert main(["run", str(job_file(tmp_path, assets)), "--frames", "1001"]) == 1


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM"])
def test_an_interrupt_exits_130(tmp_path, assets, capsys, monkeypatch, how):
    import signal

    import vfxmatte.pipeline

    def interrupted(*args, **kwargs):
        if how == "SIGINT":
            raise KeyboardInterrupt
        os.kill(os.getpid(), signal.SIGTERM)  # handled by main(): stops the run as Ctrl-C does
        raise AssertionError("SIGTERM did not stop the run")

    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(vfxmatte.pipeline, "run_job", interrupted)
    assert main(["run", str(job_file(tmp_path, assets))]) == 130
    assert capsys.readouterr().err == "vfxmatte: interrupted\n"
    assert signal.getsignal(signal.SIGTERM) == before


def test_threads_reach_torch_and_opencv(tmp_path, assets):
    assert main(["run", str(job_file(tmp_path, assets)), "--frames", "1001", "--threads", "2", "--quiet"]) == 0
    try:
        assert torch.get_num_threads() == 2 and cv2.getNumThreads() == 2
    finally:
        torch.set_num_threads(1)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_unavailable_device_is_a_one_line_error(tmp_path, assets, capsys):
    assert main(["run", str(job_file(tmp_path, assets)), "--device", "cuda"]) == 2
    assert capsys.readouterr().err == "vfxmatte: error: device 'cuda': CUDA is not available on this machine\n"


def test_example_command(tmp_path, capsys):
    out = tmp_path / "ex"
    assert main(["example", "shot010", "--out", str(out), "--frames", "1001-1002", "--size", "48x32"]) == 0
    assert sorted(p.name for p in (out / "plates").iterdir()) == ["shot010.1001.exr", "shot010.1002.exr"]
    assert sorted(p.name for p in (out / "trimaps").iterdir()) == ["shot010.1001.png", "shot010.1002.png"]
    assert "plates:" in capsys.readouterr().out


@pytest.mark.parametrize("given,keys", [([], ["1001", "1004"]), (["1002,1004"], ["1002", "1004"])])
def test_example_command_keyframes_variant(tmp_path, capsys, given, keys):
    out = tmp_path / "ex"
    args = ["example", "shot010", "--out", str(out), "--frames", "1001-1004", "--size", "48x32", "--keyframes", *given]
    assert main(args) == 0
    assert sorted(p.name for p in (out / "keyframes").iterdir()) == [f"shot010.{k}.png" for k in keys]
    assert len(list((out / "plates").iterdir())) == 4 and not (out / "trimaps").exists()
    assert f"keyframes: {out / 'keyframes' / 'shot010.####.png'} ({', '.join(keys)})" in capsys.readouterr().out


def test_example_is_deterministic(tmp_path):
    a = make_shot010(tmp_path / "a", frames=[1001], width=48, height=32)
    b = make_shot010(tmp_path / "b", frames=[1001], width=48, height=32)
    for attr, channels in (("plates", ["R", "G", "B"]), ("trimaps", ["Y"]), ("truth", ["A"])):
        pa, pb = (getattr(s, attr).replace("####", "1001") for s in (a, b))
        assert np.array_equal(read_image(pa, channels=channels)[0], read_image(pb, channels=channels)[0])


def _eval_folder(root: Path) -> Path:
    rng = np.random.default_rng(3)
    for name in ("a", "b"):
        alpha = np.zeros((32, 48), np.uint8)
        cv2.circle(alpha, (24, 16), 9, 255, -1, cv2.LINE_AA)
        tri = np.where(alpha == 255, 255, np.where(alpha == 0, 0, 128)).astype(np.uint8)
        tri = np.where(cv2.dilate((alpha > 0).astype(np.uint8), np.ones((5, 5))) & (alpha < 255), 128, tri).astype(np.uint8)
        for sub, img in (("image", rng.integers(0, 255, (32, 48, 3), dtype=np.uint8)), ("trimap1", tri), ("alpha", alpha)):
            (root / sub).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / sub / f"{name}.png"), img)
    return root


def test_eval_command_json_and_table(tmp_path, assets, capsys):
    _, ckpt = assets
    folder = _eval_folder(tmp_path / "eval")
    assert main(["eval", str(folder), "--model", str(ckpt), "--device", "cpu", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["count"] == 2 and set(data["mean"]) == {"sad", "mse", "grad", "conn"}
    assert main(["eval", str(folder), "--model", str(ckpt), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "SAD" in out and "Conn" in out and "mean" in out
    assert main(["eval", str(folder), "--model", str(ckpt), "--device", "cpu", "--json", "--tta", "flip"]) == 0
    flipped = json.loads(capsys.readouterr().out)
    assert flipped["count"] == 2 and flipped["mean"]["sad"] != data["mean"]["sad"]  # both views ran
    assert main(["eval", str(folder), "--model", str(ckpt), "--device", "cpu", "--json", "--dense"]) == 0
    dense = json.loads(capsys.readouterr().out)
    assert dense["mean"]["sad"] == pytest.approx(data["mean"]["sad"], abs=1e-3)  # same mattes, every layer dense


def test_eval_missing_folder_is_a_one_line_error(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "nothing"), "--model", "starter"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "evaluation folder missing" in err


# --------------------------------------------------------------------------- nothing lost


@pytest.mark.parametrize("command", [["validate"], ["run", "--dry-run"], ["run"]])
def test_an_output_onto_the_plates_is_refused_before_any_frame(tmp_path, assets, capsys, command):
    shot, _ = assets
    plates = sorted(Path(shot.plates).parent.iterdir())
    before = [p.read_bytes() for p in plates]
    job = job_file(tmp_path, assets, path=shot.plates.replace("####", "%04d"))
    assert main([command[0], str(job), *command[1:]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "output.path: the mattes would overwrite plate.path (" in err
    assert [p.read_bytes() for p in plates] == before


def test_an_alias_bomb_is_one_line_and_exit_2(tmp_path, capsys):
    laughs = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    laughs += [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]" for i in range(8)]
    (tmp_path / "bomb.yaml").write_text("\n".join(laughs) + "\n")
    assert main(["validate", str(tmp_path / "bomb.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "aliases expand to more than" in err

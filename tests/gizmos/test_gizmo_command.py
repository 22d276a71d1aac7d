"""Finding vfxmatte, the command lines the gizmo runs, and running one to its end or a cancel."""

import os
import shlex
import stat
import subprocess
import sys

import pytest

import vfxmatte.cli as cli
from vfxmatte_nuke import command
from vfxmatte_nuke.errors import GizmoError


def _program(folder, name="vfxmatte"):
    path = folder / name
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_the_knob_wins_then_the_environment_then_the_path(tmp_path):
    knob, env = _program(tmp_path, "knob_vfxmatte"), _program(tmp_path, "env_vfxmatte")
    on_path = lambda name: "/usr/bin/" + name if name == "vfxmatte" else None  # noqa: E731
    environ = {command.ENV_EXECUTABLE: str(env)}
    assert command.find_executable(str(knob), environ, on_path) == str(knob)
    assert command.find_executable("", environ, on_path) == str(env)
    assert command.find_executable("", {}, on_path) == "/usr/bin/vfxmatte"


def test_a_bare_name_is_looked_up_on_the_path_and_home_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    _program(tmp_path)
    assert command.find_executable("~/vfxmatte", {}, lambda n: None) == str(tmp_path / "vfxmatte")
    assert command.find_executable("vfxmatte-1.2", {}, lambda n: "/opt/" + n) == "/opt/vfxmatte-1.2"


@pytest.mark.parametrize("knob, environ, words", [
    ("", {}, "set the gizmo's executable knob"),
    ("/nowhere/vfxmatte", {}, "the gizmo's executable knob names /nowhere/vfxmatte"),
    ("", {"VFXMATTE_EXECUTABLE": "/nowhere/vfxmatte"}, r"\$VFXMATTE_EXECUTABLE names"),
    ("vfxmatte-9", {}, "not on Nuke's PATH"),
])
def test_not_found_says_where_it_looked(knob, environ, words):
    with pytest.raises(GizmoError, match=words):
        command.find_executable(knob, environ, lambda n: None)


JOB = "/shots/sh 010/it's \"$HOME\"/job.yaml"


@pytest.mark.parametrize("argv", [
    command.validate_argv("vfxmatte", JOB),
    command.run_argv("vfxmatte", JOB, frames="1001-1010", device="cuda:1"),
    command.propagate_argv("vfxmatte", JOB, frames="1001-1003"),
    command.submit_argv("vfxmatte", JOB, "opencue", chunk_size=5),
    command.submit_argv("vfxmatte", JOB, "deadline", send=True),
    command.submit_argv("vfxmatte", JOB, "local", chunk_size=2, frames="1001-1004"),
])
def test_every_command_line_is_one_vfxmatte_s_parser_accepts(argv):
    args = cli.build_parser().parse_args(argv[1:])
    assert args.log_format == "json" and str(args.job) == JOB


def test_farm_submission_writes_files_unless_sent():
    assert command.submit_argv("v", JOB, "opencue")[-1] == "--dry-run"
    assert "--dry-run" not in command.submit_argv("v", JOB, "opencue", send=True)
    assert command.submit_argv("v", JOB, "deadline", send=True)[-1] == "--submit"
    assert "--dry-run" not in command.submit_argv("v", JOB, "local")
    with pytest.raises(GizmoError):
        command.submit_argv("v", JOB, "tractor")


def test_the_display_line_pastes_back_to_the_same_arguments():
    argv = command.run_argv("/opt/vfx matte/bin/vfxmatte", JOB)
    assert shlex.split(command.display(argv, windows=False)) == argv
    assert command.display(["C:/Program Files/vfxmatte.exe", "a b"], windows=True) == '"C:/Program Files/vfxmatte.exe" "a b"'


def _script(tmp_path, body):
    path = tmp_path / "fake_vfxmatte.py"
    path.write_text("import json, sys, time\n" + body)
    return [sys.executable, str(path)]


def test_run_command_reads_both_pipes_to_the_end(tmp_path):
    # more stderr than a pipe buffer holds: a runner reading only stdout would hang here
    argv = _script(tmp_path, "\n".join([
        "sys.stderr.write('x' * 200000 + '\\n')",
        "for i in (1, 2):",
        "    print(json.dumps({'event': 'done', 'frame': 1000 + i, 'index': i, 'total': 2}), flush=True)",
        "print(json.dumps({'event': 'summary', 'done': '1001-1002', 'failed': {}, 'skipped': {}, 'output': '/o.####.exr'}))",
    ]))
    seen = []
    log = command.run_command(argv, on_update=lambda log: seen.append(log.progress))
    assert log.exit_code == 0 and seen == [50, 100, 100]
    assert log.message() == "2 frames done -> /o.####.exr"


def test_a_cancel_terminates_the_process(tmp_path):
    argv = _script(tmp_path, "\n".join([
        "print(json.dumps({'event': 'started', 'frame': 1001, 'index': 1, 'total': 9}), flush=True)",
        "time.sleep(600)",
    ]))
    started = []
    log = command.run_command(argv, on_update=started.append, is_cancelled=lambda: bool(started), poll_s=0.05)
    assert log.cancelled and log.exit_code != 0
    assert log.message().startswith("cancelled")


def test_a_program_that_cannot_start_is_one_line(tmp_path):
    with pytest.raises(GizmoError, match="cannot start"):
        command.run_command([str(tmp_path / "missing")])

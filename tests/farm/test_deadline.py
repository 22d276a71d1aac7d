"""``vfxmatte submit --farm deadline``: CommandLine-plugin job and plugin info files, Arguments
that the Windows/.NET argument rules split back into the exact argv, the printed submit
command, and ``--submit`` running deadlinecommand from PATH without a shell."""

from __future__ import annotations

import json
import os
import shlex
import stat
import sys
from pathlib import Path

from tests.farm.conftest import AWKWARD, write_job
from vfxmatte.cli import main


def read_info(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines())


def split_windows(text: str) -> list[str]:
    """The Microsoft C runtime's argument rules (CommandLineToArgvW; .NET applies them on
    every platform): an independent reading of what Deadline hands to the program."""
    args, cur, i, quoted, have = [], [], 0, False, False
    while i < len(text):
        c = text[i]
        if c == "\\":
            n = 0
            while i < len(text) and text[i] == "\\":
                n, i = n + 1, i + 1
            if i < len(text) and text[i] == '"':
                cur.append("\\" * (n // 2))
                if n % 2:
                    cur.append('"')
                    i += 1
            else:
                cur.append("\\" * n)
            have = True
            continue
        if c == '"':
            quoted, have = not quoted, True
        elif c in " \t" and not quoted:
            if have:
                args.append("".join(cur))
            cur, have = [], False
        else:
            cur.append(c)
            have = True
        i += 1
    if have:
        args.append("".join(cur))
    return args


def folder_of(job: Path) -> Path:
    return job.parent / "out" / "farm"


def test_job_and_plugin_info_carry_frames_chunks_pool_group_priority_output_and_env(tmp_path, tiny_shot, capsys):
    farm = {"pool": "comp", "group": "cpu16", "priority": 70, "chunk_size": 4, "cores": 4,
            "env": {"OCIO": "/studio/config.ocio", "A": "1"}}
    job = write_job(tmp_path, tiny_shot, farm=farm)
    assert main(["submit", str(job), "--farm", "deadline", "--group", "cpu32"]) == 0
    info = read_info(folder_of(job) / "shot010.job_info.job")
    assert info["Plugin"] == "CommandLine" and info["Frames"] == "1001-1006" and info["ChunkSize"] == "4"
    assert (info["Pool"], info["Group"], info["Priority"]) == ("comp", "cpu32", "70")
    assert info["OutputDirectory0"] == str(job.parent / "out") and info["OutputFilename0"] == "shot010.####.exr"
    assert info["EnvironmentKeyValue0"] == "A=1" and info["EnvironmentKeyValue1"] == "OCIO=/studio/config.ocio"
    plugin = read_info(folder_of(job) / "shot010.plugin_info.job")
    assert plugin["Executable"] == "vfxmatte" and plugin["ShellExecute"] == "False"
    assert split_windows(plugin["Arguments"]) == ["run", str(job), "--frames", "<STARTFRAME>-<ENDFRAME>", "--threads", "4"]
    out = capsys.readouterr().out
    (command,) = [line.removeprefix("submit with: ") for line in out.splitlines() if line.startswith("submit with: ")]
    assert shlex.split(command) == ["deadlinecommand", str(folder_of(job) / "shot010.job_info.job"),
                                    str(folder_of(job) / "shot010.plugin_info.job")]


def test_arguments_survive_quotes_backslashes_and_dollars():
    from vfxmatte.farm.commands import windows_arguments

    argv = ["run", f"/a/{AWKWARD}/x\\y\\/job.yaml", 'trailing\\', 'say "hi"', "$F4 ####", ""]
    assert split_windows(windows_arguments(argv)) == argv


def test_submit_runs_deadlinecommand_from_path_without_a_shell(tmp_path, tiny_shot, capsys, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "argv.json"
    fake = bin_dir / "deadlinecommand"
    fake.write_text(f"#!{sys.executable}\nimport json, sys\njson.dump(sys.argv[1:], open({str(record)!r}, 'w'))\n"
                    "print('Result=Success'); print('JobID=5f2a')\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    job = write_job(tmp_path, tiny_shot)
    assert main(["submit", str(job), "--farm", "deadline", "--submit"]) == 0
    assert json.loads(record.read_text()) == [str(folder_of(job) / "shot010.job_info.job"),
                                              str(folder_of(job) / "shot010.plugin_info.job")]
    assert "submitted to Deadline: JobID=5f2a" in capsys.readouterr().out


def test_submit_without_deadlinecommand_is_one_line_and_exit_2(tmp_path, tiny_shot, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    job = write_job(tmp_path, tiny_shot)
    assert main(["submit", str(job), "--farm", "deadline", "--submit"]) == 2
    assert capsys.readouterr().err == ("vfxmatte: error: Deadline: deadlinecommand is not on PATH "
                                       "(install the Deadline client, or submit the files by hand)\n")


def _keyframes_job(tmp_path, tiny_shot, temporal: bool = False) -> Path:
    import yaml

    job = write_job(tmp_path, tiny_shot, farm={"cores": 2, "memory": "4g"})
    doc = yaml.safe_load(job.read_text().replace("$$HOME", "$HOME"))
    doc["trimap"] = {"mode": "keyframes", "path": doc["trimap"]["path"], "frames": "1001,1006"}
    doc["temporal"] = {"enabled": temporal}
    job.write_text(yaml.safe_dump(doc, sort_keys=False).replace("$HOME", "$$HOME"))
    return job


def _fake_deadlinecommand(tmp_path, monkeypatch, refuse: str | None = None) -> Path:
    """A ``deadlinecommand`` on PATH that records each call (its argv, and the job info file as
    it was when submitted) and answers as the real one does (``JobID=...``), or refuses the job
    whose info names ``refuse``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls.jsonl"
    fake = bin_dir / "deadlinecommand"
    fake.write_text(
        f"#!{sys.executable}\nimport json, sys, uuid\n"
        "info = open(sys.argv[1]).read()\n"
        f"open({str(calls)!r}, 'a').write(json.dumps({{'argv': sys.argv[1:], 'job_info': info}}) + '\\n')\n"
        f"if {refuse!r} and {refuse!r} in info:\n"
        "    print('Error: pool does not exist'); sys.exit(1)\n"
        "print('Result=Success'); print('JobID=' + uuid.uuid4().hex[:24]); print('The job was submitted successfully.')\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return calls


def test_a_keyframes_job_is_a_propagation_job_and_a_matte_job_frame_dependent_on_it(tmp_path, tiny_shot, capsys):
    job = _keyframes_job(tmp_path, tiny_shot)
    assert main(["submit", str(job), "--farm", "deadline", "--dry-run"]) == 0
    folder = folder_of(job)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"shot010{stage}.{kind}.job" for stage in ("", ".propagate") for kind in ("job_info", "plugin_info"))
    prop, matte = read_info(folder / "shot010.propagate.job_info.job"), read_info(folder / "shot010.job_info.job")
    assert prop["Name"] == "shot010 vfxmatte propagate" and prop["BatchName"] == matte["BatchName"] == "shot010"
    assert (prop["Frames"], prop["ChunkSize"]) == (matte["Frames"], matte["ChunkSize"]) == ("1001-1006", "10")
    assert prop["OutputFilename0"] == "shot010.propagated.####.png"
    assert split_windows(read_info(folder / "shot010.propagate.plugin_info.job")["Arguments"]) == [
        "propagate", str(job), "--frames", "<STARTFRAME>-<ENDFRAME>", "--threads", "2"]  # no model: no budget
    assert split_windows(read_info(folder / "shot010.plugin_info.job")["Arguments"]) == [
        "run", str(job), "--frames", "<STARTFRAME>-<ENDFRAME>", "--threads", "2", "--memory-gb", "3.6"]
    # Each matte task waits for the propagation of its own frames; the job's ID is known at submit.
    assert matte["IsFrameDependent"] == "True" and "JobDependencies" not in matte and "IsFrameDependent" not in prop
    out = capsys.readouterr().out.splitlines()
    submit = [line for line in out if line.startswith(("submit with: ", "then: "))]
    assert shlex.split(submit[0].removeprefix("submit with: ")) == [
        "deadlinecommand", str(folder / "shot010.propagate.job_info.job"), str(folder / "shot010.propagate.plugin_info.job")]
    assert submit[1].startswith("then: deadlinecommand ") and "JobDependencies=" in submit[1]
    # With the temporal stage a matte reads its neighbours' trimaps: it waits for the whole job.
    job = _keyframes_job(tmp_path / "t", tiny_shot, temporal=True)
    assert main(["submit", str(job), "--farm", "deadline", "--dry-run", "--quiet"]) == 0
    assert "IsFrameDependent" not in read_info(folder_of(job) / "shot010.job_info.job")


def test_submit_sends_the_propagation_job_first_and_the_matte_job_with_its_id(tmp_path, tiny_shot, capsys, monkeypatch):
    calls = _fake_deadlinecommand(tmp_path, monkeypatch)
    job = _keyframes_job(tmp_path, tiny_shot)
    assert main(["submit", str(job), "--farm", "deadline", "--submit"]) == 0
    first, second = [json.loads(line) for line in calls.read_text().splitlines()]
    folder = folder_of(job)
    assert first["argv"] == [str(folder / "shot010.propagate.job_info.job"), str(folder / "shot010.propagate.plugin_info.job")]
    assert second["argv"] == [str(folder / "shot010.job_info.job"), str(folder / "shot010.plugin_info.job")]
    out = capsys.readouterr().out
    ids = {line.rpartition(" ")[2]: line.split("JobID=")[1].split()[0]
           for line in out.splitlines() if line.startswith("submitted to Deadline: JobID=")}
    assert list(ids) == ["(propagate)", "(run)"]
    prop_id = ids["(propagate)"]
    submitted = dict(line.split("=", 1) for line in second["job_info"].splitlines())
    assert submitted["JobDependencies"] == prop_id and submitted["IsFrameDependent"] == "True"
    assert "JobDependencies" not in first["job_info"]
    assert read_info(folder / "shot010.job_info.job")["JobDependencies"] == prop_id  # the file as submitted


def test_a_refused_propagation_job_stops_the_submission_with_exit_2(tmp_path, tiny_shot, capsys, monkeypatch):
    calls = _fake_deadlinecommand(tmp_path, monkeypatch, refuse="vfxmatte propagate")
    job = _keyframes_job(tmp_path, tiny_shot)
    assert main(["submit", str(job), "--farm", "deadline", "--submit"]) == 2
    assert len(calls.read_text().splitlines()) == 1  # the matte job was never sent
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["vfxmatte: error: Deadline: deadlinecommand refused the job (exit 1): Error: pool does not exist"]

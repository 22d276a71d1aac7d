"""A farm task's memory booking becomes its matting budget: the matting commands of OpenCue,
Deadline and local workers carry ``--memory-gb`` (the booking less its margin) when the job
sets no budget; ``submit --memory-gb`` wins; a booking too small for the frame is refused."""

from __future__ import annotations

import json
import shlex
import sys

import pytest
import yaml
from lxml import etree

from tests.farm.conftest import write_job
from tests.farm.test_deadline import folder_of, read_info, split_windows
from vfxmatte.cli import main
from vfxmatte.errors import FarmError
from vfxmatte.farm.commands import booking_gb, task_memory_gb
from vfxmatte.jobs import FarmSpec, load_job


def test_the_budget_is_the_booking_less_a_tenth_and_at_least_a_quarter_gib(tmp_path, tiny_shot):
    job = load_job(write_job(tmp_path, tiny_shot))
    assert booking_gb("8g") == 8 and booking_gb("512m") == 0.5
    assert [task_memory_gb(job, FarmSpec(memory=m)) for m in ("8g", "2g", "512m")] == [7.2, 1.75, 0.25]
    with pytest.raises(FarmError, match=r"farm\.memory 256m: nothing is left"):
        task_memory_gb(job, FarmSpec(memory="256m"))
    assert task_memory_gb(job, FarmSpec(memory="8g"), override=3.0) == 3.0
    assert task_memory_gb(job, FarmSpec()) is None


def _matte_argv(farm: str, job, tmp_path, monkeypatch, *options: str) -> list[str]:
    """The matting task's argument list that ``submit --farm FARM`` generates."""
    if farm == "opencue":
        assert main(["submit", str(job), "--farm", "opencue", "--dry-run", "--quiet", *options]) == 0
        doc = etree.fromstring((job.parent / "out" / "farm" / "shot010.opencue.xml").read_bytes())
        cmd = next(layer.findtext("cmd") for layer in doc.iter("layer") if layer.get("name") == "matte")
        return shlex.split(cmd)
    if farm == "deadline":
        assert main(["submit", str(job), "--farm", "deadline", "--quiet", *options]) == 0
        plugin = read_info(folder_of(job) / "shot010.plugin_info.job")
        return [plugin["Executable"], *split_windows(plugin["Arguments"])]
    from vfxmatte.farm import local

    record = tmp_path / "argv.json"
    real = local.run_local

    def recorded(*args, **kw):  # the real worker launcher, running a recorder instead of vfxmatte
        kw["executable"] = [sys.executable, "-c", f"import json, sys; open({str(record)!r}, 'w').write(json.dumps(sys.argv[1:]))"]
        return real(*args, **kw)

    monkeypatch.setattr(local, "run_local", recorded)
    assert main(["submit", str(job), "--farm", "local", "--workers", "1", "--quiet", *options]) == 0
    return json.loads(record.read_text())


def _memory_arg(argv: list[str]) -> str | None:
    return argv[argv.index("--memory-gb") + 1] if "--memory-gb" in argv else None


@pytest.mark.parametrize("farm", ["opencue", "deadline", "local"])
def test_every_farms_matting_command_carries_the_booking_as_its_budget(farm, tmp_path, tiny_shot, monkeypatch):
    if farm == "opencue":
        pytest.importorskip("outline")
    job = write_job(tmp_path / "a", tiny_shot, farm={"memory": "8g"})
    assert _memory_arg(_matte_argv(farm, job, tmp_path, monkeypatch)) == "7.2"
    # The command line's booking, and its explicit budget, which wins.
    assert _memory_arg(_matte_argv(farm, job, tmp_path, monkeypatch, "--memory", "2g")) == "1.75"
    assert _memory_arg(_matte_argv(farm, job, tmp_path, monkeypatch, "--memory-gb", "3")) == "3.0"
    # A job with its own budget: every task reads it from the job file; nothing is added.
    doc = yaml.safe_load(job.read_text().replace("$$HOME", "$HOME"))
    doc["model"]["memory_gb"] = 2.0
    job.write_text(yaml.safe_dump(doc, sort_keys=False).replace("$HOME", "$$HOME"))
    assert load_job(job).model.memory_gb == 2.0
    assert _memory_arg(_matte_argv(farm, job, tmp_path, monkeypatch)) is None
    # No booking, no budget: as before.
    bare = write_job(tmp_path / "b", tiny_shot)
    assert _memory_arg(_matte_argv(farm, bare, tmp_path, monkeypatch)) is None


@pytest.mark.parametrize("farm", ["deadline", "local"])
def test_a_booking_too_small_to_matte_in_is_refused_at_submit(farm, tmp_path, tiny_shot, capsys):
    job = write_job(tmp_path, tiny_shot, farm={"memory": "512m"})
    assert main(["submit", str(job), "--farm", farm, "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.memory_gb 0.25: the process with this network and one 256 px tile" in err[0], err
    assert not (job.parent / "out").exists()

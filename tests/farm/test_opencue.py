"""``vfxmatte submit --farm opencue``: a job spec built by pyoutline that Cuebot's DTD accepts,
layers and dependencies from the job, commands a POSIX shell runs with awkward paths intact,
and one clear line when no Cuebot answers."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.farm.conftest import outputs, write_job
from vfxmatte.cli import main
from vfxmatte.jobs import load_job

etree = pytest.importorskip("lxml.etree")
pytest.importorskip("outline")

DTD = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "opencue" / "cjsl-1.15.dtd"


def spec_of(job: Path) -> "etree._Element":
    return etree.fromstring((job.parent / "out" / "farm" / "shot010.opencue.xml").read_bytes())


def valid(doc) -> None:
    if not DTD.is_file():
        pytest.skip(f"the OpenCue DTD is not at {DTD} (shared/ beside the checkout)")
    dtd = etree.DTD(str(DTD))
    assert dtd.validate(doc), dtd.error_log.filter_from_errors()


def test_dry_run_writes_a_spec_cuebots_dtd_accepts_with_the_farm_section(tmp_path, tiny_shot, capsys):
    farm = {"show": "demo", "service": "vfxmatte", "cores": 2, "memory": "4g", "tags": ["cpu", "matte"],
            "chunk_size": 4, "priority": 60, "env": {"OCIO": "/studio/ocio/config.ocio"}}
    job = write_job(tmp_path, tiny_shot, farm=farm)
    assert main(["submit", str(job), "--farm", "opencue", "--dry-run", "--memory", "6g"]) == 0
    doc = spec_of(job)
    valid(doc)
    assert doc.findtext("show") == "demo" and doc.findtext("shot") == "shot010"
    (layer,) = doc.iter("layer")
    assert layer.get("name") == "matte" and layer.findtext("range") == "1001-1006" and layer.findtext("chunk") == "4"
    assert layer.findtext("cores") == "2.0" and layer.findtext("memory") == "6g"  # the command line wins
    assert layer.findtext("tags") == "cpu | matte" and layer.findtext("services/service") == "vfxmatte"
    assert layer.find("env/key[@name='OCIO']").text == "/studio/ocio/config.ocio"
    assert doc.findtext("job/priority") == "60"
    assert "--threads 2" in layer.findtext("cmd")
    assert "job spec:" in capsys.readouterr().out


def test_a_keyframes_job_gets_a_propagation_layer_the_matte_layer_depends_on_frame_by_frame(tmp_path, tiny_shot):
    job = write_job(tmp_path, tiny_shot)
    doc = yaml.safe_load(job.read_text())
    doc["trimap"] = {"mode": "keyframes", "path": doc["trimap"]["path"], "frames": "1001,1006"}
    doc["temporal"] = {"enabled": False}  # each matte reads only its own trimap
    job.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert main(["submit", str(job), "--farm", "opencue", "--dry-run", "--quiet"]) == 0
    spec = spec_of(job)
    valid(spec)
    layers = {layer.get("name"): layer.findtext("cmd") for layer in spec.iter("layer")}
    assert list(layers) == ["propagate", "matte"]
    assert " propagate " in layers["propagate"] and " run " in layers["matte"]
    (dep,) = spec.iter("depend")
    assert dep.get("type") == "FRAME_BY_FRAME" and dep.findtext("deplayer") == "matte" and dep.findtext("onlayer") == "propagate"
    # With the temporal stage a frame's matte reads its neighbours' trimaps: the whole layer first.
    doc["temporal"] = {"enabled": True}
    job.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert main(["submit", str(job), "--farm", "opencue", "--dry-run", "--quiet"]) == 0
    (dep,) = spec_of(job).iter("depend")
    assert dep.get("type") == "LAYER_ON_LAYER"


def test_a_gappy_frame_list_goes_to_opencue_frame_by_frame(tmp_path, tiny_shot):
    job = write_job(tmp_path, tiny_shot)
    assert main(["submit", str(job), "--farm", "opencue", "--dry-run", "--quiet", "--frames", "1001,1002,1005"]) == 0
    (layer,) = spec_of(job).iter("layer")
    assert layer.findtext("range") in ("1001,1002,1005", "1001-1002,1005") and layer.findtext("chunk") == "1"
    assert "--frames '#IFRAME#'" in layer.findtext("cmd")


def test_the_layer_command_runs_in_a_posix_shell_with_spaces_quotes_and_dollars_in_paths(tmp_path, tiny_shot):
    """What RQD does with a layer's cmd: replace the frame tokens, run it in a shell."""
    job = write_job(tmp_path, tiny_shot, farm={"executable": [sys.executable, "-m", "vfxmatte"]})
    assert main(["submit", str(job), "--farm", "opencue", "--dry-run", "--quiet", "--chunk-size", "2"]) == 0
    (layer,) = spec_of(job).iter("layer")
    cmd = layer.findtext("cmd").replace("#FRAME_START#", "1003").replace("#FRAME_END#", "1004")
    assert str(job) not in cmd  # it is quoted, not pasted
    proc = subprocess.run(["/bin/sh", "-c", cmd], capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    assert list(outputs(job)) == ["shot010.1003.exr", "shot010.1004.exr"]
    assert re.search(r"Progress: 100%", proc.stdout)


def test_without_a_cuebot_submit_fails_with_one_line_and_exit_2(tmp_path, tiny_shot, capsys):
    job = write_job(tmp_path, tiny_shot)
    assert main(["submit", str(job), "--farm", "opencue", "--cuebot", "127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("vfxmatte: error: OpenCue: could not submit shot010_vfxmatte to Cuebot (127.0.0.1:1): ")


def test_bad_farm_values_are_refused_by_key(tmp_path, tiny_shot, capsys):
    job = write_job(tmp_path, tiny_shot, farm={"memory": "8.5g"})
    assert main(["submit", str(job), "--farm", "opencue", "--dry-run"]) == 2
    assert "farm.memory" in capsys.readouterr().err
    job = write_job(tmp_path, tiny_shot)
    assert main(["submit", str(job), "--farm", "opencue", "--dry-run", "--tags", "a b"]) == 2
    assert "vfxmatte: error: --tags:" in capsys.readouterr().err


def test_the_farm_section_does_not_change_the_job_hash(tmp_path, tiny_shot):
    job = write_job(tmp_path, tiny_shot)
    before = load_job(job).job_hash
    job.write_text(job.read_text() + "farm:\n  show: demo\n  chunk_size: 3\n")
    assert load_job(job).farm.show == "demo" and load_job(job).job_hash == before

"""Environment expansion: one syntax (vfxmatte.env), used by job files, training configs and
checkpoint names alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.config import from_dict, load_config
from vfxmatte.checkpoint import resolve, save_checkpoint
from vfxmatte.env import expand_env, expand_env_tree
from vfxmatte.errors import CheckpointError, ConfigError, EnvVarError, JobError, VfxMatteError
from vfxmatte.jobs import parse_job
from vfxmatte.model import build_model

ENV = {"SHOW": "/show/abc", "EMPTY": "", "F": "not-a-frame"}
TINY = Path(__file__).resolve().parents[1] / "training" / "configs" / "tiny.yaml"


# --------------------------------------------------------------------------- the syntax


@pytest.mark.parametrize(
    "text, expanded",
    [
        ("$SHOW/plates", "/show/abc/plates"),
        ("${SHOW}plates", "/show/abcplates"),
        ("$SHOW_2", None),  # the longest name: SHOW_2, which is unset
        ("${SHOW:-/fallback}", "/show/abc"),
        ("${UNSET:-/fallback}/x", "/fallback/x"),
        ("${EMPTY:-/fallback}", "/fallback"),  # as in POSIX shells: empty takes the default
        ("${UNSET:-}", ""),
        ("${UNSET:-$SHOW}", "$SHOW"),  # the default is literal text
        ("[$EMPTY]", "[]"),
        ("$$SHOW costs $$5", "$SHOW costs $5"),
        ("$$$SHOW", "$/show/abc"),
        ("shot.$F4.exr and $F", "shot.$F4.exr and $F"),  # Houdini frame tokens
        ("${F}", "not-a-frame"),
        ("$F4x", None),  # a longer name is a variable
        ("$1 $ and $-", "$1 $ and $-"),  # a $ before anything else is literal
        ("no dollar", "no dollar"),
        ("${SHOW}${SHOW}", "/show/abc/show/abc"),
    ],
)
def test_syntax(text, expanded):
    if expanded is None:
        with pytest.raises(EnvVarError):
            expand_env(text, ENV)
    else:
        assert expand_env(text, ENV) == expanded


def test_a_value_is_not_expanded_again():
    assert expand_env("$A", {"A": "$B", "B": "no"}) == "$B"


@pytest.mark.parametrize("text", ["${}", "${1X}", "${SHOW-x}", "${SHOW:=x}", "${SHOW", "a/${SHOW/b"])
def test_malformed_references_are_errors_naming_them(text):
    with pytest.raises(EnvVarError, match="invalid environment variable reference") as info:
        expand_env(text, ENV)
    assert info.value.variable is None and text[text.index("$") :][:3] in info.value.reason


def test_unset_variable_is_an_error_naming_it(monkeypatch):
    monkeypatch.delenv("VFXMATTE_UNSET_VAR", raising=False)
    with pytest.raises(EnvVarError) as info:
        expand_env("/a/${VFXMATTE_UNSET_VAR}/b")
    assert isinstance(info.value, VfxMatteError)
    assert info.value.variable == "VFXMATTE_UNSET_VAR"
    assert info.value.reason == str(info.value) == "environment variable $VFXMATTE_UNSET_VAR is not set"


def test_os_environ_is_read_at_call_time(monkeypatch):
    monkeypatch.setenv("VFXMATTE_ENV_TEST", "one")
    assert expand_env("$VFXMATTE_ENV_TEST") == "one"
    monkeypatch.setenv("VFXMATTE_ENV_TEST", "two")
    assert expand_env("$VFXMATTE_ENV_TEST") == "two"


def test_tree_expands_strings_only_and_collects_every_error():
    data = {"a": "$SHOW", "n": 3, "b": [True, "$NOPE", {"$SHOW": "${BAD"}], "c": None}
    out, errors = expand_env_tree(data, ENV)
    assert out == {"a": "/show/abc", "n": 3, "b": [True, "$NOPE", {"$SHOW": "${BAD"}], "c": None}
    assert [path for path, _ in errors] == [("b", 1), ("b", 2, "$SHOW")]
    assert errors[0][1].variable == "NOPE"
    assert data["a"] == "$SHOW"  # the input is not modified


# --------------------------------------------------------------------------- its users

JOB = """\
version: 1
shot: shot010
plate:
  path: {plate}
trimap:
  path: trimaps/shot010.####.png
model:
  checkpoint: {checkpoint}
output:
  path: out/shot010.####.exr
"""


def test_job_files_use_the_syntax(tmp_path, monkeypatch):
    monkeypatch.setenv("SHOW", "/show/abc")
    monkeypatch.delenv("VFXMATTE_UNSET_VAR", raising=False)
    text = JOB.format(plate="${VFXMATTE_UNSET_VAR:-$$plates}/s.####.exr", checkpoint="$SHOW/w.safetensors")
    job = parse_job(text, tmp_path)
    assert job.plate.path == str(tmp_path / "$$plates" / "s.####.exr")  # defaults are literal
    assert job.model.checkpoint == "/show/abc/w.safetensors"


def test_job_env_errors_keep_file_line_key(tmp_path, monkeypatch):
    monkeypatch.delenv("VFXMATTE_UNSET_VAR", raising=False)
    text = JOB.format(plate="${VFXMATTE_UNSET_VAR}/s.####.exr", checkpoint="${bad name}")
    with pytest.raises(JobError) as info:
        parse_job(text, tmp_path, source="shot.yaml")
    assert info.value.errors == [
        "shot.yaml:4: plate.path: environment variable $VFXMATTE_UNSET_VAR is not set",
        "shot.yaml:8: model.checkpoint: invalid environment variable reference '${bad name}'",
    ]


def _config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(f"inherit: {TINY}\n{body}")
    return path


def test_training_configs_use_the_syntax(tmp_path, monkeypatch):
    monkeypatch.setenv("VFXMATTE_RUNS", "/runs")
    monkeypatch.delenv("VFXMATTE_UNSET_VAR", raising=False)
    cfg = load_config(
        _config(tmp_path, "train:\n  out_dir: $VFXMATTE_RUNS/a$$b\ninit_checkpoint: ${VFXMATTE_UNSET_VAR:-starter}\n")
    )
    assert cfg.train.out_dir == "/runs/a$b"
    assert cfg.init_checkpoint == "starter"
    # A stored config (a training state's) is already expanded: its '$' stays literal.
    assert from_dict(cfg.to_dict()).train.out_dir == "/runs/a$b"


def test_training_env_errors_name_the_file_and_key(tmp_path, monkeypatch):
    monkeypatch.delenv("VFXMATTE_UNSET_VAR", raising=False)
    with pytest.raises(ConfigError) as info:
        load_config(_config(tmp_path, "train:\n  out_dir: $VFXMATTE_UNSET_VAR/run\n"))
    assert str(info.value) == "run.yaml: train.out_dir: environment variable $VFXMATTE_UNSET_VAR is not set"


def test_training_inherit_names_use_the_syntax(tmp_path, monkeypatch):
    monkeypatch.setenv("VFXMATTE_CONFIGS", str(TINY.parent))
    (tmp_path / "run.yaml").write_text("inherit: $VFXMATTE_CONFIGS/tiny.yaml\n")
    assert load_config(tmp_path / "run.yaml").data.out_size == load_config(TINY).data.out_size
    monkeypatch.delenv("VFXMATTE_CONFIGS")
    with pytest.raises(ConfigError, match=r"run\.yaml: inherit: environment variable \$VFXMATTE_CONFIGS is not set"):
        load_config(tmp_path / "run.yaml")


def test_checkpoint_names_are_expanded_once_where_text_enters(tmp_path, monkeypatch):
    # A job's checkpoint is expanded with the job (the one syntax), then resolved as written:
    # a '$' it holds after expansion is part of the file name, not a second reference.
    monkeypatch.setenv("x", "SHOULD-NOT-BE-USED")
    ckpt = save_checkpoint(tmp_path / "w$x.safetensors", build_model("tiny"))
    job = parse_job(JOB.format(plate="p/s.####.exr", checkpoint="w$$x.safetensors"), tmp_path)
    assert job.model.checkpoint == str(ckpt)
    assert resolve(job.model.checkpoint) == ckpt
    monkeypatch.setenv("CKPT_DIR", str(tmp_path))
    with pytest.raises(CheckpointError, match=r"\$CKPT_DIR/w\.safetensors: checkpoint not found"):
        resolve("$CKPT_DIR/w.safetensors")

"""The README and the CLI's docstring describe the commands and the tree as they are."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import vfxmatte.cli as cli

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _section(text: str, heading: str) -> str:
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"README has no '## {heading}' section"
    return match.group(1)


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _usage_lines(text: str, command: str) -> str:
    """The lines of ``text`` that document ``vfxmatte COMMAND`` (a line and its indented continuations)."""
    out, taking = [], False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(f"vfxmatte {command} ") or stripped == f"vfxmatte {command}":
            taking = True
        elif taking and not (line.startswith(" " * 6) and stripped.startswith("[")):
            taking = False
        if taking:
            out.append(stripped)
    return " ".join(out)


@pytest.mark.parametrize("where", ["README", "cli docstring"])
def test_every_command_and_option_is_documented(where):
    text = _section(README, "Commands") if where == "README" else cli.__doc__
    for name, sub in _subcommands().items():
        usage = _usage_lines(text, name)
        assert usage, f"{where} does not list `vfxmatte {name}`"
        for action in sub._actions:
            options = [o for o in action.option_strings if o.startswith("--")]
            if not options or action.help == argparse.SUPPRESS or options[0] in ("--help",):
                continue
            if any(o in ("--quiet", "--log-format", "--debug") for o in options):
                continue  # global options, documented once
            assert any(o in usage for o in options), f"{where}: `vfxmatte {name}` lacks {options[0]}"


def _tracked_files() -> list[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return out.splitlines()


def test_layout_names_every_top_level_folder_and_core_module():
    layout = _section(README, "Layout")
    files = _tracked_files()
    folders = {f.split("/")[0] for f in files if "/" in f and not f.startswith(".")}
    for folder in sorted(folders):
        assert f"{folder}/" in layout, f"README Layout does not name {folder}/"
    modules = set()
    for f in files:
        parts = f.split("/")
        if parts[0] != "vfxmatte" or len(parts) < 2:
            continue
        if len(parts) == 2 and f.endswith(".py") and parts[1] not in ("__init__.py", "__main__.py"):
            modules.add(f)
        elif len(parts) > 2:
            modules.add("/".join(parts[:2]) + "/")
    for module in sorted(modules):
        assert module in layout, f"README Layout does not name {module}"

"""What a plain ``pip install vfxmatte`` gives: the product package and every library it imports.

The wheel holds ``vfxmatte`` alone; ``training/`` runs from a checkout (``python -m training``)
and must never be installed as a top-level package with that generic name.
"""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from setuptools import find_packages

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _requirement_name(spec: str) -> str:
    return re.split(r"[<>=!~;\[ ]", spec, maxsplit=1)[0].strip().lower().replace("_", "-")


def test_the_wheel_holds_vfxmatte_only():
    find = PYPROJECT["tool"]["setuptools"]["packages"]["find"]
    packages = find_packages(str(ROOT), include=find["include"])
    assert "vfxmatte" in packages and "vfxmatte.io" in packages and "vfxmatte.model" in packages
    assert all(p == "vfxmatte" or p.startswith("vfxmatte.") for p in packages), packages
    assert "training" not in PYPROJECT["tool"]["setuptools"].get("package-data", {})


def test_console_scripts_point_into_the_product():
    for name, target in PYPROJECT["project"]["scripts"].items():
        assert target.split(":")[0].split(".")[0] == "vfxmatte", (name, target)


def _third_party_imports(package: Path, at_module_level: bool | None = None) -> set[str]:
    """Top-level names of the third-party modules ``package`` imports: all of them, only those
    imported at module level (``True``: loaded with vfxmatte), or only those imported inside a
    function (``False``: loaded on use)."""
    names: set[str] = set()
    for path in package.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        top = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if at_module_level is not None and (id(node) in top) != at_module_level:
                continue
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != "vfxmatte"}


def _owners(module: str) -> set[str]:
    dists = importlib.metadata.packages_distributions()
    return {d.lower().replace("_", "-") for d in dists.get(module, [])}


#: extras that are not features of the product
_TOOL_EXTRAS = {"test", "bench"}


def _feature_extras() -> dict[str, set[str]]:
    extras = PYPROJECT["project"].get("optional-dependencies", {})
    return {k: {_requirement_name(s) for s in v} for k, v in extras.items() if k not in _TOOL_EXTRAS}


def test_every_library_the_product_imports_is_a_core_dependency():
    # `vfxmatte eval` (scipy, through vfxmatte.metrics) and the rest must work after a plain
    # install, without the test extra. Only a feature extra's libraries (``[opencue]``) may be
    # missing, and those are imported on use, inside the function that needs them.
    declared = {_requirement_name(s) for s in PYPROJECT["project"]["dependencies"]}
    optional = set().union(*_feature_extras().values())
    missing = {}
    for module in sorted(_third_party_imports(ROOT / "vfxmatte", at_module_level=True)):
        if not _owners(module) & declared:
            missing[module] = sorted(_owners(module))
    for module in sorted(_third_party_imports(ROOT / "vfxmatte", at_module_level=False)):
        if not _owners(module) & (declared | optional):
            missing[module] = sorted(_owners(module))
    assert not missing, f"imported by vfxmatte but not in [project].dependencies (or, on use, an extra): {missing}"


def test_every_feature_extra_is_imported_by_the_product_on_use():
    lazy = {d for m in _third_party_imports(ROOT / "vfxmatte", at_module_level=False) for d in _owners(m)}
    for name, requirements in _feature_extras().items():
        assert requirements & lazy, f"extra [{name}] is declared but vfxmatte imports none of {sorted(requirements)}"


def test_training_is_not_importable_outside_a_checkout(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "-c", "import vfxmatte, importlib.util; print(importlib.util.find_spec('training'))"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "None"  # the installed distribution adds no top-level 'training'

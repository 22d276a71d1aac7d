"""The error hierarchy: one root, every class documented, every attribute declared."""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil
import typing

import pytest

import training
import vfxmatte
from vfxmatte import errors
from vfxmatte.errors import ConfigError, EnvVarError, JobError, TrainingError, VfxMatteError

ERROR_CLASSES = [
    obj for _, obj in inspect.getmembers(errors, inspect.isclass)
    if issubclass(obj, BaseException) and obj.__module__ == errors.__name__
]


def _declared(cls: type) -> set[str]:
    names: set[str] = set()
    for klass in cls.__mro__:
        names |= set(getattr(klass, "__annotations__", {}))
    return names


def test_errors_module_holds_the_whole_hierarchy():
    assert VfxMatteError in ERROR_CLASSES and len(ERROR_CLASSES) > 10
    for cls in ERROR_CLASSES:
        assert issubclass(cls, VfxMatteError), cls
        assert cls.__doc__ and cls.__doc__.strip(), f"{cls.__name__} has no docstring"


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_instance_attributes_are_declared_on_the_class(cls):
    exc = cls("file.exr: something is wrong")
    assert str(exc) == "file.exr: something is wrong"
    assert set(vars(exc)) <= _declared(cls), f"{cls.__name__}: undeclared {set(vars(exc)) - _declared(cls)}"


def test_job_error_declares_its_problem_list():
    hints = typing.get_type_hints(JobError)
    assert hints["errors"] == list[str]
    assert JobError("a.yaml:3: shot: bad").errors == ["a.yaml:3: shot: bad"]
    two = JobError("a.yaml:3: shot: bad (and 1 more error(s))", errors=["a.yaml:3: shot: bad", "a.yaml:5: plate: x"])
    assert two.errors == ["a.yaml:3: shot: bad", "a.yaml:5: plate: x"]
    assert "errors:" in JobError.__doc__
    assert pickle.loads(pickle.dumps(two)).errors == two.errors


def test_env_var_error_declares_reason_and_variable():
    hints = typing.get_type_hints(EnvVarError)
    assert {"reason", "variable"} <= set(hints)
    exc = EnvVarError("environment variable $X is not set", variable="X")
    assert (exc.reason, exc.variable) == ("environment variable $X is not set", "X")
    back = pickle.loads(pickle.dumps(exc))
    assert (back.reason, back.variable, str(back)) == (exc.reason, "X", str(exc))


def test_training_config_error_lives_in_the_core_hierarchy():
    import training.config

    assert issubclass(ConfigError, TrainingError)
    assert training.config.ConfigError is ConfigError  # used there, declared once, in vfxmatte.errors


def _modules(package) -> list[str]:
    return [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")
            if not m.name.endswith("__main__")]


@pytest.mark.parametrize("package", [vfxmatte, training], ids=lambda p: p.__name__)
def test_no_exception_class_is_declared_outside_vfxmatte_errors(package):
    # Private ones are the CLIs' own control flow, caught before main() returns.
    found = []
    for name in _modules(package):
        if name == errors.__name__:
            continue
        module = importlib.import_module(name)
        for cls_name, obj in inspect.getmembers(module, inspect.isclass):
            if obj.__module__ == name and issubclass(obj, BaseException) and not cls_name.startswith("_"):
                found.append(f"{name}.{cls_name}")
    assert not found, f"exception classes outside vfxmatte.errors: {found}"


def test_is_internal_tells_a_bug_from_a_bad_file_or_machine():
    import torch

    from vfxmatte.errors import ImageReadError, is_internal

    assert is_internal(ZeroDivisionError("x")) and is_internal(KeyError("k")) and is_internal(RuntimeError("x"))
    assert not is_internal(ImageReadError("plate.1001.exr: cannot read pixels"))
    assert not is_internal(PermissionError(13, "Permission denied"))
    assert not is_internal(MemoryError())
    assert not is_internal(torch.OutOfMemoryError("CUDA out of memory"))

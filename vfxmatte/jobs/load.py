"""Reading a job: YAML text -> environment expansion -> schema validation -> :class:`Job`.

The text is read with ``yaml.safe_load`` (never ``yaml.load``: a job file must not be able to
run code) and composed once more for line numbers (:mod:`vfxmatte.jobs.lines`). Every string
value is expanded with :func:`vfxmatte.env.expand_env` before validation. All problems of one
stage are reported together, in line order, as one :class:`~vfxmatte.errors.JobError` whose
``errors`` hold one ``file:line: key: message`` line each.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from vfxmatte.env import KeyPath, expand_env_tree
from vfxmatte.errors import JobError
from vfxmatte.io.sequence import not_a_file
from vfxmatte.jobs.checks import check_job
from vfxmatte.jobs.lines import dotted, line_map, locate
from vfxmatte.jobs.schema import Job

__all__ = ["load_job", "parse_job"]


def _message(err: dict[str, Any]) -> str:
    """A pydantic error's message in the job file's words."""
    t, msg = err["type"], err["msg"]
    if t == "extra_forbidden":
        return "unknown key"
    if t == "missing":
        return "required key is missing"
    if t == "value_error":
        return msg.removeprefix("Value error, ")
    return msg


def _job_error(source: str, items: list[tuple[int, KeyPath, str]]) -> JobError:
    """One JobError for ``(line, key path, message)`` problems: the first in line order is the
    message (with a count of the rest), every one is in ``errors``."""
    items = sorted(items, key=lambda x: x[0])
    lines = [f"{source}:{line}: {dotted(path)}: {msg}" for line, path, msg in items]
    text = lines[0] if len(lines) == 1 else f"{lines[0]} (and {len(lines) - 1} more error(s))"
    return JobError(text, errors=lines)


#: A job file is a few kilobytes; anything past this is refused before it is parsed.
MAX_JOB_CHARS = 1 << 20
#: Nodes a job file may hold once its aliases are expanded (a billion-laughs document holds
#: about 10**9 from a few hundred bytes); a real job has some tens.
MAX_JOB_NODES = 10_000


def _check_expanded_size(root: yaml.Node, source: str) -> None:
    """Refuse a node tree that expands, through its aliases, to more than
    :data:`MAX_JOB_NODES` nodes, or that contains itself. Each distinct node is visited once
    (an alias is the very node object it names), so the check costs one step per distinct
    node, however far the aliases would expand."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            line = node.start_mark.line + 1
            raise JobError(f"{source}:{line}: invalid YAML: an alias refers to a node that contains it")
        open_nodes.add(key)
        if isinstance(node, yaml.MappingNode):
            n = 1 + sum(size(k) + size(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            n = 1 + sum(size(v) for v in node.value)
        else:
            n = 1
        open_nodes.discard(key)
        if n > MAX_JOB_NODES:
            line = node.start_mark.line + 1
            raise JobError(
                f"{source}:{line}: invalid YAML: aliases expand to more than {MAX_JOB_NODES} values (an alias bomb?)"
            )
        sizes[key] = n
        return n

    size(root)


def parse_job(text: str, base_dir: str | os.PathLike[str], source: str = "<job>", check: bool = False) -> Job:
    """Validate job YAML ``text``; relative paths resolve against ``base_dir``.

    Args:
        source: the name used in error messages (the job file's path).
        check: also check that the files it names exist (see :func:`~vfxmatte.jobs.check_job`).

    Raises:
        JobError: YAML syntax, schema, environment variable or (with ``check``) file errors;
            ``errors`` lists every problem found, one ``file:line: key: message`` each.
    """
    if len(text) > MAX_JOB_CHARS:
        raise JobError(f"{source}: job file is {len(text)} characters; at most {MAX_JOB_CHARS} are read")
    # yaml.safe_load's own steps (SafeLoader: compose, then construct), with the composed node
    # tree sized in between: aliases are expanded by everything that walks the data later.
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:  # the reader refuses control characters (NUL ...) at once
        char = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        line = text.count("\n", 0, exc.position) + 1
        raise JobError(f"{source}:{line}: invalid YAML: character {char} is not allowed") from None
    try:
        root = loader.get_single_node()
        if root is not None:
            _check_expanded_size(root, source)
        data = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise JobError(f"{source}{line}: invalid YAML: {problem}") from None
    except RecursionError:
        raise JobError(f"{source}: invalid YAML: nested too deeply") from None
    finally:
        loader.dispose()
    if root is None or not isinstance(data, dict):
        raise JobError(f"{source}:1: a job file must be a YAML mapping (version, shot, plate, trimap, output)")
    lines = line_map(root, source)

    data, env_errors = expand_env_tree(data)
    if env_errors:
        raise _job_error(source, [(lines.get(p, (1, 1))[1], p, exc.reason) for p, exc in env_errors])

    try:
        job = Job.model_validate(data, context={"base_dir": str(base_dir)})
    except ValidationError as exc:
        items = []
        for err in exc.errors():
            path, line = locate(tuple(err["loc"]), data, lines, err["type"])
            items.append((line, path, _message(err)))
        raise _job_error(source, items) from None
    job._lines = lines
    job._source = source
    if check:
        check_job(job)
    return job


def load_job(path: str | os.PathLike[str], check: bool = True) -> Job:
    """Read and validate a job file.

    Args:
        path: the ``.yaml`` job file.
        check: check that the checkpoint, OCIO config, plate frames and still trimaps it names
            exist and that the plate's colourspace is known (default).

    Raises:
        JobError: the file is missing or unreadable, or fails validation or checks; the
            message names the file, line and key.
    """
    p = Path(path)
    what = not_a_file(p)
    if what not in (None, "missing"):  # a FIFO would block the read for ever
        raise JobError(f"{p}: cannot read job file ({what}, not a file)")
    try:
        with p.open("rb") as fh:
            raw = fh.read(MAX_JOB_CHARS * 4 + 1)  # utf-8: at most 4 bytes a character
        if len(raw) > MAX_JOB_CHARS * 4:
            raise JobError(f"{p}: job file is over {MAX_JOB_CHARS * 4} bytes; at most {MAX_JOB_CHARS} characters are read")
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise JobError(f"{p}: job file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise JobError(f"{p}: cannot read job file ({exc})") from None
    return parse_job(text, base_dir=p.resolve().parent, source=str(path), check=check)

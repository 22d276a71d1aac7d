"""The YAML line mapper: which line of a job file each key and value sits on.

``yaml.safe_load`` returns plain data without positions, so the loader also composes the YAML
node tree and maps every key path to its lines. Errors found later (schema validation, file
checks) are then reported as ``file:line: key.path: message``. Lines are 1-based.
"""

from __future__ import annotations

from typing import Any

import yaml

from vfxmatte.env import KeyPath
from vfxmatte.errors import JobError

__all__ = ["LineMap", "dotted", "line_map", "locate", "where"]

#: Key path -> (line of the key, line of the value), 1-based. The root ``()`` maps to the
#: document's first line.
LineMap = dict[KeyPath, tuple[int, int]]


def line_map(node: yaml.Node, source: str) -> LineMap:
    """``key path -> (line of the key, line of the value)`` for every mapping entry and list item.

    A nested mapping or list is placed on its key's line, a scalar on its own line (it may sit
    lines below its key).

    Raises:
        JobError: a duplicate key (``safe_load`` would silently keep the last one), naming
            ``source``, its line and the line where the key was first set.
    """
    lines: LineMap = {(): (node.start_mark.line + 1,) * 2}

    def walk(n: yaml.Node, path: KeyPath) -> None:
        if isinstance(n, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for k, v in n.value:
                key = k.value if isinstance(k, yaml.ScalarNode) else str(k.value)
                line = k.start_mark.line + 1
                if key in seen:
                    keys = ".".join(str(p) for p in (*path, key))
                    raise JobError(f"{source}:{line}: {keys}: duplicate key (first set on line {seen[key]})")
                seen[key] = line
                scalar = isinstance(v, yaml.ScalarNode)
                lines[(*path, key)] = (line, v.start_mark.line + 1 if scalar else line)
                walk(v, (*path, key))
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                lines[(*path, i)] = (v.start_mark.line + 1,) * 2
                walk(v, (*path, i))

    walk(node, ())
    return lines


def dotted(path: KeyPath) -> str:
    """A key path as the user writes it: ``plate.path``, ``items[2].name``; ``(job)`` for the root."""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(job)"


def locate(loc: tuple[Any, ...], data: Any, lines: LineMap, err_type: str) -> tuple[KeyPath, int]:
    """Map a pydantic error location to the key path the user wrote and the line to report.

    Union tags (``trimap.mask.path``) are dropped because they are not keys of the data; a
    trailing key that is absent (a missing field) is kept and reported on its parent's line.
    An unknown key is reported on the key's line, a bad value on the value's line.
    """
    path: KeyPath = ()
    node = data
    rest = list(loc)
    while rest:
        seg = rest.pop(0)
        if isinstance(node, dict) and seg in node:
            path, node = (*path, seg), node[seg]
        elif isinstance(node, list) and isinstance(seg, int) and 0 <= seg < len(node):
            path, node = (*path, seg), node[seg]
        elif not rest:
            path = (*path, seg)  # missing or unknown key: name it
    if err_type == "trimap_mode":
        path = (*path, "mode")
    if path in lines:
        key_line, value_line = lines[path]
        return path, key_line if err_type == "extra_forbidden" else value_line
    for n in range(len(path) - 1, -1, -1):
        if path[:n] in lines:
            return path, lines[path[:n]][0]  # a missing key: its parent's line
    return path, 1


def where(source: str, lines: LineMap, path: KeyPath) -> str:
    """``source:line: key.path`` for a key of a loaded job (the line of its value, else of the
    nearest enclosing key present in the file; no line when the file has none of them)."""
    for n in range(len(path), -1, -1):
        if path[:n] in lines:
            return f"{source}:{lines[path[:n]][1]}: {dotted(path)}"
    return f"{source}: {dotted(path)}"

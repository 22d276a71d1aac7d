"""Environment variable expansion: the one syntax for job files and training configs.

Syntax (expanded left to right in one pass; what a variable holds is never expanded again):

- ``$VAR`` and ``${VAR}``: the variable's value (empty if it is set to the empty string). A name
  is a letter or ``_`` followed by letters, digits and ``_``; ``$VAR`` takes the longest name.
- ``${VAR:-default}``: the value, or ``default`` when VAR is unset or empty (as in POSIX
  shells). The default is literal text up to the first ``}``; it is not expanded.
- ``$$``: a literal ``$``.
- ``$F`` and ``$F4`` (``$F`` followed by digits only) are Houdini frame tokens, not variables,
  and stay as written; ``${F}`` is the variable F.
- A ``$`` followed by anything else (a digit, a space, the end of the text) is literal.

An unset variable without a default, or a malformed ``${...}`` (an invalid name, another
operator than ``:-``, no closing ``}``), raises :class:`~vfxmatte.errors.EnvVarError` naming
it. Callers that know where the text came from (job file and line, config key) re-raise it as
their own error with that location.

Example:
    >>> expand_env("$SHOW/plates/shot010.$F4.exr", {"SHOW": "/show/abc"})
    '/show/abc/plates/shot010.$F4.exr'
    >>> expand_env("${CACHE:-/tmp}/cache, price $$5", {})
    '/tmp/cache, price $5'
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, Union

from vfxmatte.errors import EnvVarError

__all__ = ["KeyPath", "expand_env", "expand_env_tree"]

#: A key path into nested YAML data: mapping keys and list indices.
KeyPath = tuple[Union[str, int], ...]

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
# $$ | ${...} | ${ without a closing brace | $NAME
_REF = re.compile(r"\$(?:(\$)|\{([^}]*)\}|(\{.*)|(" + _NAME + r"))", re.DOTALL)
_BRACED = re.compile(r"(" + _NAME + r")(?::-(.*))?", re.DOTALL)
_HOUDINI_FRAME = re.compile(r"F\d*")


def expand_env(text: str, environ: Mapping[str, str] | None = None) -> str:
    """``text`` with its environment variable references expanded (syntax: module docstring).

    Args:
        text: the string to expand.
        environ: the variables to read; None reads ``os.environ`` at call time.

    Raises:
        EnvVarError: an unset variable without a default, or a malformed ``${...}``.
    """
    env = os.environ if environ is None else environ

    def value(name: str, default: str | None) -> str:
        got = env.get(name)
        if default is not None:
            return got if got else default
        if got is None:
            raise EnvVarError(f"environment variable ${name} is not set", variable=name)
        return got

    def sub(m: re.Match[str]) -> str:
        literal, braced, unclosed, bare = m.groups()
        if literal is not None:
            return "$"
        if bare is not None:
            return m.group(0) if _HOUDINI_FRAME.fullmatch(bare) else value(bare, None)
        if unclosed is not None:
            raise EnvVarError(f"invalid environment variable reference {m.group(0)!r} (no closing '}}')")
        parts = _BRACED.fullmatch(braced)
        if parts is None:
            raise EnvVarError(f"invalid environment variable reference {m.group(0)!r}")
        return value(parts.group(1), parts.group(2))

    return _REF.sub(sub, text) if "$" in text else text


def expand_env_tree(
    data: Any, environ: Mapping[str, str] | None = None
) -> tuple[Any, list[tuple[KeyPath, EnvVarError]]]:
    """Expand every string in nested dicts and lists (keys and non-strings are kept).

    Returns:
        The expanded copy, and one ``(key path, error)`` per string that could not be
        expanded (that string is kept unexpanded), in document order, so a caller can
        report every problem at once.
    """
    errors: list[tuple[KeyPath, EnvVarError]] = []

    def walk(node: Any, path: KeyPath) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, (*path, k)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, (*path, i)) for i, v in enumerate(node)]
        if isinstance(node, str):
            try:
                return expand_env(node, environ)
            except EnvVarError as exc:
                errors.append((path, exc))
        return node

    return walk(data, ()), errors

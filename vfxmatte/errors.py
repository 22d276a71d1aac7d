"""One root exception for everything vfxmatte raises on purpose.

Every message names the file, key or frame at fault, so the CLI can print it as one
line without a traceback (the CLI shows tracebacks only under ``--debug``).
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Sequence

#: The exit codes of ``vfxmatte`` (documented in :mod:`vfxmatte.cli`): success; some frames
#: failed; a bad job, bad arguments or a problem that stops the whole run; an internal error
#: (a bug: an exception that is not a :class:`VfxMatteError`; BSD ``EX_SOFTWARE``); interrupted
#: by SIGINT or SIGTERM.
EXIT_OK, EXIT_FRAMES_FAILED, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 70, 130


class VfxMatteError(Exception):
    """Root of all errors vfxmatte raises for bad input, bad files or bad setup."""

    #: True when the failure may go away by itself on a second try (an I/O error reading a
    #: file that opened, on a network filesystem); see :func:`is_transient`.
    transient: bool = False


class JobError(VfxMatteError):
    """A job file is missing, unreadable or fails schema validation.

    The message is the first problem (``file:line: key: message``), followed by a count of the
    others when there are several.

    Attributes:
        errors: every problem found, one ``file:line: key: message`` line each, in line order;
            a single problem gives a one-item list holding the message.
    """

    errors: list[str]

    def __init__(self, message: str, errors: Sequence[str] | None = None) -> None:
        super().__init__(message)
        self.errors = list(errors) if errors else [message]

    def __reduce__(self):  # pickles (e.g. across worker processes) with its errors
        return type(self), (str(self), self.errors)


class SequenceError(VfxMatteError):
    """A frame sequence pattern, frame range or missing frame problem."""


class _IOFailure(VfxMatteError):
    """A file could not be read or written; ``transient`` when trying again may succeed."""

    transient: bool

    def __init__(self, message: str, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient

    def __reduce__(self):  # pickles (e.g. across worker processes) with its attributes
        return type(self), (str(self), self.transient)


class ImageReadError(_IOFailure):
    """An image file could not be read or lacks the requested channels/layer.

    Attributes:
        transient: the file opened but reading it failed (an I/O error: worth a retry).
    """


class ImageWriteError(_IOFailure):
    """An image file could not be written (``transient``: as for :class:`ImageReadError`)."""


class ColorError(VfxMatteError):
    """An OCIO config or colourspace is missing or a conversion failed."""


class TrimapError(VfxMatteError):
    """A trimap has the wrong shape or holds values outside the bg/unknown/fg palette."""


class PropagationError(VfxMatteError):
    """A trimap cannot be propagated to a frame: no keyframe lies within the maximum distance,
    or the propagation or flow settings are invalid; the message names the frame or setting.

    Attributes:
        frame: the frame asked for (None when the problem is not about one frame).
        distance: frames from ``frame`` to its nearest keyframe (None when there is no keyframe
            at all, or the problem is not about one frame).
    """

    frame: int | None
    distance: int | None

    def __init__(self, message: str, frame: int | None = None, distance: int | None = None) -> None:
        super().__init__(message)
        self.frame = frame
        self.distance = distance

    def __reduce__(self):  # pickles (e.g. across worker processes) with its attributes
        return type(self), (str(self), self.frame, self.distance)


class InputError(VfxMatteError):
    """An image or tensor handed to the model or engine has the wrong shape, dtype or values."""


class CheckpointError(VfxMatteError):
    """A checkpoint is missing, malformed, or does not match the requested architecture."""


class ArchitectureError(CheckpointError):
    """An architecture config (a checkpoint's stored one, a training config's ``model:`` or one
    built in code) names an unknown field or holds a value the network cannot be built from;
    the message names the source and the field."""


class UnknownVariantError(ArchitectureError):
    """A model variant name is not one of the built-in architectures.

    Raised by :func:`vfxmatte.model.variant` wherever a variant is named (``build_model``,
    ``load_model(expect=...)``); a caller that knows the file and key (a training config's
    ``model:``) re-raises it as its own error type with that location in front of the message.

    Attributes:
        name: the name asked for (None when not given).
        choices: the built-in variant names, in their declared order.
    """

    name: str | None
    choices: tuple[str, ...]

    def __init__(self, message: str, name: str | None = None, choices: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.name = name
        self.choices = tuple(choices)

    def __reduce__(self):  # pickles (e.g. across worker processes) with its attributes
        return type(self), (str(self), self.name, self.choices)


class MemoryBudgetError(VfxMatteError):
    """A memory budget (``model.memory_gb``, ``--memory-gb``) is too small for the smallest tiles."""


class DeviceError(VfxMatteError):
    """A requested device or precision is unavailable on this machine."""


class DataError(VfxMatteError):
    """A training or evaluation data set is missing files or has an invalid layout."""


class TrainingError(VfxMatteError):
    """A training run cannot start, resume or export (bad state file, mismatched checkpoint)."""


class ConfigError(TrainingError):
    """A training config file, ``--set`` override or value is invalid (the training CLI's exit
    code 2); the message names the file and key path."""


class EnvVarError(VfxMatteError):
    """A ``$VAR`` reference in a job file, training config or other text cannot be expanded.

    Raised by :func:`vfxmatte.env.expand_env`; callers that know the file, line or key re-raise
    it as their own error type with that location in front of :attr:`reason`.

    Attributes:
        reason: what is wrong, e.g. ``environment variable $SHOT_ROOT is not set``.
        variable: the variable's name, or None for a malformed reference.
    """

    reason: str
    variable: str | None

    def __init__(self, reason: str, variable: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.variable = variable

    def __reduce__(self):
        return type(self), (self.reason, self.variable)


class FarmError(VfxMatteError):
    """A farm submission cannot be built or sent: a bad chunk, a missing farm library
    (``pip install 'vfxmatte[opencue]'``), no Cuebot or ``deadlinecommand`` reachable, or a
    submitter that refused the job; the message names the farm and what failed."""


#: OS errors a second try cannot cure: the file system said what is wrong with the path itself.
_PERMANENT_ERRNOS = frozenset(
    getattr(errno, name)
    for name in ("ENOENT", "EISDIR", "ENOTDIR", "EACCES", "EPERM", "ENOSPC", "EDQUOT", "EROFS", "ENAMETOOLONG",
                 "ELOOP", "EEXIST", "EINVAL", "EXDEV", "EFBIG")
    if hasattr(errno, name)
)


def is_transient(exc: BaseException) -> bool:
    """True if a frame that failed with ``exc`` may succeed when tried again: an error marked
    :attr:`VfxMatteError.transient`, or an :class:`OSError` (itself or the cause of the error)
    whose errno is not one of a bad path, permissions or a full disk (EIO, ESTALE, ETIMEDOUT,
    EAGAIN ... are transient). A bad trimap, a missing layer or a size mismatch never is."""
    seen: BaseException | None = exc
    while seen is not None:
        if getattr(seen, "transient", False):
            return True
        if isinstance(seen, OSError) and seen.errno is not None:
            return seen.errno not in _PERMANENT_ERRNOS
        seen = seen.__cause__
    return False


def is_internal(exc: BaseException) -> bool:
    """True if a frame that failed with ``exc`` failed through a bug, not through its files or
    the machine: ``exc`` is no :class:`VfxMatteError`, :class:`OSError` or out-of-memory error
    (Python's or torch's). Such a failure ends the run with :data:`EXIT_INTERNAL`, never as
    "frames failed"."""
    if isinstance(exc, (VfxMatteError, OSError, MemoryError)):
        return False
    torch = sys.modules.get("torch")  # not imported: the exception cannot be torch's
    return not (torch is not None and isinstance(exc, torch.OutOfMemoryError))

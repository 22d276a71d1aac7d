"""One root exception for everything vfxmatte raises on purpose.

Every message names the file, key or frame at fault, so the CLI can print it as one
line without a traceback (the CLI shows tracebacks only under ``--debug``).
"""

from __future__ import annotations


class VfxMatteError(Exception):
    """Root of all errors vfxmatte raises for bad input, bad files or bad setup."""


class JobError(VfxMatteError):
    """A job file is missing, unreadable or fails schema validation."""


class SequenceError(VfxMatteError):
    """A frame sequence pattern, frame range or missing frame problem."""


class ImageReadError(VfxMatteError):
    """An image file could not be read or lacks the requested channels/layer."""


class ImageWriteError(VfxMatteError):
    """An image file could not be written."""


class ColorError(VfxMatteError):
    """An OCIO config or colourspace is missing or a conversion failed."""


class TrimapError(VfxMatteError):
    """A trimap has the wrong shape or holds values outside the bg/unknown/fg palette."""


class InputError(VfxMatteError):
    """An image or tensor handed to the model or engine has the wrong shape, dtype or values."""


class CheckpointError(VfxMatteError):
    """A checkpoint is missing, malformed, or does not match the requested architecture."""


class DeviceError(VfxMatteError):
    """A requested device or precision is unavailable on this machine."""


class DataError(VfxMatteError):
    """A training or evaluation data set is missing files or has an invalid layout."""


class TrainingError(VfxMatteError):
    """A training configuration is invalid or a run cannot resume."""

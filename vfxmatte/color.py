"""Colour conversion into the network's working encoding, through OpenColorIO.

The network sees **sRGB-encoded Rec.709 in 0..1** (:data:`WORKING`), as the matting models
of the trade were trained on. Plates arrive in scene-linear (ACEScg, linear Rec.709), log
(ACEScct, Cineon DPX) or already sRGB-encoded; :class:`ColorConverter` takes them there.

Colourspace names a job can use: the aliases in :data:`ALIASES` (``acescg``, ``lin_rec709``,
``srgb``, ``acescct``), ``cineon`` (built here, no built-in config has it), or any colourspace
name, alias or role of the active config.

Only colour goes through a converter: callers pass RGB and keep alpha (and mattes) apart,
since alpha is coverage, not colour.
"""

from __future__ import annotations

import difflib
import functools
import os
from pathlib import Path

import numpy as np
import PyOpenColorIO as ocio

from vfxmatte.errors import ColorError

__all__ = [
    "ALIASES",
    "CINEON",
    "DEFAULT_CONFIG",
    "WORKING",
    "ColorConverter",
    "cineon_transform",
    "load_config",
    "resolve_colorspace",
    "to_working",
]

#: Built-in config used when neither the job nor ``$OCIO`` names one (OCIO >= 2.2).
DEFAULT_CONFIG = "ocio://cg-config-latest"

#: The network's working encoding: sRGB transfer curve, Rec.709 primaries, 0..1.
WORKING = "sRGB Encoded Rec.709 (sRGB)"

#: Job-level colourspace aliases -> candidate names, first match in the config wins. The
#: later candidates are the names older configs (ACES 1.x OCIO configs) use.
ALIASES: dict[str, tuple[str, ...]] = {
    "acescg": ("ACEScg", "lin_ap1", "ACES - ACEScg"),
    "lin_rec709": ("Linear Rec.709 (sRGB)", "lin_rec709_srgb", "lin_rec709", "Utility - Linear - sRGB"),
    # An image already sRGB-encoded for display (a PNG reference, a client JPEG): it is in the
    # working encoding, so it converts as identity rather than through a display view.
    "srgb": ("sRGB Encoded Rec.709 (sRGB)", "srgb_tx", "srgb_texture", "Utility - sRGB - Texture"),
    "acescct": ("ACEScct", "acescct_ap1", "ACES - ACEScct"),
}

#: Cineon printing-density log (10-bit DPX scans), built from a LogAffineTransform.
CINEON = "cineon"

# Kodak Cineon: code = 685 + 300 * log10(lin * (1 - b) + b), b = 10^((95 - 685) * 0.002 / 0.6);
# reference black 95 -> 0, reference white 685 -> 1, per 10-bit code value (1023 = 1.0).
_CINEON_BLACK = 10.0 ** ((95 - 685) * 0.002 / 0.6)


def cineon_transform(direction: ocio.TransformDirection = ocio.TRANSFORM_DIR_FORWARD) -> ocio.LogAffineTransform:
    """LogAffineTransform for the Cineon curve; forward is linear -> log (normalised code)."""
    b = _CINEON_BLACK
    t = ocio.LogAffineTransform(
        logSideSlope=[300.0 / 1023.0] * 3,
        logSideOffset=[685.0 / 1023.0] * 3,
        linSideSlope=[1.0 - b] * 3,
        linSideOffset=[b] * 3,
        direction=direction,
    )
    t.setBase(10.0)
    return t


# ---------------------------------------------------------------------------------------
# Configs


@functools.lru_cache(maxsize=8)
def _config_from(source: str) -> ocio.Config:
    try:
        return ocio.Config.CreateFromFile(source)
    except Exception as exc:  # OCIO raises its own Exception subclasses without a common base
        raise ColorError(f"cannot load OCIO config {source!r}: {exc}") from exc


def load_config(config: str | os.PathLike[str] | None = None) -> ocio.Config:
    """The OCIO config to use: ``config`` if given, else ``$OCIO``, else :data:`DEFAULT_CONFIG`.

    ``config`` is a file path or a built-in URI such as ``ocio://studio-config-latest``.
    Configs are cached per source and shared: do not modify the returned object.

    Raises:
        ColorError: the config file does not exist, does not parse, or names no built-in.
    """
    if config is not None and str(config).strip():
        source, origin = str(config).strip(), "job"
    elif os.environ.get("OCIO", "").strip():
        source, origin = os.environ["OCIO"].strip(), "$OCIO"
    else:
        source, origin = DEFAULT_CONFIG, "default"
    if not source.startswith("ocio://") and not Path(source).is_file():
        raise ColorError(f"OCIO config {source!r} (from {origin}) does not exist")
    return _config_from(source)


def _as_config(config: ocio.Config | str | os.PathLike[str] | None) -> ocio.Config:
    return config if isinstance(config, ocio.Config) else load_config(config)


# ---------------------------------------------------------------------------------------
# Colourspace names


def _known_names(config: ocio.Config) -> list[str]:
    names = [*ALIASES, CINEON]
    for cs in config.getColorSpaces():
        names.append(cs.getName())
        names.extend(cs.getAliases())
    names.extend(config.getRoleNames())
    return names


def _close_matches(config: ocio.Config, name: str) -> list[str]:
    known = _known_names(config)
    by_lower = {n.lower(): n for n in known}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=5, cutoff=0.5)
    return [by_lower[c] for c in close] or [*ALIASES, CINEON]


def resolve_colorspace(config: ocio.Config | str | None, name: str) -> str:
    """The config's canonical colourspace name for ``name`` (or :data:`CINEON`).

    Job aliases (:data:`ALIASES`, case-insensitive) are tried first, then the config's own
    names, aliases and roles.

    Raises:
        ColorError: no such colourspace; the message suggests close valid names.
    """
    cfg = _as_config(config)
    key = str(name).strip()
    lowered = key.lower()
    if lowered == CINEON:
        return CINEON
    candidates = ALIASES.get(lowered) or (ALIASES["srgb"] if key == WORKING else (key,))
    for candidate in candidates:
        cs = cfg.getColorSpace(candidate)
        if cs is not None:
            return cs.getName()
    raise ColorError(
        f"unknown colourspace {name!r} in OCIO config {cfg.getName() or '(unnamed)'}; "
        f"close names: {', '.join(_close_matches(cfg, key))}"
    )


# ---------------------------------------------------------------------------------------
# Conversion


class ColorConverter:
    """A cached CPU conversion from one colourspace to another (default: the working one).

    Args:
        config: an OCIO config, or a path / ``ocio://`` URI / None passed to :func:`load_config`.
        src: source colourspace (alias, ``cineon`` or a config name).
        dst: destination colourspace; results in the working encoding are clipped to [0, 1].

    Raises:
        ColorError: bad config, unknown colourspace or a transform OCIO cannot build.
    """

    def __init__(self, config: ocio.Config | str | None, src: str, dst: str = WORKING) -> None:
        self.config = _as_config(config)
        self.src = resolve_colorspace(self.config, src)
        self.dst = resolve_colorspace(self.config, dst)
        self.clip = self.dst == resolve_colorspace(self.config, WORKING)
        try:
            self._cpu = self.config.getProcessor(self._transform()).getDefaultCPUProcessor()
        except ColorError:
            raise
        except Exception as exc:
            raise ColorError(f"cannot build OCIO conversion {src!r} -> {dst!r}: {exc}") from exc

    def __repr__(self) -> str:
        return f"ColorConverter({self.src!r} -> {self.dst!r})"

    def _transform(self) -> ocio.GroupTransform:
        # Cineon is not in the config: go through linear Rec.709 on its side of the conversion.
        steps: list[ocio.Transform] = []
        src, dst = self.src, self.dst
        if src == CINEON:
            steps.append(cineon_transform(ocio.TRANSFORM_DIR_INVERSE))
            src = resolve_colorspace(self.config, "lin_rec709")
        tail: list[ocio.Transform] = []
        if dst == CINEON:
            tail.append(cineon_transform(ocio.TRANSFORM_DIR_FORWARD))
            dst = resolve_colorspace(self.config, "lin_rec709")
        if src != dst:
            steps.append(ocio.ColorSpaceTransform(src=src, dst=dst))
        return ocio.GroupTransform(steps + tail)

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        """Convert ``rgb`` float ``[H, W, 3]`` (any ``[..., 3]``); returns a new float32 array.

        NaN and +/-Inf become 0 before and after the conversion, so HDR highlights and
        negative values never leak NaN; results in the working encoding are clipped to [0, 1].
        Pass RGB only: alpha is never colour-converted.

        Raises:
            ColorError: the array is not ``[..., 3]``.
        """
        arr = np.asarray(rgb)
        if arr.ndim < 1 or arr.shape[-1] != 3:
            raise ColorError(
                f"colour conversion {self.src} -> {self.dst} needs RGB [H, W, 3], got shape {arr.shape} "
                "(pass RGB only; keep alpha out of colour conversion)"
            )
        out = np.array(arr, dtype=np.float32, order="C", copy=True)
        np.nan_to_num(out, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        if out.size:
            self._cpu.applyRGB(out)
        np.nan_to_num(out, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        if self.clip:
            np.clip(out, 0.0, 1.0, out=out)
        return out


@functools.lru_cache(maxsize=32)
def _cached_converter(config: str | None, oc_env: str | None, src: str) -> ColorConverter:
    # oc_env is part of the key so a changed $OCIO is honoured.
    return ColorConverter(config, src)


def to_working(rgb: np.ndarray, src: str, config: ocio.Config | str | None = None) -> np.ndarray:
    """Convert ``rgb`` ``[H, W, 3]`` from ``src`` to the working encoding (see :class:`ColorConverter`)."""
    if isinstance(config, ocio.Config):
        return ColorConverter(config, src).apply(rgb)
    key = None if config is None else str(config)
    return _cached_converter(key, os.environ.get("OCIO"), src).apply(rgb)

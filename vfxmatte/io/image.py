"""Reading and writing plates, trimaps, mattes and masks through OpenImageIO.

Conventions:

* Arrays are float32 ``[H, W, C]`` (``[H, W]`` for trimaps and masks) and cover the image's
  **data window**; :class:`ImageInfo` keeps both the data window and the display window so
  overscan survives a read -> process -> write round trip.
* Integer files (8/10/12/16-bit DPX, TIFF, PNG; uint EXR channels) are normalised to 0..1
  by OpenImageIO's conversion: code times ``float32(1 / max code)``. Every reader here
  (plates, trimaps, mattes, evaluation sets, training data) uses it, so one file gives one
  array whoever reads it.
* Channels are always selected **by name**: OpenImageIO reorders channels on read
  (RGBA first, then alphabetical), so positions in the file mean nothing.
* Writes are atomic (:func:`vfxmatte.io.atomic.atomic_write`): a failed write leaves the
  target as it was and no temporary file behind.
"""

from __future__ import annotations

import contextlib
import os
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import OpenImageIO as oiio

from vfxmatte import trimap as _trimap
from vfxmatte.errors import ImageReadError, ImageWriteError, TrimapError
from vfxmatte.io.atomic import atomic_write

__all__ = [
    "ImageInfo",
    "file_views",
    "read_image",
    "read_first_header",
    "read_header",
    "read_mask",
    "read_photo",
    "read_trimap",
    "channel_view",
    "verify_image",
    "view_channel",
    "views",
    "write_exr",
    "write_image",
]

log = logging.getLogger(__name__)

#: Pixel types a writer accepts, by name.
PIXEL_TYPES: dict[str, oiio.TypeDesc] = {
    "half": oiio.TypeDesc(oiio.HALF),
    "float": oiio.TypeDesc(oiio.FLOAT),
    "uint": oiio.TypeDesc(oiio.UINT),
    "uint8": oiio.TypeDesc(oiio.UINT8),
    "uint16": oiio.TypeDesc(oiio.UINT16),
    "uint32": oiio.TypeDesc(oiio.UINT),
}

#: OpenEXR compression methods (a level may follow a colon: ``"dwaa:45"``, ``"zip:6"``).
EXR_COMPRESSIONS = ("none", "rle", "zips", "zip", "piz", "pxr24", "b44", "b44a", "dwaa", "dwab", "htj2k")

# Attributes that describe the source file's layout, encoding or channels rather than the
# shot; they must not be copied onto a new file with its own layout.
_LAYOUT_KEYS = frozenset(
    {
        "compression",
        "Compression",
        "name",
        "type",
        "version",
        "channels",
        "chunkCount",
        "dataWindow",
        "displayWindow",
        "tiles",
        "planarconfig",
        "oiio:subimages",
        "oiio:subimagename",
        "oiio:BitsPerSample",
        "oiio:UnassociatedAlpha",
        "oiio:ColorSpace",
        "colorInteropID",  # a colour tag describes RGB; callers re-add it where RGB is written
        "oiio:Gamma",
        "oiio:RowsPerChunk",
        # Which views the file holds and which part is which view: they describe that file's
        # channels and parts; a file written from it says its own view (``ImageInfo.view``).
        "multiView",
        "view",
    }
)
# Format-specific prefixes: EXR line order / chunking / DWA level, TIFF, DPX packing and
# transfer, PNG and JPEG encoder settings all belong to the old file.
_LAYOUT_PREFIXES = ("openexr:", "exr:", "tiff:", "dpx:", "png:", "jpeg:", "Exif:", "ICCProfile")


@dataclass
class ImageInfo:
    """What a reader learnt about an image, enough to write a matching one.

    ``x, y, width, height`` is the data window (the pixels in the array);
    ``full_x, full_y, full_width, full_height`` the display window (the frame). They differ
    for overscan plates.
    """

    path: Path
    width: int
    height: int
    x: int = 0
    y: int = 0
    full_x: int = 0
    full_y: int = 0
    full_width: int = 0
    full_height: int = 0
    #: all channel names of the subimage read, in the file's (OIIO's) order
    channels: tuple[str, ...] = ()
    #: per-channel pixel type names, parallel to ``channels`` (``"half"``, ``"uint16"`` ...)
    channel_formats: tuple[str, ...] = ()
    #: every attribute of the subimage's spec, name -> value
    metadata: dict[str, Any] = field(default_factory=dict)
    #: OIIO type names of the metadata (``"timecode"``, ``"matrix"`` ...) so writes keep them
    metadata_types: dict[str, str] = field(default_factory=dict)
    subimage: int = 0
    subimage_name: str | None = None
    #: OIIO format name, e.g. ``"openexr"``, ``"dpx"``
    file_format: str = ""
    #: tile size ``(w, h)`` or None for scanline files
    tile: tuple[int, int] | None = None
    #: the view of a multi-view file the channels read belong to (None: the file names no
    #: views and none was asked for); a file written ``info_like`` this one is marked as it
    view: str | None = None

    @property
    def data_window(self) -> tuple[int, int, int, int]:
        """``(x, y, w, h)`` of the stored pixels."""
        return (self.x, self.y, self.width, self.height)

    @property
    def display_window(self) -> tuple[int, int, int, int]:
        """``(full_x, full_y, full_w, full_h)`` of the frame."""
        return (self.full_x, self.full_y, self.full_width, self.full_height)

    @property
    def has_overscan(self) -> bool:
        """True where the data window differs from the display window."""
        return self.data_window != self.display_window


# --------------------------------------------------------------------------------------
# Reading


def _error_text(geterror) -> str:  # noqa: ANN001 - an OIIO geterror method
    """OIIO's error message; a damaged file can make it bytes that are not UTF-8 (pybind11
    then raises UnicodeDecodeError), which is reported as such rather than raised. OIIO
    joins the errors of one call with newlines; they are returned as one line (errors are one
    line naming the file), repeats dropped."""
    try:
        text = geterror()
    except UnicodeDecodeError:
        return "damaged file: OpenImageIO's error message is not UTF-8 text"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return "; ".join(dict.fromkeys(lines))


def _open(path: Path, unassociated: bool = False) -> oiio.ImageInput:
    if not path.is_file():
        from vfxmatte.io.sequence import not_a_file

        what = not_a_file(path) or "not a regular file"
        raise ImageReadError(f"{path}: no such file" if what == "missing" else f"{path}: {what}, not an image file")
    if unassociated:
        # Formats that store unassociated alpha (PNG, some TIFFs) keep their colour as stored
        # instead of being premultiplied by alpha on read.
        config = oiio.ImageSpec()
        config.attribute("oiio:UnassociatedAlpha", 1)
        inp = oiio.ImageInput.open(str(path), config)
    else:
        inp = oiio.ImageInput.open(str(path))
    if inp is None:
        raise ImageReadError(f"{path}: cannot open image ({_error_text(oiio.geterror) or 'unknown format'})")
    return inp


@contextlib.contextmanager
def _opened(path: Path, unassociated: bool = False) -> Iterator[oiio.ImageInput]:
    inp = _open(path, unassociated)
    try:
        yield inp
    finally:
        inp.close()


def _subimage_specs(inp: oiio.ImageInput) -> list[oiio.ImageSpec]:
    specs = []
    while inp.seek_subimage(len(specs), 0):
        specs.append(inp.spec().copy())
    _error_text(inp.geterror)  # clear the failed seek past the last subimage (TIFF records it as an error)
    return specs


def _info(path: Path, inp: oiio.ImageInput, spec: oiio.ImageSpec, subimage: int, view: str | None = None) -> ImageInfo:
    metadata: dict[str, Any] = {}
    types: dict[str, str] = {}
    for attr in spec.extra_attribs:
        metadata[attr.name] = attr.value
        types[attr.name] = str(attr.type)
    name = spec.get_string_attribute("oiio:subimagename") or None
    return ImageInfo(
        path=path,
        width=spec.width,
        height=spec.height,
        x=spec.x,
        y=spec.y,
        full_x=spec.full_x,
        full_y=spec.full_y,
        full_width=spec.full_width,
        full_height=spec.full_height,
        channels=tuple(spec.channelnames),
        channel_formats=tuple(str(t) for t in spec.get_channelformats()),
        metadata=metadata,
        metadata_types=types,
        subimage=subimage,
        subimage_name=name,
        file_format=inp.format_name(),
        tile=(spec.tile_width, spec.tile_height) if spec.tile_width > 0 else None,
        view=view,
    )


def _read_channels(
    path: Path,
    inp: oiio.ImageInput,
    subimage: int,
    spec: oiio.ImageSpec,
    names: Sequence[str],
    pixel_type: oiio.BASETYPE = oiio.FLOAT,
) -> np.ndarray:
    """Read the named channels of one subimage as [H, W, len(names)] float32 (or uint8)."""
    _check_flat(path, spec)
    index = [list(spec.channelnames).index(n) for n in names]
    # Read only the contiguous run of channels that covers the request.
    lo, hi = min(index), max(index) + 1
    pixels = inp.read_image(subimage, 0, lo, hi, pixel_type)
    if pixels is None or inp.has_error:
        why = f"{path}: cannot read pixels ({_error_text(inp.geterror) or 'read failed'})"
        # Transient only when the OS fails to hand over the file's bytes (is_transient judges
        # that OSError): bytes that all read are a truncated or damaged file, the same on every try.
        raise ImageReadError(why) from _read_back(path)
    dtype = np.uint8 if pixel_type == oiio.UINT8 else np.float32
    pixels = np.asarray(pixels, dtype=dtype).reshape(spec.height, spec.width, hi - lo)
    return np.ascontiguousarray(pixels[..., [i - lo for i in index]])


def _read_back(path: Path) -> OSError | None:
    """The OS error reading every byte of ``path``, or None when they all read."""
    try:
        with open(path, "rb") as fh:
            while fh.read(1 << 20):
                pass
    except OSError as exc:
        return exc
    return None


def _check_flat(path: Path, spec: oiio.ImageSpec) -> None:
    """A subimage is read only when it is a flat 2D image of a sane size (not deep, not a volume)."""
    if spec.deep:
        raise ImageReadError(f"{path}: deep images are not supported (flatten it first, e.g. Nuke's DeepToImage)")
    if spec.depth > 1:
        raise ImageReadError(f"{path}: volume images (depth {spec.depth}) are not supported")
    if spec.width < 1 or spec.height < 1:
        raise ImageReadError(f"{path}: empty data window ({spec.width}x{spec.height})")


@dataclass(frozen=True)
class _Part:
    """One subimage as one view sees it: ``names`` are its channels of that view, relative to
    the view (``left.R`` of a single-part multi-view file is ``R`` of view ``left``), ``full``
    maps them back to the names in the file."""

    index: int
    name: str | None
    names: tuple[str, ...]
    full: dict[str, str]
    #: the view these channels belong to; None in a file that names no views
    view: str | None


def _part_view(spec: oiio.ImageSpec) -> str | None:
    """The ``view`` attribute of a part of a multi-part multi-view file: every channel of the
    part belongs to that view."""
    value = spec.getattribute("view")
    return value if isinstance(value, str) and value else None


def _multi_view(spec: oiio.ImageSpec) -> tuple[str, ...]:
    """The ``multiView`` attribute of a single-part multi-view header: its views, the default
    view first."""
    value = spec.getattribute("multiView")
    if isinstance(value, str):
        value = (value,)
    return tuple(v for v in (value or ()) if isinstance(v, str) and v)


def channel_view(channel: str, multi_view: Sequence[str]) -> str | None:
    """The view of ``channel`` in a single-part file whose ``multiView`` is ``multi_view``, by
    OpenEXR's multi-view naming: a name without a period is the default (first) view's; else
    its penultimate period-separated part names the view when it is one of ``multi_view``;
    other channels belong to no view (None)."""
    parts = channel.split(".")
    if not multi_view:
        return None
    if len(parts) == 1:
        return multi_view[0]
    return parts[-2] if parts[-2] in multi_view else None


def views(specs: Sequence[oiio.ImageSpec]) -> list[str]:
    """The views a file holds, in order: the ``view`` attributes of its parts, or the
    ``multiView`` list of a single-part multi-view header (default view first)."""
    found: list[str] = []
    for spec in specs:
        own = _part_view(spec)
        for v in (own,) if own else _multi_view(spec):
            if v not in found:
                found.append(v)
    return found


def _parts(specs: Sequence[oiio.ImageSpec], view: str | None) -> list[_Part]:
    """The subimages as ``view`` sees them (None: every subimage, names as written).

    A part with a ``view`` attribute is wholly that view. A header with ``multiView`` holds
    each view under OpenEXR's channel naming (:func:`channel_view`): ``view.X`` and
    ``layer.view.X`` are ``X`` and ``layer.X`` of that view, and the default view has its
    unprefixed channels too, plus (leniently) prefixed ones naming no view. A subimage naming
    no view belongs to no view; it is read only when the file names none at all, or when no
    view is asked for."""
    named = bool(views(specs))
    out = []
    for i, spec in enumerate(specs):
        name = spec.get_string_attribute("oiio:subimagename") or None
        channels = tuple(spec.channelnames)
        own, multi = _part_view(spec), _multi_view(spec)
        if view is None or not named:
            # (No view asked for: a multi-view header's view is that of the channels picked.)
            out.append(_Part(i, name, channels, {c: c for c in channels}, own if named else view))
        elif own is not None:
            if own == view:
                out.append(_Part(i, name, channels, {c: c for c in channels}, view))
        elif multi:
            full: dict[str, str] = {}
            for c in channels:
                parts = c.split(".")
                v = channel_view(c, multi)
                if v == view and len(parts) > 1:
                    rel = ".".join(parts[:-2] + parts[-1:])
                elif v == view or (v is None and view == multi[0]):
                    rel = c
                else:
                    continue
                full.setdefault(rel, c)
            if full:
                out.append(_Part(i, name, tuple(full), full, view))
    return out


def _layers(parts: Sequence[_Part]) -> list[str]:
    """Names a user could pass as ``layer``: part names and channel-name prefixes."""
    names: list[str] = []
    for part in parts:
        if part.name and part.name not in names:
            names.append(part.name)
        for ch in part.names:
            if "." in ch:
                prefix = ch.rsplit(".", 1)[0]
                if prefix not in names:
                    names.append(prefix)
    return names


def _resolve(part: _Part, layer: str | None, wanted: Sequence[str]) -> list[str] | None:
    """Full channel names for ``wanted`` in this part, or None if any is missing.

    Without a layer names are taken as written. With one, ``layer.X`` is looked for, and
    plain ``X`` too when this subimage is the part named ``layer``.
    """
    present = set(part.names)
    own_part = layer is not None and part.name == layer
    out = []
    for c in wanted:
        if layer is not None and f"{layer}.{c}" in present:
            out.append(part.full[f"{layer}.{c}"])
        elif (layer is None or own_part) and c in present:
            out.append(part.full[c])
        else:
            return None
    return out


def _candidates(parts: Sequence[_Part], layer: str | None) -> list[_Part]:
    """Parts to look in, best first: the part named ``layer``, then every part in order."""
    if layer is None:
        return list(parts)
    named = [p for p in parts if p.name == layer]
    return named + [p for p in parts if p.name != layer]


def read_image(
    path: str | Path,
    channels: Sequence[str] | None = None,
    layer: str | None = None,
    *,
    view: str | None = None,
    unassociated: bool = False,
) -> tuple[np.ndarray, ImageInfo]:
    """Read an image (any format OIIO reads) as float32 ``[H, W, C]`` over its data window.

    Args:
        path: the file.
        channels: channel names to read, in the order wanted. With a ``layer`` they are
            relative (``["R", "G", "B", "A"]`` reads ``beauty.R`` ... or a part's plain ``R``).
            Default: ``R, G, B``; a greyscale file (``Y``) is then replicated to three channels.
        layer: a part name of a multi-part EXR or a channel prefix of a multi-layer one
            (``"beauty"`` for ``beauty.R``). ``None`` reads un-prefixed channels from the first
            part that has them.
        view: a view of a multi-view EXR (``left``, ``right``): the parts whose ``view``
            attribute names it, or in a single-part file with a ``multiView`` attribute its
            ``view.X`` / ``layer.view.X`` channels (the default view's unprefixed ones too).
            A file naming no views is read as it is for any view. ``None``: as written (a
            single-part multi-view file's unprefixed channels are its default view).
        unassociated: return colour as stored in files with unassociated alpha (PNG, TIFF
            with unassociated extra samples). By default OIIO premultiplies it by alpha, as
            the associated-alpha convention of EXR and compositing expects.

    Returns:
        ``(pixels, info)``; ``info`` describes the subimage that was read, and ``info.view``
        the view its channels belong to.

    Raises:
        ImageReadError: the file is missing or unreadable, or lacks the layer or channels
            or the view (the message lists what is available).
    """
    path = Path(path)
    with _opened(path, unassociated) as inp:
        specs = _subimage_specs(inp)
        i, names, grey, seen = _select(path, specs, channels, layer, view)
        pixels = _read_channels(path, inp, i, specs[i], names)
        return (np.repeat(pixels, 3, axis=2) if grey else pixels), _info(path, inp, specs[i], i, seen)


def read_header(
    path: str | Path,
    channels: Sequence[str] | None = None,
    layer: str | None = None,
    *,
    view: str | None = None,
) -> ImageInfo:
    """What :func:`read_image` would read from ``path``, from the header alone: the same
    view, layer, channel and flat-image checks, raising the same errors, without reading pixels.

    Raises:
        ImageReadError: as :func:`read_image` would (missing or unreadable file, no such view,
            layer or channels, deep, volume or luminance/chroma image).
    """
    path = Path(path)
    with _opened(path) as inp:
        specs = _subimage_specs(inp)
        i, _, _, seen = _select(path, specs, channels, layer, view)
        _check_flat(path, specs[i])
        return _info(path, inp, specs[i], i, seen)


def file_views(path: str | Path) -> list[str]:
    """The views ``path`` holds (:func:`views`: parts' ``view`` attributes, else the
    ``multiView`` list, default view first); empty for a file that names none.

    Raises:
        ImageReadError: the file is missing or unreadable.
    """
    path = Path(path)
    with _opened(path) as inp:
        return views(_subimage_specs(inp))


def read_first_header(path: str | Path) -> ImageInfo:
    """The header of the first subimage, which :func:`read_trimap` and :func:`read_mask` read
    whole: the same open and flat-image checks, without reading pixels.

    Raises:
        ImageReadError: missing, unreadable, deep, volume or empty image.
    """
    path = Path(path)
    with _opened(path, unassociated=True) as inp:
        spec = inp.spec().copy()
        _check_flat(path, spec)
        return _info(path, inp, spec, 0)


def _select(
    path: Path,
    specs: Sequence[oiio.ImageSpec],
    channels: Sequence[str] | None,
    layer: str | None,
    view: str | None = None,
) -> tuple[int, list[str], bool, str | None]:
    """The subimage and full channel names :func:`read_image` reads, whether a grey ``Y``
    stands in for R, G, B (then replicated), and the view those channels belong to."""
    wanted = list(channels) if channels is not None else ["R", "G", "B"]
    if not wanted:
        raise ImageReadError(f"{path}: empty channel list requested")
    if not specs:
        raise ImageReadError(f"{path}: no image in the file")
    present = views(specs)
    if view is not None and present and view not in present:
        raise ImageReadError(f"{path}: no view {view!r} (views: {', '.join(present)})")
    parts = _parts(specs, view)
    candidates = _candidates(parts, layer)
    layered = layer is not None
    in_view = f" of view {view!r}" if view is not None and present else ""
    # A named layer must exist in some form before channels are looked for.
    if layered and layer not in _layers(parts):
        raise ImageReadError(f"{path}: no layer {layer!r}{in_view} (layers: {', '.join(_layers(parts)) or 'none'})")

    def seen(part: _Part, names: list[str]) -> str | None:
        if part.view is not None or view is not None:
            return part.view
        multi = _multi_view(specs[part.index])
        found = {channel_view(n, multi) for n in names}
        return found.pop() if len(found) == 1 else None

    for part in candidates:
        names = _resolve(part, layer, wanted)
        if names is not None:
            return part.index, names, False, seen(part, names)
    if channels is None:
        for part in candidates:
            grey = _resolve(part, layer, ["Y"])
            if grey is not None:
                if _resolve(part, layer, ["RY"]) or _resolve(part, layer, ["BY"]):
                    # Luminance/chroma (Y, RY, BY): its Y alone would matte a grey picture.
                    raise ImageReadError(
                        f"{path}: luminance/chroma EXR (Y, RY, BY) is not supported: write the plate as RGB"
                    )
                return part.index, grey, True, seen(part, grey)
    where = f" in layer {layer!r}" if layered else ""
    available = "; ".join(
        ", ".join(s.channelnames) + (f" (part {s.get_string_attribute('oiio:subimagename')})" if len(specs) > 1 else "")
        for s in specs
    )
    raise ImageReadError(f"{path}: no channels {', '.join(wanted)}{where}{in_view} (available: {available})")


def _first_subimage(path: Path, unassociated: bool = False) -> tuple[np.ndarray, oiio.ImageSpec]:
    """All channels of the first subimage as float32 [H, W, C] plus its spec (``unassociated``:
    as for :func:`read_image`)."""
    with _opened(path, unassociated) as inp:
        spec = inp.spec().copy()
        return _read_channels(path, inp, 0, spec, list(spec.channelnames)), spec


def read_trimap(path: str | Path, tolerance: float = _trimap.DEFAULT_TOLERANCE) -> np.ndarray:
    """Read a trimap file as the canonical float32 ``[H, W]`` trimap (0 / 0.5 / 1).

    Accepts 8/16-bit PNG or TIFF and float EXR, single-channel or RGB(A). A single channel
    is used as is; RGB must be grey (channels within ``tolerance`` of each other) and is
    averaged. Values are normalised to 0..1 and snapped to the palette by
    :func:`vfxmatte.trimap.quantize`.

    Alpha is ignored: the trimap is the colour as stored, as a compositor sees it in Nuke's
    ``rgb``. A PNG or TIFF with an alpha channel is read unassociated, so a painted trimap
    saved with an empty alpha (0 everywhere) keeps its values instead of being premultiplied
    to all background.

    Raises:
        ImageReadError: the file is missing or unreadable.
        TrimapError: coloured RGB, or values further than ``tolerance`` from the palette.
    """
    path = Path(path)
    pixels, spec = _first_subimage(path, unassociated=True)
    names = list(spec.channelnames)
    if all(c in names for c in ("R", "G", "B")):
        rgb = pixels[..., [names.index(c) for c in ("R", "G", "B")]]
        values = rgb.mean(axis=2)
        spread = float(np.nanmax(np.abs(rgb - values[..., None]))) if rgb.size else 0.0
        if spread > tolerance:
            raise TrimapError(
                f"{path}: trimap R, G and B differ by up to {spread:.3g}; expected a grey trimap"
            )
    else:
        colour = [i for i, c in enumerate(names) if c not in ("A", "alpha")] or [0]
        values = pixels[..., colour[0]]
    return _trimap.quantize(values, tolerance, name=str(path))


def read_mask(path: str | Path) -> np.ndarray:
    """Read a rough roto matte or mask as float32 ``[H, W]`` (the A channel, else the first).

    Values are returned as stored (normalised to 0..1 for integer files), not clipped.

    Raises:
        ImageReadError: the file is missing or unreadable.
    """
    path = Path(path)
    pixels, spec = _first_subimage(path)
    names = list(spec.channelnames)
    if "A" in names:
        index = names.index("A")
    elif spec.alpha_channel >= 0:
        index = spec.alpha_channel
    else:
        index = 0
    return np.ascontiguousarray(pixels[..., index])


# EXIF orientation (TIFF/EXIF tag 274) -> the turns and flips that show the image upright.
_UPRIGHT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(a, -1)[::-1],
    8: lambda a: np.rot90(a, 1),
}


def read_photo(path: str | Path) -> np.ndarray:
    """Read a photograph (JPEG, PNG, TIFF, BMP, WebP ...) as uint8 RGB ``[H, W, 3]``, upright.

    For the photos training data is textured and backed with: the pixels are kept in their
    file's encoding (sRGB for photographs). The EXIF orientation is applied as a viewer would,
    grey is replicated to three channels, alpha is dropped without premultiplying the colour,
    and deeper files are rounded to 8 bits.

    Raises:
        ImageReadError: the file is missing or unreadable.
    """
    path = Path(path)
    with _opened(path, unassociated=True) as inp:
        spec = inp.spec().copy()
        names = list(spec.channelnames)
        if all(c in names for c in ("R", "G", "B")):
            wanted, grey = ["R", "G", "B"], False
        else:
            wanted, grey = ["Y" if "Y" in names else names[0]], True
        pixels = _read_channels(path, inp, 0, spec, wanted, oiio.UINT8)
    if grey:
        pixels = np.repeat(pixels, 3, axis=2)
    upright = _UPRIGHT.get(spec.get_int_attribute("Orientation", 1))
    return np.ascontiguousarray(upright(pixels) if upright is not None else pixels)


# --------------------------------------------------------------------------------------
# Writing


def _write_pixels(filename: Path, target: Path, spec: oiio.ImageSpec, pixels: np.ndarray) -> None:
    """Write one subimage to ``filename`` with the writer chosen by ``target``'s extension,
    then read the whole file back: it is complete only if the open, the write and the close
    succeeded and it re-opens with all its pixels, in the written size and channels (a writer
    that hit a full disk may report success and leave a short file)."""
    out = oiio.ImageOutput.create(str(target))
    if out is None:
        raise ImageWriteError(f"{target}: no image writer for this extension ({_error_text(oiio.geterror)})")
    try:
        if not out.open(str(filename), spec):
            raise ImageWriteError(f"{target}: cannot open for writing ({_error_text(out.geterror)})")
        if not out.write_image(pixels):
            raise ImageWriteError(f"{target}: cannot write pixels ({_error_text(out.geterror)})")
    finally:
        closed = out.close()
    if not closed:
        raise ImageWriteError(f"{target}: cannot finish file ({_error_text(out.geterror)})")
    # (The writer's error flag is not consulted: OIIO's TIFF writer raises it for its Exif
    # directory on files that are complete. Reading the file back is the test.)
    try:
        info = verify_image(filename)
    except ImageReadError as exc:
        raise ImageWriteError(f"{target}: the written file does not read back ({exc}){_low_space(filename)}") from None
    # Only EXR keeps channel names (and OIIO reorders them on read): elsewhere their count.
    names = sorted(info.channels) if info.file_format == "openexr" else len(info.channels)
    wanted = sorted(spec.channelnames) if info.file_format == "openexr" else spec.nchannels
    if (info.width, info.height, names) != (spec.width, spec.height, wanted):
        raise ImageWriteError(
            f"{target}: the written file reads back as {info.width}x{info.height} with channels "
            f"{', '.join(info.channels)}, not {spec.width}x{spec.height} with {', '.join(spec.channelnames)}"
        )


#: Free space below which a failed write names it: OIIO's EXR writer can report success on a
#: full disk and leave a short file, so the read-back error alone would not say why.
LOW_SPACE_BYTES = 1 << 20


def _low_space(path: Path) -> str:
    """``"; only N bytes free on its file system"`` when that is under LOW_SPACE_BYTES, else ""."""
    try:
        st = os.statvfs(path.parent)
    except (OSError, AttributeError):  # AttributeError: no statvfs (Windows)
        return ""
    free = st.f_bavail * st.f_frsize
    return f"; only {free} bytes free on its file system" if free < LOW_SPACE_BYTES else ""


def verify_image(path: str | Path) -> ImageInfo:
    """Read every pixel of every subimage of ``path``: the check that a file is complete (a
    truncated or zero-byte file, or one with a damaged chunk, fails it).

    Returns:
        The :class:`ImageInfo` of the first subimage (its header metadata included).

    Raises:
        ImageReadError: naming the file, when it is missing, unreadable or incomplete.
    """
    path = Path(path)
    with _opened(path) as inp:
        specs = _subimage_specs(inp)
        if not specs:
            raise ImageReadError(f"{path}: no image in the file")
        for i, spec in enumerate(specs):
            _read_channels(path, inp, i, spec, list(spec.channelnames))
        return _info(path, inp, specs[0], 0)


def view_channel(channel: str, view: str, default: bool = True) -> str:
    """``channel`` of ``view`` named by OpenEXR's multi-view naming (its ``insertViewName``):
    the default view's unlayered channels as they are (``A``), any other with the view as its
    last layer (``right.A``; a layered ``matte.A`` as ``matte.<view>.A``, since a prefix naming
    no view would put it in no view)."""
    layer, dot, last = channel.rpartition(".")
    if not dot:
        return channel if default else f"{view}.{channel}"
    if layer.rpartition(".")[2] == view:
        return channel
    return f"{layer}.{view}.{last}"


def _is_layout_key(name: str) -> bool:
    return name in _LAYOUT_KEYS or name.startswith(_LAYOUT_PREFIXES)


def _set_attribute(spec: oiio.ImageSpec, name: str, value: Any, type_name: str | None, target: Path) -> None:
    if type_name:
        spec.attribute(name, oiio.TypeDesc(type_name), value)
    elif isinstance(value, (bool, np.bool_)):
        spec.attribute(name, int(value))
    elif isinstance(value, (int, np.integer)):
        spec.attribute(name, int(value))
    elif isinstance(value, (float, np.floating)):
        spec.attribute(name, float(value))
    elif isinstance(value, (str, Path)):
        spec.attribute(name, str(value))
    else:
        raise ImageWriteError(
            f"{target}: metadata {name!r} has unsupported type {type(value).__name__} "
            "(use str, int or float)"
        )


def _pixel_type(pixel_type: str, target: Path) -> oiio.TypeDesc:
    try:
        return PIXEL_TYPES[pixel_type]
    except KeyError:
        raise ImageWriteError(
            f"{target}: unknown pixel type {pixel_type!r} (use one of {', '.join(PIXEL_TYPES)})"
        ) from None


def _build_spec(
    target: Path,
    pixels: np.ndarray,
    channel_names: Sequence[str],
    info_like: ImageInfo | None,
    pixel_type: str,
    bits: int | None,
    compression: str | None,
    tile: tuple[int, int] | None,
    metadata: Mapping[str, Any] | None,
    views: Sequence[str] | None = None,
) -> oiio.ImageSpec:
    height, width, nchannels = pixels.shape
    spec = oiio.ImageSpec(width, height, nchannels, _pixel_type(pixel_type, target))
    spec.channelnames = tuple(channel_names)
    if "A" in channel_names:
        spec.alpha_channel = list(channel_names).index("A")
    if info_like is not None:
        if (info_like.width, info_like.height) != (width, height):
            raise ImageWriteError(
                f"{target}: pixels are {width}x{height} but the data window of "
                f"{info_like.path} is {info_like.width}x{info_like.height}"
            )
        spec.x, spec.y = info_like.x, info_like.y
        spec.full_x, spec.full_y = info_like.full_x, info_like.full_y
        spec.full_width, spec.full_height = info_like.full_width, info_like.full_height
        for name, value in info_like.metadata.items():
            if _is_layout_key(name):
                continue
            try:
                _set_attribute(spec, name, value, info_like.metadata_types.get(name), target)
            except (ImageWriteError, TypeError, ValueError, RuntimeError) as exc:
                # One odd attribute of a source plate must not stop the matte being written.
                log.warning("%s: not copying metadata %r from %s: %s", target, name, info_like.path, exc)
    if bits is not None:
        spec.attribute("oiio:BitsPerSample", int(bits))
    if compression is not None:
        spec.attribute("compression", compression)
    if tile is not None:
        spec.tile_width, spec.tile_height = int(tile[0]), int(tile[1])
    for name, value in (metadata or {}).items():
        _set_attribute(spec, str(name), value, None, target)
    if views:
        # Several views in one part: multiView lists them, the default view first.
        spec.attribute("multiView", oiio.TypeDesc(f"string[{len(views)}]"), tuple(views))
    elif info_like is not None and info_like.view is not None and target.suffix.lower() == ".exr":
        # A file holding one view of several: OpenEXR's "files with only one view" convention,
        # its unprefixed channels that view's (Nuke reads the matte of the left eye as left).
        spec.attribute("multiView", oiio.TypeDesc("string[1]"), (info_like.view,))
    if spec.getattribute("DateTime") is None:
        # OIIO stamps EXR and TIFF files with the write time when no DateTime is given; an
        # empty one writes none, so one job on one plate gives one file, byte for byte.
        spec.attribute("DateTime", "")
    return spec


def write_image(
    path: str | Path,
    pixels: np.ndarray,
    channel_names: Sequence[str],
    *,
    info_like: ImageInfo | None = None,
    pixel_type: str | None = None,
    bits: int | None = None,
    compression: str | None = None,
    tile: tuple[int, int] | None = None,
    metadata: Mapping[str, Any] | None = None,
    views: Sequence[str] | None = None,
) -> None:
    """Write ``pixels`` ``[H, W, C]`` (or ``[H, W]``) to any format OIIO writes, atomically.

    Args:
        path: the target; its extension picks the format (``.exr``, ``.dpx``, ``.tif``, ``.png``).
        pixels: float data (0..1 for integer formats) covering the data window, or uint8 /
            uint16 code values (full range = 1.0), written exactly when ``pixel_type`` matches.
        channel_names: one name per channel.
        info_like: copy the data/display windows and shot metadata from this image; when it
            was read as a view of a multi-view file (``info_like.view``) an EXR is marked as
            holding that one view (``multiView``): unprefixed channels are that view's, and a
            layered one is named into it (``matte.A`` is written ``matte.<view>.A``).
        pixel_type: ``"half"``, ``"float"``, ``"uint"``, ``"uint8"``, ``"uint16"``;
            default ``"half"`` for EXR, the array's own type for uint8 / uint16 code values
            and ``"uint16"`` otherwise.
        bits: bits per sample for formats that pack them (DPX 10 or 12 in a ``uint16`` buffer).
        compression: format-specific compression name passed to OIIO.
        tile: ``(w, h)`` to write a tiled file (EXR, TIFF).
        metadata: extra attributes (str, int or float values), written last.
        views: an EXR holding these views, the default view first (its ``multiView``); the
            channels are then named as given, each in its view (:func:`view_channel`), and
            ``info_like.view`` is not applied.

    Raises:
        ImageWriteError: bad arguments or a failed write; the target is then untouched.
    """
    target = Path(path)
    array = np.asarray(pixels)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] < 1:
        raise ImageWriteError(f"{target}: expected pixels [H, W, C], got shape {np.shape(pixels)}")
    if len(channel_names) != array.shape[2]:
        raise ImageWriteError(
            f"{target}: {len(channel_names)} channel names for {array.shape[2]} channels"
        )
    if len(set(channel_names)) != len(channel_names):
        raise ImageWriteError(f"{target}: duplicate channel names {list(channel_names)}")
    if views and target.suffix.lower() != ".exr":
        raise ImageWriteError(f"{target}: only an OpenEXR file holds several views")
    view = info_like.view if info_like is not None and target.suffix.lower() == ".exr" and not views else None
    if view is not None:
        channel_names = [view_channel(c, view) for c in channel_names]
    codes = array.dtype in (np.uint8, np.uint16)
    if pixel_type is None:
        if target.suffix.lower() == ".exr":
            pixel_type = "half"
        else:
            pixel_type = str(array.dtype) if codes else "uint16"
    spec = _build_spec(
        target, array, channel_names, info_like, pixel_type, bits, compression, tile, metadata, views
    )
    # Code values go to OIIO in their own type (it rescales them to the file's); anything
    # else as float32.
    data = np.ascontiguousarray(array) if codes else np.ascontiguousarray(array, dtype=np.float32)
    with atomic_write(target, error=ImageWriteError, what="image") as tmp:
        _write_pixels(tmp, target, spec, data)


def write_exr(
    path: str | Path,
    channels: Mapping[str, np.ndarray],
    info_like: ImageInfo | None = None,
    compression: str = "zip",
    pixel_type: str = "half",
    metadata: Mapping[str, Any] | None = None,
    *,
    tile: tuple[int, int] | None = None,
    views: Sequence[str] | None = None,
) -> None:
    """Write named ``[H, W]`` float channels to a single-part OpenEXR file, atomically.

    Args:
        path: the target ``.exr``.
        channels: name -> ``[H, W]`` array, e.g. ``{"A": alpha}`` or ``{"matte.A": alpha}``.
        info_like: the plate this matte belongs to: its data window and display window are
            copied (the arrays are in data-window coordinates, so overscan survives) and so is
            its metadata, except keys describing the old file's layout, compression, channels,
            views or colour encoding; a plate read as a view marks the file as that view.
        compression: one of :data:`EXR_COMPRESSIONS`, optionally with a level (``"dwaa:45"``).
        pixel_type: ``"half"``, ``"float"`` or ``"uint"``.
        metadata: provenance attributes added last (e.g. ``{"vfxmatte:version": "0.1.0"}``).
        tile: ``(w, h)`` for a tiled file; scanline by default.
        views: the views the channels belong to, the default view first (see :func:`write_image`).

    Raises:
        ImageWriteError: bad arguments or a failed write; the target is then untouched and no
            temporary file is left behind.
    """
    target = Path(path)
    if target.suffix.lower() != ".exr":
        raise ImageWriteError(f"{target}: write_exr needs a .exr file name")
    if not channels:
        raise ImageWriteError(f"{target}: no channels to write")
    method = compression.split(":", 1)[0].lower()
    if method not in EXR_COMPRESSIONS:
        raise ImageWriteError(
            f"{target}: unknown EXR compression {compression!r} (use one of {', '.join(EXR_COMPRESSIONS)})"
        )
    if pixel_type not in ("half", "float", "uint"):
        raise ImageWriteError(f"{target}: EXR pixel type must be half, float or uint, got {pixel_type!r}")
    arrays = [np.asarray(a) for a in channels.values()]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1 or arrays[0].ndim != 2:
        detail = ", ".join(f"{n}: {np.shape(a)}" for n, a in channels.items())
        raise ImageWriteError(f"{target}: channels must all be [H, W] of one size ({detail})")
    write_image(
        target,
        np.stack(arrays, axis=2),
        list(channels),
        info_like=info_like,
        pixel_type=pixel_type,
        compression=compression,
        tile=tile,
        metadata=metadata,
        views=views,
    )

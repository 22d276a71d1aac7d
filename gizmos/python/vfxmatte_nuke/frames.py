"""Frame patterns, frame offsets and windows as Nuke's Read node states them.

Nuke numbers a Read node's output frames on the comp's timeline; the files carry their own
numbers. A Read's ``frame_mode`` relates the two: ``offset`` N shows file frame ``f`` at
``f + N``; ``start at`` S shows its ``first`` file frame at S; ``expression`` (the default)
computes the file frame from the timeline frame, and with no expression they are equal.
vfxmatte numbers mattes as the plate files are numbered, so jobs hold file frames and the
gizmo's frame knobs, like Nuke's timeline, hold timeline frames.

Nuke's bounding box has its origin at the bottom left of the format and ``r``/``t`` one past
the last pixel; an EXR data window counts rows down from the top of the display window and is
inclusive. :func:`data_window_from_bbox` and :func:`bbox_from_data_window` convert between
them.
"""

import re

from vfxmatte_nuke.errors import GizmoError

__all__ = [
    "bbox_from_data_window",
    "data_window_from_bbox",
    "frame_offset",
    "frame_path",
    "has_frame_token",
    "has_view_token",
    "hash_pattern",
    "parse_frames",
    "format_frames",
    "shift_frames",
]

#: Nuke's frame tokens in a file knob: ``####`` (one ``#`` per digit) and printf ``%04d``/``%d``.
FRAME_TOKEN = re.compile(r"#+|%0?(\d*)d")
#: Nuke's view tokens: ``%V`` the view's name, ``%v`` its first letter.
VIEW_TOKEN = re.compile(r"%[Vv]")
#: A timeline expression that is an offset: ``frame``, ``frame+10``, ``frame - 5``.
_OFFSET_EXPRESSION = re.compile(r"^\s*(?:frame|t)?\s*(?:([+-])\s*(\d+))?\s*$")


def _name(path):
    return re.split(r"[\\/]", path)[-1]


def has_frame_token(path):
    """True if the file name of ``path`` holds a frame token Nuke and vfxmatte both read."""
    return bool(FRAME_TOKEN.search(_name(path)))


def has_view_token(path):
    """True if ``path`` holds ``%V`` or ``%v`` (a stereo sequence in Nuke's spelling)."""
    return bool(VIEW_TOKEN.search(path))


def frame_path(pattern, frame, view=None):
    """The file ``pattern`` names for ``frame`` (and ``view``, for ``%V`` / ``%v``)."""

    def token(match):
        text = match.group(0)
        if text.startswith("#"):
            return "%0*d" % (len(text), frame)
        width = match.group(1)
        return "%0*d" % (int(width), frame) if width else "%d" % frame

    if has_view_token(pattern):
        if not view:
            raise GizmoError("%s holds %%V: set the gizmo's view knob (left, right ...)" % pattern)
        pattern = pattern.replace("%V", view).replace("%v", view[0])
    head, sep, name = pattern.rpartition("/") if "/" in pattern else pattern.rpartition("\\")
    return head + sep + FRAME_TOKEN.sub(token, name, count=1)


def hash_pattern(pattern):
    """``pattern`` with a printf frame token written in hashes (``%04d`` -> ``####``): the
    spelling Nuke shows and vfxmatte's messages use. ``%d`` (no padding) stays as it is."""

    def token(match):
        text = match.group(0)
        width = match.group(1)
        if text.startswith("#") or not width:
            return text
        return "#" * int(width)

    head, sep, name = pattern.rpartition("/")
    return head + sep + FRAME_TOKEN.sub(token, name, count=1)


def frame_offset(frame_mode, frame, first):
    """Timeline frame minus file frame for a Read node's ``frame_mode`` and ``frame`` knobs
    (``first``: its first file frame, which ``start at`` places).

    Raises:
        GizmoError: an ``expression`` that is not a plain offset (a retime: vfxmatte mattes
            file frames, one per frame).
    """
    mode = (frame_mode or "expression").strip()
    text = "" if frame is None else str(frame).strip()
    if mode == "offset":
        return _int_knob(text, "frame (offset)")
    if mode in ("start at", "start_at", "startat"):
        return _int_knob(text, "frame (start at)") - int(first)
    match = _OFFSET_EXPRESSION.match(text)
    if not match:
        raise GizmoError(
            "the Read's frame expression %r is a retime, not an offset: set its frame mode to "
            "offset or start at (vfxmatte mattes the plate's own frames)" % text
        )
    sign, amount = match.groups()
    # the expression gives the file frame: frame + N reads file t + N at timeline t
    return 0 if amount is None else (-int(amount) if sign == "+" else int(amount))


def _int_knob(text, what):
    try:
        return int(float(text or 0))
    except ValueError:
        raise GizmoError("the Read's %s knob must be a number, got %r" % (what, text))


_RANGE = re.compile(r"^(-?\d+)(?:-(-?\d+)(?:x(\d+))?)?$")


def parse_frames(text):
    """``"1001-1100"``, ``"1001-1100x2"``, ``"1001,1010-1020"``, ``"1001"`` -> a list of
    ``(first, last, step)`` runs, in the order given."""
    runs = []
    for part in str(text).replace(" ", "").split(","):
        match = _RANGE.match(part)
        if not match:
            raise GizmoError("frames %r: use 1001-1100, 1001-1100x2 or 1001,1010-1020" % text)
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        step = int(match.group(3) or 1)
        if last < first or step < 1:
            raise GizmoError("frames %r: %s runs backwards or has a zero step" % (text, part))
        runs.append((first, last, step))
    return runs


def format_frames(runs):
    """The text of ``(first, last, step)`` runs, as :func:`parse_frames` reads it."""
    parts = []
    for first, last, step in runs:
        if first == last:
            parts.append(str(first))
        elif step == 1:
            parts.append("%d-%d" % (first, last))
        else:
            parts.append("%d-%dx%d" % (first, last, step))
    return ",".join(parts)


def shift_frames(text, delta):
    """The frame list ``text`` with every frame moved by ``delta`` (timeline <-> file frames)."""
    return format_frames([(a + delta, b + delta, s) for a, b, s in parse_frames(text)])


def data_window_from_bbox(bbox, height):
    """Nuke's bounding box ``(x, y, r, t)`` of an image whose format is ``height`` rows high ->
    the EXR data window ``(xmin, ymin, xmax, ymax)`` (inclusive, rows down from the top)."""
    x, y, r, t = (int(v) for v in bbox)
    return (x, int(height) - t, r - 1, int(height) - y - 1)


def bbox_from_data_window(window, height):
    """The inverse of :func:`data_window_from_bbox`."""
    xmin, ymin, xmax, ymax = (int(v) for v in window)
    return (xmin, int(height) - ymax - 1, xmax + 1, int(height) - ymin)

"""A vfxmatte job from the gizmo's knobs and the plate Read's state, and its YAML text.

:class:`ReadState` holds what the Nuke layer reads off the plate's Read node; :data:`KNOBS`
names every knob of the ``VfxMatte`` gizmo with its default; :func:`build_job` turns both into
a :class:`JobPlan`: the job mapping (schema: jobs/README.md in the vfxmatte repository), the
frame offset between Nuke's timeline and the plate files, and the trimap frames the gizmo must
render from its trimap input, if any. :func:`job_yaml` writes the mapping as YAML that
``vfxmatte validate`` reads (no YAML library needed inside Nuke).

Every path in the job is absolute, so the job file can live anywhere; every ``$`` in a value
is written ``$$``, because job files expand environment variables.
"""

import json
import posixpath
import re

from vfxmatte_nuke import colorspace as cs
from vfxmatte_nuke import frames as fr
from vfxmatte_nuke.errors import GizmoError

__all__ = ["KNOBS", "BUTTONS", "TRIMAP_MODES", "JobPlan", "ReadState", "build_job", "job_yaml", "shot_name"]

#: The gizmo's value knobs and their defaults (the .gizmo file declares each; a test checks it).
KNOBS = {
    "executable": "",        # the vfxmatte program; empty: $VFXMATTE_EXECUTABLE, then PATH
    "job_file": "",          # where the job is written; empty: <script dir>/vfxmatte/<shot>.yaml
    "shot": "",              # empty: from the plate's file name
    "colorspace": "",        # the plate's colourspace; empty: from the Read's colorspace knob
    "layer": "",             # EXR part or channel prefix of the plate's RGB (beauty -> beauty.R)
    "view": "",              # the view of a stereo plate (%V in its path)
    "frames": "",            # timeline frames; empty: the Read's range
    "trimap_mode": "sequence",  # sequence | keyframes | mask
    "trimap_file": "",       # existing trimaps / keyframes / masks; empty: render the trimap input
    "keyframes": "",         # timeline frames of the keyframe trimaps (or roto keyframes)
    "edge_width": 12,        # mask mode: unknown band on each side of the roto edge, pixels
    "model": "starter",      # built-in name or .safetensors checkpoint
    "tile_size": 1408,
    "device": "auto",
    "precision": "auto",
    "output_file": "",       # the mattes' pattern; empty: <job dir>/out/<shot>.matte.####.exr
    "output_write": "",      # or the name of a Write node whose file is the mattes' pattern
    "channel": "A",          # the matte's channel: A, or a layer's (matte.A)
    "farm": "opencue",       # opencue | deadline | local
    "chunk_size": 10,
    "farm_executable": "",   # the vfxmatte farm nodes run; empty: the job's default (vfxmatte)
    "farm_send": False,      # submit (OpenCue, Deadline); off: write the farm files only
    "status": "",            # the last outcome, shown on the panel
    "vfxmatte_id": "",       # hidden: tags the Read / Copy nodes this gizmo made
}
#: The gizmo's buttons (PyScript knobs).
BUTTONS = ("write_job", "run_background", "propagate_trimaps", "submit_farm", "render_trimaps")
TRIMAP_MODES = ("sequence", "keyframes", "mask")

_SHOT = re.compile(r"[^A-Za-z0-9_.-]+")


class ReadState(object):
    """The plate Read node's knobs that a job depends on.

    Args:
        file: the ``file`` knob with its TCL evaluated and its frame token kept
            (``nuke.filename(read)``), forward slashes as Nuke writes them.
        first, last: the ``first`` / ``last`` knobs (file frames).
        frame_mode, frame: the ``frame_mode`` and ``frame`` knobs.
        colorspace, raw: the ``colorspace`` and ``raw`` knobs.
        on_error: the ``on_error`` knob (``error``, ``black``, ``checkerboard``, ``nearest frame``).
        format: ``(width, height)`` of the Read's format (the display window).
        bbox: ``(x, y, r, t)`` of the Read's bounding box (the data window), or None.
        name: the node's name, for messages.
    """

    def __init__(self, file, first, last, frame_mode="expression", frame="", colorspace="default",
                 raw=False, on_error="error", format=None, bbox=None, name="Read"):
        self.file = file
        self.first, self.last = int(first), int(last)
        self.frame_mode, self.frame = frame_mode, frame
        self.colorspace, self.raw = colorspace, bool(raw)
        self.on_error = on_error
        self.format = tuple(format) if format else None
        self.bbox = tuple(bbox) if bbox else None
        self.name = name

    @property
    def offset(self):
        """Timeline frame minus file frame (:func:`vfxmatte_nuke.frames.frame_offset`)."""
        return fr.frame_offset(self.frame_mode, self.frame, self.first)

    @property
    def data_window(self):
        """The plate's EXR data window as this Read's bbox and format state it, or None."""
        if self.bbox is None or self.format is None:
            return None
        return fr.data_window_from_bbox(self.bbox, self.format[1])


class JobPlan(object):
    """What :func:`build_job` decided.

    Attributes:
        job: the job mapping.
        path: the job file's path.
        offset: timeline frame minus file frame (apply it to the mattes' Read too).
        render: ``[(timeline frame, file path), ...]`` the trimap input must be rendered to
            before the job runs (empty when the job names existing files).
        render_kind: ``trimap`` (0 / 0.5 / 1 in RGB) or ``mask`` (a roto's alpha); both are
            8-bit PNGs of the format (the display window), as Nuke writes PNG.
    """

    def __init__(self, job, path, offset, render, render_kind):
        self.job, self.path, self.offset = job, path, offset
        self.render, self.render_kind = render, render_kind

    @property
    def output(self):
        return self.job["output"]["path"]

    @property
    def view(self):
        return self.job["plate"].get("view")


def shot_name(plate_file):
    """A shot name from a plate pattern: the file name up to its first dot (``sh010.####.exr``
    -> ``sh010``), with characters a job's ``shot`` refuses replaced by ``_``."""
    name = posixpath.basename(plate_file.replace("\\", "/"))
    stem = fr.VIEW_TOKEN.sub("", fr.FRAME_TOKEN.sub("", name)).split(".")[0].strip("_-") or "shot"
    cleaned = _SHOT.sub("_", stem)
    return cleaned if re.match(r"^[A-Za-z0-9_]", cleaned) else "shot_" + cleaned


def _value(settings, name):
    value = settings.get(name, KNOBS[name])
    return value.strip() if isinstance(value, str) else value


def _join(folder, *parts):
    # Nuke writes paths with forward slashes on every OS; keep its spelling.
    return posixpath.join(folder.replace("\\", "/"), *parts)


def _absolute(path, script_dir):
    path = path.replace("\\", "/")
    if re.match(r"^([A-Za-z]:)?/", path) or path.startswith("//"):
        return path
    if not script_dir:
        raise GizmoError("%s is relative and the script is not saved: save it or give an absolute path" % path)
    return posixpath.normpath(_join(script_dir, path))


def build_job(settings, read, color, script_dir="", output_write_file=""):
    """The job for ``settings`` (gizmo knob values by name, :data:`KNOBS`), the plate's
    :class:`ReadState` ``read`` and Nuke's :class:`~vfxmatte_nuke.colorspace.ColorState`.

    Args:
        script_dir: the Nuke script's folder (relative knob paths resolve against it; the
            default job folder is ``<script_dir>/vfxmatte``); empty for an unsaved script.
        output_write_file: the file of the Write node ``output_write`` names, when it is set.

    Raises:
        GizmoError: a setting the job cannot be built from, naming the knob.
    """
    plate = read.file.replace("\\", "/")
    if not plate:
        raise GizmoError("the plate Read %s has no file" % read.name)
    if not fr.has_frame_token(plate):
        raise GizmoError("the plate Read %s reads one file (%s): vfxmatte mattes sequences (####)" % (read.name, plate))
    plate = _absolute(plate, script_dir)
    shot = _value(settings, "shot") or shot_name(plate)
    view = _value(settings, "view") or None
    offset = read.offset

    job_file = _value(settings, "job_file")
    if job_file:
        job_file = _absolute(job_file, script_dir)
    elif script_dir:
        job_file = _join(script_dir, "vfxmatte", shot + ".yaml")
    else:
        raise GizmoError("save the script, or set the gizmo's job file knob: the job needs a folder")
    job_dir = posixpath.dirname(job_file)

    frames_knob = _value(settings, "frames")
    frames = fr.shift_frames(frames_knob, -offset) if frames_knob else "%d-%d" % (read.first, read.last)

    override = _value(settings, "colorspace")
    colour, config = cs.job_colorspace(override or read.colorspace, color, raw=read.raw and not override)

    plate_spec = {"path": plate, "frames": frames, "colorspace": colour}
    if _value(settings, "layer"):
        plate_spec["layer"] = _value(settings, "layer")
    if view:
        plate_spec["view"] = view
    if read.on_error == "nearest frame":
        plate_spec["missing"] = "hold"  # what the Read shows for a missing frame, the job reads too
    if fr.has_view_token(plate) and not view:
        raise GizmoError("the plate %s holds %%V: set the gizmo's view knob (left, right ...)" % plate)

    trimap, render, kind = _trimap(settings, shot, job_dir, script_dir, frames, offset, view)
    _check_render_size(trimap, render, read)

    tile = int(_value(settings, "tile_size"))
    model = {
        "checkpoint": _value(settings, "model") or "starter",
        "device": _value(settings, "device") or "auto",
        "precision": _value(settings, "precision") or "auto",
        "tile_size": tile,
    }
    if tile and 2 * 512 >= tile:
        model["overlap"] = max(0, (tile - 1) // 2 // 32 * 32)  # the schema: 2 x overlap < tile_size
    if not re.match(r"^[A-Za-z0-9_-]+$", model["checkpoint"]):
        model["checkpoint"] = _absolute(model["checkpoint"], script_dir)

    output = _value(settings, "output_file") or output_write_file.strip()
    if output:
        output = _absolute(output, script_dir)
    else:
        name = shot + (".%V" if view else "") + ".matte.####.exr"
        output = _join(job_dir, "out", name)
    output_spec = {"path": output, "channel": _value(settings, "channel") or "A"}

    job = {"version": 1, "shot": shot, "plate": plate_spec, "trimap": trimap}
    if config is not None:
        job["color"] = {"config": config}
    job["model"] = model
    job["output"] = output_spec
    farm = {"chunk_size": int(_value(settings, "chunk_size"))}
    if _value(settings, "farm_executable"):
        farm["executable"] = _value(settings, "farm_executable")
    job["farm"] = farm
    return JobPlan(job, job_file, offset, render, kind)


def _check_render_size(trimap, render, read):
    """Nuke renders PNGs at the format's size (the display window); per-frame trimaps and masks
    must be the plate's data window's size, so with overscan only keyframes can be rendered."""
    window = read.data_window
    if not render or window is None or trimap["mode"] == "keyframes" or trimap.get("missing") == "propagate":
        return
    full = (0, 0, read.format[0] - 1, read.format[1] - 1)
    if window != full:
        raise GizmoError(
            "the plate %s has a data window %s other than its format %dx%d (overscan): per-frame "
            "trimaps rendered from Nuke would be the format's size. Use keyframe trimaps (or roto "
            "keyframes), or set trimap files of the data window's size" % (read.name, window, read.format[0], read.format[1])
        )


def _trimap(settings, shot, job_dir, script_dir, frames, offset, view):
    """The job's ``trimap`` section, and the frames to render from the trimap input."""
    mode = _value(settings, "trimap_mode") or "sequence"
    if mode not in TRIMAP_MODES:
        raise GizmoError("trimap mode %r: choose %s" % (mode, ", ".join(TRIMAP_MODES)))
    given = _value(settings, "trimap_file")
    keys_knob = _value(settings, "keyframes")
    keys = fr.shift_frames(keys_knob, -offset) if keys_knob else None
    eye = ".%V" if view else ""
    if mode == "sequence":
        path = _absolute(given, script_dir) if given else _join(job_dir, "trimaps", shot + eye + ".####.png")
        spec, wanted, kind = {"mode": "sequence", "path": path}, frames, "trimap"
    elif mode == "keyframes":
        path = _absolute(given, script_dir) if given else _join(job_dir, "keyframes", shot + eye + ".####.png")
        if not given and keys is None:
            raise GizmoError("keyframe trimaps: set the gizmo's keyframes knob (e.g. 1001,1040) to render them")
        spec, wanted, kind = {"mode": "keyframes", "path": path}, keys, "trimap"
        if keys is not None:
            spec["frames"] = keys
    else:
        path = _absolute(given, script_dir) if given else _join(job_dir, "roto", shot + eye + ".####.png")
        spec = {"mode": "mask", "path": path, "band_px": int(_value(settings, "edge_width"))}
        wanted, kind = frames, "mask"
        if keys is not None:  # roto on a few frames: their trimaps are propagated to the rest
            spec.update(missing="propagate", frames=keys)
            wanted = keys
    render = []
    if not given:
        for first, last, step in fr.parse_frames(wanted):
            for frame in range(first, last + 1, step):
                render.append((frame + offset, fr.frame_path(path, frame, view)))
    return spec, render, kind


def _scalar(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    # JSON's string escapes are YAML's double-quoted ones; "$" is "$$" (job files expand $VAR)
    return json.dumps(str(value).replace("$", "$$"), ensure_ascii=False)


def _lines(mapping, indent):
    out = []
    for key, value in mapping.items():
        pad = "  " * indent
        if isinstance(value, dict):
            out.append("%s%s:" % (pad, key))
            out.extend(_lines(value, indent + 1))
        elif isinstance(value, (list, tuple)):
            out.append("%s%s: [%s]" % (pad, key, ", ".join(_scalar(v) for v in value)))
        else:
            out.append("%s%s: %s" % (pad, key, _scalar(value)))
    return out


def job_yaml(job, comment="written by the VfxMatte gizmo"):
    """The job mapping as YAML text (block mappings, double-quoted strings)."""
    head = ["# %s (schema: vfxmatte jobs/README.md)" % comment]
    return "\n".join(head + _lines(job, 0)) + "\n"

"""The Read and Copy nodes a finished run leaves in the comp, as knob values.

The mattes are half-float EXRs with the plate's data and display windows, so a Read on them
brings back the plate's bounding box (overscan included) and format without a Reformat; the
Read is ``raw`` (an alpha is data, never colour-converted), covers the job's frames, and is
shifted on the timeline by the plate Read's own offset so each matte sits under its plate
frame. The Copy node takes the matte's channel (``A`` -> ``rgba.alpha``, ``matte.A`` ->
``matte.alpha``) from its A input into the plate stream on its B input. The RGB beside it is
the plate's as read, not premultiplied: a Premult goes after the Copy.

:data:`READ_KNOBS`, :data:`COPY_KNOBS` and :data:`WRITE_KNOBS` list the knobs of Nuke's own
nodes this package sets or reads (names from Foundry's reference guide).
"""

from vfxmatte_nuke import frames as fr

__all__ = ["COPY_KNOBS", "READ_KNOBS", "ROOT_KNOBS", "WRITE_KNOBS", "TAG_KNOB", "copy_settings",
           "layer_channel", "matte_read_settings", "trimap_read_settings", "write_settings"]

READ_KNOBS = ("file", "first", "last", "origfirst", "origlast", "frame_mode", "frame", "colorspace",
              "raw", "on_error", "before", "after")
COPY_KNOBS = ("from0", "to0")
WRITE_KNOBS = ("file", "file_type", "channels", "raw")
ROOT_KNOBS = ("colorManagement", "OCIO_config", "customOCIOConfigPath", "name")
#: The hidden knob that ties a created node to its gizmo, so a re-run updates it.
TAG_KNOB = "vfxmatte_tag"


def layer_channel(channel):
    """A matte file's channel name -> the Nuke channel it reads as: ``A`` -> ``rgba.alpha``,
    ``matte.A`` -> ``matte.alpha``."""
    layer, _, last = channel.rpartition(".")
    name = {"R": "red", "G": "green", "B": "blue", "A": "alpha"}.get(last, last)
    return "%s.%s" % (layer or "rgba", name)


def _timeline(settings, offset):
    # "offset" N shows file frame f at timeline frame f + N, as the plate Read does
    settings.update(frame_mode="offset", frame=str(offset))
    return settings


def _span(frames_text):
    runs = fr.parse_frames(frames_text)
    return min(r[0] for r in runs), max(r[1] for r in runs)


def matte_read_settings(plan):
    """Knob values of the Read on the mattes of a :class:`~vfxmatte_nuke.job.JobPlan`."""
    first, last = _span(plan.job["plate"]["frames"])
    settings = {
        "file": fr.hash_pattern(plan.output),  # %V kept: the Read gives every view there is
        "first": first, "last": last, "origfirst": first, "origlast": last,
        "raw": True,
        "on_error": "black",  # a failed frame shows black, not an error that stops the comp
    }
    return _timeline(settings, plan.offset)


def trimap_read_settings(pattern, plan):
    """Knob values of the Read on propagated trimaps written to ``pattern`` (for review)."""
    settings = matte_read_settings(plan)
    settings["file"] = fr.hash_pattern(pattern)
    return settings


def copy_settings(channel):
    """Knob values of the Copy node: the matte's channel (A input) onto the plate's alpha (B)."""
    return {"from0": layer_channel(channel), "to0": "rgba.alpha"}


def write_settings(kind, path):
    """Knob values of the temporary Write node that renders the trimap input on one frame: an
    8-bit PNG of RGB for a trimap (``kind`` ``trimap``) or of RGBA for a roto (``mask``: vfxmatte
    reads its alpha); raw, so a painted 0.5 is stored as 128, not sRGB-encoded."""
    channels = {"trimap": "rgb", "mask": "rgba"}[kind]
    return {"file": path, "file_type": "png", "channels": channels, "raw": True}

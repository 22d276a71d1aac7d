"""Frames in and out: sequences on disk, and image files through OpenImageIO."""

from __future__ import annotations

from vfxmatte.io.image import ImageInfo, read_image, read_mask, read_trimap, write_exr, write_image
from vfxmatte.io.sequence import FrameSequence, format_frames, parse_frame_range, resolve_frames

__all__ = [
    "FrameSequence",
    "ImageInfo",
    "format_frames",
    "parse_frame_range",
    "read_image",
    "read_mask",
    "read_trimap",
    "resolve_frames",
    "write_exr",
    "write_image",
]

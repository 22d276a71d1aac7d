"""Frames in and out: sequences on disk, image files through OpenImageIO, atomic writes.

Every image, matte and mask vfxmatte or its training package reads or writes goes through
here, so inference, evaluation and training see the same pixels for the same file.
"""

from __future__ import annotations

from vfxmatte.io.atomic import atomic_write
from vfxmatte.io.image import ImageInfo, read_image, read_mask, read_photo, read_trimap, write_exr, write_image
from vfxmatte.io.sequence import FrameSequence, format_frames, parse_frame_range, resolve_frames

__all__ = [
    "FrameSequence",
    "ImageInfo",
    "atomic_write",
    "format_frames",
    "parse_frame_range",
    "read_image",
    "read_mask",
    "read_photo",
    "read_trimap",
    "resolve_frames",
    "write_exr",
    "write_image",
]

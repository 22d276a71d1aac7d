"""Fixtures that write small image files through the real OpenImageIO."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import OpenImageIO as oiio
import pytest


def write_parts(path: Path, parts: Sequence[tuple[str, dict[str, np.ndarray]]], pixel_type=oiio.HALF) -> Path:
    """Write a multi-part EXR: one part per (part name, {channel: [H, W] array})."""
    specs, pixels = [], []
    for name, channels in parts:
        first = next(iter(channels.values()))
        spec = oiio.ImageSpec(first.shape[1], first.shape[0], len(channels), pixel_type)
        spec.channelnames = tuple(channels)
        spec.attribute("oiio:subimagename", name)
        specs.append(spec)
        pixels.append(np.stack(list(channels.values()), axis=2).astype(np.float32))
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), specs), out.geterror()
    for k, (spec, data) in enumerate(zip(specs, pixels)):
        if k:
            assert out.open(str(path), spec, "AppendSubimage"), out.geterror()
        assert out.write_image(data), out.geterror()
    out.close()
    return path


def write_raw(path: Path, pixels: np.ndarray, spec: oiio.ImageSpec) -> Path:
    """Write one image with a hand-made spec (per-channel formats, odd layouts)."""
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec), out.geterror()
    assert out.write_image(np.ascontiguousarray(pixels, dtype=np.float32)), out.geterror()
    out.close()
    return path


@pytest.fixture(name="write_parts")
def _write_parts_fixture() -> Callable[..., Path]:
    return write_parts


@pytest.fixture(name="write_raw")
def _write_raw_fixture() -> Callable[..., Path]:
    return write_raw


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


@pytest.fixture
def ramp() -> Callable[[int, int, int], np.ndarray]:
    """Deterministic float32 [H, W, C] values in 0..1, distinct per channel."""

    def make(h: int = 12, w: int = 16, c: int = 3) -> np.ndarray:
        y, x, k = np.meshgrid(np.arange(h), np.arange(w), np.arange(c), indexing="ij")
        return ((x + 3 * y + 7 * k) % 97 / 96.0).astype(np.float32)

    return make

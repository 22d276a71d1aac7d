"""Tiling plans (vfxmatte.tiling): pure numpy, laid on the network's stride."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from vfxmatte.errors import InputError
from vfxmatte.tiling import (
    DEFAULT_OVERLAP,
    DEFAULT_TILE,
    Tile,
    crop_tile,
    padded_size,
    plan_tiles,
    tile_weight,
    tiles_needing_inference,
)

STRIDE = 32  # the shipped network's (vfxmatte.model.STRIDE; checked below)


def test_the_stride_used_here_is_the_networks():
    from vfxmatte.model import STRIDE as network_stride

    assert STRIDE == network_stride


def test_importing_tiling_does_not_import_torch():
    code = "import sys, vfxmatte.tiling; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_defaults_fit_the_stride_and_keep_a_4k_frame_at_two_rows():
    assert DEFAULT_TILE % STRIDE == 0 and 0 <= DEFAULT_OVERLAP < DEFAULT_TILE // 2
    tiles = plan_tiles(2160, 4096, DEFAULT_TILE, DEFAULT_OVERLAP, STRIDE)
    assert len({t.y for t in tiles}) == 2


def test_only_tiles_touching_unknown_are_computed():
    h, w = 2000, 2000
    tri = np.zeros((h, w), np.float32)
    tri[100:200, 100:200] = 0.5
    all_tiles = plan_tiles(h, w, 512, 128, STRIDE)
    needed = tiles_needing_inference(all_tiles, tri == 0.5, 128, STRIDE)
    assert len(all_tiles) == 25 and len(needed) == 1
    tri[:] = 0.5
    assert len(tiles_needing_inference(all_tiles, tri == 0.5, 128, STRIDE)) == 25


def test_tiles_are_stride_aligned_cover_every_pixel_and_are_feathered():
    h, w = 900, 1300  # not multiples of the stride: tiles cover the frame padded to 928 x 1312
    tiles = plan_tiles(h, w, 512, 128, STRIDE)
    hp, wp = 928, 1312
    assert (padded_size(h, STRIDE), padded_size(w, STRIDE)) == (hp, wp)
    acc = np.zeros((hp, wp), np.float32)
    assert {(t.h, t.w) for t in tiles} == {(tiles[0].h, tiles[0].w)}  # one size: tiles batch
    for t in tiles:
        assert t.h <= 512 and t.w <= 512
        assert t.y % 32 == 0 and t.x % 32 == 0  # the network is only shift-equivariant by its stride
        acc[t.y : t.y + t.h, t.x : t.x + t.w] += tile_weight(t, hp, wp, 128)
    assert acc.min() > 0.0  # every pixel gets weight from some tile (blending divides by acc)
    corner = tile_weight(tiles[0], hp, wp, 128)
    assert corner[0, 0] > 0 and corner[-1, -1] == 0.0  # frame border kept, inner edge dead
    assert corner[300, 200] > corner[400, 200]  # weight falls towards the inner edge


@pytest.mark.parametrize("h,w,tile,overlap", [(1080, 2048, 1024, 256), (2160, 4096, 1024, 256), (700, 3000, 512, 128), (1100, 1300, 1024, 256)])
def test_tiles_shrink_to_the_overlap_they_need(h, w, tile, overlap):
    tiles = plan_tiles(h, w, tile, overlap, STRIDE)
    ys, xs = sorted({t.y for t in tiles}), sorted({t.x for t in tiles})
    th, tw = tiles[0].h, tiles[0].w
    for starts, size, length in ((ys, th, -(-h // 32) * 32), (xs, tw, -(-w // 32) * 32)):
        assert starts[0] == 0 and starts[-1] + size == length  # covers the padded frame exactly
        gaps = [b - a for a, b in zip(starts, starts[1:])]
        assert all(size - g >= overlap for g in gaps)  # every neighbour pair keeps the overlap
        # ...and no more tile than needed: one stride smaller would break coverage or overlap.
        assert size == length or (length + (len(starts) - 1) * overlap) > len(starts) * (size - 32)
    assert len(tiles) * th * tw <= 1.7 * h * w  # 2K: 1.57x; fixed 1024-px tiles would be 2.8x


def test_a_plan_follows_the_stride_it_is_given():
    tiles = plan_tiles(700, 900, 320, 96, 64)
    assert all(t.y % 64 == 0 and t.x % 64 == 0 and t.h % 64 == 0 and t.w % 64 == 0 for t in tiles)
    assert plan_tiles(700, 900, 0, 0, 64) == [Tile(0, 0, 704, 960)]  # tile 0: one padded tile


def test_bad_tile_or_overlap_is_refused():
    with pytest.raises(InputError, match="multiple of 32"):
        plan_tiles(100, 100, 500, 64, STRIDE)
    with pytest.raises(InputError, match="overlap must be in"):
        plan_tiles(100, 100, 128, 64, STRIDE)


def test_crop_tile_reflects_past_the_frame_edge():
    a = np.arange(10 * 7, dtype=np.float32).reshape(10, 7)
    t = crop_tile(a, Tile(6, 2, 6, 5))  # 2 rows past the bottom, 0 past the right
    assert t.shape == (6, 5)
    assert np.array_equal(t[:4], a[6:10, 2:7])
    assert np.array_equal(t[4], a[8, 2:7]) and np.array_equal(t[5], a[7, 2:7])  # reflect

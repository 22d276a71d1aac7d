"""Chunks of a frame list: contiguous, deterministic, sizes within one; farm ranges."""

from __future__ import annotations

import pytest

from vfxmatte.errors import FarmError
from vfxmatte.farm.chunks import Chunk, chunk_frames, farm_range, parse_chunk, split_frames
from vfxmatte.farm.commands import DEADLINE_TOKENS, OPENCUE_TOKENS, plan_tasks


@pytest.mark.parametrize("n, m", [(10, 3), (24, 4), (7, 7), (3, 5), (1, 1), (100, 8)])
def test_chunks_are_contiguous_cover_the_list_in_order_and_differ_by_at_most_one(n, m):
    frames = list(range(1001, 1001 + 2 * n, 2))
    pieces = split_frames(frames, m)
    assert len(pieces) == m and [f for p in pieces for f in p] == frames
    sizes = [len(p) for p in pieces]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)
    assert [chunk_frames(frames, Chunk(i, m)) for i in range(1, m + 1)] == pieces


def test_the_split_of_ten_frames_in_three():
    assert split_frames(list(range(1, 11)), 3) == [[1, 2, 3, 4], [5, 6, 7], [8, 9, 10]]


@pytest.mark.parametrize("text", ["0/3", "4/3", "1", "a/b", "1/0", "-1/2", "1/2/3", ""])
def test_bad_chunks_are_refused_by_name(text):
    with pytest.raises(FarmError, match="invalid chunk"):
        parse_chunk(text)


def test_parse_chunk():
    assert parse_chunk(" 2/8 ") == Chunk(2, 8) and str(Chunk(2, 8)) == "2/8"


@pytest.mark.parametrize(
    "frames, expect",
    [([1001], ("1001", 1)), (list(range(1001, 1025)), ("1001-1024", 1)), (list(range(1001, 1100, 2)), ("1001-1099x2", 2)),
     ([1001, 1002, 1005], None), ([1003, 1002, 1001], None), ([], None)],
)
def test_farm_range_only_for_one_arithmetic_run(frames, expect):
    assert farm_range(frames) == expect


def test_tasks_of_a_stepped_range_keep_the_step_and_a_gappy_list_goes_frame_by_frame():
    stepped = plan_tasks(list(range(1001, 1100, 2)), 8, OPENCUE_TOKENS)
    assert (stepped.frames, stepped.chunk_size, stepped.task_frames) == ("1001-1099x2", 8, "#FRAME_START#-#FRAME_END#x2")
    gappy = plan_tasks([1001, 1002, 1010], 8, DEADLINE_TOKENS)
    assert (gappy.frames, gappy.chunk_size, gappy.task_frames) == ("1001,1002,1010", 1, "<STARTFRAME>")

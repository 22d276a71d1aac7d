"""Frame ranges, sequence patterns and missing-frame policies."""

from __future__ import annotations

from pathlib import Path

import pytest

from vfxmatte.errors import SequenceError
from vfxmatte.io.sequence import FrameSequence, format_frames, parse_frame_range, resolve_frames


def touch(directory: Path, *names: str) -> None:
    for name in names:
        (directory / name).write_bytes(b"x")


# ---- frame ranges --------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1001-1005", [1001, 1002, 1003, 1004, 1005]),
        ("1001-1009x2", [1001, 1003, 1005, 1007, 1009]),
        ("1001,1010-1012", [1001, 1010, 1011, 1012]),
        (" 1001, 1003 ", [1001, 1003]),
        ("1001", [1001]),
    ],
)
def test_parse_frame_range_forms(text, expected):
    assert parse_frame_range(text) == expected


@pytest.mark.parametrize("text", ["abc", "", "   ", "1001-", "1001-1100z2", "1.5-3"])
def test_parse_frame_range_garbage_names_the_text(text):
    with pytest.raises(SequenceError) as err:
        parse_frame_range(text)
    assert repr(text) in str(err.value)


def test_format_frames_is_compact():
    assert format_frames([1010, 1003, 1004, 1005, 1004]) == "1003-1005,1010"


# ---- patterns --------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["####", "%04d", "@@@@", "$F4"])
def test_pattern_forms_give_four_digit_paths(tmp_path, token):
    seq = FrameSequence(tmp_path / f"shot.{token}.exr")
    assert seq.padding == 4
    assert seq.path(1001) == tmp_path / "shot.1001.exr"
    assert seq.path(7) == tmp_path / "shot.0007.exr"
    assert seq.path(10000) == tmp_path / "shot.10000.exr"


def test_single_hash_means_unpadded(tmp_path):
    assert FrameSequence(tmp_path / "shot.#.exr").path(7) == tmp_path / "shot.7.exr"


@pytest.mark.parametrize("pattern", ["shot.exr", "shot.1001.exr", "plates/"])
def test_pattern_without_frame_token_is_rejected(pattern):
    with pytest.raises(SequenceError, match="frame token"):
        FrameSequence(pattern)


@pytest.mark.parametrize("token", ["####", "%04d", "@@@@", "$F4"])
def test_discover_is_strict_about_padding(tmp_path, token):
    touch(
        tmp_path,
        "shot.1001.exr", "shot.1002.exr", "shot.1004.exr", "shot.10000.exr", "shot.0007.exr",
        "shot.01005.exr",  # five digits for a four-digit frame: not ours
        "shot.1003.exr.tmp", "shot_v2.1003.exr", ".shot.1006.exr.ab12cd34.tmp.exr", "shot.abcd.exr",
    )
    (tmp_path / "shot.1008.exr").mkdir()  # a directory is not a frame
    seq = FrameSequence(tmp_path / f"shot.{token}.exr")
    assert seq.discover() == [7, 1001, 1002, 1004, 10000]
    assert seq.missing([1001, 1002, 1003, 1005]) == [1003, 1005]


def test_frames_default_to_embedded_range_then_disk(tmp_path):
    touch(tmp_path, "shot.1001.exr", "shot.1003.exr")
    assert FrameSequence(tmp_path / "shot.1001-1004#.exr").frames == [1001, 1002, 1003, 1004]
    assert FrameSequence(tmp_path / "shot.####.exr").frames == [1001, 1003]
    assert FrameSequence(tmp_path / "shot.####.exr", frames=[5, 6]).frames == [5, 6]


def test_discover_in_missing_directory_is_empty(tmp_path):
    assert FrameSequence(tmp_path / "nowhere" / "shot.####.exr").discover() == []


def test_directory_with_glob_characters(tmp_path):
    d = tmp_path / "shot[010]"
    d.mkdir()
    touch(d, "plate.1001.exr")
    assert FrameSequence(d / "plate.####.exr").discover() == [1001]


# ---- missing-frame policies --------------------------------------------------------------


@pytest.fixture
def gappy(tmp_path) -> FrameSequence:
    """Frames 1001-1010 with 1003-1005 and 1010 missing."""
    touch(tmp_path, *(f"shot.{f}.exr" for f in (1001, 1002, 1006, 1007, 1008, 1009)))
    return FrameSequence(tmp_path / "shot.####.exr", frames=list(range(1001, 1011)))


def test_error_policy_lists_missing_frames_compactly(gappy):
    with pytest.raises(SequenceError) as err:
        resolve_frames(gappy, None, "error")
    assert str(err.value) == f"missing frames 1003-1005,1010 of {gappy.pattern}"


def test_error_policy_passes_when_complete(gappy):
    pairs = resolve_frames(gappy, [1001, 1002], "error")
    assert pairs == [(1001, gappy.path(1001)), (1002, gappy.path(1002))]


def test_skip_policy_drops_missing(gappy):
    assert [f for f, _ in resolve_frames(gappy, None, "skip")] == [1001, 1002, 1006, 1007, 1008, 1009]


def test_hold_policy_uses_nearest_with_ties_to_earlier(gappy):
    held = dict(resolve_frames(gappy, [1000, 1003, 1004, 1005, 1010, 1020], "hold"))
    assert held == {
        1000: gappy.path(1001),  # before the first frame
        1003: gappy.path(1002),
        1004: gappy.path(1002),  # 2 from 1002 and 1006: tie goes to the earlier frame
        1005: gappy.path(1006),
        1010: gappy.path(1009),
        1020: gappy.path(1009),  # after the last frame
    }


@pytest.mark.parametrize("policy", ["error", "skip", "hold"])
def test_no_frame_on_disk_is_an_error(tmp_path, policy):
    seq = FrameSequence(tmp_path / "shot.####.exr", frames=[1001, 1002])
    with pytest.raises(SequenceError, match="no frames of .*shot.####.exr exist"):
        resolve_frames(seq, None, policy)


def test_skip_with_nothing_left_is_an_error(gappy):
    with pytest.raises(SequenceError, match="none of frames 1003-1005"):
        resolve_frames(gappy, [1003, 1004, 1005], "skip")


def test_unknown_policy(gappy):
    with pytest.raises(SequenceError, match="policy 'pad'"):
        resolve_frames(gappy, None, "pad")  # type: ignore[arg-type]


# ---- overlap: could two patterns name one file? ------------------------------------------


@pytest.mark.parametrize(
    "a,b,overlap",
    [
        ("shot.####.exr", "shot.%04d.exr", True),
        ("shot.@@@@.exr", "shot.$F4.exr", True),
        ("shot.####.exr", "shot.#####.exr", True),  # frames from 10000 on are written alike
        ("shot.1###.exr", "shot.####.exr", True),  # frame 1 of the first is frame 1001 of the second
        ("shot.2###.exr", "shot.####.exr", True),
        ("shot.####.exr", "shot.####.EXR", False),
        ("shot.####.exr", "shot_v2.####.exr", False),
        ("shot.####.exr", "shot.####.matte.exr", False),
        ("a/shot.####.exr", "b/shot.####.exr", False),
        ("a/shot.####.exr", "b/../a/shot.%04d.exr", True),
    ],
)
def test_overlap_compares_what_each_pattern_names(tmp_path, a, b, overlap):
    sa, sb = FrameSequence(tmp_path / a), FrameSequence(tmp_path / b)
    assert sa.overlaps(sb) is overlap and sb.overlaps(sa) is overlap


def test_overlap_resolves_symlinked_folders_and_relative_spellings(tmp_path, monkeypatch):
    (tmp_path / "plates").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "plates", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    plates = FrameSequence(tmp_path / "plates" / "shot.####.exr")
    assert plates.overlaps(FrameSequence("alias/new/../shot.%04d.exr"))
    assert plates.overlaps(tmp_path / "alias" / "shot.1001.exr")  # one file of the sequence
    assert not plates.overlaps(tmp_path / "alias" / "shot.01001.exr")  # not a name the pattern gives
    assert not plates.overlaps(FrameSequence("alias/sub/shot.####.exr"))


def test_frame_of_is_strict_about_padding():
    seq = FrameSequence("/p/shot.####.exr")
    assert [seq.frame_of(n) for n in ("shot.1001.exr", "shot.0007.exr", "shot.10000.exr", "shot.-001.exr")] == [1001, 7, 10000, -1]
    assert [seq.frame_of(n) for n in ("shot.01001.exr", "shot.7.exr", "shot..exr", "shot.1001.png", "shot.1e3.exr")] == [None] * 5

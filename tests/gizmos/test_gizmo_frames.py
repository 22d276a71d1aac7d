"""Nuke's frame tokens, frame modes and bounding boxes, turned into a job's terms."""

import pytest

from vfxmatte_nuke import frames as fr
from vfxmatte_nuke.errors import GizmoError


@pytest.mark.parametrize("path, expected", [
    ("/s/plate.####.exr", "/s/plate.1001.exr"),
    ("/s/plate.%04d.exr", "/s/plate.1001.exr"),
    ("/s/plate.%06d.exr", "/s/plate.001001.exr"),
    ("/s/plate.%d.exr", "/s/plate.1001.exr"),
    ("/s/plate.######.exr", "/s/plate.001001.exr"),
    ("/s/v%04d/plate.%V.####.exr", "/s/v%04d/plate.left.1001.exr"),  # only the file name's token
    ("/s/plate_%v.####.exr", "/s/plate_l.1001.exr"),
    ("C:\\shots\\plate.####.exr", "C:\\shots\\plate.1001.exr"),
])
def test_frame_path_fills_the_token_as_nuke_does(path, expected):
    assert fr.frame_path(path, 1001, view="left") == expected


def test_a_view_token_needs_a_view():
    with pytest.raises(GizmoError, match="view"):
        fr.frame_path("/s/plate.%V.####.exr", 1001)


def test_tokens_are_found_in_the_file_name_only():
    assert fr.has_frame_token("/s/plate.####.exr") and fr.has_frame_token("/s/plate.%04d.exr")
    assert not fr.has_frame_token("/s/v####/plate.exr")
    assert fr.has_view_token("/s/%V/plate.####.exr") and not fr.has_view_token("/s/plate.####.exr")
    assert fr.hash_pattern("/s/p.%04d.exr") == "/s/p.####.exr" and fr.hash_pattern("/s/p.%d.exr") == "/s/p.%d.exr"


@pytest.mark.parametrize("mode, frame, first, offset", [
    ("expression", "", 1001, 0),
    ("expression", "frame", 1001, 0),
    ("expression", "frame+10", 1001, -10),   # reads file t+10 at timeline t
    ("expression", "frame - 5", 1001, 5),
    ("offset", "100", 1001, 100),
    ("offset", "-1000", 1001, -1000),
    ("start at", "1", 1001, -1000),          # file 1001 shown at timeline 1
    ("start at", "1001", 1001, 0),
])
def test_frame_offset_is_timeline_minus_file_frame(mode, frame, first, offset):
    assert fr.frame_offset(mode, frame, first) == offset


def test_a_retime_expression_is_refused_naming_the_fix():
    with pytest.raises(GizmoError, match="offset or start at"):
        fr.frame_offset("expression", "frame*2", 1001)


def test_frame_lists_shift_between_timeline_and_files():
    assert fr.shift_frames("1-24", 1000) == "1001-1024"
    assert fr.shift_frames("1001,1010-1020x2", -1000) == "1,10-20x2"
    with pytest.raises(GizmoError):
        fr.parse_frames("1010-1001")


@pytest.mark.parametrize("bbox, height, window", [
    ((0, 0, 1920, 1080), 1080, (0, 0, 1919, 1079)),
    ((-64, -32, 1984, 1112), 1080, (-64, -32, 1983, 1111)),  # overscan: 64 px each side, 32 top/bottom
    ((100, 200, 300, 400), 1080, (100, 680, 299, 879)),
])
def test_nuke_bbox_and_exr_data_window_convert_both_ways(bbox, height, window):
    assert fr.data_window_from_bbox(bbox, height) == window
    assert fr.bbox_from_data_window(window, height) == bbox

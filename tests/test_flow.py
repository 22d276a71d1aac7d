"""Flow between plates: DIS accuracy, determinism, working resolution and the on-disk cache."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from vfxmatte import flow as flow_module
from vfxmatte.errors import ImageWriteError, InputError, PropagationError
from vfxmatte.flow import FLOW_PRESETS, FlowCache, FlowSettings, compute_flow, flow_image

SHIFT = (2.5, -1.25)  # sub-pixel, both axes


def _texture(seed: int, h: int, w: int, sigma: float = 2.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), sigma)
    return np.rint((n - n.min()) / (n.max() - n.min()) * 255).astype(np.uint8)


def _shifted_pair(h: int, w: int, shift: tuple[float, float], sigma: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """src, and dst = src moved by ``shift``: src(x) = dst(x + shift)."""
    big = _texture(7, h + 40, w + 40, sigma)
    src = big[20:20 + h, 20:20 + w]
    move = np.float32([[1, 0, shift[0]], [0, 1, shift[1]]])  # moved(q) = big(q - shift)
    dst = cv2.warpAffine(big, move, (w + 40, h + 40), flags=cv2.INTER_CUBIC)[20:20 + h, 20:20 + w]
    return np.ascontiguousarray(src), np.ascontiguousarray(dst)


def _interior(flow: np.ndarray, margin: int = 16) -> np.ndarray:
    return flow[margin:-margin, margin:-margin]


def test_flow_image_is_8bit_rec709_luma_of_the_working_values():
    rgb = np.zeros((4, 5, 4), np.float32)
    rgb[0, 0, :3] = 1.0
    rgb[1, 1, :3] = 0.5
    rgb[2, 2, :3] = (1.0, 0.0, 0.0)
    rgb[3, 3, :3] = (2.0, np.nan, -1.0)  # clipped, NaN as 0
    rgb[..., 3] = 0.3  # alpha is ignored
    img = flow_image(rgb)
    assert img.shape == (4, 5) and img.dtype == np.uint8
    assert img[0, 0] == 255 and img[1, 1] == 128 and img[2, 2] == round(0.2126 * 255)
    assert img[3, 3] == round(0.2126 * 255) and img[0, 1] == 0
    with pytest.raises(InputError, match="shape"):
        flow_image(np.zeros((4, 5), np.float32))


def test_compute_flow_recovers_a_subpixel_translation():
    src, dst = _shifted_pair(128, 160, SHIFT)
    flow = compute_flow(src, dst, FlowSettings())
    assert flow.shape == (128, 160, 2) and flow.dtype == np.float32
    inner = _interior(flow)
    err = np.hypot(inner[..., 0] - SHIFT[0], inner[..., 1] - SHIFT[1])
    assert np.median(err) < 0.1 and np.percentile(err, 95) < 0.25, (np.median(err), np.percentile(err, 95))
    back = compute_flow(dst, src, FlowSettings())
    assert np.allclose(np.median(_interior(back), axis=(0, 1)), [-SHIFT[0], -SHIFT[1]], atol=0.1)


@pytest.mark.parametrize("preset", FLOW_PRESETS)
def test_every_preset_runs_and_is_repeatable(preset):
    src, dst = _shifted_pair(96, 128, SHIFT)
    a = compute_flow(src, dst, FlowSettings(preset=preset))
    b = compute_flow(src, dst, FlowSettings(preset=preset))
    assert a.tobytes() == b.tobytes()
    assert np.allclose(np.median(_interior(a), axis=(0, 1)), SHIFT, atol=0.3)


_CHILD = """
import hashlib, sys, cv2
sys.path.insert(0, {tests!r})
cv2.setNumThreads({threads})
from test_flow import _shifted_pair, SHIFT
from vfxmatte.flow import compute_flow, FlowSettings
src, dst = _shifted_pair(128, 160, SHIFT)
print(hashlib.sha256(compute_flow(src, dst, FlowSettings()).tobytes()).hexdigest())
"""


def test_compute_flow_is_byte_identical_across_processes_and_thread_counts():
    src, dst = _shifted_pair(128, 160, SHIFT)
    here = hashlib.sha256(compute_flow(src, dst, FlowSettings()).tobytes()).hexdigest()
    tests = str(__import__("pathlib").Path(__file__).parent)
    for threads in (1, 3):
        out = subprocess.run([sys.executable, "-c", _CHILD.format(tests=tests, threads=threads)],
                             capture_output=True, text=True, check=True, timeout=60)
        assert out.stdout.strip() == here
    before = cv2.getNumThreads()
    compute_flow(src, dst, FlowSettings())
    assert cv2.getNumThreads() == before  # the pin is restored, not leaked


def test_max_side_runs_flow_smaller_and_returns_full_resolution_pixels(monkeypatch):
    shift = (4.0, 2.0)
    src, dst = _shifted_pair(300, 480, shift, sigma=4.0)
    seen = []
    real = cv2.DISOpticalFlow_create

    def spy(preset):
        dis = real(preset)

        class Spy:
            def calc(self, a, b, out):
                seen.append(a.shape)
                return dis.calc(a, b, out)
        return Spy()

    monkeypatch.setattr(flow_module.cv2, "DISOpticalFlow_create", spy)
    flow = compute_flow(src, dst, FlowSettings(max_side=240))
    assert seen == [(150, 240)]
    assert flow.shape == (300, 480, 2) and flow.dtype == np.float32
    # Scaled back to full-resolution pixels (unscaled it would read half the shift).
    assert np.allclose(np.median(_interior(flow, 24), axis=(0, 1)), shift, atol=0.2)
    compute_flow(src, dst, FlowSettings(max_side=1024))
    assert seen[-1] == (300, 480)  # a plate within the bound runs as it is


def test_compute_flow_rejects_mismatched_or_non_8bit_images():
    a = np.zeros((32, 40), np.uint8)
    with pytest.raises(InputError, match="differ in shape"):
        compute_flow(a, np.zeros((40, 32), np.uint8), FlowSettings())
    with pytest.raises(InputError, match="uint8"):
        compute_flow(a.astype(np.float32), a, FlowSettings())
    with pytest.raises(InputError, match="dst"):
        compute_flow(a, np.zeros((32, 40, 3), np.uint8), FlowSettings())


@pytest.mark.parametrize("kwargs", [{"method": "farneback"}, {"preset": "slow"}, {"max_side": 16}, {"max_side": 512.0}])
def test_flow_settings_reject_bad_values(kwargs):
    with pytest.raises(PropagationError, match="flow"):
        FlowSettings(**kwargs)


def test_flow_settings_to_dict_is_json_in_declaration_order():
    d = FlowSettings(preset="fast", max_side=512).to_dict()
    assert list(d) == ["method", "preset", "max_side"]
    assert json.loads(json.dumps(d)) == {"method": "dis", "preset": "fast", "max_side": 512}


def test_flow_cache_returns_byte_identical_flow_and_reads_it_back(tmp_path, monkeypatch):
    src, dst = _shifted_pair(96, 128, SHIFT)
    settings = FlowSettings()
    plain = compute_flow(src, dst, settings)
    cache = FlowCache(tmp_path / "flow")
    first = cache.flow(src, dst, settings)
    assert first.tobytes() == plain.tobytes()
    path = cache.path(src, dst, settings)
    assert path.is_file() and path.parent.parent == tmp_path / "flow"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left

    def no_compute(*_):
        raise AssertionError("computed although cached")

    monkeypatch.setattr(flow_module, "compute_flow", no_compute)
    again = FlowCache(tmp_path / "flow").flow(src, dst, settings)  # another process's view
    assert again.tobytes() == plain.tobytes() and again.dtype == np.float32
    assert FlowCache(None).path(src, dst, settings) is None


def test_flow_cache_replaces_an_unreadable_file(tmp_path):
    src, dst = _shifted_pair(64, 80, SHIFT)
    cache = FlowCache(tmp_path)
    path = cache.path(src, dst, FlowSettings())
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a flow")
    assert cache.flow(src, dst, FlowSettings()).tobytes() == compute_flow(src, dst, FlowSettings()).tobytes()
    assert np.load(path).shape == (64, 80, 2)


def test_flow_cache_write_failure_leaves_no_file_and_names_it(tmp_path, monkeypatch):
    src, dst = _shifted_pair(64, 80, SHIFT)
    cache = FlowCache(tmp_path)

    def broken_save(fh, arr, allow_pickle=False):
        fh.write(b"\x93NUMPY partial")
        raise OSError("disk full")

    monkeypatch.setattr(flow_module.np, "save", broken_save)
    with pytest.raises(ImageWriteError, match="flow cache file") as err:
        cache.flow(src, dst, FlowSettings())
    path = cache.path(src, dst, FlowSettings())
    assert str(path) in str(err.value)
    assert not path.exists() and list(path.parent.iterdir()) == []


def test_flow_cache_key_covers_images_shape_and_settings():
    src, dst = _shifted_pair(32, 48, SHIFT)
    key = FlowCache.key(src, dst, FlowSettings())
    assert key == FlowCache.key(src.copy(), dst.copy(), FlowSettings())
    others = {
        FlowCache.key(dst, src, FlowSettings()),
        FlowCache.key(src, dst, FlowSettings(preset="fast")),
        FlowCache.key(src, dst, FlowSettings(max_side=512)),
        FlowCache.key(src.reshape(48, 32), dst.reshape(48, 32), FlowSettings()),  # same bytes, other shape
    }
    src2 = src.copy()
    src2[0, 0] ^= 1
    others.add(FlowCache.key(src2, dst, FlowSettings()))
    assert key not in others and len(others) == 5

"""Information flow in a subprocess of another Python (benchmarks/peers.py), with a stand-in OpenCV."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import peers  # noqa: E402

#: A cv2.alphamat stand-in for the child interpreter: alpha = the image's red channel in the
#: band (BGR index 2), the trimap elsewhere; or a failure when the trimap has no band.
_STUB = """
import types, cv2, numpy as np
def infoFlow(image, trimap):
    if not (trimap == 128).any():
        raise ValueError("no unknown pixels")
    return np.where(trimap == 128, image[..., 2], trimap).astype(np.uint8)
cv2.alphamat = types.SimpleNamespace(infoFlow=infoFlow)
"""


def _interpreter(tmp_path: Path, body: str) -> str:
    exe = tmp_path / "python3"
    exe.write_text("#!/bin/sh\n" + body + "\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return str(exe)


@pytest.fixture
def stub_python(tmp_path: Path) -> str:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_STUB)
    return _interpreter(tmp_path, f'PYTHONPATH="{site}" exec "{sys.executable}" "$@"')


def _plate() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 1, (24, 32, 3)).astype(np.float32)
    trimap = np.zeros((24, 32), np.float32)
    trimap[:, 12:20] = 0.5
    trimap[:, 20:] = 1.0
    return image, trimap


def test_subprocess_infoflow_gets_the_in_process_inputs_and_returns_its_alpha(stub_python: str) -> None:
    assert peers.system_infoflow_missing(stub_python) is None
    image, trimap = _plate()
    alpha = peers.infoflow_in(stub_python)(image, trimap)
    band = trimap == 0.5
    red = np.round(image[..., 0] * 255) / 255  # RGB red, sent as BGR and 8-bit
    np.testing.assert_allclose(alpha[band], red[band], atol=1e-6)
    np.testing.assert_allclose(alpha[~band], np.round(trimap[~band]), atol=1e-6)
    assert alpha.dtype == np.float32 and alpha.shape == trimap.shape


def test_subprocess_failure_names_the_interpreter_and_the_error(stub_python: str) -> None:
    image, trimap = _plate()
    with pytest.raises(RuntimeError, match=r"python3 failed: .*no unknown pixels"):
        peers.infoflow_in(stub_python)(image, np.ones_like(trimap))


def test_missing_system_infoflow_is_a_reason_not_an_error(tmp_path: Path) -> None:
    assert "not found" in peers.system_infoflow_missing(str(tmp_path / "none"))
    assert "no cv2.alphamat" in peers.system_infoflow_missing(_interpreter(tmp_path, "exit 1"))
    # Here: in-process, through the system Python, or listed as unavailable with the reason.
    peer = peers.PEERS["infoflow"]
    assert (peer.unavailable is None) or ("cv2.alphamat" in peer.unavailable and peers.SYSTEM_PYTHON in peer.unavailable)

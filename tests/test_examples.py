"""vfxmatte.examples: the example shot's truth, trimaps and plates agree, and its hair moves."""

from __future__ import annotations

import numpy as np
import pytest

from vfxmatte import trimap as tm
from vfxmatte.errors import InputError
from vfxmatte.examples import make_example, make_shot010
from vfxmatte.io.image import read_image, read_mask, read_trimap

FRAMES = (1001, 1002, 1013)


@pytest.fixture(scope="module")
def shot(tmp_path_factory):
    return make_shot010(tmp_path_factory.mktemp("shot010"), frames=FRAMES, width=320, height=180)


def _frame(shot, f: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rgb, _ = read_image(shot.plates.replace("####", str(f)))
    return rgb, read_trimap(shot.trimaps.replace("####", str(f))), read_mask(shot.truth.replace("####", str(f)))


def test_files_have_the_documented_layout(shot):
    rgb, tri, alpha = _frame(shot, 1001)
    assert rgb.shape == (180, 320, 3) and tri.shape == alpha.shape == (180, 320)
    assert set(np.unique(tri)) == {tm.BG, tm.UNKNOWN, tm.FG}
    assert np.isfinite(rgb).all() and rgb.min() >= 0.0


def test_trimap_is_the_cores_from_alpha_of_the_truth(shot):
    """Known regions are what an 8-bit matte stores as 0 or 255; every partial pixel is unknown."""
    for f in FRAMES:
        _, tri, alpha = _frame(shot, f)
        tol = 0.5 / 255 + 1e-3  # the truth is stored as half floats
        assert np.all(alpha[tri == tm.FG] >= 1 - tol) and np.all(alpha[tri == tm.BG] <= tol)
        assert np.all(tri[(alpha > tol) & (alpha < 1 - tol)] == tm.UNKNOWN)
        band = 2 * max(2, round(180 / 54)) + 1
        known = tm.from_alpha(alpha, tolerance=0.5 / 255, kernel=band) != tm.UNKNOWN
        assert (tri[known] != tm.UNKNOWN).mean() > 0.999


def test_the_band_is_mostly_fine_hair(shot):
    _, tri, alpha = _frame(shot, 1001)
    band = tri == tm.UNKNOWN
    partial = (alpha > 0.01) & (alpha < 0.99)
    assert 0.05 < band.mean() < 0.8
    assert partial[band].mean() > 0.2
    # Strands are thinner than a pixel: most partial pixels are faint.
    assert (alpha[partial] < 0.5).mean() > 0.5


def test_the_hair_moves_from_frame_to_frame_and_the_matte_follows_the_plate(shot):
    rgb0, _, a0 = _frame(shot, 1001)
    rgb1, _, a1 = _frame(shot, 1002)
    _, _, a12 = _frame(shot, 1013)
    moved = np.abs(a1 - a0).mean()
    assert moved > 1e-3 and np.abs(a12 - a0).mean() > moved  # continuous motion
    assert not np.array_equal(rgb0, rgb1)


def test_unknown_example_names_the_known_ones(tmp_path):
    with pytest.raises(InputError, match="shot010"):
        make_example("shot999", tmp_path)


def test_keyframes_variant_writes_trimaps_only_on_the_keyframes_and_its_job_propagates(tmp_path, shot):
    import yaml

    from vfxmatte.jobs import parse_job
    from vfxmatte.pipeline import propagate_job

    keyed = make_shot010(tmp_path / "k", frames=range(1001, 1005), width=320, height=180, keyframes=[])
    assert keyed.keyframes == (1001, 1004) and keyed.trimaps.endswith("keyframes/shot010.####.png")
    written = sorted(p.name for p in (tmp_path / "k" / "keyframes").iterdir())
    assert written == ["shot010.1001.png", "shot010.1004.png"] and not (tmp_path / "k" / "trimaps").exists()
    # the same trimap as the full variant's on that frame
    np.testing.assert_array_equal(read_trimap(keyed.trimaps.replace("####", "1001")), _frame(shot, 1001)[1])
    job = parse_job(yaml.safe_dump(keyed.job_dict(tmp_path / "out" / "m.####.exr")), base_dir=tmp_path)
    assert job.trimap.mode == "keyframes"
    report = propagate_job(job, frames=[1002])
    assert report.done == [1002]
    with pytest.raises(InputError, match="keyframes"):
        make_shot010(tmp_path / "bad", frames=FRAMES, width=64, height=36, keyframes=[1005])

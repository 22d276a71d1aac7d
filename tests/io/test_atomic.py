"""The one atomic writer: unique temporary per writer, fsync of file and directory, rename, clean failure."""

from __future__ import annotations

import os
import stat

import pytest

from vfxmatte.errors import CheckpointError, DataError, ImageWriteError
from vfxmatte.io import atomic
from vfxmatte.io.atomic import atomic_write


def leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_writes_the_target_through_a_hidden_sibling_that_keeps_the_extension(tmp_path):
    target = tmp_path / "deep" / "dir" / "matte.1001.exr"
    with atomic_write(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".matte.1001.exr.")
        assert tmp.suffix == ".exr" and str(os.getpid()) in tmp.name
        assert not target.exists()
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    assert leftovers(target.parent) == []


def test_two_concurrent_writers_of_one_target_get_their_own_temporaries(tmp_path):
    target = tmp_path / "state.safetensors"
    with atomic_write(target) as first:
        first.write_bytes(b"first")
        with atomic_write(target) as second:
            assert second != first
            second.write_bytes(b"second")
            assert first.read_bytes() == b"first"  # neither writer clobbers the other's file
        assert target.read_bytes() == b"second"
    assert target.read_bytes() == b"first"  # the last complete file wins; never a mixture
    assert leftovers(tmp_path) == []


def test_file_is_synced_before_the_rename_and_the_directory_after(tmp_path, monkeypatch):
    calls = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        calls.append("fsync dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        real_fsync(fd)

    def replace(src, dst):
        calls.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    with atomic_write(tmp_path / "a.bin") as tmp:
        tmp.write_bytes(b"x")
    assert calls == ["fsync file", "replace", "fsync dir"]


@pytest.mark.parametrize("error", [ImageWriteError, CheckpointError, DataError])
def test_failure_keeps_the_old_target_removes_the_temporary_and_names_the_file(tmp_path, error):
    target = tmp_path / "m.safetensors"
    target.write_bytes(b"good")
    with pytest.raises(error, match=r"m\.safetensors: cannot write checkpoint \(disk full\)") as info:
        with atomic_write(target, error=error, what="checkpoint") as tmp:
            tmp.write_bytes(b"half a fi")
            raise OSError("disk full")
    assert isinstance(info.value.__cause__, OSError)
    assert target.read_bytes() == b"good"
    assert leftovers(tmp_path) == []


def test_failed_sync_keeps_the_old_target(tmp_path, monkeypatch):
    target = tmp_path / "a.png"
    target.write_bytes(b"good")

    def broken(path):
        raise OSError("I/O error")

    monkeypatch.setattr(atomic, "_fsync", broken)
    with pytest.raises(ImageWriteError, match=r"a\.png: cannot write image \(I/O error\)"):
        with atomic_write(target, what="image") as tmp:
            tmp.write_bytes(b"new")
    assert target.read_bytes() == b"good"
    assert leftovers(tmp_path) == []


def test_a_typed_error_from_the_writer_passes_through_unchanged(tmp_path):
    target = tmp_path / "a.exr"
    original = ImageWriteError(f"{target}: cannot write pixels (bad spec)")
    with pytest.raises(ImageWriteError) as info:
        with atomic_write(target, error=CheckpointError) as tmp:
            tmp.write_bytes(b"x")
            raise original
    assert info.value is original
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
def test_interrupts_clean_up_and_are_re_raised(tmp_path, interrupt):
    target = tmp_path / "a.exr"
    target.write_bytes(b"good")
    with pytest.raises(interrupt):
        with atomic_write(target) as tmp:
            tmp.write_bytes(b"x")
            raise interrupt()
    assert target.read_bytes() == b"good"
    assert leftovers(tmp_path) == []


def test_mode_makes_an_ordinary_data_file_of_a_private_temporary(tmp_path):
    umask = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "m.safetensors", mode=0o666) as tmp:
            tmp.write_bytes(b"x")
            os.chmod(tmp, 0o600)  # as a writer using a private temporary file would leave it
        assert stat.S_IMODE((tmp_path / "m.safetensors").stat().st_mode) == 0o644
        with atomic_write(tmp_path / "keep.bin") as tmp:
            tmp.write_bytes(b"x")
            os.chmod(tmp, 0o600)
        assert stat.S_IMODE((tmp_path / "keep.bin").stat().st_mode) == 0o600
    finally:
        os.umask(umask)


def test_temp_files_finds_only_writer_temporaries_by_their_target(tmp_path):
    from vfxmatte.io.atomic import temp_files, temp_path

    mine = temp_path(tmp_path / "matte.1001.exr")
    legacy = tmp_path / ".matte.1001.exr.123.0123456789ab.tmp.exr"  # the pid-only names of earlier releases
    state = temp_path(tmp_path / "state")
    for p in (mine, legacy, state, tmp_path / ".matte.1001.exr.123.0123456789ab.tmp.png",
              tmp_path / ".matte.1001.exr.notes", tmp_path / "matte.1001.exr.123.0123456789ab.tmp.exr"):
        p.write_bytes(b"x")
    found = temp_files(tmp_path)
    assert sorted(found) == ["matte.1001.exr", "state"]
    assert sorted(found["matte.1001.exr"]) == sorted([mine, legacy]) and found["state"] == [state]
    assert temp_files(tmp_path / "no such folder") == {}


def test_sweep_removes_only_temporaries_whose_writer_is_gone(tmp_path):
    import subprocess
    import sys
    import time

    from vfxmatte.io.atomic import STALE_SECONDS, _HOST, sweep_temps

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    gone = int(dead.stdout)
    files = {
        "dead here": tmp_path / f".a.exr.{gone}@{_HOST}.0123456789ab.tmp.exr",
        "alive here": tmp_path / f".a.exr.{os.getpid()}@{_HOST}.0123456789ab.tmp.exr",
        "other host, fresh": tmp_path / f".a.exr.{gone}@elsewhere.0123456789ab.tmp.exr",
        "other host, old": tmp_path / f".a.exr.{gone}@elsewhere.ba9876543210.tmp.exr",
        "not a temporary": tmp_path / ".a.exr.notes",
    }
    for p in files.values():
        p.write_bytes(b"x")
    old = time.time() - STALE_SECONDS - 60
    os.utime(files["other host, old"], (old, old))
    removed = sweep_temps(files.values())
    assert sorted(removed) == sorted([files["dead here"], files["other host, old"]])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        files[k].name for k in ("alive here", "other host, fresh", "not a temporary")
    )

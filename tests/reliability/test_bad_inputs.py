"""A corpus of bad inputs (issue 18 §10): each gives one clear line naming the file, key or
frame, the documented exit code (0 ok, 1 frames failed, 2 bad job or usage), no traceback, and
leaves every existing good output, plate, trimap and checkpoint byte for byte as it was.

Each case damages a private copy of a tiny shot whose good mattes are already in ``out/``, then
runs ``vfxmatte.cli.main`` in-process. Every bad file is a real file written through OpenImageIO,
or damaged from one."""

from __future__ import annotations

import os
import pickle
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
import yaml

from tests.reliability.conftest import FRAMES, H, W, Shot, checksums
from tests.test_validate import checkpoint_parts, make_not_a_file, write_channels, write_deep
from vfxmatte.cli import main
from vfxmatte.io.image import read_image, write_exr, write_image


@dataclass
class Expect:
    """What a case must give: the command's exit code, words its one line holds, and the files
    it may change (beyond those, every file checksummed before the run is unchanged after)."""

    argv: list[str]
    code: int
    words: tuple[str, ...]
    stream: str = "err"  # where the one line goes: "err" (errors, failed frames) or "out" (skips)
    may_change: tuple[Path, ...] = ()
    check: Callable[[], None] | None = None
    extra_folders: tuple[Path, ...] = field(default=())
    #: frames that fail, each printed once (``vfxmatte: frame F failed: ...``); None: one line
    failing: tuple[int, ...] | None = None
    #: what ``validate --all-frames`` on the same job exits with (None: ``code``). It reads
    #: headers, not plate pixels, and writes nothing: a plate damaged past its header and a
    #: disk that cannot be written pass it.
    validate: int | None = None


def run(shot: Shot, *args: str, **sections) -> list[str]:
    return ["run", str(shot.job(**sections)), *args]


# --------------------------------------------------------------------------- bad files on disk


def truncate(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def garbage(path: Path) -> Path:
    path.write_bytes(np.random.default_rng(7).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    return path


def zero_bytes(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def non_utf8_damage(path: Path) -> Path:
    """An EXR whose OIIO error quotes a channel-list type name with a byte that is not UTF-8."""
    rgb = np.zeros((H, W), np.float32)
    write_exr(path, {"R": rgb, "G": rgb, "B": rgb})
    good = path.read_bytes()
    path.write_bytes(good.replace(b"channels\x00chlist", b"channels\x00chl\xffst", 1))
    assert path.read_bytes() != good
    return path


def not_a_file(path: Path, kind: str) -> Path:
    path.unlink()
    return make_not_a_file(path, kind)


def dpx_plates(shot: Shot) -> Path:
    """The plates as 10-bit DPX files (OIIO's DPX writer) beside the EXRs; returns the pattern."""
    folder = shot.root / "dpx"
    folder.mkdir()
    for f in FRAMES:
        rgb, _ = read_image(shot.plate(f))
        write_image(folder / f"shot010.{f}.dpx", np.clip(rgb, 0, 1), ["R", "G", "B"], pixel_type="uint16", bits=10)
    return folder / "shot010.####.dpx"


def dpx_case(damage: Callable[[Path], Path], validate: int | None = None) -> Callable[[Shot], Expect]:
    def case(shot: Shot) -> Expect:
        pattern = dpx_plates(shot)
        bad = damage(pattern.parent / "shot010.1002.dpx")
        out = shot.root / "dpx_out" / "shot010.####.exr"
        return Expect(["run", str(shot.job(plate={"path": str(pattern), "colorspace": "cineon"},
                                           output={"path": str(out)}))],
                      1, ("frame 1002", str(bad)), extra_folders=(pattern.parent,), validate=validate)

    return case


def plate_case(damage: Callable[[Path], Path], *words: str, validate: int | None = None) -> Callable[[Shot], Expect]:
    def case(shot: Shot) -> Expect:
        bad = damage(shot.plate(1002))
        return Expect(run(shot), 1, ("frame 1002 failed", str(bad), *words), validate=validate)

    return case


def trimap_case(damage: Callable[[Path], Path], *words: str) -> Callable[[Shot], Expect]:
    def case(shot: Shot) -> Expect:
        bad = damage(shot.trimap(1002))
        return Expect(run(shot), 1, ("frame 1002 failed", str(bad), *words))

    return case


def nan_inf_plate(shot: Shot) -> Expect:
    rgb, _ = read_image(shot.plate(1002))
    rgb = rgb.copy()
    rgb[::3, ::2] = np.nan
    rgb[1::3, ::2] = np.inf
    rgb[2::3, 1::2] = -np.inf
    write_exr(shot.plate(1002), {"R": rgb[..., 0], "G": rgb[..., 1], "B": rgb[..., 2]}, pixel_type="float")

    def finite():
        alpha, _ = read_image(shot.matte(1002), channels=("A",))
        assert np.isfinite(alpha).all() and 0.0 <= alpha.min() and alpha.max() <= 1.0

    return Expect(run(shot), 0, (), stream="none", may_change=(shot.matte(1002),), check=finite)


def rgba_trimap_alpha_zero(shot: Shot) -> Expect:
    """An RGBA PNG trimap whose alpha is 0 is its painted colour (as Nuke shows it): the mattes
    are the grey trimap's, byte for byte."""
    from vfxmatte.io.image import read_trimap

    grey = read_trimap(shot.trimap(1002))
    rgba = np.zeros((H, W, 4), np.uint8)
    rgba[..., :3] = np.round(grey * 255)[..., None].astype(np.uint8)
    shot.trimap(1002).unlink()
    write_image(shot.trimap(1002), rgba, ["R", "G", "B", "A"], pixel_type="uint8")
    assert np.array_equal(read_trimap(shot.trimap(1002)), grey)
    return Expect(run(shot), 0, (), stream="none")


def wrong_size_trimap(path: Path) -> Path:
    write_image(path, np.zeros((10, 12), np.float32), ["Y"], pixel_type="uint8")
    return path


def off_palette_trimap(path: Path) -> Path:
    write_image(path, np.full((H, W), 0.3, np.float32), ["Y"], pixel_type="uint8")
    return path


def png_bomb(path: Path, side: int = 8000) -> Path:
    """A valid 8-bit grey PNG of ``side`` x ``side`` zeros: tens of KB that decode to
    ``side**2`` bytes (and four times that as float)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    z = zlib.compressobj(9)
    row = bytes(side + 1)  # filter byte 0, then the row
    idat = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def wrong_size_plate(path: Path) -> Path:
    write_channels(path, ("R", "G", "B"), width=W + 8, height=H)
    return path


# --------------------------------------------------------------------------- sequences


def empty_sequence(policy: str) -> Callable[[Shot], Expect]:
    def case(shot: Shot) -> Expect:
        for f in FRAMES:
            shot.plate(f).unlink()
        return Expect(run(shot, plate={"missing": policy}), 2, (str(shot.plates / "shot010.####.exr"),))

    return case


def missing_plate(policy: str) -> Callable[[Shot], Expect]:
    def case(shot: Shot) -> Expect:
        shot.plate(1002).unlink()
        argv = run(shot, plate={"missing": policy})
        if policy == "error":
            return Expect(argv, 1, ("frame 1002 failed", "plate frame missing", str(shot.plate(1002))))
        # plate.missing is in the job hash: 1001 and 1003 are written again with this job's hash,
        # their pixels unchanged
        rewritten = (shot.matte(1001), shot.matte(1003))
        before = {p: read_image(p, channels=("A",))[0] for p in rewritten}

        def same_pixels():
            for p in rewritten:
                assert np.array_equal(read_image(p, channels=("A",))[0], before[p]), p

        if policy == "skip":
            return Expect(argv, 0, ("frame 1002 skipped", str(shot.plate(1002))), stream="out", may_change=rewritten,
                          check=same_pixels)
        # hold: 1002 is matted from 1001's plate and trimap; the matte records it
        def held():
            same_pixels()
            assert read_image(shot.matte(1002), channels=("A",))[1].metadata["vfxmatte:plate_frame"] in (1001, "1001")

        return Expect(argv, 0, (), stream="none", may_change=(*rewritten, shot.matte(1002)), check=held)

    return case


def missing_trimap(shot: Shot) -> Expect:
    shot.trimap(1002).unlink()
    return Expect(run(shot), 1, ("frame 1002 failed", "trimap", str(shot.trimaps)))


def frames_past_the_plates(shot: Shot) -> Expect:
    return Expect(run(shot, plate={"frames": "1001-1004"}), 1, ("frame 1004 failed", "plate frame missing"))


# --------------------------------------------------------------------------- outputs


def output_parent_is_a_file(shot: Shot) -> Expect:
    (shot.root / "blocker").write_text("not a folder")
    return Expect(run(shot, output={"path": str(shot.root / "blocker" / "m.####.exr")}), 1,
                  ("frame 1001 failed", str(shot.root / "blocker")), failing=FRAMES, validate=0)


def read_only_output(shot: Shot, small_disk) -> Expect:
    """An output folder on a read-only file system (permissions alone do not stop root)."""
    disk = small_disk(256)
    (disk / "out").mkdir()
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    return Expect(run(shot, output={"path": str(disk / "out" / "m.####.exr")}), 1, ("frame 1001 failed", str(disk / "out"), "Read-only file system"),
                  failing=FRAMES, validate=0)


def disk_full(leave: int) -> Callable[..., Expect]:
    """Existing good mattes on a nearly full disk: every write fails (ENOSPC) and leaves them."""

    def case(shot: Shot, small_disk, fill_disk) -> Expect:
        disk = small_disk(512)
        for f in FRAMES:
            (disk / shot.matte(f).name).write_bytes(shot.matte(f).read_bytes())
        fill_disk(disk, leave=leave)
        return Expect(run(shot, output={"path": str(disk / "shot010.####.exr")}), 1,
                      ("frame 1001 failed", str(disk / "shot010.1001.exr"), "bytes free on its file system"),
                      extra_folders=(disk,), may_change=(disk / "filler",), failing=FRAMES, validate=0)

    return case


def existing_output(damage: Callable[[Shot, Path], str]) -> Callable[[Shot], Expect]:
    """``skip_existing`` keeps only a whole matte of this job: a damaged or foreign one at
    frame 1002 is made again (one warning line naming it) into the good matte's bytes."""

    def case(shot: Shot) -> Expect:
        good = shot.matte(1002).read_bytes()
        words = damage(shot, shot.matte(1002))

        def remade():
            assert shot.matte(1002).read_bytes() == good

        return Expect(run(shot, output={"skip_existing": True}), 0, ("frame 1002", str(shot.matte(1002)), words,
                                                                      "made again"),
                      may_change=(shot.matte(1002),), check=remade)

    return case


def foreign_matte(shot: Shot, path: Path) -> str:
    write_channels(path, ("A",))
    return "no vfxmatte:job_hash"


def output_is_a_directory(shot: Shot) -> Expect:
    shot.matte(1002).unlink()
    shot.matte(1002).mkdir()
    return Expect(run(shot), 1, ("frame 1002 failed", str(shot.matte(1002))), validate=0,
                  check=lambda: shot.matte(1002).is_dir() or pytest.fail("the directory was replaced"))


#: every spelling of a pattern that names the plates' (or trimaps') own files
SPELLINGS = {
    "same": lambda folder, ext: f"{folder}/shot010.####.{ext}",
    "printf": lambda folder, ext: f"{folder}/shot010.%04d.{ext}",
    "houdini": lambda folder, ext: f"{folder}/shot010.$F4.{ext}",
    "at": lambda folder, ext: f"{folder}/shot010.@@@@.{ext}",
    "dotdot": lambda folder, ext: f"{folder}/../{folder.name}/shot010.####.{ext}",
    "symlink": None,  # a symlinked folder onto the plates
}


def onto_inputs(which: str, spelling: str) -> Callable[[Shot], Expect]:
    def case(shot: Shot) -> Expect:
        folder = shot.plates if which == "plate" else shot.trimaps
        ext = "exr" if which == "plate" else "png"
        if spelling == "symlink":
            (shot.root / "alias").symlink_to(folder)
            path = f"{shot.root / 'alias'}/shot010.####.{ext}"
        else:
            path = SPELLINGS[spelling](folder, ext)
        if which == "trimap":
            # the writer only writes EXR mattes: a trimap pattern must be EXR to clash
            shot_trimaps = shot.root / "trimaps_exr"
            shot_trimaps.mkdir()
            for f in FRAMES:
                write_channels(shot_trimaps / f"t.{f}.exr", ("Y",))
            path = path.replace(str(folder), str(shot_trimaps)).replace("shot010.", "t.").replace(".png", ".exr")
            if spelling == "symlink":
                (shot.root / "alias").unlink()
                (shot.root / "alias").symlink_to(shot_trimaps)
            argv = run(shot, trimap={"path": str(shot_trimaps / "t.####.exr")}, output={"path": path.replace("$", "$$")})
            return Expect(argv, 2, ("output.path", "trimap.path"), extra_folders=(shot_trimaps,))
        return Expect(run(shot, output={"path": path.replace("$", "$$")}), 2, ("output.path", "plate.path"))

    return case


def output_onto_masks(shot: Shot) -> Expect:
    masks = shot.root / "roto"
    masks.mkdir()
    for f in FRAMES:
        write_channels(masks / f"roto.{f}.exr", ("A",))
    argv = run(shot, trimap={"mode": "mask", "path": str(masks / "roto.####.exr")},
               output={"path": str(masks / "roto.%04d.exr")})
    return Expect(argv, 2, ("output.path", "trimap.path"), extra_folders=(masks,))


def propagate_onto_keyframes(shot: Shot) -> Expect:
    """``vfxmatte propagate --out`` naming the keyframes themselves (another spelling)."""
    job = shot.job(trimap={"mode": "keyframes", "frames": "1001,1003"})
    out = str(shot.trimaps / "shot010.$F4.png")
    return Expect(["propagate", str(job), "--out", out], 2, (out, "would overwrite the keyframes"))


def output_folder_not_writable(shot: Shot) -> Expect:
    if os.geteuid() == 0:
        pytest.skip("permissions do not stop root (output_read_only covers it)")
    locked = shot.root / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    return Expect(run(shot, output={"path": str(locked / "m.####.exr")}), 1, ("frame 1001 failed", str(locked)),
                  failing=FRAMES, validate=0)


# --------------------------------------------------------------------------- job files


def job_text(text: str, *words: str, command: str = "run") -> Callable[[Shot], Expect]:
    def case(shot: Shot) -> Expect:
        path = shot.root / "bad.yaml"
        path.write_text(text.format(**{k: str(v) for k, v in vars(shot).items() if isinstance(v, Path)}))
        return Expect([command, str(path)], 2, (str(path), *words))

    return case


def job_change(change: Callable[[dict], None], *words: str) -> Callable[[Shot], Expect]:
    def case(shot: Shot) -> Expect:
        data = shot.job_data()
        change(data)
        path = shot.root / "bad.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return Expect(["run", str(path)], 2, (str(path), *words))

    return case


ALIAS_BOMB = "\n".join(
    ["version: 1", "shot: shot010", 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
       f"*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]" for i in range(8)]
)

PYTHON_TAG = "version: 1\nshot: !!python/object/apply:os.system ['touch {root}/pwned']\n"


def set_key(path: str, value) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        *parents, last = path.split(".")
        for p in parents:
            data = data.setdefault(p, {})
        data[last] = value

    return change


def drop_key(path: str) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        *parents, last = path.split(".")
        for p in parents:
            data = data[p]
        del data[last]

    return change


# --------------------------------------------------------------------------- checkpoints


class _Payload:
    """A pickle that would leave a file behind if anything unpickled it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def checkpoint_case(make: Callable[[Shot], Path], *words: str) -> Callable[[Shot], Expect]:
    def case(shot: Shot) -> Expect:
        ckpt = make(shot)
        return Expect(["run", str(shot.job(model={"checkpoint": str(ckpt)}))], 2, ("model.checkpoint", str(ckpt), *words),
                      check=lambda: not (shot.root / "pwned").exists() or pytest.fail("a checkpoint was unpickled"))

    return case


def pickled(suffix: str) -> Callable[[Shot], Path]:
    def make(shot: Shot) -> Path:
        path = shot.root / f"model{suffix}"
        with path.open("wb") as f:
            pickle.dump({"state_dict": _Payload(shot.root / "pwned")}, f)
        return path

    return make


def torch_saved(shot: Shot) -> Path:
    from vfxmatte.model import build_model

    path = shot.root / "model.safetensors"
    torch.save(build_model("tiny").state_dict(), path)
    return path


def corrupt_checkpoint(shot: Shot) -> Path:
    data = shot.ckpt.read_bytes()
    path = shot.root / "corrupt.safetensors"
    path.write_bytes(data[:8] + b"\xff" * 64 + data[72:])
    return path


def truncated_checkpoint(shot: Shot) -> Path:
    return truncate(Path(shutil.copy(shot.ckpt, shot.root / "short.safetensors")), 0.6)


def arch_checkpoint(change: dict) -> Callable[[Shot], Path]:
    def make(shot: Shot) -> Path:
        import json

        from safetensors.torch import save_file

        meta, state = checkpoint_parts(shot.ckpt)
        meta["vfxmatte.arch"] = json.dumps({**json.loads(meta["vfxmatte.arch"]), **change})
        path = shot.root / "arch.safetensors"
        save_file(state, str(path), metadata=meta)
        return path

    return make


# --------------------------------------------------------------------------- the corpus


CASES: dict[str, Callable[..., Expect]] = {
    # plates
    "exr_truncated": plate_case(truncate, validate=0),
    "exr_truncated_header": plate_case(lambda p: truncate(p, 0.05)),
    "exr_garbage": plate_case(garbage),
    "exr_zero_bytes": plate_case(zero_bytes),
    "exr_error_not_utf8": plate_case(non_utf8_damage, "not UTF-8"),
    "exr_deep": plate_case(lambda p: (write_deep(p), p)[1], "deep"),
    "exr_luminance_chroma": plate_case(lambda p: (write_channels(p, ("Y", "RY", "BY")), p)[1], "luminance/chroma"),
    "exr_no_rgb_channels": plate_case(lambda p: (write_channels(p, ("X", "Z")), p)[1], "no channels R, G, B"),
    "exr_wrong_size": plate_case(wrong_size_plate, "40x32"),
    "dpx_truncated": dpx_case(truncate, validate=0),
    "dpx_garbage": dpx_case(garbage),
    "dpx_zero_bytes": dpx_case(zero_bytes),
    "plate_nan_inf": nan_inf_plate,
    "missing_layer": lambda s: Expect(run(s, plate={"layer": "beauty"}), 1, ("frame 1001 failed", "no layer 'beauty'"),
                                      failing=FRAMES),
    # trimaps
    "trimap_wrong_size": trimap_case(wrong_size_trimap, "12x10"),
    "trimap_off_palette": trimap_case(off_palette_trimap),
    "trimap_size_bomb": trimap_case(png_bomb, "8000x8000"),
    "trimap_garbage": trimap_case(garbage),
    "trimap_zero_bytes": trimap_case(zero_bytes),
    "trimap_rgba_alpha_zero": rgba_trimap_alpha_zero,
    "trimap_missing": missing_trimap,
    # sequences
    **{f"empty_sequence_{p}": empty_sequence(p) for p in ("error", "skip", "hold")},
    **{f"missing_plate_{p}": missing_plate(p) for p in ("error", "skip", "hold")},
    "frames_past_the_plates": frames_past_the_plates,
    # non-files where a frame should be
    **{f"{where}_{kind}": (plate_case if where == "plate" else trimap_case)(lambda p, k=kind: not_a_file(p, k), what)
       for where in ("plate", "trimap")
       for kind, what in (("loop", "a symlink loop"), ("fifo", "a FIFO"), ("directory", "a directory"))},
    # outputs
    "output_parent_is_a_file": output_parent_is_a_file,
    "output_is_a_directory": output_is_a_directory,
    "existing_output_truncated": existing_output(lambda s, p: (truncate(p), "incomplete or unreadable")[1]),
    "existing_output_zero_bytes": existing_output(lambda s, p: (zero_bytes(p), "incomplete or unreadable")[1]),
    "existing_output_of_another_job": existing_output(foreign_matte),
    "existing_output_fifo": existing_output(lambda s, p: (not_a_file(p, "fifo"), "a FIFO")[1]),
    "existing_output_symlink_loop": existing_output(lambda s, p: (not_a_file(p, "loop"), "a symlink loop")[1]),
    "output_read_only": read_only_output,
    "disk_full_0_bytes": disk_full(0),
    "disk_full_3_kib": disk_full(3072),
    **{f"output_onto_plates_{s}": onto_inputs("plate", s) for s in SPELLINGS},
    **{f"output_onto_trimaps_{s}": onto_inputs("trimap", s) for s in ("same", "printf", "symlink")},
    "output_onto_masks": output_onto_masks,
    "propagate_onto_keyframes": propagate_onto_keyframes,
    "output_folder_not_writable": output_folder_not_writable,
    "output_not_exr": job_change(set_key("output.path", "out/m.####.png"), "output.path"),
    "output_without_frame_token": job_change(set_key("output.path", "out/m.exr"), "output.path"),
    # job files
    "yaml_syntax": job_text("version: 1\nshot: [shot010\n", "line"),
    "yaml_alias_bomb": job_text(ALIAS_BOMB, "alias"),
    "yaml_python_tag": job_text(PYTHON_TAG, "python"),
    "yaml_control_character": job_text("version: 1\x00\nshot: shot010\n", ":1: invalid YAML: character U+0000"),
    "yaml_too_large": job_text("# padding\n" * 120_000, "at most 1048576"),
    "yaml_nested_too_deeply": job_text("version: 1\nshot: " + "[" * 20_000 + "]" * 20_000 + "\n", "nested too deeply"),
    "yaml_not_utf8": lambda s: (s.root.joinpath("bad.yaml").write_bytes(b"version: 1\nshot: \xff\n"),
                                Expect(["run", str(s.root / "bad.yaml")], 2, (str(s.root / "bad.yaml"), "utf-8")))[1],
    "yaml_not_a_mapping": job_text("- 1\n- 2\n"),
    "yaml_duplicate_key": job_text("version: 1\nversion: 1\nshot: a\n", "version"),
    "job_missing_file": lambda s: Expect(["run", str(s.root / "nope.yaml")], 2, (str(s.root / "nope.yaml"),)),
    "key_unknown": job_change(set_key("model.tile_sise", 512), "model.tile_sise"),
    "key_missing": job_change(drop_key("plate.path"), "plate.path"),
    "type_tile_size_string": job_change(set_key("model.tile_size", "512"), "model.tile_size"),
    "type_shot_number": job_change(set_key("shot", 8), "shot"),
    "value_precision": job_change(set_key("model.precision", "fp8"), "model.precision"),
    "value_overlap": job_change(set_key("model.overlap", 4096), "overlap"),
    # tiles of one stride cannot overlap: the tiling searched for a layout for ever on any
    # plate larger than a tile (these plates are one tile: it would have run)
    "value_overlap_on_a_stride_tile": job_change(lambda d: d["model"].update(tile_size=32, overlap=8), "model.overlap",
                                                 "at most tile_size - 32"),
    "value_tolerance": job_change(set_key("trimap.tolerance", 0.4), "trimap.tolerance"),
    "range_backwards_step": job_change(set_key("plate.frames", "1001-1003x0"), "plate.frames"),
    "range_words": job_change(set_key("plate.frames", "first-last"), "plate.frames"),
    "path_with_nul": job_change(set_key("output.path", "out/m\0x.####.exr"), "output.path", "NUL"),
    "env_unset": job_change(set_key("plate.path", "$VFXMATTE_NO_SUCH_VAR/p.####.exr"), "VFXMATTE_NO_SUCH_VAR"),
    "cli_bad_frames": lambda s: Expect(run(s, "--frames", "10-x"), 2, ("--frames",)),
    "cli_bad_chunk": lambda s: Expect(run(s, "--chunk", "3/2"), 2, ("--chunk",)),
    # checkpoints
    "checkpoint_missing": checkpoint_case(lambda s: s.root / "none.safetensors"),
    "checkpoint_corrupt": checkpoint_case(corrupt_checkpoint),
    "checkpoint_truncated": checkpoint_case(truncated_checkpoint),
    "checkpoint_pickle_pt": checkpoint_case(pickled(".pt")),
    "checkpoint_pickle_pth": checkpoint_case(pickled(".pth")),
    "checkpoint_torch_save_as_safetensors": checkpoint_case(torch_saved),
    "checkpoint_wrong_architecture": checkpoint_case(arch_checkpoint({"tcp_channels": 16}), "expects"),
    "checkpoint_absurd_width": checkpoint_case(arch_checkpoint({"encoder_widths": [8, 8, 16, 16, 10**12]}), "encoder_widths"),
    "checkpoint_width_string": checkpoint_case(arch_checkpoint({"tcp_channels": "8"}), "tcp_channels"),
}

NEEDS_DISK = {"output_read_only", "disk_full_0_bytes", "disk_full_3_kib"}


def the_lines(text: str, usage: bool = False) -> list[str]:
    lines = [line for line in text.splitlines() if line.strip()]
    if usage:  # argparse prints its usage block before the error
        lines = [line for line in lines if line.startswith("vfxmatte: ")]
    return lines


@pytest.mark.parametrize("name", list(CASES))
def test_a_bad_input_is_one_line_the_right_exit_code_and_nothing_lost(name, shot, capsys, request):
    make = CASES[name]
    if name in NEEDS_DISK:
        kw = {"small_disk": request.getfixturevalue("small_disk")}
        if name.startswith("disk_full"):
            kw["fill_disk"] = request.getfixturevalue("fill_disk")
        expect = make(shot, **kw)
    else:
        expect = make(shot)
    folders = (shot.plates, shot.trimaps, shot.out, *expect.extra_folders)
    before = checksums(*folders, shot.ckpt)
    if expect.argv[0] == "run" and not name.startswith("cli_"):
        want = expect.code if expect.validate is None else expect.validate
        got = main(["validate", expect.argv[1], "--all-frames"])
        checked = capsys.readouterr()
        assert got == want and "Traceback" not in checked.err, (got, checked.err)
        if want:  # it names what run names (a file by its frame's name, or its pattern's)
            assert all(line.startswith("vfxmatte: ") for line in the_lines(checked.err)), checked.err
            for word in expect.words:
                if " failed" not in word and " skipped" not in word:
                    assert word in checked.err or re.sub(r"\.\d{4}\.", ".####.", word) in checked.err, (word, checked.err)
    code = main(expect.argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    assert code == expect.code, (code, captured.err)
    # the one line: an error on stderr, or (skips) a frame line on stdout with nothing on stderr
    summary = {"out": "skipped", "err": None, "none": None}[expect.stream]
    if expect.stream == "err":
        lines = the_lines(captured.err, usage=name.startswith("cli_"))
        if expect.failing is None:
            assert len(lines) == 1, captured.err
        else:  # a failure of the whole shot: each frame's printed once
            assert [x.split(" failed: ")[0] for x in lines] == [f"vfxmatte: frame {f}" for f in expect.failing], lines
        line = lines[0]
        assert line.startswith("vfxmatte: "), line
    elif expect.stream == "out":
        assert captured.err == ""
        (line,) = [x for x in captured.out.splitlines() if summary in x and x.startswith("frame ")]
    else:
        assert captured.err == "" and not expect.words
        line = ""
    for word in expect.words:
        assert word in line, (word, line)
    after = checksums(*folders, shot.ckpt)
    changed = {p for p in before if after.get(p) != before[p]} - {str(p) for p in expect.may_change}
    assert not changed, changed
    for folder in folders:  # no temporary file left anywhere
        assert not [p for p in Path(folder).rglob(".*") if ".tmp" in p.name], folder
    if expect.check is not None:
        expect.check()


def test_a_trimap_that_claims_a_huge_image_is_refused_from_its_header(shot, capsys):
    """The size check comes before the pixels: a small file decoding to gigabytes never does."""
    import tracemalloc

    png_bomb(shot.trimap(1002))
    job = shot.job()
    tracemalloc.start()
    try:
        assert main(["validate", str(job), "--all-frames"]) == 1
        assert main(["run", str(job), "--frames", "1002"]) == 1
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert capsys.readouterr().err.count("is 8000x8000 but the plate's data window is 32x32") == 2
    assert peak < 32 * 2**20, peak  # the pixels alone are 64 MB as bytes, 256 MB as float


def test_the_corpus_is_large():
    assert len(CASES) >= 40


def test_a_tile_of_one_stride_with_overlap_is_refused_not_searched_for_ever():
    from vfxmatte.errors import InputError
    from vfxmatte.tiling import plan_tiles

    with pytest.raises(InputError, match="at most tile_size - 32"):
        plan_tiles(32, 2000, 32, 8, 32)
    tiles = plan_tiles(32, 2000, 64, 31, 32)  # the largest overlap a 64 tile allows
    xs = sorted({t.x for t in tiles})
    assert xs[0] == 0 and xs[-1] + 64 >= 2016 and all(b - a <= 64 - 31 for a, b in zip(xs, xs[1:]))

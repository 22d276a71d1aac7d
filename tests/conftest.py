import numpy as np
import pytest
import torch
from torch import nn


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run a module's tests on one torch thread.

    The pipeline and CLI tests push frames of a few hundred pixels through the tiny model, where
    thread start-up dominates; on a loaded machine OpenMP workers spin-waiting for busy cores
    would make each forward pass far slower than the work in it.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _randomise_norms(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every norm non-trivial statistics and affine terms, as a trained net has."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=g))
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.2)
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.3)
                m.running_var.copy_(0.3 + torch.rand(m.running_var.shape, generator=g))
    return model.eval()


@pytest.fixture
def randomise_norms():
    """``randomise_norms(model, seed=0)``: non-trivial norm statistics, as a trained net has."""
    return _randomise_norms


@pytest.fixture
def small_disk(tmp_path):
    """``small_disk(kib)``: a folder on a real tmpfs of ``kib`` KiB, so writes hit ENOSPC
    (mounted for the test and unmounted after it). Mounting needs root: the test is skipped
    where it cannot mount; the simulated-ENOSPC tests cover those machines."""
    import os
    import shutil
    import subprocess

    mounted = []

    def mount(kib: int):
        if os.geteuid() != 0 or shutil.which("mount") is None:
            pytest.skip("mounting a tmpfs needs root")
        folder = tmp_path / f"disk{len(mounted)}"
        folder.mkdir()
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={int(kib)}k", "tmpfs", str(folder)],
                              capture_output=True, text=True)
        if proc.returncode:
            pytest.skip(f"cannot mount a tmpfs: {proc.stderr.strip()}")
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", str(folder)], check=False)


def _fill_disk(folder, leave: int = 0):
    """Fill the file system of ``folder`` (a ``filler`` file) until at most ``leave`` bytes are free."""
    import os

    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        while True:
            st = os.statvfs(folder)
            free = st.f_bavail * st.f_frsize
            if free <= leave:
                break
            os.write(fd, b"\0" * min(free - leave, 4096))
    except OSError:
        pass  # ENOSPC: full
    finally:
        os.close(fd)
    return folder / "filler"


@pytest.fixture
def fill_disk():
    """``fill_disk(folder, leave=0)``: fill ``folder``'s file system up to ``leave`` free bytes."""
    return _fill_disk

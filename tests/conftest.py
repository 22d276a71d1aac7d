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

import numpy as np
import pytest
import torch


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

    The pipeline and CLI tests push frames of a few hundred pixels through the tiny model:
    thread start-up dominates, and on a busy 2-core machine OpenMP spin-waits made each
    forward pass ~100x slower.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

import importlib.util
import os
from pathlib import Path

import pytest

HAS_TORCH = importlib.util.find_spec("torch") is not None  # NumPyro's extra alone: no torch


@pytest.fixture(autouse=True)
def _seed_and_threads():
    """Fixed seeds, a clean param store and a deliberate thread count for every test
    (``$ARDAE_TEST_THREADS``, default 2: the cores of the CI machine); nothing to do for
    Pyro where torch is not installed (the NumPyro-only run)."""
    if not HAS_TORCH:
        yield
        return
    import pyro
    import torch

    torch.set_num_threads(int(os.environ.get("ARDAE_TEST_THREADS", "2")))
    pyro.set_rng_seed(0)
    pyro.clear_param_store()
    pyro.enable_validation(True)
    dtype = torch.get_default_dtype()
    yield
    torch.set_default_dtype(dtype)


def data_dir() -> str:
    """Where the tests find MNIST (torchvision layout): ``$ARDAE_DATA_DIR``, set by
    ``make test`` from ``DATA_DIR``, else ``../shared/data`` beside the repository."""
    default = Path(__file__).resolve().parents[2] / "shared" / "data"
    return os.environ.get("ARDAE_DATA_DIR", str(default))

import pyro
import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_and_threads():
    """Fixed seeds, a clean param store and a deliberate thread count for every test."""
    torch.set_num_threads(2)
    pyro.set_rng_seed(0)
    pyro.clear_param_store()
    pyro.enable_validation(True)
    dtype = torch.get_default_dtype()
    yield
    torch.set_default_dtype(dtype)

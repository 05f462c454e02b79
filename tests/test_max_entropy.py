"""The max-entropy example's penalty terms and model against analytic values."""

import importlib.util
import math
from pathlib import Path

import pyro
import pytest
import torch

spec = importlib.util.spec_from_file_location(
    "max_entropy", Path(__file__).resolve().parents[1] / "examples" / "max_entropy.py"
)
me = importlib.util.module_from_spec(spec)
spec.loader.exec_module(me)


def test_penalties_against_hand_computed_moments():
    x = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    # mean 0; sample covariance (n - 1 = 3) diag(2/3, 2/3)
    c1, c2 = me.penalties(x, torch.tensor([1.0, 0.0]), torch.eye(2))
    assert c1.item() == pytest.approx(1.0)
    assert c2.item() == pytest.approx(math.sqrt(2) / 3)


def test_model_log_density_is_the_penalty():
    m, cov = torch.zeros(me.DIM), torch.eye(me.DIM)
    x = torch.randn(64, me.DIM)
    trace = pyro.poutine.trace(pyro.poutine.condition(me.model, data={"x": x})).get_trace(
        m, cov, 2.0
    )
    c1, c2 = me.penalties(x, m, cov)
    expected = -64 * 2.0 * (c1**2 + c2**2)
    assert trace.log_prob_sum().item() == pytest.approx(expected.item(), rel=1e-4)


def test_emd_of_a_shift():
    # between a sample and itself shifted by a vector v, the EMD is |v| (translation)
    x = torch.randn(50, 3, generator=torch.Generator().manual_seed(0))
    assert me.emd(x, x + torch.tensor([3.0, 4.0, 0.0])) == pytest.approx(5.0, rel=1e-6)

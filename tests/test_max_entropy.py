"""The max-entropy example's penalty terms and model against analytic values."""

import math

import pyro
import pytest
import torch

from examples import max_entropy as me


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


@pytest.mark.parametrize("scales, n", [([0.5, 2.0], 4000), ([2.0] * 10, 2000)])
def test_knn_entropy_of_a_gaussian(scales, n):
    # sd of the estimate about sqrt(psi'(3) / n) < 0.02; the bias at these sizes is smaller
    # than the tolerance for an isotropic law (measured: +0.015 in 10-d at n = 2000). For
    # sds 0.5..2 in 10-d it is +0.34, which is why check() whitens first.
    g = torch.Generator().manual_seed(1)
    dim = len(scales)
    scales = torch.tensor(scales, dtype=torch.float64)
    x = (torch.randn(n, dim, generator=g, dtype=torch.float64) * scales).numpy()
    exact = 0.5 * dim * math.log(2 * math.pi * math.e) + scales.log().sum().item()
    assert me.knn_entropy(x) == pytest.approx(exact, abs=0.06)


def test_checks_of_exact_and_of_too_narrow_draws():
    g = torch.Generator().manual_seed(0)
    m, cov = me.problem(g)
    chol = torch.linalg.cholesky(cov)
    reference = torch.randn(2000, me.DIM, generator=g)
    w = torch.randn(2000, me.DIM, generator=g)
    exact = me.check(m + w @ chol.T, m, cov, reference)
    narrow = me.check(m + 0.9 * w @ chol.T, m, cov, reference)
    # the same draws scaled by 0.9: log det falls by exactly 20 log 0.9, and the k-NN
    # estimate (scale-equivariant) by 10 log 0.9, a known entropy deficit of 1.05 nats
    assert narrow["logdet"] - exact["logdet"] == pytest.approx(20 * math.log(0.9), rel=1e-6)
    gap = -10 * math.log(0.9)
    assert narrow["entropy_gap"] - exact["entropy_gap"] == pytest.approx(gap, rel=1e-6)
    # exact draws: log det within 4 sd (sqrt(2 d / n) = 0.1) of 0, the k-NN gap near 0 (sd
    # about 0.05 for two independent estimates), the energy distance near 0 (U-statistic)
    assert abs(exact["logdet"]) < 0.4 and abs(exact["entropy_gap"]) < 0.2
    assert abs(exact["energy"]) < 0.005 < narrow["energy"]

"""The surrogate's gradient is the analytic entropy gradient (cf. Pyro's test_gradient.py)."""

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.distributions import constraints
from pyro.infer import SVI

from pyro_ardae import ARDAE_ELBO, ImplicitGuide, ScoreConfig


class Affine(torch.nn.Module):
    """u = a + B eps: a Gaussian with entropy log|det B| + const."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Parameter(torch.tensor([0.5, -1.0]))
        self.B = torch.nn.Parameter(torch.tensor([[1.0, 0.0], [0.8, 0.5]]))

    def forward(self, eps):
        return self.a + eps @ self.B.T


@pytest.mark.parametrize("support", [constraints.real, constraints.positive])
def test_surrogate_gradient_is_minus_entropy_gradient(support):
    # log p = 0 (flat "model"), so the loss gradient is d/dphi E[log q] = -dH/dphi.
    def flat():
        pyro.sample("z", dist.ImproperUniform(support, (), (2,)))

    net = Affine()
    guide = ImplicitGuide(net, noise_dim=2, sites={"z": support}, score=ScoreConfig(hidden=(32,)))
    n = 50_000
    elbo = ARDAE_ELBO(num_particles=n, vectorize_particles=True, score_samples=2**16)
    elbo.differentiable_loss(flat, guide).backward()
    # H(u) = log|det B|: dH/dB = B^-T, dH/da = 0. For z = exp(u) add E[sum u]: dH/da += 1.
    expected_B = torch.linalg.inv(net.B.detach()).T
    expected_a = torch.zeros(2) if support is constraints.real else torch.ones(2)
    # per-particle terms have sd ~ |B^-1| ~ 2.5: the mean over 50k has SE ~ 0.01. The score
    # is the Gaussian of a half's moments (2^15 draws): its precision is off by about
    # sqrt(2 / 2^15) = 0.8% relative, 0.016 on the entry of 2 (4096 draws: 0.03, 0.06)
    assert torch.allclose(net.B.grad, -expected_B, atol=0.06)
    assert torch.allclose(net.a.grad, -expected_a, atol=0.06)


def test_score_net_is_outside_the_param_store():
    def flat():
        pyro.sample("z", dist.ImproperUniform(constraints.real, (), (2,)))

    guide = ImplicitGuide(Affine(), noise_dim=2, sites="z", score=ScoreConfig(hidden=(8,)))
    elbo = ARDAE_ELBO(score_samples=16)
    svi = pyro.infer.SVI(flat, guide, pyro.optim.Adam({"lr": 1e-3}), elbo)
    svi.step()
    est = elbo.estimators[guide._pyro_name]
    before = [p.detach().clone() for p in est.parameters()]
    svi.step()
    # the generator's parameters are Pyro params; the score net's are not, yet it trains
    names = set(pyro.get_param_store().keys())
    assert any(name.endswith("B") for name in names)
    assert not any("h." in name for name in names)
    assert any(not torch.equal(a, b) for a, b in zip(before, est.parameters(), strict=True))


def test_guide_fourier_features_reach_the_score_net_and_stay_fixed():
    def flat():
        pyro.sample("z", dist.ImproperUniform(constraints.real, (), (2,)))

    pyro.set_rng_seed(0)
    guide = ImplicitGuide(
        Affine(), noise_dim=2, sites="z", score=ScoreConfig(hidden=(8,), fourier_features=3)
    )
    elbo = ARDAE_ELBO(score_samples=16)
    svi = SVI(flat, guide, pyro.optim.Adam({"lr": 1e-3}), elbo)
    svi.step()
    net = elbo.estimators[guide._pyro_name].net
    frequencies, weight = net.frequencies.clone(), net.h[0].weight.detach().clone()
    assert frequencies.shape == (2, 3) and weight.shape == (8, 2 + 2 * 3 + 1)
    for _ in range(5):
        svi.step()
    assert torch.equal(net.frequencies, frequencies)
    assert not torch.equal(net.h[0].weight, weight)


def test_context_module_is_trained_with_the_generator():
    class Features(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(2, 3)

        def forward(self, x):
            return self.linear(x)

    def model(x):
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(x.sum(-1), 1.0))

    class Head(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(5, 1)

        def forward(self, noise, h):
            return self.linear(torch.cat([noise, h], -1)).squeeze(-1)

    guide = ImplicitGuide(
        Head(), noise_dim=2, sites="z", context=Features(), score=ScoreConfig(hidden=(8,))
    )
    svi = SVI(model, guide, pyro.optim.Adam({"lr": 1e-2}), ARDAE_ELBO(score_samples=16))
    before = guide.context.linear.weight.detach().clone()
    svi.step(torch.randn(4, 2))
    assert "implicit.context$$$linear.weight" in pyro.get_param_store()
    assert not torch.equal(guide.context.linear.weight, before)


def test_amortised_draw_is_centred_at_the_zero_noise_output():
    head = torch.nn.Linear(3, 2)
    guide = ImplicitGuide(
        lambda noise, c: head(torch.cat([noise, c], -1)),
        noise_dim=2,
        sites="z",
        context=lambda x: x,
        score=ScoreConfig(hidden=(4,)),
    )
    x = torch.randn(5, 1)
    with pyro.plate("particles", 7, dim=-2):
        trace = poutine.trace(guide).get_trace(x)
    draw = trace.nodes["z"]["fn"].draw
    expected = head(torch.cat([torch.zeros(5, 2), x], -1)).detach()
    assert draw.unconstrained.shape == draw.loc.shape == (7, 5, 2)
    assert torch.allclose(draw.loc, expected.expand(7, 5, 2))
    assert not draw.loc.requires_grad

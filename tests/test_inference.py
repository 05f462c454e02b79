"""SVI with ARDAE_ELBO recovers analytic posteriors."""

import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import SVI, Predictive

from pyro_ardae import ARDAE_ELBO, AutoImplicitGuide, ImplicitGuide, ScoreConfig, ScoreEstimator


def fit(model, guide, args=(), steps=1500, lr=1e-2, **elbo_kwargs):
    elbo_kwargs = {"num_particles": 8, "vectorize_particles": True, **elbo_kwargs}
    elbo = ARDAE_ELBO(**elbo_kwargs)
    # lr decays by 10x over the run so that the last iterate is close to the optimum
    optim = pyro.optim.ClippedAdam({"lr": lr, "lrd": 0.1 ** (1 / steps)})
    svi = SVI(model, guide, optim, elbo)
    energies = [svi.step(*args) for _ in range(steps)]
    assert all(math.isfinite(e) for e in energies)
    return elbo


def posterior(model, guide, args=(), n=4000, sites=None):
    with torch.no_grad():
        return Predictive(model, guide=guide, num_samples=n, parallel=True, return_sites=sites)(
            *args
        )


def conjugate_normal(x):
    mu = pyro.sample("mu", dist.Normal(0.0, 1.0))
    with pyro.plate("data", len(x)):
        pyro.sample("obs", dist.Normal(mu, 1.0), obs=x)


def test_conjugate_normal():
    x = torch.randn(10) + 1.0
    guide = AutoImplicitGuide(conjugate_normal, hidden=(32, 32), score=ScoreConfig(hidden=(64, 64)))
    fit(conjugate_normal, guide, (x,))
    mu = posterior(conjugate_normal, guide, (x,), sites=["mu"])["mu"]
    n = len(x)
    mean, sd = x.sum() / (n + 1), (1 / (n + 1)) ** 0.5
    # Monte Carlo error of 4000 draws is ~0.016 sd; the rest is the final iterate's noise.
    assert abs(mu.mean() - mean) < 0.15 * sd
    assert abs(mu.std() / sd - 1) < 0.15


RHO = 0.95


def correlated(scale_prior=10.0):
    z = pyro.sample("z", dist.Normal(0.0, scale_prior).expand([2]).to_event(1))
    cov = torch.tensor([[1.0, RHO * 2.0], [RHO * 2.0, 4.0]])
    target = dist.MultivariateNormal(torch.tensor([1.0, -1.0]), cov)
    pyro.factor("target", target.log_prob(z))


def test_correlated_gaussian_posterior():
    guide = AutoImplicitGuide(correlated, hidden=(32, 32), score=ScoreConfig(hidden=(64, 64)))
    fit(correlated, guide, steps=3000)  # correlations take longer than scales
    z = posterior(correlated, guide, sites=["z"])["z"].reshape(-1, 2)
    cov = torch.tensor([[1.0, RHO * 2.0], [RHO * 2.0, 4.0]])
    post_cov = torch.linalg.inv(torch.linalg.inv(cov) + torch.eye(2) / 100)
    post_mean = post_cov @ torch.linalg.inv(cov) @ torch.tensor([1.0, -1.0])
    exact_rho = post_cov[0, 1] / (post_cov[0, 0] * post_cov[1, 1]).sqrt()
    rho = torch.corrcoef(z.T)[0, 1]
    # AutoNormal would give rho = 0; sampling error of rho from 4000 draws is ~0.002
    assert abs(rho - exact_rho) < 0.02
    assert torch.allclose(z.mean(0), post_mean, atol=0.1 * post_cov.diagonal().sqrt().min())
    assert torch.allclose(z.std(0), post_cov.diagonal().sqrt(), rtol=0.15)


def gamma_poisson(counts):
    rate = pyro.sample("rate", dist.Gamma(3.0, 1.0))
    with pyro.plate("data", len(counts)):
        pyro.sample("obs", dist.Poisson(rate), obs=counts)


def test_gamma_poisson_constrained_site():
    counts = torch.tensor([2.0, 4.0, 3.0, 1.0, 5.0])
    guide = AutoImplicitGuide(gamma_poisson, hidden=(32, 32), score=ScoreConfig(hidden=(64, 64)))
    fit(gamma_poisson, guide, (counts,))
    rate = posterior(gamma_poisson, guide, (counts,), sites=["rate"])["rate"]
    exact = dist.Gamma(3.0 + counts.sum(), 1.0 + len(counts))
    assert (rate > 0).all()
    assert abs(rate.mean() - exact.mean) < 0.1 * exact.stddev
    assert abs(rate.std() / exact.stddev - 1) < 0.15


def local_model(x, idx, full_size):
    with pyro.plate("data", full_size, subsample=idx):
        z = pyro.sample("z", dist.Normal(0.0, 1.0))
        pyro.sample("obs", dist.Normal(z, 1.0), obs=x)


class Encoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(3, 32), torch.nn.ELU(), torch.nn.Linear(32, 1)
        )

    def forward(self, noise, x):
        return self.net(torch.cat([noise, x], -1)).squeeze(-1)


def encoder_guide(score_hidden: tuple[int, ...]) -> ImplicitGuide:
    """The amortised guide of ``local_model``: z_i from (noise, x_i)."""
    return ImplicitGuide(
        Encoder(),
        noise_dim=2,
        sites="z",
        context=lambda x, idx, n: x.unsqueeze(-1),
        context_event_dim=1,
        score=ScoreConfig(hidden=score_hidden),
    )


def test_amortized_guide_with_subsampling_scales_entropy():
    # z_i | x_i ~ N(x_i / 2, 1/2): the fitted sd is only right if the entropy term gets the
    # same N/B scale as the likelihood of the subsampled plate.
    full = 200
    xs = 2 * torch.randn(full)
    guide = encoder_guide((32, 32))
    elbo = ARDAE_ELBO(num_particles=4, vectorize_particles=True, score_samples=32)
    optim = pyro.optim.ClippedAdam({"lr": 1e-2, "lrd": 0.01 ** (1 / 1500)})
    svi = SVI(local_model, guide, optim, elbo)
    for _ in range(1500):
        idx = torch.randint(full, (20,))
        svi.step(xs[idx], idx, full)
    x = torch.tensor([-2.0, 0.0, 2.0])
    with torch.no_grad(), pyro.plate("draws", 4000, dim=-2):
        z = guide(x, None, full)["z"]
    assert z.shape == (4000, 3)
    assert torch.allclose(z.mean(0), x / 2, atol=0.15)
    assert torch.allclose(z.std(0), torch.full((3,), 0.5**0.5), rtol=0.15)


def test_each_score_step_trains_on_score_samples_fresh_draws(monkeypatch):
    calls = []
    update = ScoreEstimator.update

    def spy(self, samples, context=None, loc=None):
        calls.append(tuple(samples.shape))
        return update(self, samples, context, loc)

    monkeypatch.setattr(ScoreEstimator, "update", spy)
    elbo = ARDAE_ELBO(score_samples=32, score_steps=2)
    guide = AutoImplicitGuide(conjugate_normal, hidden=(8,), score=ScoreConfig(hidden=(8,)))
    SVI(conjugate_normal, guide, pyro.optim.Adam({"lr": 1e-3}), elbo).step(torch.randn(10))
    assert calls == [(32, 1), (32, 1)]


def test_predictive_gives_distinct_draws():
    x = torch.randn(10)
    guide = AutoImplicitGuide(conjugate_normal, hidden=(8,), score=ScoreConfig(hidden=(8,)))
    guide(x)
    draws = Predictive(conjugate_normal, guide=guide, num_samples=200)(x)["mu"]
    assert draws.unique().numel() == 200


def test_vectorized_particles_match_loop(monkeypatch):
    x = torch.randn(10) + 1.0
    guide = AutoImplicitGuide(conjugate_normal, hidden=(16,), score=ScoreConfig(hidden=(64, 64)))
    shared = fit(conjugate_normal, guide, (x,), steps=100).estimators
    loc = guide.generator.loc
    results = {}
    for vectorize in (True, False):
        elbo = ARDAE_ELBO(num_particles=1000, vectorize_particles=vectorize)
        elbo.estimators = shared
        monkeypatch.setattr(elbo, "train_score", lambda *args, **kwargs: {})  # one frozen net
        energies, grads = [], []
        for _ in range(2):
            loc.grad = None
            energies.append(elbo.loss_and_grads(conjugate_normal, guide, x))
            grads.append(loc.grad.clone())
        results[vectorize] = (sum(energies) / 2, torch.stack(grads).mean(0))
    (e1, g1), (e2, g2) = results[True], results[False]
    # -log p has sd ~ 1.5 per draw here: 2000 draws give an SE of ~0.05 for each mean
    assert abs(e1 - e2) < 0.25
    assert torch.allclose(g1, g2, atol=0.5)


def test_float64():
    torch.set_default_dtype(torch.float64)
    x = torch.randn(10)
    guide = AutoImplicitGuide(conjugate_normal, hidden=(8,), score=ScoreConfig(hidden=(8,)))
    elbo = fit(conjugate_normal, guide, (x,), steps=5)
    est = next(iter(elbo.estimators.values()))
    assert guide(x)["mu"].dtype == torch.float64
    assert next(est.parameters()).dtype == torch.float64


def test_generator_follows_the_models_dtype():
    # the default dtype stays float32: the layers must still follow the model's float64 values
    x = torch.randn(10, dtype=torch.float64)

    def model(x):
        mu = pyro.sample("mu", dist.Normal(torch.tensor(0.0, dtype=torch.float64), 1.0))
        with pyro.plate("data", len(x)):
            pyro.sample("obs", dist.Normal(mu, 1.0), obs=x)

    guide = AutoImplicitGuide(model, hidden=(8,), score=ScoreConfig(hidden=(8,)))
    fit(model, guide, (x,), steps=5)
    assert {p.dtype for p in guide.generator.parameters()} == {torch.float64}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda():
    x = torch.randn(10, device="cuda")

    def model(x):
        mu = pyro.sample("mu", dist.Normal(torch.tensor(0.0, device="cuda"), 1.0))
        with pyro.plate("data", len(x)):
            pyro.sample("obs", dist.Normal(mu, 1.0), obs=x)

    guide = AutoImplicitGuide(model, hidden=(8,), score=ScoreConfig(hidden=(8,))).cuda()
    elbo = fit(model, guide, (x,), steps=5)
    assert next(iter(elbo.estimators.values())).stats.loc.is_cuda


def eight_schools(sigma, y=None):
    mu = pyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = pyro.sample("tau", dist.HalfCauchy(5.0))
    with pyro.plate("schools", len(sigma)):
        eta = pyro.sample("eta", dist.Normal(0.0, 1.0))
        pyro.sample("obs", dist.Normal(mu + tau * eta, sigma), obs=y)


def test_latents_in_a_full_plate():
    y = torch.tensor([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
    sigma = torch.tensor([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])
    guide = AutoImplicitGuide(eight_schools, hidden=(16,), score=ScoreConfig(hidden=(16,)))
    fit(eight_schools, guide, (sigma, y), steps=20)
    post = posterior(eight_schools, guide, (sigma, y), n=100, sites=["mu", "tau", "eta"])
    assert post["eta"].shape == (100, 8)
    assert post["tau"].shape == (100, 1) and (post["tau"] > 0).all()
    assert guide.latent_dim == 10

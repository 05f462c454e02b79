"""The two backends agree: the same fit, the same whitening maps from the same draws."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from test_numpyro import KEY, X, conjugate_normal, fit

import numpyro_ardae
import pyro_ardae
from numpyro_ardae import AutoImplicitGuide, ScoreConfig, ScoreEstimator


def test_parity_with_pyro():
    # Same model and settings in both backends: posterior mean and sd agree within Monte
    # Carlo and optimisation noise (each backend's sd is within 15% of the exact 0.30).
    import pyro
    import torch

    from pyro_ardae import ARDAE_ELBO as TorchELBO
    from pyro_ardae import AutoImplicitGuide as TorchGuide

    x = torch.tensor(np.asarray(X))

    def torch_model(x):
        mu = pyro.sample("mu", pyro.distributions.Normal(0.0, 1.0))
        with pyro.plate("data", len(x)):
            pyro.sample("obs", pyro.distributions.Normal(mu, 1.0), obs=x)

    pyro.set_rng_seed(0)
    pyro.clear_param_store()
    tguide = TorchGuide(torch_model, hidden=(32, 32), score=ScoreConfig(hidden=(64, 64)))
    optim = pyro.optim.ClippedAdam({"lr": 1e-2, "lrd": 0.01 ** (1 / 1500)})
    svi = pyro.infer.SVI(
        torch_model, tguide, optim, TorchELBO(num_particles=8, vectorize_particles=True)
    )
    for _ in range(1500):
        svi.step(x)
    with torch.no_grad():
        draws = torch.stack([tguide(x)["mu"] for _ in range(4000)]).numpy()

    guide = AutoImplicitGuide(conjugate_normal, hidden=(32, 32), score=ScoreConfig(hidden=(64, 64)))
    result = fit(conjugate_normal, guide, (X,))
    mu = np.asarray(guide.sample_posterior(KEY, result.params, X, sample_shape=(4000,))["mu"])
    sd = (1 / 11) ** 0.5
    assert abs(draws.mean() - mu.mean()) < 0.2 * sd
    assert abs(draws.std() / mu.std() - 1) < 0.2


def test_update_keeps_the_same_cross_fitted_map_as_pyro():
    """Each half whitened by the other's moments; both backends keep the first half's map."""
    rng = np.random.default_rng(0)
    samples = (rng.normal(size=(256, 2)) * [1.0, 3.0]).astype(np.float32)
    est = ScoreEstimator(2, config=ScoreConfig(hidden=(4,)))
    _, stats, loss = jax.jit(est.update)(est.init(KEY), KEY, jnp.asarray(samples))
    torch_est = pyro_ardae.ScoreEstimator(2, config=ScoreConfig(hidden=(4,)))
    torch_est.update(torch.as_tensor(samples))
    np.testing.assert_allclose(stats.loc, torch_est.stats.loc.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats.scale, torch_est.stats.scale.numpy(), rtol=1e-5)
    assert jnp.isfinite(loss)


def test_the_same_antithetic_loss_as_pyro():
    """Untrained networks (the Gaussian base, h = 0) give the same paired estimate; it is
    not the one-sided one."""
    rng = np.random.default_rng(0)
    y, u = rng.normal(size=(2, 64, 3)).astype(np.float32)
    sigma = 0.3 * rng.normal(size=64).astype(np.float32)
    jax_net = numpyro_ardae.ScoreNet(3, hidden=(4,), key=KEY)
    value = numpyro_ardae.ardae_loss(jax_net, jnp.asarray(y), jnp.asarray(u), jnp.asarray(sigma))
    torch_net = pyro_ardae.ScoreNet(3, hidden=(4,))
    t = {k: torch.as_tensor(v) for k, v in {"y": y, "u": u, "sigma": sigma[:, None]}.items()}
    expected = pyro_ardae.ardae_loss(torch_net, t["y"], t["u"], t["sigma"])
    one_sided = t["u"] + t["sigma"] * torch_net(t["y"] + t["sigma"] * t["u"], t["sigma"])
    np.testing.assert_allclose(float(value), expected.item(), rtol=1e-5)
    assert abs(expected.item() - one_sided.pow(2).sum(-1).mean().item()) > 1e-3


def test_one_score_config_for_both_backends():
    # The class is framework-free and shared; it validates once, with the same messages.
    assert ScoreConfig is pyro_ardae.ScoreConfig
    assert ScoreConfig(hidden=[8, 4]).hidden == (8, 4)
    assert ScoreConfig() == ScoreConfig(
        hidden=(128, 128, 128),
        parameterization="vector",
        delta=0.1,
        fourier_features=0,
        fourier_scale=3.0,
    )
    # Both estimators take it and build the same network from it.
    config = ScoreConfig(hidden=(8,), parameterization="gradient", fourier_features=4)
    torch_net = pyro_ardae.ScoreEstimator(2, 1, config).net
    jax_net = ScoreEstimator(2, 1, config).init(KEY).net
    assert (torch_net.parameterization, torch_net.delta) == ("gradient", 0.1)
    assert (jax_net.parameterization, jax_net.delta) == ("gradient", 0.1)
    for owner in (pyro_ardae.ScoreEstimator, ScoreEstimator):
        with pytest.raises(TypeError, match="ScoreEstimator: expected config to be a ScoreConfig"):
            owner(2, 0, {"hidden": (8,)})
    for kwargs, match in (
        ({"parameterization": "scalar"}, "parameterization in"),
        ({"delta": 0.0}, "finite delta > 0, got 0.0"),
        ({"delta": float("inf")}, "finite delta > 0, got inf"),
        ({"hidden": (0,)}, r"hidden to be positive ints, got \(0,\)"),
        ({"fourier_features": -1}, "fourier_features to be an int >= 0, got -1"),
        ({"fourier_scale": 0}, "finite fourier_scale > 0, got 0"),
    ):
        with pytest.raises(ValueError, match=f"ScoreConfig: expected .*{match}"):
            ScoreConfig(**kwargs)
    with pytest.raises(TypeError, match="hidden to be a sequence of ints, got 64"):
        ScoreConfig(hidden=64)


# Arguments one backend has for its framework's conventions: Pyro's ELBOs take
# max_plate_nesting, NumPyro's autoguides take a prefix.
OWN = {"max_plate_nesting", "prefix"}


@pytest.mark.parametrize("name", ["ARDAE_ELBO", "AutoImplicitGuide", "ImplicitGuide"])
def test_public_constructors_take_the_same_arguments(name):
    def arguments(cls):
        return [p for p in inspect.signature(cls).parameters if p not in OWN]

    assert arguments(getattr(pyro_ardae, name)) == arguments(getattr(numpyro_ardae, name))


def test_the_same_public_names():
    # NumPyro's adds DivergenceWarning: Pyro's diverged fit raises a FloatingPointError.
    assert set(numpyro_ardae.__all__) - set(pyro_ardae.__all__) == {"DivergenceWarning"}

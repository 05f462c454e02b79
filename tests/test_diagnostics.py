"""ArviZ export, Stein discrepancy and reference comparison, in both backends."""

import warnings

import arviz as az
import jax
import numpy as np
import numpyro
import numpyro.distributions as ndist
import optax
import pyro
import pyro.distributions as dist
import pytest
import torch
from numpyro.infer import SVI as NSVI

import numpyro_ardae
import pyro_ardae
from pyro_ardae._arviz import inference_data, posterior_group

N_OBS = 20
X = np.random.default_rng(1).standard_normal(N_OBS) + 1.0
POST_MEAN, POST_SD = X.sum() / (N_OBS + 1), (1 / (N_OBS + 1)) ** 0.5


def pyro_model(x):
    mu = pyro.sample("mu", dist.Normal(0.0, 1.0))
    with pyro.plate("data", len(x)):
        pyro.sample("obs", dist.Normal(mu, 1.0), obs=x)


def numpyro_model(x):
    mu = numpyro.sample("mu", ndist.Normal(0.0, 1.0))
    with numpyro.plate("data", x.shape[0]):
        numpyro.sample("obs", ndist.Normal(mu, 1.0), obs=x)


def pyro_idata():
    x = torch.tensor(X, dtype=torch.float32)
    guide = pyro_ardae.AutoImplicitGuide(pyro_model, hidden=(8,), score_hidden=(8,))
    svi = pyro.infer.SVI(pyro_model, guide, pyro.optim.Adam({"lr": 1e-2}), pyro_ardae.ARDAE_ELBO())
    for _ in range(20):
        svi.step(x)
    return pyro_ardae.to_inference_data(
        pyro_model,
        guide,
        x,
        num_samples=200,
        num_chains=4,
        dims={"obs": ["obs_id"]},
        coords={"obs_id": np.arange(N_OBS)},
    )


def numpyro_idata():
    x = jax.numpy.asarray(X)
    guide = numpyro_ardae.AutoImplicitGuide(numpyro_model, hidden=(8,), score_hidden=(8,))
    svi = NSVI(numpyro_model, guide, optax.adam(1e-2), numpyro_ardae.ARDAE_ELBO())
    result = svi.run(jax.random.PRNGKey(0), 20, x, progress_bar=False)
    return numpyro_ardae.to_inference_data(
        numpyro_model,
        guide,
        result.params,
        jax.random.PRNGKey(1),
        x,
        num_samples=200,
        num_chains=4,
        dims={"obs": ["obs_id"]},
        coords={"obs_id": np.arange(N_OBS)},
    )


@pytest.mark.parametrize("make", [pyro_idata, numpyro_idata], ids=["pyro", "numpyro"])
def test_export_dims_summary_and_loo(make):
    idata = make()
    post = posterior_group(idata)
    assert dict(post["mu"].sizes) == {"chain": 4, "draw": 50}
    assert dict(idata.log_likelihood["obs"].sizes) == {"chain": 4, "draw": 50, "obs_id": N_OBS}
    assert dict(idata.posterior_predictive["obs"].sizes) == {
        "chain": 4,
        "draw": 50,
        "obs_id": N_OBS,
    }
    assert np.allclose(idata.observed_data["obs"].values, X, atol=1e-6)
    summary = az.summary(idata)
    assert list(summary.index) == ["mu"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loo = az.loo(idata)
    assert np.isfinite(loo.elpd_loo)


def test_num_chains_must_divide_num_samples():
    with pytest.raises(ValueError, match="multiple of num_chains"):
        pyro_ardae.to_inference_data(
            pyro_model,
            pyro_ardae.AutoImplicitGuide(pyro_model, hidden=(8,)),
            torch.tensor(X, dtype=torch.float32),
            num_samples=10,
            num_chains=4,
        )


def exact(n, rng):
    return POST_MEAN + POST_SD * rng.standard_normal(n)


@pytest.mark.parametrize("backend", ["pyro", "numpyro"])
def test_stein_discrepancy_separates_exact_from_wrong_draws(backend):
    if backend == "pyro":
        model, x, ksd = pyro_model, torch.tensor(X), pyro_ardae.stein_discrepancy
    else:
        model, x, ksd = numpyro_model, jax.numpy.asarray(X), numpyro_ardae.stein_discrepancy
    rng = np.random.default_rng(0)
    n = 300
    # Reference level: KSD of exact draws of the same size (O(n^-1/2), not 0).
    reference = max(ksd(model, {"mu": exact(n, rng)}, x) for _ in range(5))
    draws = exact(n, rng)
    shifted = ksd(model, {"mu": draws + POST_SD}, x)
    narrow = ksd(model, {"mu": POST_MEAN + 0.5 * (draws - POST_MEAN)}, x)
    assert reference < 0.25
    assert shifted > 3 * reference
    assert narrow > 1.5 * reference


def test_compare_to_reference_on_known_gaussians():
    rng = np.random.default_rng(0)
    n = 4000
    draws = rng.standard_normal((4, n // 4, 2))
    idata = inference_data({"posterior": {"theta": draws}})
    same = pyro_ardae.compare_to_reference(idata, {"theta": rng.standard_normal((n, 2))})
    # standard errors: mean ~ sqrt(2/n) ~ 0.022 (two samples), sd ratio ~ 1/sqrt(n) ~ 0.016
    assert (same["std_mean_error"].abs() < 0.1).all()
    assert (abs(same["sd_ratio"] - 1) < 0.07).all()
    assert abs(same["energy_distance"].iloc[0]) < 0.01
    shifted = pyro_ardae.compare_to_reference(
        idata, {"theta": rng.standard_normal((n, 2)) * np.array([1.0, 2.0]) + 0.5}
    )
    assert np.allclose(shifted["std_mean_error"], [-0.5, -0.25], atol=0.1)
    assert np.allclose(shifted["sd_ratio"], [1.0, 0.5], atol=0.07)
    assert shifted["energy_distance"].iloc[0] > 0.1
    assert list(shifted.index) == ["theta[0]", "theta[1]"]
    with pytest.raises(ValueError, match="not in the posterior"):
        pyro_ardae.compare_to_reference(idata, {"beta": draws})

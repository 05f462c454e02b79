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
    guide = pyro_ardae.AutoImplicitGuide(
        pyro_model, hidden=(8,), score=pyro_ardae.ScoreConfig(hidden=(8,))
    )
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
    guide = numpyro_ardae.AutoImplicitGuide(
        numpyro_model, hidden=(8,), score=numpyro_ardae.ScoreConfig(hidden=(8,))
    )
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


# A linear-Gaussian VAE: p(z) = N(0, I_3), p(x | z) = N(W z + b, s^2 I_5), so that
# p(x) = N(b, W W^T + s^2 I) and q*(z | x) = N(A (x - b), S) with S = (I + W^T W / s^2)^-1,
# A = S W^T / s^2: the log-likelihood estimate is checked against the analytic one.
D_Z, D_X, NOISE_SD = 3, 5, 0.5
_rng = np.random.default_rng(2)
W, B_VEC = _rng.standard_normal((D_X, D_Z)), _rng.standard_normal(D_X)
X_ROWS = _rng.standard_normal((4, D_X)) * 2
S_POST = np.linalg.inv(np.eye(D_Z) + W.T @ W / NOISE_SD**2)
MEAN_POST = (X_ROWS - B_VEC) @ (S_POST @ W.T / NOISE_SD**2).T  # (4, D_Z)


def _exact_log_px():
    from scipy.stats import multivariate_normal

    cov = W @ W.T + NOISE_SD**2 * np.eye(D_X)
    return multivariate_normal(B_VEC, cov).logpdf(X_ROWS)


def _log_joint(xp, z):
    loc = z @ xp.asarray(W.T) + xp.asarray(B_VEC)
    log_lik = -0.5 * (((xp.asarray(X_ROWS) - loc) / NOISE_SD) ** 2).sum(-1)
    log_lik = log_lik - D_X * (np.log(NOISE_SD) + 0.5 * np.log(2 * np.pi))
    log_prior = -0.5 * (z**2).sum(-1) - 0.5 * D_Z * np.log(2 * np.pi)
    return log_prior + log_lik


def _draws(shift, scale, n, seed):
    """Draws of N(mean + shift sd, scale^2 S) for each row, sd the posterior sds."""
    eps = np.random.default_rng(seed).standard_normal((n, len(X_ROWS), D_Z))
    sd = np.sqrt(np.diag(S_POST))
    return MEAN_POST + shift * sd + scale * eps @ np.linalg.cholesky(S_POST).T


@pytest.mark.parametrize("backend", ["pyro", "numpyro"])
def test_importance_log_likelihood_linear_gaussian_vae(backend):
    exact = _exact_log_px()

    def estimate(draws, k):
        if backend == "pyro":
            torch.manual_seed(0)
            z = torch.tensor(draws)
            out = pyro_ardae.importance_log_likelihood(lambda z: _log_joint(torch, z), z, k)
        else:
            z = jax.numpy.asarray(draws)
            out = numpyro_ardae.importance_log_likelihood(
                lambda z: _log_joint(jax.numpy, z), z, jax.random.PRNGKey(0), k
            )
        return np.asarray(out, dtype=np.float64)

    # Draws of the exact posterior: the fitted proposal is nearly exact, so the log-weights
    # barely vary and K = 2000 gives the answer to ~0.01 nats.
    exact_fit = estimate(_draws(0.0, 1.0, 2000, seed=0), 2000)
    np.testing.assert_allclose(exact_fit, exact, atol=0.02)
    # A proposal fitted to shifted (1 sd), too-wide (1.5x) draws, so the weights are
    # bounded: with K = 2 the estimate is a loose lower bound (its mean gap over the rows is
    # about 2 nats), with K = 4000 it is tight again.
    bad = _draws(1.0, 1.5, 2000, seed=1)
    small, large = estimate(bad, 2), estimate(bad, 4000)
    assert (exact - small).mean() > 0.5
    np.testing.assert_allclose(large, exact, atol=0.05)


@pytest.mark.parametrize("backend", ["pyro", "numpyro"])
def test_importance_log_likelihood_rejects_bad_draws(backend):
    mod = pyro_ardae if backend == "pyro" else numpyro_ardae
    draws = np.zeros((3, 4, 5))  # n <= d
    args = () if backend == "pyro" else (jax.random.PRNGKey(0),)
    arr = torch.tensor(draws) if backend == "pyro" else jax.numpy.asarray(draws)
    with pytest.raises(ValueError, match=r"expected draws of shape \(n, B, d\) with n > d"):
        mod.importance_log_likelihood(lambda z: z.sum(-1), arr, *args)

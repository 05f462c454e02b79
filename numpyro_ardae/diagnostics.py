"""Diagnostics of fitted posteriors: ArviZ export and checks that need no log q.

The NumPyro twin of :mod:`pyro_ardae.diagnostics` (same functions, same reading: see there);
functions that sample take the fitted ``params`` and an ``rng_key``, as NumPyro's do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.scipy.special import logsumexp
from numpyro import handlers
from numpyro.distributions import MultivariateNormal
from numpyro.distributions.transforms import biject_to
from numpyro.infer import Predictive
from numpyro.infer.util import log_likelihood, potential_energy

from pyro_ardae._arviz import (
    chains_inference_data,
    compare_to_reference,
    energy_distance_np,
    posterior_draws,
    standardised_ksd,
)
from pyro_ardae._common import check_importance_args, relative_jitter

__all__ = [
    "compare_to_reference",
    "energy_distance",
    "importance_log_likelihood",
    "stein_discrepancy",
    "to_inference_data",
]


def energy_distance(x: Array, y: Array, standardize: bool = True) -> float:
    r"""Squared energy distance between draws ``x`` ``(n, d)`` and reference draws ``y``, as
    :func:`pyro_ardae.energy_distance`.

    Example:
        >>> a = jax.random.normal(jax.random.PRNGKey(0), (500, 2))
        >>> b = jax.random.normal(jax.random.PRNGKey(1), (500, 2))
        >>> abs(energy_distance(a, b)) < 0.01, energy_distance(a + 1.0, b) > 0.5
        (True, True)
    """
    return energy_distance_np(np.asarray(x), np.asarray(y), standardize)


def _model_trace(model: Callable, args, kwargs):
    with handlers.block(), handlers.seed(rng_seed=0):
        return handlers.trace(model).get_trace(*args, **kwargs)


def to_inference_data(
    model: Callable,
    guide,
    params: dict,
    rng_key: Array,
    *args,
    num_samples: int = 1000,
    num_chains: int = 4,
    coords: Mapping | None = None,
    dims: Mapping | None = None,
    **kwargs,
):
    """Draws of a fitted guide as ArviZ data, with the groups of
    :func:`pyro_ardae.to_inference_data` (posterior, log_likelihood, posterior_predictive,
    observed_data); ``params`` as returned by ``svi.get_params`` / ``svi.run``."""
    if not isinstance(num_samples, int) or num_samples < num_chains or num_chains < 1:
        raise ValueError(
            f"to_inference_data: expected num_samples >= num_chains >= 1, got "
            f"num_samples={num_samples!r}, num_chains={num_chains!r}"
        )
    key_post, key_pred = jax.random.split(rng_key)
    posterior = guide.sample_posterior(
        key_post, params, *args, sample_shape=(num_samples,), **kwargs
    )
    trace = _model_trace(model, args, kwargs)
    observed = {
        n: np.asarray(s["value"])
        for n, s in trace.items()
        if s["type"] == "sample" and s["is_observed"]
    }
    loglik = log_likelihood(model, posterior, *args, **kwargs)
    predictive = Predictive(model, posterior_samples=posterior, return_sites=list(observed))(
        key_pred, *args, **kwargs
    )
    groups = {
        "posterior": posterior,
        "log_likelihood": {k: loglik[k] for k in observed},
        "posterior_predictive": {k: predictive[k] for k in observed},
    }
    return chains_inference_data(groups, observed, num_chains, coords, dims)


def stein_discrepancy(model: Callable, samples, *args, **kwargs) -> float:
    r"""Kernel Stein discrepancy (IMQ kernel) of posterior ``samples`` under ``model`` in the
    unconstrained space, coordinates scaled by their sd; as
    :func:`pyro_ardae.stein_discrepancy`."""
    draws = posterior_draws(samples)
    trace = _model_trace(model, args, kwargs)
    latents = {n: s for n, s in trace.items() if s["type"] == "sample" and not s["is_observed"]}
    missing = set(latents) - set(draws)
    if missing:
        raise ValueError(f"stein_discrepancy: no draws for the latent sites {sorted(missing)}")
    names = list(latents)
    unconstrained = {
        n: jax.vmap(biject_to(latents[n]["fn"].support).inv)(jnp.asarray(draws[n])) for n in names
    }

    def energy(u):
        return potential_energy(model, args, kwargs, u)

    scores = jax.vmap(lambda u: jax.tree.map(jnp.negative, jax.grad(energy)(u)))(unconstrained)
    return standardised_ksd(
        {n: np.asarray(unconstrained[n]) for n in names},
        {n: np.asarray(scores[n]) for n in names},
        names,
    )


def importance_log_likelihood(
    log_joint: Callable[[Array], Array],
    draws: Array,
    rng_key: Array,
    num_samples: int | None = None,
    jitter: float = 1e-5,
) -> Array:
    r"""Importance-sampling estimate of :math:`\log p(x_b)` per row ``b`` with a
    full-covariance Gaussian proposal fitted to the guide's draws ``(n, B, d)``; as
    :func:`pyro_ardae.importance_log_likelihood`, with an ``rng_key`` for the proposal draws.

    Example:
        >>> x = jnp.array([0.0, 1.0, -2.0])
        >>> def log_joint(z):
        ...     z = z[..., 0]
        ...     return jax.scipy.stats.norm.logpdf(z) + jax.scipy.stats.norm.logpdf(x, z)
        >>> eps = jax.random.normal(jax.random.PRNGKey(0), (500, 3))
        >>> draws = (x / 2 + 0.5**0.5 * eps)[..., None]
        >>> estimate = importance_log_likelihood(log_joint, draws, jax.random.PRNGKey(1))
        >>> exact = jax.scipy.stats.norm.logpdf(x, 0.0, 2**0.5)
        >>> bool(jnp.abs(estimate - exact).max() < 1e-2)
        True
    """
    shape = tuple(draws.shape) if hasattr(draws, "shape") else None
    num_samples = check_importance_args(shape, num_samples)
    n, _, d = shape
    draws = jax.lax.stop_gradient(jnp.asarray(draws))
    loc = draws.mean(0)
    centred = jnp.swapaxes(draws - loc, 0, 1)  # (B, n, d)
    cov = jnp.swapaxes(centred, -1, -2) @ centred / (n - 1)
    mean_var = jnp.diagonal(cov, axis1=-2, axis2=-1).mean(-1)
    scale = relative_jitter(mean_var, jitter, jnp.finfo(draws.dtype).tiny)
    proposal = MultivariateNormal(loc, cov + scale[:, None, None] * jnp.eye(d, dtype=cov.dtype))
    z = proposal.sample(rng_key, (num_samples,))
    log_w = log_joint(z) - proposal.log_prob(z)
    if log_w.shape != z.shape[:-1]:
        raise ValueError(
            f"importance_log_likelihood: log_joint must return shape {tuple(z.shape[:-1])} "
            f"for z of shape {tuple(z.shape)}, got {tuple(log_w.shape)}"
        )
    return logsumexp(log_w, 0) - jnp.log(num_samples)

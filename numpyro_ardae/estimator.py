"""Fit and query the score of a sampler: whitening, training steps, the score at sigma = 0.

Functional: a :class:`ScoreEstimator` holds the static configuration, the trainable state
is a :class:`ScoreState` pytree (network and optimiser state) that the caller threads through,
so that everything runs under ``jit`` and the state can ride in NumPyro's ``mutable_state``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import Array
from jax.scipy.linalg import solve_triangular

from pyro_ardae._common import (
    CHOLESKY_RETRIES,
    ScoreConfig,
    check_global_samples,
    check_halves,
    check_samples,
    relative_jitter,
    score_config,
    whitening_ridge,
)

from .loss import ardae_loss, sample_noise
from .score import ScoreNet


class Standardization(NamedTuple):
    r"""Affine whitening map :math:`y = L^{-1} (z - \mu)`, as :class:`pyro_ardae.Standardization`.

    ``scale`` is a lower-triangular ``(d, d)`` matrix :math:`L` when ``loc`` is ``(d,)``
    (global: full covariance) or per-row sds ``(m, d)`` when ``loc`` is ``(m, d)`` (per context).
    """

    loc: Array
    scale: Array

    @property
    def tril(self) -> bool:
        return self.scale.ndim == self.loc.ndim + 1

    def whiten(self, z: Array) -> Array:
        if self.tril:
            return solve_triangular(self.scale, (z - self.loc)[..., None], lower=True)[..., 0]
        return (z - self.loc) / self.scale

    def pull_back(self, score_y: Array) -> Array:
        r"""Score in :math:`z` from the score in :math:`y`: :math:`L^{-\top} s_y`."""
        if self.tril:
            return solve_triangular(self.scale.T, score_y[..., None], lower=False)[..., 0]
        return score_y / self.scale

    def log_abs_det(self) -> Array:
        r""":math:`\log|\det L|` (per context row in per-context mode)."""
        diag = jnp.diagonal(self.scale) if self.tril else self.scale
        return jnp.sum(jnp.log(diag), -1)


def moments(samples: Array, tril: bool, loc: Array | None = None) -> tuple[Array, Array]:
    r"""Mean and covariance (``tril``) or per-coordinate variance over the first axis, the
    covariance scaled by :math:`(n-1)/(n-d-2)` so that its inverse is unbiased for Gaussian
    samples; about a known centre ``loc`` instead of the mean, divided by :math:`n-d-1` (see
    :func:`pyro_ardae.estimator.moments`)."""
    n = samples.shape[0]
    d = samples.shape[-1] if tril else 1
    dof = n - d - (1 if loc is not None else 2)
    if dof <= 0:
        raise ValueError(
            f"ScoreEstimator: whitening {d}-dim samples needs more than {n - dof} of them, got {n}"
        )
    loc = jnp.mean(samples, 0) if loc is None else loc
    centred = samples - loc
    cov = centred.T @ centred if tril else jnp.sum(centred**2, 0)
    return loc, cov / dof


def standardization(loc: Array, cov: Array, tril: bool) -> Standardization:
    """The whitening map of a mean and a covariance (``tril``) or variance, with the ridge
    of :func:`pyro_ardae._common.whitening_ridge` (a collapsing sampler gets a small, finite
    scale), grown through :data:`~pyro_ardae._common.CHOLESKY_RETRIES` of the mean variance
    where rounding defeats the Cholesky factorisation, as
    :func:`pyro_ardae.estimator.standardization`. Under ``jit`` nothing can raise: a
    covariance that is not finite gives a map that is not, and ``ARDAE_ELBO`` warns."""
    finfo = jnp.finfo(loc.dtype)
    var = jnp.diagonal(cov) if tril else cov
    dim = loc.shape[-1] if tril else 1
    jitter = whitening_ridge(var, loc**2, dim, float(finfo.eps), float(finfo.tiny))
    if not tril:
        return Standardization(loc, jnp.sqrt(var + jitter))
    ridges = jnp.asarray((0.0, *CHOLESKY_RETRIES), loc.dtype)

    def attempt(carry):
        i, _ = carry
        extra = jnp.where(i > 0, relative_jitter(jnp.mean(var), ridges[i], float(finfo.tiny)), 0.0)
        return i + 1, jnp.linalg.cholesky(cov + jnp.diag(jitter + extra))

    def failed(carry):
        i, factor = carry
        return (i < len(ridges)) & ~jnp.all(jnp.isfinite(factor))

    start = (jnp.array(0), jnp.full_like(cov, jnp.nan))
    _, factor = jax.lax.while_loop(failed, attempt, start)
    return Standardization(loc, factor)


def log_normalizer(
    net: ScoreNet,
    key: Array,
    num_samples: int,
    context: Array | None = None,
) -> Array:
    r"""Importance-sampling estimate of the log-normaliser of a gradient-form
    :class:`ScoreNet` per context row, as :func:`pyro_ardae.estimator.log_normalizer`:
    :math:`\log Z(c) \approx \log \frac1K \sum_k e^{-F(y_k, 0, c)} / N(y_k; 0, I)`,
    :math:`y_k \sim N(0, I)`, by log-sum-exp. Returns shape ``(m,)`` for a context
    ``(m, k)``, else ``()``.

    Example:
        >>> net = ScoreNet(3, hidden=(8,), parameterization="gradient", key=jax.random.PRNGKey(0))
        >>> log_z = log_normalizer(net, jax.random.PRNGKey(1), 100)  # untrained: (2 pi)^(3/2)
        >>> bool(jnp.isclose(log_z, 1.5 * math.log(2 * math.pi)))
        True
    """
    if not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"log_normalizer: expected num_samples >= 1, got {num_samples!r}")
    rows = () if context is None else context.shape[:-1]
    eps = jax.random.normal(key, (num_samples, *rows, net.dim))
    flat = eps.reshape(-1, net.dim)
    if context is None:
        energy = jax.vmap(lambda r: net.energy(r, 0.0))(flat)
    else:
        ctx = jnp.broadcast_to(context, eps.shape[:-1] + context.shape[-1:])
        energy = jax.vmap(lambda r, c: net.energy(r, 0.0, c))(
            flat, ctx.reshape(-1, context.shape[-1])
        )
    log_w = -energy.reshape(eps.shape[:-1]) + 0.5 * jnp.sum(eps**2, -1)
    log_w = log_w + 0.5 * net.dim * math.log(2 * math.pi)
    return jax.nn.logsumexp(log_w, 0) - math.log(num_samples)


class ScoreState(NamedTuple):
    """The state a score estimator threads through its steps: the network and its optimiser
    state."""

    net: ScoreNet
    opt_state: optax.OptState


class ScoreEstimator:
    r"""Learns :math:`\nabla_z \log q(z \mid c)` from samples with an AR-DAE; the functional
    twin of :class:`pyro_ardae.ScoreEstimator` (same modes, options and defaults).

    Args:
        dim: dimension of :math:`z`.
        context_dim: dimension of the context, 0 for none.
        config: the :class:`ScoreNet` (:class:`~pyro_ardae.ScoreConfig`).
        optimizer: an optax transformation; Adam with ``lr=1e-3`` by default.

    Example:
        >>> est = ScoreEstimator(2, config=ScoreConfig(hidden=(32, 32)))
        >>> key = jax.random.PRNGKey(0)
        >>> samples = jax.random.normal(key, (2000, 2)) * jnp.array([1.0, 3.0])
        >>> state = est.init(key)
        >>> state, stats, losses = est.fit(state, key, samples, num_steps=200)
        >>> score = est.score(state, stats, jnp.array([[1.0, 3.0]]))
        >>> bool(jnp.allclose(score, jnp.array([[-1.0, -1 / 3]]), atol=0.15))
        True
    """

    def __init__(
        self,
        dim: int,
        context_dim: int = 0,
        config: ScoreConfig = ScoreConfig(),
        optimizer: optax.GradientTransformation | None = None,
    ) -> None:
        if not isinstance(dim, int) or dim < 1:
            raise ValueError(f"ScoreEstimator: expected dim to be a positive int, got {dim!r}")
        self.dim = dim
        self.context_dim = context_dim
        self.config = score_config("ScoreEstimator", config, "config")
        self.optimizer = optimizer or optax.adam(1e-3)

    def init(self, key: Array, dtype=jnp.float32) -> ScoreState:
        net = ScoreNet(
            self.dim,
            self.context_dim,
            self.config.hidden,
            self.config.parameterization,
            self.config.delta,
            fourier_features=self.config.fourier_features,
            fourier_scale=self.config.fourier_scale,
            key=key,
            dtype=dtype,
        )
        return ScoreState(net, self.optimizer.init(eqx.filter(net, eqx.is_array)))

    def _check(self, z: Array, context: Array | None, min_dims: int) -> None:
        check_samples(self.dim, self.context_dim, z, context, min_dims, (jax.Array, np.ndarray))

    def set_stats(
        self, samples: Array, context: Array | None = None, loc: Array | None = None
    ) -> Standardization:
        """The whitening map of ``samples`` (``(n, d)``, or ``(n, m, d)`` per context),
        centred at ``loc`` (``(d,)`` or ``(m, d)``) if given, else at their mean."""
        self._check(samples, context, 3 if self.context_dim else 2)
        if not self.context_dim:
            check_global_samples(self.dim, samples)
        tril = not self.context_dim
        loc = None if loc is None else jax.lax.stop_gradient(loc)
        return standardization(*moments(jax.lax.stop_gradient(samples), tril, loc), tril)

    def step(
        self,
        state: ScoreState,
        key: Array,
        stats: Standardization,
        samples: Array,
        context: Array | None = None,
    ) -> tuple[ScoreState, Array]:
        """One optimiser step of the AR-DAE loss on ``samples``; returns the new state and
        the loss."""
        return self._train(state, key, stats.whiten(jax.lax.stop_gradient(samples)), context)

    def _train(
        self,
        state: ScoreState,
        key: Array,
        y: Array,
        context: Array | None,
    ) -> tuple[ScoreState, Array]:
        if context is not None:
            context = jnp.broadcast_to(context, y.shape[:-1] + context.shape[-1:])
            context = context.reshape(-1, context.shape[-1])
        y = y.reshape(-1, self.dim)
        u, sigma = sample_noise(key, y, self.config.delta)
        params, static = eqx.partition(state.net, eqx.is_array)

        def loss_fn(params):
            return ardae_loss(eqx.combine(params, static), y, u, sigma, context)

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = self.optimizer.update(grads, state.opt_state, params)
        net = eqx.combine(optax.apply_updates(params, updates), static)
        return state._replace(net=net, opt_state=opt_state), loss

    def update(
        self,
        state: ScoreState,
        key: Array,
        samples: Array,
        context: Array | None = None,
        loc: Array | None = None,
    ) -> tuple[ScoreState, Standardization, Array]:
        """One training step on fresh ``samples``; returns the state, the whitening map to
        query with and the loss. The whitening is cross-fitted: each half is whitened with
        the other half's moments (about the known centre ``loc`` if given) and the first
        half's map is returned."""
        self._check(samples, context, 3 if self.context_dim else 2)
        samples = jax.lax.stop_gradient(samples)
        check_halves(samples.shape[0], 1 if self.context_dim else self.dim)
        half = samples.shape[0] // 2
        a, b = samples[:half], samples[half : 2 * half]
        stats_a, stats_b = self.set_stats(a, context, loc), self.set_stats(b, context, loc)
        y_a, y_b = stats_b.whiten(a), stats_a.whiten(b)
        state, loss = self._train(state, key, jnp.concatenate([y_a, y_b]), context)
        return state, stats_a, loss

    def fit(
        self,
        state: ScoreState,
        key: Array,
        samples: Array,
        num_steps: int,
        batch_size: int = 256,
        context: Array | None = None,
    ) -> tuple[ScoreState, Standardization, Array]:
        """Fit the score of a fixed sample set by minibatch steps (``lax.scan``); returns
        the state, the whitening map and the losses."""
        stats = self.set_stats(samples, context)
        n = samples.shape[0]
        batch = min(batch_size, n)

        @jax.jit
        def run(state, key):
            def body(state, key):
                key_idx, key_step = jax.random.split(key)
                idx = jax.random.randint(key_idx, (batch,), 0, n)
                return self.step(state, key_step, stats, samples[idx], context)

            return jax.lax.scan(body, state, jax.random.split(key, num_steps))

        state, losses = run(state, key)
        return state, stats, losses

    def _query(self, fn, state: ScoreState, stats: Standardization, z: Array, context):
        self._check(z, context, 2 if self.context_dim else 1)
        y = stats.whiten(jax.lax.stop_gradient(z))
        rows = y.reshape(-1, self.dim)
        if context is None:
            out = jax.vmap(lambda r: fn(r, None))(rows)
        else:
            ctx = jnp.broadcast_to(context, y.shape[:-1] + context.shape[-1:])
            out = jax.vmap(fn)(rows, ctx.reshape(-1, self.context_dim))
        return y, out.reshape(y.shape[:-1] + out.shape[1:])

    def score(
        self, state: ScoreState, stats: Standardization, z: Array, context: Array | None = None
    ) -> Array:
        r"""The estimate of :math:`\nabla_z \log q(z \mid c)`, shaped like ``z`` (no gradient
        flows to the network or to ``z``)."""
        net = jax.lax.stop_gradient(state.net)
        _, f = self._query(lambda y, c: net(y, 0.0, c), state, stats, z, context)
        return jax.lax.stop_gradient(stats.pull_back(f))

    def log_prob(
        self, state: ScoreState, stats: Standardization, z: Array, context: Array | None = None
    ) -> Array:
        r""":math:`\log q(z \mid c)` up to an additive constant, :math:`-F(y, 0, c) -
        \log|\det L|`; needs ``parameterization="gradient"``."""
        net = state.net
        _, energy = self._query(lambda y, c: net.energy(y, 0.0, c), state, stats, z, context)
        return -energy - stats.log_abs_det()

    def normalized_log_prob(
        self,
        state: ScoreState,
        stats: Standardization,
        key: Array,
        z: Array,
        context: Array | None = None,
        num_samples: int = 1024,
    ) -> Array:
        r""":math:`\log q(z \mid c) = -F(y, 0, c) - \log Z(c) - \log|\det L|`, the
        normaliser from :func:`log_normalizer` with ``num_samples`` draws per context row."""
        log_z = log_normalizer(state.net, key, num_samples, context)
        return self.log_prob(state, stats, z, context) - log_z

"""The AR-DAE training loss, a pure function of the network, the data and the noise."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array

from .score import ScoreNet


def ardae_loss(
    net: ScoreNet,
    y: Array,
    u: Array,
    sigma: Array,
    context: Array | None = None,
) -> Array:
    r"""Monte Carlo estimate of the AR-DAE objective (Lim et al., 2020, eq. 2)

    .. math::

        \mathcal{L}(f) = \mathbb{E}_{y \sim q,\, u \sim N(0, I),\, \sigma \sim N(0, \delta^2)}
            \big\| u + \sigma f(y + \sigma u; \sigma) \big\|^2 ,

    as :func:`pyro_ardae.ardae_loss`, every row with both :math:`u` and :math:`-u`
    (antithetic pairs: they cancel the term of order :math:`\sigma` whose noise drowns the
    non-Gaussian part of the score in five dimensions and more; Wang et al., 2020).

    Args:
        net: the score network.
        y: samples of :math:`q`, shape ``(n, d)``.
        u: standard normal noise, shape ``(n, d)``.
        sigma: noise levels, shape ``(n,)``.
        context: optional context, shape ``(n, k)``.

    Returns:
        The mean over the ``n`` rows and both signs of the squared residual (a scalar).
    """
    in_axes = (0, 0, None if context is None else 0)
    y, u, sigma = jnp.concatenate([y, y]), jnp.concatenate([u, -u]), jnp.concatenate([sigma] * 2)
    if context is not None:
        context = jnp.concatenate([context, context])
    f = jax.vmap(net, in_axes=in_axes)(y + sigma[:, None] * u, sigma, context)
    return jnp.mean(jnp.sum((u + sigma[:, None] * f) ** 2, -1))


def sample_noise(key: Array, y: Array, delta: float) -> tuple[Array, Array]:
    r"""Draw :math:`u \sim N(0, I)` shaped like ``y`` (``(n, d)``) and
    :math:`\sigma \sim N(0, \delta^2)` of shape ``(n,)``."""
    key_u, key_s = jax.random.split(key)
    u = jax.random.normal(key_u, y.shape, y.dtype)
    sigma = delta * jax.random.normal(key_s, y.shape[:1], y.dtype)
    return u, sigma

"""Sample-based diagnostics of fitted posteriors (an implicit guide has no log q)."""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array


def _pairwise_mean(a: Array, b: Array, exclude_diagonal: bool) -> Array:
    d = jnp.sqrt(jnp.maximum(jnp.sum((a[:, None, :] - b[None, :, :]) ** 2, -1), 0.0))
    n, m = a.shape[0], b.shape[0]
    return jnp.sum(d) / (n * (n - 1) if exclude_diagonal else n * m)


def energy_distance(x: Array, y: Array, standardize: bool = True) -> float:
    r"""Squared energy distance between two samples, as :func:`pyro_ardae.energy_distance`:
    :math:`2\mathbb{E}\|X - Y\| - \mathbb{E}\|X - X'\| - \mathbb{E}\|Y - Y'\|` with
    U-statistics, coordinates divided by the reference's sd when ``standardize``.

    Example:
        >>> import jax
        >>> a = jax.random.normal(jax.random.PRNGKey(0), (500, 2))
        >>> b = jax.random.normal(jax.random.PRNGKey(1), (500, 2))
        >>> abs(energy_distance(a, b)) < 0.01, energy_distance(a + 1.0, b) > 0.5
        (True, True)
    """
    for name, t in (("x", x), ("y", y)):
        if not hasattr(t, "shape") or jnp.ndim(t) != 2 or t.shape[0] < 2:
            got = tuple(t.shape) if hasattr(t, "shape") else type(t).__name__
            raise ValueError(f"energy_distance: expected {name} of shape (n >= 2, d), got {got}")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"energy_distance: x has {x.shape[1]} coordinates, y has {y.shape[1]}")
    x, y = jnp.asarray(x), jnp.asarray(y)
    if standardize:
        scale = jnp.std(y, 0, ddof=1)
        x, y = x / scale, y / scale
    xy = _pairwise_mean(x, y, False)
    xx = _pairwise_mean(x, x, True)
    yy = _pairwise_mean(y, y, True)
    return float(2 * xy - xx - yy)

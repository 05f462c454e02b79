"""The AR-DAE score network :math:`f(y; \\sigma, c)` (Equinox)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from pyro_ardae._common import (
    PARAMETERIZATIONS,
    Parameterization,
    check_score_net_args,
)

__all__ = ["PARAMETERIZATIONS", "Parameterization", "ScoreNet"]


@dataclass(frozen=True)
class _JaxActivation:
    """A ``jax.nn`` activation held by name: the jitted functions do not pickle, names do."""

    name: str

    def __call__(self, x: Array) -> Array:
        return getattr(jax.nn, self.name)(x)


def picklable(fn: Callable[[Array], Array]) -> Callable[[Array], Array]:
    """``fn``, or its name if it is one of ``jax.nn``'s (so that params and SVI state pickle)."""
    name = getattr(fn, "__name__", None)
    return _JaxActivation(name) if name and getattr(jax.nn, name, None) is fn else fn


class MLP(eqx.Module):
    """A plain MLP ``in_dim -> hidden... -> out_dim`` whose last layer starts at zero."""

    layers: list[eqx.nn.Linear]
    activation: Callable[[Array], Array] = eqx.field(static=True)

    def __init__(
        self,
        in_dim: int,
        hidden: Sequence[int],
        out_dim: int,
        activation: Callable[[Array], Array],
        *,
        key: Array,
        dtype=None,
    ) -> None:
        widths = (in_dim, *hidden)
        keys = jax.random.split(key, len(widths))
        layers = [
            eqx.nn.Linear(i, o, key=k, dtype=dtype)
            for i, o, k in zip(widths[:-1], widths[1:], keys[:-1], strict=True)
        ]
        last = eqx.nn.Linear(widths[-1], out_dim, key=keys[-1], dtype=dtype)
        last = eqx.tree_at(lambda m: (m.weight, m.bias), last, replace_fn=jnp.zeros_like)
        self.layers = [*layers, last]
        self.activation = picklable(activation)

    def __call__(self, x: Array) -> Array:
        for layer in self.layers[:-1]:
            x = self.activation(layer(x))
        return self.layers[-1](x)


class ScoreNet(eqx.Module):
    r"""Amortised residual DAE :math:`f(y; \sigma, c) \approx \nabla_y \log q(y \mid c)`.

    The same network as :class:`pyro_ardae.ScoreNet`: an MLP :math:`h` of
    ``[y, sigma / delta, c]`` (the context ``c`` is optional) and two parameterisations,

    * ``"vector"``: :math:`f = -\frac{y}{1 + \sigma^2} + h(y, \sigma, c)`;
    * ``"gradient"``: :math:`f = -\nabla_y F`,
      :math:`F = \frac{\|y\|^2}{2 (1 + \sigma^2)} + h(y, \sigma, c)` with scalar :math:`h`,
      so that :math:`-F(y, 0, c)` is :math:`\log q(y \mid c)` up to a constant.

    ``fourier_features = m > 0`` adds :math:`\sin(B^\top y), \cos(B^\top y)` to the MLP's
    inputs, :math:`B_{ij} \sim N(0, \text{fourier\_scale}^2)` drawn once and held fixed
    (``stop_gradient``), as in :class:`pyro_ardae.ScoreNet`.

    Inputs are whitened, so the Gaussian term is the exact optimum for a standard normal
    :math:`q`; the last layer of :math:`h` starts at zero. Calls take one point ``y`` of
    shape ``(d,)``, ``sigma`` of shape ``()`` (``jax.vmap`` for batches).

    References:
        J. H. Lim, A. Courville, C. Pal, C.-W. Huang, "AR-DAE: Towards Unbiased Neural
        Entropy Gradient Estimation", ICML 2020, arXiv:2006.05164.

        M. Tancik et al., "Fourier Features Let Networks Learn High Frequency Functions in
        Low Dimensional Domains", NeurIPS 2020, arXiv:2006.10739.

    Example:
        >>> net = ScoreNet(3, hidden=(8,), key=jax.random.PRNGKey(0))
        >>> y = jnp.ones(3)
        >>> bool(jnp.allclose(net(y, 0.0), -y))
        True
    """

    h: MLP
    frequencies: Array | None
    dim: int = eqx.field(static=True)
    context_dim: int = eqx.field(static=True)
    parameterization: str = eqx.field(static=True)
    delta: float = eqx.field(static=True)

    def __init__(
        self,
        dim: int,
        context_dim: int = 0,
        hidden: Sequence[int] = (128, 128, 128),
        parameterization: Parameterization = "vector",
        delta: float = 0.1,
        activation: Callable[[Array], Array] = jax.nn.silu,
        fourier_features: int = 0,
        fourier_scale: float = 3.0,
        *,
        key: Array,
        dtype=None,
    ) -> None:
        check_score_net_args(
            dim, context_dim, parameterization, delta, fourier_features, fourier_scale
        )
        self.frequencies = None
        if fourier_features:
            key, key_b = jax.random.split(key)
            shape = (dim, fourier_features)
            self.frequencies = fourier_scale * jax.random.normal(key_b, shape, dtype or float)
        out_dim = dim if parameterization == "vector" else 1
        in_dim = dim + 2 * fourier_features + 1 + context_dim
        self.h = MLP(in_dim, hidden, out_dim, activation, key=key, dtype=dtype)
        self.dim = dim
        self.context_dim = context_dim
        self.parameterization = parameterization
        self.delta = float(delta)

    def _h(self, y: Array, sigma: Array, context: Array | None) -> Array:
        parts = [y]
        if self.frequencies is not None:
            phase = y @ jax.lax.stop_gradient(self.frequencies).astype(y.dtype)
            parts += [jnp.sin(phase), jnp.cos(phase)]
        parts.append(jnp.reshape(sigma / self.delta, (1,)).astype(y.dtype))
        if self.context_dim:
            if context is None:
                raise ValueError(
                    f"ScoreNet: this network takes a context of size {self.context_dim}, got None"
                )
            parts.append(context.astype(y.dtype))
        elif context is not None:
            raise ValueError("ScoreNet: this network was built without a context, got one")
        return self.h(jnp.concatenate(parts))

    def energy(self, y: Array, sigma: Array, context: Array | None = None) -> Array:
        """The scalar :math:`F(y, \\sigma, c)` of the ``"gradient"`` form."""
        if self.parameterization != "gradient":
            raise ValueError(
                "ScoreNet.energy needs parameterization='gradient', "
                f"this network is {self.parameterization!r}"
            )
        quad = 0.5 * jnp.sum(y**2) / (1 + sigma**2)
        return quad + self._h(y, sigma, context)[0]

    def __call__(self, y: Array, sigma: Array, context: Array | None = None) -> Array:
        """The score estimate :math:`f(y; \\sigma, c)`, shape ``(d,)``."""
        if self.parameterization == "vector":
            return self._h(y, sigma, context) - y / (1 + sigma**2)
        return -jax.grad(self.energy)(y, sigma, context)

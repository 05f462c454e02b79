"""AutoImplicitGuide: an implicit guide built from the model, like NumPyro's autoguides."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import ExitStack

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro
from jax import Array
from jax.flatten_util import ravel_pytree
from numpyro import handlers
from numpyro.contrib.module import eqx_module
from numpyro.infer.autoguide import AutoGuide
from numpyro.infer.initialization import init_to_median

from pyro_ardae._common import check_autoguide_args, check_global_latent, noise_dim_for

from .guide import Draw, declare_score_state, emit_site, sample_posterior
from .score import MLP, Parameterization, score_spec


class Generator(eqx.Module):
    r"""The sampler :math:`u = \mu + \sigma \odot (W \epsilon + h(\epsilon) / m)`,
    :math:`\sigma = e^{\rho}`, of :class:`pyro_ardae.Generator`: a linear path that
    represents any Gaussian exactly and an MLP (last layer at zero, last hidden width
    :math:`m`) for the rest; :math:`q = N(\mu_0, s_0^2 I)` at initialisation."""

    loc: Array
    log_scale: Array
    weight: Array
    h: MLP
    width: int = eqx.field(static=True)

    def __init__(
        self,
        noise_dim: int,
        init_loc: Array,
        init_scale: float,
        hidden: Sequence[int],
        activation: Callable[[Array], Array] = jax.nn.elu,
        *,
        key: Array,
    ) -> None:
        dim = init_loc.shape[-1]
        self.loc = init_loc
        self.log_scale = jnp.full_like(init_loc, math.log(init_scale))
        self.weight = jnp.eye(dim, noise_dim, dtype=init_loc.dtype)
        self.h = MLP(noise_dim, hidden, dim, activation, key=key, dtype=init_loc.dtype)
        self.width = hidden[-1] if hidden else 1

    def __call__(self, noise: Array) -> Array:
        shape = self.weight @ noise + self.h(noise) / self.width
        return self.loc + jnp.exp(self.log_scale) * shape


class AutoImplicitGuide(AutoGuide):
    r"""An implicit guide over all latent sites of ``model``; the NumPyro twin of
    :class:`pyro_ardae.AutoImplicitGuide` (same arguments and defaults, plus NumPyro's
    ``prefix``). Global latents only (plates with full data are fine), continuous only.

    Example:
        >>> import numpyro.distributions as dist
        >>> def model():
        ...     numpyro.sample("s", dist.LogNormal(0.0, 1.0))
        >>> guide = AutoImplicitGuide(model, hidden=(16,))
        >>> with handlers.seed(rng_seed=0):
        ...     bool(guide()["s"] > 0)
        True
    """

    def __init__(
        self,
        model: Callable,
        *,
        prefix: str = "auto",
        noise_dim: int | None = None,
        hidden: Sequence[int] = (128, 128),
        init_loc_fn: Callable = init_to_median,
        init_scale: float = 0.1,
        activation: Callable[[Array], Array] = jax.nn.elu,
        score_hidden: Sequence[int] = (128, 128, 128),
        score_parameterization: Parameterization = "vector",
        score_delta: float = 0.1,
        score_fourier_features: int = 0,
        score_fourier_scale: float = 3.0,
    ) -> None:
        check_autoguide_args(noise_dim, init_scale)
        super().__init__(model, prefix=prefix, init_loc_fn=init_loc_fn)
        self._noise_dim = noise_dim
        self._hidden = tuple(hidden)
        self._init_scale = init_scale
        self._activation = activation
        self.score_spec = score_spec(
            "AutoImplicitGuide",
            score_hidden,
            score_parameterization,
            score_delta,
            score_fourier_features,
            score_fourier_scale,
        )

    def _check_sites(self, *args, **kwargs) -> None:
        with handlers.block(), handlers.seed(rng_seed=0):
            trace = handlers.trace(self.model).get_trace(*args, **kwargs)
        sizes = {n: s["args"][0] for n, s in trace.items() if s["type"] == "plate"}
        for name, site in trace.items():
            if site["type"] != "sample" or site["is_observed"]:
                continue
            check_global_latent(
                name,
                type(site["fn"]).__name__,
                site["fn"].support.is_discrete,
                [(f.name, f.size, sizes.get(f.name, f.size)) for f in site["cond_indep_stack"]],
                "numpyro_ardae",
                "numpyro.contrib.funsor",
            )

    def _setup_prototype(self, *args, **kwargs) -> None:
        self._check_sites(*args, **kwargs)
        super()._setup_prototype(*args, **kwargs)
        init_latent, self._unravel = ravel_pytree(self._init_locs)
        self.latent_dim = init_latent.shape[0]
        noise_dim = noise_dim_for(self._noise_dim, self.latent_dim)
        self._generator = Generator(
            noise_dim,
            init_latent,
            self._init_scale,
            self._hidden,
            self._activation,
            key=numpyro.prng_key(),
        )

    def __call__(self, *args, **kwargs) -> dict[str, Array]:
        """Draw the latents; returns a dict from site name to (constrained) value."""
        if self.prototype_trace is None:
            self._setup_prototype(*args, **kwargs)
        generator = eqx_module(f"{self.prefix}$generator", self._generator)
        noise = jax.random.normal(
            numpyro.prng_key(), (self._generator.weight.shape[1],), self._generator.loc.dtype
        )
        latent = generator(noise)
        draw = Draw(self.prefix, latent, None, self.score_spec)
        plates = self._create_plates(*args, **kwargs)
        result = {}
        for name, unconstrained in self._unravel(latent).items():
            site = self.prototype_trace[name]
            with ExitStack() as stack:
                for frame in site["cond_indep_stack"]:
                    stack.enter_context(plates[frame.name])
                result[name] = emit_site(
                    name, unconstrained, site["fn"].support, draw, site["fn"].event_dim
                )
        declare_score_state(draw)
        return result

    def sample_posterior(
        self, rng_key: Array, params: dict, *args, sample_shape=(), **kwargs
    ) -> dict[str, Array]:
        """Draws of the latents with ``sample_shape`` batch dimensions in front."""
        return sample_posterior(self, rng_key, params, args, kwargs, sample_shape)

    def quantiles(self, params: dict, quantiles, *args, num_samples: int = 2000, **kwargs):
        """Monte Carlo quantiles of each latent site (coordinate-wise)."""
        draws = self.sample_posterior(
            jax.random.PRNGKey(0), params, *args, sample_shape=(num_samples,), **kwargs
        )
        q = jnp.asarray(quantiles)
        return {k: jnp.quantile(v, q, axis=0) for k, v in draws.items()}

    def median(self, params: dict, *args, num_samples: int = 2000, **kwargs):
        """Monte Carlo coordinate-wise posterior median of each latent site."""
        return {
            k: v[0]
            for k, v in self.quantiles(
                params, [0.5], *args, num_samples=num_samples, **kwargs
            ).items()
        }

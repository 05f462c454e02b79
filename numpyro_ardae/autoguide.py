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

from pyro_ardae._common import (
    ScoreConfig,
    check_autoguide_args,
    check_global_latent,
    check_plates,
    noise_dim_for,
    score_config,
)

from .guide import (
    Draw,
    ImplicitDistribution,
    check_unique_name,
    declare_score_state,
    emit_site,
)
from .score import MLP, picklable


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
        score: ScoreConfig = ScoreConfig(),
    ) -> None:
        check_autoguide_args(noise_dim, init_scale)
        super().__init__(model, prefix=prefix, init_loc_fn=init_loc_fn)
        self._noise_dim = noise_dim
        self._hidden = tuple(hidden)
        self._init_scale = init_scale
        self._activation = picklable(activation)  # the guide pickles
        self.score = score_config("AutoImplicitGuide", score)

    def _check_sites(self, *args, **kwargs) -> None:
        # Values from the init strategy, as initialize_model does: improper priors do not sample.
        model = handlers.substitute(
            handlers.seed(self.model, rng_seed=0), substitute_fn=self.init_loc_fn
        )
        with handlers.block():
            trace = handlers.trace(model).get_trace(*args, **kwargs)
        sizes = {n: s["args"][0] for n, s in trace.items() if s["type"] == "plate"}
        check_plates(
            (name, [(f.name, f.dim, f.size) for f in site["cond_indep_stack"]])
            for name, site in trace.items()
            if site["type"] == "sample"
        )
        for name, site in trace.items():
            if site["type"] != "sample" or site["is_observed"]:
                continue
            check_global_latent(
                name,
                type(site["fn"]).__name__,
                site["fn"].support.is_discrete,
                [(f.name, f.size, sizes.get(f.name, f.size)) for f in site["cond_indep_stack"]],
                "numpyro_ardae",
                "numpyro.distributions.MixtureSameFamily",
            )

    def _setup_prototype(self, *args, **kwargs) -> None:
        self._check_sites(*args, **kwargs)
        super()._setup_prototype(*args, **kwargs)
        init_latent, self._unravel = ravel_pytree(self._init_locs)
        self.latent_dim = init_latent.shape[0]
        if not self.latent_dim:
            raise ValueError(
                "AutoImplicitGuide: the model has no latent sample site to infer (every "
                "site is observed or there are none)"
            )
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
        # One key for the set-up on every call, used on the first: later calls then draw
        # the same keys as the first (SVI.init twice with one key gives one state).
        setup_key = numpyro.prng_key()
        if self.prototype_trace is None:
            with handlers.seed(rng_seed=setup_key) if setup_key is not None else ExitStack():
                self._setup_prototype(*args, **kwargs)
        name = f"{self.prefix}$generator"
        check_unique_name("AutoImplicitGuide", name)
        generator = eqx_module(name, self._generator)
        noise = jax.random.normal(
            numpyro.prng_key(), (self._generator.weight.shape[1],), self._generator.loc.dtype
        )
        latent = generator(noise)
        draw = Draw(self.prefix, latent, None, self.score)
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
        """Draws of the latent sites and of the model's deterministic sites (those of a
        reparameterisation too, as NumPyro's autoguides return them), with ``sample_shape``
        batch dimensions in front."""
        shape = tuple(sample_shape)

        def one(key: Array) -> dict[str, Array]:
            with handlers.block():
                guide = handlers.substitute(handlers.seed(self, key), data=params)
                trace = handlers.trace(guide).get_trace(*args, **kwargs)
            draw = next(
                s["fn"].draw
                for s in trace.values()
                if isinstance(s.get("fn"), ImplicitDistribution)
            )
            values = self._unravel(draw.unconstrained)
            model_params = {k for k, s in self.prototype_trace.items() if s["type"] == "param"}
            values.update({k: v for k, v in params.items() if k in model_params})
            out = self._postprocess_fn(values)
            return {
                k: v for k, v in out.items() if k in self.prototype_trace and k not in model_params
            }

        out = jax.vmap(one)(jax.random.split(rng_key, max(math.prod(shape), 1)))
        return {k: v.reshape(shape + v.shape[1:]) for k, v in out.items()}

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

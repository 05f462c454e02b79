"""Guides whose latents come from a generator network and have no density."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from math import prod

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from jax import Array
from numpyro import handlers
from numpyro.contrib.module import eqx_module
from numpyro.distributions import constraints
from numpyro.distributions.transforms import biject_to
from numpyro.distributions.util import sum_rightmost
from numpyro.primitives import mutable as numpyro_mutable

from pyro_ardae._common import ScoreConfig, check_prefix, guide_sites, score_config

from .estimator import ScoreEstimator

NO_DENSITY = (
    "{name!r} comes from an implicit guide and has no density, so log q cannot be "
    "evaluated. Train it with numpyro_ardae.ARDAE_ELBO (the entropy gradient comes from an "
    "AR-DAE score estimate), not with an ELBO that needs log q such as Trace_ELBO."
)


@dataclass(eq=False)
class Draw:
    """One joint draw of an implicit guide, as the ELBO needs it (see
    :class:`pyro_ardae.guide.Draw`); ``state`` names the guide's mutable score state."""

    guide: str
    unconstrained: Array
    context: Array | None
    spec: ScoreConfig
    loc: Array | None = None

    @property
    def state(self) -> str:
        return f"{self.guide}$score"


class ImplicitDistribution(dist.Distribution):
    """The law of one site of an implicit guide: the sampled value, the log-determinant of
    the map to the site's support and the joint :class:`Draw`; no ``log_prob``."""

    arg_constraints: dict = {}
    reparametrized_params: list = []

    def __init__(
        self,
        name: str,
        value: Array,
        log_abs_det_jacobian: Array,
        draw: Draw,
        event_dim: int,
        support: constraints.Constraint = constraints.real,
    ) -> None:
        self.name = name
        self.value = value
        self.log_abs_det_jacobian = log_abs_det_jacobian
        self.draw = draw
        self._support = support
        cut = jnp.ndim(value) - event_dim
        super().__init__(jnp.shape(value)[:cut], jnp.shape(value)[cut:], validate_args=False)

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self) -> constraints.Constraint:
        extra = len(self.event_shape) - self._support.event_dim
        return constraints.independent(self._support, extra) if extra > 0 else self._support

    def sample(self, key, sample_shape=()) -> Array:
        if sample_shape:
            raise NotImplementedError(
                f"{self.name!r}: an implicit guide site holds one draw; call the guide again "
                "(e.g. under jax.vmap) for more"
            )
        return self.value

    def log_prob(self, value):
        raise NotImplementedError(NO_DENSITY.format(name=self.name))


def emit_site(
    name: str,
    unconstrained: Array,
    support: constraints.Constraint,
    draw: Draw,
    event_dim: int | None = None,
) -> Array:
    """Map an unconstrained value to ``support`` with ``biject_to`` and record it as a sample
    site whose law is an :class:`ImplicitDistribution`."""
    transform = biject_to(support)
    value = transform(unconstrained)
    if event_dim is None:
        event_dim = jnp.ndim(value) - jnp.ndim(draw.unconstrained) + 1
    log_det = transform.log_abs_det_jacobian(unconstrained, value)
    log_det = sum_rightmost(log_det, jnp.ndim(log_det) - (jnp.ndim(value) - event_dim))
    return numpyro.sample(
        name, ImplicitDistribution(name, value, log_det, draw, event_dim, support)
    )


def declare_score_state(draw: Draw) -> None:
    """Declare the guide's score network state as a ``numpyro.mutable`` site, so that
    ``SVI.init`` creates it and ``ARDAE_ELBO`` threads it through ``mutable_state``. Under
    ``jit`` the initial value is dead code once a state exists."""
    d = draw.unconstrained.shape[-1]
    k = 0 if draw.context is None else draw.context.shape[-1]
    key = numpyro.prng_key()
    if key is None:
        return
    est = ScoreEstimator(d, k, draw.spec)
    numpyro_mutable(draw.state, est.init(key, draw.unconstrained.dtype))


def check_unique_name(owner: str, name: str) -> None:
    """A clear error where another guide in the same run (two guides with one prefix, e.g.
    the parts of an ``AutoGuideList``) already registered parameters as ``name``."""
    for handler in numpyro.primitives._PYRO_STACK:
        if isinstance(handler, handlers.trace) and f"{name}$params" in getattr(
            handler, "trace", {}
        ):
            raise ValueError(
                f"{owner}: another guide in this run already named its parameters {name!r}; "
                "give each implicit guide its own prefix (prefix='...'), e.g. the parts of "
                "an AutoGuideList"
            )


def sample_posterior(guide, rng_key: Array, params: dict, args, kwargs, sample_shape) -> dict:
    """Draws of every latent site of an implicit ``guide``, ``sample_shape`` batched."""
    shape = tuple(sample_shape)
    keys = jax.random.split(rng_key, max(prod(shape), 1))

    def one(key):
        with handlers.block():
            tr = handlers.trace(handlers.substitute(handlers.seed(guide, key), data=params))
            tr = tr.get_trace(*args, **kwargs)
        return {
            name: site["value"]
            for name, site in tr.items()
            if site["type"] == "sample" and isinstance(site["fn"], ImplicitDistribution)
        }

    out = jax.vmap(one)(keys)
    return {k: v.reshape(shape + v.shape[1:]) for k, v in out.items()}


class ImplicitGuide:
    r"""A guide whose latents are the output of a generator network, with no density; the
    NumPyro twin of :class:`pyro_ardae.ImplicitGuide` (same arguments and defaults).

    .. math::

        \epsilon \sim N(0, I_{e}), \qquad u = \mathrm{net}(\epsilon[, c]), \qquad z = T(u).

    ``net`` is an Equinox module that maps one noise vector ``(e,)`` (and one context row)
    to one latent (a dict of them for several sites); the guide ``vmap`` s it over the
    context's batch shape, and registers its parameters with
    :func:`numpyro.contrib.module.eqx_module`.

    Args:
        net: the generator network (an ``equinox.Module``).
        noise_dim: dimension :math:`e` of the noise.
        sites: the latent site names, or a mapping from name to support (default: real).
        context: ``(*args, **kwargs) -> Array`` giving the context, or ``None``.
        context_event_dim: trailing dims of the context that are features.
        prefix: name prefix of the guide's parameters and score state; give each of
            several guides in one model its own.
        score: the guide's score network (:class:`~pyro_ardae.ScoreConfig`), trained by
            :class:`~numpyro_ardae.ARDAE_ELBO`.
    """

    def __init__(
        self,
        net: Callable,
        noise_dim: int,
        sites: str | Sequence[str] | Mapping[str, constraints.Constraint] = "z",
        context: Callable[..., Array] | None = None,
        context_event_dim: int = 1,
        prefix: str = "implicit",
        score: ScoreConfig = ScoreConfig(),
    ) -> None:
        check_prefix(prefix)
        self.supports = guide_sites(
            net, noise_dim, sites, context, constraints.Constraint, constraints.real
        )
        self.net = net
        self.noise_dim = noise_dim
        self.context = context
        self.context_event_dim = context_event_dim
        self.prefix = prefix
        self.score = score_config("ImplicitGuide", score)

    def _context(self, args, kwargs) -> Array | None:
        if self.context is None:
            return None
        c = self.context(*args, **kwargs)
        if not hasattr(c, "shape") or jnp.ndim(c) < self.context_event_dim:
            got = f"shape {tuple(c.shape)}" if hasattr(c, "shape") else type(c).__name__
            raise ValueError(
                f"ImplicitGuide: context() must return an array with at least "
                f"{self.context_event_dim} feature dims, got {got}"
            )
        return jnp.asarray(c)

    def _outputs(self, net, noise: Array, context: Array | None, batch) -> dict[str, Array]:
        flat_noise = noise.reshape(-1, self.noise_dim)
        if context is None:
            out = jax.vmap(net)(flat_noise)
        else:
            flat_ctx = context.reshape((-1,) + context.shape[len(batch) :])
            out = jax.vmap(net)(flat_noise, flat_ctx)
        if not isinstance(out, Mapping):
            if len(self.supports) != 1:
                raise TypeError(
                    f"ImplicitGuide: net must return a dict keyed by {sorted(self.supports)}, "
                    f"got {type(out).__name__}"
                )
            out = {next(iter(self.supports)): out}
        if set(out) != set(self.supports):
            raise ValueError(
                f"ImplicitGuide: net returned sites {sorted(out)}, expected {sorted(self.supports)}"
            )
        for name, value in out.items():
            if not isinstance(value, jax.Array):
                raise TypeError(
                    f"ImplicitGuide: net must return an array per site, got a "
                    f"{type(value).__name__} for {name!r}"
                )
        return {k: v.reshape(tuple(batch) + v.shape[1:]) for k, v in out.items()}

    def __call__(self, *args, **kwargs) -> dict[str, Array]:
        """Draw the latents; returns a dict from site name to (constrained) value."""
        check_unique_name("ImplicitGuide", f"{self.prefix}$net")
        net = eqx_module(f"{self.prefix}$net", self.net)
        context = self._context(args, kwargs)
        batch = () if context is None else context.shape[: context.ndim - self.context_event_dim]
        key = numpyro.prng_key()
        if key is None:
            raise RuntimeError("ImplicitGuide: call it under numpyro.handlers.seed (or SVI)")
        dtype = jnp.result_type(float)
        noise = jax.random.normal(key, tuple(batch) + (self.noise_dim,), dtype)
        out = self._outputs(net, noise, context, batch)
        flat = jnp.concatenate([out[k].reshape(tuple(batch) + (-1,)) for k in self.supports], -1)
        ctx_flat, loc = None, None
        if context is not None:
            ctx_flat = jax.lax.stop_gradient(context.reshape(tuple(batch) + (-1,)))
            zero = self._outputs(net, jnp.zeros_like(noise), context, batch)  # z0(c) = net(0, c)
            loc = jax.lax.stop_gradient(
                jnp.concatenate([zero[k].reshape(tuple(batch) + (-1,)) for k in self.supports], -1)
            )
        draw = Draw(self.prefix, flat, ctx_flat, self.score, loc)
        result = {name: emit_site(name, out[name], s, draw) for name, s in self.supports.items()}
        declare_score_state(draw)
        return result

    def sample_posterior(
        self, rng_key: Array, params: dict, *args, sample_shape=(), **kwargs
    ) -> dict[str, Array]:
        """Draws of the latents with ``sample_shape`` batch dimensions in front."""
        return sample_posterior(self, rng_key, params, args, kwargs, sample_shape)

"""ARDAE_ELBO for NumPyro: the AR-DAE entropy-gradient surrogate, jit-compiled with SVI."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import Array
from numpyro import handlers
from numpyro.distributions import constraints
from numpyro.infer.elbo import ELBO
from numpyro.infer.util import log_density

from pyro_ardae._common import (
    check_elbo_options,
    check_model_guide,
    divergence_message,
    group_draws,
    guide_site,
    model_site,
    same_support,
    score_sample_size,
)

from .estimator import ScoreEstimator
from .guide import Draw, ImplicitDistribution


def _bound(x):
    return None if isinstance(x, jax.core.Tracer) else np.asarray(x)


def check_traces(model_trace, guide_trace) -> None:
    """Clear errors for a guide that does not fit ``ARDAE_ELBO`` or the model (the checks
    and messages of :func:`pyro_ardae.elbo.check_traces`)."""
    model = {
        name: model_site(site) for name, site in model_trace.items() if site["type"] == "sample"
    }
    guide = {
        name: guide_site(site, isinstance(site["fn"], ImplicitDistribution))
        for name, site in guide_trace.items()
        if site["type"] == "sample"
    }
    check_model_guide(
        model,
        guide,
        lambda a, b: same_support(a, b, constraints.independent, _bound),
        "numpyro_ardae",
    )


def _draws(guide_trace) -> dict[str, tuple[Draw, list[str]]]:
    return group_draws(
        (name, site["fn"].draw)
        for name, site in guide_trace.items()
        if site["type"] == "sample" and isinstance(site["fn"], ImplicitDistribution)
    )


class DivergenceWarning(RuntimeWarning):
    """A NumPyro fit whose energy went non-finite inside a jitted step (where nothing can
    raise). Silence it with ``warnings.simplefilter("ignore", DivergenceWarning)``."""


def _warn_diverged(step, guides: tuple[str, ...]) -> None:
    warnings.warn(
        divergence_message(int(step), guides, "the energy -log p(x, z)"),
        DivergenceWarning,
        stacklevel=2,
    )


def _all_finite(tree) -> Array:
    leaves = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(jnp.result_type(x), jnp.inexact)]
    return jnp.all(jnp.array([jnp.all(jnp.isfinite(x)) for x in leaves]))


class ARDAE_ELBO(ELBO):
    r"""ELBO for implicit guides, the NumPyro twin of :class:`pyro_ardae.ARDAE_ELBO` (same
    options and defaults; particles are vectorised with ``vmap`` by default, as in NumPyro).

    The generator minimises
    :math:`-\mathbb{E}_q[\log p(x, z)] + \mathbb{E}_q[\mathrm{sg}(s(u)) \cdot u -
    \log|\det J_T(u)|]`, whose gradient is minus the ELBO's, with :math:`s` the AR-DAE score
    of each implicit guide. The score network's parameters and Adam state ride in SVI's
    ``mutable_state`` (the guide declares them at ``SVI.init``), so the whole step, the
    ``score_steps`` AR-DAE updates on fresh draws followed by the generator's loss, is one
    pure function that ``SVI.update`` and ``SVI.run`` ``jit``. The score network has its own
    Adam optimiser (``score_lr``); SVI's optimiser only sees the generator.

    The value it returns (``SVI.update``'s loss, ``SVI.run``'s losses) is the energy
    :math:`\mathbb{E}_q[-\log p(x, z)]`, not the negative ELBO, which would need
    :math:`\log q`; the gradient is the surrogate's.

    Args:
        num_particles: draws of :math:`q` per step for the generator's loss; 4 by default,
            as in :class:`pyro_ardae.ARDAE_ELBO`.
        vectorize_particles: ``vmap`` the particles (else ``lax.map``).
        score_steps: AR-DAE steps per generator step.
        score_samples: fresh samples per AR-DAE step (per context row when amortised);
            ``None``: 512, or ``4 (d + 3)`` for a global guide of ``d > 125`` latent
            dimensions.
        score_lr: learning rate of the score networks' Adam.
    """

    can_infer_discrete = False

    def __init__(
        self,
        num_particles: int = 4,
        vectorize_particles: bool = True,
        *,
        score_steps: int = 1,
        score_samples: int | None = None,
        score_lr: float = 1e-3,
    ) -> None:
        check_elbo_options(
            score_lr,
            num_particles=num_particles,
            score_steps=score_steps,
            score_samples=score_samples,
        )
        super().__init__(num_particles=num_particles, vectorize_particles=vectorize_particles)
        self.score_steps = score_steps
        self.score_samples = score_samples
        self.score_lr = score_lr

    def estimator(self, draw: Draw) -> ScoreEstimator:
        """The (stateless) estimator of ``draw``'s guide: its architecture, our training."""
        return ScoreEstimator(
            draw.unconstrained.shape[-1],
            0 if draw.context is None else draw.context.shape[-1],
            draw.spec,
            optimizer=optax.adam(self.score_lr),
        )

    def _traces(self, key, params, model, guide, args, kwargs):
        key_guide, key_model = jax.random.split(key)
        seeded = handlers.seed(handlers.substitute(guide, data=params), key_guide)
        guide_trace = handlers.trace(seeded).get_trace(*args, **kwargs)
        model = handlers.seed(handlers.replay(model, guide_trace), key_model)
        log_p, model_trace = log_density(model, args, kwargs, params)
        check_traces(model_trace, guide_trace)
        return log_p, model_trace, guide_trace

    def _sample_size(self, draws: dict[str, tuple[Draw, list[str]]]) -> int:
        """Draws per AR-DAE step (a static shape)."""
        dims = {g: d.unconstrained.shape[-1] for g, (d, _) in draws.items() if d.context is None}
        return score_sample_size(self.score_samples, dims)

    def _fresh(self, key, params, guide, args, kwargs, n: int) -> dict[str, tuple]:
        """``n`` fresh draws per guide: ``(n, d)`` or ``(n, m, d)``, the context
        ``(m, k)`` and the centre z0 ``(m, d)`` (``None`` for a global guide)."""

        def one(key):
            seeded = handlers.seed(handlers.substitute(guide, data=params), key)
            with handlers.block():
                tr = handlers.trace(seeded).get_trace(*args, **kwargs)
            return {g: (d.unconstrained, d.context, d.loc) for g, (d, _) in _draws(tr).items()}

        out = jax.vmap(one)(jax.random.split(key, n))
        fresh = {}
        for g, (u, ctx, loc) in jax.lax.stop_gradient(out).items():
            d = u.shape[-1]
            if ctx is None:
                if u.size != n * d:
                    raise ValueError(
                        f"ARDAE_ELBO: guide {g!r} has no context but its draws have batch "
                        f"shape {tuple(u.shape[1:-1])}; a batched (local) implicit latent "
                        "needs a context (ImplicitGuide(net, context=...))"
                    )
                fresh[g] = (u.reshape(n, d), None, None)
            else:
                ctx = ctx.reshape(n, -1, ctx.shape[-1])[0]
                fresh[g] = (u.reshape(n, -1, d), ctx, loc.reshape(n, -1, d)[0])
        return fresh

    def train_score(self, key, params, guide, draws, args, kwargs):
        """``score_steps`` AR-DAE steps on fresh draws; returns the new states, the whitening
        maps the generator's loss is scored with, and the last losses."""
        states = {g: params[d.state] for g, (d, _) in draws.items()}
        stats, losses = {}, {}
        n = self._sample_size(draws)
        for step_key in jax.random.split(key, self.score_steps):
            key_fresh, key_step = jax.random.split(step_key)
            fresh = self._fresh(key_fresh, params, guide, args, kwargs, n)
            for g, (samples, context, loc) in fresh.items():
                est = self.estimator(draws[g][0])
                states[g], stats[g], losses[g] = est.update(
                    states[g], key_step, samples, context, loc
                )
        return states, stats, losses

    def loss_with_mutable_state(self, rng_key, param_map, model, guide, *args, **kwargs):
        key_probe, key_score, key_particles = jax.random.split(rng_key, 3)
        _, _, probe = self._traces(key_probe, param_map, model, guide, args, kwargs)
        draws = _draws(probe)
        for g, (draw, _) in draws.items():
            if draw.state not in param_map:
                raise ValueError(
                    f"ARDAE_ELBO: no score state {draw.state!r} for guide {g!r}; initialise "
                    "SVI with the guide (svi.init / svi.run) so that it is declared"
                )
        states, stats, _ = self.train_score(key_score, param_map, guide, draws, args, kwargs)

        def particle(key):
            log_p, model_trace, guide_trace = self._traces(
                key, param_map, model, guide, args, kwargs
            )
            surrogate = jnp.zeros((), log_p.dtype)
            for g, (draw, names) in _draws(guide_trace).items():
                scale = model_trace[names[0]]["scale"]
                scale = 1.0 if scale is None else scale
                est, u = self.estimator(draw), draw.unconstrained
                if draw.context is None:
                    score = est.score(states[g], stats[g], u)
                else:
                    m = stats[g].loc.shape[0]
                    ctx = draw.context.reshape(-1, m, draw.context.shape[-1])[0]
                    score = est.score(states[g], stats[g], u.reshape(-1, m, u.shape[-1]), ctx)
                    score = score.reshape(u.shape)
                surrogate = surrogate + jnp.sum(scale * jnp.sum(score * u, -1))
                for name in names:
                    site_scale = model_trace[name]["scale"]
                    site_scale = 1.0 if site_scale is None else site_scale
                    log_det = guide_trace[name]["fn"].log_abs_det_jacobian
                    surrogate = surrogate - jnp.sum(site_scale * log_det)
            return log_p, surrogate

        keys = jax.random.split(key_particles, self.num_particles)
        log_p, surrogate = self.vectorize_particles_fn(particle, keys)
        objective = jnp.mean(surrogate - log_p)
        energy = -jnp.mean(log_p)
        self._check_finite(energy, param_map, states, tuple(draws))
        loss = objective - jax.lax.stop_gradient(objective) + jax.lax.stop_gradient(energy)
        mutable = {draws[g][0].state: states[g] for g in draws}
        return {"loss": loss, "mutable_state": mutable}

    def _check_finite(self, energy: Array, param_map: dict, states: dict, guides: tuple) -> None:
        """Warn (:class:`DivergenceWarning`, from the host) at the first step whose energy is
        not finite while the parameters it started from were: the step that diverged."""
        diverged = _all_finite(param_map) & ~jnp.isfinite(energy)
        count = optax.tree_utils.tree_get(states[guides[0]].opt_state, "count")
        step = count // self.score_steps - 1
        jax.lax.cond(
            diverged,
            lambda: jax.debug.callback(_warn_diverged, step, guides),
            lambda: None,
        )

    def loss(self, rng_key, param_map, model, guide, *args, **kwargs) -> Array:
        """Estimate of the energy :math:`\\mathbb{E}_q[-\\log p(x, z)]` (no training)."""

        def particle(key):
            return self._traces(key, param_map, model, guide, args, kwargs)[0]

        keys = jax.random.split(rng_key, self.num_particles)
        return -jnp.mean(self.vectorize_particles_fn(particle, keys))

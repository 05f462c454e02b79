"""ARDAE_ELBO: the ELBO of an implicit guide, with the AR-DAE entropy-gradient surrogate."""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping

import pyro
import torch
from pyro import poutine
from pyro.infer.elbo import ELBO
from pyro.infer.util import is_validation_enabled, torch_item
from pyro.poutine.util import prune_subsample_sites
from pyro.util import check_site_shape, warn_if_nan
from torch import Tensor
from torch.distributions import constraints

from ._common import (
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
    return None if x is None else torch.as_tensor(x).detach().cpu().numpy()


def check_traces(model_trace, guide_trace) -> None:
    """Clear errors for a guide that does not fit ``ARDAE_ELBO`` or the model."""
    model = {
        name: model_site(site)
        for name, site in model_trace.nodes.items()
        if site["type"] == "sample"
    }
    guide = {
        name: guide_site(site, isinstance(site["fn"], ImplicitDistribution))
        for name, site in guide_trace.iter_stochastic_nodes()
    }
    check_model_guide(
        model,
        guide,
        lambda a, b: same_support(a, b, constraints.independent, _bound),
        "pyro_ardae",
    )


def _draws(guide_trace) -> dict[str, tuple[Draw, list[str]]]:
    return group_draws(
        (name, site["fn"].draw) for name, site in guide_trace.iter_stochastic_nodes()
    )


class ARDAE_ELBO(ELBO):
    r"""ELBO for implicit guides: the entropy gradient comes from a learned score.

    For a guide :math:`z = T(u)`, :math:`u = g_\phi(\epsilon)` (see
    :class:`~pyro_ardae.ImplicitGuide`), :math:`\log q` is unknown but its gradient is not
    needed: since :math:`\mathbb{E}_q[\nabla_\phi \log q_\phi(z)] = 0`,

    .. math::

        \nabla_\phi \mathbb{E}_q[\log q_\phi(z)]
          = \nabla_\phi \mathbb{E}_\epsilon\big[\mathrm{sg}(s(u)) \cdot u
            - \log|\det J_T(u)|\big],
        \qquad s(u) = \nabla_u \log q(u),

    (Roeder et al., 2017; Lim et al., 2020) with :math:`s` the AR-DAE estimate
    :math:`f(u; 0)` of a :class:`~pyro_ardae.ScoreEstimator`. The generator minimises

    .. math::

        \mathcal{L}(\phi) = -\mathbb{E}_q[\log p(x, z)]
            + \mathbb{E}_q\big[\mathrm{sg}(s(u)) \cdot u - \log|\det J_T(u)|\big],

    whose gradient is minus the ELBO's. Each step first trains the score network of every
    implicit guide for ``score_steps`` steps, each on ``score_samples`` fresh detached draws
    of the current :math:`q` (per context row for an amortised guide), as in the paper.
    Local latents are scaled like the model's site (subsampling, ``poutine.scale``).

    The guide says what its score network looks like (its ``score``, a
    :class:`~pyro_ardae.ScoreConfig`); the ELBO builds and trains it. The score
    networks live in :attr:`estimators` (one per guide, keyed by the guide's name, built at
    the first step), each with its own optimiser: they are plain ``torch.nn.Module`` s
    outside Pyro's param store, so the SVI optimiser never sees them.

    The checks of the guide against the model (sites, supports, shapes) run on the first
    step of each model and guide pair, before any parameter changes, and not after.

    **What** ``loss``, ``loss_and_grads`` **and** ``SVI.step`` **return**: the Monte Carlo
    estimate of the *energy* :math:`\mathbb{E}_q[-\log p(x, z)]`, not the negative ELBO
    (which would need :math:`\log q`). It can go up while the fit improves, as the
    entropy grows.

    Args:
        num_particles: draws of :math:`q` per step for the generator's loss, each a run of
            the model. 4 by default where Pyro's ELBOs take 1: with one draw the
            generator's gradient is too noisy, under a constant-rate optimiser, to build
            strong correlations, and correlated coordinates come out too narrow
            (``docs/robustness.md``); 1 gives the cheapest step.
        max_plate_nesting: as in Pyro; guessed from one run when left infinite.
        vectorize_particles: draw the particles in one vectorised pass.
        score_steps: AR-DAE steps per generator step.
        score_samples: fresh samples per AR-DAE step (per context row when amortised);
            ``None``: 512, or ``4 (d + 3)`` for a global guide of ``d > 125`` latent
            dimensions (its whitening needs more than ``d + 2`` in each half).
        score_lr: learning rate of the score networks' Adam.

    Example:
        >>> import pyro, pyro.distributions as dist
        >>> from pyro.infer import SVI
        >>> from pyro_ardae import AutoImplicitGuide, ScoreConfig
        >>> def model():
        ...     pyro.sample("z", dist.Normal(0.0, 1.0))
        >>> pyro.clear_param_store()
        >>> guide = AutoImplicitGuide(model, hidden=(16,), score=ScoreConfig(hidden=(32,)))
        >>> svi = SVI(model, guide, pyro.optim.Adam({"lr": 1e-2}), ARDAE_ELBO())
        >>> energy = svi.step()
    """

    def __init__(
        self,
        num_particles: int = 4,
        max_plate_nesting: float = float("inf"),
        vectorize_particles: bool = False,
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
        super().__init__(
            num_particles=num_particles,
            max_plate_nesting=max_plate_nesting,
            vectorize_particles=vectorize_particles,
        )
        self.score_steps = score_steps
        self.score_samples = score_samples
        self.score_lr = score_lr
        self.estimators: dict[str, ScoreEstimator] = {}
        self.num_steps = 0  # training steps taken, for the messages of a diverged fit
        self._loaded: dict[str, dict] = {}  # estimator states waiting for their first step
        self._size: int | None = None  # see _sample_size
        self._checked: set[tuple[int, int]] = set()  # (model, guide) pairs already checked
        self._checking = True

    # --- state ------------------------------------------------------------------------
    def state_dict(self) -> dict[str, object]:
        """Everything the next step reads that Pyro's param store does not hold: each score
        estimator's weights, optimiser state and whitening map, and the step count and
        the plate nesting it found.

        With the param store (``pyro.get_param_store().get_state()``), the SVI optimiser's
        state (``optim.get_state()``) and, for the same draws, the RNG state, it resumes a
        run exactly: save all four at step ``k``, load them into fresh objects, and the
        next steps are those of the uninterrupted run. ``torch.save`` it; the ELBO itself
        pickles too."""
        return {
            "num_steps": self.num_steps,
            "max_plate_nesting": self.max_plate_nesting,
            "estimators": {k: est.state_dict() for k, est in self.estimators.items()}
            | self._loaded,
        }

    def load_state_dict(self, state: Mapping[str, object]) -> None:
        """Restore :meth:`state_dict`. An estimator not built yet (a fresh ELBO) takes its
        state when its guide's first step builds it."""
        keys = {"num_steps", "max_plate_nesting", "estimators"}
        if not isinstance(state, Mapping) or set(state) != keys:
            got = sorted(state) if isinstance(state, Mapping) else type(state).__name__
            raise ValueError(
                "ARDAE_ELBO.load_state_dict: expected the dict of ARDAE_ELBO.state_dict() "
                f"with keys {sorted(keys)}, got {got}"
            )
        self.num_steps = int(state["num_steps"])
        self.max_plate_nesting = state["max_plate_nesting"]
        self._loaded = {}
        for name, est_state in state["estimators"].items():
            if name in self.estimators:
                self._load_estimator(name, self.estimators[name], est_state)
            else:
                self._loaded[name] = est_state

    @staticmethod
    def _load_estimator(name: str, est: ScoreEstimator, state: Mapping) -> None:
        try:
            est.load_state_dict(state)
        except RuntimeError as e:
            raise ValueError(
                f"ARDAE_ELBO.load_state_dict: the saved score estimator of guide {name!r} "
                f"does not fit this guide's ({e})"
            ) from e

    # --- traces -----------------------------------------------------------------------
    def _guess_max_plate_nesting(self, model, guide, args, kwargs) -> None:
        # Like ELBO's, without asking the guide for a log-density it does not have.
        with poutine.block():
            guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
            model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(
                *args, **kwargs
            )
        guide_trace = prune_subsample_sites(guide_trace)
        model_trace = prune_subsample_sites(model_trace)
        check_traces(model_trace, guide_trace)
        dims = [
            frame.dim
            for trace in (model_trace, guide_trace)
            for site in trace.nodes.values()
            if site["type"] == "sample"
            for frame in site["cond_indep_stack"]
            if frame.vectorized
        ]
        self.max_plate_nesting = -min(dims) if dims else 0
        if self.vectorize_particles and self.num_particles > 1:
            self.max_plate_nesting += 1

    def _get_vectorized_trace(self, model, guide, args, kwargs):
        try:
            return super()._get_vectorized_trace(model, guide, args, kwargs)
        except (RuntimeError, ValueError, IndexError) as e:
            raise ValueError(
                f"ARDAE_ELBO(vectorize_particles=True) runs the model once on a batch of "
                f"{self.num_particles} particles, in a pyro.plate left of the model's own, "
                "and the model failed on that batch. A model written for one draw (e.g. `X @ w` "
                "for a latent w of shape (2,)) does not broadcast over it: use the default "
                "vectorize_particles=False, or write the model so that latents may carry "
                "batch dimensions on the left (e.g. `(X * w).sum(-1)` for `X @ w`). The "
                f"model's error: {type(e).__name__}: {e}"
            ) from e

    def _get_trace(self, model, guide, args, kwargs):
        guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
        model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(
            *args, **kwargs
        )
        guide_trace = prune_subsample_sites(guide_trace)
        model_trace = prune_subsample_sites(model_trace)
        if self._checking:
            check_traces(model_trace, guide_trace)
        model_trace.compute_log_prob()
        if is_validation_enabled():
            for site in model_trace.nodes.values():
                if site["type"] == "sample":
                    check_site_shape(site, self.max_plate_nesting)
        return model_trace, guide_trace

    # --- the score networks -----------------------------------------------------------
    def _fresh(
        self, guide, args, kwargs
    ) -> list[tuple[Draw, Tensor, Tensor | None, Tensor | None]]:
        """Fresh detached draws ``(draw, samples (n, [m,] d), context (m, k) or None,
        centre z0 (m, d) or None)``."""
        n = self._sample_size(guide, args, kwargs)
        with torch.no_grad(), poutine.block():
            with pyro.plate("_ardae_score_samples", n, dim=-self.max_plate_nesting - 1):
                trace = prune_subsample_sites(poutine.trace(guide).get_trace(*args, **kwargs))
        out = []
        for draw, _ in _draws(trace).values():
            u = draw.unconstrained
            d = u.shape[-1]
            if not torch.isfinite(u).all():
                raise FloatingPointError(divergence_message(self.num_steps, [draw.guide], "a draw"))
            if draw.context is None:
                if u.numel() != n * d:
                    raise ValueError(
                        f"ARDAE_ELBO: guide {draw.guide!r} has no context but its draws have "
                        f"batch shape {tuple(u.shape[:-1])}; a batched (local) implicit "
                        "latent needs a context (ImplicitGuide(net, context=...))"
                    )
                out.append((draw, u.reshape(n, d), None, None))
            else:
                ctx = draw.context.reshape(n, -1, draw.context.shape[-1])[0]
                loc = None if draw.loc is None else draw.loc.reshape(n, -1, d)[0]
                out.append((draw, u.reshape(n, -1, d), ctx, loc))
        return out

    def _sample_size(self, guide, args, kwargs) -> int:
        """Draws per AR-DAE step, fixed at the first step from the latent dimensions of the
        guides without a context."""
        if self._size is None:
            # A probe draw that leaves the random streams as they were (a resumed run draws
            # the numbers of the uninterrupted one).
            cuda = [torch.cuda.current_device()] if torch.cuda.is_initialized() else []
            with torch.no_grad(), poutine.block(), torch.random.fork_rng(devices=cuda):
                trace = prune_subsample_sites(poutine.trace(guide).get_trace(*args, **kwargs))
            dims = {
                draw.guide: draw.unconstrained.shape[-1]
                for draw, _ in _draws(trace).values()
                if draw.context is None
            }
            self._size = score_sample_size(self.score_samples, dims)
        return self._size

    def _estimator(self, draw: Draw) -> ScoreEstimator:
        est = self.estimators.get(draw.guide)
        if est is None:
            u, c = draw.unconstrained, draw.context
            saved = self._loaded.pop(draw.guide, None)
            # A network whose weights are about to be loaded draws its initial ones from a
            # side stream, so that a resumed run's random numbers are the uninterrupted one's.
            with torch.random.fork_rng(devices=[], enabled=saved is not None):
                est = ScoreEstimator(
                    u.shape[-1],
                    0 if c is None else c.shape[-1],
                    draw.spec,
                    optimizer=functools.partial(torch.optim.Adam, lr=self.score_lr),
                ).to(u)
            if saved is not None:
                self._load_estimator(draw.guide, est, saved)
            self.estimators[draw.guide] = est
        return est

    def estimator(self, guide, *args, **kwargs) -> ScoreEstimator:
        """The score estimator of ``guide`` (one implicit guide), built untrained from one
        draw of ``guide(*args, **kwargs)`` if no step has built it yet. Use it to query the
        learned score or ``log_prob`` (e.g. for new contexts) or to save and load its state.
        """
        with torch.no_grad(), poutine.block():
            trace = prune_subsample_sites(poutine.trace(guide).get_trace(*args, **kwargs))
        draws = [draw for draw, _ in _draws(trace).values()]
        if len(draws) != 1:
            raise ValueError(
                f"ARDAE_ELBO.estimator: expected a guide with one implicit draw, got {len(draws)}"
            )
        return self._estimator(draws[0])

    def train_score(self, guide, *args, **kwargs) -> dict[str, Tensor]:
        """Run ``score_steps`` AR-DAE steps on fresh draws of ``guide``; returns the last
        loss of each estimator."""
        if self.max_plate_nesting == float("inf"):
            raise RuntimeError("ARDAE_ELBO.train_score: max_plate_nesting is not known yet")
        losses = {}
        for _ in range(self.score_steps):
            for draw, samples, context, loc in self._fresh(guide, args, kwargs):
                losses[draw.guide] = self._estimator(draw).update(samples, context, loc)
        return losses

    # --- the loss ---------------------------------------------------------------------
    def _entropy_surrogate(self, model_trace, guide_trace) -> Tensor | float:
        total: Tensor | float = 0.0
        for draw, names in _draws(guide_trace).values():
            scale = model_trace.nodes[names[0]]["scale"]
            u = draw.unconstrained
            est = self._estimator(draw)
            if draw.context is None:
                score = est.score(u)
            else:
                m = est.stats.loc.shape[0]
                ctx = draw.context.reshape(-1, m, draw.context.shape[-1])[0]
                score = est.score(u.reshape(-1, m, u.shape[-1]), ctx).reshape(u.shape)
            total = total + (scale * (score * u).sum(-1)).sum()
            for name in names:
                log_det = guide_trace.nodes[name]["fn"].log_abs_det_jacobian
                total = total - (model_trace.nodes[name]["scale"] * log_det).sum()
        return total

    def _prepare(self, model, guide, args, kwargs) -> None:
        if self.max_plate_nesting == float("inf"):
            self._guess_max_plate_nesting(model, guide, args, kwargs)
        # The model/guide checks run on the first step of each pair, off the hot path.
        self._checking = (id(model), id(guide)) not in self._checked

    def _checked_pair(self, model, guide) -> None:
        self._checked.add((id(model), id(guide)))

    def _losses(self, model, guide, args, kwargs):
        """Yield ``(surrogate loss, log p)`` per particle (batch of particles)."""
        for model_trace, guide_trace in self._get_traces(model, guide, args, kwargs):
            log_p = model_trace.log_prob_sum()
            surrogate = self._entropy_surrogate(model_trace, guide_trace) - log_p
            yield surrogate / self.num_particles, log_p

    def loss(self, model, guide, *args, **kwargs) -> float:
        """Estimate of the energy :math:`\\mathbb{E}_q[-\\log p(x, z)]` (no training)."""
        self._prepare(model, guide, args, kwargs)
        energy = 0.0
        with torch.no_grad():
            for model_trace, _ in self._get_traces(model, guide, args, kwargs):
                energy -= torch_item(model_trace.log_prob_sum()) / self.num_particles
        warn_if_nan(energy, "loss")
        self._checked_pair(model, guide)
        return energy

    def _check_energy(self, log_p: float) -> float:
        if not math.isfinite(log_p):
            raise FloatingPointError(
                divergence_message(self.num_steps, self.estimators, "the energy -log p(x, z)")
            )
        return log_p

    def loss_and_grads(self, model, guide, *args, **kwargs) -> float:
        """Train the score networks, then backpropagate the generator's surrogate loss.

        Returns the energy estimate :math:`\\mathbb{E}_q[-\\log p(x, z)]`. Raises a
        ``FloatingPointError`` that names the step and the guide when a draw or the energy is
        not finite (a diverged fit), before any parameter is touched."""
        self._prepare(model, guide, args, kwargs)
        self.train_score(guide, *args, **kwargs)
        energy = 0.0
        for surrogate, log_p in self._losses(model, guide, args, kwargs):
            log_p = self._check_energy(torch_item(log_p))  # the one host sync per particle
            if surrogate.requires_grad:
                surrogate.backward()
            energy -= log_p / self.num_particles
        self.num_steps += 1
        self._checked_pair(model, guide)
        return energy

    def differentiable_loss(self, model, guide, *args, **kwargs) -> Tensor:
        """Train the score networks, then return the generator's surrogate loss.

        Its gradient is minus the ELBO's gradient; its value is the energy plus
        :math:`\\mathbb{E}[\\mathrm{sg}(s) \\cdot u - \\log|\\det J|]`, which has no meaning of
        its own."""
        self._prepare(model, guide, args, kwargs)
        self.train_score(guide, *args, **kwargs)
        loss = 0.0
        for surrogate, log_p in self._losses(model, guide, args, kwargs):
            self._check_energy(torch_item(log_p))
            loss = loss + surrogate
        self.num_steps += 1
        self._checked_pair(model, guide)
        return loss

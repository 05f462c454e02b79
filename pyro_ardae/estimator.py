"""Fit and query the score of a sampler: whitening, training steps, the score at sigma = 0."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from typing import NamedTuple

import torch
from torch import Tensor, nn

from ._common import (
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

OptimizerFn = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


class Standardization(NamedTuple):
    r"""Affine whitening map :math:`y = L^{-1} (z - \mu)` the score network works in.

    ``scale`` is either a lower-triangular ``(d, d)`` matrix :math:`L` (global mode: full
    covariance, so any Gaussian :math:`q` becomes exactly standard normal) or per-row
    standard deviations ``(..., d)`` (per-context mode: :math:`L` diagonal).
    """

    loc: Tensor
    scale: Tensor
    tril: bool

    def whiten(self, z: Tensor) -> Tensor:
        if self.tril:
            return torch.linalg.solve_triangular(
                self.scale, (z - self.loc).unsqueeze(-1), upper=False
            ).squeeze(-1)
        return (z - self.loc) / self.scale

    def pull_back(self, score_y: Tensor) -> Tensor:
        r"""Score in :math:`z` from the score in :math:`y`: :math:`L^{-\top} s_y`."""
        if self.tril:
            return torch.linalg.solve_triangular(
                self.scale.T, score_y.unsqueeze(-1), upper=True
            ).squeeze(-1)
        return score_y / self.scale

    def log_abs_det(self) -> Tensor:
        r""":math:`\log|\det L|` (per context row in per-context mode)."""
        diag = self.scale.diagonal() if self.tril else self.scale
        return diag.log().sum(-1)


def moments(samples: Tensor, tril: bool, loc: Tensor | None = None) -> tuple[Tensor, Tensor]:
    r"""Mean and covariance (``tril``) or per-coordinate variance over the first dimension
    of ``samples``, the covariance inflated so that its inverse is unbiased for Gaussian
    samples: :math:`\mathbb{E}[\hat\Sigma^{-1}] = \frac{n-1}{n-d-2}\Sigma^{-1}` for the usual
    estimate, which would otherwise inflate a fitted variance by :math:`(d + 1)/n`.

    With a known centre ``loc`` (e.g. the generator's zero-noise output) no mean is
    estimated: the second moment about ``loc`` is divided by :math:`n - d - 1`, one more
    degree of freedom, and the centre carries no sampling noise."""
    n = samples.shape[0]
    d = samples.shape[-1] if tril else 1
    dof = n - d - (1 if loc is not None else 2)
    if dof <= 0:
        raise ValueError(
            f"ScoreEstimator: whitening {d}-dim samples needs more than {n - dof} of them, got {n}"
        )
    loc = samples.mean(0) if loc is None else loc
    centred = samples - loc
    if tril:
        cov = centred.T @ centred
    else:
        cov = centred.pow(2).sum(0)
    return loc, cov / dof


def standardization(loc: Tensor, cov: Tensor, tril: bool) -> Standardization:
    """The whitening map of a mean and a covariance (``tril``) or variance, with a ridge
    (:func:`~pyro_ardae._common.whitening_ridge`) so that a collapsing sampler gives a small,
    finite scale rather than 0, and nothing more. Where rounding still defeats the Cholesky
    factorisation (a near-degenerate covariance in float32) the ridge grows through
    :data:`~pyro_ardae._common.CHOLESKY_RETRIES` of the mean variance; a covariance that is
    not finite raises a ``FloatingPointError``."""
    if not torch.isfinite(cov).all() or not torch.isfinite(loc).all():
        raise FloatingPointError(
            "ScoreEstimator: the draws to whiten are not finite (the sampler has diverged)"
        )
    finfo = torch.finfo(loc.dtype)
    var = cov.diagonal() if tril else cov
    dim = loc.shape[-1] if tril else 1
    jitter = whitening_ridge(var, loc.pow(2), dim, finfo.eps, finfo.tiny)
    if not tril:
        return Standardization(loc, (var + jitter).sqrt(), False)
    factor, info = torch.linalg.cholesky_ex(cov + torch.diag_embed(jitter))
    for ridge in CHOLESKY_RETRIES:
        if not info:
            break
        extra = relative_jitter(var.mean(), ridge, finfo.tiny)
        factor, info = torch.linalg.cholesky_ex(cov + torch.diag_embed(jitter + extra))
    if info:
        raise FloatingPointError(
            f"ScoreEstimator: the draws' covariance is not positive definite even with a "
            f"ridge of {CHOLESKY_RETRIES[-1]} of its mean variance (the sampler has "
            "collapsed onto a lower-dimensional set)"
        )
    return Standardization(loc, factor, True)


def log_normalizer(
    net: ScoreNet,
    num_samples: int,
    context: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Importance-sampling estimate of the log-normaliser of a gradient-form
    :class:`ScoreNet`, per context row:

    .. math::

        \log Z(c) = \log \int e^{-F(y, 0, c)}\,dy
          \approx \log \frac{1}{K} \sum_{k=1}^K \frac{e^{-F(y_k, 0, c)}}{N(y_k; 0, I)},
        \qquad y_k \sim N(0, I_d),

    computed with log-sum-exp. The proposal is the network's own Gaussian base term: with
    :math:`F = \|y\|^2/2 + h(y, 0, c)` the log-weights are
    :math:`\tfrac{d}{2}\log 2\pi - h(y_k, 0, c)`, all equal for an untrained network, and
    whitened inputs keep the fitted density close to :math:`N(0, I)`, so the weights stay
    tame. The estimate is consistent; its error is :math:`O_p(K^{-1/2})` and its bias
    :math:`-\mathrm{Var}(w)/(2 K Z^2) + O(K^{-2})` (Jensen), with :math:`w` the weights.

    Args:
        net: a :class:`ScoreNet` with ``parameterization="gradient"`` (only ``net.dim``
            and ``net.energy`` are used).
        num_samples: :math:`K`.
        context: ``(m, k)`` context rows, or ``None`` for a network without a context.
        generator: optional ``torch.Generator`` for the proposal draws.

    Returns:
        :math:`\log Z`, shape ``(m,)`` with a context, else ``()``.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> net = ScoreNet(3, hidden=(8,), parameterization="gradient")
        >>> log_z = log_normalizer(net, 100)  # untrained: F = |y|^2 / 2, Z = (2 pi)^(3/2)
        >>> bool(torch.isclose(log_z, torch.tensor(1.5 * math.log(2 * math.pi))))
        True
    """
    if not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"log_normalizer: expected num_samples >= 1, got {num_samples!r}")
    rows = () if context is None else context.shape[:-1]
    ref = context if context is not None else next(net.parameters())
    eps = torch.randn(
        (num_samples, *rows, net.dim), dtype=ref.dtype, device=ref.device, generator=generator
    )
    sigma = torch.zeros(eps.shape[:-1] + (1,), dtype=eps.dtype, device=eps.device)
    log_w = -net.energy(eps, sigma, context) + 0.5 * eps.pow(2).sum(-1)
    log_w = log_w + 0.5 * net.dim * math.log(2 * math.pi)
    return torch.logsumexp(log_w, 0) - math.log(num_samples)


class ScoreEstimator(nn.Module):
    r"""Learns :math:`\nabla_z \log q(z \mid c)` from samples of :math:`q` with an AR-DAE.

    Samples are whitened, :math:`y = L^{-1}(z - \mu)`, the :class:`ScoreNet` is trained on
    :math:`y` with :func:`~pyro_ardae.loss.ardae_loss`, and the score in :math:`z` is
    :math:`L^{-\top} f(y; 0, c)`. The statistics :math:`\mu, L` come from the same fresh
    samples each step is trained on, so they follow a sampler that moves while it is trained
    and the network always works at unit scale (a Gaussian :math:`q` is exactly its
    untrained output; the network learns the non-Gaussian rest). Two modes:

    * **global** (no context): ``samples`` of shape ``(n, d)``, full covariance :math:`L`;
    * **per context**: ``samples`` of shape ``(n, m, d)``, ``n`` draws for each of ``m``
      context rows ``(m, k)``, diagonal :math:`L` per row. This is the paper's adaptive
      noise scale (``y = S (z - z_0(c))``, :math:`\sigma`-scale
      :math:`0.1 \cdot \overline{\mathrm{sd}}(y)`) with the scale put on the input instead
      of on :math:`\sigma`.

    Args:
        dim: dimension of :math:`z`.
        context_dim: dimension of the context, 0 for none.
        config: the :class:`ScoreNet` (:class:`~pyro_ardae.ScoreConfig`: widths,
            ``"vector"`` or ``"gradient"`` output, the latter also giving :meth:`log_prob`,
            noise scale, Fourier features; SiLU activations).
        optimizer: ``params -> torch.optim.Optimizer``; Adam with ``lr=1e-3`` by default.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> est = ScoreEstimator(2, config=ScoreConfig(hidden=(32, 32)))
        >>> samples = torch.randn(2000, 2) * torch.tensor([1.0, 3.0])
        >>> losses = est.fit(samples, num_steps=200)
        >>> exact = torch.tensor([[-1.0, -1.0 / 3.0]])
        >>> torch.allclose(est.score(torch.tensor([[1.0, 3.0]])), exact, atol=0.1)
        True
    """

    def __init__(
        self,
        dim: int,
        context_dim: int = 0,
        config: ScoreConfig = ScoreConfig(),
        optimizer: OptimizerFn | None = None,
    ) -> None:
        super().__init__()
        config = score_config("ScoreEstimator", config, "config")
        self.net = ScoreNet(
            dim,
            context_dim,
            config.hidden,
            config.parameterization,
            config.delta,
            fourier_features=config.fourier_features,
            fourier_scale=config.fourier_scale,
        )
        self.stats: Standardization | None = None
        optimizer = optimizer or functools.partial(torch.optim.Adam, lr=1e-3)
        self.optimizer = optimizer(self.net.parameters())

    def get_extra_state(self) -> dict[str, object]:
        """What the next step reads besides the network's weights, saved by ``state_dict``:
        the optimiser's state and the whitening map."""
        stats = None if self.stats is None else self.stats._asdict()
        return {"optimizer": self.optimizer.state_dict(), "stats": stats}

    def set_extra_state(self, state: dict[str, object]) -> None:
        """Restore what :meth:`get_extra_state` saved (``load_state_dict`` calls it)."""
        self.optimizer.load_state_dict(state["optimizer"])
        stats = state["stats"]
        self.stats = None if stats is None else Standardization(**stats)

    @property
    def dim(self) -> int:
        return self.net.dim

    @property
    def context_dim(self) -> int:
        return self.net.context_dim

    def _check(self, z: Tensor, context: Tensor | None, min_dims: int) -> None:
        check_samples(self.dim, self.context_dim, z, context, min_dims, (Tensor,))

    @torch.no_grad()
    def set_stats(
        self, samples: Tensor, context: Tensor | None = None, loc: Tensor | None = None
    ) -> Standardization:
        """Set the whitening map from ``samples`` (``(n, d)``, or ``(n, m, d)`` per context),
        centred at ``loc`` (``(d,)`` or ``(m, d)``) if given, else at their mean."""
        self._check(samples, context, 3 if self.context_dim else 2)
        if not self.context_dim:
            check_global_samples(self.dim, samples)
        tril = not self.context_dim
        self.stats = standardization(*moments(samples, tril, loc), tril)
        return self.stats

    def _whiten(self, z: Tensor) -> Tensor:
        if self.stats is None:
            raise RuntimeError("ScoreEstimator: no statistics yet; call update() or fit() first")
        return self.stats.whiten(z)

    def step(self, samples: Tensor, context: Tensor | None = None) -> Tensor:
        """One optimiser step of the AR-DAE loss on ``samples`` with the current statistics.

        Returns the loss (a detached scalar tensor: no device synchronisation).
        """
        return self._train(self._whiten(samples.detach()), context)

    def _train(self, y: Tensor, context: Tensor | None) -> Tensor:
        if context is not None:
            context = context.expand(y.shape[:-1] + context.shape[-1:]).reshape(
                -1, context.shape[-1]
            )
        y = y.reshape(-1, self.dim)
        u, sigma = sample_noise(y, self.net.delta)
        loss = ardae_loss(self.net, y, u, sigma, context)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def update(
        self,
        samples: Tensor,
        context: Tensor | None = None,
        loc: Tensor | None = None,
    ) -> Tensor:
        r"""One training step on fresh ``samples``, each whitened by statistics independent
        of it.

        The samples are split in halves :math:`A, B`, each half is whitened with the other
        half's statistics (:math:`\mu, \Sigma` in the global mode, per-row means and
        variances per context; about the known centre ``loc`` if given), and :math:`A`'s are
        kept for the queries. So every input of the network, in training and at a query (a
        draw independent of the fresh ones), is whitened by statistics independent of it.
        Whitening samples with their own mean and variance would not be: with ``n`` draws
        per context their whitened second moment is exactly :math:`(n - 3)/n` per
        coordinate, the network learns the score of that narrower law, and the entropy
        gradient comes out too strong by :math:`n/(n - 3)` (a 23% excess at 16 draws per
        context, which made amortised encoders collapse to the prior).
        """
        self._check(samples, context, 3 if self.context_dim else 2)
        samples = samples.detach()
        check_halves(samples.shape[0], 1 if self.context_dim else self.dim)
        half = samples.shape[0] // 2
        a, b = samples[:half], samples[half : 2 * half]
        loc = None if loc is None else loc.detach()
        stats_b = self.set_stats(b, context, loc)
        y_a = stats_b.whiten(a)
        stats_a = self.set_stats(a, context, loc)
        y_b = stats_a.whiten(b)
        return self._train(torch.cat([y_a, y_b]), context)

    def fit(
        self,
        samples: Tensor,
        num_steps: int,
        batch_size: int = 256,
        context: Tensor | None = None,
    ) -> list[float]:
        """Fit the score of a fixed sample set by minibatch steps; returns the losses."""
        self.set_stats(samples, context)
        n = samples.shape[0]
        losses = []
        for _ in range(num_steps):
            idx = torch.randint(n, (min(batch_size, n),), device=samples.device)
            losses.append(self.step(samples[idx], context).item())
        return losses

    def _query(self, z: Tensor, context: Tensor | None) -> tuple[Tensor, Tensor]:
        self._check(z, context, 2 if self.context_dim else 1)
        y = self._whiten(z.detach())
        return y, torch.zeros(y.shape[:-1] + (1,), dtype=y.dtype, device=y.device)

    @torch.no_grad()
    def score(self, z: Tensor, context: Tensor | None = None) -> Tensor:
        r"""The estimate of :math:`\nabla_z \log q(z \mid c)`, shaped like ``z``.

        ``z`` has shape ``(..., d)`` (global) or ``(..., m, d)`` (per context). No gradient
        flows to the network or to ``z``: this is the ``stop_grad(s(z))`` of the surrogate.
        """
        y, sigma = self._query(z, context)
        f = self.net(y, sigma, context).detach()
        return self.stats.pull_back(f)

    @torch.no_grad()
    def log_prob(self, z: Tensor, context: Tensor | None = None) -> Tensor:
        r""":math:`\log q(z \mid c)` up to an additive constant (per context),
        :math:`-F(y, 0, c) - \log|\det L|`; needs ``parameterization="gradient"``."""
        y, sigma = self._query(z, context)
        return -self.net.energy(y, sigma, context) - self.stats.log_abs_det()

    @torch.no_grad()
    def normalized_log_prob(
        self,
        z: Tensor,
        context: Tensor | None = None,
        num_samples: int = 1024,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        r""":math:`\log q(z \mid c) = -F(y, 0, c) - \log Z(c) - \log|\det L|`, with the
        normaliser estimated by :func:`log_normalizer` from ``num_samples`` draws (per
        context row); needs ``parameterization="gradient"``. The whitening map is the
        current one (:meth:`set_stats` it from fresh draws of :math:`q` at these contexts)."""
        self._whiten(z)  # refuses a query before any statistics
        log_z = log_normalizer(self.net, num_samples, context, generator)
        return self.log_prob(z, context) - log_z

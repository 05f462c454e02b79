"""The AR-DAE training loss, a pure function of the network, the data and the noise."""

from __future__ import annotations

import torch
from torch import Tensor

from .score import ScoreNet


def ardae_loss(
    net: ScoreNet,
    y: Tensor,
    u: Tensor,
    sigma: Tensor,
    context: Tensor | None = None,
) -> Tensor:
    r"""Monte Carlo estimate of the AR-DAE objective (Lim et al., 2020, eq. 2)

    .. math::

        \mathcal{L}(f) = \mathbb{E}_{y \sim q,\, u \sim N(0, I),\, \sigma \sim N(0, \delta^2)}
            \big\| u + \sigma f(y + \sigma u; \sigma) \big\|^2 .

    The residual form and the rescaling by :math:`1/\sigma` make
    :math:`f^*(x; \sigma) = \nabla_x \log (q * N(0, \sigma^2 I))(x)`, which tends to the
    score :math:`\nabla \log q` as :math:`\sigma \to 0`; :math:`\sigma` is signed so that the
    network interpolates through 0, where it is queried.

    Every row is used with both :math:`u` and :math:`-u` (antithetic pairs; the expectation is
    unchanged). Expanding the square, the estimate holds the term
    :math:`2 \sigma u^\top f(y; \sigma)`, which is zero in expectation but of order
    :math:`\sigma` where the part that identifies the score is of order :math:`\sigma^2`;
    its gradient noise grows with the dimension and, at small :math:`\sigma`, drowns the
    non-Gaussian part of the score in five dimensions and more. The pair cancels it, leaving
    noise of order :math:`\sigma^2`: the same cure as the control variate of Wang et al.
    (2020) for denoising score matching.

    Args:
        net: the score network.
        y: samples of :math:`q`, shape ``(n, d)``.
        u: standard normal noise, shape ``(n, d)``.
        sigma: noise levels, shape ``(n, 1)``.
        context: optional context, shape ``(n, k)``.

    Returns:
        The mean over the ``n`` rows and both signs of the squared residual (a scalar).

    References:
        Z. Wang, S. Cheng, Y. Li, J. Zhu, B. Zhang, "A Wasserstein Minimum Velocity Approach
        to Learning Unnormalized Models", AISTATS 2020, arXiv:2002.07501.
    """
    sigma = sigma.expand(y.shape[0], 1).repeat(2, 1)
    y, u = torch.cat([y, y]), torch.cat([u, -u])
    context = None if context is None else torch.cat([context, context])
    f = net(y + sigma * u, sigma, context, create_graph=True)
    return (u + sigma * f).pow(2).sum(-1).mean()


def sample_noise(y: Tensor, delta: float, generator: torch.Generator | None = None):
    r"""Draw :math:`u \sim N(0, I)` shaped like ``y`` and :math:`\sigma \sim N(0, \delta^2)`
    shaped ``y.shape[:-1] + (1,)``."""
    u = torch.randn(y.shape, dtype=y.dtype, device=y.device, generator=generator)
    sigma = delta * torch.randn(
        y.shape[:-1] + (1,), dtype=y.dtype, device=y.device, generator=generator
    )
    return u, sigma

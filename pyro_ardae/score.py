"""The AR-DAE score network :math:`f(y; \\sigma, c)`."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ._common import (
    PARAMETERIZATIONS,
    Parameterization,
    check_score_net_args,
)

__all__ = ["PARAMETERIZATIONS", "Parameterization", "ScoreNet"]


def mlp(
    in_dim: int, hidden: Sequence[int], out_dim: int, activation: type[nn.Module]
) -> nn.Sequential:
    """A plain MLP ``in_dim -> hidden... -> out_dim`` whose last layer starts at zero."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), activation()]
        in_dim = width
    last = nn.Linear(in_dim, out_dim)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(*layers, last)


class ScoreNet(nn.Module):
    r"""Amortised residual DAE :math:`f(y; \sigma, c) \approx \nabla_y \log q(y \mid c)`.

    One network for every use: an MLP of ``[y, sigma / delta, c]`` (the context ``c`` is
    optional). Two parameterisations (Lim et al., 2020, Sec. 4):

    * ``"vector"``: :math:`f = -\frac{y}{1 + \sigma^2} + h(y, \sigma, c)` with
      :math:`h: \mathbb{R}^{d + 1 + k} \to \mathbb{R}^d`;
    * ``"gradient"``: :math:`f = -\nabla_y F` with
      :math:`F = \frac{\|y\|^2}{2 (1 + \sigma^2)} + h(y, \sigma, c)` and scalar :math:`h`,
      so that :math:`-F(y, 0, c)` is :math:`\log q(y \mid c)` up to a constant.

    With ``fourier_features = m > 0`` the MLP also sees :math:`\sin(B^\top y)` and
    :math:`\cos(B^\top y)` for a fixed random :math:`B \in \mathbb{R}^{d \times m}`,
    :math:`B_{ij} \sim N(0, \text{fourier\_scale}^2)` (Tancik et al., 2020). Plain MLPs learn
    high spatial frequencies slowly; a :math:`q` concentrated on a thin curved set (the 2-D
    energy targets) has a score that changes sign across it, and an under-fitted score there
    under-reports the entropy gradient across the set, so the sampler thins further.

    The inputs ``y`` are meant to be standardised (zero mean, unit variance under
    :math:`q`), see :class:`~pyro_ardae.estimator.ScoreEstimator`. The fixed Gaussian
    term is then the exact optimum :math:`f^*(y; \sigma)` for a standard normal
    :math:`q`, and since the last layer of :math:`h` starts at zero an untrained network
    already returns the score of the moment-matched Gaussian; :math:`h` learns the rest.

    Args:
        dim: dimension :math:`d` of :math:`y`.
        context_dim: dimension :math:`k` of the context, 0 for none.
        hidden: widths of the hidden layers.
        parameterization: ``"vector"`` or ``"gradient"``.
        delta: scale of the training noise levels; ``sigma`` is fed as ``sigma / delta``.
        activation: hidden activation; smooth by default since ``"gradient"`` needs
            second derivatives.
        fourier_features: number :math:`m` of random Fourier features of ``y``, 0 for none.
        fourier_scale: sd of their frequencies (whitened units: 1 is the scale of :math:`q`).

    References:
        J. H. Lim, A. Courville, C. Pal, C.-W. Huang, "AR-DAE: Towards Unbiased Neural
        Entropy Gradient Estimation", ICML 2020, arXiv:2006.05164.

        M. Tancik et al., "Fourier Features Let Networks Learn High Frequency Functions in
        Low Dimensional Domains", NeurIPS 2020, arXiv:2006.10739.

    Example:
        >>> net = ScoreNet(3, hidden=(32, 32))
        >>> y = torch.randn(5, 3)
        >>> net(y, torch.zeros(5, 1)).shape
        torch.Size([5, 3])
        >>> torch.allclose(net(y, torch.zeros(5, 1)), -y)  # untrained: standard normal
        True
    """

    def __init__(
        self,
        dim: int,
        context_dim: int = 0,
        hidden: Sequence[int] = (128, 128, 128),
        parameterization: Parameterization = "vector",
        delta: float = 0.1,
        activation: type[nn.Module] = nn.SiLU,
        fourier_features: int = 0,
        fourier_scale: float = 3.0,
    ) -> None:
        super().__init__()
        check_score_net_args(
            dim, context_dim, parameterization, delta, fourier_features, fourier_scale
        )
        self.dim = dim
        self.context_dim = context_dim
        self.parameterization = parameterization
        self.delta = float(delta)
        frequencies = None
        if fourier_features:  # a fixed random map: a buffer, saved and moved, never trained
            frequencies = fourier_scale * torch.randn(dim, fourier_features)
        self.register_buffer("frequencies", frequencies)
        out_dim = dim if parameterization == "vector" else 1
        self.h = mlp(dim + 2 * fourier_features + 1 + context_dim, hidden, out_dim, activation)

    def _h(self, y: Tensor, sigma: Tensor, context: Tensor | None) -> Tensor:
        parts = [y]
        if self.frequencies is not None:
            phase = y @ self.frequencies
            parts += [phase.sin(), phase.cos()]
        parts.append(sigma.expand(y.shape[:-1] + (1,)) / self.delta)
        if self.context_dim:
            if context is None:
                raise ValueError(
                    f"ScoreNet: this network takes a context of size {self.context_dim}, got None"
                )
            parts.append(context.expand(y.shape[:-1] + context.shape[-1:]))
        elif context is not None:
            raise ValueError("ScoreNet: this network was built without a context, got one")
        return self.h(torch.cat(parts, dim=-1))

    def energy(self, y: Tensor, sigma: Tensor, context: Tensor | None = None) -> Tensor:
        """The scalar :math:`F(y, \\sigma, c)` of the ``"gradient"`` form, ``y.shape[:-1]``."""
        if self.parameterization != "gradient":
            raise ValueError(
                "ScoreNet.energy needs parameterization='gradient', "
                f"this network is {self.parameterization!r}"
            )
        quad = 0.5 * y.pow(2).sum(-1) / (1 + sigma.squeeze(-1) ** 2)
        return quad + self._h(y, sigma, context).squeeze(-1)

    def forward(
        self, y: Tensor, sigma: Tensor, context: Tensor | None = None, create_graph: bool = False
    ) -> Tensor:
        r"""The score estimate :math:`f(y; \sigma, c)`, same shape as ``y``.

        ``sigma`` has shape ``y.shape[:-1] + (1,)`` (or broadcasts to it). With the
        ``"gradient"`` form, ``create_graph=True`` keeps the graph of :math:`\nabla_y F`
        so that a loss on the output can be differentiated (training).
        """
        if self.parameterization == "vector":
            return self._h(y, sigma, context) - y / (1 + sigma**2)
        with torch.enable_grad():
            if not y.requires_grad:
                y = y.detach().requires_grad_(True)
            energy = self.energy(y, sigma, context)
            (grad,) = torch.autograd.grad(energy.sum(), y, create_graph=create_graph)
        return -grad

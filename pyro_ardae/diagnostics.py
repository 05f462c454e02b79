"""Sample-based diagnostics of fitted posteriors (an implicit guide has no log q)."""

from __future__ import annotations

import torch
from torch import Tensor


def energy_distance(x: Tensor, y: Tensor, standardize: bool = True) -> float:
    r"""Squared energy distance between two samples (Székely & Rizzo, 2013),

    .. math::

        D^2 = 2\,\mathbb{E}\|X - Y\| - \mathbb{E}\|X - X'\| - \mathbb{E}\|Y - Y'\|,

    with U-statistics for the within-sample terms, so it is unbiased and about 0 (it can be
    slightly negative) when both samples come from one law. With ``standardize`` every
    coordinate is divided by the sd of the reference ``y``, so that the scale of each
    parameter does not decide the value.

    Args:
        x: draws ``(n, d)``, e.g. of a guide.
        y: reference draws ``(m, d)``, e.g. exact or NUTS.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> a, b = torch.randn(500, 2), torch.randn(500, 2)
        >>> abs(energy_distance(a, b)) < 0.01, energy_distance(a + 1.0, b) > 0.5
        (True, True)
    """
    for name, t in (("x", x), ("y", y)):
        if not isinstance(t, Tensor) or t.dim() != 2 or t.shape[0] < 2:
            got = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
            raise ValueError(f"energy_distance: expected {name} of shape (n >= 2, d), got {got}")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"energy_distance: x has {x.shape[1]} coordinates, y has {y.shape[1]}")
    x, y = x.double(), y.double()
    if standardize:
        scale = y.std(0)
        x, y = x / scale, y / scale
    n, m = x.shape[0], y.shape[0]
    xy = torch.cdist(x, y).mean()
    xx = torch.cdist(x, x).sum() / (n * (n - 1))
    yy = torch.cdist(y, y).sum() / (m * (m - 1))
    return float(2 * xy - xx - yy)

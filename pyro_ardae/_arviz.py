"""Backend-free helpers of the diagnostics, shared by ``pyro_ardae`` and ``numpyro_ardae``.

Everything that depends on the ArviZ version is in :func:`inference_data`: ArviZ 0.x
(Python 3.11 here) takes the groups as keyword arguments and returns ``InferenceData``;
ArviZ 1.x (Python >= 3.12) takes one ``{group: {var: array}}`` mapping and returns a
``DataTree``. Both are used through the functions they share (``summary``, ``ess``, ``rhat``,
``loo``, ``waic``, ``compare``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def arviz_major() -> int:
    import arviz

    return int(arviz.__version__.split(".")[0])


def inference_data(groups: Mapping[str, Mapping[str, np.ndarray]], coords=None, dims=None):
    """An ArviZ data object from ``{group: {var: array}}`` (posterior-like groups shaped
    ``(chain, draw, ...)``, ``observed_data`` without those dims)."""
    import arviz

    groups = {g: dict(v) for g, v in groups.items() if v}
    if arviz_major() >= 1:
        return arviz.from_dict(groups, coords=coords, dims=dims)
    return arviz.from_dict(**groups, coords=coords, dims=dims)


def posterior_group(data):
    """The ``posterior`` group of ArviZ data (``InferenceData`` or ``DataTree``), else None."""
    if hasattr(data, "children"):  # DataTree (ArviZ 1.x)
        return data["posterior"] if "posterior" in data.children else None
    return getattr(data, "posterior", None)


def posterior_draws(samples, to_numpy=np.asarray) -> dict[str, np.ndarray]:
    """``{name: (n, ...)}`` from a dict of arrays or ArviZ data (chains flattened)."""
    post = posterior_group(samples)
    if post is None:
        return {k: to_numpy(v) for k, v in samples.items()}
    out = {}
    for k in post.data_vars:
        v = np.asarray(post[k])
        out[k] = v.reshape((-1,) + v.shape[2:])
    return out


def chains_inference_data(groups, observed, num_chains: int, coords=None, dims=None):
    """ArviZ data from per-draw values ``{group: {var: (num_samples, ...) or list}}``
    split into ``num_chains`` chains, plus ``observed_data``."""
    arrays = {
        g: {k: split_chains(np.asarray(v), num_chains) for k, v in d.items()}
        for g, d in groups.items()
    }
    arrays["observed_data"] = observed
    return inference_data(arrays, coords, dims)


def standardised_ksd(unconstrained, scores, names) -> float:
    """:func:`imq_stein_discrepancy` of draws and scores ``{site: (n, ...)}``, every
    coordinate scaled by its sd (and its score by the inverse)."""
    x, _ = flat_draws(unconstrained, names)
    s, _ = flat_draws(scores, names)
    sd = x.std(0, ddof=1)
    return imq_stein_discrepancy(x / sd, s * sd)


def split_chains(draws: np.ndarray, num_chains: int) -> np.ndarray:
    """``(num_samples, ...)`` independent draws as ``(num_chains, draws, ...)``."""
    n = draws.shape[0]
    if n % num_chains:
        raise ValueError(
            f"to_inference_data: num_samples={n} is not a multiple of num_chains={num_chains}"
        )
    return draws.reshape((num_chains, n // num_chains) + draws.shape[1:])


def imq_stein_discrepancy(x: np.ndarray, score: np.ndarray, c: float = 1.0) -> float:
    r"""Kernel Stein discrepancy of draws ``x`` ``(n, d)`` whose target has score
    ``score`` ``(n, d)`` = :math:`\nabla \log p(x_i)`, with the inverse multiquadric kernel
    :math:`k(x, y) = (c^2 + \|x - y\|^2)^{-1/2}` (Gorham & Mackey, 2017), as the square root
    of the V-statistic
    :math:`\frac{1}{n^2}\sum_{ij} k_p(x_i, x_j)`,

    .. math::

        k_p(x, y) = s(x)^\top s(y) k + s(x)^\top \nabla_y k + s(y)^\top \nabla_x k
            + \operatorname{tr} \nabla_x \nabla_y k .

    It is 0 only for draws of :math:`p` in the limit; for ``n`` exact draws it is
    :math:`O(n^{-1/2})`, so read it against the value for exact (or NUTS) draws of the same
    size, not against 0.
    """
    x, s = np.asarray(x, np.float64), np.asarray(score, np.float64)
    n, d = x.shape
    beta = -0.5
    r = x[:, None, :] - x[None, :, :]
    r2 = np.sum(r**2, -1)
    q = c**2 + r2
    k = q**beta
    dk = 2 * beta * q ** (beta - 1)  # grad_x k = dk * r, grad_y k = -dk * r
    ss = s @ s.T
    sx_r = np.einsum("id,ijd->ij", s, r)  # s(x_i) . (x_i - x_j)
    sy_r = np.einsum("jd,ijd->ij", s, r)  # s(x_j) . (x_i - x_j)
    trace = -2 * beta * d * q ** (beta - 1) - 4 * beta * (beta - 1) * q ** (beta - 2) * r2
    kp = ss * k - dk * sx_r + dk * sy_r + trace
    return float(np.sqrt(max(kp.mean(), 0.0)))


def flat_draws(posterior: Mapping[str, np.ndarray], names) -> tuple[np.ndarray, list[str]]:
    """``(n, p)`` matrix of all coordinates of ``names`` from ``{name: (n, ...)}`` draws,
    and a label per column (``"theta[3]"``)."""
    cols, labels = [], []
    for name in names:
        v = np.asarray(posterior[name])
        v = v.reshape(v.shape[0], -1)
        cols.append(v)
        labels += [name] if v.shape[1] == 1 else [f"{name}[{i}]" for i in range(v.shape[1])]
    return np.concatenate(cols, 1), labels


def compare_to_reference(idata, reference: Mapping[str, np.ndarray], var_names=None):
    """Per-coordinate standardised mean error, sd ratio and the multivariate energy distance
    between the posterior of ``idata`` and ``reference`` draws ``{name: (n, ...)}``
    (e.g. NUTS), as a ``pandas.DataFrame`` (the energy distance in every row's
    ``energy_distance`` column: one number for all parameters, standardised by the
    reference's sd per coordinate)."""
    import pandas as pd

    names = list(var_names or reference)
    if posterior_group(idata) is None:
        raise ValueError("compare_to_reference: expected ArviZ data with a posterior group")
    guide = posterior_draws(idata)
    for name in names:
        if name not in guide:
            raise ValueError(
                f"compare_to_reference: {name!r} is in the reference but not in the posterior"
            )
    x, labels = flat_draws(guide, names)
    y, _ = flat_draws(reference, names)
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"compare_to_reference: the posterior has {x.shape[1]} coordinates of {names}, "
            f"the reference {y.shape[1]}"
        )
    sd = y.std(0, ddof=1)
    edist = energy_distance_np(x, y)
    return pd.DataFrame(
        {
            "mean": x.mean(0),
            "ref_mean": y.mean(0),
            "std_mean_error": (x.mean(0) - y.mean(0)) / sd,
            "sd": x.std(0, ddof=1),
            "ref_sd": sd,
            "sd_ratio": x.std(0, ddof=1) / sd,
            "energy_distance": edist,
        },
        index=labels,
    )


def energy_distance_np(x: np.ndarray, y: np.ndarray, standardize: bool = True) -> float:
    r"""Squared energy distance between two samples (Székely & Rizzo, 2013),

    .. math::

        D^2 = 2\,\mathbb{E}\|X - Y\| - \mathbb{E}\|X - X'\| - \mathbb{E}\|Y - Y'\|,

    with U-statistics for the within-sample terms, so that it is unbiased and about 0 (it
    can be slightly negative) when both samples come from one law. With ``standardize``
    every coordinate is divided by the sd of the reference ``y``.
    """
    from scipy.spatial.distance import cdist

    for name, t in (("x", x), ("y", y)):
        shape = getattr(t, "shape", None)
        if shape is None or len(shape) != 2 or shape[0] < 2:
            got = tuple(shape) if shape is not None else type(t).__name__
            raise ValueError(f"energy_distance: expected {name} of shape (n >= 2, d), got {got}")
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"energy_distance: x has {x.shape[1]} coordinates, y has {y.shape[1]}")
    if standardize:
        scale = y.std(0, ddof=1)
        x, y = x / scale, y / scale
    n, m = len(x), len(y)
    xx = cdist(x, x).sum() / (n * (n - 1))
    yy = cdist(y, y).sum() / (m * (m - 1))
    return float(2 * cdist(x, y).mean() - xx - yy)

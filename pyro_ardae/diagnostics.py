"""Diagnostics of fitted posteriors: ArviZ export and checks that need no log q.

An implicit guide has no density, so importance-sampling diagnostics (PSIS k-hat, Pyro's
``psis_diagnostic``) do not apply. What does:

* :func:`stein_discrepancy`: how far the guide's draws are from the model's posterior,
  measured with the model's own :math:`\\nabla \\log p` (no reference draws needed). It is
  :math:`O(n^{-1/2})` even for exact draws, so compare it with its value for exact or NUTS
  draws of the same size on a problem you can solve, or between fits of the same model;
  distrust a fit whose value is several times that reference.
* :func:`compare_to_reference`: per-parameter standardised errors of the mean and the sd
  and an energy distance against reference draws (NUTS, exact).
* :func:`to_inference_data`: the ArviZ workflow (``az.summary``, ``az.loo``, plots).
* :func:`importance_log_likelihood`: :math:`\\log p(x)` by importance sampling from a
  Gaussian fitted to draws of the guide (how the paper evaluates an implicit VAE encoder).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch
from pyro import poutine
from pyro.distributions import MultivariateNormal
from pyro.infer.mcmc.util import initialize_model
from pyro.poutine.util import prune_subsample_sites
from torch import Tensor

from ._arviz import (
    chains_inference_data,
    compare_to_reference,
    energy_distance_np,
    posterior_draws,
    standardised_ksd,
)
from ._common import check_importance_args, relative_jitter

__all__ = [
    "compare_to_reference",
    "energy_distance",
    "importance_log_likelihood",
    "stein_discrepancy",
    "to_inference_data",
]


def _numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)


def energy_distance(x: Tensor, y: Tensor, standardize: bool = True) -> float:
    r"""Squared energy distance :math:`2\mathbb{E}\|X - Y\| - \mathbb{E}\|X - X'\| -
    \mathbb{E}\|Y - Y'\|` between draws ``x`` ``(n, d)`` and reference draws ``y`` ``(m, d)``
    (U-statistics, so about 0 for two samples of one law; Székely & Rizzo, 2013), each
    coordinate divided by the reference's sd when ``standardize``.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> a, b = torch.randn(500, 2), torch.randn(500, 2)
        >>> abs(energy_distance(a, b)) < 0.01, energy_distance(a + 1.0, b) > 0.5
        (True, True)
    """
    return energy_distance_np(_numpy(x), _numpy(y), standardize)


def _traces(model: Callable, guide: Callable, args, kwargs):
    with torch.no_grad(), poutine.block():
        guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
        model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(
            *args, **kwargs
        )
        predictive = poutine.trace(
            poutine.uncondition(poutine.replay(model, trace=guide_trace))
        ).get_trace(*args, **kwargs)
    model_trace = prune_subsample_sites(model_trace)
    model_trace.compute_log_prob()
    return model_trace, predictive


def to_inference_data(
    model: Callable,
    guide: Callable,
    *args,
    num_samples: int = 1000,
    num_chains: int = 4,
    coords: Mapping | None = None,
    dims: Mapping | None = None,
    **kwargs,
):
    """Draws of a fitted guide as ArviZ data (``InferenceData`` with ArviZ 0.x, a
    ``DataTree`` with 1.x).

    Groups: ``posterior`` (the model's latent sites), ``log_likelihood`` (the log-density
    of each observation, per element of its plates, for ``az.loo``/``az.waic``/
    ``az.compare``), ``posterior_predictive`` (the observed sites drawn anew) and
    ``observed_data``. The ``num_samples`` draws are independent; they are split into
    ``num_chains`` chains so that ``az.summary``, ``az.ess`` and ``az.rhat`` work (R-hat is
    1 and the ESS is about ``num_samples`` for independent draws: they check the export, not
    the fit). ``coords``/``dims`` name the dims of plated sites as in ``az.from_dict``.
    """
    if not isinstance(num_samples, int) or num_samples < num_chains or num_chains < 1:
        raise ValueError(
            f"to_inference_data: expected num_samples >= num_chains >= 1, got "
            f"num_samples={num_samples!r}, num_chains={num_chains!r}"
        )
    groups: dict[str, dict[str, list]] = {
        "posterior": {},
        "log_likelihood": {},
        "posterior_predictive": {},
    }
    observed: dict[str, np.ndarray] = {}
    for _ in range(num_samples):
        model_trace, predictive = _traces(model, guide, args, kwargs)
        for name, site in model_trace.nodes.items():
            if site["type"] != "sample":
                continue
            if site["is_observed"]:
                observed[name] = _numpy(site["value"])
                groups["log_likelihood"].setdefault(name, []).append(_numpy(site["log_prob"]))
                pred = predictive.nodes[name]["value"]
                groups["posterior_predictive"].setdefault(name, []).append(_numpy(pred))
            else:
                groups["posterior"].setdefault(name, []).append(_numpy(site["value"]))
    return chains_inference_data(groups, observed, num_chains, coords, dims)


def stein_discrepancy(model: Callable, samples, *args, **kwargs) -> float:
    r"""Kernel Stein discrepancy (IMQ kernel) of posterior ``samples`` under ``model``, in
    the model's unconstrained space with every coordinate scaled by its sd (so it does not
    depend on units). ``samples``: ``{site: (n, ...)}`` draws of every latent site, or ArviZ
    data from :func:`to_inference_data`. Needs no log q and no reference draws; see the
    module's docstring for how to read it.
    """
    draws = posterior_draws(samples, _numpy)
    _, potential_fn, transforms, trace = initialize_model(model, args, kwargs)
    names = [n for n, s in prune_subsample_sites(trace).iter_stochastic_nodes()]
    missing = set(names) - set(draws)
    if missing:
        raise ValueError(f"stein_discrepancy: no draws for the latent sites {sorted(missing)}")
    n = len(next(iter(draws.values())))
    xs, scores = [], []
    for i in range(n):
        u = {
            name: transforms[name](torch.as_tensor(draws[name][i], dtype=torch.get_default_dtype()))
            .detach()
            .requires_grad_(True)
            for name in names
        }
        grads = torch.autograd.grad(potential_fn(u), [u[k] for k in names])
        xs.append({k: _numpy(u[k]) for k in names})
        scores.append({k: -_numpy(g) for k, g in zip(names, grads, strict=True)})
    return standardised_ksd(
        {k: np.stack([d[k] for d in xs]) for k in names},
        {k: np.stack([d[k] for d in scores]) for k in names},
        names,
    )


def importance_log_likelihood(
    log_joint: Callable[[Tensor], Tensor],
    draws: Tensor,
    num_samples: int | None = None,
    jitter: float = 1e-5,
) -> Tensor:
    r"""Importance-sampling estimate of :math:`\log p(x_b)` for each row ``b``, with a
    full-covariance Gaussian proposal fitted to draws of an implicit :math:`q(z \mid x_b)`.

    An implicit guide has no density, so it cannot be the proposal itself; a Gaussian
    :math:`r_b = N(\hat\mu_b, \hat\Sigma_b + \epsilon \bar s_b^2 I)` with the mean and
    covariance of the guide's draws can (Lim et al., 2020, Sec. 6.2). With
    :math:`z_{jb} \sim r_b`,

    .. math::

        \log \hat p(x_b) = \log \frac{1}{K} \sum_{j=1}^{K}
            \frac{p(x_b, z_{jb})}{r_b(z_{jb})},

    a stochastic lower bound on :math:`\log p(x_b)` in expectation (Burda et al., 2016),
    tight as :math:`K \to \infty`. The relative jitter :math:`\epsilon` (times the mean
    variance :math:`\bar s_b^2`) keeps the Cholesky factor finite for a collapsed guide.

    Args:
        log_joint: ``z -> log p(x, z)`` for ``z`` of shape ``(K, B, d)``, returning ``(K, B)``.
        draws: draws of the guide, ``(n, B, d)`` (``n > d``): ``n`` per row.
        num_samples: ``K``, the proposal draws per row; ``n`` by default.
        jitter: :math:`\epsilon`.

    Returns:
        ``(B,)`` estimates of :math:`\log p(x_b)`.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> # p(z) = N(0, 1), p(x | z) = N(z, 1): p(x) = N(0, 2), q(z | x) = N(x / 2, 1 / 2)
        >>> x = torch.tensor([0.0, 1.0, -2.0])
        >>> prior, lik = torch.distributions.Normal(0.0, 1.0), torch.distributions.Normal
        >>> log_joint = lambda z: prior.log_prob(z[..., 0]) + lik(z[..., 0], 1.0).log_prob(x)
        >>> draws = (x / 2 + 0.5**0.5 * torch.randn(500, 3)).unsqueeze(-1)
        >>> estimate = importance_log_likelihood(log_joint, draws)
        >>> exact = torch.distributions.Normal(0.0, 2**0.5).log_prob(x)
        >>> bool((estimate - exact).abs().max() < 1e-2)
        True
    """
    shape = tuple(draws.shape) if isinstance(draws, Tensor) else None
    num_samples = check_importance_args(shape, num_samples)
    n, _, d = shape
    draws = draws.detach()
    loc = draws.mean(0)
    centred = (draws - loc).transpose(0, 1)  # (B, n, d)
    cov = centred.transpose(-1, -2) @ centred / (n - 1)
    eye = torch.eye(d, dtype=draws.dtype, device=draws.device)
    mean_var = cov.diagonal(dim1=-2, dim2=-1).mean(-1)
    scale = relative_jitter(mean_var, jitter, torch.finfo(draws.dtype).tiny)
    proposal = MultivariateNormal(loc, cov + scale[:, None, None] * eye)
    with torch.no_grad():
        z = proposal.sample((num_samples,))
        log_w = log_joint(z) - proposal.log_prob(z)
    if log_w.shape != z.shape[:-1]:
        raise ValueError(
            f"importance_log_likelihood: log_joint must return shape {tuple(z.shape[:-1])} "
            f"for z of shape {tuple(z.shape)}, got {tuple(log_w.shape)}"
        )
    return log_w.logsumexp(0) - torch.log(torch.tensor(float(num_samples), dtype=log_w.dtype))

"""How much of a known non-Gaussian score the AR-DAE learns, by dimension (Pyro).

The sampler is ``u = R (e + k tanh(e))``, ``e ~ N(0, I_d)``, ``R`` a random rotation with
scales from 0.3 to 3: an elementwise monotone map, so its score is exact at every draw,

.. math::

    \\nabla_u \\log q(u) = R^{-\\top} \\frac{-e - T''(e) / T'(e)}{T'(e)},
    \\qquad T(e) = e + k \\tanh e .

A :class:`pyro_ardae.ScoreEstimator` at its defaults is trained the way ``ARDAE_ELBO``
trains it (``update`` on ``--samples`` fresh draws a step). The metric, ``r2_d{d}``, is the
R^2 of the network's own residual (its output less its Gaussian base, pulled back) against
the exact score less that of the sampler's moment-matched Gaussian, in whitened units, on
20000 held-out draws: 1 is the whole non-Gaussian part, 0 none of it (the Gaussian base).
``departure_d{d}`` is the size of that part over the whole score's (rms, whitened).

Usage::

    python -m benchmarks.score_dims --quick   # d = 2, 5
    python -m benchmarks.score_dims           # d = 2, 5, 12, 31

Both take 3000 steps, the posterior suite's budget.

The last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from pyro_ardae import ScoreEstimator

EVAL_DRAWS = 20000


def sample(rot: torch.Tensor, k: float, n: int, gen: torch.Generator):
    """``n`` draws of ``u = R T(e)`` and their noise ``e`` (float64)."""
    e = torch.randn(n, rot.shape[0], generator=gen, dtype=torch.float64)
    return (e + k * torch.tanh(e)) @ rot.T, e


def exact_score(rot: torch.Tensor, k: float, e: torch.Tensor) -> torch.Tensor:
    """The score of ``u = R T(e)`` at the draws of noise ``e``."""
    sech2 = torch.cosh(e).pow(-2)
    d1 = 1 + k * sech2
    d2 = -2 * k * sech2 * torch.tanh(e)
    return ((-e - d2 / d1) / d1) @ torch.linalg.inv(rot)


def residual_r2(dim: int, args: argparse.Namespace) -> tuple[float, float]:
    gen = torch.Generator().manual_seed(args.seed)
    rot = torch.linalg.qr(torch.randn(dim, dim, generator=gen, dtype=torch.float64))[0]
    rot = rot * torch.linspace(0.3, 3.0, dim, dtype=torch.float64)
    test, noise = sample(rot, args.k, EVAL_DRAWS, gen)
    exact = exact_score(rot, args.k, noise)
    loc, cov = test.mean(0), torch.cov(test.T)
    chol = torch.linalg.cholesky(cov)
    departure = (exact + torch.linalg.solve(cov, (test - loc).T).T) @ chol
    torch.manual_seed(args.seed)
    est = ScoreEstimator(dim)
    for _ in range(args.steps):
        est.update(sample(rot, args.k, args.samples, gen)[0].float())
    query = test.float()
    base = est.stats.pull_back(-est.stats.whiten(query))
    learnt = (est.score(query) - base).double() @ chol
    r2 = 1 - (learnt - departure).pow(2).sum() / departure.pow(2).sum()
    size = departure.pow(2).sum(1).mean().sqrt() / (exact @ chol).pow(2).sum(1).mean().sqrt()
    return float(r2), float(size)


def main(args: argparse.Namespace) -> dict[str, object]:
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    result: dict[str, object] = {"benchmark": "score_dims", "settings": vars(args).copy()}
    for dim in args.dims:
        r2, size = residual_r2(dim, args)
        result[f"r2_d{dim}"] = round(r2, 3)
        result[f"departure_d{dim}"] = round(size, 3)
        print(f"d={dim}: R^2 {r2:.3f} (departure {size:.2f} of the score)", flush=True)
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="d = 2, 5")
    parser.add_argument("--dims", type=int, nargs="+", default=None)
    parser.add_argument("--steps", type=int, default=3000, help="training steps per dimension")
    parser.add_argument("--samples", type=int, default=512, help="fresh draws per step")
    parser.add_argument("--k", type=float, default=1.0, help="strength of the tanh term")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if args.dims is None:
        args.dims = [2, 5] if args.quick else [2, 5, 12, 31]
    if min(args.dims) < 1 or args.steps < 1 or args.samples < 2 * (max(args.dims) + 3):
        parser.error("expected dims >= 1, steps >= 1 and samples >= 2 (max(dims) + 3)")
    return args


if __name__ == "__main__":
    print(json.dumps(main(parse_args())))

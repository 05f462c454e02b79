"""Score estimation on a 1-D mixture of Gaussians (Lim et al., 2020, Fig. 3).

Target p = 0.5 N(-2, 0.5^2) + 0.5 N(2, 0.5^2). Metric: E_p |d/dx log p(x) - f(x)| over 1000
fixed samples of p, for

* AR-DAE: :class:`pyro_ardae.ScoreEstimator` trained on fresh samples, queried at sigma = 0;
* regDAE: a regular DAE, reconstruction r(x) trained on ||x - r(x + sigma u)||^2 at a fixed
  sigma, score (r(x) - x) / sigma^2;
* resDAE: the residual DAE with loss rescaling, ||u + sigma f(x + sigma u)||^2 at a fixed sigma
  (a :class:`pyro_ardae.ScoreNet` fed that constant sigma);
* optimal: the exact minimiser f*(x; sigma) = d/dx log (p * N(0, sigma^2))(x) of both DAEs.

Every sigma is in the original units of x. All networks work on standardised x (sd 2.06) and
share one MLP shape. The last line of stdout is one JSON object with the results.

Usage::

    python -m benchmarks.score_mog1d --quick     # about a minute on 2 cores
    python -m benchmarks.score_mog1d             # 5 seeds x 10k steps

References:
    J. H. Lim, A. Courville, C. Pal, C.-W. Huang, "AR-DAE: Towards Unbiased Neural Entropy
    Gradient Estimation", ICML 2020, arXiv:2006.05164.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch
from torch import Tensor, nn

from pyro_ardae import ScoreConfig, ScoreEstimator, ScoreNet, ardae_loss

from .common import provenance

MEANS = torch.tensor([-2.0, 2.0])
SD = 0.5
HIDDEN = (128, 128, 128)
ACTIVATION = nn.SiLU  # ScoreNet's default (Softplus stalls here)
DELTA = 0.1  # sigma ~ N(0, DELTA^2) in standardised units
LR, LR_END = 3e-3, 1e-5  # Adam, cosine decay over the run
BATCH = 512  # fresh samples of p per step
EVAL_SEED = 1234
BASELINE_SIGMAS = (0.03, 0.1, 0.3, 1.0)


def sample(n: int, generator: torch.Generator | None = None) -> Tensor:
    """``n`` draws of p, shape ``(n, 1)``."""
    k = torch.randint(2, (n,), generator=generator)
    return (MEANS[k] + SD * torch.randn(n, generator=generator)).unsqueeze(-1)


def optimal_score(x: Tensor, sigma: float = 0.0) -> Tensor:
    """f*(x; sigma) = sum_k w_k(x) (mu_k - x) / (s^2 + sigma^2), the score of p * N(0, sigma^2);
    sigma = 0 gives the true score d/dx log p."""
    var = SD**2 + sigma**2
    w = torch.softmax(-0.5 * (x - MEANS) ** 2 / var, dim=-1)
    return (w * (MEANS - x) / var).sum(-1, keepdim=True)


def error(x: Tensor, score: Tensor) -> float:
    return (optimal_score(x) - score).abs().mean().item()


def cosine_adam(params, steps: int) -> tuple[torch.optim.Optimizer, Callable[[], None]]:
    opt = torch.optim.Adam(params, lr=LR)
    return opt, cosine(opt, steps)


def cosine(opt: torch.optim.Optimizer, steps: int) -> Callable[[], None]:
    return torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=LR_END).step


def ardae_error(x_eval: Tensor, steps: int) -> float:
    """Train an AR-DAE through :class:`ScoreEstimator` on fresh batches; error at sigma = 0."""
    est = ScoreEstimator(
        1,
        config=ScoreConfig(hidden=HIDDEN, delta=DELTA),
        optimizer=lambda params: torch.optim.Adam(params, lr=LR),
    )
    lr_step = cosine(est.optimizer, steps)
    est.set_stats(sample(100_000))
    for _ in range(steps):
        est.step(sample(BATCH))
        lr_step()
    return error(x_eval, est.score(x_eval))


def dae_error(x_eval: Tensor, steps: int, sigma: float, residual: bool) -> float:
    """A DAE at one fixed ``sigma`` (original units), trained on standardised x.

    ``residual``: resDAE, ||u + s f(y + s u)||^2 (s = sigma / sd) with a ScoreNet fed s;
    else regDAE, ||y - r(y + s u)||^2 with score (r(y) - y) / s^2. Scores are mapped back
    to x by dividing by sd.
    """
    z = sample(100_000)
    loc, scale = z.mean(), z.std()
    s = sigma / scale.item()
    if residual:
        net = ScoreNet(1, hidden=HIDDEN, delta=s, activation=ACTIVATION)
    else:
        widths = (1, *HIDDEN)
        layers: list[nn.Module] = []
        for i, o in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(i, o), ACTIVATION()]
        net = nn.Sequential(*layers, nn.Linear(widths[-1], 1))
    opt, lr_step = cosine_adam(net.parameters(), steps)
    for _ in range(steps):
        y = (sample(BATCH) - loc) / scale
        u = torch.randn_like(y)
        if residual:
            loss = ardae_loss(net, y, u, torch.full_like(y, s))
        else:
            loss = (y - net(y + s * u)).pow(2).sum(-1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        lr_step()
    with torch.no_grad():
        y = (x_eval - loc) / scale
        if residual:
            score = net(y, torch.full_like(y, s))
        else:
            score = (net(y) - y) / s**2
    return error(x_eval, score / scale)


def main(args: argparse.Namespace) -> dict:
    torch.set_num_threads(1)
    start = time.time()
    x_eval = sample(1000, torch.Generator().manual_seed(EVAL_SEED))
    errors = []
    for seed in range(args.seeds):
        torch.manual_seed(seed)
        errors.append(ardae_error(x_eval, args.steps))
        print(f"seed {seed}: AR-DAE error {errors[-1]:.4f}", flush=True)
    baselines: dict[str, dict[str, float]] = {"regdae_error": {}, "resdae_error": {}}
    for sigma in BASELINE_SIGMAS:
        for key, residual in (("regdae_error", False), ("resdae_error", True)):
            runs = []
            for seed in range(args.baseline_seeds):
                torch.manual_seed(seed)
                runs.append(dae_error(x_eval, args.steps, sigma, residual))
            baselines[key][str(sigma)] = round(statistics.median(runs), 4)
            print(f"{key} sigma={sigma}: {baselines[key][str(sigma)]}", flush=True)
    result = {
        "ardae_error": round(statistics.median(errors), 4),
        "ardae_errors": [round(e, 4) for e in errors],
        **baselines,
        "optimal_error": {
            str(s): round(error(x_eval, optimal_score(x_eval, s)), 4) for s in BASELINE_SIGMAS
        },
        "steps": args.steps,
        "seeds": args.seeds,
        "seconds": round(time.time() - start, 1),
        **provenance(),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds x 3000 steps")
    parser.add_argument("--seeds", type=int, default=None, help="AR-DAE seeds (default 5)")
    parser.add_argument("--steps", type=int, default=None, help="steps per run (default 10000)")
    parser.add_argument(
        "--baseline-seeds", type=int, default=1, help="seeds per fixed-sigma DAE (median)"
    )
    args = parser.parse_args()
    args.seeds = args.seeds or (2 if args.quick else 5)
    args.steps = args.steps or (3000 if args.quick else 10_000)
    main(args)

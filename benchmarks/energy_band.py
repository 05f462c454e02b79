"""How far the AR-DAE under-reports the score across U2's band, on the sampler's own draws.

Fits the implicit generator to U2 as ``examples/energy_fitting.py`` does, then, on 5000 of its
draws, projects three scores on the band's unit normal n(z1) ~ (-w1'(z1), 1) and regresses each
on the signed distance d = (z2 - w1(z1)) / |(-w1', 1)| across the band:

* the AR-DAE's estimate s(z) . n = -a_score d: what the generator's entropy gradient uses;
* the target's -grad U(z) . n = -a_target d (a_target = 1 / 0.4^2 scaled by the slope);
* the draws' own precision across the band, 1 / Var(d): the score of a Gaussian of that width.

At an equilibrium of training a_score = a_target; if the draws' precision is above both, the
AR-DAE under-reports its own sampler's score across the band by a_score / (1 / Var d) and the
sampler ends narrower than the target. Draws with |z1| < 4 only (the wall plays no part).

``--on exact`` asks the same of the AR-DAE alone: it trains a score estimator, as the example
configures it, on minibatches of 512 from 200,000 exact U2 draws for twice ``--steps`` steps
(two AR-DAE steps per generator step in the fits) under four whitening maps: per-step
(cross-fitted halves of the 512), per-step from ``--whitening-samples`` draws (2048 unless
given; the network still trains on 512 of them), per-step scales about the pool's mean (the
centre's jitter removed, the scales' kept) and one fixed map of the whole pool, and reports
the fraction of the exact draws' precision across the band each one reports.

    python benchmarks/energy_band.py --quick               # 1000 steps
    python benchmarks/energy_band.py --seed 1              # 10000 steps, as the benchmark's fits
    python benchmarks/energy_band.py --on exact            # the estimator on exact draws
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pyro
import torch
from common import provenance

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import energy_fitting  # noqa: E402

from pyro_ardae import ScoreEstimator, energy_distance  # noqa: E402


def band_precisions(z: torch.Tensor, score: torch.Tensor) -> tuple[float, float, float]:
    """(a_score, a_target, a_draws): the across-band slopes of ``score`` and of the target's
    score at the draws ``z``, and the draws' own precision across the band."""
    z_grad = z.clone().requires_grad_(True)
    target = -torch.autograd.grad(energy_fitting.energy("U2", z_grad).sum(), z_grad)[0]
    slope = torch.pi / 2 * torch.cos(torch.pi * z[:, 0] / 2)  # w1'(z1)
    length = torch.sqrt(1 + slope**2)
    normal = torch.stack([-slope, torch.ones_like(slope)], -1) / length[:, None]
    inside = z[:, 0].abs() < 4
    d = ((z[:, 1] - energy_fitting._w1(z)) / length)[inside]

    def precision(s: torch.Tensor) -> float:  # a in s . n ~ -a d, least squares
        return -((s * normal).sum(-1)[inside] * d).sum().item() / d.pow(2).sum().item()

    return precision(score), precision(target), 1 / d.var().item()


def on_sampler(args: argparse.Namespace, steps: int) -> dict:
    example = energy_fitting.parser().parse_args(
        [
            "--steps",
            str(steps),
            "--particles",
            str(args.particles),
            "--fourier-features",
            str(args.fourier_features),
            *(
                ["--whitening-samples", str(args.whitening_samples)]
                if args.whitening_samples
                else []
            ),
            "--seed",
            str(args.seed),
            "--threads",
            str(args.threads),
            "--no-progress",
        ]
    )
    guide, loss, _, seconds = energy_fitting.train("U2", "implicit", example)
    with torch.no_grad(), pyro.plate("draws", 5000, dim=-1):
        z = guide("U2")["z"].reshape(-1, 2)
    (estimator,) = loss.estimators.values()
    a_score, a_target, a_draws = band_precisions(z, estimator.score(z).detach())
    return {
        "particles": args.particles,
        "edist": round(energy_distance(z, energy_fitting.reference("U2", 5000)), 4),
        "precision_score_net": round(a_score, 2),
        "precision_target": round(a_target, 2),
        "precision_draws": round(a_draws, 2),
        "score_reported_fraction": round(a_score / a_draws, 3),
        "sd_ratio_draws_to_target": round((a_target / a_draws) ** 0.5, 3),
        "fit_seconds": round(seconds, 1),
    }


def on_exact(args: argparse.Namespace, steps: int) -> dict:
    pool = energy_fitting.exact_samples("U2", 200_000, torch.Generator().manual_seed(7))
    z = energy_fitting.reference("U2", 5000)
    # name: (per-step maps, draws per map, fixed centre); not per-step: one map of the pool
    more = args.whitening_samples or 2048
    maps = {
        "per_step": (True, 512, None),
        f"per_step_{more}": (True, more, None),
        "per_step_pool_centre": (True, 512, pool.mean(0)),  # only the scales jitter
        "fixed": (False, 512, None),
    }
    out = {}
    for name, (per_step, draws, centre) in maps.items():
        torch.manual_seed(args.seed)
        est = ScoreEstimator(2, fourier_features=args.fourier_features)
        if not per_step:
            est.set_stats(pool)
        for _ in range(2 * steps):
            batch = pool[torch.randint(len(pool), (draws,))]
            if not per_step:
                est.step(batch)
            else:  # the network on 512 of them, ARDAE_ELBO's score_samples
                est.update(batch, loc=centre, num_train=512)
        a_score, _, a_draws = band_precisions(z, est.score(z))
        out[f"score_reported_fraction_{name}"] = round(a_score / a_draws, 3)
    return out


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1000 steps")
    parser.add_argument("--on", choices=("sampler", "exact"), default="sampler")
    parser.add_argument("--steps", type=int, default=None, help="10000 (quick: 1000)")
    parser.add_argument("--particles", type=int, default=512)
    parser.add_argument("--fourier-features", type=int, default=64, help="score net's (0: none)")
    parser.add_argument(
        "--whitening-samples",
        type=int,
        default=None,
        help="AR-DAE's draws per step for its maps (the example's default: 512; --on exact: 2048)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    steps = args.steps or (1000 if args.quick else 10_000)
    torch.set_num_threads(args.threads)
    result = {
        "benchmark": "energy_band",
        "on": args.on,
        "target": "U2",
        "steps": steps,
        "fourier_features": args.fourier_features,
        "whitening_samples": args.whitening_samples,
        "seed": args.seed,
        **(on_sampler if args.on == "sampler" else on_exact)(args, steps),
        **provenance(),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()

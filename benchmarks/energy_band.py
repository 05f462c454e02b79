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

    python benchmarks/energy_band.py --quick       # 1000 steps
    python benchmarks/energy_band.py --seed 1      # 10000 steps, as the benchmark's fits
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

from pyro_ardae import energy_distance  # noqa: E402


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1000 steps")
    parser.add_argument("--steps", type=int, default=None, help="10000 (quick: 1000)")
    parser.add_argument("--particles", type=int, default=512)
    parser.add_argument("--fourier-features", type=int, default=64, help="score net's (0: none)")
    parser.add_argument("--whitening-momentum", type=float, default=0.9, help="AR-DAE's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    steps = args.steps or (1000 if args.quick else 10_000)
    example = energy_fitting.parser().parse_args(
        [
            "--steps",
            str(steps),
            "--particles",
            str(args.particles),
            "--fourier-features",
            str(args.fourier_features),
            "--whitening-momentum",
            str(args.whitening_momentum),
            "--seed",
            str(args.seed),
            "--threads",
            str(args.threads),
            "--no-progress",
        ]
    )
    torch.set_num_threads(args.threads)
    guide, loss, seconds = energy_fitting.train("U2", "implicit", example)

    with torch.no_grad(), pyro.plate("draws", 5000, dim=-1):
        z = guide("U2")["z"].reshape(-1, 2)
    (estimator,) = loss.estimators.values()
    score = estimator.score(z).detach()
    z_grad = z.clone().requires_grad_(True)
    target = -torch.autograd.grad(energy_fitting.energy("U2", z_grad).sum(), z_grad)[0]

    slope = torch.pi / 2 * torch.cos(torch.pi * z[:, 0] / 2)  # w1'(z1)
    length = torch.sqrt(1 + slope**2)
    normal = torch.stack([-slope, torch.ones_like(slope)], -1) / length[:, None]
    inside = z[:, 0].abs() < 4
    d = ((z[:, 1] - energy_fitting._w1(z)) / length)[inside]

    def precision(s: torch.Tensor) -> float:  # a in s . n ~ -a d, least squares
        return -((s * normal).sum(-1)[inside] * d).sum().item() / d.pow(2).sum().item()

    exact = energy_fitting.reference("U2", 5000)
    a_score, a_target, a_draws = precision(score), precision(target), 1 / d.var().item()
    result = {
        "benchmark": "energy_band",
        "target": "U2",
        "steps": steps,
        "particles": args.particles,
        "fourier_features": args.fourier_features,
        "whitening_momentum": args.whitening_momentum,
        "seed": args.seed,
        "edist": round(energy_distance(z, exact), 4),
        "precision_score_net": round(a_score, 2),
        "precision_target": round(a_target, 2),
        "precision_draws": round(a_draws, 2),
        "score_reported_fraction": round(a_score / a_draws, 3),
        "sd_ratio_draws_to_target": round((a_target / a_draws) ** 0.5, 3),
        "fit_seconds": round(seconds, 1),
        **provenance(),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()

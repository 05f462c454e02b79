"""Where each sampler puts U3's mass: the two branches' shares and widths, and the mass between.

U3's density is a sum of two bands of vertical sd 0.35 (``examples/energy_fitting/``): the
upper one along z2 = w1(z1) and the lower one along z2 = w1(z1) - w2(z1), with
w2(z1) = 3 exp(-(z1 - 1)^2 / (2 0.6^2)). They coincide away from z1 = 1 and part around it.
Fits each sampler as the example does and compares 5000 of its draws with 5000 exact ones:

* in the window |z1 - 1| < 0.6, where the bands are at least 2.4 apart (about 7 sds), each
  draw belongs to the nearer band: the window's share of all draws (``window_mass``), the
  lower band's share of the window (``lower_share``, 1/2 for the target), each band's
  RMS vertical distance of its draws (``sd_upper``, ``sd_lower``; 0.35 for the target) and
  the share of window draws more than 3 sds from both bands (``between``);
* where the bands have merged, |z1 - 1| > 2.5 (w2 < 0.001), the RMS vertical distance to the
  band (``sd_merged``, 0.35 for the target);
* along the bands: the share of draws with |z1| > 4 (``outer_mass``), the sd of z1
  (``sd_z1``) and the total variation between the z1 histogram (bins of 0.5 on [-7.5, 7.5]
  and one open bin beyond each end) and the target's bin masses (``z1_tv``: how lumpy the
  mass along the bands is). Under the target z1 has density proportional to 1 on [-6, 6] and to
  exp(-(|z1| - 6)^2) beyond (the wall), so the first two are
  (4 + sqrt(pi)) / (12 + sqrt(pi)) = 0.419 and 4.00, and ``z1_tv`` of 5000 exact draws is
  its Monte Carlo floor, about 0.03.

Exact draws give the target's values up to Monte Carlo error (about 0.01 on a share of a few
hundred window draws), so the sampler's deviations say which part of U3 a fit gets wrong: too
thin a band, a light lower branch, or mass between the branches.

    python -m benchmarks.energy_branches --quick        # 1000 steps
    python -m benchmarks.energy_branches --seed 1       # 10000 steps, the benchmark's fits
"""

from __future__ import annotations

import argparse
import json
import math

import torch

from examples.energy_fitting import main as ef_main
from examples.energy_fitting import samplers, targets
from pyro_ardae import energy_distance

from .common import provenance

SD = 0.35  # U3's vertical sd of each band
Z1_EDGES = torch.arange(-7.5, 7.6, 0.5)  # inner edges of the z1 histogram; end bins open


def z1_masses() -> torch.Tensor:
    """The target's z1 mass in each bin of :data:`Z1_EDGES`: density 1 on [-6, 6] and
    exp(-(|z1| - 6)^2) beyond, normalised by 12 + sqrt(pi)."""

    def cdf(x: float) -> float:  # of the unnormalised density, from -inf
        if x < -6:
            return math.sqrt(math.pi) / 2 * math.erfc(-6 - x)
        if x <= 6:
            return math.sqrt(math.pi) / 2 + x + 6
        return math.sqrt(math.pi) / 2 * (1 + math.erf(x - 6)) + 12

    total = 12 + math.sqrt(math.pi)
    points = [-math.inf, *Z1_EDGES.tolist(), math.inf]
    cdfs = torch.tensor([cdf(x) for x in points], dtype=torch.float64)  # 0 and total at the ends
    return (cdfs.diff() / total).float()


def branch_stats(z: torch.Tensor) -> dict[str, float | None]:
    """The window and merged-band statistics of draws ``z`` ``(n, 2)`` (see the module); an
    sd of a band without draws is None."""
    w1 = targets._w1(z)
    upper = z[:, 1] - w1
    lower = z[:, 1] - (w1 - targets._w2(z))
    window = (z[:, 0] - 1).abs() < 0.6
    merged = (z[:, 0] - 1).abs() > 2.5
    on_lower = lower.abs() < upper.abs()
    u, lo = upper[window & ~on_lower], lower[window & on_lower]

    def rms(x: torch.Tensor) -> float | None:
        return x.pow(2).mean().sqrt().item() if len(x) else None

    between = (upper.abs() > 3 * SD) & (lower.abs() > 3 * SD)
    return {
        "window_mass": window.float().mean().item(),
        "lower_share": on_lower[window].float().mean().item(),
        "sd_upper": rms(u),
        "sd_lower": rms(lo),
        "between": between[window].float().mean().item(),
        "sd_merged": rms(upper[merged]),
        "outer_mass": (z[:, 0].abs() > 4).float().mean().item(),
        "sd_z1": z[:, 0].std().item(),
        "z1_tv": z1_tv(z[:, 0]),
    }


def z1_tv(z1: torch.Tensor) -> float:
    """Total variation between the histogram of ``z1`` on :data:`Z1_EDGES` and
    :func:`z1_masses`."""
    counts = torch.bincount(torch.bucketize(z1.contiguous(), Z1_EDGES), minlength=len(Z1_EDGES) + 1)
    return 0.5 * (counts / len(z1) - z1_masses()).abs().sum().item()


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1000 steps")
    parser.add_argument("--steps", type=int, default=None, help="10000 (quick: 1000)")
    parser.add_argument("--methods", default="implicit,iaf", help="samplers to fit")
    parser.add_argument("--pool", type=int, default=0, help="iterates mixed, last steps (0: none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    steps = args.steps or (1000 if args.quick else 10_000)
    example = ef_main.parser().parse_args(
        ["--targets", "U3", "--steps", str(steps), "--pool", str(args.pool), "--seed",
         str(args.seed), "--threads", str(args.threads), "--no-progress", "--out", ""]
    )  # fmt: skip
    torch.set_num_threads(args.threads)
    result: dict = {"benchmark": "energy_branches", "target": "U3", "steps": steps,
                    "pool": args.pool, "seed": args.seed}  # fmt: skip
    methods = args.methods.split(",")
    for method in methods:
        if method not in samplers.METHODS:
            parser.error(f"--methods: expected names in {samplers.METHODS}, got {method!r}")

    def rounded(stats: dict) -> dict:
        return {k: None if v is None else round(v, 4) for k, v in stats.items()}

    exact = targets.reference("U3", 5000)
    result["exact"] = rounded(branch_stats(exact))
    for method in methods:
        fitted = samplers.fit("U3", method, example)
        stats = branch_stats(fitted["draws"])
        stats["edist"] = energy_distance(fitted["draws"], exact)
        result[method] = rounded(stats)
    result.update(provenance())
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()

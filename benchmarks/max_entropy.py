"""Maximum entropy (the paper's Fig. 8): implicit sampler vs IAF over fresh (m, B) problems.

Runs ``examples/max_entropy.py`` (penalty method, batch 128, lam 1 -> 100, same model, steps and
optimiser for both samplers). Metric: earth mover's distance (``ot.emd2``, Euclidean cost, 500
draws each) to N(m, B^T B). ``fraction_ardae_better`` = share of repeats where the implicit
sampler's EMD is below the IAF's (bar: > 0.5). Also, per sampler and for a second exact
sample, the medians over repeats of the checks on 2000 more draws (the example's docstring):
``*_c1_median``, ``*_c2_median``, ``*_logdet_median``, ``*_energy_median`` and
``*_entropy_gap_median``, and ``fraction_ardae_better_energy``. The full run (12 repeats x
2000 steps) takes a few minutes here.

    python -m benchmarks.max_entropy --quick      # 2 repeats x 300 steps
"""

from __future__ import annotations

import argparse
import json

from examples import max_entropy

from .common import provenance


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 repeats x 300 steps")
    parser.add_argument("--repeats", type=int, default=None, help="12 (quick: 2)")
    parser.add_argument("--steps", type=int, default=None, help="2000 (quick: 300)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--out", default="", help="histogram path ('' for none)")
    args = parser.parse_args()
    repeats = args.repeats or (2 if args.quick else 12)
    steps = args.steps or (300 if args.quick else 2000)
    ex_args = max_entropy.parser().parse_args(
        [
            "--repeats",
            str(repeats),
            "--steps",
            str(steps),
            "--seed",
            str(args.seed),
            "--threads",
            str(args.threads),
            "--no-progress",
            "--out",
            args.out,
        ]
    )
    out = max_entropy.main(ex_args)
    result = {"benchmark": "max_entropy", "steps": steps, **out, "bar": "> 0.5", **provenance()}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()

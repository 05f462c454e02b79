"""Energy fitting (the paper's Fig. 4): each sampler's distance to exact draws of U1-U4.

Runs ``examples/energy_fitting/``'s fits side by side, in one process per seed: the implicit
sampler (AutoImplicitGuide + ARDAE_ELBO), the hierarchical implicit sampler (ImplicitGuide +
ARDAE_ELBO) and the flow baseline (AutoIAFNormal(hidden_dim=[256, 256], num_transforms=4) +
Trace_ELBO), same steps, particles, optimiser and annealing. Metric: energy distance (U-statistic,
coordinates divided by the exact draws' sd) between ``--num-samples`` (5000) draws of each
sampler and as many exact draws (fine-grid inverse CDF, tested in tests/test_energy_fitting.py).
Every fit option is the example's flag with the example's default (``--help``).
``ardae_wins`` = number of targets where the implicit sampler is closer than the flow
(bar: >= 3 in the full run). With ``--ema D`` every sampler draws from a moving average of its
parameters (``examples/energy_fitting/``); the flow is then also scored at its last iterate
(``*_iaf_edist_last``) and the wins count against the better of its two; ``--pool K`` does the
same with draws from a mixture of each sampler's iterates over the last K steps. With several
``--seeds`` every fit is repeated per seed, the distances are averaged over seeds (the per-seed
values are kept) and the wins are counted on the means; ``ardae_wins_per_seed`` counts them
seed by seed. ``--out`` names the first seed's figure; the others are saved beside it as
``<name>_seed<N>.png``.

    python -m benchmarks.energy --quick                # one target, 1000 steps
    python -m benchmarks.energy                        # U1-U4, 10000 steps
    python -m benchmarks.energy --seeds 0 1 2          # the same, three seeds
    python -m benchmarks.energy --seeds 0 1 2 --workers 2 --threads 1  # two seeds at a time
    python -m benchmarks.energy --targets U1,U3 --methods implicit,iaf   # a part of it
    python -m benchmarks.energy --seeds 0 1 2 --workers 3 --device cuda  # on a GPU
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

from examples.energy_fitting import main as ef_main

from .common import provenance


def parser() -> argparse.ArgumentParser:
    """The example's parser (every fit option, with its defaults) and this benchmark's own."""
    p = ef_main.parser()
    p.prog = "python -m benchmarks.energy"
    p.description = __doc__
    p.add_argument("--quick", action="store_true", help="U1 only, 1000 steps")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="(default: --seed)")
    p.add_argument("--workers", type=int, default=1, help="processes, seeds split among them")
    p.set_defaults(steps=None, targets=None, num_samples=5000, progress=False, out="")
    return p


def main() -> dict:
    p = parser()
    args = p.parse_args()
    if args.workers < 1:
        p.error(f"--workers: expected a positive integer, got {args.workers}")
    torch.set_num_threads(args.threads)
    steps = args.steps or (1000 if args.quick else 10_000)
    targets = args.targets or ("U1" if args.quick else "U1,U2,U3,U4")
    seeds = args.seeds or [args.seed]
    methods = args.methods.split(",")
    if "iaf" not in methods:
        p.error(f"--methods: expected the baseline 'iaf' among them, got {args.methods}")

    def example_args(seed: int, out: str) -> argparse.Namespace:
        return argparse.Namespace(
            **{**vars(args), "steps": steps, "targets": targets, "seed": seed, "out": out}
        )

    start = time.perf_counter()

    def figure(i: int, seed: int) -> str:  # --out for the first seed, then _seed<N> beside it
        if not args.out or i == 0:
            return args.out
        path = Path(args.out)
        return str(path.with_name(f"{path.stem}_seed{seed}{path.suffix}"))

    # each worker process runs whole seeds
    jobs = [example_args(seed, figure(i, seed)) for i, seed in enumerate(seeds)]
    if args.workers > 1:
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(args.workers, mp_context=spawn) as pool:
            runs = list(pool.map(ef_main.main, jobs))
    else:
        runs = [ef_main.main(job) for job in jobs]
    out = {k: sum(run[k] for run in runs) / len(runs) for k in runs[0]}

    def wins(run: dict, method: str) -> int:
        def flow(t: str) -> float:  # with --ema/--pool, the better of the flow's two
            return min(run[f"{t}_iaf_edist"], run.get(f"{t}_iaf_edist_last", float("inf")))

        return sum(run[f"{t}_{method}_edist"] < flow(t) for t in targets.split(","))

    result = {
        "benchmark": "energy",
        "targets": targets,
        "steps": steps,
        **{
            name: value
            for name, value in vars(args).items()
            if name not in ("quick", "seeds", "seed", "steps", "targets", "out", "progress")
        },
        "metric": f"energy distance to {args.num_samples} exact draws, coordinates / exact sd",
        "seeds": seeds,
        **{k: round(v, 4) for k, v in out.items()},
        **{
            f"{k}_per_seed": [round(run[k], 4) for run in runs]
            for k in out
            if "_edist" in k and len(runs) > 1
        },
        **{
            key: wins(out, method)
            for key, method in (("ardae_wins", "implicit"), ("hierarchical_wins", "hierarchical"))
            if method in methods
        },
        **(
            {"ardae_wins_per_seed": [wins(run, "implicit") for run in runs]}
            if "implicit" in methods
            else {}
        ),
        "wins_bar": 3,
        "wall_seconds": round(time.perf_counter() - start, 1),
        **provenance(),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()

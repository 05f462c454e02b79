"""Energy fitting (the paper's Fig. 4): each sampler's distance to exact draws of U1-U4.

Runs ``examples/energy_fitting/``'s fits side by side, in one process per seed: the implicit
sampler (AutoImplicitGuide + ARDAE_ELBO), the hierarchical implicit sampler (ImplicitGuide +
ARDAE_ELBO) and the flow baseline (AutoIAFNormal(hidden_dim=[256, 256], num_transforms=4) +
Trace_ELBO), same steps, particles, optimiser and annealing. Metric: energy distance (U-statistic,
coordinates divided by the exact draws' sd) between 5000 draws of each sampler and 5000 exact
draws (fine-grid inverse CDF, tested in tests/test_energy_fitting.py).
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
from pyro_ardae.score import PARAMETERIZATIONS

from .common import provenance

# this benchmark's options passed on to the example as they are
PASSED = ("methods", "particles", "score_steps", "fourier_features", "fourier_scale",
          "score_delta", "score_parameterization", "lr_decay", "ema", "pool",
          "device")  # fmt: skip


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="U1 only, 1000 steps")
    parser.add_argument("--steps", type=int, default=None, help="10000 (quick: 1000)")
    parser.add_argument("--particles", type=int, default=512, help="draws per step, all methods")
    parser.add_argument("--score-steps", type=int, default=2, help="AR-DAE steps per step")
    parser.add_argument("--fourier-features", type=int, default=64, help="score net's (0: none)")
    parser.add_argument("--fourier-scale", type=float, default=3.0, help="their frequencies' sd")
    parser.add_argument("--score-delta", type=float, default=0.1, help="AR-DAE's noise scale")
    parser.add_argument(
        "--score-parameterization",
        choices=PARAMETERIZATIONS,
        default="vector",
        help="AR-DAE's network output",
    )
    parser.add_argument("--ema", type=float, default=0.0, help="parameter average (0: none)")
    parser.add_argument("--pool", type=int, default=0, help="iterates mixed, last steps (0: none)")
    parser.add_argument("--lr-decay", type=float, default=0.1, help="learning rate's fall, all")
    parser.add_argument("--targets", default=None, help="U1,U2,U3,U4 (quick: U1)")
    parser.add_argument(
        "--methods", default="implicit,hierarchical,iaf", help="samplers, iaf among them"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads per process")
    parser.add_argument("--device", default="cpu", help="torch device the samplers train on")
    parser.add_argument("--workers", type=int, default=1, help="processes, seeds split among them")
    parser.add_argument("--out", default="", help="figure path ('' for none), per seed")
    args = parser.parse_args()
    if args.workers < 1:
        parser.error(f"--workers: expected a positive integer, got {args.workers}")
    torch.set_num_threads(args.threads)
    steps = args.steps or (1000 if args.quick else 10_000)
    targets = args.targets or ("U1" if args.quick else "U1,U2,U3,U4")
    methods = args.methods.split(",")
    if "iaf" not in methods:
        parser.error(f"--methods: expected the baseline 'iaf' among them, got {args.methods}")

    def example_args(seed: int, out: str) -> argparse.Namespace:
        settings = [
            [f"--{name.replace('_', '-')}", str(getattr(args, name))]
            for name in PASSED
            if getattr(args, name) is not None
        ]
        return ef_main.parser().parse_args(
            [*sum(settings, []), "--targets", targets, "--steps", str(steps), "--seed", str(seed),
             "--threads", str(args.threads), "--num-samples", "5000", "--no-progress", "--out", out]
        )  # fmt: skip

    start = time.perf_counter()

    def figure(i: int, seed: int) -> str:  # --out for the first seed, then _seed<N> beside it
        if not args.out or i == 0:
            return args.out
        path = Path(args.out)
        return str(path.with_name(f"{path.stem}_seed{seed}{path.suffix}"))

    # each worker process runs whole seeds
    jobs = [example_args(seed, figure(i, seed)) for i, seed in enumerate(args.seeds)]
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
        **{name: getattr(args, name) for name in PASSED},
        "metric": "energy distance to 5000 exact draws, coordinates / exact sd",
        "seeds": args.seeds,
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
        "torch_threads": args.threads,
        "workers": args.workers,
        **provenance(),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()

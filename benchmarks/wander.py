"""The implicit guide's sd ratio along a fit, not only at its end (Pyro, defaults).

``benchmarks/robustness.py`` judges a fit by its last iterate. On a near-Gaussian posterior
the generator's MLP can carry a share of the spread that nothing pins down, and that share
wanders (docs/robustness.md): an end point outside [0.8, 1.25] may be an excursion caught at
the last step. This script measures the wander itself. Each run trains
``AutoImplicitGuide`` + ``ARDAE_ELBO`` at their defaults under plain Adam, exactly as the
matrix's Pyro cell does (same model, seed and random stream: every look saves and restores
torch's random state), and every ``--every`` steps from ``--start`` on it draws ``--draws``
samples and records the worst coordinate's sd ratio (``robustness.judge``). So the last
checkpoint is the matrix's end point.

Keys: per run ``{model}_lr{lr}_{dtype}_seed{seed}`` with ``out`` (checkpoints outside
[0.8, 1.25]), ``checkpoints``, ``range`` (smallest and largest worst ratio), ``max_abs_log``
and ``end``; summary ``out`` and ``checkpoints`` over all runs. The default runs are the
three cells where the wander was seen (correlated at Adam 3e-2 in float64, linreg at 3e-3
and 1e-2 in float32) for seeds 0-2: 9 runs of 41 checkpoints.

Usage::

    python -m benchmarks.wander --quick       # linreg, Adam 1e-2, float32, seed 1, 1000 steps
    python -m benchmarks.wander --workers 2   # the three cells x 3 seeds, 3000 steps

The last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time

import numpy as np

from benchmarks.robustness import EXACT, SD_BOUNDS, judge, models

CELLS = ("correlated:3e-2:float64", "linreg:3e-3:float32", "linreg:1e-2:float32")


def parse_cell(text: str) -> tuple[str, float, str]:
    parts = text.split(":")
    if len(parts) != 3 or parts[0] not in EXACT or parts[2] not in ("float32", "float64"):
        raise argparse.ArgumentTypeError(
            f"expected MODEL:LR:DTYPE with MODEL in {sorted(EXACT)} and DTYPE float32 or "
            f"float64, got {text!r}"
        )
    return parts[0], float(parts[1]), parts[2]


def trajectory(job: tuple[str, float, str, int, int, int, int, int]) -> dict[str, object]:
    """One fit's worst sd ratio at every checkpoint."""
    import pyro
    import pyro.distributions as dist
    import torch
    from pyro.infer import SVI

    from pyro_ardae import ARDAE_ELBO, AutoImplicitGuide

    model_name, lr, dtype, seed, steps, start, every, num_draws = job
    torch.set_num_threads(1)
    torch.set_default_dtype(getattr(torch, dtype))
    array = torch.get_default_dtype()
    model, args, sites = models(pyro, dist, lambda a: torch.tensor(a, dtype=array))[model_name]
    pyro.clear_param_store()
    pyro.set_rng_seed(seed)
    guide = AutoImplicitGuide(model)
    svi = SVI(model, guide, pyro.optim.Adam({"lr": lr}), ARDAE_ELBO())
    worst: list[float] = []
    for step in range(1, steps + 1):
        svi.step(*args)
        if step >= start and (step - start) % every == 0 or step == steps:
            state = torch.get_rng_state()
            with torch.no_grad(), pyro.plate("_draws", num_draws, dim=-2):
                sample = guide(*args)
            torch.set_rng_state(state)
            draws = np.concatenate(
                [np.asarray(sample[s], np.float64).reshape(num_draws, -1) for s in sites], -1
            )
            worst.append(judge(draws, model_name, None)["sd_ratio"])
    ratios = np.array(worst)
    lo, hi = SD_BOUNDS
    return {
        "key": f"{model_name}_lr{lr:g}_{dtype}_seed{seed}",
        "out": int(np.sum((ratios < lo) | (ratios > hi))),
        "checkpoints": len(worst),
        "range": [round(float(ratios.min()), 3), round(float(ratios.max()), 3)],
        "max_abs_log": round(float(np.max(np.abs(np.log(ratios)))), 3),
        "end": round(worst[-1], 4),
    }


def main(args: argparse.Namespace) -> dict[str, object]:
    jobs = [
        (model, lr, dtype, seed, args.steps, args.start, args.every, args.draws)
        for model, lr, dtype in args.cells
        for seed in args.seeds
    ]
    begin = time.perf_counter()
    result: dict[str, object] = {
        "benchmark": "wander",
        "settings": {
            "steps": args.steps,
            "start": args.start,
            "every": args.every,
            "draws": args.draws,
            "cells": [f"{m}:{lr:g}:{dt}" for m, lr, dt in args.cells],
            "seeds": args.seeds,
            "guide": "AutoImplicitGuide() + ARDAE_ELBO() defaults, Pyro, Adam constant rate",
        },
    }
    runs = []
    with mp.get_context("spawn").Pool(args.workers, maxtasksperchild=1) as pool:
        for run in pool.imap(trajectory, jobs):
            print(json.dumps(run), flush=True)
            runs.append(run)
            result[run.pop("key")] = run
    result["out"] = sum(r["out"] for r in runs)
    result["checkpoints"] = sum(r["checkpoints"] for r in runs)
    result["seconds"] = round(time.perf_counter() - begin, 1)
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="linreg:1e-2:float32, seed 1")
    parser.add_argument("--cells", type=parse_cell, nargs="+", default=None, metavar="M:LR:DT")
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--steps", type=int, default=None, help="3000 (quick: 1000)")
    parser.add_argument("--start", type=int, default=None, help="first look (quick: 500)")
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--draws", type=int, default=4000, help="as the matrix's")
    parser.add_argument("--workers", type=int, default=1, help="processes (one core each)")
    args = parser.parse_args(argv)
    defaults = {
        "cells": [parse_cell(c) for c in (["linreg:1e-2:float32"] if args.quick else CELLS)],
        "seeds": [1] if args.quick else [0, 1, 2],
        "steps": 1000 if args.quick else 3000,
        "start": 500 if args.quick else 1000,
    }
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if not 1 <= args.start <= args.steps or args.every < 1 or args.draws < 2:
        parser.error(
            "expected 1 <= --start <= --steps, --every >= 1 and --draws >= 2, got "
            f"--start {args.start} --steps {args.steps} --every {args.every} --draws {args.draws}"
        )
    return args


if __name__ == "__main__":
    print(json.dumps(main(parse_args())))

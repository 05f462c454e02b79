"""Posterior accuracy at the defaults: AutoImplicitGuide + ARDAE_ELBO against Pyro's
autoguides on the posterior suite (``benchmarks/suite.py``: 12 models of the kinds users fit).

Methods, each at its library's defaults, with one particle and the same constant-rate Adam
(``--lr``, 5e-3) for the same number of steps:

* ``ardae``: ``AutoImplicitGuide(model)`` + ``ARDAE_ELBO()``;
* ``autonormal``: ``AutoNormal`` + ``Trace_ELBO``;
* ``mvn``: ``AutoMultivariateNormal`` + ``Trace_ELBO``;
* ``iaf``: ``AutoIAFNormal(hidden_dim=[64, 64], num_transforms=2)`` + ``Trace_ELBO``.

``--particles N`` (not a default) gives every method N vectorised particles.

Metric: the energy distance between ``--draws`` guide draws X and the reference draws Y
(``suite.py``: exact or cached NUTS), every coordinate divided by the reference sd,

    D^2 = 2 E|X - Y| - E|X - X'| - E|Y - Y'|     (Euclidean norms),

with U-statistics for the within-sample terms (unbiased, 0 in expectation when q = p).
``{model}_floor_edist`` is the same statistic between two halves of the reference. Also:
``{model}_{method}_sdratio`` (geometric mean over coordinates of guide sd / reference sd),
``{model}_{method}_mean_err`` (largest |mean error| in reference sds),
``mixture_{method}_mode_frac`` (mass with z1 + z2 > 0; exact 0.5) and the training time.
With ``--equal-time`` the other methods are trained again for as many steps as they take in
the seconds ARDAE took (``*_eqtime_*``). ``--seeds N`` fits every method N times and reports
medians, with the per-seed energy distances in ``*_edist_seeds``. Summary keys:
``ardae_vs_autonormal_max`` (the largest ARDAE / (1.1 AutoNormal + 0.01) ratio: > 1 means
further than AutoNormal on some model) and ``ardae_vs_best_flow_geomean`` (geometric mean over
models of ARDAE's energy distance over the better of mvn and iaf, each floored at 0.001).

Usage::

    python benchmarks/posteriors.py --quick     # 1000 steps, 6 models, one seed
    python benchmarks/posteriors.py --seeds 3   # 3000 steps, all models

The last line of stdout is one JSON object with the results.
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings

import numpy as np
import pyro
import torch
from common import provenance
from pyro.infer import SVI, Trace_ELBO
from pyro.infer.autoguide import AutoIAFNormal, AutoMultivariateNormal, AutoNormal
from suite import Problem, flatten, problems

from pyro_ardae import ARDAE_ELBO, AutoImplicitGuide, energy_distance

METHODS = ("ardae", "autonormal", "mvn", "iaf")
QUICK_MODELS = ("eight_schools", "funnel", "mixture", "correlated", "banana", "logistic")


def build(method: str, model, lr: float, particles: int) -> SVI:
    vec = particles > 1
    if method == "ardae":
        guide = AutoImplicitGuide(model)
        loss = ARDAE_ELBO(num_particles=particles, vectorize_particles=vec)
    else:
        guide = {
            "autonormal": lambda: AutoNormal(model),
            "mvn": lambda: AutoMultivariateNormal(model),
            "iaf": lambda: AutoIAFNormal(model, hidden_dim=[64, 64], num_transforms=2),
        }[method]()
        loss = Trace_ELBO(num_particles=particles, vectorize_particles=vec)
    return SVI(model, guide, pyro.optim.Adam({"lr": lr}), loss)


@torch.no_grad()
def guide_draws(prob: Problem, guide, n: int) -> np.ndarray:
    with pyro.plate("_draws", n, dim=-prob.max_plate_nesting - 1):
        values = guide()
    return flatten(prob.name, {k: v.detach().numpy() for k, v in values.items()})


def fit(prob: Problem, method: str, steps: int, args, seed: int) -> dict:
    pyro.clear_param_store()
    pyro.set_rng_seed(seed)
    svi = build(method, prob.model, args.lr, args.particles)
    nonfinite, error = 0, None
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            for _ in range(steps):
                loss = svi.step()
                if not math.isfinite(loss):
                    nonfinite += 1
        except Exception as e:  # noqa: BLE001 - reported, not hidden
            error = f"{type(e).__name__}: {e}"
    seconds = time.perf_counter() - t0
    out = {"seconds": seconds, "nonfinite_losses": nonfinite, "error": error}
    nan_warnings = [str(w.message) for w in caught if "nan" in str(w.message).lower()]
    if nan_warnings:
        out["nan_warnings"] = len(nan_warnings)
    if error is None:
        pyro.set_rng_seed(seed + 1000)
        out["draws"] = guide_draws(prob, svi.guide, args.draws)
    return out


def evaluate(
    prob: Problem,
    method: str,
    steps: int,
    seeds: list[int],
    args,
    ref_sd: np.ndarray,
    std_ref: np.ndarray,
    result: dict,
    suffix: str,
) -> tuple[float, float]:
    """Fit once per seed, write ``{model}_{method}{suffix}_*`` keys into ``result``; returns
    (median energy distance, mean seconds)."""
    key = f"{prob.name}_{method}{suffix}"
    eds, secs, sdratios, fracs, mean_errs = [], [], [], [], []
    ref_mean = std_ref.mean(0) * ref_sd
    for seed in seeds:
        out = fit(prob, method, steps, args, seed)
        secs.append(out["seconds"])
        for what in ("nonfinite_losses", "nan_warnings"):
            if out.get(what):
                result[f"{key}_{what}"] = result.get(f"{key}_{what}", 0) + out[what]
        if out["error"]:
            result.setdefault(f"{key}_errors", []).append(out["error"])
            eds.append(float("nan"))
            continue
        draws = out["draws"]
        finite = np.isfinite(draws).all(1)
        if not finite.all():
            result[f"{key}_nonfinite_draws"] = int((~finite).sum())
        draws = draws[finite]
        eds.append(
            energy_distance(torch.as_tensor(draws / ref_sd), torch.as_tensor(std_ref), False)
            if len(draws) > 1
            else float("nan")
        )
        sdratios.append(float(np.exp(np.log(draws.std(0) / ref_sd).mean())))
        mean_errs.append(float(np.max(np.abs(draws.mean(0) - ref_mean) / ref_sd)))
        if prob.name == "mixture":
            fracs.append(float((draws.sum(1) > 0).mean()))
    ed = float(np.median(eds))
    result[f"{key}_edist"] = None if math.isnan(ed) else round(ed, 4)
    result[f"{key}_seconds"] = round(float(np.mean(secs)), 2)
    if sdratios:
        result[f"{key}_sdratio"] = round(float(np.median(sdratios)), 3)
        result[f"{key}_mean_err"] = round(float(np.median(mean_errs)), 3)
    if fracs:
        result[f"{key}_mode_frac"] = round(float(np.median(fracs)), 3)
    if len(seeds) > 1:
        result[f"{key}_edist_seeds"] = [round(e, 4) for e in eds]
        if fracs:
            result[f"{key}_mode_frac_seeds"] = [round(f, 3) for f in fracs]
    return ed, float(np.mean(secs))


def summary(result: dict, models: list[str]) -> dict[str, float | None]:
    """The issue's two comparisons over the models where every method has a figure."""
    ratios_an, ratios_flow = [], []
    for name in models:
        ed = {m: result.get(f"{name}_{m}_edist") for m in METHODS}
        if ed["ardae"] is None:
            return {"ardae_vs_autonormal_max": None, "ardae_vs_best_flow_geomean": None}
        if ed["autonormal"] is not None:
            ratios_an.append(ed["ardae"] / (1.1 * ed["autonormal"] + 0.01))
        flows = [ed[m] for m in ("mvn", "iaf") if ed[m] is not None]
        if flows:
            ratios_flow.append(max(ed["ardae"], 1e-3) / max(min(flows), 1e-3))
    return {
        "ardae_vs_autonormal_max": round(max(ratios_an), 3) if ratios_an else None,
        "ardae_vs_best_flow_geomean": round(float(np.exp(np.mean(np.log(ratios_flow)))), 3)
        if ratios_flow
        else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1000 steps, 6 models")
    parser.add_argument("--steps", type=int, default=None, help="3000 (quick: 1000)")
    parser.add_argument("--lr", type=float, default=5e-3, help="Adam's constant rate")
    parser.add_argument("--particles", type=int, default=1, help="not a default when > 1")
    parser.add_argument("--draws", type=int, default=2000, help="guide draws for the metric")
    parser.add_argument("--models", default=None, help="comma-separated (default: all)")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument(
        "--equal-time",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also train the others for the wall time ARDAE took (default: on, off in quick)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=1, help="fits per method (median edist)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    steps = args.steps or (1000 if args.quick else 3000)
    equal_time = (not args.quick) if args.equal_time is None else args.equal_time
    exact_draws = 2000 if args.quick else 4000
    wanted = args.models.split(",") if args.models else None
    wanted = wanted or (list(QUICK_MODELS) if args.quick else None)
    models = [p for p in problems() if wanted is None or p.name in wanted]
    methods = [m for m in METHODS if m in args.methods.split(",")]

    start = time.perf_counter()
    result: dict[str, object] = {
        "benchmark": "posteriors",
        "steps": steps,
        "optimizer": f"Adam(lr={args.lr}), constant",
        "num_particles": args.particles,
        "defaults": args.particles == 1,
        "guide_draws": args.draws,
        "metric": "energy distance D^2 = 2E|X-Y| - E|X-X'| - E|Y-Y'| (U-stat), coordinates "
        "/ reference sd",
        "ardae": "AutoImplicitGuide() + ARDAE_ELBO() library defaults",
        "iaf": "AutoIAFNormal(hidden_dim=[64,64], num_transforms=2) + Trace_ELBO",
        "exact_reference_draws": exact_draws,
        "equal_time": equal_time,
        "seeds_per_method": args.seeds,
        **provenance(),
    }
    rows = []
    for k, prob in enumerate(models):
        info = prob.reference(exact_draws, 1234 + k)
        ref = info["draws"]
        for what in ("rhat", "ess", "divergences"):
            if what in info:
                result[f"{prob.name}_nuts_{what}"] = info[what]
        ref_sd = ref.std(0)
        std = ref / ref_sd
        half = len(std) // 2
        result[f"{prob.name}_floor_edist"] = round(
            energy_distance(torch.as_tensor(std[:half]), torch.as_tensor(std[half:]), False), 4
        )
        row = {"model": prob.name, "floor": result[f"{prob.name}_floor_edist"]}
        for j, method in enumerate(methods):
            seeds = [args.seed + 100 * k + j + 1000 * i for i in range(args.seeds)]
            ed, secs = evaluate(prob, method, steps, seeds, args, ref_sd, std, result, "")
            row[method] = (ed, secs)
        if equal_time and "ardae" in methods and f"{prob.name}_ardae_edist" in result:
            budget = result[f"{prob.name}_ardae_seconds"]
            for j, method in enumerate(methods):
                if method == "ardae" or result.get(f"{prob.name}_{method}_edist") is None:
                    continue
                rate = steps / result[f"{prob.name}_{method}_seconds"]
                n_steps = int(min(budget * rate, 20 * steps))
                seeds = [args.seed + 100 * k + j + 50 + 1000 * i for i in range(args.seeds)]
                ed, secs = evaluate(
                    prob, method, n_steps, seeds, args, ref_sd, std, result, "_eqtime"
                )
                result[f"{prob.name}_{method}_eqtime_steps"] = n_steps
                row[method + "_eq"] = (ed, secs)
        rows.append(row)
        print(f"[{time.perf_counter() - start:6.1f}s] {prob.name} done", flush=True)

    cols = list(methods) + [m + "_eq" for m in methods if m != "ardae" and equal_time]
    head = f"{'model':<22}{'floor':>8}" + "".join(f"{c:>22}" for c in cols)
    print("\nenergy distance (seconds)   [lower is better; floor = reference vs itself]")
    print(head)
    for row in rows:
        cells = "".join(
            f"{row[c][0]:>13.4f} ({row[c][1]:5.1f}s)" if c in row else f"{'-':>22}" for c in cols
        )
        print(f"{row['model']:<22}{row['floor']:>8.4f}{cells}")
    result.update(summary(result, [p.name for p in models]))
    result["wall_seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()

"""Posterior accuracy at the defaults: AutoImplicitGuide + ARDAE_ELBO against the autoguides
of Pyro and NumPyro on the posterior suite (``benchmarks/suite.py``: 12 models of the kinds
users fit).

Methods, each at its library's defaults (particles too: 4 for ``ARDAE_ELBO``, 1 for
``Trace_ELBO``), with the same constant-rate Adam (``--lr``, 5e-3) for the same number of
steps. Pyro (``--backend pyro``):

* ``ardae``: ``pyro_ardae.AutoImplicitGuide(model)`` + ``ARDAE_ELBO()``;
* ``autonormal``: ``AutoNormal`` + ``Trace_ELBO``;
* ``mvn``: ``AutoMultivariateNormal`` + ``Trace_ELBO``;
* ``iaf``: ``AutoIAFNormal(hidden_dim=[64, 64], num_transforms=2)`` + ``Trace_ELBO``.

NumPyro (``--backend numpyro``; the models are NumPyro twins of the Pyro ones, float32),
``SVI.run`` (jitted, ``lax.scan``) with ``optax.adam``:

* ``ardae``: ``numpyro_ardae.AutoImplicitGuide(model)`` + ``numpyro_ardae.ARDAE_ELBO()``;
* ``autonormal``, ``mvn``: ``AutoNormal``, ``AutoMultivariateNormal`` + ``Trace_ELBO``;
* ``iaf``: ``AutoIAFNormal(hidden_dims=[64, 64], num_flows=2)`` + ``Trace_ELBO``;
* ``bnaf``: ``AutoBNAFNormal`` (defaults: ``num_flows=1, hidden_factors=[8, 8]``) +
  ``Trace_ELBO``.

``--backend both`` (the default) runs both. ``--particles N`` (not a default) gives every
method N particles (not vectorised in Pyro: the suite's models are written for one draw).

Metric: the energy distance between ``--draws`` guide draws X and the reference draws Y
(``suite.py``: exact or cached NUTS), every coordinate divided by the reference sd,

    D^2 = 2 E|X - Y| - E|X - X'| - E|Y - Y'|     (Euclidean norms),

with U-statistics for the within-sample terms (unbiased, 0 in expectation when q = p).
``{model}_floor_edist`` is the same statistic between two halves of the reference. Also:
``{model}_{method}_sdratio`` (geometric mean over coordinates of guide sd / reference sd),
``{model}_{method}_sdratio_worst`` (the coordinate's ratio furthest from 1 on a log scale;
the worst over seeds), ``{model}_{method}_mean_err`` (largest |mean error| in reference sds),
``mixture_{method}_mode_frac`` (mass with z1 + z2 > 0; exact 0.5) and the training time
(``_seconds``). NumPyro's keys are the same with a ``numpyro_`` prefix; its ``_seconds``
include JAX's tracing and compilation, which ``_compile_seconds`` reports on their own.

With ``--equal-time`` the other methods are trained again for as many steps as they take in
the seconds ARDAE took (``*_eqtime_*``), at most 20 times as many; for NumPyro both sides
of that rule are the seconds less compilation (a fixed cost per fit, not per step).
``--seeds N`` fits every method N times and reports medians, with the per-seed energy
distances in ``*_edist_seeds``. Every fit's seed (and an exact reference's) is derived from
the model's place in the full suite, so ``--models banana`` reproduces the full run's banana.

Summary keys, per backend (NumPyro's with the ``numpyro_`` prefix):
``ardae_vs_autonormal_max`` (the largest ARDAE / (1.1 AutoNormal + 0.01) ratio: > 1 means
further than AutoNormal on some model), ``ardae_vs_best_flow_geomean`` (geometric mean over
models of ARDAE's energy distance over the best of the flows, mvn and iaf, and for NumPyro
bnaf, each floored at 0.001), ``ardae_regression_sd_ratio_worst`` (ARDAE's per-coordinate sd
ratio furthest from 1 over the regression models run: logistic, breast_cancer, diabetes,
ar1), ``ardae_divergences`` (ARDAE's diverged fits) and ``divergences`` (those of every
method: fits that raised, gave non-finite draws or, in NumPyro, warned a
``DivergenceWarning``; not a guide that does not apply to the model and raises at set-up, as
NumPyro's IAF and BNAF do on a one-dimensional latent: such fits have ``_errors`` and no
figures).

Usage::

    python -m benchmarks.posteriors --quick     # 1000 steps, 6 models, one seed, both backends
    python -m benchmarks.posteriors --seeds 3   # 3000 steps, all models
    python -m benchmarks.posteriors --quick --backend numpyro

``--threads 1`` (the default) also keeps XLA's CPU client to one thread, unless
``XLA_FLAGS`` is set. The last line of stdout is one JSON object with the results.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import NamedTuple

import jax
import numpy as np
import numpyro
import optax
import pyro
import torch
from numpyro.infer import SVI as NumPyroSVI
from numpyro.infer import Trace_ELBO as NumPyroTraceELBO
from numpyro.infer import autoguide as numpyro_autoguide
from pyro.infer import SVI, Trace_ELBO
from pyro.infer.autoguide import AutoIAFNormal, AutoMultivariateNormal, AutoNormal

import numpyro_ardae
from pyro_ardae import ARDAE_ELBO, AutoImplicitGuide, energy_distance

from . import suite
from .common import provenance
from .suite import Problem, flatten, problems

METHODS = ("ardae", "autonormal", "mvn", "iaf")
NUMPYRO_METHODS = (*METHODS, "bnaf")
QUICK_MODELS = ("eight_schools", "funnel", "mixture", "correlated", "banana", "logistic")
REGRESSION_MODELS = ("logistic", "breast_cancer", "diabetes", "ar1")
# JAX's own timings of a compilation: lowering a jaxpr and XLA's compile. Its tracing
# events nest (a jit inside a jit is timed twice), so tracing stays in the running time.
COMPILE_EVENTS = frozenset(
    f"/jax/core/compile/{what}_duration" for what in ("jaxpr_to_mlir_module", "backend_compile")
)
SINGLE_THREAD_XLA = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


# --- Pyro ----------------------------------------------------------------------------------
def build(method: str, model: Callable[[], None], lr: float, particles: int | None) -> SVI:
    """SVI for ``method`` at its defaults; ``particles`` (if not None) for every method."""
    n = {} if particles is None else {"num_particles": particles}
    if method == "ardae":
        guide = AutoImplicitGuide(model)
        loss = ARDAE_ELBO(**n)
    else:
        guide = {
            "autonormal": lambda: AutoNormal(model),
            "mvn": lambda: AutoMultivariateNormal(model),
            "iaf": lambda: AutoIAFNormal(model, hidden_dim=[64, 64], num_transforms=2),
        }[method]()
        loss = Trace_ELBO(**n)
    return SVI(model, guide, pyro.optim.Adam({"lr": lr}), loss)


@torch.no_grad()
def guide_draws(prob: Problem, guide: Callable[[], dict], n: int) -> np.ndarray:
    with pyro.plate("_draws", n, dim=-prob.max_plate_nesting - 1):
        values = guide()
    return flatten(prob.name, {k: v.detach().numpy() for k, v in values.items()})


def fit(prob: Problem, method: str, steps: int, args: argparse.Namespace, seed: int) -> dict:
    pyro.clear_param_store()
    pyro.set_rng_seed(seed)
    svi = build(method, prob.model, args.lr, args.particles)
    nonfinite, done, error = 0, 0, None
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            for _ in range(steps):
                loss = svi.step()
                done += 1
                if not math.isfinite(loss):
                    nonfinite += 1
        except Exception as e:  # noqa: BLE001 - reported, not hidden
            error = f"{type(e).__name__}: {e}"
    seconds = time.perf_counter() - t0
    out = {"seconds": seconds, "nonfinite_losses": nonfinite, "error": error}
    out["setup_error"] = error is not None and done == 0  # the guide's, at its first step
    nan_warnings = [str(w.message) for w in caught if "nan" in str(w.message).lower()]
    if nan_warnings:
        out["nan_warnings"] = len(nan_warnings)
    if error is None:
        pyro.set_rng_seed(seed + 1000)
        out["draws"] = guide_draws(prob, svi.guide, args.draws)
    return out


# --- NumPyro -------------------------------------------------------------------------------
@cache
def numpyro_model(name: str) -> Callable[[], None]:
    """``suite.numpyro_model(name)``, the NumPyro twin of the Pyro model, made once."""
    return suite.numpyro_model(name)


def build_numpyro(
    method: str, model: Callable[[], None], lr: float, particles: int | None
) -> NumPyroSVI:
    n = {} if particles is None else {"num_particles": particles}
    if method == "ardae":
        guide = numpyro_ardae.AutoImplicitGuide(model)
        loss = numpyro_ardae.ARDAE_ELBO(**n)
    else:
        guide = {
            "autonormal": lambda: numpyro_autoguide.AutoNormal(model),
            "mvn": lambda: numpyro_autoguide.AutoMultivariateNormal(model),
            "iaf": lambda: numpyro_autoguide.AutoIAFNormal(
                model, hidden_dims=[64, 64], num_flows=2
            ),
            "bnaf": lambda: numpyro_autoguide.AutoBNAFNormal(model),
        }[method]()
        loss = NumPyroTraceELBO(**n)
    return NumPyroSVI(model, guide, optax.adam(lr), loss)


@contextmanager
def compile_seconds() -> Iterator[list[float]]:
    """Sums JAX's compile timings (``COMPILE_EVENTS``) in the block into the yielded
    one-element list."""
    total = [0.0]

    def listen(event: str, duration: float, **_: object) -> None:
        if event in COMPILE_EVENTS:
            total[0] += duration

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        yield total
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)


def fit_numpyro(
    prob: Problem, method: str, steps: int, args: argparse.Namespace, seed: int
) -> dict:
    svi = build_numpyro(method, numpyro_model(prob.name), args.lr, args.particles)
    losses, error, stage = None, None, "setup"
    key = jax.random.PRNGKey(seed)
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught, compile_seconds() as compiling:
        warnings.simplefilter("always")
        try:
            state = svi.init(key)
            stage = "fit"
            run = svi.run(key, steps, progress_bar=False, init_state=state)
            losses = np.asarray(run.losses)  # waits for the last step
        except Exception as e:  # noqa: BLE001 - reported, not hidden
            error = f"{type(e).__name__}: {e}"
    seconds = time.perf_counter() - t0
    out = {
        "seconds": seconds,
        "compile_seconds": compiling[0],
        "nonfinite_losses": 0 if losses is None else int((~np.isfinite(losses)).sum()),
        "error": error,
        "setup_error": error is not None and stage == "setup",
    }
    diverged = [w for w in caught if issubclass(w.category, numpyro_ardae.DivergenceWarning)]
    if diverged:
        out["divergence_warnings"] = len(diverged)
    if error is None:
        draw_key = jax.random.PRNGKey(seed + 1000)
        values = svi.guide.sample_posterior(draw_key, run.params, sample_shape=(args.draws,))
        out["draws"] = flatten(prob.name, {k: np.asarray(v) for k, v in values.items()})
    # Each fit compiles its own programs; without this, the executables of some hundred fits
    # exhaust the process's memory mappings (vm.max_map_count) and LLVM fails to allocate.
    jax.clear_caches()
    return out


# --- both ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Backend:
    name: str
    prefix: str  # of its keys: "" for Pyro (the keys of the tables before NumPyro), "numpyro_"
    methods: tuple[str, ...]
    flows: tuple[str, ...]  # the methods ardae_vs_best_flow_geomean takes the best of
    fit: Callable[[Problem, str, int, argparse.Namespace, int], dict]


BACKENDS = {
    "pyro": Backend("pyro", "", METHODS, ("mvn", "iaf"), fit),
    "numpyro": Backend("numpyro", "numpyro_", NUMPYRO_METHODS, ("mvn", "iaf", "bnaf"), fit_numpyro),
}


class Fits(NamedTuple):
    """What :func:`evaluate` returns for the table and the equal-time rule."""

    edist: float  # median over seeds
    seconds: float  # mean over seeds, with compilation
    running: float  # mean over seeds, less compilation
    diverged: int  # fits that raised after set-up, gave non-finite draws or warned a
    # DivergenceWarning


def worst_ratio(ratios: np.ndarray) -> float:
    """The entry of ``ratios`` furthest from 1 on a log scale."""
    return float(ratios[np.argmax(np.abs(np.log(ratios)))])


def evaluate(
    backend: Backend,
    prob: Problem,
    method: str,
    steps: int,
    seeds: list[int],
    args: argparse.Namespace,
    ref_sd: np.ndarray,
    std_ref: np.ndarray,
    result: dict,
    suffix: str,
) -> Fits:
    """Fit once per seed and write ``{prefix}{model}_{method}{suffix}_*`` keys into
    ``result``."""
    key = f"{backend.prefix}{prob.name}_{method}{suffix}"
    eds, secs, compile_secs, sdratios, worst, fracs, mean_errs = [], [], [], [], [], [], []
    diverged = 0
    ref_mean = std_ref.mean(0) * ref_sd
    for seed in seeds:
        out = backend.fit(prob, method, steps, args, seed)
        secs.append(out["seconds"])
        if "compile_seconds" in out:
            compile_secs.append(out["compile_seconds"])
        for what in ("nonfinite_losses", "nan_warnings", "divergence_warnings"):
            if out.get(what):
                result[f"{key}_{what}"] = result.get(f"{key}_{what}", 0) + out[what]
        if out["error"]:
            result.setdefault(f"{key}_errors", []).append(out["error"])
            eds.append(float("nan"))
            diverged += not out["setup_error"]
            continue
        draws = out["draws"]
        finite = np.isfinite(draws).all(1)
        if not finite.all():
            result[f"{key}_nonfinite_draws"] = int((~finite).sum())
        diverged += int(not finite.all() or bool(out.get("divergence_warnings")))
        draws = draws[finite]
        if len(draws) < 2:
            eds.append(float("nan"))
            continue
        eds.append(
            energy_distance(torch.as_tensor(draws / ref_sd), torch.as_tensor(std_ref), False)
        )
        ratios = draws.std(0) / ref_sd
        sdratios.append(float(np.exp(np.log(ratios).mean())))
        worst.append(worst_ratio(ratios))
        mean_errs.append(float(np.max(np.abs(draws.mean(0) - ref_mean) / ref_sd)))
        if prob.name == "mixture":
            fracs.append(float((draws.sum(1) > 0).mean()))
    ed = float(np.median(eds))
    result[f"{key}_edist"] = None if math.isnan(ed) else round(ed, 4)
    result[f"{key}_seconds"] = round(float(np.mean(secs)), 2)
    if compile_secs:
        result[f"{key}_compile_seconds"] = round(float(np.mean(compile_secs)), 2)
    if sdratios:
        result[f"{key}_sdratio"] = round(float(np.median(sdratios)), 3)
        result[f"{key}_sdratio_worst"] = round(worst_ratio(np.array(worst)), 3)
        result[f"{key}_mean_err"] = round(float(np.median(mean_errs)), 3)
    if fracs:
        result[f"{key}_mode_frac"] = round(float(np.median(fracs)), 3)
    if len(seeds) > 1:
        result[f"{key}_edist_seeds"] = [round(e, 4) for e in eds]
        if fracs:
            result[f"{key}_mode_frac_seeds"] = [round(f, 3) for f in fracs]
    running = float(np.mean(secs) - (np.mean(compile_secs) if compile_secs else 0.0))
    return Fits(ed, float(np.mean(secs)), running, diverged)


def summary(
    result: dict, models: list[str], backend: Backend, divergences: dict[str, int]
) -> dict[str, float | int | None]:
    """The issue's two comparisons over the models where every method has a figure, ARDAE's
    worst sd ratio on the regressions and the count of diverged fits (``divergences`` maps a
    method to its count), for one backend."""
    p = backend.prefix
    out: dict[str, float | int | None] = {
        f"{p}ardae_vs_autonormal_max": None,
        f"{p}ardae_vs_best_flow_geomean": None,
    }
    ratios_an, ratios_flow = [], []
    for name in models:
        ed = {m: result.get(f"{p}{name}_{m}_edist") for m in backend.methods}
        if ed["ardae"] is None:
            ratios_an, ratios_flow = [], []
            break
        if ed["autonormal"] is not None:
            ratios_an.append(ed["ardae"] / (1.1 * ed["autonormal"] + 0.01))
        flows = [ed[m] for m in backend.flows if ed[m] is not None]
        if flows:
            ratios_flow.append(max(ed["ardae"], 1e-3) / max(min(flows), 1e-3))
    if ratios_an:
        out[f"{p}ardae_vs_autonormal_max"] = round(max(ratios_an), 3)
    if ratios_flow:
        out[f"{p}ardae_vs_best_flow_geomean"] = round(
            float(np.exp(np.mean(np.log(ratios_flow)))), 3
        )
    worst = [
        result[f"{p}{name}_ardae_sdratio_worst"]
        for name in models
        if name in REGRESSION_MODELS and f"{p}{name}_ardae_sdratio_worst" in result
    ]
    out[f"{p}ardae_regression_sd_ratio_worst"] = worst_ratio(np.array(worst)) if worst else None
    out[f"{p}ardae_divergences"] = divergences.get("ardae", 0)
    out[f"{p}divergences"] = sum(divergences.values())
    return out


def equal_time_steps(ardae: Fits, other: Fits, steps: int) -> int:
    """The steps the ``other`` method takes in ARDAE's seconds at its own rate over ``steps``
    (both less compilation), at most ``20 * steps``."""
    rate = steps / max(other.running, 1e-3)
    return int(min(ardae.running * rate, 20 * steps))


def print_table(backend: Backend, rows: list[dict], methods: list[str], equal_time: bool) -> None:
    cols = list(methods) + [m + "_eq" for m in methods if m != "ardae" and equal_time]
    head = f"{'model':<22}{'floor':>8}" + "".join(f"{c:>22}" for c in cols)
    seconds = "seconds, with compilation" if backend.name == "numpyro" else "seconds"
    print(
        f"\n{backend.name}: energy distance ({seconds})   "
        "[lower is better; floor = reference vs itself]"
    )
    print(head)
    for row in rows:
        cells = "".join(
            f"{row[c][0]:>13.4f} ({row[c][1]:5.1f}s)" if c in row else f"{'-':>22}" for c in cols
        )
        print(f"{row['model']:<22}{row['floor']:>8.4f}{cells}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--quick", action="store_true", help="1000 steps, 6 models")
    parser.add_argument("--backend", choices=("pyro", "numpyro", "both"), default="both")
    parser.add_argument("--steps", type=int, default=None, help="3000 (quick: 1000)")
    parser.add_argument("--lr", type=float, default=5e-3, help="Adam's constant rate")
    parser.add_argument(
        "--particles", type=int, default=None, help="for every method (default: each library's)"
    )
    parser.add_argument("--draws", type=int, default=2000, help="guide draws for the metric")
    parser.add_argument("--models", default=None, help="comma-separated (default: all)")
    parser.add_argument(
        "--methods", default=",".join(NUMPYRO_METHODS), help="comma-separated (bnaf: NumPyro)"
    )
    parser.add_argument(
        "--equal-time",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also train the others for the wall time ARDAE took (default: on, off in quick)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=1, help="fits per method (median edist)")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads; 1: XLA's CPU too (XLA_FLAGS)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Run the benchmark, print its tables and, last, its JSON; returns the JSON's dict."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.threads == 1:  # read when JAX first makes its CPU client
        os.environ.setdefault("XLA_FLAGS", SINGLE_THREAD_XLA)
    steps = args.steps or (1000 if args.quick else 3000)
    equal_time = (not args.quick) if args.equal_time is None else args.equal_time
    exact_draws = 2000 if args.quick else 4000
    suite = problems()
    wanted = args.models.split(",") if args.models else None
    wanted = wanted or (list(QUICK_MODELS) if args.quick else None)
    unknown = sorted(set(wanted or ()) - {p.name for p in suite})
    if unknown:
        raise ValueError(
            f"--models: unknown {unknown}; the suite's models are {[p.name for p in suite]}"
        )
    # a model's seeds follow its index in the full suite, not in the selection
    models = [(k, p) for k, p in enumerate(suite) if wanted is None or p.name in wanted]
    backends = [b for name, b in BACKENDS.items() if args.backend in (name, "both")]
    methods = {b.name: [m for m in b.methods if m in args.methods.split(",")] for b in backends}

    start = time.perf_counter()
    result: dict[str, object] = {
        "benchmark": "posteriors",
        "backends": [b.name for b in backends],
        "steps": steps,
        "optimizer": f"Adam(lr={args.lr}), constant",
        "num_particles": args.particles or "library defaults (ARDAE_ELBO 4, Trace_ELBO 1)",
        "defaults": args.particles is None,
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
    if any(b.name == "numpyro" for b in backends):
        result |= {
            "numpyro_ardae": "numpyro_ardae.AutoImplicitGuide() + ARDAE_ELBO() library defaults",
            "numpyro_iaf": "AutoIAFNormal(hidden_dims=[64,64], num_flows=2) + Trace_ELBO",
            "numpyro_bnaf": "AutoBNAFNormal() (num_flows=1, hidden_factors=[8,8]) + Trace_ELBO",
            "numpyro_seconds": "SVI.run, with JAX's compilation (also on its own: "
            "_compile_seconds); equal time compares seconds less compilation",
            "numpyro": numpyro.__version__,
            "jax": jax.__version__,
            "jax_device": str(jax.devices()[0]),
        }
    rows: dict[str, list[dict]] = {b.name: [] for b in backends}
    divergences = {b.name: dict.fromkeys(methods[b.name], 0) for b in backends}
    for k, prob in models:
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
        for backend in backends:
            p, ms = backend.prefix, methods[backend.name]
            row = {"model": prob.name, "floor": result[f"{prob.name}_floor_edist"]}
            fits: dict[str, Fits] = {}
            for j, method in enumerate(ms):
                seeds = [args.seed + 100 * k + j + 1000 * i for i in range(args.seeds)]
                fits[method] = evaluate(
                    backend, prob, method, steps, seeds, args, ref_sd, std, result, ""
                )
                row[method] = fits[method][:2]
                divergences[backend.name][method] += fits[method].diverged
            if equal_time and "ardae" in ms and f"{p}{prob.name}_ardae_edist" in result:
                for j, method in enumerate(ms):
                    if method == "ardae" or result.get(f"{p}{prob.name}_{method}_edist") is None:
                        continue
                    n_steps = equal_time_steps(fits["ardae"], fits[method], steps)
                    seeds = [args.seed + 100 * k + j + 50 + 1000 * i for i in range(args.seeds)]
                    eq = evaluate(
                        backend, prob, method, n_steps, seeds, args, ref_sd, std, result, "_eqtime"
                    )
                    result[f"{p}{prob.name}_{method}_eqtime_steps"] = n_steps
                    row[method + "_eq"] = eq[:2]
                    divergences[backend.name][method] += eq.diverged
            rows[backend.name].append(row)
            elapsed = time.perf_counter() - start
            print(f"[{elapsed:6.1f}s] {backend.name} {prob.name} done", flush=True)

    for backend in backends:
        print_table(backend, rows[backend.name], methods[backend.name], equal_time)
    for backend in backends:
        result |= summary(result, [p.name for _, p in models], backend, divergences[backend.name])
    result["wall_seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()

"""Robustness at the defaults: AutoImplicitGuide + ARDAE_ELBO against AutoNormal, per cell.

A cell is (backend, model, Adam learning rate, dtype, seed). In every cell both guides are
built with their defaults, trained with plain Adam at the cell's rate for ``--steps`` steps
(each ELBO at its own default: 4 particles for ``ARDAE_ELBO``, 1 for ``Trace_ELBO``, as a
new user runs them) and judged on ``--draws`` draws of the fitted guide
against the exact posterior:

* ``sd_ratio``: guide sd / exact sd per coordinate (constrained space); the cell reports
  the one furthest from 1 on the log scale;
* ``mean_err``: the largest ``|guide mean - exact mean| / exact sd`` over coordinates.

A fit *converges* when it neither raises nor yields non-finite draws and its ``mean_err``
is below 1; an implicit fit must also have every ``sd_ratio`` in [0.8, 1.25]
(the posteriors are close to Gaussian). ``failures`` counts the cells where AutoNormal
converges and the implicit guide does not. Target: 0.

Models (exact posteriors, no sampler needed):

* ``linreg``: ``y ~ N(X w, s)``, ``w ~ N(0, 3^2)^2``, ``s ~ HalfNormal(2)``, 50 rows; the
  exact marginals by quadrature over ``s`` (``w | s, y`` is Gaussian);
* ``gamma_poisson``: a Poisson rate with a Gamma(2, 1) prior, 20 counts: Gamma posterior;
* ``correlated``: a 5-coefficient regression with known noise on a design whose columns
  correlate at 0.9: a Gaussian posterior with strong correlations (a mean-field guide's sds
  come out too small; only its means are judged for convergence).

Usage::

    python -m benchmarks.robustness --quick      # linreg, lr 1e-2 and 3e-2, float32, 2 seeds
    python -m benchmarks.robustness --workers 2  # 3000 steps: 3 models x 4 rates x 2
                                                 # dtypes x 3 seeds x 2 backends

The last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

LRS = (1e-3, 3e-3, 1e-2, 3e-2)
DTYPES = ("float32", "float64")
BACKENDS = ("pyro", "numpyro")
SD_BOUNDS = (0.8, 1.25)
MAX_MEAN_ERR = 1.0


# --- data and exact posteriors (numpy, float64) ------------------------------------------
def linreg_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 2))
    return x, x @ np.array([1.0, -2.0]) + 0.5 * rng.normal(size=50)


def linreg_exact() -> tuple[np.ndarray, np.ndarray]:
    """Mean and sd of ``(w1, w2, s)`` by quadrature over ``s``: ``w | s, y`` is Gaussian."""
    x, y = linreg_data()
    s = np.linspace(1e-3, 4.0, 8000)
    log_w, means, second = [], [], []
    for si in s:
        prec = x.T @ x / si**2 + np.eye(2) / 9.0
        cov = np.linalg.inv(prec)
        m = cov @ x.T @ y / si**2
        marg = si**2 * np.eye(len(y)) + 9.0 * x @ x.T  # y | s, w integrated out
        _, logdet = np.linalg.slogdet(marg)
        log_lik = -0.5 * (logdet + y @ np.linalg.solve(marg, y))
        log_w.append(log_lik - si**2 / 8.0)  # HalfNormal(2), up to a constant
        means.append(m)
        second.append(cov + np.outer(m, m))
    w = np.exp(np.array(log_w) - max(log_w))
    w /= w.sum()
    mean_w = np.einsum("i,ij->j", w, np.array(means))
    var_w = np.diagonal(np.einsum("i,ijk->jk", w, np.array(second))) - mean_w**2
    mean_s = w @ s
    var_s = w @ s**2 - mean_s**2
    return np.append(mean_w, mean_s), np.sqrt(np.append(var_w, var_s))


COUNTS = np.random.default_rng(1).poisson(3.0, size=20).astype(np.float64)


def gamma_poisson_exact() -> tuple[np.ndarray, np.ndarray]:
    a, b = 2.0 + COUNTS.sum(), 1.0 + len(COUNTS)
    return np.array([a / b]), np.array([math.sqrt(a) / b])


def correlated_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2)
    corr = 0.9 * np.ones((5, 5)) + 0.1 * np.eye(5)
    x = rng.normal(size=(30, 5)) @ np.linalg.cholesky(corr).T
    return x, x @ np.array([1.0, -1.0, 0.5, 0.0, 2.0]) + rng.normal(size=30)


def correlated_exact() -> tuple[np.ndarray, np.ndarray]:
    x, y = correlated_data()
    cov = np.linalg.inv(x.T @ x + np.eye(5) / 4.0)
    return cov @ x.T @ y, np.sqrt(np.diagonal(cov))


# --- models, written the ordinary way ----------------------------------------------------
def models(ppl, dist, array: Callable) -> dict[str, tuple[Callable, tuple, list[str]]]:
    """The models in either backend: ``ppl`` is ``pyro`` or ``numpyro``, ``dist`` its
    distributions and ``array`` makes its arrays from numpy (the two share these names)."""
    x1, y1 = (array(a) for a in linreg_data())
    x3, y3 = (array(a) for a in correlated_data())

    def linreg(x, y):
        w = ppl.sample("w", dist.Normal(0.0, 3.0).expand([2]).to_event(1))
        s = ppl.sample("s", dist.HalfNormal(2.0))
        with ppl.plate("n", x.shape[0]):
            ppl.sample("y", dist.Normal(x @ w, s), obs=y)

    def gamma_poisson(c):
        rate = ppl.sample("rate", dist.Gamma(2.0, 1.0))
        with ppl.plate("n", c.shape[0]):
            ppl.sample("c", dist.Poisson(rate), obs=c)

    def correlated(x, y):
        w = ppl.sample("w", dist.Normal(0.0, 2.0).expand([5]).to_event(1))
        with ppl.plate("n", x.shape[0]):
            ppl.sample("y", dist.Normal(x @ w, 1.0), obs=y)

    return {
        "linreg": (linreg, (x1, y1), ["w", "s"]),
        "gamma_poisson": (gamma_poisson, (array(COUNTS),), ["rate"]),
        "correlated": (correlated, (x3, y3), ["w"]),
    }


EXACT = {
    "linreg": linreg_exact,
    "gamma_poisson": gamma_poisson_exact,
    "correlated": correlated_exact,
}


# --- one cell ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cell:
    backend: str
    model: str
    lr: float
    dtype: str
    seeds: tuple[int, ...]
    steps: int
    draws: int


def judge(draws: np.ndarray | None, model: str, error: str | None) -> dict[str, object]:
    if error is None and (draws is None or not np.all(np.isfinite(draws))):
        error = "non-finite draws"
    if error is not None:
        return {"ok": False, "error": error, "sd_ratio": None, "mean_err": None}
    mean, sd = EXACT[model]()
    ratio = draws.std(0) / sd
    worst = float(ratio[np.argmax(np.abs(np.log(ratio)))])
    mean_err = float(np.max(np.abs(draws.mean(0) - mean) / sd))
    return {"ok": mean_err < MAX_MEAN_ERR, "error": None, "sd_ratio": worst, "mean_err": mean_err}


def attempt(fit: Callable[[], dict], seed: int, guide: str, cell: Cell, sites: list[str]):
    """Run ``fit`` (train, then return a dict of ``cell.draws`` draws per site) and judge
    it; an exception is a result here, not a crash of the benchmark."""
    error, draws, start = None, None, time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sample = fit()
        draws = np.concatenate(
            [np.asarray(sample[s], np.float64).reshape(cell.draws, -1) for s in sites], -1
        )
    except Exception as e:  # noqa: BLE001
        error = f"{type(e).__name__}: {str(e)[:120]}"
    seconds = time.perf_counter() - start
    return {"seed": seed, "guide": guide, "seconds": seconds} | judge(draws, cell.model, error)


def attempts(fitter: Callable, guides: dict, cell: Cell, sites: list[str]) -> list[dict]:
    """Every guide (name: (guide class, ELBO class)) on every seed of ``cell``."""
    return [
        attempt(fitter(seed, *classes), seed, name, cell, sites)
        for seed in cell.seeds
        for name, classes in guides.items()
    ]


def run_pyro(cell: Cell) -> list[dict[str, object]]:
    import pyro
    import pyro.distributions as dist
    import torch
    from pyro.infer import SVI, Trace_ELBO
    from pyro.infer.autoguide import AutoNormal

    from pyro_ardae import ARDAE_ELBO, AutoImplicitGuide

    torch.set_num_threads(1)
    torch.set_default_dtype(getattr(torch, cell.dtype))
    dtype = torch.get_default_dtype()
    model, args, sites = models(pyro, dist, lambda a: torch.tensor(a, dtype=dtype))[cell.model]

    def fitter(seed: int, make: Callable, elbo: Callable) -> Callable[[], dict]:
        def fit() -> dict:
            pyro.clear_param_store()
            pyro.set_rng_seed(seed)
            guide = make(model)
            svi = SVI(model, guide, pyro.optim.Adam({"lr": cell.lr}), elbo())
            for _ in range(cell.steps):
                svi.step(*args)
            with torch.no_grad(), pyro.plate("_draws", cell.draws, dim=-2):
                return guide(*args)

        return fit

    guides = {"implicit": (AutoImplicitGuide, ARDAE_ELBO), "autonormal": (AutoNormal, Trace_ELBO)}
    return attempts(fitter, guides, cell, sites)


def run_numpyro(cell: Cell) -> list[dict[str, object]]:
    import jax

    if cell.dtype == "float64":  # global to the process: each cell has its own
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist
    import optax
    from numpyro.infer import SVI, Trace_ELBO
    from numpyro.infer.autoguide import AutoNormal

    from numpyro_ardae import ARDAE_ELBO, AutoImplicitGuide

    model, args, sites = models(numpyro, dist, jnp.asarray)[cell.model]

    def fitter(seed: int, make: Callable, elbo: Callable) -> Callable[[], dict]:
        def fit() -> dict:
            guide = make(model)
            svi = SVI(model, guide, optax.adam(cell.lr), elbo())
            result = svi.run(jax.random.PRNGKey(seed), cell.steps, *args, progress_bar=False)
            key = jax.random.PRNGKey(seed + 1000)
            return guide.sample_posterior(key, result.params, *args, sample_shape=(cell.draws,))

        return fit

    guides = {"implicit": (AutoImplicitGuide, ARDAE_ELBO), "autonormal": (AutoNormal, Trace_ELBO)}
    return attempts(fitter, guides, cell, sites)


def run_cell(cell: Cell) -> dict[str, object]:
    rows = (run_pyro if cell.backend == "pyro" else run_numpyro)(cell)
    return {
        "backend": cell.backend,
        "model": cell.model,
        "lr": cell.lr,
        "dtype": cell.dtype,
        "runs": rows,
    }


def failed(run: dict[str, object]) -> bool:
    if not run["ok"]:
        return True
    lo, hi = SD_BOUNDS
    return not lo <= run["sd_ratio"] <= hi


def summarise(cells: list[dict[str, object]]) -> dict[str, object]:
    failures, controlled, detail = 0, 0, []
    for cell in cells:
        by_seed: dict[int, dict[str, dict]] = {}
        for run in cell["runs"]:
            by_seed.setdefault(run["seed"], {})[run["guide"]] = run
        for seed, runs in sorted(by_seed.items()):
            if not runs["autonormal"]["ok"]:
                continue
            controlled += 1
            if failed(runs["implicit"]):
                failures += 1
                imp = runs["implicit"]
                detail.append(
                    f"{cell['backend']} {cell['model']} lr={cell['lr']:g} {cell['dtype']} "
                    f"seed={seed}: "
                    + (
                        imp["error"]
                        or f"sd_ratio {imp['sd_ratio']:.3f}, mean_err {imp['mean_err']:.3f}"
                    )
                )
    return {
        "failures": failures,
        "cells_where_autonormal_converges": controlled,
        "failed_cells": detail,
    }


def main(args: argparse.Namespace) -> dict[str, object]:
    cells = [
        Cell(b, m, lr, dt, tuple(args.seeds), args.steps, args.draws)
        for b in args.backends
        for m in args.models
        for lr in args.lrs
        for dt in args.dtypes
    ]
    start = time.perf_counter()
    # A fresh process per cell: NumPyro's float64 switch is global to a process.
    with mp.get_context("spawn").Pool(args.workers, maxtasksperchild=1) as pool:
        results = []
        for result in pool.imap(run_cell, cells):
            results.append(result)
            for run in result["runs"]:
                print(
                    json.dumps({k: result[k] for k in ("backend", "model", "lr", "dtype")} | run),
                    flush=True,
                )
    return {
        "benchmark": "robustness",
        "settings": {
            "steps": args.steps,
            "draws": args.draws,
            "seeds": args.seeds,
            "lrs": args.lrs,
            "dtypes": args.dtypes,
            "models": args.models,
            "backends": args.backends,
            "optimizer": "Adam, constant rate",
            "guides": "each at its library's defaults",
        },
        **summarise(results),
        "seconds": round(time.perf_counter() - start, 1),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="linreg, lr 1e-2/3e-2, float32")
    parser.add_argument("--steps", type=int, default=None, help="default 3000 (quick: 800)")
    parser.add_argument("--draws", type=int, default=4000)
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--models", nargs="+", choices=sorted(EXACT), default=None)
    parser.add_argument("--lrs", type=float, nargs="+", default=None)
    parser.add_argument("--dtypes", nargs="+", choices=DTYPES, default=None)
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--workers", type=int, default=1, help="processes (one core each)")
    args = parser.parse_args(argv)
    quick = {
        "steps": 800,
        "seeds": [0, 1],
        "models": ["linreg"],
        "lrs": [1e-2, 3e-2],
        "dtypes": ["float32"],
    }
    full = {
        "steps": 3000,
        "seeds": [0, 1, 2],
        "models": sorted(EXACT),
        "lrs": list(LRS),
        "dtypes": list(DTYPES),
    }
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


if __name__ == "__main__":
    print(json.dumps(main(parse_args())))

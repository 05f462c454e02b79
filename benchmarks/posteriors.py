"""Posterior accuracy: AutoImplicitGuide + ARDAE_ELBO vs AutoNormal and AutoIAFNormal.

Three methods, same optimiser, steps and particles:

* ``ardae``: :class:`pyro_ardae.AutoImplicitGuide` + :class:`pyro_ardae.ARDAE_ELBO`, both
  with the library's defaults (recorded in the JSON: ``ardae_elbo_defaults``, and the
  library's source hash ``pyro_ardae_src_sha256``, as the library is still changing);
* ``autonormal``: ``AutoNormal`` + ``Trace_ELBO``;
* ``iaf``: ``AutoIAFNormal(hidden_dim=[64, 64], num_transforms=2)`` + ``Trace_ELBO``.

Optimiser: ``ClippedAdam(lr=5e-3, lrd)`` with the rate decayed to 10% over the run;
``num_particles=8, vectorize_particles=True`` for every method.

Models (reference draws in brackets):

* ``eight_schools``: non-centred eight schools, mu ~ N(0, 5), tau ~ HalfCauchy(5),
  theta_tilde ~ N(0, 1)^8, y_j ~ N(mu + tau theta_tilde_j, sigma_j) [NumPyro NUTS];
  compared on (mu, log tau, theta_tilde), 10-d;
* ``mixture``: 2-D mixture 0.5 N((1, 1), 0.5^2 I) + 0.5 N((-1, -1), 0.5^2 I) [exact];
* ``correlated``: 2-D Gaussian, unit sds, rho = 0.95 [exact];
* ``banana``: z1 ~ N(0, 1.5^2), z2 | z1 ~ N(0.6 (z1^2 - 2.25), 0.4^2) [exact];
* ``logistic``: Bayesian logistic regression, 5 weights ~ N(0, 2^2), 100 synthetic
  observations [NumPyro NUTS].

The 2-D targets are written as z ~ N(0, I) plus ``pyro.factor(log p(z) - log N(z; 0, I))``.
NUTS references are cached in ``benchmarks/.cache/`` (git-ignored).

Metric: the energy distance between ``--draws`` guide draws X and the reference draws Y,
every coordinate divided by the reference sd,

    D^2 = 2 E|X - Y| - E|X - X'| - E|Y - Y'|     (Euclidean norms),

with U-statistics for the within-sample terms (so D^2 is unbiased, 0 in expectation when
q = p, and can be slightly negative). ``{model}_floor_edist`` is the same statistic between
two halves of the reference: the noise level. Also reported: ``{model}_{method}_sdratio``
(geometric mean over coordinates of guide sd / reference sd; < 1 is under-dispersion),
``mixture_{method}_mode_frac`` (fraction of draws with z1 + z2 > 0; exact 0.5) and the wall
time of training, ``{model}_{method}_seconds``. With ``--equal-time``, AutoNormal and
AutoIAFNormal are trained again for as many steps as they do in the seconds ARDAE took
(``{model}_{method}_eqtime_edist``). ``--seeds N`` fits every method N times (seeds differ)
and reports the median, with the per-seed values in ``*_edist_seeds``.

Usage::

    python benchmarks/posteriors.py --quick     # 1000 steps, about a minute (NUTS cached)
    python benchmarks/posteriors.py             # 3000 steps, 4 x 1000 NUTS draws

The last line of stdout is one JSON object with the results.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from common import provenance
from pyro.infer import SVI, Trace_ELBO
from pyro.infer.autoguide import AutoIAFNormal, AutoNormal

from pyro_ardae import ARDAE_ELBO, AutoImplicitGuide, energy_distance

CACHE = Path(__file__).resolve().parent / ".cache"
METHODS = ("ardae", "autonormal", "iaf")

# --- data -----------------------------------------------------------------------------
SCHOOLS_Y = [28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0]
SCHOOLS_SIGMA = [15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0]


def logistic_data(seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(100, 5))
    w = np.array([1.5, -1.0, 0.5, 0.0, 2.0])
    y = (rng.uniform(size=100) < 1 / (1 + np.exp(-x @ w))).astype(np.float64)
    return x, y


# --- 2-D targets (torch log-densities, exact samplers) ----------------------------------
MIX_MEAN, MIX_SD = torch.tensor([1.0, 1.0]), 0.5
RHO = 0.95
BAN_SD1, BAN_B, BAN_SD2 = 1.5, 0.6, 0.4


def _normal_lp(x: torch.Tensor, loc, scale) -> torch.Tensor:
    return dist.Normal(loc, scale).log_prob(x)


def mixture_lp(z: torch.Tensor) -> torch.Tensor:
    a = _normal_lp(z, MIX_MEAN, MIX_SD).sum(-1)
    b = _normal_lp(z, -MIX_MEAN, MIX_SD).sum(-1)
    return torch.logaddexp(a, b) + math.log(0.5)


def mixture_exact(n: int, g: torch.Generator) -> torch.Tensor:
    sign = torch.where(torch.rand(n, 1, generator=g) < 0.5, 1.0, -1.0)
    return sign * MIX_MEAN + MIX_SD * torch.randn(n, 2, generator=g)


_COV = torch.tensor([[1.0, RHO], [RHO, 1.0]])


def correlated_lp(z: torch.Tensor) -> torch.Tensor:
    return dist.MultivariateNormal(torch.zeros(2), _COV).log_prob(z)


def correlated_exact(n: int, g: torch.Generator) -> torch.Tensor:
    return torch.randn(n, 2, generator=g) @ torch.linalg.cholesky(_COV).T


def banana_lp(z: torch.Tensor) -> torch.Tensor:
    z1, z2 = z[..., 0], z[..., 1]
    mean2 = BAN_B * (z1**2 - BAN_SD1**2)
    return _normal_lp(z1, 0.0, BAN_SD1) + _normal_lp(z2, mean2, BAN_SD2)


def banana_exact(n: int, g: torch.Generator) -> torch.Tensor:
    z1 = BAN_SD1 * torch.randn(n, generator=g)
    z2 = BAN_B * (z1**2 - BAN_SD1**2) + BAN_SD2 * torch.randn(n, generator=g)
    return torch.stack([z1, z2], -1)


def factor_model(log_density: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[], None]:
    base = dist.Normal(torch.zeros(2), 1.0).to_event(1)

    def model() -> None:
        z = pyro.sample("z", base)
        pyro.factor("target", log_density(z) - base.log_prob(z))

    return model


# --- Pyro models with NUTS references ----------------------------------------------------
def eight_schools_model() -> None:
    y, sigma = torch.tensor(SCHOOLS_Y), torch.tensor(SCHOOLS_SIGMA)
    mu = pyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = pyro.sample("tau", dist.HalfCauchy(5.0))
    with pyro.plate("schools", 8):
        theta_tilde = pyro.sample("theta_tilde", dist.Normal(0.0, 1.0))
        pyro.sample("obs", dist.Normal(mu + tau * theta_tilde, sigma), obs=y)


_LX, _LY = (torch.tensor(a, dtype=torch.float32) for a in logistic_data())


def logistic_model() -> None:
    w = pyro.sample("w", dist.Normal(torch.zeros(5), 2.0).to_event(1))
    # w: (..., 1, 5) under vectorised particles, the 1 on the data plate's dim
    logits = (w * _LX).sum(-1)
    with pyro.plate("data", 100):
        pyro.sample("y", dist.Bernoulli(logits=logits), obs=_LY)


def numpyro_model(name: str):
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as nd

    if name == "eight_schools":
        y, sigma = jnp.array(SCHOOLS_Y), jnp.array(SCHOOLS_SIGMA)

        def model():
            mu = numpyro.sample("mu", nd.Normal(0.0, 5.0))
            tau = numpyro.sample("tau", nd.HalfCauchy(5.0))
            with numpyro.plate("schools", 8):
                theta_tilde = numpyro.sample("theta_tilde", nd.Normal(0.0, 1.0))
                numpyro.sample("obs", nd.Normal(mu + tau * theta_tilde, sigma), obs=y)

        return model
    if name == "logistic":
        x, y = (jnp.array(a) for a in logistic_data())

        def model():
            w = numpyro.sample("w", nd.Normal(jnp.zeros(5), 2.0).to_event(1))
            with numpyro.plate("data", 100):
                numpyro.sample("y", nd.Bernoulli(logits=x @ w), obs=y)

        return model
    raise ValueError(name)


def flatten(name: str, s: dict) -> np.ndarray:
    """Per-draw coordinate vector the metric is computed on, ``(n, d)``."""
    n = len(next(iter(s.values())))

    def col(v) -> np.ndarray:
        return np.asarray(v, dtype=np.float64).reshape(n, -1)

    if name == "eight_schools":
        return np.concatenate([col(s["mu"]), np.log(col(s["tau"])), col(s["theta_tilde"])], 1)
    if name == "logistic":
        return col(s["w"])
    return col(s["z"])


def nuts_reference(name: str, chains: int, warmup: int, draws: int, seed: int) -> dict:
    """NumPyro NUTS draws ``(chains * draws, d)`` (cached) and run facts."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{name}_c{chains}_w{warmup}_d{draws}_s{seed}.npz"
    if path.exists():
        z = np.load(path)
        return {"draws": z["draws"], "divergences": int(z["divergences"]), "cached": True}
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    os.environ.setdefault(
        "XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    )
    import jax
    from numpyro.infer import MCMC, NUTS

    mcmc = MCMC(
        NUTS(numpyro_model(name), target_accept_prob=0.95),
        num_warmup=warmup,
        num_samples=draws,
        num_chains=chains,
        chain_method="sequential",
        progress_bar=False,
    )
    mcmc.run(jax.random.PRNGKey(seed), extra_fields=("diverging",))
    samples = {k: np.asarray(v) for k, v in mcmc.get_samples().items()}
    divergences = int(np.asarray(mcmc.get_extra_fields()["diverging"]).sum())
    out = flatten(name, samples)
    np.savez(path, draws=out, divergences=divergences)
    return {"draws": out, "divergences": divergences, "cached": False}


@dataclass
class Problem:
    name: str
    model: Callable[[], None]
    max_plate_nesting: int
    exact: Callable[[int, torch.Generator], torch.Tensor] | None = None


PROBLEMS = [
    Problem("eight_schools", eight_schools_model, 1),
    Problem("mixture", factor_model(mixture_lp), 0, mixture_exact),
    Problem("correlated", factor_model(correlated_lp), 0, correlated_exact),
    Problem("banana", factor_model(banana_lp), 0, banana_exact),
    Problem("logistic", logistic_model, 1),
]


# --- metric -----------------------------------------------------------------------------
# --- fitting ------------------------------------------------------------------------------
def build(method: str, model, steps: int, lr: float, particles: int) -> SVI:
    optim = pyro.optim.ClippedAdam({"lr": lr, "lrd": 0.1 ** (1 / max(steps, 1))})
    vec = particles > 1
    if method == "ardae":
        guide = AutoImplicitGuide(model)
        loss = ARDAE_ELBO(num_particles=particles, vectorize_particles=vec)
    elif method == "autonormal":
        guide = AutoNormal(model)
        loss = Trace_ELBO(num_particles=particles, vectorize_particles=vec)
    elif method == "iaf":
        guide = AutoIAFNormal(model, hidden_dim=[64, 64], num_transforms=2)
        loss = Trace_ELBO(num_particles=particles, vectorize_particles=vec)
    else:
        raise ValueError(method)
    return SVI(model, guide, optim, loss)


@torch.no_grad()
def guide_draws(prob: Problem, guide, n: int) -> np.ndarray:
    with pyro.plate("_draws", n, dim=-prob.max_plate_nesting - 1):
        values = guide()
    return flatten(prob.name, {k: v.detach().numpy() for k, v in values.items()})


def fit(prob: Problem, method: str, steps: int, args, seed: int) -> dict:
    pyro.clear_param_store()
    pyro.set_rng_seed(seed)
    svi = build(method, prob.model, steps, args.lr, args.particles)
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
    eds, secs, sdratios, fracs = [], [], [], []
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
        if prob.name == "mixture":
            fracs.append(float((draws.sum(1) > 0).mean()))
    ed = float(np.median(eds))
    result[f"{key}_edist"] = None if math.isnan(ed) else round(ed, 4)
    result[f"{key}_seconds"] = round(float(np.mean(secs)), 2)
    if sdratios:
        result[f"{key}_sdratio"] = round(float(np.median(sdratios)), 3)
    if fracs:
        result[f"{key}_mode_frac"] = round(float(np.median(fracs)), 3)
    if len(seeds) > 1:
        result[f"{key}_edist_seeds"] = [round(e, 4) for e in eds]
        if fracs:
            result[f"{key}_mode_frac_seeds"] = [round(f, 3) for f in fracs]
    return ed, float(np.mean(secs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short run, about 1-2 minutes")
    parser.add_argument("--steps", type=int, default=None, help="3000 (quick: 1000)")
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--particles", type=int, default=8, help="vectorised when > 1")
    parser.add_argument("--draws", type=int, default=2000, help="guide draws for the metric")
    parser.add_argument("--models", default=",".join(p.name for p in PROBLEMS))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument(
        "--equal-time",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also train autonormal/iaf for the wall time ARDAE took (default: on, off in quick)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=1, help="fits per method (median edist)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    steps = args.steps or (1000 if args.quick else 3000)
    equal_time = (not args.quick) if args.equal_time is None else args.equal_time
    chains, warmup, nuts_draws = (2, 500, 1000) if args.quick else (4, 1000, 1000)
    exact_draws = 2000 if args.quick else 4000
    models = [p for p in PROBLEMS if p.name in args.models.split(",")]
    methods = [m for m in METHODS if m in args.methods.split(",")]

    start = time.perf_counter()
    result: dict[str, object] = {
        "benchmark": "posteriors",
        "steps": steps,
        "optimizer": f"ClippedAdam(lr={args.lr}, decayed to 10% over the run)",
        "num_particles": args.particles,
        "vectorize_particles": args.particles > 1,
        "guide_draws": args.draws,
        "metric": "energy distance D^2 = 2E|X-Y| - E|X-X'| - E|Y-Y'| (U-stat), coordinates "
        "/ reference sd",
        "ardae": "AutoImplicitGuide() + ARDAE_ELBO() library defaults",
        "iaf": "AutoIAFNormal(hidden_dim=[64,64], num_transforms=2) + Trace_ELBO",
        "nuts": f"NumPyro NUTS {chains} chains x {nuts_draws} draws, warmup {warmup}, "
        "target_accept 0.95",
        "exact_reference_draws": exact_draws,
        "equal_time": equal_time,
        "seeds_per_method": args.seeds,
        **provenance(),
    }
    rows = []
    for k, prob in enumerate(models):
        t_ref = time.perf_counter()
        if prob.exact is not None:
            g = torch.Generator().manual_seed(1234 + k)
            ref = prob.exact(exact_draws, g).double().numpy()
        else:
            info = nuts_reference(prob.name, chains, warmup, nuts_draws, args.seed)
            ref = info["draws"]
            result[f"{prob.name}_nuts_divergences"] = info["divergences"]
        result[f"{prob.name}_reference_seconds"] = round(time.perf_counter() - t_ref, 1)
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
    head = f"{'model':<14}{'floor':>8}" + "".join(f"{c:>22}" for c in cols)
    print("\nenergy distance (seconds)   [lower is better; floor = reference vs itself]")
    print(head)
    for row in rows:
        cells = "".join(
            f"{row[c][0]:>13.4f} ({row[c][1]:5.1f}s)" if c in row else f"{'-':>22}" for c in cols
        )
        print(f"{row['model']:<14}{row['floor']:>8.4f}{cells}")
    result["wall_seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()

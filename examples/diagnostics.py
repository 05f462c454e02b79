"""ArviZ diagnostics of implicit posteriors, next to AutoNormal and NUTS, in both backends.

Two models with synthetic data made here: a hierarchical model (eight-schools-like, J groups,
non-centred, HalfCauchy scale) and a linear regression. Each is fitted with AutoImplicitGuide
(ARDAE_ELBO), AutoNormal (Trace_ELBO) and NUTS, in Pyro and in NumPyro. Printed: ``az.summary``
of the implicit fit, ``az.compare`` (LOO) of the three fits, the comparison of each fit with
NUTS (standardised mean and sd errors, energy distance) and the kernel Stein discrepancy of each
fit next to that of NUTS. Saved: ``az.plot_pair`` and ``az.plot_posterior`` of the implicit fit.

    python -m examples.diagnostics --steps 3000 --out outputs/diagnostics
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as ndist
import optax
import pyro
import pyro.distributions as dist
import torch
from numpyro.infer import MCMC, NUTS
from numpyro.infer import SVI as NSVI
from numpyro.infer import Trace_ELBO as NTrace_ELBO
from numpyro.infer.autoguide import AutoNormal as NAutoNormal
from pyro.infer import SVI, Trace_ELBO
from pyro.infer.autoguide import AutoNormal

import numpyro_ardae
import pyro_ardae


def make_data(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    j, n, d = 8, 40, 3
    theta = 4.0 + 3.0 * rng.standard_normal(j)
    sigma = rng.uniform(8.0, 16.0, j)
    x = rng.standard_normal((n, d))
    return {
        "y_groups": theta + sigma * rng.standard_normal(j),
        "sigma": sigma,
        "x": x,
        "y_reg": x @ np.array([1.0, -0.5, 0.0]) + 0.3 + 0.7 * rng.standard_normal(n),
    }


# --- the models, once per backend ----------------------------------------------------------
def pyro_hierarchical(sigma, y):
    mu = pyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = pyro.sample("tau", dist.HalfCauchy(5.0))
    with pyro.plate("groups", len(sigma)):
        eta = pyro.sample("eta", dist.Normal(0.0, 1.0))
        pyro.sample("obs", dist.Normal(mu + tau * eta, sigma), obs=y)


def numpyro_hierarchical(sigma, y):
    mu = numpyro.sample("mu", ndist.Normal(0.0, 5.0))
    tau = numpyro.sample("tau", ndist.HalfCauchy(5.0))
    with numpyro.plate("groups", sigma.shape[0]):
        eta = numpyro.sample("eta", ndist.Normal(0.0, 1.0))
        numpyro.sample("obs", ndist.Normal(mu + tau * eta, sigma), obs=y)


def pyro_regression(x, y):
    w = pyro.sample("w", dist.Normal(0.0, 1.0).expand([x.shape[1]]).to_event(1))
    b = pyro.sample("b", dist.Normal(0.0, 1.0))
    s = pyro.sample("s", dist.HalfNormal(1.0))
    with pyro.plate("data", x.shape[0]):
        # (x * w).sum(-1), not x @ w: under vectorised particles w is (P, 1, d), and this keeps
        # the particle dim apart from the data plate's (a wrong shape here silently counts the
        # likelihood P times; the Stein discrepancy and the NUTS comparison show it)
        pyro.sample("obs", dist.Normal((x * w).sum(-1) + b, s), obs=y)


def numpyro_regression(x, y):
    w = numpyro.sample("w", ndist.Normal(0.0, 1.0).expand([x.shape[1]]).to_event(1))
    b = numpyro.sample("b", ndist.Normal(0.0, 1.0))
    s = numpyro.sample("s", ndist.HalfNormal(1.0))
    with numpyro.plate("data", x.shape[0]):
        numpyro.sample("obs", ndist.Normal(x @ w + b, s), obs=y)


MODELS = {
    "hierarchical": (pyro_hierarchical, numpyro_hierarchical, ("sigma", "y_groups")),
    "regression": (pyro_regression, numpyro_regression, ("x", "y_reg")),
}


# --- fits -----------------------------------------------------------------------------------
def nuts(model, args, draws: int, chains: int, seed: int):
    mcmc = MCMC(
        NUTS(model, target_accept_prob=0.95),
        num_warmup=draws,
        num_samples=draws,
        num_chains=chains,
        chain_method="sequential",
        progress_bar=False,
    )
    mcmc.run(jax.random.PRNGKey(seed), *args)
    return az.from_numpyro(mcmc), mcmc.get_samples()


def pyro_fits(model, args, steps: int, num_samples: int, seed: int) -> dict:
    targs = tuple(torch.as_tensor(a, dtype=torch.float32) for a in args)
    out = {}
    for name, guide, elbo in (
        (
            "implicit",
            pyro_ardae.AutoImplicitGuide(model),
            pyro_ardae.ARDAE_ELBO(num_particles=8, vectorize_particles=True),
        ),
        ("autonormal", AutoNormal(model), Trace_ELBO(num_particles=8, vectorize_particles=True)),
    ):
        pyro.clear_param_store()
        pyro.set_rng_seed(seed)
        svi = SVI(
            model, guide, pyro.optim.ClippedAdam({"lr": 1e-2, "lrd": 0.05 ** (1 / steps)}), elbo
        )
        for _ in range(steps):
            svi.step(*targs)
        # the export works for any guide (AutoNormal too): it traces the guide, replays the model
        out[name] = pyro_ardae.to_inference_data(model, guide, *targs, num_samples=num_samples)
    return out


def numpyro_fits(model, args, steps: int, num_samples: int, seed: int) -> dict:
    jargs = tuple(jnp.asarray(a) for a in args)
    out = {}
    for name, guide, elbo in (
        (
            "implicit",
            numpyro_ardae.AutoImplicitGuide(model),
            numpyro_ardae.ARDAE_ELBO(num_particles=8),
        ),
        ("autonormal", NAutoNormal(model), NTrace_ELBO(num_particles=8)),
    ):
        optim = optax.adam(optax.exponential_decay(1e-2, steps, 0.05))
        result = NSVI(model, guide, optim, elbo).run(
            jax.random.PRNGKey(seed), steps, *jargs, progress_bar=False
        )
        out[name] = numpyro_ardae.to_inference_data(
            model,
            guide,
            result.params,
            jax.random.PRNGKey(seed + 1),
            *jargs,
            num_samples=num_samples,
        )
    return out


def main(args: argparse.Namespace) -> dict[str, float]:
    torch.set_num_threads(args.threads)
    data = make_data(args.seed)
    out_dir = Path(args.out) if args.out else None
    result: dict[str, float] = {}
    for model_name, (pmodel, nmodel, keys) in MODELS.items():
        margs = tuple(data[k] for k in keys)
        nuts_idata, nuts_samples = nuts(
            nmodel, tuple(jnp.asarray(a) for a in margs), args.nuts_draws, args.chains, args.seed
        )
        ref = {k: np.asarray(v) for k, v in nuts_samples.items()}
        for backend, fits_fn, model, ksd in (
            ("pyro", pyro_fits, pmodel, pyro_ardae.stein_discrepancy),
            ("numpyro", numpyro_fits, nmodel, numpyro_ardae.stein_discrepancy),
        ):
            fits = fits_fn(model, margs, args.steps, args.num_samples, args.seed)
            fits["nuts"] = nuts_idata
            print(f"\n=== {model_name} / {backend} ===")
            print(az.summary(fits["implicit"]))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                print(az.compare(fits, ic="loo"))
            kargs = tuple(
                torch.as_tensor(a, dtype=torch.float32) if backend == "pyro" else jnp.asarray(a)
                for a in margs
            )
            n_ksd = min(args.num_samples, 400)
            nuts_sub = {k: v[:n_ksd] for k, v in ref.items()}
            ksd_ref = ksd(model, nuts_sub, *kargs)
            for fit in ("implicit", "autonormal"):
                table = pyro_ardae.compare_to_reference(fits[fit], ref)
                print(f"\n{fit} vs NUTS:\n{table.round(3)}")
                draws = {
                    k: np.asarray(fits[fit].posterior[k]).reshape(
                        (-1,) + fits[fit].posterior[k].shape[2:]
                    )[:n_ksd]
                    for k in ref
                }
                value = ksd(model, draws, *kargs)
                print(f"{fit}: Stein discrepancy {value:.3f} (NUTS draws: {ksd_ref:.3f})")
                key = f"{model_name}_{backend}_{fit}"
                result[f"{key}_edist"] = float(table["energy_distance"].iloc[0])
                result[f"{key}_ksd"] = value
            result[f"{model_name}_{backend}_nuts_ksd"] = ksd_ref
            if out_dir is not None:
                import matplotlib

                matplotlib.use("Agg")
                out_dir.mkdir(parents=True, exist_ok=True)
                names = [k for k in ref if k != "eta"][:4]
                az.plot_pair(
                    fits["implicit"], var_names=names, kind="kde" if args.kde else "scatter"
                )
                matplotlib.pyplot.savefig(out_dir / f"{model_name}_{backend}_pair.png", dpi=80)
                az.plot_posterior(fits["implicit"], var_names=names)
                matplotlib.pyplot.savefig(out_dir / f"{model_name}_{backend}_posterior.png", dpi=80)
                matplotlib.pyplot.close("all")
    return result


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--steps", type=int, default=3000, help="SVI steps per fit")
    p.add_argument("--num-samples", type=int, default=1000, help="guide draws per fit")
    p.add_argument("--nuts-draws", type=int, default=1000, help="NUTS warm-up and draws per chain")
    p.add_argument("--chains", type=int, default=4, help="NUTS chains")
    p.add_argument("--kde", action="store_true", help="KDE pair plots (slower)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--out", default="outputs/diagnostics", help="figure folder ('' for none)")
    return p


if __name__ == "__main__":
    main(parser().parse_args())

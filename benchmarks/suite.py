"""The posterior suite: models of the kinds users fit, and their reference draws.

Each :class:`Problem` has a Pyro model (what the guides are fitted to), the map from a
dict of draws to the coordinates the metrics compare (``flatten``: unconstrained-looking,
e.g. ``log tau``), and a reference: an exact sampler, or NumPyro NUTS draws of the same model
cached in ``benchmarks/references/`` (tracked, float32, with their r-hat and ESS). Every
model has a NumPyro twin, ``numpyro_model(name)`` (same sites, same coordinates).

``python -m benchmarks.suite`` (re)builds the NUTS references that are missing and prints
one JSON object with every reference's r-hat, bulk ESS and divergences; ``--quick`` only
checks the cached ones.

Models (d: compared coordinates):

* ``eight_schools`` (d 10) and ``eight_schools_centred`` (d 10): hierarchical, heavy-tailed
  scale ``tau ~ HalfCauchy(5)``, non-centred and centred; one reference for both (the
  centred coordinates ``theta = mu + tau theta_tilde`` of the non-centred NUTS draws);
* ``funnel`` (d 3): Neal's funnel, ``v ~ N(0, 1.5^2)``, ``x | v ~ N(0, e^v)^2`` [exact];
* ``mixture`` (d 2): two well-separated Gaussian modes [exact];
* ``correlated`` (d 2): a Gaussian with correlation 0.95 [exact];
* ``banana`` (d 2): a curved, non-Gaussian target [exact];
* ``dirichlet`` (d 4): a Dirichlet-multinomial's simplex, compared on the first 4 of 5
  probabilities [exact];
* ``gamma_poisson`` (d 1): a positive rate [exact];
* ``logistic`` (d 5): logistic regression on synthetic data;
* ``breast_cancer`` (d 31): logistic regression on scikit-learn's breast-cancer data
  (standardised, intercept), the classic 31-coefficient test bed;
* ``diabetes`` (d 12): linear regression on scikit-learn's diabetes data, 10 coefficients,
  intercept and log noise scale;
* ``ar1`` (d 2): an AR(1) time series, ``phi ~ U(-1, 1)``, ``sigma ~ HalfNormal(1)``, 100
  steps, compared on ``(phi, log sigma)``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyro
import pyro.distributions as dist
import torch

REFERENCES = Path(__file__).resolve().parent / "references"
NUTS_SETTINGS = {"chains": 4, "warmup": 1000, "draws": 1000, "seed": 0}

SCHOOLS_Y = [28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0]
SCHOOLS_SIGMA = [15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0]
FUNNEL_SD = 1.5
MIX_MEAN, MIX_SD = 1.0, 0.5
RHO = 0.95
BAN_SD1, BAN_B, BAN_SD2 = 1.5, 0.6, 0.4
DIRICHLET_PRIOR = np.ones(5)
DIRICHLET_COUNTS = np.array([3.0, 10.0, 0.0, 25.0, 7.0])
POISSON_COUNTS = np.array([2.0, 4.0, 3.0, 1.0, 5.0, 2.0, 6.0, 3.0])


# --- data (numpy, float64) ----------------------------------------------------------------
def logistic_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(100, 5))
    w = np.array([1.5, -1.0, 0.5, 0.0, 2.0])
    return x, (rng.uniform(size=100) < 1 / (1 + np.exp(-x @ w))).astype(np.float64)


def _standardised(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(0)) / x.std(0)


def breast_cancer_data() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    return _standardised(x), y.astype(np.float64)


def diabetes_data() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True)
    return _standardised(x), (y - y.mean()) / y.std()


def ar1_data() -> np.ndarray:
    rng = np.random.default_rng(3)
    y = np.zeros(100)
    for t in range(1, 100):
        y[t] = 0.7 * y[t - 1] + 0.5 * rng.normal()
    return y


# --- Pyro models (float32 tensors of the data, made once) ----------------------------------
def _t(a: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(a, dtype=torch.get_default_dtype())


def eight_schools(centred: bool) -> Callable[[], None]:
    y, sigma = _t(np.array(SCHOOLS_Y)), _t(np.array(SCHOOLS_SIGMA))

    def model() -> None:
        mu = pyro.sample("mu", dist.Normal(0.0, 5.0))
        tau = pyro.sample("tau", dist.HalfCauchy(5.0))
        with pyro.plate("schools", 8):
            if centred:
                theta = pyro.sample("theta", dist.Normal(mu, tau))
            else:
                theta = mu + tau * pyro.sample("theta_tilde", dist.Normal(0.0, 1.0))
            pyro.sample("obs", dist.Normal(theta, sigma), obs=y)

    return model


def factor_model(log_density: Callable[[torch.Tensor], torch.Tensor], dim: int = 2):
    """``z ~ N(0, I)`` reweighted to ``log_density`` by a factor: a target given by its
    density."""

    def model() -> None:
        base = dist.Normal(torch.zeros(dim), 1.0).to_event(1)
        z = pyro.sample("z", base)
        pyro.factor("target", log_density(z) - base.log_prob(z))

    return model


def funnel_model() -> None:
    v = pyro.sample("v", dist.Normal(0.0, FUNNEL_SD))
    pyro.sample("x", dist.Normal(0.0, (v / 2).exp()).expand([2]).to_event(1))


def mixture_lp(z: torch.Tensor) -> torch.Tensor:
    a = dist.Normal(MIX_MEAN, MIX_SD).log_prob(z).sum(-1)
    b = dist.Normal(-MIX_MEAN, MIX_SD).log_prob(z).sum(-1)
    return torch.logaddexp(a, b) + math.log(0.5)


def correlated_lp(z: torch.Tensor) -> torch.Tensor:
    cov = torch.tensor([[1.0, RHO], [RHO, 1.0]])
    return dist.MultivariateNormal(torch.zeros(2), cov).log_prob(z)


def banana_lp(z: torch.Tensor) -> torch.Tensor:
    z1, z2 = z[..., 0], z[..., 1]
    mean2 = BAN_B * (z1**2 - BAN_SD1**2)
    return dist.Normal(0.0, BAN_SD1).log_prob(z1) + dist.Normal(mean2, BAN_SD2).log_prob(z2)


def dirichlet_model() -> None:
    p = pyro.sample("p", dist.Dirichlet(_t(DIRICHLET_PRIOR)))
    counts = _t(DIRICHLET_COUNTS)
    pyro.sample("counts", dist.Multinomial(int(counts.sum()), p), obs=counts)


def gamma_poisson_model() -> None:
    rate = pyro.sample("rate", dist.Gamma(3.0, 1.0))
    with pyro.plate("data", len(POISSON_COUNTS)):
        pyro.sample("obs", dist.Poisson(rate), obs=_t(POISSON_COUNTS))


def logistic_model(data: Callable[[], tuple[np.ndarray, np.ndarray]], intercept: bool):
    x, y = (_t(a) for a in data())

    def model() -> None:
        dim = x.shape[1] + intercept
        w = pyro.sample("w", dist.Normal(0.0, 2.0).expand([dim]).to_event(1))
        logits = x @ w[1:] + w[0] if intercept else x @ w
        with pyro.plate("data", len(y)):
            pyro.sample("y", dist.Bernoulli(logits=logits), obs=y)

    return model


def diabetes_model() -> None:
    x, y = (_t(a) for a in diabetes_data())
    b = pyro.sample("b", dist.Normal(0.0, 1.0))
    w = pyro.sample("w", dist.Normal(0.0, 1.0).expand([10]).to_event(1))
    s = pyro.sample("s", dist.HalfNormal(1.0))
    with pyro.plate("data", len(y)):
        pyro.sample("y", dist.Normal(x @ w + b, s), obs=y)


def ar1_model() -> None:
    y = _t(ar1_data())
    phi = pyro.sample("phi", dist.Uniform(-1.0, 1.0))
    sigma = pyro.sample("sigma", dist.HalfNormal(1.0))
    with pyro.plate("t", len(y) - 1):
        pyro.sample("y", dist.Normal(phi * y[:-1], sigma), obs=y[1:])


# --- NumPyro twins (same sites, same coordinates; jax and numpyro imported when called) ----
def numpyro_model(name: str) -> Callable[[], None]:
    """The NumPyro twin of the suite's Pyro model ``name``."""
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as nd

    if name in ("eight_schools", "eight_schools_centred"):
        centred = name == "eight_schools_centred"
        y, sigma = jnp.array(SCHOOLS_Y), jnp.array(SCHOOLS_SIGMA)

        def model():
            mu = numpyro.sample("mu", nd.Normal(0.0, 5.0))
            tau = numpyro.sample("tau", nd.HalfCauchy(5.0))
            with numpyro.plate("schools", 8):
                if centred:
                    theta = numpyro.sample("theta", nd.Normal(mu, tau))
                else:
                    theta = mu + tau * numpyro.sample("theta_tilde", nd.Normal(0.0, 1.0))
                numpyro.sample("obs", nd.Normal(theta, sigma), obs=y)

        return model
    if name == "funnel":

        def model():
            v = numpyro.sample("v", nd.Normal(0.0, FUNNEL_SD))
            numpyro.sample("x", nd.Normal(0.0, jnp.exp(v / 2)).expand([2]).to_event(1))

        return model
    if name in ("mixture", "correlated", "banana"):

        def mixture_lp(z):
            a = nd.Normal(MIX_MEAN, MIX_SD).log_prob(z).sum(-1)
            b = nd.Normal(-MIX_MEAN, MIX_SD).log_prob(z).sum(-1)
            return jnp.logaddexp(a, b) + math.log(0.5)

        def correlated_lp(z):
            cov = jnp.array([[1.0, RHO], [RHO, 1.0]])
            return nd.MultivariateNormal(jnp.zeros(2), cov).log_prob(z)

        def banana_lp(z):
            z1, z2 = z[..., 0], z[..., 1]
            mean2 = BAN_B * (z1**2 - BAN_SD1**2)
            return nd.Normal(0.0, BAN_SD1).log_prob(z1) + nd.Normal(mean2, BAN_SD2).log_prob(z2)

        lps = {"mixture": mixture_lp, "correlated": correlated_lp, "banana": banana_lp}
        log_density = lps[name]

        def model():  # the twin of factor_model(log_density)
            base = nd.Normal(jnp.zeros(2), 1.0).to_event(1)
            z = numpyro.sample("z", base)
            numpyro.factor("target", log_density(z) - base.log_prob(z))

        return model
    if name == "dirichlet":
        prior, counts = jnp.array(DIRICHLET_PRIOR), jnp.array(DIRICHLET_COUNTS)

        def model():
            p = numpyro.sample("p", nd.Dirichlet(prior))
            numpyro.sample("counts", nd.Multinomial(int(DIRICHLET_COUNTS.sum()), p), obs=counts)

        return model
    if name == "gamma_poisson":
        counts = jnp.array(POISSON_COUNTS)

        def model():
            rate = numpyro.sample("rate", nd.Gamma(3.0, 1.0))
            with numpyro.plate("data", len(POISSON_COUNTS)):
                numpyro.sample("obs", nd.Poisson(rate), obs=counts)

        return model
    if name in ("logistic", "breast_cancer"):
        intercept = name == "breast_cancer"
        x, y = (jnp.array(a) for a in (breast_cancer_data() if intercept else logistic_data()))

        def model():
            w = numpyro.sample("w", nd.Normal(0.0, 2.0).expand([x.shape[1] + intercept]))
            logits = x @ w[1:] + w[0] if intercept else x @ w
            numpyro.sample("y", nd.Bernoulli(logits=logits), obs=y)

        return model
    if name == "diabetes":
        x, y = (jnp.array(a) for a in diabetes_data())

        def model():
            b = numpyro.sample("b", nd.Normal(0.0, 1.0))
            w = numpyro.sample("w", nd.Normal(0.0, 1.0).expand([10]))
            s = numpyro.sample("s", nd.HalfNormal(1.0))
            numpyro.sample("y", nd.Normal(x @ w + b, s), obs=y)

        return model
    if name == "ar1":
        y = jnp.array(ar1_data())

        def model():
            phi = numpyro.sample("phi", nd.Uniform(-1.0, 1.0))
            sigma = numpyro.sample("sigma", nd.HalfNormal(1.0))
            numpyro.sample("y", nd.Normal(phi * y[:-1], sigma), obs=y[1:])

        return model
    raise ValueError(f"no model named {name!r}")


# --- coordinates and exact samplers --------------------------------------------------------
def _col(v, n: int) -> np.ndarray:
    return np.asarray(v, dtype=np.float64).reshape(n, -1)


def flatten(name: str, s: dict) -> np.ndarray:
    """The coordinates the metrics compare, ``(n, d)``, from a dict of draws."""
    n = len(next(iter(s.values())))
    if name == "eight_schools":
        return np.concatenate(
            [_col(s["mu"], n), np.log(_col(s["tau"], n)), _col(s["theta_tilde"], n)], 1
        )
    if name == "eight_schools_centred":
        return np.concatenate([_col(s["mu"], n), np.log(_col(s["tau"], n)), _col(s["theta"], n)], 1)
    if name == "funnel":
        return np.concatenate([_col(s["v"], n), _col(s["x"], n)], 1)
    if name == "dirichlet":
        return _col(s["p"], n)[:, :4]
    if name == "gamma_poisson":
        return _col(s["rate"], n)
    if name in ("logistic", "breast_cancer"):
        return _col(s["w"], n)
    if name == "diabetes":
        return np.concatenate([_col(s["b"], n), _col(s["w"], n), np.log(_col(s["s"], n))], 1)
    if name == "ar1":
        return np.concatenate([_col(s["phi"], n), np.log(_col(s["sigma"], n))], 1)
    return _col(s["z"], n)


def exact_draws(name: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if name == "funnel":
        v = FUNNEL_SD * rng.normal(size=(n, 1))
        return np.concatenate([v, np.exp(v / 2) * rng.normal(size=(n, 2))], 1)
    if name == "mixture":
        sign = np.where(rng.uniform(size=(n, 1)) < 0.5, 1.0, -1.0)
        return sign * MIX_MEAN + MIX_SD * rng.normal(size=(n, 2))
    if name == "correlated":
        chol = np.linalg.cholesky(np.array([[1.0, RHO], [RHO, 1.0]]))
        return rng.normal(size=(n, 2)) @ chol.T
    if name == "banana":
        z1 = BAN_SD1 * rng.normal(size=n)
        z2 = BAN_B * (z1**2 - BAN_SD1**2) + BAN_SD2 * rng.normal(size=n)
        return np.stack([z1, z2], -1)
    if name == "dirichlet":
        return rng.dirichlet(DIRICHLET_PRIOR + DIRICHLET_COUNTS, size=n)[:, :4]
    if name == "gamma_poisson":
        a, b = 3.0 + POISSON_COUNTS.sum(), 1.0 + len(POISSON_COUNTS)
        return rng.gamma(a, 1 / b, size=(n, 1))
    raise ValueError(f"no exact sampler for {name!r}")


def centred_schools(draws: np.ndarray) -> np.ndarray:
    """``(mu, log tau, theta_tilde)`` draws to ``(mu, log tau, theta)``."""
    mu, log_tau, tilde = draws[:, :1], draws[:, 1:2], draws[:, 2:]
    return np.concatenate([mu, log_tau, mu + np.exp(log_tau) * tilde], 1)


# --- NUTS references -----------------------------------------------------------------------
def nuts_reference(name: str, rebuild: bool = True) -> dict[str, object]:
    """Cached NUTS draws ``(chains * draws, d)`` of ``name``, their r-hat (max over
    coordinates), bulk ESS (min) and divergences; built when missing and ``rebuild``."""
    path = REFERENCES / f"{name}.npz"
    if path.exists():
        z = np.load(path)
        return {
            "draws": z["draws"].astype(np.float64),
            "rhat": float(z["rhat"]),
            "ess": float(z["ess"]),
            "divergences": int(z["divergences"]),
            "cached": True,
        }
    if not rebuild:
        raise FileNotFoundError(f"no reference {path}; run python -m benchmarks.suite")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax
    from numpyro.diagnostics import effective_sample_size, split_gelman_rubin
    from numpyro.infer import MCMC, NUTS

    cfg = NUTS_SETTINGS
    mcmc = MCMC(
        NUTS(numpyro_model(name), target_accept_prob=0.95),
        num_warmup=cfg["warmup"],
        num_samples=cfg["draws"],
        num_chains=cfg["chains"],
        chain_method="sequential",
        progress_bar=False,
    )
    mcmc.run(jax.random.PRNGKey(cfg["seed"]), extra_fields=("diverging",))
    by_chain = mcmc.get_samples(group_by_chain=True)
    chains = np.stack(
        [
            flatten(name, {k: np.asarray(v[c]) for k, v in by_chain.items()})
            for c in range(cfg["chains"])
        ]
    )
    rhat = float(np.max(split_gelman_rubin(chains)))
    ess = float(np.min(effective_sample_size(chains)))
    divergences = int(np.asarray(mcmc.get_extra_fields()["diverging"]).sum())
    draws = chains.reshape(-1, chains.shape[-1])
    REFERENCES.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path, draws=draws.astype(np.float32), rhat=rhat, ess=ess, divergences=divergences
    )
    return {"draws": draws, "rhat": rhat, "ess": ess, "divergences": divergences, "cached": False}


@dataclass(frozen=True)
class Problem:
    name: str
    model: Callable[[], None]
    max_plate_nesting: int
    kind: str  # what a user would call it, for the docs' table

    def reference(self, n: int, seed: int, rebuild: bool = True) -> dict[str, object]:
        """Reference draws ``(n', d)``: ``n`` exact ones, or the cached NUTS draws."""
        if self.name in NUTS_MODELS or self.name == "eight_schools_centred":
            base = "eight_schools" if self.name == "eight_schools_centred" else self.name
            info = nuts_reference(base, rebuild)
            if self.name == "eight_schools_centred":
                info = {**info, "draws": centred_schools(info["draws"])}
            return info
        return {"draws": exact_draws(self.name, n, np.random.default_rng(seed))}


NUTS_MODELS = ("eight_schools", "logistic", "breast_cancer", "diabetes", "ar1")


def problems() -> list[Problem]:
    return [
        Problem("eight_schools", eight_schools(False), 1, "hierarchical, non-centred"),
        Problem("eight_schools_centred", eight_schools(True), 1, "hierarchical, centred"),
        Problem("funnel", funnel_model, 0, "funnel"),
        Problem("mixture", factor_model(mixture_lp), 0, "two modes"),
        Problem("correlated", factor_model(correlated_lp), 0, "strong correlation"),
        Problem("banana", factor_model(banana_lp), 0, "curved"),
        Problem("dirichlet", dirichlet_model, 0, "simplex"),
        Problem("gamma_poisson", gamma_poisson_model, 1, "positive"),
        Problem("logistic", logistic_model(logistic_data, False), 1, "regression, 5 coef."),
        Problem(
            "breast_cancer",
            logistic_model(breast_cancer_data, True),
            1,
            "regression, 31 coef., real data",
        ),
        Problem("diabetes", diabetes_model, 1, "regression, 10 coef., real data"),
        Problem("ar1", ar1_model, 1, "time series"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="check cached references only")
    args = parser.parse_args()
    out: dict[str, object] = {"benchmark": "suite_references", "nuts": NUTS_SETTINGS}
    for name in NUTS_MODELS:
        info = nuts_reference(name, rebuild=not args.quick)
        out[name] = {k: info[k] for k in ("rhat", "ess", "divergences", "cached")}
        out[name]["shape"] = list(info["draws"].shape)
    out["converged"] = all(
        out[n]["rhat"] < 1.01 and out[n]["ess"] > 400 and out[n]["divergences"] == 0
        for n in NUTS_MODELS
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main()

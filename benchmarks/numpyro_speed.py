"""Step throughput of the jitted NumPyro ARDAE step against the Pyro ARDAE step.

The model of ``benchmarks/svi_speed.py`` (10-d Bayesian linear regression, 50 observations)
in both backends, with the same settings: AutoImplicitGuide with default architecture,
ARDAE_ELBO(num_particles=8) (vectorised) with default score settings, Adam(5e-3). NumPyro
AutoNormal + Trace_ELBO is timed for reference. NumPyro runs ``SVI.update`` under ``jit``
and ``lax.scan``, as ``svi.run(..., progress_bar=False)`` does; compile time is excluded
from the rates and reported separately. Blocks of steps are
interleaved across methods; the rate is the median over blocks.

``speedup_vs_pyro_10d`` = NumPyro ARDAE steps/s / Pyro ARDAE steps/s (the bar is >= 10),
at the library defaults; ``speedup_vs_pyro_10d_small`` is the same with small networks and
128 score samples (``SMALL``), where the step's arithmetic is small and Pyro's per-step
Python overhead dominates. At the defaults both backends are bound by the same arithmetic
(the AR-DAE step on 512 samples through a 3 x 128 MLP), so no compiler removes most of it.

Usage::

    python benchmarks/numpyro_speed.py --quick
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as ndist
import optax
import pyro
import torch
from common import provenance
from numpyro.infer import SVI as NSVI
from numpyro.infer import Trace_ELBO as NTrace_ELBO
from numpyro.infer.autoguide import AutoNormal as NAutoNormal
from svi_speed import DIM, LR, NOISE_SD, make_data
from svi_speed import model as pyro_model

import numpyro_ardae
import pyro_ardae

PARTICLES = 8
GUIDE_IDS = itertools.count()
SMALL = {
    "guide": {"hidden": (64, 64), "score_hidden": (64, 64)},
    "elbo": {"score_samples": 128},
}


def numpyro_model(x, y):
    w = numpyro.sample("w", ndist.Normal(jnp.zeros(DIM), 1.0).to_event(1))
    with numpyro.plate("data", x.shape[0]):
        numpyro.sample("y", ndist.Normal(x @ w, NOISE_SD), obs=y)


class NumPyroRunner:
    """``SVI.update`` under ``jit`` and ``lax.scan``, as ``svi.run(..., progress_bar=False)``
    runs it: ``block(n)`` runs n steps in one call (compiled once per n, not timed)."""

    def __init__(self, guide, loss, data) -> None:
        self.svi = NSVI(numpyro_model, guide, optax.adam(LR), loss)
        self.data = data
        self.state = self.svi.init(jax.random.PRNGKey(0), *data)
        self.compiled: dict[int, tuple] = {}
        self.compile_seconds = self._compile(1)

    def _compile(self, n: int) -> float:
        def body(state, _):
            return self.svi.update(state, *self.data)

        run = jax.jit(lambda state: jax.lax.scan(body, state, None, length=n))
        t0 = time.perf_counter()
        compiled = run.lower(self.state).compile()
        self.compiled[n] = compiled
        return time.perf_counter() - t0

    def block(self, n: int) -> None:
        if n not in self.compiled:
            self._compile(n)
        self.state, losses = self.compiled[n](self.state)
        jax.block_until_ready(losses)


class PyroRunner:
    def __init__(self, data, guide_kwargs: dict, elbo_kwargs: dict) -> None:
        pyro.set_rng_seed(0)
        guide = pyro_ardae.AutoImplicitGuide(pyro_model, **guide_kwargs)
        guide._pyro_name = f"guide{next(GUIDE_IDS)}"  # two guides share one param store
        loss = pyro_ardae.ARDAE_ELBO(
            num_particles=PARTICLES, vectorize_particles=True, **elbo_kwargs
        )
        self.svi = pyro.infer.SVI(pyro_model, guide, pyro.optim.Adam({"lr": LR}), loss)
        self.data = data
        self.compile_seconds = 0.0

    def block(self, n: int) -> None:
        for _ in range(n):
            self.svi.step(*self.data)


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="about a minute")
    parser.add_argument("--blocks", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    blocks = args.blocks or (3 if args.quick else 7)
    # steps per block: about 2 s each for Pyro's ARDAE, the others scaled to similar time
    steps = {
        "pyro_ardae": 400,
        "numpyro_ardae": 600,
        "pyro_ardae_small": 600,
        "numpyro_ardae_small": 6000,
        "numpyro_autonormal": 20000,
    }
    if args.quick:
        steps = {k: v // 2 for k, v in steps.items()}

    x, y = make_data()
    jdata = (jnp.asarray(x.numpy()), jnp.asarray(y.numpy()))
    pyro.clear_param_store()  # the two Pyro guides have distinct names (prefixes below)
    runners = {
        "pyro_ardae": PyroRunner((x, y), {}, {}),
        "numpyro_ardae": NumPyroRunner(
            numpyro_ardae.AutoImplicitGuide(numpyro_model),
            numpyro_ardae.ARDAE_ELBO(num_particles=PARTICLES),
            jdata,
        ),
        "pyro_ardae_small": PyroRunner((x, y), SMALL["guide"], SMALL["elbo"]),
        "numpyro_ardae_small": NumPyroRunner(
            numpyro_ardae.AutoImplicitGuide(numpyro_model, **SMALL["guide"]),
            numpyro_ardae.ARDAE_ELBO(num_particles=PARTICLES, **SMALL["elbo"]),
            jdata,
        ),
        "numpyro_autonormal": NumPyroRunner(
            NAutoNormal(numpyro_model), NTrace_ELBO(num_particles=PARTICLES), jdata
        ),
    }
    for r in runners.values():  # warm-up
        r.block(20)
    rates: dict[str, list[float]] = {m: [] for m in runners}
    for b in range(blocks):
        for m in runners if b % 2 == 0 else list(runners)[::-1]:
            t0 = time.perf_counter()
            runners[m].block(steps[m])
            rates[m].append(steps[m] / (time.perf_counter() - t0))
    rate = {m: statistics.median(r) for m, r in rates.items()}
    result = {
        "benchmark": "numpyro_speed",
        "model": f"bayesian linear regression, dim={DIM}, n=50",
        "settings": f"AutoImplicitGuide() + ARDAE_ELBO(num_particles={PARTICLES}, vectorized), "
        f"Adam({LR}); NumPyro AutoNormal + Trace_ELBO(num_particles={PARTICLES})",
        "blocks": blocks,
        "jax": jax.__version__,
        "numpyro": numpyro.__version__,
        "jax_devices": str(jax.devices()),
        **provenance(),
        **{f"{m}_steps_per_s": round(r, 1) for m, r in rate.items()},
        "numpyro_ardae_compile_seconds": round(runners["numpyro_ardae"].compile_seconds, 2),
        "numpyro_autonormal_compile_seconds": round(
            runners["numpyro_autonormal"].compile_seconds, 2
        ),
        "speedup_vs_pyro_10d": round(rate["numpyro_ardae"] / rate["pyro_ardae"], 2),
        "small_settings": str(SMALL),
        "speedup_vs_pyro_10d_small": round(
            rate["numpyro_ardae_small"] / rate["pyro_ardae_small"], 2
        ),
        "speedup_bar": 10.0,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()

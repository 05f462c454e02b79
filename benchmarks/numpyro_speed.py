"""Step throughput of the jitted NumPyro ARDAE step against the Pyro ARDAE step.

The model of ``benchmarks/svi_speed.py`` (10-d Bayesian linear regression, 50 observations)
in both backends, with the same settings: AutoImplicitGuide with default architecture,
ARDAE_ELBO(num_particles=8) (vectorised) with default score settings, Adam(5e-3). NumPyro
AutoNormal + Trace_ELBO is timed for reference. NumPyro runs ``SVI.update`` under ``jit``
and ``lax.scan``, as ``svi.run(..., progress_bar=False)`` does; compile time is excluded
from the rates and reported separately. Each method's block length is calibrated to about 1.5 s
of steps (0.5 s with ``--quick``; a power of two, compiled before timing); blocks are interleaved
across methods and the rate is the median over blocks.

``--devices cpu cuda`` runs every method on each device in the same process (Pyro with its
tensors on the torch device, NumPyro on the matching JAX backend). Keys: ``{method}_{device}
_steps_per_s``; ``speedup_vs_pyro_10d_{device}`` = NumPyro ARDAE steps/s / Pyro ARDAE steps/s
on that device; ``speedup_vs_pyro_10d`` (the bar is >= 10) = each backend on its fastest
device of this machine. ``..._small`` are the same with small networks and 128 score samples
(``SMALL``), where the step's arithmetic is small and Pyro's per-step Python overhead
dominates. On CPU at the defaults both backends are bound by the same arithmetic (the AR-DAE
step on 512 samples through a 3 x 128 MLP), so no compiler removes most of it.

Usage::

    python -m benchmarks.numpyro_speed --quick
    python -m benchmarks.numpyro_speed --devices cpu cuda    # on a machine with a GPU
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import time

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as ndist
import optax
import pyro
import torch
from numpyro.infer import SVI as NSVI
from numpyro.infer import Trace_ELBO as NTrace_ELBO
from numpyro.infer.autoguide import AutoNormal as NAutoNormal

import numpyro_ardae
import pyro_ardae

from .common import provenance
from .svi_speed import DIM, LR, NOISE_SD, make_data
from .svi_speed import model as pyro_model

PARTICLES = 8
JAX_PLATFORM = {"cpu": "cpu", "cuda": "gpu"}  # --devices name -> JAX platform
GUIDE_IDS = itertools.count()
SMALL = {
    "guide": {"hidden": (64, 64), "score": pyro_ardae.ScoreConfig(hidden=(64, 64))},
    "elbo": {"score_samples": 128},
}


def numpyro_model(x, y):
    w = numpyro.sample("w", ndist.Normal(jnp.zeros(DIM), 1.0).to_event(1))
    with numpyro.plate("data", x.shape[0]):
        numpyro.sample("y", ndist.Normal(x @ w, NOISE_SD), obs=y)


class NumPyroRunner:
    """``SVI.update`` under ``jit`` and ``lax.scan``, as ``svi.run(..., progress_bar=False)``
    runs it, on one JAX device: ``block(n)`` runs n steps in one call; ``prepare(n)`` compiles
    that call ahead, so that no timed block includes compilation."""

    def __init__(self, guide, loss, data, device: str) -> None:
        self.device = jax.devices(JAX_PLATFORM[device])[0]
        with jax.default_device(self.device):
            self.svi = NSVI(numpyro_model, guide, optax.adam(LR), loss)
            self.data = jax.device_put(data, self.device)
            self.state = self.svi.init(jax.random.PRNGKey(0), *self.data)
        self.compiled: dict[int, object] = {}
        self.compile_seconds = self.prepare(1)

    def prepare(self, n: int) -> float:
        """Compile the n-step call if needed; returns the seconds it took."""
        if n in self.compiled:
            return 0.0

        def body(state, _):
            return self.svi.update(state, *self.data)

        run = jax.jit(lambda state: jax.lax.scan(body, state, None, length=n))
        t0 = time.perf_counter()
        with jax.default_device(self.device):
            self.compiled[n] = run.lower(self.state).compile()
        return time.perf_counter() - t0

    def block(self, n: int) -> None:
        self.prepare(n)
        self.state, losses = self.compiled[n](self.state)
        jax.block_until_ready(losses)


class PyroRunner:
    """``SVI.step`` in a Python loop with every tensor on one torch device; a block ends
    with a device synchronisation."""

    def __init__(self, data, guide_kwargs: dict, elbo_kwargs: dict, device: str) -> None:
        self.device = torch.device(device)
        with self.device:
            pyro.set_rng_seed(0)
            guide = pyro_ardae.AutoImplicitGuide(pyro_model, **guide_kwargs)
            guide._pyro_name = f"guide{next(GUIDE_IDS)}"  # the guides share one param store
            loss = pyro_ardae.ARDAE_ELBO(
                num_particles=PARTICLES, vectorize_particles=True, **elbo_kwargs
            )
            self.svi = pyro.infer.SVI(pyro_model, guide, pyro.optim.Adam({"lr": LR}), loss)
        self.data = tuple(t.to(self.device) for t in data)
        self.compile_seconds = 0.0

    def prepare(self, n: int) -> float:
        return 0.0

    def block(self, n: int) -> None:
        with self.device:
            for _ in range(n):
                self.svi.step(*self.data)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def calibrate(runner, seconds: float) -> int:
    """Steps per timed block: a power of two that takes about ``seconds``."""
    runner.prepare(16)
    t0 = time.perf_counter()
    runner.block(16)
    rate = 16 / (time.perf_counter() - t0)
    return 2 ** max(4, round(math.log2(rate * seconds)))


def build(device: str, data, jdata) -> dict[str, object]:
    """The five runners of one device, named ``{method}_{device}``."""
    return {
        f"pyro_ardae_{device}": PyroRunner(data, {}, {}, device),
        f"numpyro_ardae_{device}": NumPyroRunner(
            numpyro_ardae.AutoImplicitGuide(numpyro_model),
            numpyro_ardae.ARDAE_ELBO(num_particles=PARTICLES),
            jdata,
            device,
        ),
        f"pyro_ardae_small_{device}": PyroRunner(data, SMALL["guide"], SMALL["elbo"], device),
        f"numpyro_ardae_small_{device}": NumPyroRunner(
            numpyro_ardae.AutoImplicitGuide(numpyro_model, **SMALL["guide"]),
            numpyro_ardae.ARDAE_ELBO(num_particles=PARTICLES, **SMALL["elbo"]),
            jdata,
            device,
        ),
        f"numpyro_autonormal_{device}": NumPyroRunner(
            NAutoNormal(numpyro_model), NTrace_ELBO(num_particles=PARTICLES), jdata, device
        ),
    }


def speedups(rate: dict[str, float], devices: list[str], suffix: str) -> dict[str, float]:
    """NumPyro ARDAE steps/s over Pyro ARDAE steps/s: per device, and each backend on its
    fastest device (the key without a device name, the one the bar applies to)."""
    out = {}
    for d in devices:
        out[f"speedup_vs_pyro_10d{suffix}_{d}"] = round(
            rate[f"numpyro_ardae{suffix}_{d}"] / rate[f"pyro_ardae{suffix}_{d}"], 2
        )
    best = {b: max(rate[f"{b}_ardae{suffix}_{d}"] for d in devices) for b in ("numpyro", "pyro")}
    out[f"speedup_vs_pyro_10d{suffix}"] = round(best["numpyro"] / best["pyro"], 2)
    return out


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="about a minute")
    parser.add_argument("--blocks", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument(
        "--devices",
        nargs="+",
        default=["cpu"],
        choices=sorted(JAX_PLATFORM),
        help="run every method on each of these (cuda: torch's CUDA and JAX's GPU backend)",
    )
    args = parser.parse_args()
    if "cuda" in args.devices and not torch.cuda.is_available():
        raise ValueError("--devices cuda needs torch with CUDA; torch.cuda.is_available() is False")
    torch.set_num_threads(args.threads)
    blocks = args.blocks or (3 if args.quick else 7)
    seconds = 0.5 if args.quick else 1.5  # per timed block

    x, y = make_data()
    jdata = (jnp.asarray(x.numpy()), jnp.asarray(y.numpy()))
    pyro.clear_param_store()  # the Pyro guides have distinct names (GUIDE_IDS)
    runners = {}
    for d in args.devices:
        runners.update(build(d, (x, y), jdata))
    for r in runners.values():  # warm-up: the first Pyro steps set up the guide
        r.block(16)
    steps = {m: calibrate(r, seconds) for m, r in runners.items()}
    for m, r in runners.items():
        r.prepare(steps[m])
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
        "devices": args.devices,
        "blocks": blocks,
        "block_steps": steps,
        "jax": jax.__version__,
        "numpyro": numpyro.__version__,
        "jax_devices": str([jax.devices(JAX_PLATFORM[d])[0] for d in args.devices]),
        "cuda_device": torch.cuda.get_device_name() if "cuda" in args.devices else None,
        **provenance(),
        **{f"{m}_steps_per_s": round(r, 1) for m, r in rate.items()},
        **{
            f"{m}_compile_seconds": round(r.compile_seconds, 2)
            for m, r in runners.items()
            if isinstance(r, NumPyroRunner)
        },
        **speedups(rate, args.devices, ""),
        "small_settings": str(SMALL),
        **speedups(rate, args.devices, "_small"),
        "speedup_bar": 10.0,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()

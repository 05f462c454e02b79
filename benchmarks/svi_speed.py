"""SVI step throughput: AutoImplicitGuide + ARDAE_ELBO against Pyro's autoguides.

Model: 10-d Bayesian linear regression, w ~ N(0, I_10), y ~ N(X w, 0.5^2), 50 fixed
observations (a correlated 10-d Gaussian posterior). Methods, all with Adam(lr=5e-3):

* ``ardae``: :class:`pyro_ardae.AutoImplicitGuide` + :class:`pyro_ardae.ARDAE_ELBO`, library
  defaults (recorded in the JSON with the library's source hash: it is still changing);
* ``iaf``: ``AutoIAFNormal(hidden_dim=[64, 64], num_transforms=2)`` + ``Trace_ELBO``;
* ``autonormal``: ``AutoNormal`` + ``Trace_ELBO``.

Three particle settings: each ELBO at its library default, first (keys with ``_defaults``:
``ARDAE_ELBO()`` draws 4 particles, ``Trace_ELBO()`` 1), then the same for every method,
``num_particles=1`` (the headline keys, which the bar is on) and ``num_particles=8,
vectorize_particles=True`` (keys with ``_p8``). After warm-up steps,
each method runs ``--blocks`` timed blocks of ``--block-steps`` steps, interleaved across
methods (round robin) to spread machine noise; the rate is the median over blocks.
``ratio_vs_iaf_10d`` = ARDAE step time / IAF step time (the bar is <= 3).

``--profile`` adds a cProfile of ``ARDAE_ELBO.loss_and_grads`` (printed before the JSON).

Usage::

    python -m benchmarks.svi_speed --quick      # about a minute on 2 cores
    python -m benchmarks.svi_speed              # more and longer blocks
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import statistics
import time

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import SVI, Trace_ELBO
from pyro.infer.autoguide import AutoIAFNormal, AutoNormal

from pyro_ardae import ARDAE_ELBO, AutoImplicitGuide

from .common import provenance

DIM, NUM_OBS, NOISE_SD, LR = 10, 50, 0.5, 5e-3


def make_data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(NUM_OBS, DIM, generator=g)
    x[:, 1] = 0.8 * x[:, 0] + 0.6 * x[:, 1]  # correlated design -> correlated posterior
    w = torch.randn(DIM, generator=g)
    y = x @ w + NOISE_SD * torch.randn(NUM_OBS, generator=g)
    return x, y


def model(x: torch.Tensor, y: torch.Tensor) -> None:
    w = pyro.sample("w", dist.Normal(torch.zeros(DIM), 1.0).to_event(1))
    # w: (..., 1, D) under vectorised particles, the 1 on the data plate's dim -> (..., N)
    mean = (w * x).sum(-1)
    with pyro.plate("data", x.shape[0]):
        pyro.sample("y", dist.Normal(mean, NOISE_SD), obs=y)


def build(method: str, particles: int | None) -> SVI:
    """``method``'s SVI; ``particles=None`` leaves its ELBO at the library's defaults."""
    kw = {} if particles is None else {"num_particles": particles}
    if particles is not None and particles > 1:
        kw["vectorize_particles"] = True
    if method == "ardae":
        guide = AutoImplicitGuide(model)
        loss = ARDAE_ELBO(**kw)
    elif method == "iaf":
        guide = AutoIAFNormal(model, hidden_dim=[64, 64], num_transforms=2)
        loss = Trace_ELBO(**kw)
    elif method == "autonormal":
        guide = AutoNormal(model)
        loss = Trace_ELBO(**kw)
    else:
        raise ValueError(method)
    return SVI(model, guide, pyro.optim.Adam({"lr": LR}), loss)


METHODS = ("ardae", "iaf", "autonormal")


def time_methods(
    particles: int | None, warmup: int, blocks: int, block_steps: int, data
) -> dict[str, float]:
    """Median steps/s per method over interleaved timed blocks."""
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    svis = {m: build(m, particles) for m in METHODS}
    for svi in svis.values():
        for _ in range(warmup):
            svi.step(*data)
    rates: dict[str, list[float]] = {m: [] for m in METHODS}
    for b in range(blocks):
        order = METHODS if b % 2 == 0 else METHODS[::-1]
        for m in order:
            t0 = time.perf_counter()
            for _ in range(block_steps):
                svis[m].step(*data)
            rates[m].append(block_steps / (time.perf_counter() - t0))
    return {m: statistics.median(r) for m, r in rates.items()}


def profile_ardae(particles: int, steps: int, data, top: int = 25) -> str:
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    svi = build("ardae", particles)
    for _ in range(20):
        svi.step(*data)
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(steps):
        svi.step(*data)
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="about a minute")
    parser.add_argument("--blocks", type=int, default=None)
    parser.add_argument("--block-steps", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--profile", action="store_true", help="cProfile ARDAE steps")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    blocks = args.blocks or (5 if args.quick else 9)
    block_steps = args.block_steps or (300 if args.quick else 1000)

    data = make_data()
    start = time.perf_counter()
    result: dict[str, object] = {
        "benchmark": "svi_speed",
        "model": f"bayesian linear regression, dim={DIM}, n={NUM_OBS}",
        "optimizer": f"Adam(lr={LR})",
        "ardae_settings": "AutoImplicitGuide() + ARDAE_ELBO(), library defaults",
        "iaf_settings": "AutoIAFNormal(hidden_dim=[64,64], num_transforms=2) + Trace_ELBO",
        "autonormal_settings": "AutoNormal + Trace_ELBO",
        "particle_settings": "_defaults: each ELBO's own (ARDAE_ELBO 4, Trace_ELBO 1); "
        "headline: num_particles=1 for all; _p8: num_particles=8, vectorize_particles=True",
        "warmup_steps": args.warmup,
        "blocks": blocks,
        "block_steps": block_steps,
        "threads": args.threads,
        **provenance(),
    }
    for particles, suffix in ((None, "_defaults"), (1, ""), (8, "_p8")):
        rates = time_methods(particles, args.warmup, blocks, block_steps, data)
        for m, r in rates.items():
            result[f"{m}_steps_per_s{suffix}"] = round(r, 2)
        # ARDAE step time / IAF step time
        result[f"ratio_vs_iaf_10d{suffix}"] = round(rates["iaf"] / rates["ardae"], 3)
        result[f"ratio_vs_autonormal_10d{suffix}"] = round(rates["autonormal"] / rates["ardae"], 3)
    result["ratio_bar"] = 3.0
    result["ratio_ok"] = result["ratio_vs_iaf_10d"] <= 3.0
    if args.profile:
        print(profile_ardae(1, 200 if args.quick else 500, data))
    result["wall_seconds"] = round(time.perf_counter() - start, 1)
    print(
        "\n".join(
            f"{k:>32}: {result[k]}" for k in result if "steps_per_s" in k or k.startswith("ratio")
        )
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()

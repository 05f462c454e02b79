"""The energy-fitting example's figure and command line (``python -m examples.energy_fitting
--help``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import Tensor

from pyro_ardae import energy_distance
from pyro_ardae.score import PARAMETERIZATIONS

from ..common import check_device
from .samplers import METHODS, SNAPSHOTS, fit
from .targets import TARGETS, energy, reference


def figure(path: Path, results: dict, exact: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = list(exact)
    methods = sorted({m for t in results for m in results[t]})
    fig, axes = plt.subplots(
        len(targets),
        1 + len(methods),
        figsize=(3 * (1 + len(methods)), 3 * len(targets)),
        squeeze=False,
    )
    grid = torch.linspace(-4, 4, 300)
    zz = torch.stack(torch.meshgrid(grid, grid, indexing="xy"), -1)
    for i, target in enumerate(targets):
        axes[i, 0].imshow(torch.exp(-energy(target, zz)), extent=(-4, 4, -4, 4), origin="lower")
        axes[i, 0].set_title(f"{target}: exp(-U)")
        for j, m in enumerate(methods, start=1):
            z = results[target][m]["draws"][:3000]
            axes[i, j].scatter(z[:, 0], z[:, 1], s=1, alpha=0.3)
            axes[i, j].set_xlim(-4, 4)
            axes[i, j].set_ylim(-4, 4)
            axes[i, j].set_title(f"{m}: {results[target][m]['edist']:.3f}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)


def main(args: argparse.Namespace) -> dict[str, float]:
    torch.set_num_threads(args.threads)
    targets = args.targets.split(",")
    methods = args.methods.split(",")
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise ValueError(f"--targets: expected names in {list(TARGETS)}, got {unknown}")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"--methods: expected names in {list(METHODS)}, got {unknown}")
    if not 0 <= args.ema < 1:
        raise ValueError(f"--ema: expected a decay in [0, 1), got {args.ema}")
    for name in ("score_delta", "fourier_scale"):
        if not getattr(args, name) > 0:
            flag = "--" + name.replace("_", "-")
            raise ValueError(f"{flag}: expected a positive number, got {getattr(args, name)}")
    if not 0 < args.lr_decay <= 1:
        raise ValueError(f"--lr-decay: expected a factor in (0, 1], got {args.lr_decay}")
    if args.pool and not SNAPSHOTS <= args.pool <= args.steps:
        raise ValueError(
            f"--pool: expected 0 or {SNAPSHOTS} to --steps ({args.steps}) steps, got {args.pool}"
        )
    if args.pool and args.ema:
        raise ValueError(f"expected one of --ema and --pool, got both ({args.ema}, {args.pool})")
    check_device("energy_fitting", args.device)
    results: dict[str, dict] = {}
    exact: dict[str, Tensor] = {}
    out: dict[str, float] = {}
    for target in targets:
        exact[target] = reference(target, args.num_samples)
        results[target] = {}
        for method in methods:
            fitted = fit(target, method, args)
            edist = energy_distance(fitted["draws"], exact[target])
            results[target][method] = {"draws": fitted["draws"], "edist": edist}
            out[f"{target}_{method}_edist"] = edist
            line = f"{target} {method:>12s}: energy distance {edist:.4f}"
            if "last" in fitted:
                last = energy_distance(fitted["last"], exact[target])
                out[f"{target}_{method}_edist_last"] = last
                line += f" (last iterate {last:.4f})"
            out[f"{target}_{method}_seconds"] = fitted["seconds"]
            print(f"{line} ({fitted['seconds']:.0f} s)")
    if args.out:
        figure(Path(args.out), results, exact)
        print(f"saved {args.out}")
    return out


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m examples.energy_fitting",
        description=sys.modules[__package__].__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--targets", default="U1,U2,U3,U4", help="comma-separated U1..U4")
    p.add_argument("--methods", default="implicit,hierarchical,iaf", help="samplers to fit")
    p.add_argument("--steps", type=int, default=5000, help="SVI steps per fit")
    p.add_argument("--anneal", type=float, default=0.4, help="fraction of steps annealing beta")
    p.add_argument("--particles", type=int, default=512, help="draws of q per step (batch)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument(
        "--lr-decay",
        type=float,
        default=0.1,
        help="factor the learning rate falls by over the run, geometrically (the paper: 2**-10)",
    )
    p.add_argument("--score-steps", type=int, default=2, help="AR-DAE steps per generator step")
    p.add_argument(
        "--fourier-features", type=int, default=64, help="of the score networks (0 for none)"
    )
    p.add_argument(
        "--fourier-scale", type=float, default=3.0, help="sd of their frequencies, whitened units"
    )
    p.add_argument("--score-delta", type=float, default=0.1, help="AR-DAE's noise scale")
    p.add_argument(
        "--score-parameterization",
        choices=PARAMETERIZATIONS,
        default="vector",
        help="the score networks' output: a vector, or the gradient of a learned energy",
    )
    p.add_argument(
        "--ema",
        type=float,
        default=0.0,
        help="decay of a moving average of each sampler's parameters to draw from (0: none)",
    )
    p.add_argument(
        "--pool",
        type=int,
        default=0,
        help="draw from a mixture of the iterates over the last POOL steps (0: the last one)",
    )
    p.add_argument("--num-samples", type=int, default=5000, help="draws scored per method")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--device", default="cpu", help="torch device the samplers train on")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--out", default="outputs/energy_fitting.png", help="figure ('' for none)")
    return p

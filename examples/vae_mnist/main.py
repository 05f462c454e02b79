"""The MNIST VAE example's training, evaluation, checkpoints and command line
(``python -m examples.vae_mnist --help``)."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import pyro
import torch
from pyro.infer import SVI, Trace_ELBO
from torch import Tensor
from tqdm import tqdm

from pyro_ardae import ARDAE_ELBO

from ..common import check_device
from .data import binarize, load_mnist
from .model import ENCODERS, LATENT, VAE


def train(
    vae: VAE, encoder: str, images: Tensor, args: argparse.Namespace
) -> tuple[list[float], float]:
    """``args.epochs`` epochs of minibatch SVI; returns the per-image losses and seconds."""
    if encoder == "implicit":
        guide = vae.implicit
        loss = ARDAE_ELBO(
            max_plate_nesting=1, score_samples=args.score_samples, score_lr=args.score_lr
        )
    else:
        guide, loss = vae.gaussian_guide, Trace_ELBO(max_plate_nesting=1)

    def adam(param: str) -> dict:
        lr = args.residual_lr if ".residual." in param else args.lr
        return {"lr": lr, "betas": (args.beta1, 0.999)}

    optim = pyro.optim.Adam(adam)
    svi = SVI(vae.model, guide, optim, loss)
    n = images.shape[0]
    steps = args.epochs * math.ceil(n / args.batch_size)
    history: list[float] = []
    start = time.perf_counter()
    with tqdm(total=steps, desc=encoder, disable=not args.progress) as bar:
        for _ in range(args.epochs):
            for idx in torch.randperm(n).split(args.batch_size):
                value = svi.step(binarize(images[idx]), idx, n) / n
                if not math.isfinite(value):
                    raise FloatingPointError(f"{encoder} encoder: the loss became {value}")
                history.append(value)
                bar.update()
                bar.set_postfix(loss=f"{sum(history[-50:]) / len(history[-50:]):.2f}")
    return history, time.perf_counter() - start


def evaluate(vae: VAE, encoder: str, images: Tensor, args: argparse.Namespace) -> float:
    """Mean test log p(x) in nats, one fixed binarisation and seed (reproducible)."""
    generator = torch.Generator().manual_seed(args.seed + 1)
    x_all = torch.bernoulli(images.cpu(), generator=generator).to(images.device)
    torch.manual_seed(args.seed + 2)
    total = 0.0
    batch = max(1, args.eval_batch)
    for x in x_all.split(batch):
        total += vae.test_log_px(encoder, x, args.k).sum().item()
    return total / images.shape[0]


def save_checkpoint(path: Path, vae: VAE, args: argparse.Namespace, result: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {"state_dict": vae.state_dict(), "arch": vae.arch, "args": vars(args), "result": result},
        path,
    )


def load_checkpoint(path: Path) -> tuple[VAE, dict]:
    """A VAE with the saved weights (built on the default device, whichever device saved
    them), and the saved arguments and results."""
    saved = torch.load(path, map_location="cpu", weights_only=False)
    pyro.clear_param_store()
    vae = VAE(saved["arch"], tuple(saved["args"]["score_hidden"]))
    vae.load_state_dict(saved["state_dict"])
    return vae, saved


def figure(path: Path, vaes: dict[str, VAE], images: Tensor) -> None:
    """Test images, each encoder's reconstructions and its decoder's prior samples."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = images[:10]
    rows = [("data", x)]
    for encoder, vae in vaes.items():
        rows.append((f"{encoder}\nrecon.", vae.reconstruct(encoder, binarize(x))))
        with torch.no_grad():
            rows.append((f"{encoder}\nprior", torch.sigmoid(vae.decoder(torch.randn(10, LATENT)))))
    fig, axes = plt.subplots(len(rows), 10, figsize=(10, 1.1 * len(rows)), squeeze=False)
    for r, (label, imgs) in enumerate(rows):
        for c in range(10):
            axes[r, c].imshow(imgs[c].reshape(28, 28).cpu(), cmap="gray", vmin=0, vmax=1)
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def check_args(args: argparse.Namespace) -> None:
    positive = ("epochs", "batch_size", "k", "score_samples", "eval_batch")
    for name in positive:
        value = getattr(args, name)
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"vae_mnist: expected --{name.replace('_', '-')} >= 1, got {value!r}")
    if args.k <= LATENT:
        raise ValueError(
            f"vae_mnist: expected --k > {LATENT} (the fitted proposal needs more draws than "
            f"dimensions), got {args.k}"
        )
    if args.encoder not in (*ENCODERS, "both"):
        raise ValueError(
            f"vae_mnist: expected --encoder in {ENCODERS} or 'both', got {args.encoder!r}"
        )
    check_device("vae_mnist", args.device)


def main(args: argparse.Namespace) -> dict[str, float]:
    """Train and evaluate ``args.encoder`` (or both); the test log p(x), losses and times."""
    check_args(args)
    torch.set_num_threads(args.threads)
    with torch.device(args.device):
        return run(args)


def run(args: argparse.Namespace) -> dict[str, float]:
    """``main`` after the checks, on the default device."""
    device = torch.get_default_device()
    pyro.set_rng_seed(args.seed)
    train_x, _ = load_mnist(args.data_dir, train=True, download=args.download)
    test_x, _ = load_mnist(args.data_dir, train=False, download=args.download)
    if args.train_size:
        train_x = train_x[: args.train_size]
    if args.test_size:
        test_x = test_x[: args.test_size]
    train_x, test_x = train_x.to(device), test_x.to(device)
    encoders = list(ENCODERS) if args.encoder == "both" else [args.encoder]
    result: dict[str, float] = {}
    vaes = {}
    for encoder in encoders:
        pyro.clear_param_store()
        pyro.set_rng_seed(args.seed)
        vae = VAE(args.arch, tuple(args.score_hidden))
        history, seconds = train(vae, encoder, train_x, args)
        result[f"{encoder}_train_seconds"] = seconds
        result[f"{encoder}_final_loss"] = sum(history[-50:]) / len(history[-50:])
        start = time.perf_counter()
        result[f"{encoder}_test_ll"] = evaluate(vae, encoder, test_x, args)
        result[f"{encoder}_eval_seconds"] = time.perf_counter() - start
        print(
            f"{encoder}: test log p(x) {result[f'{encoder}_test_ll']:.2f} nats "
            f"(K={args.k}, {len(test_x)} images), {seconds:.0f} s training"
        )
        vaes[encoder] = vae
        if args.checkpoint:
            save_checkpoint(Path(args.checkpoint) / f"vae_{encoder}.pt", vae, args, result)
    if args.out:
        figure(Path(args.out), vaes, test_x)
    print(json.dumps(result))
    return result


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m examples.vae_mnist",
        description=sys.modules[__package__].__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data-dir", default="data", help="torchvision MNIST root")
    p.add_argument(
        "--no-download",
        dest="download",
        action="store_false",
        help="fail instead of downloading when the files are missing",
    )
    p.add_argument("--encoder", default="both", help="implicit, gaussian or both")
    p.add_argument("--arch", default="mlp", choices=["mlp", "conv"], help="network family")
    p.add_argument("--epochs", type=int, default=10, help="passes over the training set")
    p.add_argument("--batch-size", type=int, default=128, help="images per step")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (both encoders)")
    p.add_argument("--beta1", type=float, default=0.9, help="Adam beta1")
    p.add_argument(
        "--residual-lr",
        type=float,
        default=1e-3,
        help="Adam learning rate of the implicit head's non-Gaussian part r",
    )
    p.add_argument(
        "--score-samples",
        type=int,
        default=16,
        help="draws of q(z|x) per x in each AR-DAE step (the paper: 625)",
    )
    p.add_argument("--score-lr", type=float, default=1e-3, help="AR-DAE Adam learning rate")
    p.add_argument(
        "--score-hidden",
        type=int,
        nargs="+",
        default=[256, 256],
        help="hidden widths of the score network",
    )
    p.add_argument("--k", type=int, default=1024, help="importance samples per test image")
    p.add_argument("--eval-batch", type=int, default=20, help="test images per evaluation batch")
    p.add_argument("--train-size", type=int, default=0, help="first N training images (0: all)")
    p.add_argument("--test-size", type=int, default=0, help="first N test images (0: all)")
    p.add_argument("--checkpoint", default="", help="folder for vae_<encoder>.pt")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--device", default="cpu", help="torch device (e.g. cuda)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no tqdm bar")
    p.add_argument("--out", default="outputs/vae_mnist.png", help="figure path ('' for none)")
    return p

"""The energy-fitting example's samplers (implicit, hierarchical, IAF) and their training."""

from __future__ import annotations

import argparse
import time

import pyro
import torch
from pyro.infer import ELBO, SVI, Trace_ELBO
from pyro.infer.autoguide import AutoIAFNormal
from pyro.infer.autoguide.initialization import init_to_feasible
from torch import Tensor, nn
from tqdm import tqdm

from pyro_ardae import ARDAE_ELBO, AutoImplicitGuide, ImplicitGuide, ScoreConfig
from pyro_ardae.score import Parameterization

from ..common import IterateMixture, ParameterEMA
from .targets import model

SNAPSHOTS = 10  # iterates an IterateMixture draws from
SCORE_SAMPLES = 512  # draws per AR-DAE step, the library's default
METHODS = ("implicit", "hierarchical", "iaf")


class Hierarchical(nn.Module):
    """x = mu(e) + sigma(e) * eps with e ~ N(0, I_2), eps ~ N(0, I_2): an implicit marginal."""

    def __init__(self, latent: int = 2, hidden: int = 256) -> None:
        super().__init__()
        self.latent = latent
        self.net = nn.Sequential(
            nn.Linear(latent, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 4),
        )

    def forward(self, noise: Tensor) -> Tensor:
        e, eps = noise[..., : self.latent], noise[..., self.latent :]
        mu, log_sigma = self.net(e).split(2, -1)
        return mu + log_sigma.clamp(-6, 2).exp() * eps


def make(
    method: str,
    particles: int,
    score_steps: int = 2,
    fourier_features: int = 64,
    score_delta: float = 0.1,
    fourier_scale: float = 3.0,
    score_parameterization: Parameterization = "vector",
):
    """(guide, loss) of a sampler; the implicit ones take ``score_steps`` AR-DAE steps per
    generator step (2, as the paper did here) with ``fourier_features`` random Fourier
    features of frequency sd ``fourier_scale`` in their score networks (``"vector"`` output
    or the ``"gradient"`` of a learned energy), trained at noise scale ``score_delta``."""
    vec = {"num_particles": particles, "vectorize_particles": particles > 1}
    ardae = ARDAE_ELBO(**vec, score_steps=score_steps, score_samples=SCORE_SAMPLES)
    score = ScoreConfig(
        parameterization=score_parameterization,
        delta=score_delta,
        fourier_features=fourier_features,
        fourier_scale=fourier_scale,
    )
    if method == "implicit":
        guide = AutoImplicitGuide(
            model,
            noise_dim=10,
            hidden=(256, 256, 256),
            init_loc_fn=init_to_feasible,
            init_scale=1.0,
            score=score,
        )
        return guide, ardae
    if method == "hierarchical":
        return ImplicitGuide(Hierarchical(), noise_dim=4, sites="z", score=score), ardae
    if method == "iaf":
        guide = AutoIAFNormal(model, hidden_dim=[256, 256], num_transforms=4)
        return guide, Trace_ELBO(**vec)
    raise ValueError(f"expected a method in {METHODS}, got {method!r}")


def sample(guide: nn.Module, target: str, n: int) -> Tensor:
    """``n`` draws of ``z`` from a guide of the ``target`` model, shape ``(n, 2)``."""
    with torch.no_grad(), pyro.plate("draws", n, dim=-1):
        return guide(target)["z"].reshape(-1, 2)


def train(
    target: str, method: str, args: argparse.Namespace
) -> tuple[nn.Module, ELBO, ParameterEMA | IterateMixture | None, float]:
    """(guide, loss, the guide's parameter average (``--ema``) or iterate mixture
    (``--pool``) or None, seconds): one sampler trained on ``target`` with ``args``'
    settings."""
    pyro.clear_param_store()
    pyro.set_rng_seed(args.seed)
    guide, loss = make(
        method,
        args.particles,
        args.score_steps,
        args.fourier_features,
        args.score_delta,
        args.fourier_scale,
        args.score_parameterization,
    )
    # Adam with the paper's betas, the learning rate decaying geometrically by lr_decay in all
    optim = pyro.optim.ClippedAdam(
        {"lr": args.lr, "betas": (0.5, 0.999), "lrd": args.lr_decay ** (1 / args.steps)}
    )
    svi = SVI(model, guide, optim, loss)
    average: ParameterEMA | IterateMixture | None = None
    if args.ema:
        average = ParameterEMA(guide, args.ema)
    elif args.pool:
        average = IterateMixture(
            lambda n: sample(guide, target, n),
            args.steps,
            args.pool,
            args.num_samples,
            SNAPSHOTS,
            args.seed,
        )
    anneal = max(1, int(args.anneal * args.steps))
    start = time.perf_counter()
    bar = tqdm(range(args.steps), desc=f"{target} {method}", disable=not args.progress)
    for step in bar:
        beta = min(1.0, 0.01 + 0.99 * step / anneal)
        value = svi.step(target, beta)
        if average is not None:
            average.update()
        if step % 100 == 0:
            bar.set_postfix(value=f"{value:.3f}", beta=f"{beta:.2f}")
    return guide, loss, average, time.perf_counter() - start


def fit(target: str, method: str, args: argparse.Namespace) -> dict[str, Tensor | float]:
    """A sampler trained on ``args.device``: its ``args.num_samples`` draws on the CPU
    (``"draws"``; from the averaged parameters with ``--ema`` or the iterate mixture with
    ``--pool``, and then also ``"last"``, from the last iterate) and its training time
    (``"seconds"``)."""
    with torch.device(args.device):
        guide, _, average, seconds = train(target, method, args)
        last = sample(guide, target, args.num_samples)
        draws = {"draws": last}
        if isinstance(average, IterateMixture):
            draws = {"draws": average.draws(), "last": last}
        elif average is not None:
            with average.applied():
                draws = {"draws": sample(guide, target, args.num_samples), "last": last}
    return {**{k: v.cpu() for k, v in draws.items()}, "seconds": seconds}

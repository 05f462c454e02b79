"""A 2-D latent VAE on a 5 x 5 grid mixture of Gaussians (the paper's Fig. 5).

Data x in R^2 come from 25 equal Gaussians (sd 0.1) centred on {-4, -2, 0, 2, 4}^2. The model:
z ~ N(0, I_2), x | z ~ N(mu(z), diag sd(z)^2) with an MLP decoder. Two encoders, same budget:

* implicit: z = mu(x) + sd(x) * (eps_:2 + r([eps, x])), eps ~ N(0, I_10), an
  :class:`~pyro_ardae.ImplicitGuide` with x as context, trained with
  :class:`~pyro_ardae.ARDAE_ELBO` (the paper's plain z = net([eps, x]) collapsed to the prior
  here, q(z | x) = p(z) for every x, at the budgets we tried);
* Gaussian: z ~ N(mu(x), diag sd(x)^2), trained with ``Trace_ELBO``.

The figure shows each encoder's aggregate posterior (one draw of q(z | x) per data point,
coloured by the component of x): a Gaussian encoder has to tile the latent plane with
ellipses, the implicit one can bend its posteriors to fill it. Printed: test log p(x) by
importance sampling (:func:`~pyro_ardae.importance_log_likelihood` for the implicit encoder,
its own density for the Gaussian one).

    python -m examples.vae_toy --steps 5000
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import SVI, Trace_ELBO
from torch import Tensor, nn
from tqdm import tqdm

from pyro_ardae import ARDAE_ELBO, ImplicitGuide, importance_log_likelihood

from .common import mlp

GRID = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
CENTRES = torch.cartesian_prod(GRID, GRID)  # (25, 2)
DATA_SD, NOISE = 0.1, 10


def sample_data(n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """``n`` draws of the grid mixture and their component labels."""
    labels = torch.randint(len(CENTRES), (n,), generator=generator)
    return CENTRES[labels] + DATA_SD * torch.randn(n, 2, generator=generator), labels


def data_log_density(x: Tensor) -> Tensor:
    """log of the data density (the best any model can reach)."""
    comp = dist.Normal(CENTRES, DATA_SD).to_event(1).log_prob(x.unsqueeze(-2))
    return comp.logsumexp(-1) - math.log(len(CENTRES))


class LocScale(nn.Module):
    """``(loc, sd)`` of a diagonal Gaussian from an MLP of ``x`` (2-D in, 2 + 2 out): the
    decoder's p(x | z) and the Gaussian encoder's q(z | x)."""

    def __init__(self, hidden: int, min_scale: float) -> None:
        super().__init__()
        self.net = mlp([2, hidden, hidden, 4], nn.ELU)
        self.min_scale = min_scale

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        loc, raw = self.net(x).chunk(2, -1)
        return loc, nn.functional.softplus(raw) + self.min_scale


class ImplicitEncoder(nn.Module):
    """z = mu(x) + sd(x) * (eps_:2 + r([eps, x])), eps in R^10.

    As in ``vae_mnist.py``: the residual ``r`` starts at zero, so the encoder starts as a
    diagonal Gaussian and learns the non-Gaussian part; it has no density.
    """

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.gaussian = mlp([2, hidden, hidden, 4], nn.ELU)
        self.residual = mlp([NOISE + 2, hidden, hidden, 2], nn.ELU)
        nn.init.zeros_(self.residual[-1].weight)
        nn.init.zeros_(self.residual[-1].bias)

    def forward(self, noise: Tensor, x: Tensor) -> Tensor:
        loc, raw = self.gaussian(x).chunk(2, -1)
        shape = noise[..., :2] + self.residual(torch.cat([noise, x], -1))
        return loc + (nn.functional.softplus(raw) + 1e-4) * shape


class ToyVAE(nn.Module):
    def __init__(self, hidden: int = 128) -> None:
        super().__init__()
        self.decoder = LocScale(hidden, 1e-3)
        self.gaussian = LocScale(hidden, 1e-4)
        self.implicit = ImplicitGuide(
            ImplicitEncoder(hidden), noise_dim=NOISE, sites="z", context=lambda x: x
        )

    def model(self, x: Tensor) -> None:
        pyro.module("decoder", self.decoder)
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(x.new_zeros(2), 1.0).to_event(1))
            loc, scale = self.decoder(z)
            pyro.sample("x", dist.Normal(loc, scale).to_event(1), obs=x)

    def gaussian_guide(self, x: Tensor) -> None:
        pyro.module("gaussian", self.gaussian)
        with pyro.plate("data", x.shape[0]):
            loc, scale = self.gaussian(x)
            pyro.sample("z", dist.Normal(loc, scale).to_event(1))

    def log_joint(self, x: Tensor, z: Tensor) -> Tensor:
        loc, scale = self.decoder(z)
        log_lik = dist.Normal(loc, scale).to_event(1).log_prob(x)
        return dist.Normal(0.0, 1.0).log_prob(z).sum(-1) + log_lik

    @torch.no_grad()
    def draws(self, encoder: str, x: Tensor, num: int) -> Tensor:
        """``num`` draws of q(z | x) per row, ``(num, B, 2)``."""
        if encoder == "implicit":
            with pyro.plate("draws", num, dim=-2):
                return self.implicit(x)["z"]
        loc, scale = self.gaussian(x)
        return loc + scale * torch.randn((num,) + loc.shape)

    @torch.no_grad()
    def test_log_px(self, encoder: str, x: Tensor, k: int) -> Tensor:
        if encoder == "implicit":
            return importance_log_likelihood(
                lambda z: self.log_joint(x, z), self.draws("implicit", x, k), k
            )
        q = dist.Normal(*self.gaussian(x)).to_event(1)
        z = q.sample((k,))
        return (self.log_joint(x, z) - q.log_prob(z)).logsumexp(0) - math.log(k)


def train(vae: ToyVAE, encoder: str, args: argparse.Namespace) -> float:
    """``args.steps`` steps on fresh batches; returns the seconds taken."""
    if encoder == "implicit":
        guide = vae.implicit
        loss = ARDAE_ELBO(max_plate_nesting=1, score_samples=args.score_samples)
    else:
        guide, loss = vae.gaussian_guide, Trace_ELBO(max_plate_nesting=1)
    svi = SVI(vae.model, guide, pyro.optim.Adam({"lr": args.lr}), loss)
    start = time.perf_counter()
    for _ in tqdm(range(args.steps), desc=encoder, disable=not args.progress):
        value = svi.step(sample_data(args.batch_size)[0])
        if not math.isfinite(value):
            raise FloatingPointError(f"{encoder} encoder: the loss became {value}")
    return time.perf_counter() - start


def figure(path: Path, vaes: dict[str, ToyVAE], x: Tensor, labels: Tensor) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 1 + len(vaes), figsize=(4 * (1 + len(vaes)), 4))
    axes[0].scatter(*x.T, c=labels, cmap="tab20", s=2)
    axes[0].set_title("data x")
    for ax, (encoder, vae) in zip(axes[1:], vaes.items(), strict=True):
        z = vae.draws(encoder, x, 1)[0]
        ax.scatter(*z.T, c=labels, cmap="tab20", s=2)
        ax.set_title(f"{encoder} encoder: aggregate q(z)")
        ax.set_xlim(-3.5, 3.5)
        ax.set_ylim(-3.5, 3.5)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(args: argparse.Namespace) -> dict[str, float]:
    for name in ("steps", "batch_size", "score_samples", "test_size", "k"):
        if getattr(args, name) < 1:
            raise ValueError(
                f"vae_toy: expected --{name.replace('_', '-')} >= 1, got {getattr(args, name)}"
            )
    if args.k <= 2:
        raise ValueError(f"vae_toy: expected --k > 2 (the latent dimension), got {args.k}")
    torch.set_num_threads(args.threads)
    test_x, test_labels = sample_data(args.test_size, torch.Generator().manual_seed(12345))
    result = {"data_log_density": data_log_density(test_x).mean().item()}
    vaes = {}
    for encoder in ("implicit", "gaussian"):
        pyro.clear_param_store()
        pyro.set_rng_seed(args.seed)
        vaes[encoder] = vae = ToyVAE(args.hidden)
        result[f"{encoder}_train_seconds"] = train(vae, encoder, args)
        result[f"{encoder}_test_ll"] = vae.test_log_px(encoder, test_x, args.k).mean().item()
        print(
            f"{encoder}: test log p(x) {result[f'{encoder}_test_ll']:.3f} nats "
            f"(the data density: {result['data_log_density']:.3f})"
        )
    if args.out:
        figure(Path(args.out), vaes, test_x, test_labels)
    print(json.dumps(result))
    return result


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--steps", type=int, default=5000, help="SVI steps per encoder")
    p.add_argument("--batch-size", type=int, default=256, help="fresh data points per step")
    p.add_argument("--hidden", type=int, default=128, help="width of every MLP")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--score-samples", type=int, default=16, help="AR-DAE draws per x")
    p.add_argument("--test-size", type=int, default=2000, help="test points")
    p.add_argument("--k", type=int, default=256, help="importance samples per test point")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no tqdm bar")
    p.add_argument("--out", default="outputs/vae_toy.png", help="figure path ('' for none)")
    return p


if __name__ == "__main__":
    main(parser().parse_args())

"""The MNIST VAE example's model and encoders: the paper's MLPs, a Gaussian encoder and an
implicit one whose head is an :class:`~pyro_ardae.ImplicitGuide`."""

from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import torch
from torch import Tensor, nn

from pyro_ardae import ImplicitGuide, ScoreConfig, importance_log_likelihood

from ..common import mlp

LATENT, HIDDEN = 32, 300
NOISE_PER_COORDINATE = 3
NOISE = NOISE_PER_COORDINATE * LATENT
EMBED = 8  # width of the implicit head's per-coordinate embedding of h(x)
ENCODERS = ("implicit", "gaussian")


def he_normal(linear: nn.Linear) -> None:
    """He-normal weights and zero biases: with PyTorch's default init the paper's deep
    softplus networks train several times slower."""
    nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")
    nn.init.zeros_(linear.bias)


def softplus_mlp(sizes: list[int]) -> nn.Sequential:
    """The paper's softplus MLP, He-initialised."""
    return mlp(sizes, nn.Softplus, he_normal)


class Features(nn.Module):
    """h(x): 4 softplus layers of 300 (MLP) or three strided convolutions (conv)."""

    def __init__(self, arch: str) -> None:
        super().__init__()
        if arch == "mlp":
            self.net = nn.Sequential(softplus_mlp([784] + [HIDDEN] * 4), nn.Softplus())
        else:
            self.net = nn.Sequential(
                nn.Unflatten(-1, (1, 28, 28)),
                nn.Conv2d(1, 32, 5, stride=2, padding=2),  # 14 x 14
                nn.Softplus(),
                nn.Conv2d(32, 64, 5, stride=2, padding=2),  # 7 x 7
                nn.Softplus(),
                nn.Conv2d(64, 64, 3, stride=2, padding=1),  # 4 x 4
                nn.Softplus(),
                nn.Flatten(),
                nn.Linear(64 * 16, HIDDEN),
                nn.Softplus(),
            )

    def forward(self, x: Tensor, *_args, **_kwargs) -> Tensor:
        batch = x.shape[:-1]
        return self.net(x.reshape(-1, 784)).reshape(batch + (HIDDEN,))


class GaussianHead(nn.Module):
    """(mu, sd) of a diagonal Gaussian over z from the features h: the paper's 400-300 head."""

    def __init__(self) -> None:
        super().__init__()
        self.net = softplus_mlp([HIDDEN, 400, 300, 2 * LATENT])

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
        loc, raw = self.net(features).chunk(2, -1)
        return loc, nn.functional.softplus(raw) + 1e-4


class ImplicitHead(nn.Module):
    """z_i = mu_i(h) + sd_i(h) (eps_i + r(eps_i, eta_i, c_i(h))): an implicit q(z | x) that
    factorises over the coordinates of z.

    ``mu, sd`` come from the Gaussian encoder's head (400-300-64). Each coordinate i has its
    own noise, eps_i and two more eta_i; ``r`` is one small MLP (64-64, softplus) shared by
    the coordinates and fed with an 8-d embedding c_i(h) of the features per coordinate.
    Its last layer starts at zero, so the encoder starts as a diagonal Gaussian and ``r``
    learns the non-Gaussian shape of each marginal. q has no density (``r`` is not
    monotone in eps_i, and eta_i is integrated out).

    Why factorised: the AR-DAE's base is the per-x diagonal Gaussian of its whitening, and
    from 16 draws per x its learned part cannot see correlations between coordinates. The
    paper's head, which mixes all the noise into all of z, learned to correlate the latents
    (10.8 nats of entropy per x lost, unseen by the surrogate) and fell 6 nats behind the
    Gaussian encoder at 5 epochs; this head does not correlate them (docs/benchmarks.md).
    """

    def __init__(self) -> None:
        super().__init__()
        self.gaussian = GaussianHead()
        self.embed = nn.Linear(HIDDEN, LATENT * EMBED)
        self.residual = nn.Sequential(
            nn.Linear(NOISE_PER_COORDINATE + EMBED, 64),
            nn.Softplus(),
            nn.Linear(64, 64),
            nn.Softplus(),
            nn.Linear(64, 1),
        )
        nn.init.zeros_(self.residual[-1].weight)
        nn.init.zeros_(self.residual[-1].bias)

    def forward(self, noise: Tensor, features: Tensor) -> Tensor:
        loc, scale = self.gaussian(features)
        per_coordinate = noise.reshape(noise.shape[:-1] + (NOISE_PER_COORDINATE, LATENT))
        per_coordinate = per_coordinate.transpose(-1, -2)  # (..., LATENT, 3), eps_i first
        embedding = self.embed(features).reshape(features.shape[:-1] + (LATENT, EMBED))
        embedding = embedding.expand(per_coordinate.shape[:-1] + (EMBED,))
        r = self.residual(torch.cat([per_coordinate, embedding], -1)).squeeze(-1)
        return loc + scale * (per_coordinate[..., 0] + r)


class GaussianEncoder(nn.Module):
    """(mu, sd) = head(h(x)), the same features and head widths as the implicit encoder."""

    def __init__(self, arch: str) -> None:
        super().__init__()
        self.features = Features(arch)
        self.head = GaussianHead()

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.head(self.features(x))


class Decoder(nn.Module):
    """Bernoulli logits of x given z: 32-300-300-784 (MLP) or transposed convolutions."""

    def __init__(self, arch: str) -> None:
        super().__init__()
        if arch == "mlp":
            self.net = softplus_mlp([LATENT, HIDDEN, HIDDEN, 784])
        else:
            self.net = nn.Sequential(
                nn.Linear(LATENT, 64 * 7 * 7),
                nn.Softplus(),
                nn.Unflatten(-1, (64, 7, 7)),
                nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1),  # 14 x 14
                nn.Softplus(),
                nn.ConvTranspose2d(32, 1, 4, stride=2, padding=1),  # 28 x 28
                nn.Flatten(),
            )

    def forward(self, z: Tensor) -> Tensor:
        batch = z.shape[:-1]
        return self.net(z.reshape(-1, LATENT)).reshape(batch + (784,))


class VAE(nn.Module):
    """The decoder and both encoders; ``model``, ``implicit_guide``, ``gaussian_guide``."""

    def __init__(self, arch: str = "mlp", score_hidden: tuple[int, ...] = (256, 256)) -> None:
        super().__init__()
        if arch not in ("mlp", "conv"):
            raise ValueError(f"VAE: expected arch 'mlp' or 'conv', got {arch!r}")
        self.arch = arch
        self.decoder = Decoder(arch)
        self.gaussian = GaussianEncoder(arch)
        self.implicit = ImplicitGuide(
            ImplicitHead(),
            noise_dim=NOISE,
            sites="z",
            context=Features(arch),
            score=ScoreConfig(hidden=score_hidden),
        )

    def model(self, x: Tensor, idx: Tensor, num_data: int) -> None:
        """p(z) p(x | z) over the minibatch ``x`` = rows ``idx`` of ``num_data`` images."""
        pyro.module("decoder", self.decoder)
        with pyro.plate("data", num_data, subsample=idx):
            prior = dist.Normal(x.new_zeros(LATENT), 1.0).to_event(1)
            z = pyro.sample("z", prior)
            pyro.sample("x", dist.Bernoulli(logits=self.decoder(z)).to_event(1), obs=x)

    def gaussian_guide(self, x: Tensor, idx: Tensor, num_data: int) -> None:
        pyro.module("gaussian", self.gaussian)
        with pyro.plate("data", num_data, subsample=idx):
            loc, scale = self.gaussian(x)
            pyro.sample("z", dist.Normal(loc, scale).to_event(1))

    def log_joint(self, x: Tensor, z: Tensor) -> Tensor:
        """log p(x, z), broadcasting ``z`` ``(..., B, 32)`` against ``x`` ``(B, 784)``."""
        log_prior = dist.Normal(0.0, 1.0).log_prob(z).sum(-1)
        return log_prior + dist.Bernoulli(logits=self.decoder(z)).log_prob(x).sum(-1)

    @torch.no_grad()
    def implicit_draws(self, x: Tensor, num: int) -> Tensor:
        """``num`` draws of the implicit q(z | x) per row, ``(num, B, 32)``."""
        with pyro.plate("draws", num, dim=-2):
            return self.implicit(x)["z"]

    @torch.no_grad()
    def test_log_px(self, encoder: str, x: Tensor, k: int) -> Tensor:
        """Importance-sampling estimate of log p(x) per row with ``k`` proposals."""
        if encoder == "implicit":
            return importance_log_likelihood(
                lambda z: self.log_joint(x, z), self.implicit_draws(x, k), k
            )
        loc, scale = self.gaussian(x)
        q = dist.Normal(loc, scale).to_event(1)
        z = q.sample((k,))
        log_w = self.log_joint(x, z) - q.log_prob(z)
        return log_w.logsumexp(0) - math.log(k)

    @torch.no_grad()
    def reconstruct(self, encoder: str, x: Tensor) -> Tensor:
        """Bernoulli means of x given one draw of q(z | x)."""
        if encoder == "implicit":
            z = self.implicit(x)["z"]
        else:
            loc, scale = self.gaussian(x)
            z = loc + scale * torch.randn_like(loc)
        return torch.sigmoid(self.decoder(z))

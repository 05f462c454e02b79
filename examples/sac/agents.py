"""The SAC example's networks: twin critics, the temperature, and the tanh-Gaussian and
implicit policies."""

from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import SVI
from torch import Tensor, nn
from torch.distributions import biject_to, constraints

from pyro_ardae import ARDAE_ELBO, ImplicitGuide, ScoreConfig

from ..common import mlp

JC_STEP = 0.01  # the finite-difference step d of the Jacobian clamping
HIDDEN = [256, 256]  # every network's hidden widths (ReLU)


class Critics(nn.Module):
    """Twin soft-Q networks ``Q_i(s, a)``, MLP 256-256 with ReLU."""

    def __init__(self, obs_dim: int, act_dim: int) -> None:
        super().__init__()
        self.q1 = mlp([obs_dim + act_dim, *HIDDEN, 1])
        self.q2 = mlp([obs_dim + act_dim, *HIDDEN, 1])

    def forward(self, obs: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        x = torch.cat([obs.expand(action.shape[:-1] + obs.shape[-1:]), action], -1)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)

    def min_q(self, obs: Tensor, action: Tensor) -> Tensor:
        return torch.min(*self(obs, action))


@torch.no_grad()
def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """Polyak averaging ``target <- (1 - tau) target + tau source``."""
    for t, s in zip(target.parameters(), source.parameters(), strict=True):
        t.lerp_(s, tau)


def squash(u: Tensor, box: constraints.Constraint) -> tuple[Tensor, Tensor]:
    """The action ``T(u)`` in the box and ``log|det J_T(u)|`` summed over action dims."""
    transform = biject_to(box)
    a = transform(u)
    return a, transform.log_abs_det_jacobian(u, a).sum(-1)


class Temperature(nn.Module):
    """The entropy temperature: ``alpha`` fixed, or learned toward a target entropy
    (module docstring) when ``target_entropy`` is given."""

    def __init__(self, alpha: float, target_entropy: float | None, lr: float) -> None:
        super().__init__()
        self.target_entropy = target_entropy
        self.log_alpha = nn.Parameter(
            torch.tensor(math.log(alpha)), requires_grad=target_entropy is not None
        )
        self.optimizer = torch.optim.Adam([self.log_alpha], lr=lr)

    @property
    def alpha(self) -> float:
        return self.log_alpha.exp().item()

    def update(self, log_pi: Tensor) -> float:
        """One step on ``log alpha (H - H_target)``, ``H = -mean(log_pi)``; returns alpha."""
        if self.target_entropy is not None:
            entropy = -log_pi.detach().mean()
            loss = self.log_alpha * (entropy - self.target_entropy)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        return self.alpha


def spread_collapsed(spread: float, threshold: float) -> bool:
    """Whether the policy's mean per-state sd (unconstrained) says it has collapsed."""
    return not spread >= threshold  # a NaN spread counts as collapsed


class GaussianPolicy(nn.Module):
    """``u ~ N(mu(s), sigma(s)^2)``, ``a = T(u)``: tanh-Gaussian SAC, log-sd in [-5, 2]."""

    def __init__(self, obs_dim: int, box: constraints.Constraint, args) -> None:
        super().__init__()
        self.box = box
        self.act_dim = box.lower_bound.shape[-1]
        self.net = mlp([obs_dim, *HIDDEN, 2 * self.act_dim])
        self.alpha = args.alpha
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=args.lr)

    def _base(self, obs: Tensor) -> dist.Normal:
        mean, log_sd = self.net(obs).chunk(2, -1)
        log_sd = -5.0 + 3.5 * (torch.tanh(log_sd) + 1)
        return dist.Normal(mean, log_sd.exp())

    def sample(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """A reparameterised action and its log-density."""
        base = self._base(obs)
        u = base.rsample()
        a, log_det = squash(u, self.box)
        return a, base.log_prob(u).sum(-1) - log_det

    @torch.no_grad()
    def act(self, obs: Tensor, deterministic: bool) -> Tensor:
        base = self._base(obs)
        u = base.mean if deterministic else base.sample()
        return squash(u, self.box)[0]

    @torch.no_grad()
    def target_sample(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        return self.sample(obs)

    def update(self, obs: Tensor, critics: Critics) -> dict[str, float]:
        a, log_pi = self.sample(obs)
        loss = (self.alpha * log_pi - critics.min_q(obs, a)).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"actor_loss": loss.item(), "entropy": -log_pi.mean().item()}

    def checkpoint(self) -> dict:
        return {"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict()}

    def restore(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])


class Generator(nn.Module):
    """``u = g(eps, s)``: an MLP 256-256 (ReLU) of the noise and the state."""

    def __init__(self, noise_dim: int, obs_dim: int, act_dim: int) -> None:
        super().__init__()
        self.net = mlp([noise_dim + obs_dim, *HIDDEN, act_dim])

    def forward(self, noise: Tensor, obs: Tensor) -> Tensor:
        return self.net(torch.cat([noise, obs], -1))


class ImplicitPolicy(nn.Module):
    """The implicit policy, trained by SVI with ARDAE_ELBO (see the module docstring)."""

    def __init__(self, obs_dim: int, box: constraints.Constraint, args) -> None:
        super().__init__()
        self.box = box
        self.low, self.high = box.lower_bound, box.upper_bound
        self.act_dim = self.low.shape[-1]
        self.noise_dim = args.noise_dim
        self.alpha = args.alpha
        self.score_samples = args.score_samples
        self.normalizer_samples = args.normalizer_samples
        self.jc_weight, self.jc_eta = args.jc_weight, args.jc_eta
        self.generator = Generator(self.noise_dim, obs_dim, self.act_dim)
        self.guide = ImplicitGuide(
            self.generator,
            self.noise_dim,
            sites={"action": box},
            context=lambda obs, critics: obs,
            score=ScoreConfig(hidden=tuple(args.score_hidden), parameterization="gradient"),
        )
        self.elbo = ARDAE_ELBO(
            max_plate_nesting=1, score_samples=args.score_samples, score_lr=args.lr
        )
        self.svi = SVI(self.model, self.guide, pyro.optim.Adam({"lr": args.lr}), self.loss)
        # built now (untrained) so that a checkpoint can be loaded before the first step
        self.estimator = self.elbo.estimator(self.guide, torch.zeros(1, obs_dim), None)

    def model(self, obs: Tensor, critics: Critics) -> None:
        with pyro.plate("states", obs.shape[0]):
            a = pyro.sample("action", dist.Uniform(self.low, self.high).to_event(1))
            pyro.factor("soft_q", critics.min_q(obs, a) / self.alpha)

    def jacobian_clamping(self, obs: Tensor) -> Tensor:
        """The penalty ``sum_s (min(0, r(s) - eta) / eta)^2`` (module docstring)."""
        eps = torch.randn(obs.shape[0], self.noise_dim)
        p = torch.randn_like(eps)
        half_width = (self.high - self.low) / 2
        a0 = squash(self.generator(eps, obs), self.box)[0] / half_width
        a1 = squash(self.generator(eps + JC_STEP * p, obs), self.box)[0] / half_width
        ratio = (a1 - a0).pow(2).sum(-1) / (JC_STEP**2 * p.pow(2).sum(-1))
        return ((ratio - self.jc_eta).clamp(max=0.0) / self.jc_eta).pow(2).sum()

    def loss(self, model, guide, obs: Tensor, critics: Critics) -> Tensor:
        """ARDAE_ELBO's surrogate (over the batch of states) plus the clamping penalty."""
        surrogate = self.elbo.differentiable_loss(model, guide, obs, critics)
        if self.jc_weight == 0:
            return surrogate
        return surrogate + self.jc_weight * self.jacobian_clamping(obs)

    def _draw(self, obs: Tensor, noise: Tensor) -> Tensor:
        return self.generator(noise, obs.expand(noise.shape[:-1] + obs.shape[-1:]))

    @torch.no_grad()
    def act(self, obs: Tensor, deterministic: bool) -> Tensor:
        shape = obs.shape[:-1] + (self.noise_dim,)
        noise = torch.zeros(shape) if deterministic else torch.randn(shape)
        return squash(self._draw(obs, noise), self.box)[0]

    @torch.no_grad()
    def target_sample(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """``a ~ pi(. | s)`` and ``log pi(a | s)``: whitening from ``score_samples`` fresh
        draws per state, normaliser from ``normalizer_samples`` importance samples."""
        fresh = self._draw(obs, torch.randn(self.score_samples, obs.shape[0], self.noise_dim))
        self.estimator.set_stats(fresh, obs)
        u = self._draw(obs, torch.randn(obs.shape[0], self.noise_dim))
        a, log_det = squash(u, self.box)
        log_q = self.estimator.normalized_log_prob(u, obs, self.normalizer_samples)
        return a, log_q - log_det

    def spread(self) -> float:
        """Mean over the last batch of states of the sd of the unconstrained draws."""
        return self.estimator.stats.scale.mean().item()

    def update(self, obs: Tensor, critics: Critics) -> dict[str, float]:
        self.svi.step(obs, critics)
        return {"spread": self.spread()}

    def checkpoint(self) -> dict:
        return {
            "generator": self.generator.state_dict(),
            "optimizer": self.svi.optim.get_state(),
            "score_net": self.estimator.state_dict(),  # with its optimiser and whitening map
        }

    def restore(self, state: dict) -> None:
        self.generator.load_state_dict(state["generator"])
        self.svi.optim.set_state(state["optimizer"])
        self.estimator.load_state_dict(state["score_net"])

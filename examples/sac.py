"""Soft actor-critic with an implicit policy (SAC-AR-DAE, the paper's Table 3) or the
standard tanh-Gaussian policy, on a gymnasium environment with a box action space.

Both policies share everything but the actor: the replay buffer, twin critics (MLP 256-256,
ReLU) with Polyak-averaged targets, batch 256, gamma 0.99, tau 0.005, Adam 3e-4, the
temperature alpha (0.05 fixed, or learned with ``--autotune``) and one gradient step per
environment step. The soft-Q target is
``r + gamma (1 - terminated) (min Q'(s', a') - alpha log pi(a' | s'))``, a' ~ pi(. | s').

**Temperature.** With ``--autotune`` alpha is learned as in Haarnoja et al. (2018, "Soft
Actor-Critic Algorithms and Applications"): ``log alpha`` takes an Adam step on
``log alpha * (H - H_target)``, with ``H`` the batch mean of ``-log pi(a' | s')`` that the
soft-Q target has just computed (next states from the buffer, as good a sample of the state
distribution as the current ones, so the implicit policy needs no second normaliser
estimate) and ``H_target = -dim(A)`` by default (``--target-entropy``). Alpha falls while the
policy's entropy is above the target and rises below it; both policies use the same rule.

**Squashing.** Both policies draw an unconstrained ``u`` and map it to the action box
``[low, high]`` with ``T = biject_to(interval(low, high))``, i.e.
``a = low + (high - low) sigmoid(u)`` = the tanh squashing of ``u / 2`` rescaled to the box,
and take ``log|det J_T(u)|`` from the transform, not from a hand-written correction. The
Gaussian policy is thus the usual tanh-Gaussian one (a Gaussian in ``u``).

**Implicit policy.** ``u = g(eps, s)``, ``eps ~ N(0, I_10)``, has no density. Its
improvement step is inference against the library: for a batch of states, the model puts a
uniform prior on the action box (a constant) and ``pyro.factor(min(Q1, Q2)(s, a) / alpha)``
on the action, the guide is an ``ImplicitGuide`` whose generator takes the state as context,
and ``SVI`` with ``ARDAE_ELBO`` maximises ``E[Q / alpha] + H(pi(. | s))``, which is SAC's
policy objective divided by alpha. The entropy gradient comes from the AR-DAE (gradient
form, per-state whitening of ``score_samples`` fresh draws per state). The soft-Q target
needs ``log pi(a' | s')`` at new states: the scalar form gives ``log q(u | s)`` up to a
constant, ``-F(y, 0, s) - log|det L(s)|`` with ``y = L(s)^-1 (u - m(s))`` whitened by fresh
draws of the policy at ``s'``; the normaliser ``log Z(s)`` is estimated by importance
sampling from ``N(0, I)`` in whitened coordinates (``pyro_ardae.log_normalizer``, the
paper's estimator with the whitening as its proposal scale), and
``log pi(a | s) = log q(u | s) - log|det J_T(u)|``.

**Collapse.** The mean over states of the sd of the policy's unconstrained draws (the
AR-DAE's per-state whitening scale) is monitored; when it drops below
``--collapse-threshold`` a warning line is logged and counted. Collapse is prevented by the
authors' Jacobian clamping, written as a separate term of the actor's loss next to the
ELBO surrogate (it is a penalty on the generator, not a part of the model):
``jc_weight * sum_s (min(0, r(s) - eta) / eta)^2`` with
``r = ||a(eps + d p, s) - a(eps, s)||^2 / (d^2 ||p||^2)``, ``d = 0.01``, ``p ~ N(0, I)``, the
actions measured in half-widths of the box. It only acts when the generator's mean squared
slope falls below ``eta``.

**Device.** ``--device cuda`` builds the networks, the replay batches and every tensor of
the updates on the GPU (the run executes under ``torch.device``, the default device of
tensor factories); the environments stay on the CPU and each action crosses over once.

    python examples/sac.py --env Pendulum-v1 --policy implicit --total-steps 20000
    python examples/sac.py --env HalfCheetah-v5 --policy gaussian --total-steps 100000
    python examples/sac.py --env HalfCheetah-v5 --device cuda
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from pyro.infer import SVI
from torch import Tensor, nn
from torch.distributions import biject_to, constraints
from tqdm import tqdm

from pyro_ardae import ARDAE_ELBO, ImplicitGuide, ScoreConfig

POLICIES = ("implicit", "gaussian")
JC_STEP = 0.01  # the finite-difference step d of the Jacobian clamping


def mlp(in_dim: int, out_dim: int, hidden: tuple[int, ...] = (256, 256)) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.ReLU()]
        in_dim = width
    return nn.Sequential(*layers, nn.Linear(in_dim, out_dim))


class ReplayBuffer:
    """A ring buffer of transitions ``(s, a, r, s', terminated)`` in float32 arrays."""

    def __init__(self, capacity: int, obs_dim: int, act_dim: int) -> None:
        self.capacity = capacity
        self.obs = np.zeros((capacity, obs_dim), np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), np.float32)
        self.actions = np.zeros((capacity, act_dim), np.float32)
        self.rewards = np.zeros(capacity, np.float32)
        self.terminated = np.zeros(capacity, np.float32)
        self.pos = 0
        self.full = False

    def __len__(self) -> int:
        return self.capacity if self.full else self.pos

    def add(self, obs, action, reward: float, next_obs, terminated: bool) -> None:
        i = self.pos
        self.obs[i], self.actions[i], self.next_obs[i] = obs, action, next_obs
        self.rewards[i], self.terminated[i] = reward, float(terminated)
        self.pos = (i + 1) % self.capacity
        self.full = self.full or self.pos == 0

    def sample(
        self, batch_size: int, rng: np.random.Generator, device: torch.device | None = None
    ) -> dict[str, Tensor]:
        """``batch_size`` transitions drawn uniformly with replacement, as tensors on
        ``device`` (the default device if None)."""
        idx = rng.integers(len(self), size=batch_size)
        names = ("obs", "actions", "rewards", "next_obs", "terminated")
        return {k: torch.as_tensor(getattr(self, k)[idx], device=device) for k in names}

    def state_dict(self) -> dict:
        n = len(self)
        names = ("obs", "actions", "rewards", "next_obs", "terminated")
        return {
            "pos": self.pos,
            "full": self.full,
            **{k: getattr(self, k)[:n].copy() for k in names},
        }

    def load_state_dict(self, state: dict) -> None:
        for k in ("obs", "actions", "rewards", "next_obs", "terminated"):
            getattr(self, k)[: len(state[k])] = state[k]
        self.pos, self.full = state["pos"], state["full"]


class Critics(nn.Module):
    """Twin soft-Q networks ``Q_i(s, a)``, MLP 256-256 with ReLU."""

    def __init__(self, obs_dim: int, act_dim: int) -> None:
        super().__init__()
        self.q1 = mlp(obs_dim + act_dim, 1)
        self.q2 = mlp(obs_dim + act_dim, 1)

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
        self.net = mlp(obs_dim, 2 * self.act_dim)
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
        self.net = mlp(noise_dim + obs_dim, act_dim)

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


def make_env(name: str, seed: int) -> gym.Env:
    """``gym.make(name)`` with a clear error for an unknown id or an unusable space."""
    if name not in gym.registry:
        raise ValueError(
            f"sac: expected a registered gymnasium environment id (e.g. 'Pendulum-v1', "
            f"'HalfCheetah-v5'), got {name!r}"
        )
    env = gym.make(name)
    act, obs = env.action_space, env.observation_space
    if not isinstance(act, gym.spaces.Box) or len(act.shape) != 1:
        raise ValueError(f"sac: expected a 1-D Box action space, {name} has {act}")
    if not (np.isfinite(act.low).all() and np.isfinite(act.high).all()):
        raise ValueError(f"sac: expected finite action bounds, {name} has {act}")
    if not isinstance(obs, gym.spaces.Box) or len(obs.shape) != 1:
        raise ValueError(f"sac: expected a 1-D Box observation space, {name} has {obs}")
    env.reset(seed=seed)
    env.action_space.seed(seed)
    return env


def check_args(args: argparse.Namespace) -> None:
    positive = ("alpha", "lr", "batch_size", "total_steps", "buffer_size", "noise_dim")
    positive += ("score_samples", "normalizer_samples", "eval_every", "eval_episodes")
    positive += ("jc_eta", "threads", "checkpoint_every")
    for name in positive:
        if not getattr(args, name) > 0:
            raise ValueError(
                f"sac: expected --{name.replace('_', '-')} > 0, got {getattr(args, name)}"
            )
    if args.policy not in POLICIES:
        raise ValueError(f"sac: expected --policy in {POLICIES}, got {args.policy!r}")
    bounded = {"gamma": args.gamma, "tau": args.tau}
    for name, value in bounded.items():
        if not 0 < value <= 1:
            raise ValueError(f"sac: expected 0 < --{name} <= 1, got {value}")
    for name in ("jc_weight", "learning_starts", "collapse_threshold"):
        if not getattr(args, name) >= 0:
            flag = name.replace("_", "-")
            raise ValueError(f"sac: expected --{flag} >= 0, got {getattr(args, name)}")
    if args.policy == "implicit" and args.score_samples < 4:
        raise ValueError(
            f"sac: expected --score-samples >= 4 (per-state whitening), got {args.score_samples}"
        )
    if args.target_entropy is not None and not (
        args.autotune and math.isfinite(args.target_entropy)
    ):
        raise ValueError(
            f"sac: expected a finite --target-entropy together with --autotune, got "
            f"{args.target_entropy} with autotune={args.autotune}"
        )
    if args.resume and not args.checkpoint:
        raise ValueError("sac: --resume needs --checkpoint PATH")
    try:
        device = torch.device(args.device)
    except RuntimeError as e:
        raise ValueError(
            f"sac: expected --device like 'cpu' or 'cuda:0', got {args.device!r}"
        ) from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"sac: --device {args.device}: CUDA is not available on this machine")


def evaluate(policy, env: gym.Env, episodes: int, deterministic: bool) -> float:
    """Mean undiscounted return over ``episodes`` full episodes."""
    total = 0.0
    for _ in range(episodes):
        obs, _ = env.reset()
        done = False
        while not done:
            a = policy.act(torch.as_tensor(obs, dtype=torch.float32)[None], deterministic)[0]
            obs, reward, terminated, truncated, _ = env.step(a.cpu().numpy())
            total += float(reward)
            done = terminated or truncated
    return total / episodes


def critic_step(batch, policy, critics, targets, optimizer, args) -> Tensor:
    """One soft-Q step on the twin critics (the same for both policies); returns the
    ``log pi(a' | s')`` of the target's next actions."""
    with torch.no_grad():
        next_a, next_log_pi = policy.target_sample(batch["next_obs"])
        soft_v = targets.min_q(batch["next_obs"], next_a) - policy.alpha * next_log_pi
        y = batch["rewards"] + args.gamma * (1 - batch["terminated"]) * soft_v
    q1, q2 = critics(batch["obs"], batch["actions"])
    loss = F.mse_loss(q1, y) + F.mse_loss(q2, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return next_log_pi


def plot(rows: list[dict], title: str, out: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    steps = [r["step"] for r in rows]
    for key, label in [("train", "training episodes"), ("eval_det", "eval, zero noise")]:
        ax.plot(steps, [r[key] for r in rows], marker="o", label=label)
    ax.plot(steps, [r["eval_stoch"] for r in rows], marker="o", label="eval, stochastic")
    ax.set(xlabel="environment steps", ylabel="return", title=title)
    ax.legend()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main(args: argparse.Namespace) -> dict[str, float]:
    """Train ``args.policy`` on ``args.env``; the final evaluation returns, speeds, collapse
    warnings and alpha."""
    check_args(args)
    torch.set_num_threads(args.threads)
    with torch.device(args.device):
        return run(args)


def run(args: argparse.Namespace) -> dict[str, float]:
    """``main`` after the checks, on the default device."""
    device = torch.get_default_device()
    env = make_env(args.env, args.seed)
    eval_env = make_env(args.env, args.seed + 10_000)
    pyro.clear_param_store()
    pyro.set_rng_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    low = torch.as_tensor(env.action_space.low, dtype=torch.float32)
    high = torch.as_tensor(env.action_space.high, dtype=torch.float32)
    obs_dim, act_dim = env.observation_space.shape[0], low.shape[0]
    policy_cls = ImplicitPolicy if args.policy == "implicit" else GaussianPolicy
    policy = policy_cls(obs_dim, constraints.interval(low, high), args)
    target_entropy = None
    if args.autotune:
        target_entropy = -act_dim if args.target_entropy is None else args.target_entropy
    temperature = Temperature(args.alpha, target_entropy, args.lr)
    critics, targets = Critics(obs_dim, act_dim), Critics(obs_dim, act_dim)
    targets.load_state_dict(critics.state_dict())
    q_optimizer = torch.optim.Adam(critics.parameters(), lr=args.lr)
    buffer = ReplayBuffer(args.buffer_size, obs_dim, act_dim)
    start, rows, episode_returns, collapse_warnings = 0, [], [], 0

    ckpt = Path(args.checkpoint) if args.checkpoint else None
    if args.resume and ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=False)
        saved = (state["args"]["policy"], state["args"]["env"])
        if saved != (args.policy, args.env):
            raise ValueError(
                f"sac: {ckpt} holds the {saved[0]} policy on {saved[1]}, "
                f"expected {args.policy} on {args.env}"
            )
        policy.restore(state["policy"])
        critics.load_state_dict(state["critics"])
        targets.load_state_dict(state["targets"])
        q_optimizer.load_state_dict(state["q_optimizer"])
        temperature.load_state_dict(state["temperature"])
        temperature.optimizer.load_state_dict(state["alpha_optimizer"])
        buffer.load_state_dict(state["buffer"])
        rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"].cpu())
        if device.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"].cpu(), device)
        start, rows = state["step"], state["rows"]
        episode_returns, collapse_warnings = state["episode_returns"], state["collapse_warnings"]

    def save(step: int) -> None:
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "step": step,
            "policy": policy.checkpoint(),
            "critics": critics.state_dict(),
            "targets": targets.state_dict(),
            "q_optimizer": q_optimizer.state_dict(),
            "temperature": temperature.state_dict(),
            "alpha_optimizer": temperature.optimizer.state_dict(),
            "buffer": buffer.state_dict(),
            "numpy_rng": rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
            "rows": rows,
            "episode_returns": episode_returns,
            "collapse_warnings": collapse_warnings,
            "args": vars(args),
        }
        torch.save(state, ckpt.with_suffix(".tmp"))
        ckpt.with_suffix(".tmp").replace(ckpt)

    obs, _ = env.reset(seed=args.seed + start)  # a resumed run starts a fresh episode
    episode_return, update_time, updates = 0.0, 0.0, 0
    t0 = time.perf_counter()
    bar = tqdm(
        range(start, args.total_steps),
        desc=f"{args.policy} {args.env}",
        disable=not args.progress,
        initial=start,
        total=args.total_steps,
    )
    for step in bar:
        if step < args.learning_starts:
            action = env.action_space.sample()
        else:
            obs_t = torch.as_tensor(obs, dtype=torch.float32)[None]
            action = policy.act(obs_t, deterministic=False)[0].cpu().numpy()
        next_obs, reward, terminated, truncated, _ = env.step(action)
        buffer.add(obs, action, float(reward), next_obs, terminated)
        episode_return += float(reward)
        obs = next_obs
        if terminated or truncated:
            episode_returns.append(episode_return)
            bar.set_postfix(ret=f"{np.mean(episode_returns[-10:]):.1f}")
            obs, _ = env.reset()
            episode_return = 0.0

        if step >= args.learning_starts:
            u0 = time.perf_counter()
            batch = buffer.sample(args.batch_size, rng, device)
            policy.alpha = temperature.alpha
            next_log_pi = critic_step(batch, policy, critics, targets, q_optimizer, args)
            info = policy.update(batch["obs"], critics)
            temperature.update(next_log_pi)
            soft_update(targets, critics, args.tau)
            update_time += time.perf_counter() - u0
            updates += 1
            if "spread" in info and spread_collapsed(info["spread"], args.collapse_threshold):
                collapse_warnings += 1
                if collapse_warnings <= 10 or collapse_warnings % 1000 == 0:
                    tqdm.write(
                        f"WARNING step {step + 1}: the policy is collapsing (mean per-state sd "
                        f"of u {info['spread']:.2e} < {args.collapse_threshold:g}; "
                        f"{collapse_warnings} warnings so far)"
                    )

        done_steps = step + 1
        if done_steps % args.eval_every == 0 or done_steps == args.total_steps:
            row = {
                "step": done_steps,
                "train": float(np.mean(episode_returns[-10:])) if episode_returns else math.nan,
                "eval_det": evaluate(policy, eval_env, args.eval_episodes, True),
                "eval_stoch": evaluate(policy, eval_env, args.eval_episodes, False),
                "alpha": temperature.alpha,
            }
            rows.append(row)
            tqdm.write(
                f"step {done_steps}: train {row['train']:.1f}, eval zero-noise "
                f"{row['eval_det']:.1f}, eval stochastic {row['eval_stoch']:.1f}, "
                f"alpha {row['alpha']:.3g}"
            )
        if ckpt and (done_steps % args.checkpoint_every == 0 or done_steps == args.total_steps):
            save(done_steps)
    bar.close()
    wall = time.perf_counter() - t0

    if args.csv:
        Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
        with open(args.csv, "w", newline="") as f:
            writer = csv.DictWriter(
                f, fieldnames=["step", "train", "eval_det", "eval_stoch", "alpha"]
            )
            writer.writeheader()
            writer.writerows(rows)
    if args.out and rows:
        plot(rows, f"SAC ({args.policy} policy), {args.env}, seed {args.seed}", args.out)
    last = rows[-1] if rows else {"eval_det": math.nan, "eval_stoch": math.nan}
    ran = args.total_steps - start
    return {
        "eval_det_return": last["eval_det"],
        "eval_stoch_return": last["eval_stoch"],
        "steps_per_s": ran / wall if ran > 0 else math.nan,
        "updates_per_s": updates / update_time if update_time > 0 else math.nan,
        "collapse_warnings": float(collapse_warnings),
        "alpha": temperature.alpha,
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--env", default="Pendulum-v1", help="gymnasium id with a Box action space")
    p.add_argument("--policy", default="implicit", choices=POLICIES, help="actor to train")
    p.add_argument("--seed", type=int, default=0, help="seed of torch, numpy and the envs")
    p.add_argument("--total-steps", type=int, default=20_000, help="environment steps")
    p.add_argument("--learning-starts", type=int, default=1000, help="random-action steps first")
    p.add_argument("--buffer-size", type=int, default=1_000_000, help="replay capacity")
    p.add_argument("--batch-size", type=int, default=256, help="transitions per update")
    p.add_argument("--gamma", type=float, default=0.99, help="discount")
    p.add_argument("--tau", type=float, default=0.005, help="target-network Polyak rate")
    p.add_argument("--lr", type=float, default=3e-4, help="Adam rate: critics, actor, AR-DAE")
    p.add_argument("--alpha", type=float, default=0.05, help="entropy temperature (initial)")
    p.add_argument("--autotune", action="store_true", help="learn alpha toward a target entropy")
    p.add_argument(
        "--target-entropy", type=float, default=None, help="with --autotune; default -dim(A)"
    )
    p.add_argument("--noise-dim", type=int, default=10, help="implicit policy: noise size")
    p.add_argument(
        "--score-samples", type=int, default=32, help="implicit: draws per state per AR-DAE step"
    )
    p.add_argument(
        "--score-hidden", type=int, nargs="+", default=[128, 128], help="AR-DAE hidden widths"
    )
    p.add_argument(
        "--normalizer-samples", type=int, default=64, help="implicit: IS draws per state for log Z"
    )
    p.add_argument("--jc-weight", type=float, default=1.0, help="Jacobian clamping weight, 0 off")
    p.add_argument("--jc-eta", type=float, default=1e-3, help="Jacobian clamping floor eta")
    p.add_argument(
        "--collapse-threshold", type=float, default=1e-2, help="warn below this mean sd of u"
    )
    p.add_argument("--eval-every", type=int, default=5000, help="steps between evaluations")
    p.add_argument("--eval-episodes", type=int, default=5, help="episodes per evaluation mode")
    p.add_argument("--checkpoint", default="", help="checkpoint path ('' for none)")
    p.add_argument("--checkpoint-every", type=int, default=5000, help="steps between saves")
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint if present")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--device", default="cpu", help="torch device of the networks (e.g. cuda)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--csv", default="outputs/sac.csv", help="returns CSV ('' for none)")
    p.add_argument("--out", default="outputs/sac.png", help="learning curve ('' for none)")
    return p


if __name__ == "__main__":
    print(main(parser().parse_args()))

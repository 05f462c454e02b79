"""The SAC example's environment side: gymnasium set-up, the replay buffer, evaluation."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor


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

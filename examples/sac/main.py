"""The SAC example's training loop and command line (``python -m examples.sac --help``)."""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from pathlib import Path

import numpy as np
import pyro
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import constraints
from tqdm import tqdm

from ..common import check_device
from .agents import (
    Critics,
    GaussianPolicy,
    ImplicitPolicy,
    Temperature,
    soft_update,
    spread_collapsed,
)
from .env import ReplayBuffer, evaluate, make_env
from .plots import plot

POLICIES = ("implicit", "gaussian")


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
    check_device("sac", args.device)


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
    p = argparse.ArgumentParser(
        prog="python -m examples.sac",
        description=sys.modules[__package__].__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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

"""SAC with the implicit (AR-DAE) policy next to tanh-Gaussian SAC, same seeds and settings.

Runs ``examples/sac/`` for both policies in one process, one after the other for each seed
(same critics, buffer, batch 256, gamma 0.99, tau 0.005, Adam 3e-4, alpha 0.05 fixed, or
learned toward entropy -dim(A) for both with ``--autotune``). Metrics:
``gaussian_return`` and ``implicit_return``, the mean over seeds of the final evaluation
return of the zero-noise policy (``*_return_stochastic``: of the stochastic one), and
``*_steps_per_s`` (environment steps per second over the whole run, evaluations included).
Bar (the issue's): Pendulum-v1 within 20k steps, both at >= -250.

    python -m benchmarks.sac --quick                       # Pendulum-v1, 3000 steps, seed 0
    python -m benchmarks.sac                               # Pendulum-v1, 20k steps, seed 0
    python -m benchmarks.sac --env HalfCheetah-v5 --steps 100000 --seeds 0 1 2 \
        --checkpoint-dir outputs/sac_hc   # the same command again resumes every run
    python -m benchmarks.sac --quick --device cuda         # the networks on the GPU

With ``--checkpoint-dir`` each (policy, seed) run checkpoints every 5000 steps and resumes from
its checkpoint, so a long comparison can be spread over several processes; a finished run
is not repeated (its figures come from its checkpoint, its speed from the last segment run).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from examples.sac import main as sac

from .common import provenance

PENDULUM_BAR = -250.0


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="Pendulum-v1, 3000 steps")
    parser.add_argument("--env", default="Pendulum-v1", help="gymnasium id")
    parser.add_argument("--steps", type=int, default=None, help="20000 (quick: 3000)")
    parser.add_argument("--learning-starts", type=int, default=1000, help="random steps first")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds, each policy")
    parser.add_argument("--eval-episodes", type=int, default=None, help="10 (quick: 3)")
    parser.add_argument("--score-samples", type=int, default=32, help="AR-DAE draws per state")
    parser.add_argument("--autotune", action="store_true", help="learn alpha, both policies")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="cpu", help="torch device of the networks")
    parser.add_argument("--out-dir", default="outputs/sac_benchmark", help="CSVs and curves")
    parser.add_argument("--checkpoint-dir", default="", help="checkpoint and resume each run")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=False)
    args = parser.parse_args()
    steps = args.steps or (3000 if args.quick else 20_000)
    episodes = args.eval_episodes or (3 if args.quick else 10)
    out_dir = Path(args.out_dir)
    runs: dict[str, list[dict]] = {p: [] for p in ("gaussian", "implicit")}
    for seed in args.seeds:
        for policy in runs:
            stem = out_dir / f"{args.env}_{policy}_seed{seed}"
            cli = [
                "--env", args.env, "--policy", policy, "--seed", str(seed),
                "--total-steps", str(steps), "--learning-starts", str(args.learning_starts),
                "--eval-every", str(max(1, steps // 4)), "--eval-episodes", str(episodes),
                "--score-samples", str(args.score_samples), "--threads", str(args.threads),
                "--device", args.device,
                "--csv", f"{stem}.csv", "--out", f"{stem}.png",
                "--progress" if args.progress else "--no-progress",
            ] + (["--autotune"] if args.autotune else [])  # fmt: skip
            if args.checkpoint_dir:
                ckpt = Path(args.checkpoint_dir) / f"{args.env}_{policy}_seed{seed}.pt"
                cli += ["--checkpoint", str(ckpt), "--resume"]
            out = sac.main(sac.parser().parse_args(cli))
            runs[policy].append(out)
            print(json.dumps({"policy": policy, "seed": seed, **out}), flush=True)
    result: dict[str, object] = {"benchmark": "sac", "env": args.env, "steps": steps}
    result["device"] = args.device
    for policy, outs in runs.items():
        result[f"{policy}_return"] = float(np.mean([o["eval_det_return"] for o in outs]))
        result[f"{policy}_return_stochastic"] = float(
            np.mean([o["eval_stoch_return"] for o in outs])
        )
        result[f"{policy}_returns_per_seed"] = [o["eval_det_return"] for o in outs]
        result[f"{policy}_steps_per_s"] = float(np.mean([o["steps_per_s"] for o in outs]))
        result[f"{policy}_updates_per_s"] = float(np.mean([o["updates_per_s"] for o in outs]))
        result[f"{policy}_collapse_warnings"] = sum(o["collapse_warnings"] for o in outs)
        result[f"{policy}_final_alpha"] = [o["alpha"] for o in outs]
    result.update(
        seeds=args.seeds,
        learning_starts=args.learning_starts,
        eval_episodes=episodes,
        score_samples=args.score_samples,
        batch_size=sac.parser().get_default("batch_size"),
        alpha=sac.parser().get_default("alpha"),
        autotune=args.autotune,
    )
    if args.env == "Pendulum-v1":
        result["bar"] = f"both >= {PENDULUM_BAR:g} within 20k steps"
        result["passed"] = (
            steps <= 20_000
            and min(result["gaussian_return"], result["implicit_return"]) >= PENDULUM_BAR
        )
    result.update(provenance())
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()

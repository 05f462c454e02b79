"""The SAC example's learning-curve figure."""

from __future__ import annotations

from pathlib import Path


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

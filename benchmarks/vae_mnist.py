"""VAE on MNIST (the paper's Table 1, MLP): implicit (AR-DAE) vs Gaussian encoder.

Runs ``examples/vae_mnist/``'s two encoders side by side in one process, at an equal
budget (same epochs, batch, optimiser, decoder, seed), and reports the test log p(x) of each
by importance sampling with K proposals per image (the Gaussian encoder's own density; for
the implicit one a full-covariance Gaussian fitted to K of its draws), plus the wall time of
training and evaluation. Keys ``gaussian_test_ll``, ``ardae_test_ll`` (nats, higher is
better) and ``ardae_minus_gaussian``. Needs the MNIST files (``--data-dir``; the default is
the ``../shared/data`` the project's tests use).

    python -m benchmarks.vae_mnist --quick   # 10k training images, 5 epochs, 1000 test, K=256
    python -m benchmarks.vae_mnist           # 60k, 20 epochs, all 10k test images, K=1024
    python -m benchmarks.vae_mnist --quick --device cuda
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from examples.vae_mnist import main as vae_mnist

from .common import provenance

ROOT = Path(__file__).resolve().parents[1]


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a subset: see the docstring")
    parser.add_argument("--epochs", type=int, default=None, help="20 (quick: 5)")
    parser.add_argument("--score-samples", type=int, default=16, help="AR-DAE draws per x")
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="torch device (e.g. cuda)")
    parser.add_argument("--out", default="", help="figure path ('' for none)")
    args = parser.parse_args()
    epochs = args.epochs or (5 if args.quick else 20)
    sizes = ["--train-size", "10000", "--test-size", "1000", "--k", "256"] if args.quick else []
    ex_args = vae_mnist.parser().parse_args(
        [
            *sizes,
            "--epochs",
            str(epochs),
            "--score-samples",
            str(args.score_samples),
            "--data-dir",
            args.data_dir,
            "--no-download",
            "--seed",
            str(args.seed),
            "--threads",
            str(args.threads),
            "--device",
            args.device,
            "--no-progress",
            "--out",
            args.out,
        ]
    )
    result = vae_mnist.main(ex_args)
    out = {
        "benchmark": "vae_mnist",
        "quick": args.quick,
        "device": args.device,
        "gaussian_test_ll": result["gaussian_test_ll"],
        "ardae_test_ll": result["implicit_test_ll"],
        "ardae_minus_gaussian": result["implicit_test_ll"] - result["gaussian_test_ll"],
        "gaussian_train_seconds": result["gaussian_train_seconds"],
        "ardae_train_seconds": result["implicit_train_seconds"],
        "gaussian_eval_seconds": result["gaussian_eval_seconds"],
        "ardae_eval_seconds": result["implicit_eval_seconds"],
        "settings": {
            k: getattr(ex_args, k)
            for k in (
                "arch",
                "epochs",
                "batch_size",
                "lr",
                "residual_lr",
                "score_samples",
                "score_lr",
                "score_hidden",
                "k",
                "train_size",
                "test_size",
            )
        },
        **provenance(),
    }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()

"""The MNIST VAE example: loader, evaluation, checkpoint round-trip, argument errors."""

import math

import pyro
import pytest
import torch
from conftest import data_dir
from test_examples import SHRUNK

from examples.vae_mnist import data, model
from examples.vae_mnist import main as cli

TINY = [*SHRUNK["vae_mnist"], "--out", ""]


def test_loader_matches_the_known_mnist_facts():
    train_x, train_y = data.load_mnist(data_dir(), train=True, download=False)
    test_x, test_y = data.load_mnist(data_dir(), train=False, download=False)
    assert train_x.shape == (60_000, 784) and test_x.shape == (10_000, 784)
    assert train_y[:5].tolist() == [5, 0, 4, 1, 9]
    assert test_y[:3].tolist() == [7, 2, 1]
    assert 0.0 <= train_x.min() and train_x.max() == 1.0
    # dynamic binarisation: binary, and a fresh draw each time with the grey level as mean
    x = train_x[:2000]
    a, b = data.binarize(x), data.binarize(x)
    assert set(a.unique().tolist()) <= {0.0, 1.0} and not torch.equal(a, b)
    sd = (x * (1 - x)).sum().sqrt() / x.numel()  # of the mean of the binarised pixels
    assert abs(a.mean() - x.mean()) < 5 * sd


def test_implicit_encoder_starts_as_the_gaussian_head():
    """The implicit head's residual starts at zero: q(z | x) begins as a diagonal Gaussian
    whose sd is the head's softplus output (a check of the draws against it)."""
    vae = model.VAE()
    x = torch.rand(3, 784)
    draws = vae.implicit_draws(x, 4000)  # (4000, 3, 32)
    features = vae.implicit.context(x)
    loc, sd = vae.implicit.net.gaussian(features)
    n = draws.shape[0]
    assert (draws.mean(0) - loc).abs().max() < 5 * sd.max() / n**0.5
    assert ((draws.std(0) / sd) - 1).abs().max() < 5 / (2 * n) ** 0.5


def test_implicit_head_factorises_over_the_latent_coordinates():
    """Coordinate i of z depends on noise i, 32 + i and 64 + i only, even with r active, so
    q(z | x) is a product over coordinates (the AR-DAE's diagonal base sees all of it)."""
    torch.manual_seed(0)
    head = model.ImplicitHead()
    torch.nn.init.normal_(head.residual[-1].weight)  # r != 0
    features = torch.randn(model.HIDDEN)
    jac = torch.autograd.functional.jacobian(
        lambda noise: head(noise, features), torch.randn(model.NOISE)
    )  # (32, 96)
    own = torch.zeros_like(jac, dtype=torch.bool)
    for i in range(model.LATENT):
        own[i, i :: model.LATENT] = True
    assert (jac[~own] == 0).all()
    assert (jac[own] != 0).float().mean() > 0.9  # r uses the extra noise too


@pytest.mark.parametrize("encoder", ["implicit", "gaussian"])
def test_checkpoint_reloads_and_reproduces_the_test_figure(encoder, tmp_path):
    args = cli.parser().parse_args([*TINY, "--encoder", encoder, "--checkpoint", str(tmp_path)])
    result = cli.main(args)
    assert math.isfinite(result[f"{encoder}_test_ll"])
    pyro.clear_param_store()
    vae, saved = cli.load_checkpoint(tmp_path / f"vae_{encoder}.pt")
    test_x, _ = data.load_mnist(data_dir(), train=False, download=False)
    again = cli.evaluate(vae, encoder, test_x[:16], args)
    assert again == saved["result"][f"{encoder}_test_ll"] == result[f"{encoder}_test_ll"]


@pytest.mark.parametrize(
    "flag, value, match",
    [
        ("--k", "32", r"expected --k > 32"),
        ("--epochs", "0", r"expected --epochs >= 1, got 0"),
        ("--encoder", "flow", r"expected --encoder in \('implicit', 'gaussian'\) or 'both'"),
        ("--device", "gpu0", r"expected --device like 'cpu' or 'cuda:0', got 'gpu0'"),
    ],
)
def test_bad_arguments_fail_before_training(flag, value, match):
    args = cli.parser().parse_args([*TINY, flag, value])
    with pytest.raises(ValueError, match=match):
        cli.main(args)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message without CUDA")
def test_cuda_device_without_cuda_is_refused():
    args = cli.parser().parse_args([*TINY, "--device", "cuda"])
    with pytest.raises(ValueError, match="--device cuda: CUDA is not available"):
        cli.main(args)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("encoder", ["implicit", "gaussian"])
def test_trains_on_cuda_and_reloads_on_either_device(encoder, tmp_path):
    argv = [*TINY, "--encoder", encoder, "--checkpoint", str(tmp_path), "--device", "cuda"]
    args = cli.parser().parse_args(argv)
    result = cli.main(args)
    assert math.isfinite(result[f"{encoder}_test_ll"])
    vae, _ = cli.load_checkpoint(tmp_path / f"vae_{encoder}.pt")
    assert all(not p.is_cuda for p in vae.parameters())
    test_x, _ = data.load_mnist(data_dir(), train=False, download=False)
    with torch.device("cuda"):
        vae, _ = cli.load_checkpoint(tmp_path / f"vae_{encoder}.pt")
        again = cli.evaluate(vae, encoder, test_x[:16].cuda(), args)
    assert again == pytest.approx(result[f"{encoder}_test_ll"], rel=1e-5)


def test_conv_variant_runs_for_both_encoders():
    args = cli.parser().parse_args([*TINY, "--arch", "conv"])
    result = cli.main(args)
    assert all(math.isfinite(v) for v in result.values())
    assert set(result) >= {"implicit_test_ll", "gaussian_test_ll"}

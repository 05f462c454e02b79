"""The energy-fitting example's targets, penalty and exact sampler against analytic values."""

import math

import pyro
import pytest
import torch

from examples.common import IterateMixture, ParameterEMA
from examples.energy_fitting import main as ef_main
from examples.energy_fitting import samplers, targets


def test_wall_and_energies_at_known_points():
    assert targets.wall(torch.tensor([7.0, -8.0])).item() == pytest.approx(1.0 + 4.0)
    assert targets.wall(torch.tensor([5.9, -6.0])).item() == 0.0
    # on the ring at a mode, in the middle of U2's band, on U3's and U4's first branch
    assert targets.u1(torch.tensor([2.0, 0.0])).item() == pytest.approx(0.0, abs=1e-6)
    assert targets.u2(torch.tensor([1.0, 1.0])).item() == pytest.approx(0.0, abs=1e-6)
    assert targets.u3(torch.tensor([1.0, 1.0])).item() == pytest.approx(
        -math.log1p(math.exp(-0.5 * (3 / 0.35) ** 2))
    )
    assert targets.u4(torch.tensor([-3.0, 1.0])).item() < 1e-3
    with pytest.raises(ValueError, match="expected a target"):
        targets.energy("U5", torch.zeros(2))


def test_model_density_is_the_target():
    z = torch.tensor([0.3, -1.2])
    trace = pyro.poutine.trace(pyro.poutine.condition(targets.model, data={"z": z})).get_trace(
        "U2", 0.5
    )
    assert trace.log_prob_sum().item() == pytest.approx(
        -0.5 * targets.energy("U2", z).item(), rel=1e-5
    )


def test_exact_sampler_matches_the_density_of_u2():
    # U2 + wall: z1 has density prop. to exp(-relu(|z1| - 6)^2), i.e. P(|z1| < 6) =
    # 12 / (12 + sqrt(pi)); z2 | z1 ~ N(sin(pi z1 / 2), 0.4^2) (the wall on z2 is negligible).
    n = 100_000
    z = targets.exact_samples("U2", n, torch.Generator().manual_seed(0)).double()
    p = 12 / (12 + math.sqrt(math.pi))
    se = math.sqrt(p * (1 - p) / n)
    assert abs((z[:, 0].abs() < 6).double().mean().item() - p) < 4 * se
    r = (z[:, 1] - torch.sin(torch.pi * z[:, 0] / 2)) / 0.4
    # grid cells of 0.013 add about 0.1% to the sd; the Monte Carlo SE is 0.003
    assert abs(r.mean().item()) < 0.015
    assert abs(r.std().item() - 1) < 0.015


def test_unknown_target_is_refused_before_fitting():
    args = ef_main.parser().parse_args(["--targets", "U1,U9", "--steps", "1", "--out", ""])
    with pytest.raises(ValueError, match=r"--targets: expected names in .*'U9'"):
        ef_main.main(args)
    args = ef_main.parser().parse_args(["--methods", "implicit,flow", "--steps", "1", "--out", ""])
    with pytest.raises(ValueError, match=r"--methods: expected names in .*'flow'"):
        ef_main.main(args)


def test_parameter_ema_is_the_exponentially_weighted_mean_and_restores():
    layer = torch.nn.Linear(2, 1)
    ema = ParameterEMA(layer, decay=0.9)
    values = [3.0, -1.0, 4.0, 1.5]
    for v in values:
        layer.weight.data.fill_(v)
        ema.update()
    # started at the first iterate: d^(n-1) x_1 + sum_{k>=2} (1 - d) d^(n-k) x_k
    d, n = 0.9, len(values)
    expected = d ** (n - 1) * values[0]
    expected += sum((1 - d) * d ** (n - k) * values[k - 1] for k in range(2, n + 1))
    with ema.applied():
        assert torch.allclose(layer.weight, torch.full((1, 2), expected))
    assert torch.equal(layer.weight, torch.full((1, 2), values[-1]))
    with pytest.raises(RuntimeError), ema.applied():  # restored when the block raises too
        raise RuntimeError
    assert torch.equal(layer.weight, torch.full((1, 2), values[-1]))
    with pytest.raises(ValueError, match=r"expected 0 < decay < 1, got 1.0"):
        ParameterEMA(layer, decay=1.0)


def test_iterate_mixture_pools_draws_of_the_last_iterates():
    iterate = iter(range(100))
    state = {"now": -1}

    def sample(n):  # each draw records the iterate it came from
        return torch.full((n, 2), float(state["now"]))

    mix = IterateMixture(sample, steps=100, window=40, num_samples=103, snapshots=4)
    for _ in range(100):
        state["now"] = next(iterate)  # the parameters after step k + 1
        mix.update()
    z = mix.draws()
    assert z.shape == (103, 2)
    # snapshots after steps 70, 80, 90, 100 (iterates 69..99), 25 draws each, 3 more first
    values, counts = z[:, 0].unique(return_counts=True)
    assert values.tolist() == [69.0, 79.0, 89.0, 99.0]
    assert counts.tolist() == [28, 25, 25, 25]
    with pytest.raises(RuntimeError, match="0 of 4 snapshots taken after 0 steps"):
        IterateMixture(sample, steps=100, window=40, num_samples=103, snapshots=4).draws()
    with pytest.raises(ValueError, match="snapshots <= window <= steps, got snapshots=4, wind"):
        IterateMixture(sample, steps=10, window=20, num_samples=100, snapshots=4)
    with pytest.raises(ValueError, match=r"num_samples >= snapshots \(4\), got 3"):
        IterateMixture(sample, steps=10, window=8, num_samples=3, snapshots=4)


@pytest.mark.parametrize("average", [["--ema", "0.5"], ["--pool", "10"]])
def test_averaged_run_reports_the_last_iterate_too(average):
    args = ef_main.parser().parse_args(
        ["--targets", "U1", "--methods", "implicit,iaf", "--steps", "10", "--particles", "16",
         "--num-samples", "100", *average, "--no-progress", "--out", ""]
    )  # fmt: skip
    out = ef_main.main(args)
    for method in ("implicit", "iaf"):
        assert math.isfinite(out[f"U1_{method}_edist"])
        assert math.isfinite(out[f"U1_{method}_edist_last"])


CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=CUDA)])
def test_pooling_leaves_the_training_path_as_it_was(device):
    argv = ["--targets", "U1", "--methods", "implicit", "--steps", "30", "--particles", "16",
            "--num-samples", "100", "--no-progress", "--out", "", "--device", device]  # fmt: skip
    plain = ef_main.main(ef_main.parser().parse_args(argv))
    pooled = ef_main.main(ef_main.parser().parse_args([*argv, "--pool", "20"]))
    assert pooled["U1_implicit_edist_last"] == plain["U1_implicit_edist"]
    assert pooled["U1_implicit_edist"] != plain["U1_implicit_edist"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--ema", "1.5"], r"--ema: expected a decay in \[0, 1\), got 1.5"),
        (["--steps", "10", "--pool", "20"], r"expected 0 or 10 to --steps \(10\) steps, got 20"),
        (["--pool", "5"], r"--pool: expected 0 or 10 to --steps \(5000\) steps, got 5"),
        (["--ema", "0.9", "--pool", "50"], r"expected one of --ema and --pool, got both"),
        (["--score-delta", "0"], r"--score-delta: expected a positive number, got 0.0"),
        (["--fourier-scale", "-1"], r"--fourier-scale: expected a positive number, got -1.0"),
        (["--lr-decay", "0"], r"--lr-decay: expected a factor in \(0, 1\], got 0.0"),
        (
            ["--device", "gpu0"],
            "energy_fitting: expected --device like 'cpu' or 'cuda:0', got 'gpu0'",
        ),
    ],
)
def test_bad_training_options_are_refused_before_fitting(argv, message):
    with pytest.raises(ValueError, match=message):
        ef_main.main(ef_main.parser().parse_args([*argv, "--out", ""]))


@pytest.mark.parametrize("method", ["implicit", "hierarchical"])
def test_score_parameterization_reaches_the_score_networks(method):
    argv = ["--steps", "3", "--particles", "8", "--no-progress"]
    for kind in ("vector", "gradient"):
        args = ef_main.parser().parse_args([*argv, "--score-parameterization", kind])
        _, loss, _, _ = samplers.train("U1", method, args)
        (est,) = loss.estimators.values()
        assert est.net.parameterization == kind


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_cuda_is_refused_before_fitting():
    with pytest.raises(ValueError, match="--device cuda: CUDA is not available"):
        ef_main.main(ef_main.parser().parse_args(["--device", "cuda", "--out", ""]))


@CUDA
def test_every_sampler_trains_on_cuda_and_scores_on_the_cpu(tmp_path):
    argv = ["--targets", "U3", "--steps", "20", "--particles", "32", "--num-samples", "200",
            "--ema", "0.5", "--no-progress", "--device", "cuda",
            "--out", str(tmp_path / "f.png")]  # fmt: skip
    out = ef_main.main(ef_main.parser().parse_args(argv))
    assert len(out) == 9 and all(math.isfinite(v) for v in out.values())
    assert (tmp_path / "f.png").exists()
    args = ef_main.parser().parse_args(["--steps", "2", "--particles", "8", "--no-progress"])
    with torch.device("cuda"):
        guide, loss, _, _ = samplers.train("U1", "implicit", args)
    assert next(guide.parameters()).is_cuda
    assert next(iter(loss.estimators.values())).stats.loc.is_cuda

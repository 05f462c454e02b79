"""SAC example (examples/sac) and the log-normaliser it needs (both backends)."""

from __future__ import annotations

import csv
import math

import numpy as np
import pyro
import pytest
import torch
from torch.distributions import biject_to, constraints

from examples.sac import agents, env
from examples.sac import main as cli
from pyro_ardae import ScoreConfig, ScoreEstimator, log_normalizer

TINY = [
    "--env",
    "Pendulum-v1",
    "--learning-starts",
    "100",
    "--batch-size",
    "32",
    "--score-samples",
    "8",
    "--normalizer-samples",
    "8",
    "--score-hidden",
    "32",
    "32",
    "--eval-episodes",
    "1",
    "--no-progress",
]


def tiny_args(tmp_path, *extra):
    return cli.parser().parse_args(
        [*TINY, "--csv", str(tmp_path / "r.csv"), "--out", str(tmp_path / "c.png"), *extra]
    )


# --- the log-normaliser -----------------------------------------------------------------


class StubNet:
    """A hand-set energy ``F(y, 0, c)`` with a known integral, in the ScoreNet interface."""

    def __init__(self, dim, energy):
        self.dim = dim
        self._energy = energy

    def energy(self, y, sigma, context=None):
        return self._energy(y, context)

    def parameters(self):
        return iter([torch.zeros(())])


def gaussian_energy(scale):
    # F = |y|^2 / (2 s^2): Z = (2 pi s^2)^(d/2)
    return lambda y, c: 0.5 * y.pow(2).sum(-1) / scale**2


def relative_var_gaussian(scale, dim):
    """Var(w) / Z^2 of the importance weights N(0, s^2) / N(0, 1), per the exact integral
    of N(y; 0, s^2)^2 / N(y; 0, 1) = 1 / (s sqrt(2 - s^2)) per dimension."""
    return (1 / (scale * math.sqrt(2 - scale**2))) ** dim - 1


def test_log_normalizer_gaussian_energy():
    scale, dim, k = 1.2, 2, 4096
    net = StubNet(dim, gaussian_energy(scale))
    gen = torch.Generator().manual_seed(0)
    log_z = log_normalizer(net, k, generator=gen)
    exact = 0.5 * dim * math.log(2 * math.pi * scale**2)
    tol = 5 * math.sqrt(relative_var_gaussian(scale, dim) / k)  # delta method, 5 sd
    assert abs(log_z.item() - exact) < tol


def test_log_normalizer_per_context_row():
    dim, k = 1, 8192
    scales = torch.tensor([0.7, 1.0, 1.3])
    net = StubNet(dim, lambda y, c: 0.5 * y.pow(2).sum(-1) / c[..., 0] ** 2)
    log_z = log_normalizer(net, k, scales[:, None], torch.Generator().manual_seed(1))
    assert log_z.shape == (3,)
    exact = 0.5 * torch.log(2 * math.pi * scales**2)
    tol = torch.tensor([5 * math.sqrt(relative_var_gaussian(s, dim) / k) for s in scales.tolist()])
    assert ((log_z - exact).abs() < tol + 1e-5).all()  # s = 1: exact up to rounding


def mixture_log_density(y):
    comps = torch.distributions.Normal(torch.tensor([-1.0, 1.2]), torch.tensor([0.6, 0.8]))
    return torch.logsumexp(comps.log_prob(y[..., None]) + math.log(0.5), -1)


def test_log_normalizer_mixture_energy():
    # F = -log p(y) - log C for a normalised mixture p: Z = C
    k, log_c = 8192, math.log(3.7)
    net = StubNet(1, lambda y, c: -mixture_log_density(y[..., 0]) - log_c)
    log_z = log_normalizer(net, k, generator=torch.Generator().manual_seed(2))
    grid = torch.linspace(-12, 12, 20001)
    proposal = torch.distributions.Normal(0.0, 1.0).log_prob(grid)
    second_moment = torch.trapezoid((2 * mixture_log_density(grid) - proposal).exp(), grid)
    tol = 5 * math.sqrt((second_moment.item() - 1) / k)
    assert abs(log_z.item() - log_c) < tol


def test_log_normalizer_rejects_bad_num_samples():
    with pytest.raises(ValueError, match="num_samples >= 1"):
        log_normalizer(StubNet(1, gaussian_energy(1.0)), 0)


def test_normalized_log_prob_of_a_gaussian_per_context():
    # whitened per row, a Gaussian is the untrained network's exact density
    torch.manual_seed(0)
    n, loc, sd = (
        4000,
        torch.tensor([[0.5, -1.0], [2.0, 0.0]]),
        torch.tensor([[0.3, 2.0], [1.0, 0.1]]),
    )
    est = ScoreEstimator(2, 1, config=ScoreConfig(hidden=(16,), parameterization="gradient"))
    context = torch.tensor([[0.0], [1.0]])
    est.set_stats(loc + sd * torch.randn(n, 2, 2), context)
    z = loc + sd * torch.randn(50, 2, 2)
    got = est.normalized_log_prob(z, context, num_samples=16)
    exact = torch.distributions.Normal(loc, sd).log_prob(z).sum(-1)
    # the whitening's moments from n draws: |log sd error| ~ 1/sqrt(2n) per dim, z-scores ~ 3
    assert (got - exact).abs().max() < 0.15


def test_normalized_log_prob_of_a_fitted_mixture():
    torch.manual_seed(0)
    comps = torch.distributions.Normal(torch.tensor([-1.0, 1.2]), torch.tensor([0.6, 0.8]))
    pick = torch.randint(2, (20000,))
    samples = comps.sample((20000,))[torch.arange(20000), pick][:, None]
    est = ScoreEstimator(1, config=ScoreConfig(hidden=(64, 64), parameterization="gradient"))
    est.fit(samples, num_steps=1500, batch_size=512)
    z = torch.linspace(-2.0, 2.5, 46)[:, None]
    got = est.normalized_log_prob(z, num_samples=8192)
    err = (got - mixture_log_density(z[:, 0])).abs()
    assert err.mean() < 0.1 and err.max() < 0.3


def test_numpyro_log_normalizer_matches_the_known_normaliser():
    jax = pytest.importorskip("jax")
    from numpyro_ardae import log_normalizer as np_log_normalizer

    scale, dim, k = 1.2, 2, 4096

    class JaxStub:
        def __init__(self):
            self.dim = dim

        def energy(self, y, sigma, context=None):
            s = scale if context is None else context[0]
            return 0.5 * (y**2).sum() / s**2

    tol = 5 * math.sqrt(relative_var_gaussian(scale, dim) / k)
    log_z = np_log_normalizer(JaxStub(), jax.random.PRNGKey(0), k)
    assert abs(float(log_z) - dim * 0.5 * math.log(2 * math.pi * scale**2)) < tol
    ctx = jax.numpy.array([[scale], [scale]])
    rows = np_log_normalizer(JaxStub(), jax.random.PRNGKey(1), k, ctx)
    assert rows.shape == (2,)
    assert np.all(np.abs(np.asarray(rows) - dim * 0.5 * math.log(2 * math.pi * scale**2)) < tol)


# --- the example's parts ----------------------------------------------------------------


def test_replay_buffer_wraps_samples_and_round_trips():
    buf = env.ReplayBuffer(5, 3, 2)
    for i in range(7):
        buf.add(np.full(3, i), np.full(2, -i), float(i), np.full(3, i + 1), i == 6)
    assert len(buf) == 5 and buf.pos == 2 and buf.full
    assert sorted(buf.rewards.tolist()) == [2, 3, 4, 5, 6]
    batch = buf.sample(64, np.random.default_rng(0))
    assert batch["obs"].shape == (64, 3) and batch["actions"].shape == (64, 2)
    assert torch.equal(batch["next_obs"][:, 0], batch["obs"][:, 0] + 1)
    assert torch.equal(batch["terminated"], (batch["rewards"] == 6).float())
    other = env.ReplayBuffer(5, 3, 2)
    other.load_state_dict(buf.state_dict())
    assert other.pos == buf.pos and np.array_equal(other.obs, buf.obs)


def test_soft_update_is_polyak_averaging():
    torch.manual_seed(0)
    target, source = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    before = [p.clone() for p in target.parameters()]
    agents.soft_update(target, source, 0.005)
    for t, b, s in zip(target.parameters(), before, source.parameters(), strict=True):
        assert torch.allclose(t, 0.995 * b + 0.005 * s)
    agents.soft_update(target, source, 1.0)
    pairs = zip(target.parameters(), source.parameters(), strict=True)
    assert all(torch.equal(t, s) for t, s in pairs)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bounds", [(-2.0, 2.0), (-1.0, 1.0), (0.0, 1.0), (-0.4, 3.0)])
def test_squashing_support(dtype, bounds):
    """Actions lie in the closed box for any u, strictly inside for moderate u; the
    log-dets are finite even where the sigmoid saturates. (At the lower edge,
    low + (high - low) sigmoid(u) rounds to low once sigmoid(u) is below the box's ulp, so
    strictness there holds up to |u| ~ 15 in float32, 35 in float64.)"""
    low, high = (torch.tensor([b], dtype=dtype) for b in bounds)
    box = constraints.interval(low, high)
    big = torch.tensor([-1e6, -1e3, -60.0, 60.0, 1e3, 1e6], dtype=dtype)[:, None]
    a, log_det = agents.squash(big, box)
    assert ((a >= low) & (a <= high)).all() and torch.isfinite(log_det).all()
    limit = 15.0 if dtype == torch.float32 else 35.0
    u = torch.linspace(-limit, limit, 101, dtype=dtype)[:, None]
    a, log_det = agents.squash(u, box)
    assert ((a > low) & (a < high)).all() and torch.isfinite(log_det).all()
    exact = biject_to(box).log_abs_det_jacobian(u, a).sum(-1)
    assert torch.equal(log_det, exact)


def test_collapse_detector():
    assert agents.spread_collapsed(1e-4, 1e-2)
    assert agents.spread_collapsed(float("nan"), 1e-2)
    assert not agents.spread_collapsed(0.5, 1e-2)


@pytest.mark.parametrize("entropy, direction", [(2.0, -1), (-3.0, 1)])
def test_temperature_moves_alpha_toward_the_target_entropy(entropy, direction):
    lr = 1e-2
    learned = agents.Temperature(0.05, target_entropy=-1.0, lr=lr)
    fixed = agents.Temperature(0.05, target_entropy=None, lr=lr)
    log_pi = torch.full((256,), -entropy)
    for _ in range(5):
        alpha = learned.update(log_pi)
        assert fixed.update(log_pi) == pytest.approx(0.05)
    # Adam's first steps move log alpha by lr each, against the sign of H - H_target
    assert math.log(alpha / 0.05) == pytest.approx(direction * 5 * lr, rel=1e-3)


def small_policy(tmp_path, *extra):
    args = tiny_args(tmp_path, *extra)
    pyro.clear_param_store()
    box = constraints.interval(torch.tensor([-2.0]), torch.tensor([2.0]))
    return agents.ImplicitPolicy(3, box, args), args


def test_collapsed_generator_is_detected_and_penalised(tmp_path):
    torch.manual_seed(0)
    policy, args = small_policy(tmp_path)
    first = policy.generator.net[0]
    with torch.no_grad():
        first.weight[:, : args.noise_dim] = 0.0  # the output ignores the noise
    critics = agents.Critics(3, 1)
    obs = torch.randn(16, 3)
    policy.update(obs, critics)
    assert policy.estimator is policy.elbo.estimator(policy.guide, obs, critics)
    assert agents.spread_collapsed(policy.spread(), args.collapse_threshold)
    assert policy.jacobian_clamping(obs).item() == pytest.approx(16.0, rel=1e-3)
    with torch.no_grad():
        first.weight[:, : args.noise_dim] = 1e-3 * torch.randn_like(first.weight[:, :10])
    eps, p = torch.randn(16, 10), torch.randn(16, 10)

    def slope():
        with torch.no_grad():
            diff = policy.generator(eps + 0.01 * p, obs) - policy.generator(eps, obs)
        return diff.pow(2).sum(-1).mean().item()

    before = slope()
    optimizer = torch.optim.Adam(policy.generator.parameters(), lr=1e-3)
    for _ in range(20):
        optimizer.zero_grad()
        policy.jacobian_clamping(obs).backward()
        optimizer.step()
    assert slope() > 100 * before  # the penalty's gradient spreads the draws
    healthy, _ = small_policy(tmp_path)
    assert healthy.jacobian_clamping(obs).item() < 16.0
    stats = healthy.estimator.set_stats(healthy._draw(obs, torch.randn(32, 16, 10)), obs)
    assert not agents.spread_collapsed(stats.scale.mean().item(), args.collapse_threshold)


@pytest.mark.parametrize("policy", cli.POLICIES)
def test_smoke_run_on_pendulum(policy, tmp_path):
    args = tiny_args(tmp_path, "--policy", policy, "--total-steps", "300", "--eval-every", "150")
    result = cli.main(args)
    assert all(math.isfinite(v) for v in result.values())
    with open(tmp_path / "r.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [150, 300]
    assert (tmp_path / "c.png").exists()


@pytest.mark.parametrize("policy", cli.POLICIES)
def test_autotuned_temperature_trains_and_is_logged(policy, tmp_path):
    args = tiny_args(
        tmp_path, "--policy", policy, "--total-steps", "150", "--eval-every", "150", "--autotune"
    )
    result = cli.main(args)
    assert math.isfinite(result["alpha"]) and result["alpha"] != pytest.approx(0.05, rel=1e-4)
    with open(tmp_path / "r.csv") as f:
        (row,) = list(csv.DictReader(f))
    assert float(row["alpha"]) == pytest.approx(result["alpha"])


def test_collapse_warning_is_logged(tmp_path, capsys):
    args = tiny_args(
        tmp_path, "--total-steps", "120", "--eval-every", "120", "--collapse-threshold", "1e9"
    )
    result = cli.main(args)
    assert result["collapse_warnings"] == 20
    assert "the policy is collapsing" in capsys.readouterr().out


def test_checkpoint_resumes(tmp_path):
    ckpt = tmp_path / "run.pt"
    common = ["--checkpoint", str(ckpt), "--checkpoint-every", "100", "--eval-every", "100"]
    common += ["--autotune"]
    cli.main(tiny_args(tmp_path, *common, "--total-steps", "200"))
    state = torch.load(ckpt, weights_only=False)
    assert state["step"] == 200 and len(state["buffer"]["obs"]) == 200
    assert state["temperature"]["log_alpha"] != pytest.approx(math.log(0.05), abs=1e-6)
    policy, _ = small_policy(tmp_path)
    policy.restore(state["policy"])
    for k, v in policy.generator.state_dict().items():
        assert torch.equal(v, state["policy"]["generator"][k])
    for k, v in policy.estimator.state_dict().items():
        if k.endswith("_extra_state"):  # the optimiser's state and the whitening map
            assert (
                v["optimizer"]["state"].keys()
                == state["policy"]["score_net"][k]["optimizer"]["state"].keys()
            )
        else:
            assert torch.equal(v, state["policy"]["score_net"][k])
    cli.main(tiny_args(tmp_path, *common, "--total-steps", "260", "--resume"))
    resumed = torch.load(ckpt, weights_only=False)
    assert resumed["step"] == 260 and len(resumed["buffer"]["obs"]) == 260
    assert [r["step"] for r in resumed["rows"]] == [100, 200, 260]
    changed = any(
        not torch.equal(v, state["policy"]["generator"][k])
        for k, v in resumed["policy"]["generator"].items()
    )
    assert changed  # it trained on from the loaded weights
    assert resumed["alpha_optimizer"]["state"][0]["step"] == 160  # 100 + 60 updates
    with pytest.raises(ValueError, match="holds the implicit policy on Pendulum-v1"):
        cli.main(tiny_args(tmp_path, *common, "--policy", "gaussian", "--resume"))


@pytest.mark.parametrize(
    "extra, match",
    [
        (["--env", "NoSuchEnv-v0"], "registered gymnasium environment"),
        (["--env", "CartPole-v1"], "Box action space"),
        (["--alpha", "0"], "--alpha > 0"),
        (["--gamma", "1.5"], "0 < --gamma <= 1"),
        (["--score-samples", "2"], "--score-samples >= 4"),
        (["--resume"], "--resume needs --checkpoint"),
        (["--target-entropy", "-1"], "--target-entropy together with --autotune"),
        (["--device", "gpu0"], "expected --device like 'cpu' or 'cuda:0', got 'gpu0'"),
    ],
)
def test_bad_input_is_refused_before_training(tmp_path, extra, match):
    with pytest.raises(ValueError, match=match):
        cli.main(tiny_args(tmp_path, "--total-steps", "10", *extra))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message without CUDA")
def test_cuda_device_without_cuda_is_refused(tmp_path):
    with pytest.raises(ValueError, match="--device cuda: CUDA is not available"):
        cli.main(tiny_args(tmp_path, "--device", "cuda"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("policy", cli.POLICIES)
def test_runs_on_cuda_and_resumes_on_the_cpu(policy, tmp_path):
    ckpt = tmp_path / "run.pt"
    common = ["--policy", policy, "--checkpoint", str(ckpt), "--eval-every", "100"]
    result = cli.main(tiny_args(tmp_path, *common, "--total-steps", "200", "--device", "cuda"))
    assert all(math.isfinite(v) for v in result.values())
    state = torch.load(ckpt, weights_only=False)
    weights = state["critics"]["q1.0.weight"]
    assert weights.is_cuda and state["cuda_rng"] is not None
    cli.main(tiny_args(tmp_path, *common, "--total-steps", "260", "--resume"))
    resumed = torch.load(ckpt, weights_only=False)
    assert resumed["step"] == 260 and not resumed["critics"]["q1.0.weight"].is_cuda


def test_elbo_estimator_accessor_returns_the_estimator_the_step_trains(tmp_path):
    policy, _ = small_policy(tmp_path)
    est = policy.estimator
    assert est.stats is None  # built untrained, before any step
    before = [p.clone() for p in est.parameters()]
    policy.update(torch.randn(16, 3), agents.Critics(3, 1))
    assert list(policy.elbo.estimators.values()) == [est] and est.stats is not None
    assert any(not torch.equal(b, p) for b, p in zip(before, est.parameters(), strict=True))
    with pytest.raises(ValueError, match="one implicit draw, got 0"):
        policy.elbo.estimator(lambda: None)

"""benchmarks/score_dims.py: its sampler's score is exact, and it runs end to end."""

import math

import torch

from benchmarks import score_dims


def test_sampler_score_is_the_gradient_of_its_log_density():
    # log q(u) = log N(e) - log T'(e) - log R for u = R T(e); in 1-D d/du = (d/de) / (R T'(e))
    gen = torch.Generator().manual_seed(0)
    rot = torch.tensor([[1.7]], dtype=torch.float64)
    u, noise = score_dims.sample(rot, 1.0, 50, gen)
    score = score_dims.exact_score(rot, 1.0, noise)
    e = torch.zeros_like(u, requires_grad=True)
    with torch.no_grad():  # invert u = 1.7 (e + tanh e) by Newton's method
        for _ in range(50):
            t = e + torch.tanh(e) - u / 1.7
            e -= t / (2 - torch.tanh(e).pow(2))
    log_q = -0.5 * e.pow(2) - torch.log(1 + torch.cosh(e).pow(-2))
    (grad_e,) = torch.autograd.grad(log_q.sum(), e)
    expected = grad_e / (1.7 * (1 + torch.cosh(e.detach()).pow(-2)))
    torch.testing.assert_close(score, expected, rtol=1e-8, atol=1e-10)


def test_runs_end_to_end():
    result = score_dims.main(score_dims.parse_args(["--dims", "2", "3", "--steps", "5"]))
    for d in (2, 3):
        assert math.isfinite(result[f"r2_d{d}"])
        assert 0.3 < result[f"departure_d{d}"] < 0.7  # k = 1: about 0.47 in every dimension

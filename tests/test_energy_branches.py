"""The U3 diagnostics of benchmarks/energy_branches.py against analytic values and exact draws."""

import math

import torch

from benchmarks import energy_branches as eb
from examples.energy_fitting import targets

TOTAL = 12 + math.sqrt(math.pi)  # U3's unnormalised z1 mass: 12 inside the wall, sqrt(pi) beyond


def exact(n: int = 5000) -> torch.Tensor:
    return targets.exact_samples("U3", n, torch.Generator().manual_seed(3))


def test_z1_masses_are_the_analytic_bin_masses():
    masses = eb.z1_masses()
    assert masses.shape == (len(eb.Z1_EDGES) + 1,)
    assert math.isclose(masses.sum().item(), 1.0, rel_tol=1e-6)
    inner = (eb.Z1_EDGES[:-1] >= -6) & (eb.Z1_EDGES[1:] <= 6)  # bins of 0.5 on the flat part
    assert torch.allclose(masses[1:-1][inner], torch.full((24,), 0.5 / TOTAL))
    beyond_4 = masses[:8].sum() + masses[-8:].sum()  # edges -7.5, -7, ..., -4 and 4, ..., 7.5
    assert math.isclose(beyond_4.item(), (4 + math.sqrt(math.pi)) / TOTAL, rel_tol=1e-5)


def test_z1_tv_is_at_its_floor_on_exact_draws_and_sees_a_shift():
    z1 = exact()[:, 0]
    # 32 bins of mass ~1/27 from 5000 draws: E[TV] ~ sum sqrt(p / (2 pi n)) ~ 0.03, sd ~ 0.004
    assert eb.z1_tv(z1) < 0.045
    # shifted by 2 the law is 2 / TOTAL = 0.145 away in TV; Monte Carlo moves it by ~ 0.03
    assert eb.z1_tv(z1 + 2.0) > 0.1


def test_branch_stats_of_exact_draws_are_the_targets():
    stats = eb.branch_stats(exact())
    # ~450 window draws: sd of the lower share ~ 0.024; ~3000 merged draws: sd of sd ~ 0.005
    assert abs(stats["lower_share"] - 0.5) < 0.1
    assert abs(stats["sd_merged"] - eb.SD) < 0.03
    assert abs(stats["outer_mass"] - (4 + math.sqrt(math.pi)) / TOTAL) < 0.03  # sd ~ 0.007
    assert stats["between"] < 0.02

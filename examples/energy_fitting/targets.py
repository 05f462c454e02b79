"""The 2-D energy targets U1-U4 (Rezende & Mohamed, 2015), their Pyro model and an exact
sampler."""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from torch import Tensor

WALL = 6.0


def _w1(z: Tensor) -> Tensor:
    return torch.sin(2 * torch.pi * z[..., 0] / 4)


def _w2(z: Tensor) -> Tensor:
    return 3 * torch.exp(-0.5 * ((z[..., 0] - 1) / 0.6) ** 2)


def _w3(z: Tensor) -> Tensor:
    return 3 * torch.sigmoid((z[..., 0] - 1) / 0.3)


def u1(z: Tensor) -> Tensor:
    r = z.norm(dim=-1)
    modes = torch.logaddexp(
        -0.5 * ((z[..., 0] - 2) / 0.6) ** 2, -0.5 * ((z[..., 0] + 2) / 0.6) ** 2
    )
    return 0.5 * ((r - 2) / 0.4) ** 2 - modes


def u2(z: Tensor) -> Tensor:
    return 0.5 * ((z[..., 1] - _w1(z)) / 0.4) ** 2


def u3(z: Tensor) -> Tensor:
    a = -0.5 * ((z[..., 1] - _w1(z)) / 0.35) ** 2
    b = -0.5 * ((z[..., 1] - _w1(z) + _w2(z)) / 0.35) ** 2
    return -torch.logaddexp(a, b)


def u4(z: Tensor) -> Tensor:
    a = -0.5 * ((z[..., 1] - _w1(z)) / 0.4) ** 2
    b = -0.5 * ((z[..., 1] - _w1(z) + _w3(z)) / 0.35) ** 2
    return -torch.logaddexp(a, b)


TARGETS = {"U1": u1, "U2": u2, "U3": u3, "U4": u4}


def wall(z: Tensor) -> Tensor:
    """sum_i relu(|z_i| - 6)^2: keeps the unnormalisable U2-U4 proper."""
    return torch.relu(z.abs() - WALL).pow(2).sum(-1)


def energy(target: str, z: Tensor) -> Tensor:
    if target not in TARGETS:
        raise ValueError(f"energy: expected a target in {sorted(TARGETS)}, got {target!r}")
    return TARGETS[target](z) + wall(z)


def model(target: str, beta: float = 1.0) -> None:
    """The target density exp(-beta * (U(z) + wall(z))) on R^2 as a Pyro model. The base
    measure is a wide Normal (every guide, the IAF too, can be initialised from it) whose
    density the factor cancels, so the model's density is exactly the target's. Its tensors
    are made on the default device (``--device``)."""
    base = dist.Normal(torch.zeros(2), 100.0).to_event(1)
    z = pyro.sample("z", base)
    pyro.factor("target", -beta * energy(target, z) - base.log_prob(z))


def exact_samples(
    target: str, n: int, generator: torch.Generator, grid: int = 1200, half_width: float = 8.0
) -> Tensor:
    """Exact draws up to a grid cell: pick cells of a fine grid on [-8, 8]^2 with their
    probability mass (density at the centre times the cell area), then a uniform point in the
    cell. The wall makes the mass beyond |z_i| = 8 negligible (< exp(-4) relative density).
    The draws are on the ``generator``'s device."""
    device = generator.device
    edges = torch.linspace(-half_width, half_width, grid + 1, dtype=torch.float64, device=device)
    width = edges[1] - edges[0]
    centres = (edges[:-1] + edges[1:]) / 2
    zz = torch.stack(torch.meshgrid(centres, centres, indexing="ij"), -1).reshape(-1, 2)
    logp = -energy(target, zz)
    cells = torch.multinomial(torch.softmax(logp, 0), n, replacement=True, generator=generator)
    jitter = torch.rand(n, 2, generator=generator, dtype=torch.float64, device=device) - 0.5
    jitter = jitter * width
    return (zz[cells] + jitter).float()


def reference(target: str, n: int) -> Tensor:
    """The fixed exact sample every fit of ``target`` is scored against, whichever targets a
    run fits."""
    seed = 1000 + list(TARGETS).index(target)
    return exact_samples(target, n, torch.Generator().manual_seed(seed))

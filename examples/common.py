"""Code the examples and benchmarks share: a ``--device`` check, an MLP builder and two ways
to average a sampler over the end of its training run."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor, nn


def check_device(prog: str, value: str) -> torch.device:
    """``value`` as a ``torch.device``, or a ``ValueError`` naming ``prog``'s ``--device`` flag
    when it is not one or names CUDA on a machine without it.

        >>> check_device("demo", "cpu")
        device(type='cpu')
        >>> check_device("demo", "gpu0")
        Traceback (most recent call last):
        ...
        ValueError: demo: expected --device like 'cpu' or 'cuda:0', got 'gpu0'
    """
    try:
        device = torch.device(value)
    except RuntimeError as e:
        raise ValueError(f"{prog}: expected --device like 'cpu' or 'cuda:0', got {value!r}") from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{prog}: --device {value}: CUDA is not available on this machine")
    return device


def mlp(
    sizes: Sequence[int],
    activation: type[nn.Module] = nn.ReLU,
    init: Callable[[nn.Linear], None] | None = None,
) -> nn.Sequential:
    """``Linear`` layers ``sizes[0] -> ... -> sizes[-1]`` with ``activation`` between them (none
    after the last); ``init`` is applied to each layer as it is made (PyTorch's default init
    if ``None``).

    Example:
        >>> mlp([3, 8, 1])
        Sequential(
          (0): Linear(in_features=3, out_features=8, bias=True)
          (1): ReLU()
          (2): Linear(in_features=8, out_features=1, bias=True)
        )
    """
    if len(sizes) < 2:
        raise ValueError(f"mlp: expected at least two sizes (in and out), got {list(sizes)}")
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        linear = nn.Linear(a, b)
        if init is not None:
            init(linear)
        layers += [linear, activation()]
    return nn.Sequential(*layers[:-1])


class ParameterEMA:
    r"""Exponential moving average of a module's parameters (Polyak-Ruppert averaging with
    exponential weights): after every step, :math:`\bar\theta \leftarrow d \bar\theta +
    (1 - d) \theta`, starting from the first iterate; a parameter that first appears later
    (a lazily built autoguide) starts then.

    A sampler trained by stochastic gradients keeps moving at the end of a run; averaging over
    the last ``1 / (1 - d)`` steps or so removes that wander and keeps the drift the steps
    have in common (Polyak and Juditsky, 1992).

    Example:
        >>> layer = nn.Linear(1, 1)
        >>> ema = ParameterEMA(layer, decay=0.5)
        >>> for w in (0.0, 1.0):
        ...     _ = layer.weight.data.fill_(w)
        ...     ema.update()
        >>> with ema.applied():
        ...     layer.weight.item()
        0.5
        >>> layer.weight.item()
        1.0
    """

    def __init__(self, module: nn.Module, decay: float) -> None:
        if not 0 < decay < 1:
            raise ValueError(f"ParameterEMA: expected 0 < decay < 1, got {decay}")
        self.module = module
        self.decay = decay
        self.average: dict[str, Tensor] = {}

    @torch.no_grad()
    def update(self) -> None:
        """Fold the module's current parameters into the average."""
        for name, value in self.module.named_parameters():
            if name in self.average:
                self.average[name].lerp_(value, 1 - self.decay)
            else:
                self.average[name] = value.detach().clone()

    @contextmanager
    def applied(self) -> Iterator[None]:
        """Within the block the module holds the averaged parameters; after it, its own."""
        params = dict(self.module.named_parameters())
        saved = {name: params[name].detach().clone() for name in self.average}
        with torch.no_grad():
            for name, value in self.average.items():
                params[name].copy_(value)
        try:
            yield
        finally:
            with torch.no_grad():
                for name, value in saved.items():
                    params[name].copy_(value)


class IterateMixture:
    r"""Draws from a uniform mixture of a sampler's iterates over the last ``window`` of
    ``steps`` training steps: at ``snapshots`` steps evenly spread over the window it takes
    ``num_samples // snapshots`` draws (the earliest also the remainder), and
    :meth:`draws` returns them all.

    The mixture :math:`\bar q = \frac1m \sum_t q_t` of the iterates is at least as good a
    variational distribution as the iterates on average: the cross-entropy term is linear in
    :math:`q` and the entropy concave, so :math:`\mathrm{ELBO}(\bar q) \ge \frac1m \sum_t
    \mathrm{ELBO}(q_t)`. An average of a generator's parameters has no such bound (the
    generator is not linear in them); where the iterates move mass between a target's
    branches, their mixture keeps each branch's mass at its average.

    The draws use random streams of their own (seeded by ``seed``: the CPU's, and the GPU's
    where it is the default device), so taking them leaves the training path, and the last
    iterate, as they would be without the mixture.

    Example:
        >>> counter = iter(range(10))
        >>> mix = IterateMixture(lambda n: torch.full((n, 1), float(next(counter))),
        ...                      steps=6, window=4, num_samples=5, snapshots=2)
        >>> for _ in range(6):
        ...     mix.update()
        >>> mix.draws().flatten().tolist()
        [0.0, 0.0, 0.0, 1.0, 1.0]
    """

    def __init__(
        self,
        sample: Callable[[int], Tensor],
        steps: int,
        window: int,
        num_samples: int,
        snapshots: int = 10,
        seed: int = 0,
    ) -> None:
        if not 1 <= snapshots <= window <= steps:
            raise ValueError(
                f"IterateMixture: expected 1 <= snapshots <= window <= steps, got snapshots="
                f"{snapshots}, window={window}, steps={steps}"
            )
        if num_samples < snapshots:
            raise ValueError(
                f"IterateMixture: expected num_samples >= snapshots ({snapshots}), got "
                f"{num_samples}"
            )
        self.sample = sample
        # after step s (counted from 1) for s in the window's last step and evenly before it
        last = [steps - (i * window) // snapshots for i in range(snapshots)]
        share = [num_samples // snapshots] * snapshots
        share[-1] += num_samples - sum(share)  # the earliest snapshot takes the remainder
        self.schedule = dict(zip(last, share, strict=True))
        self.step = 0
        self.pool: list[Tensor] = []
        self.seed = seed
        device = torch.get_default_device()
        self.devices = [device] if device.type == "cuda" else []
        self.rng_states: tuple[Tensor, list[Tensor]] | None = None

    @torch.no_grad()
    def update(self) -> None:
        """Count a step; at a snapshot, draw from the sampler as it is now."""
        self.step += 1
        if self.step in self.schedule:
            with torch.random.fork_rng(devices=self.devices):  # training's streams untouched
                if self.rng_states is None:
                    torch.default_generator.manual_seed(self.seed)
                    for device in self.devices:
                        with torch.cuda.device(device):
                            torch.cuda.manual_seed(self.seed)
                else:
                    torch.set_rng_state(self.rng_states[0])
                    for device, state in zip(self.devices, self.rng_states[1], strict=True):
                        torch.cuda.set_rng_state(state, device)
                self.pool.append(self.sample(self.schedule[self.step]))
                cuda = [torch.cuda.get_rng_state(device) for device in self.devices]
                self.rng_states = torch.get_rng_state(), cuda

    def draws(self) -> Tensor:
        """The pooled draws, earliest snapshot first."""
        if len(self.pool) != len(self.schedule):
            raise RuntimeError(
                f"IterateMixture: {len(self.pool)} of {len(self.schedule)} snapshots taken "
                f"after {self.step} steps"
            )
        return torch.cat(self.pool)

"""Fit the 2-D energy targets U1-U4 (Rezende & Mohamed, 2015) with implicit samplers.

The paper's Fig. 4 as Pyro models: the target is a model, ``z ~ ImproperUniform(R^2)`` with
``pyro.factor("target", -beta * (U(z) + wall(z)))``, where ``wall(z) = sum_i relu(|z_i| - 6)^2``
and the inverse temperature ``beta`` is a model argument, annealed from 0.01 to 1 over the first
part of training (the cross-entropy term is annealed, the entropy term is not). Samplers:

* ``implicit``: ``AutoImplicitGuide`` (noise in R^10, MLP generator), trained with ARDAE_ELBO;
* ``hierarchical``: ``ImplicitGuide`` whose net draws ``x ~ N(mu(e), sigma(e)^2)`` from noise
  ``e ~ N(0, I_2)``: the AR-DAE learns the score of the marginal of ``x``;
* ``iaf``: ``AutoIAFNormal``, a normalising flow, trained with Trace_ELBO (the baseline).

The implicit samplers take two AR-DAE steps per generator step (``--score-steps``), as the
paper did for this experiment, and their score networks see 64 random Fourier features of
their input (``--fourier-features``): the targets are thin curved bands whose score a plain
MLP learns too slowly, so the sampler thinned across them (U2, seed 0, 256 particles,
implicit sampler: energy distance 0.10 without, 0.02 with; hierarchical: 0.12 without, 0.002
with). Every sampler, the flow too, takes 512 draws per step (``--particles``): at 256 the
implicit generator's U1 and U3 fits varied 4-20x from seed to seed. Against the flow over three
seeds the implicit generator's last iterate is closer on U4 only (``benchmarks/energy.py``,
docs/benchmarks.md).
The AR-DAE whitens each step's draws with maps from cross-fitted halves of the 512 it trains
on. Those maps jitter by about the bands' width, so the score network learns a blurred, too
weak score across them (U2, seed 1: 55% of the draws' precision across the band reported).
Maps from more fresh draws lower the jitter: from 2048 (``--whitening-samples 2048``) they took
U2 from 0.039 to 0.009 over three seeds but made U1, U3 and U4 worse (docs/benchmarks.md); off
by default.

``--ema D`` draws each sampler from an exponential moving average of its parameters
(``ParameterEMA``, decay ``D`` per step) and also scores its last iterate. The samplers keep
wandering at the end of a run: the implicit generator's U1 fit (seed 1) scored 0.007, 0.027
and 0.014 at steps 6000, 8000 and 10,000. Averaging with D = 0.995 (about the last 200
steps), over three seeds: the implicit generator's U1 went from 0.0157 to 0.0024 (the flow:
0.0038 at its last iterate, 0.0040 averaged), its U3 stayed at 0.0060 (flow 0.0032) and
its U4 went from 0.0050 to 0.0072 (flow 0.0060 averaged); the energy benchmark counts wins
against the better of the flow's two (docs/benchmarks.md). Off by default: it helps U1 and
costs U4. ``--pool K`` averages draws instead of parameters: the scored draws come from 10
iterates evenly spread over the last ``K`` steps, a uniform mixture of them
(``IterateMixture``), and the last iterate is scored too. With K = 500, over three seeds,
the implicit generator's U1 went from 0.0157 to 0.0029 and its U4 from 0.0050 to 0.0062,
both closer than the flow (0.0038, 0.0076 at its better of the two), and its U3 stayed at
0.0058 (flow 0.0032). ``--lr-decay`` sets how far the learning rate falls over a run (10x by
default; the paper's halving every 5000 of 50,000 steps is 2**-10, which settled U1 and
cost U3 and U4 here). ``--sharp-maps N`` switches the AR-DAE to whitening maps from ``N``
fresh draws once beta reaches 1: sharp maps throughout lost branches, jittered ones draw the
bands too thin, and this keeps the jitter while the branches form. It did not help: U3 over
three seeds 0.0162 pooled against 0.0058 without (docs/benchmarks.md); off by default.
``--score-parameterization gradient`` makes the score networks the gradient of a learned
energy, a curl-free field (a vector-valued network can push draws along a thin band with no
density behind the push; with it U3's mass was lumpy along its bands). With it and ``--pool
500``, over three seeds, the implicit generator is closer than the flow on U1, U3 and U4
(0.0004, 0.0030, 0.0031 against 0.0038, 0.0032, 0.0076; ``benchmarks/energy.py``). The
hierarchical sampler gains on U3 and loses on U1 and U4 with it, so the default stays
``vector``.

Each fit is scored by the energy distance between its draws and exact draws of the target
(fine-grid inverse-CDF sampling); a figure shows the density and the draws of each method.
``--device cuda`` trains the samplers on a GPU (the draws are scored on the CPU); it does not
speed them up: with networks this small, Pyro's per-step Python most likely sets the step
(47 ms per implicit step on an H200 against 51 ms on its CPU, docs/benchmarks.md).

    python examples/energy_fitting.py --targets U1,U2,U3,U4 --steps 5000
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import ELBO, SVI, Trace_ELBO
from pyro.infer.autoguide import AutoIAFNormal
from pyro.infer.autoguide.initialization import init_to_feasible
from torch import Tensor, nn
from tqdm import tqdm

from pyro_ardae import ARDAE_ELBO, AutoImplicitGuide, ImplicitGuide, ScoreConfig, energy_distance
from pyro_ardae.score import PARAMETERIZATIONS, Parameterization

WALL = 6.0
SNAPSHOTS = 10  # iterates an IterateMixture draws from
SCORE_SAMPLES = 512  # draws per AR-DAE step, the library's default


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
METHODS = ("implicit", "hierarchical", "iaf")


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


class Hierarchical(nn.Module):
    """x = mu(e) + sigma(e) * eps with e ~ N(0, I_2), eps ~ N(0, I_2): an implicit marginal."""

    def __init__(self, latent: int = 2, hidden: int = 256) -> None:
        super().__init__()
        self.latent = latent
        self.net = nn.Sequential(
            nn.Linear(latent, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 4),
        )

    def forward(self, noise: Tensor) -> Tensor:
        e, eps = noise[..., : self.latent], noise[..., self.latent :]
        mu, log_sigma = self.net(e).split(2, -1)
        return mu + log_sigma.clamp(-6, 2).exp() * eps


def make(
    method: str,
    particles: int,
    score_steps: int = 2,
    fourier_features: int = 64,
    whitening_samples: int | None = None,
    score_delta: float = 0.1,
    fourier_scale: float = 3.0,
    score_parameterization: Parameterization = "vector",
):
    """(guide, loss) of a sampler; the implicit ones take ``score_steps`` AR-DAE steps per
    generator step (2, as the paper did here) with ``fourier_features`` random Fourier
    features of frequency sd ``fourier_scale`` in their score networks (``"vector"`` output
    or the ``"gradient"`` of a learned energy), trained at noise scale ``score_delta``,
    whitened with per-step maps from ``whitening_samples`` fresh draws."""
    vec = {"num_particles": particles, "vectorize_particles": particles > 1}
    ardae = ARDAE_ELBO(
        **vec,
        score_steps=score_steps,
        score_samples=SCORE_SAMPLES,
        whitening_samples=whitening_samples,
    )
    score = ScoreConfig(
        parameterization=score_parameterization,
        delta=score_delta,
        fourier_features=fourier_features,
        fourier_scale=fourier_scale,
    )
    if method == "implicit":
        guide = AutoImplicitGuide(
            model,
            noise_dim=10,
            hidden=(256, 256, 256),
            init_loc_fn=init_to_feasible,
            init_scale=1.0,
            score=score,
        )
        return guide, ardae
    if method == "hierarchical":
        return ImplicitGuide(Hierarchical(), noise_dim=4, sites="z", score=score), ardae
    if method == "iaf":
        guide = AutoIAFNormal(model, hidden_dim=[256, 256], num_transforms=4)
        return guide, Trace_ELBO(**vec)
    raise ValueError(f"expected a method in {METHODS}, got {method!r}")


class ParameterEMA:
    r"""Exponential moving average of a module's parameters (Polyak-Ruppert averaging with
    exponential weights): after every step, :math:`\bar\theta \leftarrow d \bar\theta +
    (1 - d) \theta`, starting from the first iterate; a parameter that first appears later
    (a lazily built autoguide) starts then.

    A sampler trained by stochastic gradients keeps moving at the end of a run: the implicit
    generator's U1 fit moves between energy distances of 0.005 and 0.027 from one 1000-step
    checkpoint to the next (seed 1). Averaging over the last ``1 / (1 - d)`` steps or so
    removes that wander and keeps the drift the steps have in common.

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
        snapshots: int = SNAPSHOTS,
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


def sample(guide: nn.Module, target: str, n: int) -> Tensor:
    """``n`` draws of ``z`` from a guide of the ``target`` model, shape ``(n, 2)``."""
    with torch.no_grad(), pyro.plate("draws", n, dim=-1):
        return guide(target)["z"].reshape(-1, 2)


def reference(target: str, n: int) -> Tensor:
    """The fixed exact sample every fit of ``target`` is scored against, whichever targets a
    run fits."""
    seed = 1000 + list(TARGETS).index(target)
    return exact_samples(target, n, torch.Generator().manual_seed(seed))


def train(
    target: str, method: str, args: argparse.Namespace
) -> tuple[nn.Module, ELBO, ParameterEMA | IterateMixture | None, float]:
    """(guide, loss, the guide's parameter average (``--ema``) or iterate mixture
    (``--pool``) or None, seconds): one sampler trained on ``target`` with ``args``'
    settings."""
    pyro.clear_param_store()
    pyro.set_rng_seed(args.seed)
    guide, loss = make(
        method,
        args.particles,
        args.score_steps,
        args.fourier_features,
        args.whitening_samples,
        args.score_delta,
        args.fourier_scale,
        args.score_parameterization,
    )
    # Adam with the paper's betas, the learning rate decaying geometrically by lr_decay in all
    optim = pyro.optim.ClippedAdam(
        {"lr": args.lr, "betas": (0.5, 0.999), "lrd": args.lr_decay ** (1 / args.steps)}
    )
    svi = SVI(model, guide, optim, loss)
    average: ParameterEMA | IterateMixture | None = None
    if args.ema:
        average = ParameterEMA(guide, args.ema)
    elif args.pool:
        average = IterateMixture(
            lambda n: sample(guide, target, n),
            args.steps,
            args.pool,
            args.num_samples,
            seed=args.seed,
        )
    anneal = max(1, int(args.anneal * args.steps))
    start = time.perf_counter()
    bar = tqdm(range(args.steps), desc=f"{target} {method}", disable=not args.progress)
    for step in bar:
        beta = min(1.0, 0.01 + 0.99 * step / anneal)
        value = svi.step(target, beta)
        if step + 1 == anneal and args.sharp_maps and isinstance(loss, ARDAE_ELBO):
            loss.whitening_samples = args.sharp_maps  # beta is 1 from here on
        if average is not None:
            average.update()
        if step % 100 == 0:
            bar.set_postfix(value=f"{value:.3f}", beta=f"{beta:.2f}")
    return guide, loss, average, time.perf_counter() - start


def fit(target: str, method: str, args: argparse.Namespace) -> dict[str, Tensor | float]:
    """A sampler trained on ``args.device``: its ``args.num_samples`` draws on the CPU
    (``"draws"``; from the averaged parameters with ``--ema`` or the iterate mixture with
    ``--pool``, and then also ``"last"``, from the last iterate) and its training time
    (``"seconds"``)."""
    with torch.device(args.device):
        guide, _, average, seconds = train(target, method, args)
        last = sample(guide, target, args.num_samples)
        draws = {"draws": last}
        if isinstance(average, IterateMixture):
            draws = {"draws": average.draws(), "last": last}
        elif average is not None:
            with average.applied():
                draws = {"draws": sample(guide, target, args.num_samples), "last": last}
    return {**{k: v.cpu() for k, v in draws.items()}, "seconds": seconds}


def figure(path: Path, results: dict, exact: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = list(exact)
    methods = sorted({m for t in results for m in results[t]})
    fig, axes = plt.subplots(
        len(targets),
        1 + len(methods),
        figsize=(3 * (1 + len(methods)), 3 * len(targets)),
        squeeze=False,
    )
    grid = torch.linspace(-4, 4, 300)
    zz = torch.stack(torch.meshgrid(grid, grid, indexing="xy"), -1)
    for i, target in enumerate(targets):
        axes[i, 0].imshow(torch.exp(-energy(target, zz)), extent=(-4, 4, -4, 4), origin="lower")
        axes[i, 0].set_title(f"{target}: exp(-U)")
        for j, m in enumerate(methods, start=1):
            z = results[target][m]["draws"][:3000]
            axes[i, j].scatter(z[:, 0], z[:, 1], s=1, alpha=0.3)
            axes[i, j].set_xlim(-4, 4)
            axes[i, j].set_ylim(-4, 4)
            axes[i, j].set_title(f"{m}: {results[target][m]['edist']:.3f}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)


def main(args: argparse.Namespace) -> dict[str, float]:
    torch.set_num_threads(args.threads)
    targets = args.targets.split(",")
    methods = args.methods.split(",")
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise ValueError(f"--targets: expected names in {list(TARGETS)}, got {unknown}")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"--methods: expected names in {list(METHODS)}, got {unknown}")
    if not 0 <= args.ema < 1:
        raise ValueError(f"--ema: expected a decay in [0, 1), got {args.ema}")
    for name in ("score_delta", "fourier_scale"):
        if not getattr(args, name) > 0:
            flag = "--" + name.replace("_", "-")
            raise ValueError(f"{flag}: expected a positive number, got {getattr(args, name)}")
    if args.sharp_maps and args.sharp_maps < SCORE_SAMPLES:
        raise ValueError(
            f"--sharp-maps: expected 0 or at least the {SCORE_SAMPLES} draws the AR-DAE trains "
            f"on, got {args.sharp_maps}"
        )
    if not 0 < args.lr_decay <= 1:
        raise ValueError(f"--lr-decay: expected a factor in (0, 1], got {args.lr_decay}")
    if args.pool and not SNAPSHOTS <= args.pool <= args.steps:
        raise ValueError(
            f"--pool: expected 0 or {SNAPSHOTS} to --steps ({args.steps}) steps, got {args.pool}"
        )
    if args.pool and args.ema:
        raise ValueError(f"expected one of --ema and --pool, got both ({args.ema}, {args.pool})")
    try:
        device = torch.device(args.device)
    except RuntimeError as e:
        raise ValueError(f"--device: expected e.g. 'cpu' or 'cuda:0', got {args.device!r}") from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {args.device}: CUDA is not available on this machine")
    results: dict[str, dict] = {}
    exact: dict[str, Tensor] = {}
    out: dict[str, float] = {}
    for target in targets:
        exact[target] = reference(target, args.num_samples)
        results[target] = {}
        for method in methods:
            fitted = fit(target, method, args)
            edist = energy_distance(fitted["draws"], exact[target])
            results[target][method] = {"draws": fitted["draws"], "edist": edist}
            out[f"{target}_{method}_edist"] = edist
            line = f"{target} {method:>12s}: energy distance {edist:.4f}"
            if "last" in fitted:
                last = energy_distance(fitted["last"], exact[target])
                out[f"{target}_{method}_edist_last"] = last
                line += f" (last iterate {last:.4f})"
            out[f"{target}_{method}_seconds"] = fitted["seconds"]
            print(f"{line} ({fitted['seconds']:.0f} s)")
    if args.out:
        figure(Path(args.out), results, exact)
        print(f"saved {args.out}")
    return out


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--targets", default="U1,U2,U3,U4", help="comma-separated U1..U4")
    p.add_argument("--methods", default="implicit,hierarchical,iaf", help="samplers to fit")
    p.add_argument("--steps", type=int, default=5000, help="SVI steps per fit")
    p.add_argument("--anneal", type=float, default=0.4, help="fraction of steps annealing beta")
    p.add_argument("--particles", type=int, default=512, help="draws of q per step (batch)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument(
        "--lr-decay",
        type=float,
        default=0.1,
        help="factor the learning rate falls by over the run, geometrically (the paper: 2**-10)",
    )
    p.add_argument("--score-steps", type=int, default=2, help="AR-DAE steps per generator step")
    p.add_argument(
        "--fourier-features", type=int, default=64, help="of the score networks (0 for none)"
    )
    p.add_argument(
        "--fourier-scale", type=float, default=3.0, help="sd of their frequencies, whitened units"
    )
    p.add_argument("--score-delta", type=float, default=0.1, help="AR-DAE's noise scale")
    p.add_argument(
        "--score-parameterization",
        choices=PARAMETERIZATIONS,
        default="vector",
        help="the score networks' output: a vector, or the gradient of a learned energy",
    )
    p.add_argument(
        "--whitening-samples",
        type=int,
        default=None,
        help="AR-DAE's fresh draws per step for its whitening maps (default: the 512 it trains on)",
    )
    p.add_argument(
        "--sharp-maps",
        type=int,
        default=0,
        help="once beta reaches 1, AR-DAE whitening maps from this many fresh draws (0: as before)",
    )
    p.add_argument(
        "--ema",
        type=float,
        default=0.0,
        help="decay of a moving average of each sampler's parameters to draw from (0: none)",
    )
    p.add_argument(
        "--pool",
        type=int,
        default=0,
        help="draw from a mixture of the iterates over the last POOL steps (0: the last one)",
    )
    p.add_argument("--num-samples", type=int, default=5000, help="draws scored per method")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--device", default="cpu", help="torch device the samplers train on")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--out", default="outputs/energy_fitting.png", help="figure ('' for none)")
    return p


if __name__ == "__main__":
    main(parser().parse_args())

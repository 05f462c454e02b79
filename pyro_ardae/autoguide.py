"""AutoImplicitGuide: an implicit guide built from the model, like Pyro's autoguides."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import NoReturn

import torch
from pyro import poutine
from pyro.infer.autoguide import AutoContinuous
from pyro.infer.autoguide.initialization import init_to_median
from pyro.poutine.util import prune_subsample_sites
from torch import Tensor, nn
from torch.distributions import biject_to

from ._common import (
    ScoreConfig,
    check_autoguide_args,
    check_global_latent,
    noise_dim_for,
    score_config,
)
from .guide import Draw, emit_site, plate_batch_shape, stored_module
from .score import mlp


class Generator(nn.Module):
    r"""The sampler :math:`u = \mu + \sigma \odot (W \epsilon + h(\epsilon) / m)`,
    :math:`\epsilon \sim N(0, I)`, :math:`\sigma = e^{\rho}`.

    The linear path represents any Gaussian exactly; the MLP :math:`h` (last layer at zero,
    last hidden width :math:`m`) adds the non-Gaussian part. At initialisation
    :math:`W = [I, 0]` and :math:`q = N(\mu_0, s_0^2 I)`.

    The parameterisation is chosen for Adam, which moves every parameter by about its
    learning rate :math:`\eta` per step whatever the gradient's size. The spread lives in the
    log-scale :math:`\rho`, so a step changes it by a relative :math:`\eta` (as AutoNormal's
    scale), and :math:`W, h` work at unit scale, so their steps change the shape by a relative
    :math:`O(\eta)` too; dividing :math:`h` by :math:`m` keeps its output's step at
    :math:`O(\eta)` rather than :math:`O(m \eta)` (the last layer's gradient is an outer
    product, so Adam's steps on its :math:`m` weights add up coherently). See
    ``docs/robustness.md``.
    """

    def __init__(
        self,
        noise_dim: int,
        init_loc: Tensor,
        init_scale: float,
        hidden: Sequence[int],
        activation: type[nn.Module] = nn.ELU,
    ) -> None:
        super().__init__()
        dim = init_loc.shape[-1]
        self.noise_dim = noise_dim
        self.loc = nn.Parameter(init_loc.clone())
        self.log_scale = nn.Parameter(torch.full_like(init_loc, math.log(init_scale)))
        self.linear = nn.Linear(noise_dim, dim, bias=False)
        with torch.no_grad():
            self.linear.weight.zero_()
            self.linear.weight[:, :dim].copy_(torch.eye(dim))
        self.h = mlp(noise_dim, hidden, dim, activation)
        self.width = hidden[-1] if hidden else 1
        self.to(init_loc)  # the model's device and dtype (CUDA when its tensors are)

    def forward(self, noise: Tensor) -> Tensor:
        shape = self.linear(noise) + self.h(noise) / self.width
        return self.loc + self.log_scale.exp() * shape


class AutoImplicitGuide(AutoContinuous):
    r"""An implicit guide over all latent sites of ``model``, found as the autoguides do.

    The latents are generated jointly in unconstrained space by a :class:`Generator`
    :math:`u = g(\epsilon)`, split per site and mapped to each support by ``biject_to``,
    :math:`z = T(u)`; the :class:`~pyro_ardae.ARDAE_ELBO` adds
    :math:`\log|\det J_T(u)|` to the AR-DAE entropy of :math:`u`, so the entropy it
    maximises is that of the constrained :math:`q(z)`.

    Global latents only (plates with full data are fine): a latent in a subsampled plate
    needs an amortised :class:`~pyro_ardae.ImplicitGuide`. Continuous latents only.

    Args:
        model: a Pyro model.
        noise_dim: dimension of :math:`\epsilon`, at least the latent dimension (else
            :math:`q` has no density); default ``max(10, latent_dim)``.
        hidden: hidden widths of the generator's MLP.
        init_loc_fn: per-site initialisation of :math:`\mu`, as in Pyro's autoguides.
        init_scale: initial sd of each unconstrained coordinate.
        activation: the MLP's activation.
        score: the guide's score network (:class:`~pyro_ardae.ScoreConfig`), trained by
            :class:`~pyro_ardae.ARDAE_ELBO`.

    Example:
        >>> import pyro, pyro.distributions as dist
        >>> def model():
        ...     pyro.sample("s", dist.LogNormal(0.0, 1.0))
        >>> pyro.clear_param_store()
        >>> guide = AutoImplicitGuide(model, hidden=(16,))
        >>> bool(guide()["s"] > 0)
        True
    """

    def __init__(
        self,
        model: Callable,
        *,
        noise_dim: int | None = None,
        hidden: Sequence[int] = (128, 128),
        init_loc_fn: Callable = init_to_median,
        init_scale: float = 0.1,
        activation: type[nn.Module] = nn.ELU,
        score: ScoreConfig = ScoreConfig(),
    ) -> None:
        check_autoguide_args(noise_dim, init_scale)
        super().__init__(model, init_loc_fn=init_loc_fn)
        self._noise_dim = noise_dim
        self._hidden = tuple(hidden)
        self._init_scale = init_scale
        self._activation = activation
        self.score = score_config("AutoImplicitGuide", score)

    def _check_sites(self, *args, **kwargs) -> None:
        trace = poutine.block(poutine.trace(self.model).get_trace)(*args, **kwargs)
        trace = prune_subsample_sites(trace)
        for name, site in trace.iter_stochastic_nodes():
            check_global_latent(
                name,
                type(site["fn"]).__name__,
                site["fn"].support.is_discrete,
                [(f.name, f.size, f.full_size or f.size) for f in site["cond_indep_stack"]],
                "pyro_ardae",
                "pyro.distributions.MixtureSameFamily",
            )

    def _setup_prototype(self, *args, **kwargs) -> None:
        self._check_sites(*args, **kwargs)
        super()._setup_prototype(*args, **kwargs)  # refuses a model with no latent
        noise_dim = noise_dim_for(self._noise_dim, self.latent_dim)
        self.generator = Generator(
            noise_dim, self._init_loc(), self._init_scale, self._hidden, self._activation
        )

    def sample_latent(self, *args, **kwargs) -> Tensor:
        """Draw the flat unconstrained latent, batched over the enclosing plates."""
        generator = stored_module(self, "generator")
        loc = generator.loc
        noise = torch.randn(
            plate_batch_shape() + (generator.noise_dim,), dtype=loc.dtype, device=loc.device
        )
        return generator(noise)

    def forward(self, *args, **kwargs) -> dict[str, Tensor]:
        """Draw the latents; returns a dict from site name to (constrained) value."""
        if self.prototype_trace is None:
            self._setup_prototype(*args, **kwargs)
        latent = self.sample_latent(*args, **kwargs)
        plates = self._create_plates(*args, **kwargs)
        draw = Draw(self._pyro_name, latent, None, self.score)
        result = {}
        for site, unconstrained in self._unpack_latent(latent):
            name = site["name"]
            with ExitStack() as stack:
                for frame in self._cond_indep_stacks[name]:
                    stack.enter_context(plates[frame.name])
                result[name] = emit_site(
                    name, unconstrained, site["fn"].support, draw, site["fn"].event_dim
                )
        return result

    def _no_density(self, method: str) -> NoReturn:
        raise NotImplementedError(
            f"AutoImplicitGuide.{method}: an implicit guide has a sampler, not a density, "
            "base distribution or transform. Draw from it with guide(*args) or "
            "pyro.infer.Predictive, summarise it with median() or quantiles(), and query "
            "its learned score with ARDAE_ELBO.estimator(guide, *args)"
        )

    def get_posterior(self, *args, **kwargs) -> NoReturn:
        """Not available: an implicit guide has no density (see :meth:`quantiles`)."""
        self._no_density("get_posterior")

    def get_base_dist(self) -> NoReturn:
        """Not available: an implicit guide has no base distribution."""
        self._no_density("get_base_dist")

    def get_transform(self, *args, **kwargs) -> NoReturn:
        """Not available: an implicit guide has no transform of a base distribution."""
        self._no_density("get_transform")

    @torch.no_grad()
    def quantiles(self, quantiles, *args, num_samples: int = 2000, **kwargs) -> dict[str, Tensor]:
        """Monte Carlo quantiles of each unconstrained coordinate, mapped to the support
        (exact for coordinate-wise supports such as real, positive or intervals).

        The ``num_samples`` draws come from a fixed noise stream (seed 0, the global RNG is
        not touched): for a given state the result repeats, and :meth:`median` is
        ``quantiles([0.5])``."""
        if self.prototype_trace is None:
            self._setup_prototype(*args, **kwargs)
        generator = stored_module(self, "generator")
        loc = generator.loc
        stream = torch.Generator(loc.device).manual_seed(0)
        noise = torch.randn(
            num_samples, generator.noise_dim, generator=stream, device=loc.device
        ).to(loc.dtype)
        latent = generator(noise)
        q = torch.as_tensor(quantiles, dtype=loc.dtype, device=loc.device)
        result: dict[str, list[Tensor]] = {}
        for row in torch.quantile(latent, q, dim=0):
            for site, unconstrained in self._unpack_latent(row):
                value = biject_to(site["fn"].support)(unconstrained)
                result.setdefault(site["name"], []).append(value)
        return {k: torch.stack(v) for k, v in result.items()}

    @torch.no_grad()
    def median(self, *args, num_samples: int = 2000, **kwargs) -> dict[str, Tensor]:
        """Monte Carlo coordinate-wise posterior median of each latent site."""
        q = self.quantiles([0.5], *args, num_samples=num_samples, **kwargs)
        return {k: v[0] for k, v in q.items()}

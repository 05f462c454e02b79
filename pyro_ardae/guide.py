"""Guides whose latents come from a generator network and have no density."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass

import pyro
import torch
from pyro.distributions import TorchDistribution, constraints
from pyro.distributions.util import sum_rightmost
from pyro.nn import PyroModule
from pyro.params import param_with_module_name
from pyro.poutine.runtime import get_plates
from torch import Tensor, nn
from torch.distributions import biject_to

from ._common import ScoreConfig, check_prefix, guide_sites, score_config

NO_DENSITY = (
    "{name!r} comes from an implicit guide and has no density, so log q cannot be "
    "evaluated. Train it with pyro_ardae.ARDAE_ELBO (the entropy gradient comes from an "
    "AR-DAE score estimate), not with an ELBO that needs log q such as Trace_ELBO."
)


@dataclass(eq=False)
class Draw:
    r"""One joint draw of an implicit guide, as the ELBO needs it.

    Attributes:
        guide: name of the guide that made it (one score network per guide).
        unconstrained: the flat unconstrained latent, ``batch_shape + (d,)``, with the
            graph to the generator's parameters.
        context: the score network's context, ``batch_shape + (k,)``, or ``None``.
        spec: the guide's score network.
        loc: for an amortised guide, the generator's zero-noise output
            :math:`z_0(c) = \mathrm{net}(0, c)` (detached, flat and unconstrained, shaped
            like ``unconstrained``): the centre of the score network's per-context
            whitening, as in the paper; ``None`` for a global guide.
    """

    guide: str
    unconstrained: Tensor
    context: Tensor | None
    spec: ScoreConfig
    loc: Tensor | None = None


class ImplicitDistribution(TorchDistribution):
    """The law of one site of an implicit guide: it holds the sampled value, the
    log-determinant of the map to the site's support, and the joint :class:`Draw` it is part
    of. It can be sampled (the value) but has no ``log_prob``: asking for one raises a
    ``NotImplementedError`` that says to use :class:`~pyro_ardae.ARDAE_ELBO`.
    """

    arg_constraints: dict = {}
    has_rsample = True

    def __init__(
        self,
        name: str,
        value: Tensor,
        log_abs_det_jacobian: Tensor,
        draw: Draw,
        event_dim: int,
        support: constraints.Constraint = constraints.real,
    ) -> None:
        self.name = name
        self.value = value
        self.log_abs_det_jacobian = log_abs_det_jacobian
        self.draw = draw
        self._support = support
        batch_shape = value.shape[: value.dim() - event_dim]
        super().__init__(batch_shape, value.shape[value.dim() - event_dim :], validate_args=False)

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self) -> constraints.Constraint:
        extra = len(self.event_shape) - self._support.event_dim
        return constraints.independent(self._support, extra) if extra > 0 else self._support

    def expand(self, batch_shape, _instance=None) -> ImplicitDistribution:
        shape = torch.Size(batch_shape)
        return ImplicitDistribution(
            self.name,
            self.value.expand(shape + self.event_shape),
            self.log_abs_det_jacobian.expand(shape),
            self.draw,
            len(self.event_shape),
            self._support,
        )

    def rsample(self, sample_shape: torch.Size = ()) -> Tensor:
        if sample_shape:
            raise NotImplementedError(
                f"{self.name!r}: an implicit guide site holds one draw; call the guide again "
                "(e.g. under a pyro.plate) for more"
            )
        return self.value

    def log_prob(self, value: Tensor) -> Tensor:
        raise NotImplementedError(NO_DENSITY.format(name=self.name))


def stored_module(owner: PyroModule, name: str) -> nn.Module | Callable:
    """``owner.<name>``, each parameter registered in Pyro's param store and replaced by the
    store's tensor where the store already holds one under its name.

    ``pyro.module`` keeps a plain ``nn.Module``'s own tensors when the store holds others
    (a loaded store, or an earlier guide of the same name), so SVI would step the stored
    tensors while the module samples with its own. Swapping the stored tensors in at every
    call makes the store the one source of truth, as it is for ``PyroParam`` s (AutoNormal);
    frozen parameters (``requires_grad_(False)``) are registered the same way, without
    ``pyro.module``'s warning.
    """
    module = owner._modules.get(name) if name in owner._modules else getattr(owner, name)
    if not isinstance(module, nn.Module) or isinstance(module, PyroModule):
        return module
    with owner._pyro_context:  # names are known inside the module's context
        fullname = owner._pyro_get_fullname(name)
    for key, param in list(module.named_parameters()):
        stored = pyro.param(param_with_module_name(fullname, key), param)
        if stored is param:
            continue
        if stored.shape != param.shape:
            raise ValueError(
                f"{type(owner).__name__}: Pyro's param store holds "
                f"{param_with_module_name(fullname, key)!r} of shape {tuple(stored.shape)}, "
                f"this guide's is {tuple(param.shape)}: the store is another guide's. Call "
                "pyro.clear_param_store() first, or give this guide its own name (prefix=...)"
            )
        path, _, leaf = key.rpartition(".")
        module.get_submodule(path)._parameters[leaf] = stored
    return module


def plate_batch_shape() -> torch.Size:
    """The batch shape of the pyro.plates active at the call (e.g. vectorised particles)."""
    frames = [f for f in get_plates() if f.vectorized and f.dim is not None]
    if not frames:
        return torch.Size()
    shape = [1] * -min(f.dim for f in frames)
    for f in frames:
        shape[f.dim] = f.size
    return torch.Size(shape)


def emit_site(
    name: str,
    unconstrained: Tensor,
    support: constraints.Constraint,
    draw: Draw,
    event_dim: int | None = None,
) -> Tensor:
    """Map an unconstrained value to ``support`` with ``biject_to`` and record it as a sample
    site whose law is an :class:`ImplicitDistribution`. ``event_dim`` defaults to the dims
    of the value to the right of the draw's batch shape."""
    transform = biject_to(support)
    value = transform(unconstrained)
    if event_dim is None:
        event_dim = value.dim() - draw.unconstrained.dim() + 1
    log_det = transform.log_abs_det_jacobian(unconstrained, value)
    batch_dims = value.dim() - event_dim
    log_det = sum_rightmost(log_det, log_det.dim() - batch_dims)
    fn = ImplicitDistribution(name, value, log_det, draw, event_dim, support)
    return pyro.sample(name, fn)


class ImplicitGuide(PyroModule):
    r"""A guide whose latents are the output of a generator network, with no density.

    .. math::

        \epsilon \sim N(0, I_{e}), \qquad u = \mathrm{net}(\epsilon[, c]), \qquad
        z = T(u),

    where :math:`c = \mathrm{context}(\ast\mathrm{args}, \ast\ast\mathrm{kwargs})` is
    optional (amortised inference, e.g. the observed ``x`` of a VAE, the state of a policy)
    and :math:`T` is ``biject_to(support)`` of each site. The noise gets the batch shape of
    the enclosing plates (vectorised particles) broadcast with the context's batch shape:
    one latent per context row. The guide opens no plates of its own; the
    :class:`~pyro_ardae.ARDAE_ELBO` takes the subsampling scale of a local latent from
    the model's site.

    ``net(noise)`` (or ``net(noise, context)``) returns a tensor of shape
    ``batch_shape + event_shape`` when there is one site, else a dict of such tensors keyed
    by site name. The generator's parameters live in Pyro's param store (this is a
    :class:`~pyro.nn.PyroModule`), so any Pyro optimiser trains them.

    Args:
        net: the generator network.
        noise_dim: dimension :math:`e` of the noise.
        sites: the latent site names, or a mapping from name to support (default: real).
        context: ``(*args, **kwargs) -> Tensor`` giving the context from the guide's
            arguments, or ``None`` for a global (non-amortised) guide. An ``nn.Module``
            here (a feature network) is a submodule of the guide, so its parameters are
            trained with the generator's; the score network gets its output detached.
        context_event_dim: trailing dims of the context that are features (1 for vectors).
        prefix: name of the guide in Pyro's param store (its parameters are
            ``"{prefix}.net..."``) and in :attr:`~pyro_ardae.ARDAE_ELBO.estimators`; give
            each of several guides in one process its own (a shared name would share
            weights in the param store). When the guide is an attribute of a
            :class:`~pyro.nn.PyroModule`, Pyro names it after the attribute instead.
        score: the guide's score network (:class:`~pyro_ardae.ScoreConfig`), trained by
            :class:`~pyro_ardae.ARDAE_ELBO`.

    Example:
        >>> import pyro.distributions as dist
        >>> def model():
        ...     pyro.sample("z", dist.Normal(torch.zeros(2), 1.0).to_event(1))
        >>> guide = ImplicitGuide(torch.nn.Linear(3, 2), noise_dim=3, sites="z")
        >>> guide()["z"].shape
        torch.Size([2])
    """

    def __init__(
        self,
        net: nn.Module | Callable[..., Tensor | Mapping[str, Tensor]],
        noise_dim: int,
        sites: str | Sequence[str] | Mapping[str, constraints.Constraint] = "z",
        context: Callable[..., Tensor] | None = None,
        context_event_dim: int = 1,
        prefix: str = "implicit",
        score: ScoreConfig = ScoreConfig(),
    ) -> None:
        check_prefix(prefix)
        super().__init__(name=prefix)
        self.supports = guide_sites(
            net, noise_dim, sites, context, constraints.Constraint, constraints.real
        )
        self.net = net
        self.noise_dim = noise_dim
        self.context = context
        self.context_event_dim = context_event_dim
        self.score = score_config("ImplicitGuide", score)

    def _context(self, args, kwargs) -> Tensor | None:
        if self.context is None:
            return None
        c = self.context(*args, **kwargs)
        if not isinstance(c, Tensor) or c.dim() < self.context_event_dim:
            got = type(c).__name__ if not isinstance(c, Tensor) else f"shape {tuple(c.shape)}"
            raise ValueError(
                f"ImplicitGuide: context() must return a Tensor with at least "
                f"{self.context_event_dim} feature dims, got {got}"
            )
        return c

    def _outputs(self, noise: Tensor, context: Tensor | None) -> dict[str, Tensor]:
        net = stored_module(self, "net")
        out = net(noise) if context is None else net(noise, context)
        if isinstance(out, Tensor) and len(self.supports) == 1:
            out = {next(iter(self.supports)): out}
        if not isinstance(out, Mapping):
            raise TypeError(
                f"ImplicitGuide: net must return a dict keyed by {sorted(self.supports)}, "
                f"got {type(out).__name__}"
            )
        if set(out) != set(self.supports):
            raise ValueError(
                f"ImplicitGuide: net returned sites {sorted(out)}, expected {sorted(self.supports)}"
            )
        batch = noise.shape[:-1]
        for name, value in out.items():
            if not isinstance(value, Tensor) or value.shape[: len(batch)] != batch:
                got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
                raise ValueError(
                    f"ImplicitGuide: net output for {name!r} must have shape "
                    f"{tuple(batch)} + event_shape (the noise batch shape), got {got}"
                )
        return out

    def _flat(self, out: Mapping[str, Tensor], batch: torch.Size) -> Tensor:
        return torch.cat([out[k].reshape(batch + (-1,)) for k in self.supports], -1)

    def forward(self, *args, **kwargs) -> dict[str, Tensor]:
        """Draw the latents; returns a dict from site name to (constrained) value."""
        context = self._context(args, kwargs)
        batch = plate_batch_shape()
        if context is not None:
            ctx_batch = context.shape[: context.dim() - self.context_event_dim]
            batch = torch.broadcast_shapes(batch, ctx_batch)
            context = context.expand(batch + context.shape[len(ctx_batch) :])
        param = next(iter(self.parameters()), None)
        ref = context if context is not None else param
        noise = torch.randn(
            batch + (self.noise_dim,),
            dtype=ref.dtype if ref is not None else torch.get_default_dtype(),
            device=ref.device if ref is not None else None,
        )
        out = self._outputs(noise, context)
        flat = self._flat(out, batch)
        ctx_flat, loc = None, None
        if context is not None:
            ctx_flat = context.reshape(batch + (-1,)).detach()
            with torch.no_grad():  # z0(c) = net(0, c), once per context row
                rows = context[(0,) * (len(batch) - len(ctx_batch))]
                zero = noise.new_zeros(ctx_batch + (self.noise_dim,))
                loc = self._flat(self._outputs(zero, rows), ctx_batch).expand(flat.shape)
        draw = Draw(self._pyro_name, flat, ctx_flat, self.score, loc)
        with ExitStack() as stack:
            if context is not None:
                self._context_plates(stack, ctx_batch)
            return {
                name: emit_site(name, out[name], support, draw)
                for name, support in self.supports.items()
            }

    def _context_plates(self, stack: ExitStack, ctx_batch: torch.Size) -> None:
        """Declare the context's batch dims as plates (those the caller has not opened), so
        that whatever sizes the guide's batch from its trace (``Predictive(parallel=True)``,
        the ELBO's plate nesting) puts its own dims to their left."""
        taken = {f.dim for f in get_plates() if f.vectorized and f.dim is not None}
        for i, size in enumerate(reversed(ctx_batch)):
            if size > 1 and -1 - i not in taken:
                name = f"{self._pyro_name}.context_dim{-1 - i}"
                stack.enter_context(pyro.plate(name, size, dim=-1 - i))

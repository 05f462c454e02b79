"""Backend-free pieces shared by ``pyro_ardae`` and ``numpyro_ardae``: the score network's
configuration, argument checks and the model/guide consistency checks with their messages. Nothing
here imports torch or jax; the backends pass in what differs (constraint classes, traces
reduced to plain site descriptions)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np

Parameterization = Literal["vector", "gradient"]
ENUMERATION_TUTORIAL = "https://pyro.ai/examples/enumeration.html"
MIN_SCORE_SAMPLES = 512  # the default draws per AR-DAE step, more for wide global guides
PARAMETERIZATIONS = ("vector", "gradient")


def positive_finite(value: Any) -> bool:
    """A real number (not a bool) in ``(0, inf)``."""
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def _check_net_options(
    owner: str, parameterization: Any, delta: Any, features: Any, scale: Any
) -> None:
    """The options a ``ScoreConfig`` and a ``ScoreNet`` share; errors name ``owner``."""
    if parameterization not in PARAMETERIZATIONS:
        raise ValueError(
            f"{owner}: expected parameterization in {PARAMETERIZATIONS}, got {parameterization!r}"
        )
    if not positive_finite(delta):
        raise ValueError(f"{owner}: expected a finite delta > 0, got {delta!r}")
    if isinstance(features, bool) or not isinstance(features, int) or features < 0:
        raise ValueError(f"{owner}: expected fourier_features to be an int >= 0, got {features!r}")
    if not positive_finite(scale):
        raise ValueError(f"{owner}: expected a finite fourier_scale > 0, got {scale!r}")


@dataclass(frozen=True)
class ScoreConfig:
    r"""The score network of an implicit guide: a residual, :math:`\sigma`-conditioned
    AR-DAE (:class:`~pyro_ardae.ScoreNet`; Lim et al. 2020) that the
    :class:`~pyro_ardae.ARDAE_ELBO` trains on the guide's draws. The defaults serve the
    models in the docs' posterior suite; pass one to a guide's ``score=`` to change them.

    Args:
        hidden: hidden widths of the network.
        parameterization: ``"vector"`` (the network outputs the score) or ``"gradient"``
            (the score is :math:`-\nabla_y F` of a scalar energy: it also gives
            :meth:`~pyro_ardae.ScoreEstimator.log_prob` up to a constant, at the price of
            double backpropagation).
        delta: the noise levels are :math:`\sigma \sim N(0, \delta^2)`, in whitened units.
        fourier_features: random Fourier features of the whitened input (Tancik et al.
            2020), 0 for none; they help on a :math:`q` that lies on thin curved sets, such
            as the 2-D energy targets of the examples.
        fourier_scale: sd of their frequencies, whitened units.

    Example:
        >>> ScoreConfig(hidden=(64, 64)).hidden
        (64, 64)
    """

    hidden: Sequence[int] = (128, 128, 128)
    parameterization: Parameterization = "vector"
    delta: float = 0.1
    fourier_features: int = 0
    fourier_scale: float = 3.0

    def __post_init__(self) -> None:
        _check_net_options(
            "ScoreConfig",
            self.parameterization,
            self.delta,
            self.fourier_features,
            self.fourier_scale,
        )
        if isinstance(self.hidden, (str, bytes)) or not isinstance(self.hidden, Iterable):
            raise TypeError(
                f"ScoreConfig: expected hidden to be a sequence of ints, got {self.hidden!r}"
            )
        hidden = tuple(self.hidden)
        if not all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in hidden):
            raise ValueError(f"ScoreConfig: expected hidden to be positive ints, got {hidden!r}")
        object.__setattr__(self, "hidden", hidden)
        object.__setattr__(self, "delta", float(self.delta))
        object.__setattr__(self, "fourier_scale", float(self.fourier_scale))


def score_config(owner: str, score: Any, arg: str = "score") -> ScoreConfig:
    """A guide's ``score=`` (or an estimator's ``config=``) argument: a :class:`ScoreConfig`,
    else a ``TypeError`` naming ``owner``."""
    if not isinstance(score, ScoreConfig):
        raise TypeError(
            f"{owner}: expected {arg} to be a ScoreConfig "
            f"(e.g. {arg}=ScoreConfig(hidden=(64, 64))), got {type(score).__name__}"
        )
    return score


def check_score_net_args(
    dim: Any,
    context_dim: Any,
    parameterization: Any,
    delta: Any,
    fourier_features: Any = 0,
    fourier_scale: Any = 3.0,
) -> None:
    """``ScoreNet``'s arguments."""
    if not isinstance(dim, int) or dim < 1:
        raise ValueError(f"ScoreNet: expected dim to be a positive int, got {dim!r}")
    if not isinstance(context_dim, int) or context_dim < 0:
        raise ValueError(f"ScoreNet: expected context_dim to be an int >= 0, got {context_dim!r}")
    _check_net_options("ScoreNet", parameterization, delta, fourier_features, fourier_scale)


def check_samples(
    dim: int, context_dim: int, z: Any, context: Any, min_dims: int, array_types: tuple
) -> None:
    """Shapes of samples ``z`` and of the context for a ``ScoreEstimator``: ``(..., d)``, or
    ``(..., m, d)`` with a context ``(m, k)``."""
    if not isinstance(z, array_types):
        names = " or ".join(t.__name__ for t in array_types)
        raise TypeError(f"ScoreEstimator: expected samples as a {names}, got {type(z)}")
    if z.ndim < min_dims or z.shape[-1] != dim:
        expected = "(..., m, d)" if context_dim else "(..., d)"
        raise ValueError(
            f"ScoreEstimator: expected shape {expected} with at least {min_dims} dims "
            f"and d={dim}, got {tuple(z.shape)}"
        )
    if context_dim:
        if context is None or context.ndim != 2 or context.shape[-1] != context_dim:
            got = None if context is None else tuple(context.shape)
            raise ValueError(
                f"ScoreEstimator: expected a context of shape (m, {context_dim}), got {got}"
            )
        if z.shape[-2] != context.shape[0]:
            raise ValueError(
                f"ScoreEstimator: samples have {z.shape[-2]} context rows, "
                f"the context has {context.shape[0]}"
            )
    elif context is not None:
        raise ValueError("ScoreEstimator: built without a context, got one")


def check_autoguide_args(noise_dim: Any, init_scale: Any) -> None:
    """``AutoImplicitGuide``'s ``noise_dim`` and ``init_scale``."""
    if noise_dim is not None and (not isinstance(noise_dim, int) or noise_dim < 1):
        raise ValueError(
            f"AutoImplicitGuide: expected noise_dim to be an int >= 1, got {noise_dim!r}"
        )
    if not positive_finite(init_scale):
        raise ValueError(f"AutoImplicitGuide: expected a finite init_scale > 0, got {init_scale!r}")


def check_global_latent(
    name: str,
    fn: str,
    discrete: bool,
    plates: Sequence[tuple[str, int, int]],
    package: str,
    marginalise: str,
) -> None:
    """An ``AutoImplicitGuide`` latent must be continuous and outside subsampled plates;
    ``plates`` are ``(name, size, full_size)``, ``marginalise`` how to sum a discrete one out."""
    if discrete:
        raise ValueError(
            f"AutoImplicitGuide: latent site {name!r} is discrete ({fn}); an implicit guide "
            "needs continuous latents, and ARDAE_ELBO does not enumerate. Sum the site out "
            f"of the model (e.g. a {marginalise} likelihood for a mixture's assignments; "
            f"marginalising discrete sites: {ENUMERATION_TUTORIAL})"
        )
    for plate, size, full_size in plates:
        if full_size != size:
            raise ValueError(
                f"AutoImplicitGuide: latent site {name!r} is local to the subsampled plate "
                f"{plate!r} ({size} of {full_size}); AutoImplicitGuide handles global latents "
                f"only. Use {package}.ImplicitGuide(net, context=...) with an amortised net."
            )


def check_plates(sites: Iterable[tuple[str, Sequence[tuple[str, int | None, int]]]]) -> None:
    """Every latent names each plate with one ``(dim, size)``; ``sites`` are ``(site name,
    [(plate name, dim, size), ...])``."""
    seen: dict[str, tuple[int | None, int, str]] = {}
    for site, frames in sites:
        for plate, dim, size in frames:
            first = seen.setdefault(plate, (dim, size, site))
            if first[:2] != (dim, size):
                raise ValueError(
                    f"AutoImplicitGuide: the plate {plate!r} has inconsistent dim or size in "
                    f"the model: dim {first[0]}, size {first[1]} at site {first[2]!r}, dim "
                    f"{dim}, size {size} at site {site!r}"
                )


def noise_dim_for(noise_dim: int | None, latent_dim: int) -> int:
    """The generator's noise dimension: ``max(10, latent_dim)`` by default, never below
    ``latent_dim`` (else q has no density)."""
    noise_dim = noise_dim or max(10, latent_dim)
    if noise_dim < latent_dim:
        raise ValueError(
            f"AutoImplicitGuide: noise_dim={noise_dim} is below the latent dimension "
            f"{latent_dim}; q would have no density. Use noise_dim >= {latent_dim}."
        )
    return noise_dim


def check_elbo_options(score_lr: float, **ints: int | None) -> None:
    """``ARDAE_ELBO``'s integer options (name=value, with their minimum) and ``score_lr``."""
    minimum = {"num_particles": 1, "score_steps": 1, "score_samples": 8}
    for key, value in ints.items():
        if key == "score_samples" and value is None:
            continue  # the default: chosen from the latent dimension at the first step
        low = minimum[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"ARDAE_ELBO: expected {key} to be an int >= {low}, got {value!r}")
    if not positive_finite(score_lr):
        raise ValueError(f"ARDAE_ELBO: expected a finite score_lr > 0, got {score_lr!r}")


def default_score_samples(dim: int) -> int:
    """Draws per AR-DAE step by default: 512, or ``4 (dim + 3)`` for a wider global guide
    (each half of the draws whitens the other with a full covariance, which needs more
    than ``dim + 2`` of them; twice that keeps the map's noise moderate)."""
    return max(MIN_SCORE_SAMPLES, 4 * (dim + 3))


def score_sample_size(score_samples: int | None, global_dims: Mapping[str, int]) -> int:
    """Draws per AR-DAE step for guides without a context of the given latent dimensions;
    a clear error where there are too few."""
    n = score_samples or default_score_samples(max(global_dims.values(), default=0))
    for name, dim in global_dims.items():
        if n // 2 <= dim + 2:
            raise ValueError(
                f"ARDAE_ELBO: guide {name!r} has {dim} latent dimensions; whitening its draws "
                f"needs at least {2 * (dim + 3)} of them per AR-DAE step, got score_samples="
                f"{n}. Leave ARDAE_ELBO(score_samples=None), the default (max(512, 4 (d + 3)) "
                f"draws), or set it to at least {2 * (dim + 3)}."
            )
    return n


def guide_sites(
    net: Any,
    noise_dim: Any,
    sites: str | Sequence[str] | Mapping[str, Any],
    context: Any,
    constraint_type: type,
    real: Any,
) -> dict[str, Any]:
    """Check ``ImplicitGuide``'s arguments; returns ``{site: support}``."""
    if not callable(net):
        raise TypeError(f"ImplicitGuide: expected a callable net, got {type(net).__name__}")
    if not isinstance(noise_dim, int) or noise_dim < 1:
        raise ValueError(f"ImplicitGuide: expected noise_dim to be an int >= 1, got {noise_dim!r}")
    if context is not None and not callable(context):
        raise TypeError(
            f"ImplicitGuide: expected context to be callable or None, got {type(context).__name__}"
        )
    if isinstance(sites, str):
        sites = [sites]
    if not isinstance(sites, Mapping):
        sites = {name: real for name in sites}
    if not sites or not all(isinstance(k, str) for k in sites):
        raise ValueError(f"ImplicitGuide: expected one or more site names, got {sites!r}")
    for name, support in sites.items():
        if not isinstance(support, constraint_type) or support.is_discrete:
            raise ValueError(
                f"ImplicitGuide: site {name!r} needs a continuous support, got {support!r}"
            )
    return dict(sites)


def same_support(a: Any, b: Any, independent: type, to_numpy: Callable[[Any], Any]) -> bool:
    """Whether two constraints are the same, bounds included (``independent`` wrappers
    unwrapped); bounds that cannot be read now (traced values) are not compared."""
    while isinstance(a, independent):
        a = a.base_constraint
    while isinstance(b, independent):
        b = b.base_constraint
    if type(a) is not type(b):
        return False
    for attr in ("lower_bound", "upper_bound"):
        x, y = getattr(a, attr, None), getattr(b, attr, None)
        if x is None and y is None:
            continue
        x, y = to_numpy(x), to_numpy(y)
        if x is None or y is None:
            continue
        if not np.array_equal(x, y):
            return False
    return True


class Site(NamedTuple):
    """What the checks need of one sample site."""

    observed: bool
    support: Any
    fn: str  # the class name of the site's distribution
    implicit: bool  # a site of an implicit guide
    shape: tuple[int, ...] = ()  # the model's batch + event shape, the guide's value's


def model_site(site: Mapping[str, Any]) -> Site:
    """What the checks need of a model's sample site (a Pyro or NumPyro trace entry)."""
    fn = site["fn"]
    shape = tuple(fn.batch_shape) + tuple(fn.event_shape)
    return Site(site["is_observed"], fn.support, type(fn).__name__, False, shape)


def guide_site(site: Mapping[str, Any], implicit: bool) -> Site:
    """What the checks need of a guide's sample site; ``implicit``: an implicit guide's."""
    fn = site["fn"]
    return Site(False, fn.support, type(fn).__name__, implicit, tuple(site["value"].shape))


def covers(value: tuple[int, ...], model: tuple[int, ...]) -> bool:
    """Whether a value of shape ``value`` gives each coordinate of a model site of shape
    ``model`` its own entry: right-aligned, every dim of the site over 1 is matched (the
    value may have more dims on the left, e.g. vectorised particles)."""
    if len(value) < len(model):
        value = (1,) * (len(model) - len(value)) + tuple(value)
    tail = value[len(value) - len(model) :]
    return all(m == 1 or v == m for v, m in zip(tail, model, strict=True))


def check_model_guide(
    model: Mapping[str, Site],
    guide: Mapping[str, Site],
    same: Callable[[Any, Any], bool],
    package: str,
) -> None:
    """Clear errors for a guide that does not fit ``ARDAE_ELBO`` or the model."""
    latents = {name for name, site in model.items() if not site.observed}
    for name, site in guide.items():
        if not site.implicit:
            raise TypeError(
                f"ARDAE_ELBO: guide site {name!r} has a {site.fn}; ARDAE_ELBO trains implicit "
                f"guides ({package}.ImplicitGuide or AutoImplicitGuide), whose sites come from "
                "a generator network"
            )
        if name not in model:
            raise ValueError(
                f"ARDAE_ELBO: the guide samples {name!r} but the model has no such site; "
                f"the model's latent sites are {sorted(latents)}"
            )
        model_site = model[name]
        if model_site.observed:
            raise ValueError(f"ARDAE_ELBO: the guide samples {name!r}, which the model observes")
        if model_site.support.is_discrete:
            raise ValueError(
                f"ARDAE_ELBO: model site {name!r} is discrete; implicit guides need "
                "continuous latents"
            )
        if not same(site.support, model_site.support):
            raise ValueError(
                f"ARDAE_ELBO: model site {name!r} has support {model_site.support}, the "
                f"guide's has {site.support}; give the guide the same support "
                "(ImplicitGuide(..., sites={name: support}))"
            )
        if not covers(site.shape, model_site.shape):
            raise ValueError(
                f"ARDAE_ELBO: the guide's value of {name!r} has shape {site.shape}, which does "
                f"not cover the model site's shape {model_site.shape}: broadcasting would use "
                "one guide coordinate for several of the model's. Make the guide's net (or "
                "context) return one entry per coordinate of the site (event shape and "
                "plate dims)"
            )
    missing = latents - set(guide)
    if missing:
        raise ValueError(
            f"ARDAE_ELBO: the model's latent sites {sorted(missing)} are not sampled by the guide"
        )
    if not guide:
        raise ValueError("ARDAE_ELBO: the guide samples no latent site")


def check_importance_args(shape: tuple[int, ...] | None, num_samples: int | None) -> int:
    """Check the draws ``(n, B, d)``, ``n > d``, and ``num_samples`` of
    ``importance_log_likelihood``; returns ``num_samples`` (``n`` when ``None``)."""
    if shape is None or len(shape) != 3 or shape[0] <= shape[-1]:
        raise ValueError(
            "importance_log_likelihood: expected draws of shape (n, B, d) with n > d, "
            f"got {shape if shape is not None else 'no array'}"
        )
    num_samples = shape[0] if num_samples is None else num_samples
    if not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(
            f"importance_log_likelihood: expected num_samples >= 1, got {num_samples!r}"
        )
    return num_samples


def whitening_ridge(var, loc_sq, dim: int, eps: float, tiny: float):
    """Ridge added to the variances ``var`` of a whitening map centred at ``loc`` (``loc_sq``
    is its square): ``4 dim eps`` relative to each variance, above the rounding error of a
    Cholesky factorisation of a singular ``dim x dim`` covariance (a collapsed sampler), plus
    ``(eps loc)^2``, the square of the draws' own resolution, plus ``tiny``. Anything larger
    biases the score: the network learns a law wider than q and the entropy gradient comes
    out too weak in the coordinates whose sd is small against their mean."""
    return eps * 4 * dim * var + eps**2 * loc_sq + tiny


#: Ridges tried, relative to the mean variance, when a covariance's Cholesky factorisation
#: fails in floating point (draws of a near-degenerate sampler in float32).
CHOLESKY_RETRIES = (1e-6, 1e-4, 1e-2)


def divergence_message(step: int | str, guides: Iterable[str], what: str) -> str:
    """The text of a fit that blew up: the step, the guides, what was not finite and what to
    try; shared by both backends' errors and warnings."""
    names = ", ".join(repr(g) for g in guides)
    return (
        f"ARDAE_ELBO: step {step}: {what} of guide {names} is not finite; the fit has "
        "diverged. Try a smaller learning rate (e.g. Adam lr 1e-3), more particles "
        "(ARDAE_ELBO(num_particles=...)), or check the model for regions where its "
        "log-density is infinite"
    )


def relative_jitter(cov_diag_mean, jitter: float, tiny: float):
    """``jitter`` times the mean variance plus ``tiny``: the ridge added to a fitted
    covariance so that its Cholesky factor exists for a collapsed sampler."""
    return jitter * cov_diag_mean + tiny


def check_global_samples(dim: int, samples: Any) -> None:
    """A global (context-free) ``ScoreEstimator`` whitens samples of shape ``(n, d)``."""
    if samples.ndim != 2:
        raise ValueError(
            f"ScoreEstimator: expected samples of shape (n, {dim}), got {tuple(samples.shape)}"
        )


def check_halves(n: int, dim: int) -> None:
    """``ScoreEstimator.update`` whitens each half of the ``n`` fresh samples with the
    other's moments, which needs more than ``dim + 2`` samples in each half."""
    if n // 2 <= dim + 2:
        raise ValueError(
            f"ScoreEstimator.update: whitening {dim}-dim samples needs at least "
            f"{2 * (dim + 3)} fresh samples (two halves of more than {dim + 2}), "
            f"got {n}"
        )


def group_draws(sites: Iterable[tuple[str, Any]]) -> dict[str, tuple[Any, list[str]]]:
    """Group implicit sites ``(site name, draw)`` by their guide's name, refusing two
    distinct draws under one name: they would share (and corrupt) one score network."""
    draws: dict[str, tuple[Any, list[str]]] = {}
    for name, draw in sites:
        first, names = draws.setdefault(draw.guide, (draw, []))
        if first is not draw:
            raise ValueError(
                f"ARDAE_ELBO: two implicit guides are both named {draw.guide!r} (sites "
                f"{names} and {name!r}); give each guide its own prefix"
            )
        names.append(name)
    return draws


def check_prefix(prefix: Any) -> None:
    if not isinstance(prefix, str) or not prefix:
        raise ValueError(f"ImplicitGuide: expected a non-empty str prefix, got {prefix!r}")

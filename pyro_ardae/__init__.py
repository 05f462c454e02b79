"""Implicit variational inference for Pyro with AR-DAE entropy gradients.

The public API: :class:`ImplicitGuide` and :class:`AutoImplicitGuide` (guides with no
density), :class:`ARDAE_ELBO` (their ELBO), :class:`ScoreConfig` (a guide's score network),
the score estimator they use, :class:`ScoreEstimator`, :class:`ScoreNet` and
:func:`ardae_loss`, usable on their own, and the diagnostics.

The names load lazily, on first use: ``pyro_ardae._common`` (the framework-free code that
``numpyro_ardae`` shares) imports neither torch nor Pyro.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "ARDAE_ELBO": "elbo",
    "AutoImplicitGuide": "autoguide",
    "ImplicitGuide": "guide",
    "ScoreConfig": "_common",
    "ScoreEstimator": "estimator",
    "ScoreNet": "score",
    "ardae_loss": "loss",
    "log_normalizer": "estimator",
    "compare_to_reference": "diagnostics",
    "energy_distance": "diagnostics",
    "importance_log_likelihood": "diagnostics",
    "stein_discrepancy": "diagnostics",
    "to_inference_data": "diagnostics",
}
__all__ = [
    "ARDAE_ELBO",
    "AutoImplicitGuide",
    "ImplicitGuide",
    "ScoreConfig",
    "ScoreEstimator",
    "ScoreNet",
    "ardae_loss",
    "log_normalizer",
    "compare_to_reference",
    "energy_distance",
    "importance_log_likelihood",
    "stein_discrepancy",
    "to_inference_data",
]

if TYPE_CHECKING:
    from ._common import ScoreConfig
    from .autoguide import AutoImplicitGuide
    from .diagnostics import (
        compare_to_reference,
        energy_distance,
        importance_log_likelihood,
        stein_discrepancy,
        to_inference_data,
    )
    from .elbo import ARDAE_ELBO
    from .estimator import ScoreEstimator, log_normalizer
    from .guide import ImplicitGuide
    from .loss import ardae_loss
    from .score import ScoreNet


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'pyro_ardae' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

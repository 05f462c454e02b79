"""Implicit variational inference for Pyro with AR-DAE entropy gradients.

The public API: :class:`ImplicitGuide` and :class:`AutoImplicitGuide` (guides with no
density), :class:`ARDAE_ELBO` (their ELBO), and the score estimator they use,
:class:`ScoreEstimator`, :class:`ScoreNet` and :func:`ardae_loss`, usable on their own.

The names load lazily, on first use: ``pyro_ardae._common`` (the framework-free code that
``numpyro_ardae`` shares) imports neither torch nor Pyro.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "ARDAE_ELBO": "elbo",
    "AutoImplicitGuide": "autoguide",
    "Generator": "autoguide",
    "ImplicitDistribution": "guide",
    "ImplicitGuide": "guide",
    "ScoreEstimator": "estimator",
    "ScoreNet": "score",
    "Standardization": "estimator",
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
    "Generator",
    "ImplicitDistribution",
    "ImplicitGuide",
    "ScoreEstimator",
    "ScoreNet",
    "Standardization",
    "ardae_loss",
    "log_normalizer",
    "compare_to_reference",
    "energy_distance",
    "importance_log_likelihood",
    "stein_discrepancy",
    "to_inference_data",
]

if TYPE_CHECKING:
    from .autoguide import AutoImplicitGuide, Generator
    from .diagnostics import (
        compare_to_reference,
        energy_distance,
        importance_log_likelihood,
        stein_discrepancy,
        to_inference_data,
    )
    from .elbo import ARDAE_ELBO
    from .estimator import ScoreEstimator, Standardization, log_normalizer
    from .guide import ImplicitDistribution, ImplicitGuide
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

"""Implicit variational inference for Pyro with AR-DAE entropy gradients.

The public API: :class:`ImplicitGuide` and :class:`AutoImplicitGuide` (guides with no
density), :class:`ARDAE_ELBO` (their ELBO), and the score estimator they use,
:class:`ScoreEstimator`, :class:`ScoreNet` and :func:`ardae_loss`, usable on their own.
"""

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

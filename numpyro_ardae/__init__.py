"""Implicit variational inference for NumPyro with AR-DAE entropy gradients.

The same modules and public names as :mod:`pyro_ardae`, jit-compiled: :class:`ImplicitGuide`,
:class:`AutoImplicitGuide`, :class:`ARDAE_ELBO`, :class:`ScoreEstimator`, :class:`ScoreNet`,
:func:`ardae_loss`, :func:`energy_distance`, :func:`importance_log_likelihood`. Where the
Pyro backend raises a ``FloatingPointError`` for a diverged fit, a jitted step cannot: it
warns with a :class:`DivergenceWarning` instead.
"""

from .autoguide import AutoImplicitGuide, Generator
from .diagnostics import (
    compare_to_reference,
    energy_distance,
    importance_log_likelihood,
    stein_discrepancy,
    to_inference_data,
)
from .elbo import ARDAE_ELBO, DivergenceWarning
from .estimator import ScoreEstimator, ScoreState, Standardization, log_normalizer
from .guide import ImplicitDistribution, ImplicitGuide
from .loss import ardae_loss
from .score import ScoreNet

__all__ = [
    "ARDAE_ELBO",
    "AutoImplicitGuide",
    "DivergenceWarning",
    "Generator",
    "ImplicitDistribution",
    "ImplicitGuide",
    "ScoreEstimator",
    "ScoreNet",
    "ScoreState",
    "Standardization",
    "ardae_loss",
    "log_normalizer",
    "compare_to_reference",
    "energy_distance",
    "importance_log_likelihood",
    "stein_discrepancy",
    "to_inference_data",
]

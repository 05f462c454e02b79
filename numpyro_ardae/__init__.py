"""Implicit variational inference for NumPyro with AR-DAE entropy gradients.

The same modules and public names as :mod:`pyro_ardae`, jit-compiled: :class:`ImplicitGuide`,
:class:`AutoImplicitGuide`, :class:`ARDAE_ELBO`, :class:`ScoreConfig` (the very class of
:mod:`pyro_ardae`, which imports neither torch nor Pyro), :class:`ScoreEstimator`,
:class:`ScoreNet`, :func:`ardae_loss` and the diagnostics. Where the
Pyro backend raises a ``FloatingPointError`` for a diverged fit, a jitted step cannot: it
warns with a :class:`DivergenceWarning` instead.
"""

from pyro_ardae._common import ScoreConfig

from .autoguide import AutoImplicitGuide
from .diagnostics import (
    compare_to_reference,
    energy_distance,
    importance_log_likelihood,
    stein_discrepancy,
    to_inference_data,
)
from .elbo import ARDAE_ELBO, DivergenceWarning
from .estimator import ScoreEstimator, log_normalizer
from .guide import ImplicitGuide
from .loss import ardae_loss
from .score import ScoreNet

__all__ = [
    "ARDAE_ELBO",
    "AutoImplicitGuide",
    "DivergenceWarning",
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

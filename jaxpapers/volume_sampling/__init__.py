"""Leveraged volume sampling for linear regression.

Reimplements M. Dereziński, M. K. Warmuth, D. Hsu, "Leveraged volume sampling for linear
regression", NeurIPS 2018: exact samplers (volume sampling by reverse iterative sampling, its
fast rejection variant and a projection-DPP variant; leveraged volume sampling by determinantal
rejection sampling; i.i.d. leverage-score and uniform baselines), the unbiased estimators, exact
enumeration references, LIBSVM/CSV loaders and the loss-ratio experiments. Also regularised
(ridge) volume sampling, P(S) ∝ det(X_Sᵀ X_S + λ I) (Dereziński & Warmuth, AISTATS 2018).
"""

from jaxpapers.volume_sampling import config as config
from jaxpapers.volume_sampling import data as data
from jaxpapers.volume_sampling import exact as exact
from jaxpapers.volume_sampling.estimators import least_squares_estimate as least_squares_estimate
from jaxpapers.volume_sampling.estimators import loss_ratio as loss_ratio
from jaxpapers.volume_sampling.estimators import optimal_loss as optimal_loss
from jaxpapers.volume_sampling.estimators import optimal_weights as optimal_weights
from jaxpapers.volume_sampling.estimators import square_loss as square_loss
from jaxpapers.volume_sampling.samplers import SAMPLERS as SAMPLERS
from jaxpapers.volume_sampling.samplers import LeverageState as LeverageState
from jaxpapers.volume_sampling.samplers import Sample as Sample
from jaxpapers.volume_sampling.samplers import acceptance_probability as acceptance_probability
from jaxpapers.volume_sampling.samplers import (
    approximate_leverage_scores as approximate_leverage_scores,
)
from jaxpapers.volume_sampling.samplers import default_oversample as default_oversample
from jaxpapers.volume_sampling.samplers import design_fingerprint as design_fingerprint
from jaxpapers.volume_sampling.samplers import dpp_volume_sample as dpp_volume_sample
from jaxpapers.volume_sampling.samplers import fast_volume_sample as fast_volume_sample
from jaxpapers.volume_sampling.samplers import leverage_sample as leverage_sample
from jaxpapers.volume_sampling.samplers import leverage_scores as leverage_scores
from jaxpapers.volume_sampling.samplers import leveraged_volume_sample as leveraged_volume_sample
from jaxpapers.volume_sampling.samplers import orthonormal_basis as orthonormal_basis
from jaxpapers.volume_sampling.samplers import prepare_leveraged as prepare_leveraged
from jaxpapers.volume_sampling.samplers import (
    ridge_volume_log_normalizer as ridge_volume_log_normalizer,
)
from jaxpapers.volume_sampling.samplers import ridge_volume_sample as ridge_volume_sample
from jaxpapers.volume_sampling.samplers import uniform_sample as uniform_sample
from jaxpapers.volume_sampling.samplers import volume_sample as volume_sample
from jaxpapers.volume_sampling.train import loss_ratio_curves as loss_ratio_curves
from jaxpapers.volume_sampling.train import sample_loss_ratios as sample_loss_ratios
from jaxpapers.volume_sampling.train import train_and_evaluate as train_and_evaluate

"""BBMM: exact Gaussian processes by blackbox matrix–matrix multiplication, in JAX.

Gardner, Pleiss, Bindel, Weinberger & Wilson, "GPyTorch: Blackbox Matrix-Matrix Gaussian Process
Inference with GPU Acceleration", NeurIPS 2018. One modified batched CG (mBCG) call on
``[y, z_1 … z_t]`` gives ``K̂⁻¹ y``, ``K̂⁻¹ z_i`` and the Lanczos tridiagonals for stochastic
Lanczos quadrature of ``log|K̂|``; a pivoted-Cholesky preconditioner cuts iterations; only kernel
matrix–matrix products are needed, so exact GPs, SGPR and SKI share the engine. Multi-device
products follow Wang et al., "Exact Gaussian Processes on a Million Data Points", NeurIPS 2019;
LOVE variances follow Pleiss et al., ICML 2018. :class:`BBMMMultivariateNormal` puts the BBMM
likelihood in a NumPyro model, so hyperparameters can be sampled with NUTS. What GPyTorch users
reach for beyond that: periodic, linear and spectral-mixture kernels (:mod:`.kernels`), fixed and
heteroscedastic per-point noise (:mod:`.noise`), fantasies (:mod:`.fantasy`) and multitask ICM
GPs with Kronecker products (:mod:`.multitask`).
"""

from jaxpapers.bbmm import config as config
from jaxpapers.bbmm import data as data
from jaxpapers.bbmm import dense as dense
from jaxpapers.bbmm import fantasy as fantasy
from jaxpapers.bbmm import kernels as kernels
from jaxpapers.bbmm import multitask as multitask
from jaxpapers.bbmm import noise as noise
from jaxpapers.bbmm.cg import MBCGResult as MBCGResult
from jaxpapers.bbmm.cg import cg_tridiagonals as cg_tridiagonals
from jaxpapers.bbmm.cg import lanczos as lanczos
from jaxpapers.bbmm.cg import mbcg as mbcg
from jaxpapers.bbmm.distribution import BBMMMultivariateNormal as BBMMMultivariateNormal
from jaxpapers.bbmm.fantasy import FantasyUpdate as FantasyUpdate
from jaxpapers.bbmm.fantasy import condition_on_observations as condition_on_observations
from jaxpapers.bbmm.fantasy import fantasy_variance as fantasy_variance
from jaxpapers.bbmm.kernels import KernelParams as KernelParams
from jaxpapers.bbmm.kernels import LinearParams as LinearParams
from jaxpapers.bbmm.kernels import PeriodicParams as PeriodicParams
from jaxpapers.bbmm.kernels import SpectralMixtureParams as SpectralMixtureParams
from jaxpapers.bbmm.kernels import kernel_matrix as kernel_matrix
from jaxpapers.bbmm.likelihood import GPYTORCH_DEFAULTS as GPYTORCH_DEFAULTS
from jaxpapers.bbmm.likelihood import GRAD_ESTIMATORS as GRAD_ESTIMATORS
from jaxpapers.bbmm.likelihood import ConvergenceError as ConvergenceError
from jaxpapers.bbmm.likelihood import ConvergenceWarning as ConvergenceWarning
from jaxpapers.bbmm.likelihood import GradientSpread as GradientSpread
from jaxpapers.bbmm.likelihood import MethodChoice as MethodChoice
from jaxpapers.bbmm.likelihood import MLLInfo as MLLInfo
from jaxpapers.bbmm.likelihood import Settings as Settings
from jaxpapers.bbmm.likelihood import bbmm_mll as bbmm_mll
from jaxpapers.bbmm.likelihood import check_converged as check_converged
from jaxpapers.bbmm.likelihood import check_settings as check_settings
from jaxpapers.bbmm.likelihood import cholesky_hutchinson_mll as cholesky_hutchinson_mll
from jaxpapers.bbmm.likelihood import cholesky_mll as cholesky_mll
from jaxpapers.bbmm.likelihood import choose_method as choose_method
from jaxpapers.bbmm.likelihood import deflate_probes as deflate_probes
from jaxpapers.bbmm.likelihood import gradient_spread as gradient_spread
from jaxpapers.bbmm.likelihood import hutchinson_spread as hutchinson_spread
from jaxpapers.bbmm.likelihood import mll as mll
from jaxpapers.bbmm.likelihood import report_convergence as report_convergence
from jaxpapers.bbmm.likelihood import slq_logdet as slq_logdet
from jaxpapers.bbmm.multitask import MultitaskOperator as MultitaskOperator
from jaxpapers.bbmm.multitask import TaskCovariance as TaskCovariance
from jaxpapers.bbmm.noise import DiagonalNoiseOperator as DiagonalNoiseOperator
from jaxpapers.bbmm.noise import fixed_noise_operator as fixed_noise_operator
from jaxpapers.bbmm.noise import heteroscedastic_operator as heteroscedastic_operator
from jaxpapers.bbmm.operators import ExactOperator as ExactOperator
from jaxpapers.bbmm.operators import GPParams as GPParams
from jaxpapers.bbmm.operators import SGPROperator as SGPROperator
from jaxpapers.bbmm.operators import SKIOperator as SKIOperator
from jaxpapers.bbmm.operators import blocked_kernel_matmul as blocked_kernel_matmul
from jaxpapers.bbmm.operators import sharded_kernel_matmul as sharded_kernel_matmul
from jaxpapers.bbmm.operators import toeplitz_matmul as toeplitz_matmul
from jaxpapers.bbmm.precond import Preconditioner as Preconditioner
from jaxpapers.bbmm.precond import make_preconditioner as make_preconditioner
from jaxpapers.bbmm.precond import pivoted_cholesky as pivoted_cholesky
from jaxpapers.bbmm.predict import LoveCache as LoveCache
from jaxpapers.bbmm.predict import PredictionCache as PredictionCache
from jaxpapers.bbmm.predict import cg_solve as cg_solve
from jaxpapers.bbmm.predict import cholesky_predict as cholesky_predict
from jaxpapers.bbmm.predict import exact_variance as exact_variance
from jaxpapers.bbmm.predict import love_variance as love_variance
from jaxpapers.bbmm.predict import prediction_cache as prediction_cache
from jaxpapers.bbmm.predict import predictive_mean as predictive_mean
from jaxpapers.bbmm.predict import predictive_variance as predictive_variance
from jaxpapers.bbmm.train import fit as fit
from jaxpapers.bbmm.train import make_fit as make_fit
from jaxpapers.bbmm.train import train_and_evaluate as train_and_evaluate

"""Robust matrix factorization with nonconvex loss (Yao & Kwok, NeurIPS 2018).

Q. Yao and J. T. Kwok. "Scalable Robust Matrix Factorization with Nonconvex Loss." NeurIPS 2018.
RMFNL minimises Σ_Ω φ(|X_ij − u_iᵀ v_j|) + λ/2 (‖U‖² + ‖V‖²) for ℓ1 or a concave φ (LSP, Geman,
Laplace) by majorization–minimization; each convex surrogate is solved through its
box-constrained dual with accelerated proximal gradient on the sparse observed set only. The
RMF-MM baseline (Lin, Xu & Zha 2017) and an ℓ2 ALS baseline are included. Fits start by default
from the spectral estimate (truncated SVD of P_Ω(X)/p by sparse subspace iteration) and every MM
step is monotone in H.
"""

from jaxpapers.robust_mf import config as config
from jaxpapers.robust_mf.baselines import ALSResult as ALSResult
from jaxpapers.robust_mf.baselines import fit_l2 as fit_l2
from jaxpapers.robust_mf.baselines import l2_objective as l2_objective
from jaxpapers.robust_mf.data import Ratings as Ratings
from jaxpapers.robust_mf.data import SplitData as SplitData
from jaxpapers.robust_mf.data import SyntheticProblem as SyntheticProblem
from jaxpapers.robust_mf.data import index_ratings as index_ratings
from jaxpapers.robust_mf.data import inject_outliers as inject_outliers
from jaxpapers.robust_mf.data import load_movielens_100k as load_movielens_100k
from jaxpapers.robust_mf.data import load_ratings_dat as load_ratings_dat
from jaxpapers.robust_mf.data import load_ratings_tsv as load_ratings_tsv
from jaxpapers.robust_mf.data import split_ratings as split_ratings
from jaxpapers.robust_mf.data import synthetic as synthetic
from jaxpapers.robust_mf.ladmpsap import LADMPSAPInfo as LADMPSAPInfo
from jaxpapers.robust_mf.ladmpsap import LADMPSAPState as LADMPSAPState
from jaxpapers.robust_mf.ladmpsap import RMFMMResult as RMFMMResult
from jaxpapers.robust_mf.ladmpsap import rmf_mm as rmf_mm
from jaxpapers.robust_mf.ladmpsap import rmf_mm_ladmpsap as rmf_mm_ladmpsap
from jaxpapers.robust_mf.losses import LOSSES as LOSSES
from jaxpapers.robust_mf.losses import Loss as Loss
from jaxpapers.robust_mf.losses import geman as geman
from jaxpapers.robust_mf.losses import geman_derivative as geman_derivative
from jaxpapers.robust_mf.losses import get_loss as get_loss
from jaxpapers.robust_mf.losses import l1 as l1
from jaxpapers.robust_mf.losses import l1_derivative as l1_derivative
from jaxpapers.robust_mf.losses import laplace as laplace
from jaxpapers.robust_mf.losses import laplace_derivative as laplace_derivative
from jaxpapers.robust_mf.losses import lsp as lsp
from jaxpapers.robust_mf.losses import lsp_derivative as lsp_derivative
from jaxpapers.robust_mf.observations import DenseObservations as DenseObservations
from jaxpapers.robust_mf.observations import SparseObservations as SparseObservations
from jaxpapers.robust_mf.observations import dense_observations as dense_observations
from jaxpapers.robust_mf.observations import mae as mae
from jaxpapers.robust_mf.observations import predict as predict
from jaxpapers.robust_mf.observations import rmse as rmse
from jaxpapers.robust_mf.observations import sparse_observations as sparse_observations
from jaxpapers.robust_mf.observations import to_dense as to_dense
from jaxpapers.robust_mf.rmfnl import APGResult as APGResult
from jaxpapers.robust_mf.rmfnl import FitResult as FitResult
from jaxpapers.robust_mf.rmfnl import MMInfo as MMInfo
from jaxpapers.robust_mf.rmfnl import MMState as MMState
from jaxpapers.robust_mf.rmfnl import Surrogate as Surrogate
from jaxpapers.robust_mf.rmfnl import build_surrogate as build_surrogate
from jaxpapers.robust_mf.rmfnl import default_lambda as default_lambda
from jaxpapers.robust_mf.rmfnl import dual_grad as dual_grad
from jaxpapers.robust_mf.rmfnl import dual_value as dual_value
from jaxpapers.robust_mf.rmfnl import fit as fit
from jaxpapers.robust_mf.rmfnl import fit_dense_l1 as fit_dense_l1
from jaxpapers.robust_mf.rmfnl import init_state as init_state
from jaxpapers.robust_mf.rmfnl import lipschitz_constant as lipschitz_constant
from jaxpapers.robust_mf.rmfnl import mm_step as mm_step
from jaxpapers.robust_mf.rmfnl import objective as objective
from jaxpapers.robust_mf.rmfnl import primal_from_dual as primal_from_dual
from jaxpapers.robust_mf.rmfnl import solve_dual as solve_dual
from jaxpapers.robust_mf.rmfnl import spectral_init as spectral_init
from jaxpapers.robust_mf.rmfnl import surrogate_value as surrogate_value

"""The GP marginal log likelihood by BBMM, with a custom VJP, and the Cholesky reference.

Gardner et al., "GPyTorch: Blackbox Matrix-Matrix Gaussian Process Inference with GPU
Acceleration", NeurIPS 2018, §4. For ``r = y − m(X)`` and ``K̂ = K + σ² I``,

    log p(y) = −½ rᵀ K̂⁻¹ r − ½ log|K̂| − (n/2) log 2π.

One mBCG call on ``[r, z_1 … z_t]`` (probes ``z_i ~ N(0, P̂)``) gives ``u = K̂⁻¹ r``,
``K̂⁻¹ z_i`` and the Lanczos tridiagonals ``T_i`` of ``P̂^{-½} K̂ P̂^{-½}``. Then

    log|K̂| ≈ log|P̂| + (1/t) Σ_i (z_iᵀ P̂⁻¹ z_i) · e₁ᵀ log(T_i) e₁          (SLQ)
    ∂/∂θ log p ≈ ½ uᵀ (∂K̂) u − (1/2t) Σ_i (K̂⁻¹ z_i)ᵀ (∂K̂) (P̂⁻¹ z_i).

Both gradient terms are ``Σ_c a_cᵀ (∂K̂) b_c`` for fixed vectors, i.e. the gradient of the
scalar ``Σ_c a_cᵀ K̂(θ) b_c``; the backward pass differentiates exactly that through the
operator's (blocked, checkpointed) product, never through CG iterations.

``Settings(grad_estimator="variance_reduced")`` (Wenger et al., "Preconditioning for scalable
Gaussian process hyperparameter optimization", ICML 2022) instead uses

    ∂ log|K̂| = ∂ log|P̂| + E[zᵀ (K̂⁻¹ ∂K̂ − P̂⁻¹ ∂P̂) P̂⁻¹ z],    z ~ N(0, P̂),

with ``∂ log|P̂|`` exact through the pivoted-Cholesky factor (pivots fixed): exact when
``P̂ = K̂``, and only the part the preconditioner misses is left to the probes.
"""

from __future__ import annotations

import functools
import math
import time
import warnings
from typing import NamedTuple

import chex
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np

from jaxpapers._src import validation
from jaxpapers.bbmm import cg as cg_lib
from jaxpapers.bbmm import dense, kernels
from jaxpapers.bbmm import operators as ops
from jaxpapers.bbmm import precond as precond_lib


class Settings(NamedTuple):
  """BBMM numerical settings (static; hashable).

  Our defaults favour an accurate MLL. GPyTorch's defaults are in :data:`GPYTORCH_DEFAULTS`:
  CG tolerance 1 in training and 0.01 at evaluation, at most 1000 CG iterations, 10 probes, 20
  Lanczos steps, pivoted-Cholesky rank 15 used only for ``n ≥ 2000``, Cholesky for ``n ≤ 800``.

  Measured on ``python experiments/bbmm/benchmark.py`` data (inputs uniform on [0, 1]^8, RBF
  ℓ = 0.5, σ² = 0.01, float32, mean over keys): the SLQ spread comes from the part of the kernel
  spectrum near σ² that the preconditioner leaves in ``P̂^{-½} K̂ P̂^{-½}``, so it falls with the
  preconditioner rank, not with more probes at affordable counts. At n = 5000, rank 15 left the
  MLL 11 % off after 222 CG iterations, rank 100 2–3 % (107 iterations), rank 300 1–3 % (52),
  rank 1000 0.3 % (20, standard deviation over keys 0.1 %) and was the fastest of them; at n = 2000
  / 10000 rank 1000 gave 0.4 % / 0.3 %. Hence ``precond_rank=1000`` (the factor costs O(n k²)
  once per evaluation and ``2 n k`` memory; lower it for n ≫ 10⁵ on small devices).
  A probe column stops once its residual is below ``cg_tol`` and it has run ``min_lanczos``
  iterations; its tridiagonal keeps at most ``num_lanczos`` steps. With the weak rank-15
  preconditioner 20 Lanczos steps biased ``log|K̂|`` by +2–11 % (σ² = 0.01) while CG had not
  converged; stopping on the residual, not on a step count, avoids that (at rank 300, n = 5000,
  15 / 20 / 30 / 50 steps were 5.3 / 1.5 / 0.1 / 0.02 % below 80 steps, and CG needed 52).
  Probes are rescaled to ``zᵀ P̂⁻¹ z = n`` (``spherical_probes``), which removes the χ² noise of
  Gaussian probe norms and keeps both trace estimators unbiased. 30 probes: the MLL's standard
  deviation with 10 probes was 4 % of |MLL| at n = 400 with a rank-15 preconditioner.

  Attributes:
    cg_tol: relative-residual tolerance of the training mBCG solve.
    eval_cg_tol: tolerance of prediction solves.
    max_cg_iters: CG iteration cap.
    num_probes: number of probe vectors ``t``.
    num_lanczos: at most this many Lanczos steps (α/β pairs) per probe are used by SLQ.
    min_lanczos: every column runs at least this many CG iterations before it may stop on
      ``cg_tol`` (capped at ``num_lanczos``).
    precond_rank: pivoted-Cholesky rank ``k`` (0: ``P̂ = σ² I``).
    min_precond_size: use the preconditioner only when ``n`` is at least this.
    cholesky_size: ``method="auto"`` always uses dense Cholesky for ``n ≤`` this (GPyTorch's
      fixed switch, 800); above it see ``auto_method``.
    auto_method: how ``method="auto"`` chooses above ``cholesky_size``. ``"measured"``: the first
      eager :func:`mll` / :func:`~jaxpapers.bbmm.train.fit` call for a problem shape times one
      compiled MLL + gradient by each method on the caller's data and keeps the faster (cached
      per process; see :func:`choose_method`), for ``n ≤ measure_max``; BBMM above it and under
      ``jit`` (no data to time). ``"threshold"``: BBMM for every ``n > cholesky_size``.
    measure_max: largest ``n`` at which ``"measured"`` times dense Cholesky (its ``O(n³)`` time and
      ``O(n²)`` memory: n = 12,000 is ≈ 20–40 s on 2 CPU cores).
    spherical_probes: rescale each probe to ``zᵀ P̂⁻¹ z = n`` (else Gaussian ``z ~ N(0, P̂)``).
    precond_form: ``"woodbury"`` (fast) or ``"orthogonal"`` (stays positive definite in float32
      when the kernel's top eigenvalues exceed σ² by ~10⁶ or more: n ≈ 10⁶ or tiny noise; see
      :meth:`~jaxpapers.bbmm.precond.Preconditioner.solve`).
    strict: raise :class:`ConvergenceError` instead of warning (:class:`ConvergenceWarning`) when
      an evaluation did not converge or is not finite. Eager :func:`mll` / :func:`bbmm_mll` raise
      at once and :func:`~jaxpapers.bbmm.train.fit` after its run; under ``jit`` (no host check
      possible) a non-converged value is returned as NaN.
    grad_estimator: how the backward pass estimates ``∂ log|K̂|``. ``"standard"`` (Gardner et
      al. 2018): ``(1/t) Σ_i (K̂⁻¹z_i)ᵀ (∂K̂) (P̂⁻¹z_i)``. ``"variance_reduced"`` (Wenger et al.
      2022, as in linear_operator): ``∂ log|P̂|`` exactly, by differentiating the pivoted-Cholesky
      factor with its pivots fixed, plus ``(1/t) Σ_i [(K̂⁻¹z_i)ᵀ (∂K̂) (P̂⁻¹z_i) −
      (P̂⁻¹z_i)ᵀ (∂P̂) (P̂⁻¹z_i)]`` for the rest; exact when ``P̂ = K̂``, unbiased otherwise.
      ``"control_variate"``: the standard terms minus ``β_j`` times a zero-mean control variate
      ``(C z_i)ᵀ (∂_jK̂) (P̂⁻¹z_i) − tr(C ∂_jK̂)`` with ``C = P̂⁻¹`` and the trace exact (one product
      with the preconditioner's ``k`` columns), ``β_j`` the probes' own regression coefficient
      per hyperparameter (see :func:`_control_variate_correction`); exact when ``P̂ = K̂``,
      needs no derivative of the factor, costs one JVP per hyperparameter element.
      The value (SLQ) is the same for all three.
    cv_rank: ``"control_variate"`` builds ``C`` from the leading ``min(cv_rank, k)`` pivots.
    adaptive_probes: ``method="auto"``, where it measures (see ``auto_method``), also sizes the
      probe count to the accuracy targets below from the estimator's own spread at the caller's
      hyperparameters (:func:`gradient_spread`), and keeps BBMM only if it is faster than
      Cholesky *at that count* (:func:`choose_method`). Forced ``method="bbmm"`` and
      :func:`bbmm_mll` use ``num_probes`` as is; traced calls reuse an eager choice for the
      shape, else ``num_probes``.
    mll_rel_tol: target relative standard error of the MLL (the mean absolute error of a
      Gaussian estimate is 0.8× it).
    grad_rel_tol: target norm-wise relative standard error of the log-hyperparameter gradient.
    max_probes: the adaptive count's cap; where the targets need more, BBMM cannot meet them
      and ``auto`` runs Cholesky (if finite).
    min_probes: the adaptive count's floor; ``None`` (default): ``num_probes``, the count whose
      spread sized it, so the count rises to the targets but never falls below it. A smaller
      floor lets it fall to the targets too; every case then sits at ≈ 0.9× a target, where
      one draw's error crosses it by chance (measured with a floor of 10: synthetic 5k RBF
      σ² = 0.1 ran 20 probes and missed the 1 % gradient target, 1.00 % over 8 draws).
    deflate_pivots: with the ``"standard"`` estimator and a preconditioner, draw the probes in
      the complement of the ``k`` directions on which ``P̂^{-½} K̂ P̂^{-½}`` is exactly the
      identity, and add the exact ``log|K̂_ππ|`` terms of the pivot block (see
      :func:`deflate_probes`). Both estimators stay unbiased; the probes no longer spend their
      variance on the ``k`` known unit eigenvalues (synthetic 5k Matérn-5/2, σ² = 0.01: the
      log-det's variance fell 2.2×, the lengthscale gradients' 3.1–3.4×). Ignored by the
      other two estimators, which draw full-space probes.
  """

  cg_tol: float = 1e-2
  eval_cg_tol: float = 1e-2
  max_cg_iters: int = 1000
  num_probes: int = 30
  num_lanczos: int = 50
  precond_rank: int = 1000
  min_precond_size: int = 0
  cholesky_size: int = 800
  spherical_probes: bool = True
  min_lanczos: int = 20
  precond_form: str = "woodbury"
  strict: bool = False
  grad_estimator: str = "standard"
  auto_method: str = "measured"
  measure_max: int = 12000
  cv_rank: int = 1000
  adaptive_probes: bool = True
  mll_rel_tol: float = 5e-3
  grad_rel_tol: float = 1e-2
  max_probes: int = 1024
  min_probes: int | None = None
  deflate_pivots: bool = True


GPYTORCH_DEFAULTS = Settings(cg_tol=1.0, eval_cg_tol=1e-2, max_cg_iters=1000, num_probes=10,
                             num_lanczos=20, precond_rank=15, min_precond_size=2000,
                             cholesky_size=800, spherical_probes=False, min_lanczos=20,
                             auto_method="threshold", deflate_pivots=False)


GRAD_ESTIMATORS = ("standard", "variance_reduced", "control_variate")
AUTO_METHODS = ("measured", "threshold")


class MLLInfo(NamedTuple):
  """Diagnostics of a BBMM likelihood evaluation.

  Attributes:
    converged: whether every column of the mBCG solve reached ``cg_tol``.
    num_iters: the largest iteration count over columns.
    max_rel_residual: the largest final relative residual.
    logdet: the ``log|K̂|`` estimate.
    data_fit: ``rᵀ K̂⁻¹ r``.
  """

  converged: jax.Array
  num_iters: jax.Array
  max_rel_residual: jax.Array
  logdet: jax.Array
  data_fit: jax.Array


class ConvergenceError(RuntimeError):
  """mBCG did not reach its tolerance (the result would be unreliable)."""


class ConvergenceWarning(RuntimeWarning):
  """mBCG did not reach its tolerance, or the likelihood is not finite."""


def check_settings(settings: Settings, name: str = "settings") -> Settings:
  """Validates every field of :class:`Settings` (raises naming ``name.field``) and returns it."""
  if not isinstance(settings, Settings):
    raise TypeError(f"{name} must be a Settings, got {type(settings).__name__}")
  for field in ("cg_tol", "eval_cg_tol", "mll_rel_tol", "grad_rel_tol"):
    value = getattr(settings, field)
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
      raise TypeError(f"{name}.{field} must be a number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
      raise ValueError(f"{name}.{field} must be finite and > 0, got {value}")
  minimum = {"max_cg_iters": 1, "num_probes": 1, "num_lanczos": 1, "min_lanczos": 0,
             "precond_rank": 0, "min_precond_size": 0, "cholesky_size": 0, "measure_max": 0,
             "cv_rank": 0, "max_probes": 1, "min_probes": 1}
  for field, low in minimum.items():
    value = getattr(settings, field)
    if field == "min_probes" and value is None:
      continue
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
      raise TypeError(f"{name}.{field} must be an int, got {value!r}")
    if value < low:
      raise ValueError(f"{name}.{field} must be >= {low}, got {value}")
  for field in ("spherical_probes", "strict", "adaptive_probes", "deflate_pivots"):
    if not isinstance(getattr(settings, field), (bool, np.bool_)):
      raise TypeError(f"{name}.{field} must be a bool, got {getattr(settings, field)!r}")
  validation.check_in(settings.precond_form, f"{name}.precond_form", ("woodbury", "orthogonal"))
  validation.check_in(settings.grad_estimator, f"{name}.grad_estimator", GRAD_ESTIMATORS)
  validation.check_in(settings.auto_method, f"{name}.auto_method", AUTO_METHODS)
  return settings


def _convergence_message(info: MLLInfo, context: str, cholesky: bool = False) -> str | None:
  """The (single) problem report of ``info``, or ``None`` if it converged to a finite value."""
  converged = np.asarray(info.converged)
  if bool(np.all(converged)):
    return None
  residual = float(np.nanmax(np.asarray(info.max_rel_residual, np.float64))) \
      if np.any(np.isfinite(np.asarray(info.max_rel_residual))) else float("nan")
  iters = int(np.max(np.asarray(info.num_iters)))
  if cholesky:
    return (f"{context}: the likelihood is not finite (relative residual nan after 0 "
            "iterations): the Cholesky factorisation of K̂ failed; K̂ is not positive definite in "
            "this precision (raise the noise, add jitter, or use float64)")
  return (f"{context}: mBCG did not converge or the likelihood is not finite: relative residual "
          f"{residual:.3g} after {iters} iterations; the kernel matrix is ill-conditioned or the "
          "hyperparameters are extreme (raise the noise, add jitter, raise max_cg_iters, or use "
          "float64)")


def report_convergence(info: MLLInfo, *, strict: bool = False, context: str = "mll",
                       cholesky: bool = False) -> MLLInfo:
  """Warns once (or raises if ``strict``) on the host when ``info`` did not converge.

  Args:
    info: an :class:`MLLInfo` with concrete values (possibly batched over steps).
    strict: raise :class:`ConvergenceError` instead of warning.
    context: the function named in the message.
    cholesky: ``info`` comes from the Cholesky path (no CG ran; only finiteness is reported).

  Returns:
    ``info`` unchanged.
  """
  msg = _convergence_message(info, context, cholesky)
  if msg is not None:
    if strict:
      raise ConvergenceError(msg)
    warnings.warn(msg, ConvergenceWarning, stacklevel=3)
  return info


def slq_logdet(alpha, beta, steps, weights) -> jax.Array:
  """Stochastic Lanczos quadrature from mBCG coefficients.

  Args:
    alpha, beta: ``(m, t)`` CG coefficients of the probe columns.
    steps: ``(t,)`` valid steps per column.
    weights: ``(t,)`` ``z_iᵀ P̂⁻¹ z_i`` (squared norm of each Lanczos start vector).

  Returns:
    ``(1/t) Σ_i w_i e₁ᵀ log(T_i) e₁``, an unbiased-in-the-limit estimate of ``log|P̂⁻¹ K̂|``.
  """
  return jnp.mean(slq_terms(alpha, beta, steps, weights))


def slq_terms(alpha, beta, steps, weights) -> jax.Array:
  """The per-probe quadratures ``w_i e₁ᵀ log(T_i) e₁`` (``(t,)``) whose mean is :func:`slq_logdet`.

  Their standard deviation over ``√t`` is the log-det estimate's standard error.
  """
  tri = cg_lib.cg_tridiagonals(alpha, beta, steps)
  validation.check_array(weights, "weights", shape=(alpha.shape[1],), dtype_kind="f")
  evals, evecs = jnp.linalg.eigh(tri)
  evals = jnp.maximum(evals, jnp.finfo(evals.dtype).tiny)
  quad = jnp.sum(evecs[:, 0, :] ** 2 * jnp.log(evals), -1)
  return weights * quad


def build_preconditioner(operator, state, settings: Settings, n: int) -> precond_lib.Preconditioner:
  """Pivoted-Cholesky preconditioner of the operator's kernel part (no gradient flows)."""
  return _build_preconditioner(operator, state, settings, n)[0]


def _build_preconditioner(operator, state, settings, n):
  rank = settings.precond_rank if n >= settings.min_precond_size else 0
  state = jax.lax.stop_gradient(state)
  noise = state.noise
  lmat, pivots = precond_lib.pivoted_cholesky(operator.kernel_diag(state),
                                              lambda i: operator.kernel_row(state, i), rank)
  pre = precond_lib.make_preconditioner(lmat, noise,
                                        orthogonal=settings.precond_form == "orthogonal")
  return pre, pivots


_PIVOT_FLOOR = 1e3  # pivots below 1e3·eps·(largest pivot) get no derivative (see _tangent_factor)


def _tangent_factor(operator, state, lmat0, pivots):
  """The pivoted-Cholesky factor as a function of ``state``, pivots fixed: value ``lmat0``.

  With pivots ``π`` the factor is ``L = K[:, π] C⁻ᵀ``, ``C = L[π, :]`` (lower triangular,
  ``C Cᵀ = K[π, π]``), so ``dC = C Φ(C⁻¹ dK[π, π] C⁻ᵀ)`` (``Φ``: lower triangle, half diagonal)
  and ``dL = (dK[:, π] − L dCᵀ) C⁻ᵀ``. The returned array is ``lmat0 + (ℓ − stop_gradient(ℓ))``
  for that linear ``ℓ(K[:, π])``: exactly the forward factor, with the exact derivative, and no
  refactorisation (no ill-conditioned Cholesky of ``K[π, π]``) and no reverse pass through the
  ``k`` pivoting steps. Columns the factorisation left zero (it stopped early) stay zero.
  """
  lmat0 = jax.lax.stop_gradient(lmat0)
  k = lmat0.shape[1]
  c0 = jnp.tril(lmat0[pivots, :])
  # A column whose pivot (the remaining diagonal d_j = C_jj²) is within rounding of the largest
  # kernel diagonal has no meaningful derivative in this precision (float32 reaches that long
  # before the factorisation's 1e-10 stop); it gets none. The estimator stays unbiased for any
  # tangent dL, as the same dP̂ enters ∂log|P̂| and its subtracted probe estimate; a noisy dL
  # would only add variance.
  piv2 = jnp.diag(c0) ** 2
  floor = _PIVOT_FLOOR * jnp.finfo(lmat0.dtype).eps * jnp.max(piv2)
  valid = pivot_mask(lmat0) & (piv2 > floor)
  vf = valid.astype(lmat0.dtype)
  eye = jnp.eye(k, dtype=lmat0.dtype)
  c0 = c0 * (vf[:, None] * vf[None, :]) + eye * (1.0 - vf)
  kcols = jax.vmap(lambda i: operator.kernel_row(state, i))(pivots).T * vf[None, :]  # (n, k)
  kpp = kcols[pivots, :] * vf[:, None]
  tri = functools.partial(jax.scipy.linalg.solve_triangular, lower=True)
  m = tri(c0, tri(c0, kpp).T).T  # C⁻¹ K[π, π] C⁻ᵀ
  phi = jnp.tril(m) - 0.5 * jnp.diag(jnp.diag(m))
  dc = c0 @ phi
  lin = tri(c0, (kcols - lmat0 @ dc.T).T).T
  return lmat0 + (lin - jax.lax.stop_gradient(lin))


def _precond_terms(operator, state, lmat0, pivots, pz):
  """``−½ log|P̂| + (1/2t) Σ_i (P̂⁻¹z_i)ᵀ P̂ (P̂⁻¹z_i)`` as a function of ``state`` (for its VJP)."""
  t = pz.shape[1]
  n, k = lmat0.shape
  noise = state.noise
  if k == 0:
    logdet = n * jnp.log(noise)
    quad = noise * jnp.sum(pz * pz)
  else:
    lmat = _tangent_factor(operator, state, lmat0, pivots)
    inner = noise * jnp.eye(k, dtype=lmat.dtype) + lmat.T @ lmat
    logdet = (n - k) * jnp.log(noise) + 2.0 * jnp.sum(jnp.log(jnp.diag(jnp.linalg.cholesky(inner))))
    lp = lmat.T @ pz
    quad = jnp.sum(lp * lp) + noise * jnp.sum(pz * pz)
  return -0.5 * logdet + (0.5 / t) * quad


def _zeros_cotangent(tree):
  def z(a):
    if jnp.issubdtype(a.dtype, jnp.inexact):
      return jnp.zeros_like(a)
    return np.zeros(a.shape, dtype=jax.dtypes.float0)
  return jax.tree.map(z, tree)


def pivot_mask(lmat: jax.Array) -> jax.Array:
  """``(k,)`` which pivots of a pivoted-Cholesky factor are real: its nonzero columns (the
  factorisation leaves the columns after an early stop zero, and their pivot indices repeat)."""
  return jnp.any(lmat != 0, axis=0)


def deflate_probes(pre: precond_lib.Preconditioner, pivots: jax.Array, z: jax.Array,
                   kpp: jax.Array | None = None) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Probes ``z ~ N(0, P̂)`` projected off the ``k`` pivot directions, where ``P̂⁻¹K̂`` is exact.

  The pivoted-Cholesky factor reproduces the pivot rows, ``(L Lᵀ)[π, :] = K[π, :]``, so
  ``K̂ e_i = P̂ e_i`` for every pivot ``i`` and ``A = P̂^{-½} K̂ P̂^{-½}`` is the identity on
  ``W₀ = P̂^{½} E_π``. ``A`` is symmetric, so the complement ``W₀^⊥`` is invariant too, and
  with ``Π`` its orthogonal projector::

    log|K̂| = log|P̂| + tr(Π log A Π)                     (log A = 0 on W₀)
    tr(K̂⁻¹ ∂K̂) = tr((I − Π) M) + tr(Π A⁻¹ Π M Π) ,    M = P̂^{-½} ∂K̂ P̂^{-½}
               = ∂ log|K̂_ππ| (pivots fixed) + tr(Π A⁻¹ Π M Π) ,

  since ``E_πᵀ P̂ E_π = K̂_ππ``. The first terms are exact (a ``k × k`` block); only the second
  needs probes, and a probe ``w ~ N(0, I)`` in ``A``'s space becomes ``Π w``, in ``z = P̂^{½} w``
  terms ``z̃ = z − P̂ E_π K̂_ππ⁻¹ z_π`` (no square root of ``P̂``): its pivot rows are 0 and
  ``E[z̃ᵀ P̂⁻¹ (·) P̂⁻¹ z̃]`` is the trace over ``W₀^⊥``. The probes then carry only the spread of
  the ``n − k`` eigenvalues the preconditioner did not capture, not the gap between those and
  the ``k`` unit ones. Pivots of columns the factorisation left zero are not deflated.

  Args:
    pre: the Woodbury or orthogonal preconditioner built from the factor.
    pivots: ``(k,)`` its pivot indices.
    z: ``(n, t)`` probes.
    kpp: optional ``(k, k)`` kernel block ``K[π, π]`` (noise excluded; see :func:`pivot_block`),
      which equals ``L[π] L[π]ᵀ``; else that product is formed.

  Returns:
    ``(z̃, P̂⁻¹z̃, m)``: the projected probes, their preconditioned form and ``m = n − k_valid``,
    the dimension of ``W₀^⊥`` (the ``E[z̃ᵀP̂⁻¹z̃]`` of a spherical probe).
  """
  lmat, noise = pre.lmat, pre.noise
  n, k = lmat.shape
  vf = pivot_mask(lmat).astype(z.dtype)
  lp = lmat[pivots, :]
  vv = vf[:, None] * vf[None, :]
  eye = jnp.eye(k, dtype=z.dtype)
  kpp = lp @ lp.T if kpp is None else kpp
  gram = (kpp + noise * eye) * vv + eye * (1.0 - vv)  # K̂_ππ on the real pivots
  c = jax.scipy.linalg.cho_solve((jnp.linalg.cholesky(gram), True), z[pivots, :] * vf[:, None])
  c = c * vf[:, None]
  ec = jnp.zeros_like(z).at[pivots, :].add(c)
  z = z - lmat @ (lp.T @ c) - noise * ec
  return z, pre.solve(z), n - jnp.sum(vf)


def pivot_block(operator, state, pivots: jax.Array) -> jax.Array:
  """The kernel part ``K[π, π]`` of ``K̂`` at the pivots (the operator's ``kernel_block`` where it
  has one, ``O(k² d)``; else ``k`` of its rows)."""
  block = getattr(operator, "kernel_block", None)
  if block is not None:
    return block(state, pivots)
  return jax.vmap(lambda i: operator.kernel_row(state, i))(pivots)[:, pivots]


def pivot_logdet(operator, state, pivots: jax.Array, valid: jax.Array) -> jax.Array:
  """``log|K̂_ππ|`` of the real pivots' block (``valid``), differentiable in ``state``: the exact
  part of :func:`deflate_probes`' log-det, whose derivative is ``tr((I − Π) M)``."""
  k = pivots.shape[0]
  kpp = pivot_block(operator, state, pivots)
  vv = (valid[:, None] & valid[None, :]).astype(kpp.dtype)
  eye = jnp.eye(k, dtype=kpp.dtype)
  block = (kpp + state.noise * eye) * vv + eye * (1.0 - vv)
  return 2.0 * jnp.sum(jnp.log(jnp.diag(jnp.linalg.cholesky(block))))


def _deflates(settings, pre) -> bool:
  return (settings.deflate_pivots and settings.grad_estimator == "standard"
          and pre.lmat.shape[1] > 0)


def _forward(operator, settings, params, x, r, eps_low, eps_noise):
  n = r.shape[0]
  state = operator.prepare(params, x)
  pre, pivots = _build_preconditioner(operator, state, settings, n)
  z = pre.sample(eps_low, eps_noise)
  valid = None
  if _deflates(settings, pre):
    valid = pivot_mask(pre.lmat)
    kpp = pivot_block(operator, jax.lax.stop_gradient(state), pivots)
    z, pz, dim = deflate_probes(pre, pivots, z, kpp)
  else:
    pz, dim = pre.solve(z), n
  if settings.spherical_probes:
    # Rescale each probe so that zᵀ P̂⁻¹ z = dim (n, or n − k deflated): P̂^{-½} z is then uniform
    # on that sphere, still E[z zᵀ] = P̂ (or P̂^{½} Π P̂^{½}): both estimators stay unbiased,
    # without the χ² norm noise. No complement left (a full, exact factor): the probes are 0.
    zpz = jnp.sum(z * pz, 0)
    scale = jnp.where(zpz > 0, jnp.sqrt(dim / jnp.where(zpz > 0, zpz, 1.0)), 0.0)
    z, pz = z * scale, pz * scale
  rhs = jnp.concatenate([r[:, None], z], 1)
  res = cg_lib.mbcg(lambda v: operator.matmul(state, v), rhs, precond=pre.solve,
                    tol=settings.cg_tol, max_iters=settings.max_cg_iters,
                    num_lanczos=settings.num_lanczos,
                    min_iters=min(settings.min_lanczos, settings.num_lanczos))
  sol = res.solution
  u = sol[:, 0]
  weights = jnp.sum(z * pz, 0)
  slq_probe = slq_terms(res.alpha[:, 1:], res.beta[:, 1:], res.lanczos_steps[1:], weights)
  if valid is not None:  # a zero probe (no complement left) adds 0, never 0 · log(0)
    slq_probe = jnp.where(weights > 0, slq_probe, 0.0)
  logdet = pre.logdet() + jnp.mean(slq_probe)
  data_fit = jnp.dot(r, u)
  value = -0.5 * data_fit - 0.5 * logdet - 0.5 * n * math.log(2 * math.pi)
  # A non-finite product (e.g. an infinite kernel scale) freezes CG with a finite but meaningless
  # iterate; mbcg then reports a NaN residual, and the value must be NaN, never finite and wrong.
  finite = jnp.all(jnp.isfinite(res.rel_residual)) & jnp.isfinite(value)
  value = jnp.where(finite, value, jnp.nan)
  info = MLLInfo(converged=jnp.all(res.converged) & finite, num_iters=jnp.max(res.num_iters),
                 max_rel_residual=jnp.max(res.rel_residual), logdet=logdet, data_fit=data_fit)
  cv = None
  if settings.grad_estimator == "control_variate":
    # The control variate's matrix C = P̂_c⁻¹ from the leading cv_rank pivots of the same factor.
    k = pre.lmat.shape[1]
    cpre = pre if settings.cv_rank >= k else precond_lib.make_preconditioner(
        pre.lmat[:, :settings.cv_rank], pre.noise,
        orthogonal=settings.precond_form == "orthogonal")
    cv = (cpre.solve(z), cpre.trace_factors())
  return value, info, (u, sol[:, 1:], pz, pre, pivots, cv, slq_probe, valid)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _bbmm_core(operator, settings, params, x, r, eps_low, eps_noise):
  value, info, _ = _forward(operator, settings, params, x, r, eps_low, eps_noise)
  return value, info


def _core_fwd(operator, settings, params, x, r, eps_low, eps_noise):
  value, info, (u, kinv_z, pz, pre, pivots, cv, _, valid) = _forward(
      operator, settings, params, x, r, eps_low, eps_noise)
  lmat = pre.lmat if settings.grad_estimator == "variance_reduced" else None
  if lmat is None and valid is None:
    pivots = None
  return (value, info), (params, x, r, eps_low, eps_noise, u, kinv_z, pz, lmat, pivots, cv,
                         valid)


def _core_bwd(operator, settings, res, cot):
  params, x, r, eps_low, eps_noise, u, kinv_z, pz, lmat, pivots, cv, valid = res
  g = cot[0]
  t = kinv_z.shape[1]
  a = jnp.concatenate([0.5 * u[:, None], (-0.5 / t) * kinv_z], 1)
  b = jnp.concatenate([u[:, None], pz], 1)

  def quad(p, xx):
    state = operator.prepare(p, xx)
    out = jnp.sum(a * operator.matmul(state, b))
    if lmat is not None:
      # Variance reduction: ∂log|P̂| exactly, minus its own trace estimate with the same probes.
      out = out + _precond_terms(operator, state, lmat, pivots, pz)
    if valid is not None:
      # Deflated probes: the pivot block's share of −½ tr(K̂⁻¹∂K̂) exactly.
      out = out - 0.5 * pivot_logdet(operator, state, pivots, valid)
    return out

  # Inputs enter K̂ exactly like hyperparameters, so the same trace estimator gives ∂/∂X (deep
  # kernel learning: X is the output of a network).
  grad_params, grad_x = jax.vjp(quad, params, x)[1](g)
  if cv is not None:
    corr = _control_variate_correction(operator, params, x, kinv_z, pz, *cv)
    grad_params = jax.tree.map(lambda gp, c: gp + g * c, grad_params, corr)
  return (grad_params, grad_x, -g * u, _zeros_cotangent(eps_low),
          _zeros_cotangent(eps_noise))


CV_MAX_PARAMS = 64  # the control variate's coefficients cost one JVP per hyperparameter


def _control_variate_correction(operator, params, x, kinv_z, pz, cz, trace):
  """``½ β_j (c̄_j − tr(C ∂_j K̂))`` per hyperparameter ``j``: added to the standard gradient.

  ``C = P̂_c⁻¹`` is the inverse of the preconditioner built from the leading ``cv_rank`` pivots
  (all of them when ``cv_rank ≥ k``; then ``C = P̂⁻¹``). Per probe ``i`` the standard term is
  ``s_ij = (K̂⁻¹z_i)ᵀ ∂_jK̂ (P̂⁻¹z_i)`` and the control variate ``c_ij = (C z_i)ᵀ ∂_jK̂ (P̂⁻¹z_i)``,
  whose mean ``tr(C ∂_jK̂)`` (``E[z zᵀ] = P̂``) is computed exactly: one product with ``C``'s
  ``cv_rank`` trace columns. ``s̄_j − β_j (c̄_j − tr(C ∂_jK̂))`` estimates ``tr(K̂⁻¹ ∂_jK̂)`` for any
  fixed ``β_j``; ``β_j = Cov(s_j, c_j) / Var(c_j)`` over the probes (clipped to [0, 1]) minimises
  its variance. It is near 1 where ``C ≈ K̂⁻¹`` on what ``∂_jK̂`` touches (the captured part
  leaves no noise) and near 0 where ``C`` is a poor stand-in for ``K̂⁻¹`` (the plain control
  variate would add noise there); estimated from the same probes, it biases the gradient by
  ``O(1/t)`` of its standard deviation. ``s_ij`` and ``c_ij`` come from one JVP per
  hyperparameter element; with more than :data:`CV_MAX_PARAMS` elements (inducing points,
  per-point noise) ``β = 0``: the standard estimator.
  """
  flat, unravel = jax.flatten_util.ravel_pytree(params)
  if flat.shape[0] > CV_MAX_PARAMS or not jnp.issubdtype(flat.dtype, jnp.floating):
    return jax.tree.map(jnp.zeros_like, params)
  s, c = _probe_jacobian(operator, unravel, flat, x, kinv_z, pz, cz)
  beta, exact = _cv_coefficients(operator, unravel, flat, x, s, c, trace)
  return unravel(0.5 * beta * (jnp.mean(c, 0) - exact))


def _probe_jacobian(operator, unravel, flat, x, kinv_z, pz, cz):
  """``s_ij = (K̂⁻¹z_i)ᵀ ∂_jK̂ (P̂⁻¹z_i)`` and ``c_ij = (C z_i)ᵀ ∂_jK̂ (P̂⁻¹z_i)``: ``(t, P)`` each,
  one JVP of the operator's product per element ``j`` of the flattened hyperparameters."""
  def probe_terms(f):
    m = operator.matmul(operator.prepare(unravel(f), x), pz)
    return jnp.stack([jnp.sum(kinv_z * m, 0), jnp.sum(cz * m, 0)])

  # One tangent at a time (linearised once): ``jax.jacfwd`` would hold every element's n × n
  # tangent of K̂ and its intermediates at once (5.3 GB at n = 5,000, 11 elements; 1.2 GB so).
  _, lin = jax.linearize(probe_terms, flat)
  jac = jax.lax.map(lin, jnp.eye(flat.shape[0], dtype=flat.dtype))  # (P, 2, t)
  return jac[:, 0].T, jac[:, 1].T


def _cv_coefficients(operator, unravel, flat, x, s, c, trace):
  """``(β, tr(C ∂K̂))`` per hyperparameter element: the probes' regression coefficient of ``s``
  on ``c`` (clipped to [0, 1]) and the control variate's exact mean."""
  n = trace[1].shape[0]
  c_tr, a_tr, b_tr = trace

  def precond_trace(f):  # tr(C K̂(θ)), C fixed
    state = operator.prepare(unravel(f), x)
    tr_k = jnp.sum(operator.kernel_diag(state)) + n * state.noise
    return c_tr * tr_k + jnp.sum(a_tr * operator.matmul(state, b_tr))

  exact = jax.grad(precond_trace)(flat)
  sc, cc = s - jnp.mean(s, 0), c - jnp.mean(c, 0)
  var = jnp.sum(cc * cc, 0)
  beta = jnp.where(var > 0, jnp.sum(sc * cc, 0) / jnp.where(var > 0, var, 1.0), 0.0)
  return jnp.clip(beta, 0.0, 1.0), exact


class GradientSpread(NamedTuple):
  """A BBMM gradient with the standard error its own probes imply (see :func:`gradient_spread`).

  Attributes:
    grad: the probe estimate of ``∂ log p / ∂θ`` (a pytree like ``params``): the gradient
      ``jax.grad`` of :func:`bbmm_mll` gives at the same key and settings.
    std_error: its standard error per element, ``std_i(g_i) / √t`` over the ``t`` per-probe
      estimates ``g_i`` (same pytree).
    rel_std_error: ``‖|θ|·std_error‖ / ‖|θ|·grad‖``: the expected norm-wise relative error of
      one draw in the gradient w.r.t. ``log θ`` (scale-free: σ² = 0.01 does not weigh 100× in
      the norm; a zero mean drops out).
    num_probes: ``t``.
    value: the MLL :func:`bbmm_mll` returns at the same key.
    mll_std_error: its standard error, ``½ std_i(q_i) / √t`` over the per-probe log-det
      quadratures ``q_i`` (:func:`slq_terms`; the data-fit term is one solve, no probe noise).
    mll_rel_std_error: ``mll_std_error / |value|``.
  """

  grad: ops.GPParams
  std_error: ops.GPParams
  rel_std_error: jax.Array
  num_probes: int
  value: jax.Array
  mll_std_error: jax.Array
  mll_rel_std_error: jax.Array

  def probes_for(self, rel_tol: float) -> int:
    """Probes at which the gradient's relative standard error would be ``rel_tol`` (it falls as
    ``t^-½``)."""
    return _probes_for(self.num_probes, self.rel_std_error, rel_tol)

  def probes_for_mll(self, rel_tol: float) -> int:
    """Probes at which the MLL's relative standard error would be ``rel_tol``."""
    return _probes_for(self.num_probes, self.mll_rel_std_error, rel_tol)


def _probes_for(num_probes, rel_std_error, rel_tol) -> int:
  if isinstance(rel_tol, bool) or not (isinstance(rel_tol, (int, float)) and rel_tol > 0):
    raise ValueError(f"rel_tol must be a number > 0, got {rel_tol!r}")
  return int(math.ceil(num_probes * (float(rel_std_error) / rel_tol) ** 2))


def gradient_spread(key: jax.Array, operator, params: ops.GPParams, x, y: jax.Array,
                    settings: Settings = Settings(), *, zero_mean: bool = False
                    ) -> GradientSpread:
  """The BBMM gradient and its standard error, from the spread of its per-probe estimates.

  Each probe ``i`` gives its own estimate ``g_i = ½uᵀ∂K̂u − uᵀ∂r − ½ s_i`` (``"control_variate"``:
  ``− ½ (s_i − β (c_i − tr(C∂K̂)))``); their mean is the gradient :func:`bbmm_mll` returns at the
  same key, and ``std(g_i)/√t`` says how far one draw is from the exact gradient. That is what an
  adaptive probe count needs: :meth:`GradientSpread.probes_for` the count that would reach a
  target. Costs one JVP per hyperparameter element beyond the MLL itself.

  Raises:
    ValueError: for ``grad_estimator="variance_reduced"`` (its per-probe split is not formed), or
      hyperparameters with more than :data:`CV_MAX_PARAMS` elements.
  """
  check_inputs(operator, params, x, y, settings)
  problem = _spread_problem(params, settings)
  if problem is not None:
    raise ValueError(problem)
  key = jax.random.key(key) if isinstance(key, int) else key
  grad, se, rel, value, mll_se = _gradient_spread_jit(operator, settings, zero_mean, key, params,
                                                      x, y)
  return GradientSpread(grad, se, rel, settings.num_probes, value, mll_se,
                        mll_se / jnp.abs(value))


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _gradient_spread_jit(operator, settings, zero_mean, key, params, x, y):
  eps_low, eps_noise = _probe_noise(settings, key, y)  # the probes of bbmm_mll at this key
  flat, unravel = jax.flatten_util.ravel_pytree(params)
  r = _mean_residual(params, y, zero_mean)
  value, _, (u, kinv_z, pz, _, pivots, cv, slq_probe, valid) = _forward(
      operator, settings, params, x, r, eps_low, eps_noise)
  value = value + operator.trace_term(operator.prepare(params, x))
  mll_se = 0.5 * jnp.std(slq_probe, ddof=1) / math.sqrt(slq_probe.shape[0])

  def data_terms(f):  # ½uᵀK̂u − uᵀr + the operator's trace term, u fixed
    p = unravel(f)
    state = operator.prepare(p, x)
    rr = _mean_residual(p, y, zero_mean)
    out = (0.5 * jnp.dot(u, operator.matmul(state, u[:, None])[:, 0]) - jnp.dot(u, rr)
           + operator.trace_term(state))
    if valid is not None:  # the exact pivot-block term of deflated probes (no probe noise)
      out = out - 0.5 * pivot_logdet(operator, state, pivots, valid)
    return out

  fit = jax.grad(data_terms)(flat)
  cz = pz if cv is None else cv[0]
  s, c = _probe_jacobian(operator, unravel, flat, x, kinv_z, pz, cz)
  if cv is not None:
    beta, exact = _cv_coefficients(operator, unravel, flat, x, s, c, cv[1])
    s = s - beta * (c - exact)
  grad, se, rel = _per_probe_summary(fit - 0.5 * s, flat)
  return unravel(grad), unravel(se), rel, value, mll_se


def _per_probe_summary(per_probe, flat):
  """Mean, standard error and norm-wise relative standard error (w.r.t. ``log θ``) of ``(t, P)``
  per-probe gradient estimates."""
  grad = jnp.mean(per_probe, 0)
  se = jnp.std(per_probe, 0, ddof=1) / math.sqrt(per_probe.shape[0])
  w = jnp.abs(flat)  # ∂/∂log θ = θ ∂/∂θ
  return grad, se, jnp.linalg.norm(w * se) / jnp.linalg.norm(w * grad)


_bbmm_core.defvjp(_core_fwd, _core_bwd)


def _mean_residual(params, y, zero_mean):
  return y - (0.0 if zero_mean else params.mean)


def bbmm_mll(key: jax.Array, operator, params: ops.GPParams, x, y: jax.Array,
             settings: Settings = Settings(), *, zero_mean: bool = False
             ) -> tuple[jax.Array, MLLInfo]:
  """Stochastic BBMM marginal log likelihood and diagnostics (differentiable in ``params``, ``x``).

  Args:
    key: PRNG key for the probes ``z ~ N(0, P̂)`` (same key ⇒ same value).
    operator: an operator from :mod:`jaxpapers.bbmm.operators` (exact, SGPR, SKI).
    params: :class:`~jaxpapers.bbmm.operators.GPParams`.
    x: ``(n, d)`` training inputs.
    y: ``(n,)`` targets.
    settings: :class:`Settings`.
    zero_mean: ignore ``params.mean`` (a zero-mean GP).

  Returns:
    ``(log p(y), MLLInfo)``. The gradients w.r.t. ``params`` and ``x`` use the trace estimator.
    ``info.converged`` is False whenever CG missed ``cg_tol`` or the value is not finite (a
    non-finite kernel product gives a NaN value, never a finite wrong one). Called eagerly, a
    non-converged evaluation warns (:class:`ConvergenceWarning`) or, with ``settings.strict``,
    raises :class:`ConvergenceError`; under ``jit`` ``strict`` turns it into a NaN value.
  """
  check_inputs(operator, params, x, y, settings)
  key = jax.random.key(key) if isinstance(key, int) else key
  value, info = _bbmm_mll_jit(operator, settings, zero_mean, key, params, x, y)
  chex.assert_shape([value, info.converged, info.max_rel_residual], ())
  if _concrete(info.converged):
    report_convergence(info, strict=settings.strict, context="bbmm_mll")
  return value, info


def _concrete(*arrays) -> bool:
  return all(validation.is_concrete(a) for a in arrays)


def _probe_noise(settings, key, y):
  """Standard normals ``(k, t)`` and ``(n, t)`` from which the probes ``z ~ N(0, P̂)`` are built."""
  n = y.shape[0]
  rank = min(settings.precond_rank if n >= settings.min_precond_size else 0, n)
  k1, k2 = jax.random.split(key)
  return (jax.random.normal(k1, (rank, settings.num_probes), y.dtype),
          jax.random.normal(k2, (n, settings.num_probes), y.dtype))


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _bbmm_mll_jit(operator, settings, zero_mean, key, params, x, y):
  eps_low, eps_noise = _probe_noise(settings, key, y)
  r = _mean_residual(params, y, zero_mean)
  value, info = _bbmm_core(operator, settings, params, x, r, eps_low, eps_noise)
  value = value + operator.trace_term(operator.prepare(params, x))
  info = info._replace(converged=info.converged & jnp.isfinite(value))
  if settings.strict:
    value = jnp.where(info.converged, value, jnp.nan)
  return value, info


def cholesky_mll(operator, params: ops.GPParams, x, y: jax.Array, *, zero_mean: bool = False
                 ) -> jax.Array:
  """Exact ``log p(y)`` by dense Cholesky of the operator's ``K̂``.

  Its derivative forms ``K̂⁻¹`` once from the factor (:mod:`~jaxpapers.bbmm.dense`, ``n³``
  flops) instead of differentiating through the solves; forward and reverse mode both work.

  A ``K̂`` that is not positive definite in the working precision gives NaN (never a finite
  value); :func:`mll` reports it as not converged.
  """
  check_inputs(operator, params, x, y, None)
  return _cholesky_mll_jit(operator, zero_mean, params, x, y)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _cholesky_mll_jit(operator, zero_mean, params, x, y):
  state = operator.prepare(params, x)
  r = _mean_residual(params, y, zero_mean)
  value = (dense.gaussian_logpdf_terms(operator.dense(state), r)
           - 0.5 * y.shape[0] * math.log(2 * math.pi))
  return value + operator.trace_term(state)


def cholesky_hutchinson_mll(key: jax.Array, operator, params: ops.GPParams, x, y: jax.Array,
                            settings: Settings = Settings(), *, zero_mean: bool = False
                            ) -> jax.Array:
  """Exact ``log p(y)`` by dense Cholesky, with an unbiased probed gradient (``n³/3`` flops).

  The value is :func:`cholesky_mll`'s. The gradient's trace term ``−½ tr(K̂⁻¹ ∂K̂)`` is
  estimated from ``settings.num_probes`` probes whitened by the Cholesky factor itself,
  ``w = L⁻ᵀ ε`` (:func:`~jaxpapers.bbmm.dense.hutchinson_logpdf_terms`), instead of formed
  exactly from ``K̂⁻¹`` (``n³`` more flops). Where BBMM needs many probes to bring the MLL
  within ``mll_rel_tol`` (an MLL small beside ``log|K̂|``), this meets the MLL target exactly and
  the gradient target with the probes only the gradient needs. ``key`` draws the spherical
  probes ``ε``. Differentiable in ``params`` and ``x`` (reverse mode). NaN where ``K̂`` is not
  positive definite in the working precision.
  """
  check_inputs(operator, params, x, y, settings)
  key = jax.random.key(key) if isinstance(key, int) else key
  return _hutchinson_mll_jit(operator, settings.num_probes, zero_mean, key, params, x, y)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _hutchinson_mll_jit(operator, num_probes, zero_mean, key, params, x, y):
  state = operator.prepare(params, x)
  r = _mean_residual(params, y, zero_mean)
  eps = dense.spherical_probes(key, y.shape[0], num_probes, y.dtype)
  value = (dense.hutchinson_logpdf_terms(operator, params, x, r, eps)
           - 0.5 * y.shape[0] * math.log(2 * math.pi))
  return value + operator.trace_term(state)


def hutchinson_spread(key: jax.Array, operator, params: ops.GPParams, x, y: jax.Array,
                      settings: Settings = Settings(), *, zero_mean: bool = False
                      ) -> GradientSpread:
  """:func:`cholesky_hutchinson_mll`'s gradient at ``key`` and its standard error.

  As :func:`gradient_spread`: each probe ``i`` gives ``g_i = ½αᵀ∂K̂α − αᵀ∂r − ½ w_iᵀ∂K̂w_i``
  (plus the operator's trace term); the gradient is their mean, its standard error
  ``std_i(g_i)/√t``. The MLL is exact: ``mll_std_error`` is 0. One JVP per hyperparameter
  element (at most :data:`CV_MAX_PARAMS`).
  """
  check_inputs(operator, params, x, y, settings)
  size = jax.flatten_util.ravel_pytree(params)[0].shape[0]
  if size > CV_MAX_PARAMS:
    raise ValueError(f"params has {size} elements; hutchinson_spread takes at most "
                     f"{CV_MAX_PARAMS} (one JVP each)")
  key = jax.random.key(key) if isinstance(key, int) else key
  grad, se, rel, value = _hutchinson_spread_jit(operator, settings.num_probes, zero_mean, key,
                                                params, x, y)
  zero = jnp.zeros((), value.dtype)
  return GradientSpread(grad, se, rel, settings.num_probes, value, zero, zero)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _hutchinson_spread_jit(operator, num_probes, zero_mean, key, params, x, y):
  flat, unravel = jax.flatten_util.ravel_pytree(params)
  r = _mean_residual(params, y, zero_mean)
  eps = dense.spherical_probes(key, y.shape[0], num_probes, y.dtype)
  value, alpha, w = dense._hutchinson_forward(operator, params, x, r, eps)
  state = operator.prepare(params, x)
  value = value - 0.5 * y.shape[0] * math.log(2 * math.pi) + operator.trace_term(state)

  def data_terms(f):  # ½αᵀK̂α − αᵀr + the operator's trace term, α fixed
    p = unravel(f)
    st = operator.prepare(p, x)
    rr = _mean_residual(p, y, zero_mean)
    return (0.5 * jnp.dot(alpha, operator.matmul(st, alpha[:, None])[:, 0]) - jnp.dot(alpha, rr)
            + operator.trace_term(st))

  fit = jax.grad(data_terms)(flat)
  s, _ = _probe_jacobian(operator, unravel, flat, x, w, w, w)
  grad, se, rel = _per_probe_summary(fit - 0.5 * s, flat)
  return unravel(grad), unravel(se), rel, value


METHODS = ("auto", "bbmm", "cholesky", "cholesky_hutchinson")


def mll(key: jax.Array, operator, params: ops.GPParams, x, y: jax.Array,
        settings: Settings = Settings(), *, method: str = "auto", zero_mean: bool = False
        ) -> tuple[jax.Array, MLLInfo]:
  """Marginal log likelihood by BBMM or (for small ``n``) exact Cholesky.

  Args:
    key: PRNG key (unused by the Cholesky path).
    operator, params, x, y, settings, zero_mean: as in :func:`bbmm_mll`.
    method: ``"bbmm"``, ``"cholesky"``, ``"cholesky_hutchinson"`` (exact value, probed
      gradient: :func:`cholesky_hutchinson_mll`) or ``"auto"``: Cholesky for ``n ≤
      settings.cholesky_size`` (GPyTorch's switch), above it the fastest of the three at the
      accuracy targets as measured once on this data shape (:func:`choose_method`;
      ``settings.auto_method``). Under ``jit`` nothing can be timed: ``"auto"`` is then
      Cholesky iff ``n ≤ settings.cholesky_size``, unless an eager call already chose for the
      shape.

  Returns:
    ``(value, MLLInfo)``. The two Cholesky paths report zero iterations, a zero residual and
    ``converged = isfinite(value)`` (a float32 Cholesky of a nearly singular ``K̂`` gives NaN).
    Eager calls warn once per call, or raise with ``settings.strict``, when not converged.
  """
  validation.check_in(method, "method", METHODS)
  check_inputs(operator, params, x, y, settings)
  if method == "auto":
    choice = choose_method(key, operator, params, x, y, settings, zero_mean=zero_mean)
    method, settings = choice.method, choice.settings_for(settings)
  if method in ("cholesky", "cholesky_hutchinson"):
    value = (cholesky_mll(operator, params, x, y, zero_mean=zero_mean) if method == "cholesky"
             else cholesky_hutchinson_mll(key, operator, params, x, y, settings,
                                          zero_mean=zero_mean))
    chex.assert_shape(value, ())
    nan = jnp.full((), jnp.nan, y.dtype)
    finite = jnp.isfinite(value)
    info = MLLInfo(finite, jnp.int32(0), jnp.where(finite, 0.0, jnp.nan).astype(y.dtype), nan,
                   nan)
    if _concrete(finite):
      report_convergence(info, strict=settings.strict, context="mll", cholesky=True)
    elif settings.strict:
      value = jnp.where(finite, value, jnp.nan)
    return value, info
  return bbmm_mll(key, operator, params, x, y, settings, zero_mean=zero_mean)


class MethodChoice(NamedTuple):
  """What ``method="auto"`` runs for one problem shape, and why.

  Attributes:
    method: ``"cholesky"``, ``"bbmm"`` or ``"cholesky_hutchinson"``.
    reason: ``"n <= cholesky_size"``, ``"measured"``, ``"n > measure_max"``, ``"threshold"``,
      ``"traced"`` (under ``jit``), ``"cholesky not finite"``, or ``"targets need more than
      max_probes"`` (BBMM cannot meet ``Settings.mll_rel_tol`` / ``grad_rel_tol`` within
      ``max_probes``).
    cholesky_seconds: measured seconds of one compiled Cholesky MLL + gradient (NaN if not
      measured).
    bbmm_seconds: the same for BBMM at ``num_probes`` probes where it was timed there, else at
      ``settings.num_probes`` (already slower than Cholesky there, or the adapted count was over
      ``max_probes``).
    num_probes: the probe count BBMM runs at (0: ``settings.num_probes``, not adapted).
    mll_rel_std_error: BBMM's MLL relative standard error at ``settings.num_probes`` (NaN if
      not measured; :class:`GradientSpread`).
    grad_rel_std_error: BBMM's gradient's, likewise.
    hutchinson_seconds: one MLL + gradient of :func:`cholesky_hutchinson_mll` at
      ``hutchinson_probes`` (NaN if not timed).
    hutchinson_probes: the probes its gradient needs for ``grad_rel_tol`` (its MLL is exact).
    hutchinson_grad_rel_std_error: its gradient's relative standard error at
      ``settings.num_probes``.
  """

  method: str
  reason: str
  cholesky_seconds: float = float("nan")
  bbmm_seconds: float = float("nan")
  num_probes: int = 0
  mll_rel_std_error: float = float("nan")
  grad_rel_std_error: float = float("nan")
  hutchinson_seconds: float = float("nan")
  hutchinson_probes: int = 0
  hutchinson_grad_rel_std_error: float = float("nan")

  def settings_for(self, settings: Settings) -> Settings:
    """``settings`` with the chosen method's probe count (unchanged where it was not
    adapted)."""
    probes = self.hutchinson_probes if self.method == "cholesky_hutchinson" else self.num_probes
    return settings._replace(num_probes=probes) if probes else settings


# The standard errors that size the adaptive count come from the probes of one evaluation: with
# t = 30 probes their own relative uncertainty is ≈ 1/√(2(t − 1)) ≈ 13 %. The count is scaled by
# this factor (1.12² ≈ 1.25) so that an underestimate by that much still meets the target.
PROBE_SAFETY = 1.25


def adaptive_probe_count(spread: GradientSpread, settings: Settings) -> int:
  """Probes that bring the MLL's and the gradient's relative standard errors to
  ``settings.mll_rel_tol`` / ``grad_rel_tol``, times :data:`PROBE_SAFETY`, never fewer than
  ``settings.min_probes`` (``None``: ``num_probes``, so by default the count only rises);
  ``settings.max_probes + 1`` where that exceeds the cap or a spread is not finite."""
  rels = (float(spread.mll_rel_std_error), float(spread.rel_std_error))
  if not all(math.isfinite(r) for r in rels):
    return settings.max_probes + 1
  wanted = max(spread.probes_for_mll(settings.mll_rel_tol),
               spread.probes_for(settings.grad_rel_tol))
  floor = settings.num_probes if settings.min_probes is None else settings.min_probes
  wanted = max(floor, int(math.ceil(PROBE_SAFETY * wanted)))
  return wanted if wanted <= settings.max_probes else settings.max_probes + 1


_CHOICES: dict = {}


def _time_value_and_grad(fn, *args):
  out = jax.block_until_ready(fn(*args))  # compiles
  t0 = time.perf_counter()
  jax.block_until_ready(fn(*args))
  return time.perf_counter() - t0, out


def choose_method(key: jax.Array, operator, params: ops.GPParams, x, y: jax.Array,
                  settings: Settings = Settings(), *, zero_mean: bool = False,
                  cache: bool = True) -> MethodChoice:
  """The solver ``method="auto"`` uses: a cost model measured on the caller's own problem.

  Dense Cholesky is exact and, up to some ``n`` that depends on the machine, the dimension, the
  kernel and the dtype, also faster than BBMM (2 CPU cores, float32, d = 8, RBF, our defaults:
  Cholesky 0.25 s vs BBMM 0.32 s per MLL + gradient at n = 2,000, 1.30 vs 0.64 s at n = 4,000;
  GPyTorch switches at a fixed n = 800). So for ``cholesky_size < n ≤ settings.measure_max``
  the first eager call per problem shape compiles both and times one MLL + gradient of each
  on ``(params, x, y)``, then keeps the faster — Cholesky only if its value is finite (a float32
  Cholesky of a nearly singular ``K̂`` is NaN). The result is cached per process under
  (operator, settings, shapes, dtype, backend), so later calls (every ``fit`` step) cost
  nothing; the measurement costs two compilations and two evaluations of each method.
  ``Settings(auto_method="threshold")`` or a larger ``cholesky_size`` override it.

  With ``settings.adaptive_probes`` (the default) the comparison is made at equal accuracy:
  :func:`gradient_spread` at the caller's hyperparameters gives the MLL's and the gradient's
  relative standard errors at ``num_probes``; :func:`adaptive_probe_count` the count that meets
  ``mll_rel_tol`` (0.5 %) and ``grad_rel_tol`` (1 %); BBMM is timed at that count (unless it
  was already slower than Cholesky at the default count), and Cholesky is run where BBMM would
  need more than ``max_probes``. Where the probes of one evaluation beat the targets the count
  stays (or, with a ``min_probes`` below ``num_probes``, falls to what they need, not below that
  floor, and BBMM is timed there). The spread costs one more compilation and one JVP per
  hyperparameter element (at most :data:`CV_MAX_PARAMS`; more, or the
  ``"variance_reduced"`` estimator, skip the adaptation).

  Where Cholesky is finite, a third candidate is timed too: :func:`cholesky_hutchinson_mll`
  (the exact value, the gradient's trace term from probes whitened by the Cholesky factor) at
  the probe count its own spread needs for ``grad_rel_tol`` (:func:`hutchinson_spread`; its MLL
  needs none). It runs where it is the fastest: an MLL that is small beside ``log|K̂|`` makes
  BBMM's count large but costs this one nothing (synthetic 5k Matérn-5/2, σ² = 0.01, one core:
  BBMM needed 158 probes, 3.6 s; this 30, 1.0 s; exact Cholesky with its ``K̂⁻¹`` 2.3 s).

  The cache is keyed by shapes, not values: the probe count adapted to the first data and
  hyperparameters of a shape is reused for others of that shape (an eager training loop does
  not re-measure each step). Pass ``cache=False`` to measure afresh for new data. Traced calls
  (under ``jit`` or ``jax.grad``) cannot measure, but do use a choice an eager call already made
  for the shape; without one they run BBMM at ``settings.num_probes``.

  Args:
    key: PRNG key of BBMM's probes for the timed call.
    operator, params, x, y, settings, zero_mean: as in :func:`mll`.
    cache: read and store the per-process cache (``False``: measure, and keep nothing).

  Returns:
    A :class:`MethodChoice`.
  """
  check_inputs(operator, params, x, y, settings)
  key = jax.random.key(key) if isinstance(key, int) else key
  n = y.shape[0]
  if n <= settings.cholesky_size:
    return MethodChoice("cholesky", "n <= cholesky_size")
  if settings.auto_method == "threshold":
    return MethodChoice("bbmm", "threshold")
  if n > settings.measure_max:
    return MethodChoice("bbmm", "n > measure_max")
  cache_key = (operator, settings, bool(zero_mean), jax.default_backend(), jnp.dtype(y.dtype).name,
               jax.tree.structure(params),
               tuple(tuple(np.shape(a)) for a in jax.tree.leaves((params, x, y))))
  if cache and cache_key in _CHOICES:  # shapes only: also under jit / grad
    return _CHOICES[cache_key]
  if not _concrete(key, x, y, *jax.tree.leaves(params)):
    return MethodChoice("bbmm", "traced")
  # Data are arguments, not closed-over constants baked into the two compiled programs.
  f_chol = jax.jit(jax.value_and_grad(
      lambda p, x_, y_: _cholesky_mll_jit(operator, zero_mean, p, x_, y_)))
  f_bbmm = jax.jit(jax.value_and_grad(
      lambda p, x_, y_: _bbmm_mll_jit(operator, settings, zero_mean, key, p, x_, y_)[0]))
  t_chol, (v_chol, _) = _time_value_and_grad(f_chol, params, x, y)
  t_bbmm, _ = _time_value_and_grad(f_bbmm, params, x, y)
  chol_ok = bool(jnp.isfinite(v_chol))
  if not chol_ok:
    choice = MethodChoice("bbmm", "cholesky not finite", t_chol, t_bbmm)
  else:
    choice = MethodChoice("cholesky" if t_chol <= t_bbmm else "bbmm", "measured", t_chol, t_bbmm)
  # The Cholesky value with a probed gradient, timed at its own count (finite iff Cholesky is).
  hutch = (_time_hutchinson(key, operator, params, x, y, settings, zero_mean) if chol_ok
           else {})
  choice = choice._replace(**hutch)
  # The fastest method that meets the targets without BBMM (inf: none).
  rival = min(t_chol, hutch.get("hutchinson_seconds", math.inf)) if chol_ok else math.inf
  if settings.adaptive_probes and _spread_problem(params, settings) is None:
    spread = gradient_spread(key, operator, params, x, y, settings, zero_mean=zero_mean)
    want = adaptive_probe_count(spread, settings)
    rel = dict(mll_rel_std_error=float(spread.mll_rel_std_error),
               grad_rel_std_error=float(spread.rel_std_error))
    if want > settings.max_probes:
      # Not reachable by BBMM within the cap: exact Cholesky where it is finite, else BBMM at
      # the cap (the best it can do; the standard errors say how far off it is).
      choice = (choice._replace(method="cholesky", reason="targets need more than max_probes",
                                **rel) if chol_ok else
                choice._replace(num_probes=settings.max_probes, **rel))
    elif want != settings.num_probes:
      # More probes can only cost more: where BBMM at the default count already loses to a
      # method that meets the targets, it loses at ``want``. Otherwise (or at fewer probes) it
      # is timed at ``want`` (its cost is the preconditioner plus mBCG on t + 1 columns, far
      # from proportional to t: not worth modelling).
      if want > settings.num_probes and t_bbmm >= rival:
        choice = choice._replace(num_probes=want, **rel)
      else:
        wider = settings._replace(num_probes=want)
        f_wide = jax.jit(jax.value_and_grad(
            lambda p, x_, y_: _bbmm_mll_jit(operator, wider, zero_mean, key, p, x_, y_)[0]))
        t_wide, _ = _time_value_and_grad(f_wide, params, x, y)
        method = "cholesky" if chol_ok and t_chol <= t_wide else "bbmm"
        choice = choice._replace(method=method, bbmm_seconds=t_wide, num_probes=want, **rel)
    else:
      choice = choice._replace(num_probes=settings.num_probes, **rel)
  best = choice.cholesky_seconds if choice.method == "cholesky" else choice.bbmm_seconds
  if chol_ok and choice.hutchinson_seconds < best:
    choice = choice._replace(method="cholesky_hutchinson")
  if cache:
    _CHOICES[cache_key] = choice
  return choice


def _time_hutchinson(key, operator, params, x, y, settings, zero_mean) -> dict:
  """:func:`cholesky_hutchinson_mll` at the probe count its gradient needs for ``grad_rel_tol``
  (:func:`hutchinson_spread`; its MLL is exact), timed there: ``MethodChoice`` fields (no
  ``hutchinson_seconds`` where the count exceeds ``max_probes`` or the spread is not finite)."""
  probes, rel = settings.num_probes, float("nan")
  size = jax.flatten_util.ravel_pytree(params)[0].shape[0]
  if settings.adaptive_probes and size <= CV_MAX_PARAMS:
    spread = hutchinson_spread(key, operator, params, x, y, settings, zero_mean=zero_mean)
    rel = float(spread.rel_std_error)
    if not math.isfinite(rel):
      return {"hutchinson_grad_rel_std_error": rel}
    floor = settings.num_probes if settings.min_probes is None else settings.min_probes
    probes = max(floor, int(math.ceil(PROBE_SAFETY * spread.probes_for(settings.grad_rel_tol))))
    if probes > settings.max_probes:
      return {"hutchinson_probes": probes, "hutchinson_grad_rel_std_error": rel}
  f_h = jax.jit(jax.value_and_grad(
      lambda p, x_, y_: _hutchinson_mll_jit(operator, probes, zero_mean, key, p, x_, y_)))
  t_h, _ = _time_value_and_grad(f_h, params, x, y)
  return {"hutchinson_seconds": t_h, "hutchinson_probes": probes,
          "hutchinson_grad_rel_std_error": rel}


def _spread_problem(params, settings) -> str | None:
  """Why :func:`gradient_spread` cannot split this gradient (estimator or parameter count), or
  ``None`` where it can."""
  if settings.grad_estimator == "variance_reduced":
    return ("settings.grad_estimator must be 'standard' or 'control_variate' for "
            "gradient_spread, got 'variance_reduced'")
  size = jax.flatten_util.ravel_pytree(params)[0].shape[0]
  if size > CV_MAX_PARAMS:
    return (f"params has {size} elements; gradient_spread takes at most {CV_MAX_PARAMS} (one "
            f"JVP each)")
  return None


def check_converged(info: MLLInfo) -> MLLInfo:
  """Raises :class:`ConvergenceError` (on the host) if the mBCG solve did not converge."""
  msg = _convergence_message(info, "check_converged")
  if msg is not None:
    raise ConvergenceError(msg)
  return info


def check_inputs(operator, params, x, y, settings=None):
  """Validates GP data, (operator-specific) kernel parameters and, if given, :class:`Settings`.

  An operator with its own ``check_inputs(params, x, y)`` method (per-point noise, multitask)
  validates its data and parameters itself.
  """
  custom = getattr(operator, "check_inputs", None)
  if custom is not None:
    custom(params, x, y)
  else:
    ops.check_gp_inputs(params, x, y)
    if isinstance(operator.kernel, str) or isinstance(operator.kernel, tuple):
      kernels.check_params(operator.kernel, params.kernel, x.shape[1], "params.kernel")
  if settings is not None:
    check_settings(settings)

"""GP predictions with BBMM: mean by a CG solve, variances exact by CG or by LOVE.

Gardner et al., "GPyTorch: Blackbox Matrix-Matrix Gaussian Process Inference with GPU
Acceleration", NeurIPS 2018, §4 (predictions reuse mBCG), and Pleiss et al., "Constant-Time
Predictive Distributions for Gaussian Processes" (LOVE), ICML 2018:

    μ(x*) = m + K(x*, X) K̂⁻¹ r,
    σ²(x*) = k(x*, x*) − K(x*, X) K̂⁻¹ K(X, x*).

LOVE runs ``k`` Lanczos steps on ``K̂`` (``K̂ Q ≈ Q T``), so ``K̂⁻¹ ≈ Q T⁻¹ Qᵀ = R Rᵀ`` with
``R = Q L_T^{-ᵀ}``; a variance then costs one cross-kernel product with the ``(n, k)`` cache ``R``.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from jaxpapers._src import validation
from jaxpapers.bbmm import cg as cg_lib
from jaxpapers.bbmm import likelihood as mll_lib
from jaxpapers.bbmm import operators as ops


class PredictionCache(NamedTuple):
  """Training-set quantities reused by every prediction.

  Attributes:
    state: the operator state (kernel parameters, inputs, ...).
    mean_const: the constant mean (0 for zero-mean models).
    solve: ``K̂⁻¹ r`` (tolerance ``settings.eval_cg_tol``; differentiable w.r.t. the
      hyperparameters, inputs and targets by implicit differentiation, see :func:`cg_solve`).
    love: ``(n, k)`` LOVE factor ``R`` with ``K̂⁻¹ ≈ R Rᵀ``, or ``None``.
    converged: whether the mean solve reached its tolerance with a finite solution.
  """

  state: object
  mean_const: jax.Array
  solve: jax.Array
  love: jax.Array | None
  converged: jax.Array


def _pre(operator, state, settings, n):
  return mll_lib.build_preconditioner(operator, state, settings, n)


def cg_solve(operator, state, rhs: jax.Array, pre, *, tol: float, max_iters: int
             ) -> tuple[jax.Array, jax.Array]:
  """``K̂⁻¹ rhs`` by preconditioned mBCG, differentiable by implicit differentiation.

  The solve is wrapped in ``lax.custom_linear_solve`` (symmetric ``K̂``), so derivatives never go
  through the CG loop: the tangent of ``u = K̂⁻¹ b`` is ``K̂⁻¹ (ḃ − K̇ u)`` and the cotangent one
  more CG solve; ``K̇`` comes from differentiating ``operator.matmul(state, ·)``, which closes over
  the hyperparameters and inputs in ``state``. The preconditioner gets no derivative.

  Args:
    operator: an operator from :mod:`jaxpapers.bbmm.operators`.
    state: its state (``operator.prepare(params, x)``).
    rhs: ``(n, t)`` right-hand sides.
    pre: a :class:`~jaxpapers.bbmm.precond.Preconditioner`.
    tol: CG relative-residual tolerance.
    max_iters: CG iteration cap.

  Returns:
    ``(solution, converged)``: ``(n, t)`` and a scalar bool (every column reached ``tol``).
  """

  chex.assert_rank(rhs, 2)
  chex.assert_type(rhs, float)

  def solve(matvec, b):
    res = cg_lib.mbcg(matvec, b, precond=pre.solve, tol=tol, max_iters=max_iters)
    return res.solution, jnp.all(res.converged)

  return jax.lax.custom_linear_solve(lambda v: operator.matmul(state, v), rhs, solve,
                                     symmetric=True, has_aux=True)


def _check_x_star(cache: PredictionCache, x_star) -> None:
  if not isinstance(cache, PredictionCache):
    raise TypeError(f"cache must be a PredictionCache, got {type(cache).__name__}")
  validation.check_array(x_star, "x_star", ndim=2, dtype_kind="f", finite=True)
  if x_star.shape[0] == 0:
    raise ValueError(f"x_star must have at least one row, got shape {x_star.shape}")
  ref = getattr(cache.state, "x", None)
  d = ref.shape[1] if ref is not None else cache.state.lo.shape[0]
  if x_star.shape[1] != d:
    raise ValueError(f"x_star must have {d} columns like the training inputs, got {x_star.shape}")


def love_factor(operator, state, v0: jax.Array, rank: int) -> jax.Array:
  """LOVE cache ``R`` (``(n, rank)``) from ``rank`` Lanczos steps on ``K̂`` started at ``v0``."""
  q, t = cg_lib.lanczos(lambda v: operator.matmul(state, v), v0, rank)
  lt = jnp.linalg.cholesky(t)
  return jax.scipy.linalg.solve_triangular(lt, q.T, lower=True).T


def prediction_cache(operator, params: ops.GPParams, x, y, settings: mll_lib.Settings =
                     mll_lib.Settings(), *, love_rank: int = 0, zero_mean: bool = False
                     ) -> PredictionCache:
  """Solves ``K̂ u = r`` at the evaluation tolerance and (optionally) builds the LOVE cache.

  Args:
    operator: an operator from :mod:`jaxpapers.bbmm.operators`.
    params: GP hyperparameters.
    x: ``(n, d)`` training inputs.
    y: ``(n,)`` training targets.
    settings: BBMM settings (``eval_cg_tol``, ``max_cg_iters``, ``precond_rank``).
    love_rank: Lanczos steps for LOVE (0: no cache). The Lanczos start vector is ``r``.
    zero_mean: ignore ``params.mean``.
  """
  mll_lib.check_inputs(operator, params, x, y, settings)
  if isinstance(love_rank, bool) or not isinstance(love_rank, int):
    raise TypeError(f"love_rank must be an int, got {love_rank!r}")
  if love_rank < 0:
    raise ValueError(f"love_rank must be >= 0, got {love_rank}")
  return _cache_jit(operator, settings, love_rank, zero_mean, params, x, y)


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _cache_jit(operator, settings, love_rank, zero_mean, params, x, y):
  n = y.shape[0]
  state = operator.prepare(params, x)
  mean_const = jnp.zeros((), y.dtype) if zero_mean else params.mean
  r = y - mean_const
  pre = _pre(operator, state, settings, n)
  sol, converged = cg_solve(operator, state, r[:, None], pre, tol=settings.eval_cg_tol,
                            max_iters=settings.max_cg_iters)
  sol = sol[:, 0]
  converged = converged & jnp.all(jnp.isfinite(sol))
  love = love_factor(operator, state, r, min(love_rank, n)) if love_rank > 0 else None
  return PredictionCache(state, mean_const, sol, love, converged)


def predictive_mean(operator, cache: PredictionCache, x_star: jax.Array) -> jax.Array:
  """``μ(x*) = m + K(x*, X) K̂⁻¹ r`` (matrix-free cross product).

  Differentiable w.r.t. the hyperparameters (through :func:`prediction_cache`'s implicit solve)
  and ``x_star``.
  """
  _check_x_star(cache, x_star)
  out = _mean_jit(operator, cache, x_star)
  chex.assert_shape(out, (x_star.shape[0],))
  return out


@functools.partial(jax.jit, static_argnums=(0,))
def _mean_jit(operator, cache, x_star):
  return cache.mean_const + operator.cross_matmul(cache.state, x_star, cache.solve[:, None])[:, 0]


def love_variance(operator, cache: PredictionCache, x_star: jax.Array) -> jax.Array:
  """LOVE latent variances ``k(x*, x*) − ||Rᵀ K(X, x*)||²`` (clipped at 0)."""
  _check_x_star(cache, x_star)
  if cache.love is None:
    raise ValueError("cache.love is None: build the cache with love_rank > 0")
  return _love_jit(operator, cache, x_star)


@functools.partial(jax.jit, static_argnums=(0,))
def _love_jit(operator, cache, x_star):
  proj = operator.cross_matmul(cache.state, x_star, cache.love)
  return jnp.maximum(operator.prior_diag(cache.state, x_star) - jnp.sum(proj * proj, 1), 0.0)


def exact_variance(operator, cache: PredictionCache, x_star: jax.Array,
                   settings: mll_lib.Settings = mll_lib.Settings(), *, tol: float = 1e-4,
                   batch_size: int = 128) -> jax.Array:
  """Latent variances by one preconditioned mBCG solve per batch of test points.

  Args:
    operator, cache: as for :func:`predictive_mean`.
    x_star: ``(m, d)`` test inputs.
    settings: BBMM settings (``max_cg_iters``, ``precond_rank``).
    tol: CG tolerance of the ``K̂⁻¹ K(X, x*)`` solves.
    batch_size: test points per mBCG call (``lax.map`` over batches).
  """
  _check_x_star(cache, x_star)
  mll_lib.check_settings(settings)
  if batch_size < 1:
    raise ValueError(f"batch_size must be >= 1, got {batch_size}")
  validation.check_positive(tol, "tol")
  return _exact_var_jit(operator, settings, tol, batch_size, cache, x_star)


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _exact_var_jit(operator, settings, tol, batch_size, cache, x_star):
  state = cache.state
  n = cache.solve.shape[0]
  pre = _pre(operator, state, settings, n)
  m = x_star.shape[0]
  bs = min(batch_size, m)
  nb = -(-m // bs)
  xp = jnp.concatenate([x_star, jnp.repeat(x_star[-1:], nb * bs - m, 0)], 0)

  def one(xb):
    c = operator.cross_matrix(state, xb)
    s, _ = cg_solve(operator, state, c, pre, tol=tol, max_iters=settings.max_cg_iters)
    return operator.prior_diag(state, xb) - jnp.sum(c * s, 0)

  out = jax.lax.map(one, xp.reshape(nb, bs, -1)).reshape(-1)[:m]
  return jnp.maximum(out, 0.0)


def gaussian_nll(y: jax.Array, mean: jax.Array, var: jax.Array) -> jax.Array:
  """Mean negative log predictive density of ``y`` under ``N(mean, var)``."""
  return jnp.mean(0.5 * jnp.log(2 * jnp.pi * var) + 0.5 * (y - mean) ** 2 / var)


def cholesky_predict(operator, params: ops.GPParams, x, y, x_star, *, zero_mean: bool = False
                     ) -> tuple[jax.Array, jax.Array]:
  """Exact predictive mean and latent variance by dense Cholesky (the reference)."""
  mll_lib.check_inputs(operator, params, x, y)
  validation.check_array(x_star, "x_star", ndim=2, dtype_kind="f", finite=True)
  if x_star.shape[1] != x.shape[1]:
    raise ValueError(f"x_star must have {x.shape[1]} columns like x, got {x_star.shape}")
  return _chol_pred_jit(operator, zero_mean, params, x, y, x_star)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _chol_pred_jit(operator, zero_mean, params, x, y, x_star):
  state = operator.prepare(params, x)
  chol = jnp.linalg.cholesky(operator.dense(state))
  mean_const = jnp.zeros((), y.dtype) if zero_mean else params.mean
  alpha = jax.scipy.linalg.cho_solve((chol, True), y - mean_const)
  cross = operator.cross_matrix(state, x_star)
  v = jax.scipy.linalg.solve_triangular(chol, cross, lower=True)
  var = operator.prior_diag(state, x_star) - jnp.sum(v * v, 0)
  return mean_const + cross.T @ alpha, jnp.maximum(var, 0.0)

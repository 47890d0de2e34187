"""GP predictions with BBMM: mean by a CG solve, variances exact by CG or by LOVE.

Gardner et al., "GPyTorch: Blackbox Matrix-Matrix Gaussian Process Inference with GPU
Acceleration", NeurIPS 2018, §4 (predictions reuse mBCG), and Pleiss et al., "Constant-Time
Predictive Distributions for Gaussian Processes" (LOVE), ICML 2018:

    μ(x*) = m + K(x*, X) K̂⁻¹ r,
    σ²(x*) = k(x*, x*) − K(x*, X) K̂⁻¹ K(X, x*).

LOVE caches a factorisation of ``K̂⁻¹`` so that a variance costs one cross-kernel product with
thin ``(n, ·)`` matrices instead of a CG solve. Pleiss et al. run ``m`` Lanczos steps on ``K̂``
(``K̂⁻¹ ≈ Q T⁻¹ Qᵀ``); that projection drops every direction outside the Krylov space, which
cancels badly in ``k** − k*ᵀ K̂⁻¹ k*`` when σ² is small (n = 1,500, m = 100: variances 11 % off at
σ² = 0.1, 140 % at 0.01, 1,000 % at 0.001). Here the Lanczos steps run on the preconditioned
``A = S K̂ S``, ``S = P̂^{-½}`` (the pivoted-Cholesky preconditioner, ``P̂ ≤ K̂``, so ``A ≥ I``):

    K̂⁻¹ = S A⁻¹ S ≈ S (I + Q (T⁻¹ − I) Qᵀ) S,

exact on the Krylov space and equal to ``P̂⁻¹`` on its complement (where ``A ≈ I`` when the
preconditioner is good). Same data (inputs on [0, 1]⁴, RBF ℓ = 0.5, n = 1,500, rank-1000
preconditioner, m = 50): variances within 2e-6 of exact at σ² ∈ {0.1, 0.01, 0.001}. Where the
preconditioner leaves much of the spectrum (n = 5,000 points in 8 dimensions) it is as poor as
plain LOVE, so every cache measures its own error: LOVE against CG variances at ``love_checks``
training inputs (the hardest points: the smallest variances), and :func:`predictive_variance`
uses LOVE only when that error is below ``love_tol``, else CG.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers._src import validation
from jaxpapers.bbmm import cg as cg_lib
from jaxpapers.bbmm import likelihood as mll_lib
from jaxpapers.bbmm import operators as ops
from jaxpapers.bbmm import precond as precond_lib


class PredictionCache(NamedTuple):
  """Training-set quantities reused by every prediction.

  Attributes:
    state: the operator state (kernel parameters, inputs, ...).
    mean_const: the constant mean (0 for zero-mean models).
    solve: ``K̂⁻¹ r`` (tolerance ``settings.eval_cg_tol``; differentiable w.r.t. the
      hyperparameters, inputs and targets by implicit differentiation, see :func:`cg_solve`).
    love: a :class:`LoveCache`, or ``None``.
    converged: whether the mean solve reached its tolerance with a finite solution.
  """

  state: object
  mean_const: jax.Array
  solve: jax.Array
  love: LoveCache | None
  converged: jax.Array


class LoveCache(NamedTuple):
  """Preconditioned LOVE: ``K̂⁻¹ ≈ S (I + Q (T⁻¹ − I) Qᵀ) S`` with ``S = P̂^{-½}``.

  Attributes:
    basis: ``(n, k)`` orthonormal ``U`` with ``P̂ = U diag(s²) Uᵀ + σ² I``.
    spectrum: ``(k,)`` the ``s²``.
    noise: the preconditioner's ``σ²`` (scalar).
    lanczos: ``(n, m)`` orthonormal Lanczos basis ``Q`` of ``A = S K̂ S``.
    correction: ``(m, m)`` ``T⁻¹ − I``.
    error: mean relative error of LOVE's variances against CG variances at the check points.
    error_max: the largest such error.
  """

  basis: jax.Array
  spectrum: jax.Array
  noise: jax.Array
  lanczos: jax.Array
  correction: jax.Array
  error: jax.Array
  error_max: jax.Array


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


def _sqrt_inv_pre(u, s2, noise, v):
  """``P̂^{-½} v`` for ``P̂ = U diag(s²) Uᵀ + σ² I`` (complement projected twice)."""
  c = u.T @ v
  w = v - u @ c
  w = w - u @ (u.T @ w)
  return w / jnp.sqrt(noise) + u @ (c / jnp.sqrt(s2 + noise)[:, None])


def _love_quad(love: LoveCache, kx):
  """``k*ᵀ K̂⁻¹ k*`` per column of ``kx`` (``(n, b)`` cross-covariances) under the LOVE cache."""
  u, s2, noise = love.basis, love.spectrum, love.noise
  c = u.T @ kx
  res = kx - u @ c
  res = res - u @ (u.T @ res)
  # ||P̂^{-½} k*||² without forming ||k*||²/σ² − ... (no cancellation), then the Krylov part.
  quad = jnp.sum(res * res, 0) / noise + jnp.sum(c * c / (s2 + noise)[:, None], 0)
  w = res / jnp.sqrt(noise) + u @ (c / jnp.sqrt(s2 + noise)[:, None])
  qw = love.lanczos.T @ w
  return quad + jnp.sum(qw * (love.correction @ qw), 0)


def love_factor(operator, state, v0: jax.Array, rank: int, lmat: jax.Array
                ) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array, jax.Array]:
  """Preconditioned LOVE factors ``(U, s², σ², Q, T⁻¹ − I)`` (see :class:`LoveCache`).

  Args:
    operator: an operator from :mod:`jaxpapers.bbmm.operators`.
    state: its state.
    v0: ``(n,)`` start vector (in ``x`` space; the Lanczos run starts at ``P̂^{-½} v0``).
    rank: Lanczos steps ``m`` on ``A = P̂^{-½} K̂ P̂^{-½}``.
    lmat: ``(n, k)`` pivoted-Cholesky factor of ``P̂`` — the one the cache's solves already use
      (brought to the orthogonal form here; no gradient).
  """
  st = jax.lax.stop_gradient(state)
  lmat = jax.lax.stop_gradient(lmat)
  pre = precond_lib.make_preconditioner(lmat, st.noise, orthogonal=True)
  if pre.spectrum is None:  # rank 0: P̂ = σ² I
    u = jnp.zeros((v0.shape[0], 0), v0.dtype)
    s2 = jnp.zeros((0,), v0.dtype)
  else:
    u, s2 = pre.woodbury, pre.spectrum
  noise = pre.noise
  sq = functools.partial(_sqrt_inv_pre, u, s2, noise)
  q, t = cg_lib.lanczos(lambda v: sq(operator.matmul(st, sq(v))), sq(v0[:, None])[:, 0], rank)
  correction = jnp.linalg.inv(t) - jnp.eye(t.shape[0], dtype=t.dtype)
  return u, s2, noise, q, correction


def _check_points(n: int, count: int) -> np.ndarray:
  """``count`` training indices spread evenly over ``0 … n − 1`` (deterministic)."""
  return np.unique(np.linspace(0, n - 1, min(count, n)).round().astype(np.int64))


LOVE_CHECK_TOL = {4: 1e-5, 8: 1e-9}  # CG tolerance of the check-point variances, by itemsize


def prediction_cache(operator, params: ops.GPParams, x, y, settings: mll_lib.Settings =
                     mll_lib.Settings(), *, love_rank: int = 0, love_checks: int = 32,
                     zero_mean: bool = False) -> PredictionCache:
  """Solves ``K̂ u = r`` at the evaluation tolerance and (optionally) builds the LOVE cache.

  Args:
    operator: an operator from :mod:`jaxpapers.bbmm.operators`.
    params: GP hyperparameters.
    x: ``(n, d)`` training inputs.
    y: ``(n,)`` training targets.
    settings: BBMM settings (``eval_cg_tol``, ``max_cg_iters``, ``precond_rank``; LOVE reuses
      the solves' pivoted-Cholesky factor).
    love_rank: Lanczos steps ``m`` of the preconditioned LOVE cache (0: no cache). The Lanczos
      run starts at ``P̂^{-½} r`` (``r = y − mean``).
    love_checks: training inputs (rows of ``x``, spread evenly) at which LOVE's variances are
      compared with CG variances (tolerance 1e-9 in float64, 1e-5 in float32) to give
      ``cache.love.error`` and ``error_max``.
    zero_mean: ignore ``params.mean``.
  """
  mll_lib.check_inputs(operator, params, x, y, settings)
  for name, v, lo in (("love_rank", love_rank, 0), ("love_checks", love_checks, 1)):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
      raise TypeError(f"{name} must be an int, got {v!r}")
    if v < lo:
      raise ValueError(f"{name} must be >= {lo}, got {v}")
  idx = _check_points(jnp.shape(x)[0], int(love_checks)) if love_rank > 0 else np.zeros((0,), int)
  return _cache_jit(operator, settings, int(love_rank), zero_mean, params, x, y,
                    jnp.asarray(x)[idx])


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _cache_jit(operator, settings, love_rank, zero_mean, params, x, y, x_check):
  n = y.shape[0]
  state = operator.prepare(params, x)
  mean_const = jnp.zeros((), y.dtype) if zero_mean else params.mean
  r = y - mean_const
  pre = _pre(operator, state, settings, n)
  sol, converged = cg_solve(operator, state, r[:, None], pre, tol=settings.eval_cg_tol,
                            max_iters=settings.max_cg_iters)
  sol = sol[:, 0]
  converged = converged & jnp.all(jnp.isfinite(sol))
  love = None
  if love_rank > 0:
    factors = love_factor(operator, state, r, min(love_rank, n), pre.lmat)
    partial = LoveCache(*factors, jnp.zeros((), y.dtype), jnp.zeros((), y.dtype))
    st = jax.lax.stop_gradient(state)
    c = operator.cross_matrix(st, x_check)
    s_cg, _ = cg_solve(operator, st, c, jax.lax.stop_gradient(pre),
                       tol=LOVE_CHECK_TOL[jnp.dtype(y.dtype).itemsize],
                       max_iters=max(settings.max_cg_iters, 2 * n))
    prior = operator.prior_diag(st, x_check)
    var_cg = prior - jnp.sum(c * s_cg, 0)
    var_love = prior - _love_quad(partial, c)
    rel = jnp.abs(var_love - var_cg) / jnp.abs(var_cg)
    rel = jnp.where(jnp.isfinite(rel), rel, jnp.inf)
    love = partial._replace(error=jnp.mean(rel), error_max=jnp.max(rel))
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
  """Preconditioned-LOVE latent variances ``k(x*, x*) − k*ᵀ K̂⁻¹ k*`` (clipped at 0).

  Accurate only where ``cache.love.error`` says so; :func:`predictive_variance` checks that.
  """
  _check_x_star(cache, x_star)
  if cache.love is None:
    raise ValueError("cache.love is None: build the cache with love_rank > 0")
  return _love_jit(operator, cache, x_star)


def _map_batches(fn, x_star, batch_size):
  """``fn`` over row batches of ``x_star`` (the last batch padded by repeating the last row).

  ``fn`` returns ``(T·b,)`` per batch of ``b`` rows, task-major (``T = 1`` except for the
  multitask operator); the result is ``(T·m,)``, task-major like ``prior_diag``.
  """
  m = x_star.shape[0]
  bs = min(batch_size, m)
  nb = -(-m // bs)
  xp = jnp.concatenate([x_star, jnp.repeat(x_star[-1:], nb * bs - m, 0)], 0)
  out = jax.lax.map(fn, xp.reshape(nb, bs, -1))  # (nb, T·bs)
  tasks = out.shape[1] // bs
  return out.reshape(nb, tasks, bs).transpose(1, 0, 2).reshape(tasks, nb * bs)[:, :m].reshape(-1)


@functools.partial(jax.jit, static_argnums=(0,))
def _love_jit(operator, cache, x_star):
  def one(xb):
    kx = operator.cross_matrix(cache.state, xb)
    return operator.prior_diag(cache.state, xb) - _love_quad(cache.love, kx)
  return jnp.maximum(_map_batches(one, x_star, 512), 0.0)


def predictive_variance(operator, cache: PredictionCache, x_star: jax.Array,
                        settings: mll_lib.Settings = mll_lib.Settings(), *,
                        love_tol: float = 0.01, tol: float = 1e-4, batch_size: int = 128
                        ) -> jax.Array:
  """Latent variances: LOVE when its measured error is within ``love_tol``, else CG.

  The choice is ``lax.cond`` on ``cache.love.error`` (the mean relative error of LOVE at the
  cache's check points), so only one branch runs and the function is jit-compatible. A cache
  without LOVE always uses :func:`exact_variance` (``tol``, ``batch_size``).
  """
  _check_x_star(cache, x_star)
  mll_lib.check_settings(settings)
  validation.check_positive(love_tol, "love_tol")
  validation.check_positive(tol, "tol")
  if batch_size < 1:
    raise ValueError(f"batch_size must be >= 1, got {batch_size}")
  if cache.love is None:
    return _exact_var_jit(operator, settings, tol, batch_size, cache, x_star)
  return _pred_var_jit(operator, settings, float(love_tol), tol, batch_size, cache, x_star)


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3, 4))
def _pred_var_jit(operator, settings, love_tol, tol, batch_size, cache, x_star):
  return jax.lax.cond(cache.love.error <= love_tol,
                      lambda: _love_jit(operator, cache, x_star),
                      lambda: _exact_var_jit(operator, settings, tol, batch_size, cache, x_star))


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

  def one(xb):
    c = operator.cross_matrix(state, xb)
    s, _ = cg_solve(operator, state, c, pre, tol=tol, max_iters=settings.max_cg_iters)
    return operator.prior_diag(state, xb) - jnp.sum(c * s, 0)

  return jnp.maximum(_map_batches(one, x_star, batch_size), 0.0)


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

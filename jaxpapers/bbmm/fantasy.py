"""Fantasies: conditioning a fitted GP on new observations without re-solving from scratch.

GPyTorch's ``ExactGP.get_fantasy_model`` / ``condition_on_observations``. Given a
:class:`~jaxpapers.bbmm.predict.PredictionCache` for ``(X, y)`` (``u = K̂⁻¹ r``) and new
observations ``(X_n, y_n)`` (``m`` points), the joint matrix is

    K̂_cat = [[A, B], [Bᵀ, C]],   A = K̂(X, X),  B = K(X, X_n),  C = K(X_n, X_n) + D_n

(``D_n``: the new points' noise). With ``W = A⁻¹ B`` (``m`` preconditioned CG solves against the
old operator; matrix-free) and the ``m × m`` Schur complement ``S = C − Bᵀ W``, block elimination
gives the solve of the concatenated system from the cached one:

    u_n = S⁻¹ (r_n − Bᵀ u),    u_X = u − W u_n,    r_n = y_n − m,

so the predictive mean is ``m + K(x*, X) u_X + K(x*, X_n) u_n``, and the latent variance drops by

    σ²_new(x*) = σ²_old(x*) − cᵀ S⁻¹ c,    c = K(X_n, x*) − Wᵀ K(X, x*).

The cost is ``m`` CG solves and an ``m × m`` Cholesky instead of a new ``(n + m)``-point solve; the
result is exact up to the CG tolerances (the cache's ``eval_cg_tol`` for ``u`` and ``tol`` here
for ``W``: use tight ones, e.g. 1e-10 in float64, when the fantasy must match a refit to 1e-6).
Supported operators: :class:`~jaxpapers.bbmm.operators.ExactOperator` (scalar noise ``σ²``, so
``D_n = σ² I``) and :class:`~jaxpapers.bbmm.noise.DiagonalNoiseOperator` (``noise_new`` gives
``D_n``).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers._src import validation
from jaxpapers.bbmm import kernels
from jaxpapers.bbmm import likelihood as mll_lib
from jaxpapers.bbmm import noise as noise_lib
from jaxpapers.bbmm import operators as ops
from jaxpapers.bbmm import predict as predict_lib


class FantasyUpdate(NamedTuple):
  """The conditioned model.

  Attributes:
    cache: a :class:`~jaxpapers.bbmm.predict.PredictionCache` on the concatenated data
      ``[X; X_n]`` with ``solve = [u_X; u_n] = K̂_cat⁻¹ r_cat`` (no LOVE factor), so
      :func:`~jaxpapers.bbmm.predict.predictive_mean` (and, by fresh solves,
      :func:`~jaxpapers.bbmm.predict.exact_variance`) work on it unchanged.
    x_new: ``(m, d)`` the new inputs.
    kinv_cross: ``(n, m)`` ``W = K̂⁻¹ K(X, X_n)``.
    schur_chol: ``(m, m)`` lower Cholesky factor of ``S = C − Bᵀ W``.
    converged: the old cache's and the ``W`` solves' convergence, and finiteness.
  """

  cache: predict_lib.PredictionCache
  x_new: jax.Array
  kinv_cross: jax.Array
  schur_chol: jax.Array
  converged: jax.Array


def _extend(operator, state, x_new, noise_new):
  """``(state on [X; X_n], C = K(X_n, X_n) + D_n)`` for the supported operators."""
  if isinstance(operator, noise_lib.DiagonalNoiseOperator):
    base, d_old = state.base, state.noise + state.excess
    new_base, c = _extend(operator.base, base, x_new, None)
    d = jnp.concatenate([d_old, noise_new])
    floor = jnp.min(d)
    return (noise_lib.DiagonalNoiseState(new_base, floor, d - floor, new_base.x),
            c + jnp.diag(noise_new))
  kxn = kernels.matrix(operator.kernel, state.kernel, state.x, x_new)
  knn = kernels.matrix(operator.kernel, state.kernel, x_new, x_new)
  dense = state.dense_k
  if dense is not None:
    dense = jnp.block([[dense, kxn], [kxn.T, knn]])
  new = ops.ExactState(state.kernel, state.noise, jnp.concatenate([state.x, x_new]), dense)
  return new, knn + state.noise * jnp.eye(x_new.shape[0], dtype=knn.dtype)


def condition_on_observations(operator, cache: predict_lib.PredictionCache, x_new: jax.Array,
                              y_new: jax.Array, settings: mll_lib.Settings = mll_lib.Settings(),
                              *, noise_new: jax.Array | None = None, tol: float = 1e-10
                              ) -> FantasyUpdate:
  """Conditions the GP behind ``cache`` on ``(x_new, y_new)`` by block elimination (see module).

  Args:
    operator: the :class:`~jaxpapers.bbmm.operators.ExactOperator` or
      :class:`~jaxpapers.bbmm.noise.DiagonalNoiseOperator` the cache was built with.
    cache: :func:`~jaxpapers.bbmm.predict.prediction_cache` for the training data.
    x_new: ``(m, d)`` new inputs.
    y_new: ``(m,)`` new targets.
    settings: BBMM settings (``max_cg_iters``, ``precond_rank`` for the ``W`` solves).
    noise_new: ``(m,)`` noise variances of the new points (required for, and only for, a
      :class:`~jaxpapers.bbmm.noise.DiagonalNoiseOperator`).
    tol: CG tolerance of the ``m`` solves ``W = K̂⁻¹ K(X, X_n)``.

  Returns:
    a :class:`FantasyUpdate`. Pure and jittable; ``jax.vmap`` over ``y_new`` gives a batch of
    fantasies.
  """
  if not isinstance(operator, (ops.ExactOperator, noise_lib.DiagonalNoiseOperator)):
    raise TypeError("operator must be an ExactOperator or a DiagonalNoiseOperator, got "
                    f"{type(operator).__name__}")
  if not isinstance(cache, predict_lib.PredictionCache):
    raise TypeError(f"cache must be a PredictionCache, got {type(cache).__name__}")
  mll_lib.check_settings(settings)
  validation.check_positive(tol, "tol")
  d = cache.state.x.shape[1]
  validation.check_array(x_new, "x_new", ndim=2, dtype_kind="f", finite=True)
  if x_new.shape[0] == 0 or x_new.shape[1] != d:
    raise ValueError(f"x_new must have shape (m >= 1, {d}) like the training inputs, "
                     f"got {x_new.shape}")
  validation.check_array(y_new, "y_new", shape=(x_new.shape[0],), dtype_kind="f", finite=True)
  if isinstance(operator, noise_lib.DiagonalNoiseOperator):
    if noise_new is None:
      raise ValueError("noise_new must be given (an (m,) array of noise variances of the new "
                       "points) for a DiagonalNoiseOperator")
    validation.check_array(noise_new, "noise_new", shape=(x_new.shape[0],), dtype_kind="f")
    if validation.is_concrete(noise_new):
      arr = np.asarray(noise_new)
      if not np.all(np.isfinite(arr) & (arr > 0)):
        raise ValueError(f"noise_new must be finite and > 0, got {arr}")
  elif noise_new is not None:
    raise ValueError("noise_new is only for a DiagonalNoiseOperator (an ExactOperator's new "
                     "points have its scalar noise)")
  return _condition_jit(operator, settings, float(tol), cache, x_new, y_new, noise_new)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _condition_jit(operator, settings, tol, cache, x_new, y_new, noise_new):
  state = cache.state
  n = cache.solve.shape[0]
  b = operator.cross_matrix(state, x_new)  # (n, m) = K(X, X_n)
  pre = mll_lib.build_preconditioner(operator, state, settings, n)
  w, conv = predict_lib.cg_solve(operator, state, b, pre, tol=tol,
                                 max_iters=settings.max_cg_iters)
  new_state, c = _extend(operator, state, x_new, noise_new)
  s = c - b.T @ w
  chol = jnp.linalg.cholesky(0.5 * (s + s.T))
  rhs = (y_new - cache.mean_const) - b.T @ cache.solve
  u_n = jax.scipy.linalg.cho_solve((chol, True), rhs)
  u_x = cache.solve - w @ u_n
  solve = jnp.concatenate([u_x, u_n])
  converged = cache.converged & conv & jnp.all(jnp.isfinite(solve))
  new_cache = predict_lib.PredictionCache(new_state, cache.mean_const, solve, None, converged)
  return FantasyUpdate(new_cache, x_new, w, chol, converged)


def fantasy_variance(operator, update: FantasyUpdate, cache: predict_lib.PredictionCache,
                     x_star: jax.Array, old_variance: jax.Array) -> jax.Array:
  """Latent variances after conditioning: ``σ²_old(x*) − cᵀ S⁻¹ c`` (clipped at 0).

  Args:
    operator: as for :func:`condition_on_observations`.
    update: its result.
    cache: the *original* cache (on ``X``).
    x_star: ``(k, d)`` test inputs.
    old_variance: ``(k,)`` latent variances under the original model (e.g.
      :func:`~jaxpapers.bbmm.predict.exact_variance` or
      :func:`~jaxpapers.bbmm.predict.love_variance` of ``cache``).
  """
  if not isinstance(update, FantasyUpdate):
    raise TypeError(f"update must be a FantasyUpdate, got {type(update).__name__}")
  if not isinstance(cache, predict_lib.PredictionCache):
    raise TypeError(f"cache must be a PredictionCache, got {type(cache).__name__}")
  d = cache.state.x.shape[1]
  validation.check_array(x_star, "x_star", ndim=2, dtype_kind="f", finite=True)
  if x_star.shape[1] != d:
    raise ValueError(f"x_star must have {d} columns like the training inputs, got {x_star.shape}")
  validation.check_array(old_variance, "old_variance", shape=(x_star.shape[0],), dtype_kind="f")
  out = _var_jit(operator, update, cache, x_star, old_variance)
  chex.assert_shape(out, (x_star.shape[0],))
  return out


@functools.partial(jax.jit, static_argnums=(0,))
def _var_jit(operator, update, cache, x_star, old_variance):
  k_x = operator.cross_matrix(cache.state, x_star)  # (n, k)
  base = cache.state.base if isinstance(operator, noise_lib.DiagonalNoiseOperator) else cache.state
  k_n = kernels.matrix(operator.kernel, base.kernel, update.x_new, x_star)  # (m, k)
  c = k_n - update.kinv_cross.T @ k_x
  v = jax.scipy.linalg.solve_triangular(update.schur_chol, c, lower=True)
  return jnp.maximum(old_variance - jnp.sum(v * v, 0), 0.0)

"""Multitask exact GPs with the intrinsic coregionalisation model (ICM), by Kronecker products.

Bonilla, Chai & Williams, "Multi-task Gaussian Process Prediction", NeurIPS 2008; GPyTorch's
``MultitaskKernel`` (``IndexKernel`` task covariance) with a ``MultitaskGaussianLikelihood``
(``rank=0``: one noise per task). ``T`` tasks observed at the same ``n`` inputs ``X``:

    cov(f_t(x), f_u(x')) = B_tu k(x, x'),    B = W Wᵀ + diag(v),   W ∈ ℝ^{T×r}, v > 0,
    K̂ = B ⊗ K_X + diag(σ²) ⊗ I_n,

in *task-major* order: entry ``t·n + i`` of a vector is task ``t`` at input ``x_i`` (so
``y = Y.T.reshape(-1)`` for ``Y`` of shape ``(n, T)``; :func:`flatten_targets`). GPyTorch's
default interleaved order is ``K_X ⊗ B``, the same matrix permuted.

A product ``K̂ V`` never forms the ``Tn × Tn`` matrix: with ``V`` reshaped to ``(T, n, s)``,
``(B ⊗ K_X) V = B ·_task (K_X V)`` costs one blocked kernel product on ``(n, T s)`` and a
``T × T`` contraction. :class:`MultitaskOperator` exposes the operator interface, so
:func:`~jaxpapers.bbmm.likelihood.bbmm_mll` (mBCG + SLQ, pivoted-Cholesky preconditioner over
the rows ``B[t, :] ⊗ K_X[i, :]``), :func:`~jaxpapers.bbmm.likelihood.cholesky_mll` (dense
reference) and :func:`~jaxpapers.bbmm.predict.prediction_cache` take it unchanged, with
``y`` of shape ``(T n,)``. Predictions per task come from :func:`predict` (``(k, T)`` means and
variances). The preconditioner's scalar noise is ``min_t σ_t²``; the rest of the diagonal is
factored with the kernel part (as in :mod:`jaxpapers.bbmm.noise`).

``params`` is a :class:`~jaxpapers.bbmm.operators.GPParams` with ``kernel = (k_X params,
TaskCovariance)``, ``noise`` of shape ``(T,)`` and a scalar ``mean`` shared by all tasks. ``W`` has
no sign constraint, so :func:`~jaxpapers.bbmm.train.fit` (which optimises every kernel leaf
through a softplus) refuses this operator with a ``ValueError``; optimise ``bbmm_mll`` with your
own optax loop (the notebook shows one).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers._src import validation
from jaxpapers.bbmm import kernels
from jaxpapers.bbmm import likelihood as mll_lib
from jaxpapers.bbmm import operators as ops
from jaxpapers.bbmm import predict as predict_lib


class TaskCovariance(NamedTuple):
  """``B = W Wᵀ + diag(v)`` (GPyTorch's ``IndexKernel``: ``covar_factor``, ``var``).

  Attributes:
    factor: ``(T, r)`` ``W`` (any sign).
    diag: ``(T,)`` ``v > 0``.
  """

  factor: jax.Array
  diag: jax.Array


def task_covariance(tc: TaskCovariance) -> jax.Array:
  """The ``(T, T)`` task covariance ``W Wᵀ + diag(v)``."""
  return tc.factor @ tc.factor.T + jnp.diag(tc.diag)


def flatten_targets(y: jax.Array) -> jax.Array:
  """``(n, T)`` targets to the task-major ``(T n,)`` vector ``Y.T.reshape(-1)``."""
  validation.check_array(y, "y", ndim=2)
  return y.T.reshape(-1)


def init_params(key: jax.Array, spec, dim: int, num_tasks: int, rank: int = 1, *,
                lengthscale: float = 1.0, noise: float = 0.1, dtype=None) -> ops.GPParams:
  """Initial ICM parameters: unit-scale ``k_X``, ``W ~ N(0, 1/r)``, ``v = 1``, noise per task.

  Like GPyTorch's ``IndexKernel`` (``covar_factor`` drawn at random: ``W = 0`` would be a saddle
  point where ``W`` gets no gradient), ``key`` draws ``W``.
  """
  for value, name in ((num_tasks, "num_tasks"), (rank, "rank")):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
      raise ValueError(f"{name} must be an int >= 1, got {value!r}")
  validation.check_positive(noise, "noise")
  dtype = dtype or jnp.zeros(()).dtype
  kx = kernels.init_params(spec, dim, lengthscale, 1.0, dtype)
  w = jax.random.normal(key, (num_tasks, rank), dtype) / np.sqrt(rank)
  tc = TaskCovariance(w, jnp.ones((num_tasks,), dtype))
  return ops.GPParams((kx, tc), jnp.full((num_tasks,), noise, dtype), jnp.zeros((), dtype))


class MultitaskState(NamedTuple):
  """State of :class:`MultitaskOperator`.

  Attributes:
    kernel: ``k_X`` parameters.
    b: ``(T, T)`` task covariance.
    noise: scalar ``min_t σ_t²`` (the preconditioner's noise).
    excess: ``(T n,)`` ``σ_t² − min σ²`` per entry (factored with the kernel part).
    x: ``(n, d)`` inputs.
  """

  kernel: Any
  b: jax.Array
  noise: jax.Array
  excess: jax.Array
  x: jax.Array


@dataclasses.dataclass(frozen=True)
class MultitaskOperator:
  """ICM operator ``K̂ = B ⊗ K_X + diag(σ²) ⊗ I_n`` with Kronecker (matrix-free) products.

  Attributes:
    kernel: the input kernel spec (:mod:`jaxpapers.bbmm.kernels`).
    num_tasks: ``T``.
    rank: columns ``r`` of ``W``.
    block_size: rows of ``K_X`` materialised at once.
  """

  kernel: Any = "rbf"
  num_tasks: int = 2
  rank: int = 1
  block_size: int = 1024
  supports_fit: ClassVar[bool] = False  # W has no sign: train.fit's softplus cannot hold it

  def __post_init__(self):
    kernels.check_spec(self.kernel, "kernel")
    for name in ("num_tasks", "rank", "block_size"):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")

  def check_inputs(self, params: ops.GPParams, x, y=None) -> None:
    """Validates ``x`` ``(n, d)``, ``y`` ``(T n,)``, ``params.kernel = (k_X, TaskCovariance)``
    with ``W`` ``(T, r)`` finite and ``v`` ``(T,)`` > 0, and ``params.noise`` ``(T,)`` > 0."""
    t = self.num_tasks
    if not isinstance(params, ops.GPParams):
      raise TypeError(f"params must be a GPParams, got {type(params).__name__}")
    validation.check_array(params.noise, "params.noise", shape=(t,), dtype_kind="f")
    ops.check_gp_inputs(params._replace(noise=jnp.ones((), params.noise.dtype)), x)
    n = x.shape[0]
    if y is not None:
      validation.check_array(y, "y", ndim=1, dtype_kind="f", finite=True)
      if y.shape[0] != t * n:
        raise ValueError(f"y must have num_tasks * n = {t} * {n} = {t * n} entries (task-major, "
                         f"see flatten_targets), got {y.shape[0]}")
    if not (isinstance(params.kernel, tuple) and len(params.kernel) == 2
            and isinstance(params.kernel[1], TaskCovariance)):
      raise TypeError("params.kernel must be a tuple (input-kernel params, TaskCovariance), got "
                      f"{type(params.kernel).__name__}")
    kernels.check_params(self.kernel, params.kernel[0], x.shape[1], "params.kernel[0]")
    tc = params.kernel[1]
    validation.check_array(tc.factor, "params.kernel[1].factor", shape=(t, self.rank),
                           dtype_kind="f", finite=True)
    validation.check_array(tc.diag, "params.kernel[1].diag", shape=(t,), dtype_kind="f")
    for value, name in ((tc.diag, "params.kernel[1].diag"), (params.noise, "params.noise")):
      if validation.is_concrete(value):
        arr = np.asarray(value)
        if not np.all(np.isfinite(arr) & (arr > 0)):
          raise ValueError(f"{name} must be finite and > 0, got {arr}")

  def prepare(self, params: ops.GPParams, x: jax.Array) -> MultitaskState:
    kx, tc = params.kernel
    floor = jnp.min(params.noise)
    excess = jnp.repeat(params.noise - floor, x.shape[0])
    return MultitaskState(kx, task_covariance(tc), floor, excess, x)

  def _kx(self, state, x1, m):
    return ops.blocked_kernel_matmul(self.kernel, state.kernel, x1, state.x, m, self.block_size)

  def _kron(self, state, x1, v):
    """``(B ⊗ K(x1, X)) v`` for ``v`` of shape ``(T n, s)``: ``(T k, s)``."""
    t, n, s = self.num_tasks, state.x.shape[0], v.shape[1]
    vt = v.reshape(t, n, s).transpose(1, 0, 2).reshape(n, t * s)
    kv = self._kx(state, x1, vt).reshape(x1.shape[0], t, s)
    return jnp.einsum("tu,kus->tks", state.b, kv).reshape(t * x1.shape[0], s)

  def matmul(self, state: MultitaskState, v: jax.Array) -> jax.Array:
    return self._kron(state, state.x, v) + (state.noise + state.excess)[:, None] * v

  def kernel_diag(self, state: MultitaskState) -> jax.Array:
    kd = kernels.diag(self.kernel, state.kernel, state.x)
    return (jnp.diag(state.b)[:, None] * kd[None, :]).reshape(-1) + state.excess

  def kernel_row(self, state: MultitaskState, i) -> jax.Array:
    n = state.x.shape[0]
    t, j = i // n, i % n
    xj = jax.lax.dynamic_slice_in_dim(state.x, j, 1, 0)
    krow = kernels.matrix(self.kernel, state.kernel, xj, state.x)[0]
    brow = jax.lax.dynamic_index_in_dim(state.b, t, 0, keepdims=False)
    return (brow[:, None] * krow[None, :]).reshape(-1).at[i].add(state.excess[i])

  def cross_matmul(self, state: MultitaskState, x_star, v):
    """``(B ⊗ K(x*, X)) v``: ``(T k, s)``, task-major."""
    return self._kron(state, x_star, v)

  def cross_matrix(self, state: MultitaskState, x_star):
    """``B ⊗ K(X, x*)``: ``(T n, T k)`` (dense; prediction variances only)."""
    return jnp.kron(state.b, kernels.matrix(self.kernel, state.kernel, state.x, x_star))

  def prior_diag(self, state: MultitaskState, x_star):
    kd = kernels.diag(self.kernel, state.kernel, x_star)
    return (jnp.diag(state.b)[:, None] * kd[None, :]).reshape(-1)

  def trace_term(self, state: MultitaskState) -> jax.Array:
    return jnp.zeros((), state.x.dtype)

  def dense(self, state: MultitaskState) -> jax.Array:
    """The dense ``B ⊗ K_X + diag(σ²) ⊗ I_n`` (tests and the Cholesky baseline only)."""
    k = kernels.matrix(self.kernel, state.kernel, state.x, state.x)
    return jnp.kron(state.b, k) + jnp.diag(state.noise + state.excess)


def predict(operator: MultitaskOperator, cache: predict_lib.PredictionCache, x_star: jax.Array,
            settings: mll_lib.Settings = mll_lib.Settings(), *, tol: float = 1e-4
            ) -> tuple[jax.Array, jax.Array]:
  """Per-task predictive means and latent variances at ``x_star``.

  ``μ_t(x*) = m + Σ_u B_tu K(x*, X) u_u`` (Kronecker product with the cached ``u = K̂⁻¹ r``) and
  ``σ_t²(x*) = B_tt k(x*, x*) − c_tᵀ K̂⁻¹ c_t``, ``c_t`` the column of ``B ⊗ K(X, x*)`` for task
  ``t`` at ``x*`` (one preconditioned CG solve with ``T k`` right-hand sides, tolerance ``tol``).

  Args:
    operator: the :class:`MultitaskOperator`.
    cache: :func:`~jaxpapers.bbmm.predict.prediction_cache` of ``operator`` on ``(X, y)``.
    x_star: ``(k, d)`` test inputs.
    settings: BBMM settings (``max_cg_iters``, ``precond_rank``).
    tol: CG tolerance of the variance solves.

  Returns:
    ``(mean, var)``, each ``(k, T)``.
  """
  if not isinstance(operator, MultitaskOperator):
    raise TypeError(f"operator must be a MultitaskOperator, got {type(operator).__name__}")
  if not isinstance(cache, predict_lib.PredictionCache):
    raise TypeError(f"cache must be a PredictionCache, got {type(cache).__name__}")
  validation.check_array(x_star, "x_star", ndim=2, dtype_kind="f", finite=True)
  d = cache.state.x.shape[1]
  if x_star.shape[0] == 0 or x_star.shape[1] != d:
    raise ValueError(f"x_star must have shape (k >= 1, {d}) like the training inputs, "
                     f"got {x_star.shape}")
  mll_lib.check_settings(settings)
  validation.check_positive(tol, "tol")
  return _predict_jit(operator, settings, float(tol), cache, x_star)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _predict_jit(operator, settings, tol, cache, x_star):
  state = cache.state
  t, k = operator.num_tasks, x_star.shape[0]
  mean = cache.mean_const + operator.cross_matmul(state, x_star, cache.solve[:, None])[:, 0]
  c = operator.cross_matrix(state, x_star)
  pre = mll_lib.build_preconditioner(operator, state, settings, cache.solve.shape[0])
  s, _ = predict_lib.cg_solve(operator, state, c, pre, tol=tol, max_iters=settings.max_cg_iters)
  var = jnp.maximum(operator.prior_diag(state, x_star) - jnp.sum(c * s, 0), 0.0)
  return mean.reshape(t, k).T, var.reshape(t, k).T

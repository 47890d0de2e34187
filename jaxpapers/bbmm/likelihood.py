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
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers._src import validation
from jaxpapers.bbmm import cg as cg_lib
from jaxpapers.bbmm import kernels
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
    cholesky_size: ``method="auto"`` uses dense Cholesky for ``n ≤`` this.
    spherical_probes: rescale each probe to ``zᵀ P̂⁻¹ z = n`` (else Gaussian ``z ~ N(0, P̂)``).
    precond_form: ``"woodbury"`` (fast) or ``"orthogonal"`` (stays positive definite in float32
      when the kernel's top eigenvalues exceed σ² by ~10⁶ or more: n ≈ 10⁶ or tiny noise; see
      :meth:`~jaxpapers.bbmm.precond.Preconditioner.solve`).
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


GPYTORCH_DEFAULTS = Settings(cg_tol=1.0, eval_cg_tol=1e-2, max_cg_iters=1000, num_probes=10,
                             num_lanczos=20, precond_rank=15, min_precond_size=2000,
                             cholesky_size=800, spherical_probes=False, min_lanczos=20)


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


def slq_logdet(alpha, beta, steps, weights) -> jax.Array:
  """Stochastic Lanczos quadrature from mBCG coefficients.

  Args:
    alpha, beta: ``(m, t)`` CG coefficients of the probe columns.
    steps: ``(t,)`` valid steps per column.
    weights: ``(t,)`` ``z_iᵀ P̂⁻¹ z_i`` (squared norm of each Lanczos start vector).

  Returns:
    ``(1/t) Σ_i w_i e₁ᵀ log(T_i) e₁``, an unbiased-in-the-limit estimate of ``log|P̂⁻¹ K̂|``.
  """
  tri = cg_lib.cg_tridiagonals(alpha, beta, steps)
  evals, evecs = jnp.linalg.eigh(tri)
  evals = jnp.maximum(evals, jnp.finfo(evals.dtype).tiny)
  quad = jnp.sum(evecs[:, 0, :] ** 2 * jnp.log(evals), -1)
  return jnp.mean(weights * quad)


def build_preconditioner(operator, state, settings: Settings, n: int) -> precond_lib.Preconditioner:
  """Pivoted-Cholesky preconditioner of the operator's kernel part (no gradient flows)."""
  rank = settings.precond_rank if n >= settings.min_precond_size else 0
  state = jax.lax.stop_gradient(state)
  noise = state.noise
  lmat, _ = precond_lib.pivoted_cholesky(operator.kernel_diag(state),
                                         lambda i: operator.kernel_row(state, i), rank)
  return precond_lib.make_preconditioner(lmat, noise,
                                        orthogonal=settings.precond_form == "orthogonal")


def _zeros_cotangent(tree):
  def z(a):
    if jnp.issubdtype(a.dtype, jnp.inexact):
      return jnp.zeros_like(a)
    return np.zeros(a.shape, dtype=jax.dtypes.float0)
  return jax.tree.map(z, tree)


def _forward(operator, settings, params, x, r, eps_low, eps_noise):
  n = r.shape[0]
  state = operator.prepare(params, x)
  pre = build_preconditioner(operator, state, settings, n)
  z = pre.sample(eps_low, eps_noise)
  pz = pre.solve(z)
  if settings.spherical_probes:
    # Rescale each probe so that zᵀ P̂⁻¹ z = n: P̂^{-½} z is then uniform on the sphere of radius
    # √n, still E[z zᵀ] = P̂ (both estimators stay unbiased) without the χ²_n norm noise.
    scale = jnp.sqrt(n / jnp.sum(z * pz, 0))
    z, pz = z * scale, pz * scale
  rhs = jnp.concatenate([r[:, None], z], 1)
  res = cg_lib.mbcg(lambda v: operator.matmul(state, v), rhs, precond=pre.solve,
                    tol=settings.cg_tol, max_iters=settings.max_cg_iters,
                    num_lanczos=settings.num_lanczos,
                    min_iters=min(settings.min_lanczos, settings.num_lanczos))
  sol = res.solution
  u = sol[:, 0]
  weights = jnp.sum(z * pz, 0)
  slq = slq_logdet(res.alpha[:, 1:], res.beta[:, 1:], res.lanczos_steps[1:], weights)
  logdet = pre.logdet() + slq
  data_fit = jnp.dot(r, u)
  value = -0.5 * data_fit - 0.5 * logdet - 0.5 * n * math.log(2 * math.pi)
  info = MLLInfo(converged=jnp.all(res.converged), num_iters=jnp.max(res.num_iters),
                 max_rel_residual=jnp.max(res.rel_residual), logdet=logdet, data_fit=data_fit)
  return value, info, (u, sol[:, 1:], pz)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _bbmm_core(operator, settings, params, x, r, eps_low, eps_noise):
  value, info, _ = _forward(operator, settings, params, x, r, eps_low, eps_noise)
  return value, info


def _core_fwd(operator, settings, params, x, r, eps_low, eps_noise):
  value, info, (u, kinv_z, pz) = _forward(operator, settings, params, x, r, eps_low, eps_noise)
  return (value, info), (params, x, r, eps_low, eps_noise, u, kinv_z, pz)


def _core_bwd(operator, settings, res, cot):
  params, x, r, eps_low, eps_noise, u, kinv_z, pz = res
  g = cot[0]
  t = kinv_z.shape[1]
  a = jnp.concatenate([0.5 * u[:, None], (-0.5 / t) * kinv_z], 1)
  b = jnp.concatenate([u[:, None], pz], 1)

  def quad(p):
    return jnp.sum(a * operator.matmul(operator.prepare(p, x), b))

  (grad_params,) = jax.vjp(quad, params)[1](g)
  return (grad_params, _zeros_cotangent(x), -g * u, _zeros_cotangent(eps_low),
          _zeros_cotangent(eps_noise))


_bbmm_core.defvjp(_core_fwd, _core_bwd)


def _mean_residual(params, y, zero_mean):
  return y - (0.0 if zero_mean else params.mean)


def bbmm_mll(key: jax.Array, operator, params: ops.GPParams, x, y: jax.Array,
             settings: Settings = Settings(), *, zero_mean: bool = False
             ) -> tuple[jax.Array, MLLInfo]:
  """Stochastic BBMM marginal log likelihood and diagnostics (differentiable in ``params``).

  Args:
    key: PRNG key for the probes ``z ~ N(0, P̂)`` (same key ⇒ same value).
    operator: an operator from :mod:`jaxpapers.bbmm.operators` (exact, SGPR, SKI).
    params: :class:`~jaxpapers.bbmm.operators.GPParams`.
    x: ``(n, d)`` training inputs.
    y: ``(n,)`` targets.
    settings: :class:`Settings`.
    zero_mean: ignore ``params.mean`` (a zero-mean GP).

  Returns:
    ``(log p(y), MLLInfo)``. The gradient w.r.t. ``params`` uses the trace estimator; ``x`` gets
    no gradient. Check ``info.converged`` (or use :func:`check_converged`).
  """
  _check(operator, params, x, y, settings)
  key = jax.random.key(key) if isinstance(key, int) else key
  return _bbmm_mll_jit(operator, settings, zero_mean, key, params, x, y)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _bbmm_mll_jit(operator, settings, zero_mean, key, params, x, y):
  n = y.shape[0]
  rank = settings.precond_rank if n >= settings.min_precond_size else 0
  rank = min(rank, n)
  k1, k2 = jax.random.split(key)
  eps_low = jax.random.normal(k1, (rank, settings.num_probes), y.dtype)
  eps_noise = jax.random.normal(k2, (n, settings.num_probes), y.dtype)
  r = _mean_residual(params, y, zero_mean)
  value, info = _bbmm_core(operator, settings, params, x, r, eps_low, eps_noise)
  value = value + operator.trace_term(operator.prepare(params, x))
  return value, info


def cholesky_mll(operator, params: ops.GPParams, x, y: jax.Array, *, zero_mean: bool = False
                 ) -> jax.Array:
  """Exact ``log p(y)`` by dense Cholesky of the operator's ``K̂`` (autodiff gradients)."""
  _check(operator, params, x, y, None)
  return _cholesky_mll_jit(operator, zero_mean, params, x, y)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _cholesky_mll_jit(operator, zero_mean, params, x, y):
  state = operator.prepare(params, x)
  khat = operator.dense(state)
  chol = jnp.linalg.cholesky(khat)
  r = _mean_residual(params, y, zero_mean)
  alpha = jax.scipy.linalg.cho_solve((chol, True), r)
  n = y.shape[0]
  value = (-0.5 * jnp.dot(r, alpha) - jnp.sum(jnp.log(jnp.diag(chol)))
           - 0.5 * n * math.log(2 * math.pi))
  return value + operator.trace_term(state)


def mll(key: jax.Array, operator, params: ops.GPParams, x, y: jax.Array,
        settings: Settings = Settings(), *, method: str = "auto", zero_mean: bool = False
        ) -> tuple[jax.Array, MLLInfo]:
  """Marginal log likelihood by BBMM or (for small ``n``) exact Cholesky.

  Args:
    key: PRNG key (unused by the Cholesky path).
    operator, params, x, y, settings, zero_mean: as in :func:`bbmm_mll`.
    method: ``"bbmm"``, ``"cholesky"`` or ``"auto"`` (Cholesky iff ``n ≤ settings.cholesky_size``,
      like GPyTorch's fallback for ``n ≤ 800``).

  Returns:
    ``(value, MLLInfo)``; the Cholesky path reports ``converged=True`` and zero iterations.
  """
  validation.check_in(method, "method", ("auto", "bbmm", "cholesky"))
  n = y.shape[0]
  if method == "cholesky" or (method == "auto" and n <= settings.cholesky_size):
    value = cholesky_mll(operator, params, x, y, zero_mean=zero_mean)
    nan = jnp.full((), jnp.nan, y.dtype)
    return value, MLLInfo(jnp.bool_(True), jnp.int32(0), jnp.zeros((), y.dtype), nan, nan)
  return bbmm_mll(key, operator, params, x, y, settings, zero_mean=zero_mean)


def check_converged(info: MLLInfo) -> MLLInfo:
  """Raises :class:`ConvergenceError` (on the host) if the mBCG solve did not converge."""
  if not bool(np.all(np.asarray(info.converged))):
    raise ConvergenceError(
        f"mBCG did not converge: relative residual {float(np.max(info.max_rel_residual)):.3g} "
        f"after {int(np.max(info.num_iters))} iterations; the kernel matrix is ill-conditioned "
        "(raise the noise, add jitter, or raise max_cg_iters)")
  return info


def _check(operator, params, x, y, settings):
  ops.check_gp_inputs(params, x, y)
  if isinstance(operator.kernel, str) or isinstance(operator.kernel, tuple):
    kernels.check_params(operator.kernel, params.kernel, x.shape[1], "params.kernel")
  if settings is not None:
    if not isinstance(settings, Settings):
      raise TypeError(f"settings must be a Settings, got {type(settings).__name__}")
    validation.check_positive(settings.cg_tol, "settings.cg_tol")
    if settings.num_probes < 1:
      raise ValueError(f"settings.num_probes must be >= 1, got {settings.num_probes}")
    validation.check_in(settings.precond_form, "settings.precond_form",
                        ("woodbury", "orthogonal"))
    if settings.min_lanczos < 0:
      raise ValueError(f"settings.min_lanczos must be >= 0, got {settings.min_lanczos}")
    if settings.max_cg_iters < 1:
      raise ValueError(f"settings.max_cg_iters must be >= 1, got {settings.max_cg_iters}")

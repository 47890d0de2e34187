"""Modified batched conjugate gradients (mBCG) and Lanczos tridiagonals.

Gardner et al., "GPyTorch: Blackbox Matrix-Matrix Gaussian Process Inference with GPU
Acceleration", NeurIPS 2018, Algorithm 2. One call solves ``A U = B`` for every column of ``B`` with
preconditioned CG, using one matrix–matrix product ``A @ D`` per iteration, and records the CG
coefficients α_j, β_j, from which the Lanczos tridiagonal of each column follows (Saad 2003, §6.7):

    T_jj     = 1/α_j + β_{j-1}/α_{j-1}      (T_00 = 1/α_0)
    T_{j,j-1} = √β_{j-1} / α_{j-1}

With a preconditioner ``P`` these are the Lanczos tridiagonals of ``P^{-1/2} A P^{-1/2}`` started at
``P^{-1/2} b / ||P^{-1/2} b||``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxpapers._src import validation

MatMul = Callable[[jax.Array], jax.Array]


class MBCGResult(NamedTuple):
  """Output of :func:`mbcg`.

  Attributes:
    solution: ``(n, t)`` approximate ``A^{-1} B``.
    alpha: ``(num_lanczos, t)`` CG step sizes α_j of the first ``num_lanczos`` iterations (0 after
      a column stopped).
    beta: ``(num_lanczos, t)`` CG direction coefficients β_j (0 after a column stopped).
    lanczos_steps: ``(t,)`` number of valid entries in ``alpha``/``beta`` per column.
    num_iters: ``(t,)`` CG iterations each column ran before it was frozen.
    rel_residual: ``(t,)`` final ``||b - A u|| / ||b||`` (from the CG recursion); NaN for a
      column whose right-hand side or product ``A d`` was not finite.
    converged: ``(t,)`` whether ``rel_residual < tol`` (False for NaN).
    residual_history: ``(max_iters + 1, t)`` relative residual after each iteration (NaN after
      the loop ended) when ``record_history`` is set, else ``None``.
  """

  solution: jax.Array
  alpha: jax.Array
  beta: jax.Array
  lanczos_steps: jax.Array
  num_iters: jax.Array
  rel_residual: jax.Array
  converged: jax.Array
  residual_history: jax.Array | None


def mbcg(matmul: MatMul, b: jax.Array, *, precond: MatMul | None = None,
         x0: jax.Array | None = None, tol: float = 1e-2, max_iters: int = 1000,
         num_lanczos: int = 0, min_iters: int | None = None,
         record_history: bool = False) -> MBCGResult:
  """Modified batched preconditioned CG (mBCG, Gardner et al. 2018, Algorithm 2).

  Every column runs the textbook preconditioned CG recursion with ``R_0 = B - A U_0``,
  ``Z_0 = P^{-1} R_0``, ``D_0 = Z_0`` and

      α_j = (r_j·z_j) / (d_j·A d_j),  u += α_j d_j,  r -= α_j A d_j,
      z = P^{-1} r,  β_j = (r_{j+1}·z_{j+1}) / (r_j·z_j),  d = z + β_j d.

  A column is *frozen* (its α, β set to 0, so nothing changes and nothing becomes NaN) once its
  relative residual is below ``tol`` after at least ``min_iters`` iterations, or when CG breaks
  down (residual at round-off level, or a non-positive curvature ``d·A d``). The loop stops when
  all columns are frozen or after ``max_iters`` iterations. It is a ``lax.while_loop``: never
  differentiate through it (the GP likelihood has its own VJP).

  Args:
    matmul: ``V -> A @ V`` for ``(n, t)`` blocks; ``A`` symmetric positive definite.
    b: ``(n, t)`` right-hand sides (or ``(n,)``, treated as one column).
    precond: ``R -> P^{-1} R`` (``None``: identity).
    x0: initial guess, default zeros.
    tol: relative-residual tolerance (GPyTorch: 1 in training, 0.01 at evaluation).
    max_iters: iteration cap (GPyTorch: 1000).
    num_lanczos: number of α/β pairs to record for Lanczos tridiagonals (GPyTorch: 20).
    min_iters: iterations every column runs before it may stop on ``tol``; defaults to
      ``num_lanczos`` so the tridiagonals are full size unless CG breaks down earlier.
    record_history: also return the relative residual after every iteration.

  Returns:
    An :class:`MBCGResult`.
  """
  validation.check_array(b, "b", ndim=(1, 2), dtype_kind="f")
  if b.shape[0] == 0 or (b.ndim == 2 and b.shape[1] == 0):
    raise ValueError(f"b must have at least one row and one column, got shape {b.shape}")
  vector = b.ndim == 1
  if vector:
    b = b[:, None]
  if x0 is not None:
    validation.check_array(x0, "x0", shape=b.shape if not vector else (b.shape[0],), dtype_kind="f")
    x0 = x0[:, None] if vector else x0
  validation.check_positive(tol, "tol")
  if max_iters < 1:
    raise ValueError(f"max_iters must be >= 1, got {max_iters}")
  if num_lanczos < 0:
    raise ValueError(f"num_lanczos must be >= 0, got {num_lanczos}")
  min_iters = num_lanczos if min_iters is None else min_iters
  if min_iters < 0:
    raise ValueError(f"min_iters must be >= 0, got {min_iters}")
  precond = (lambda r: r) if precond is None else precond
  dtype = b.dtype
  t = b.shape[1]
  eps = jnp.finfo(dtype).eps
  bnorm = jnp.linalg.norm(b, axis=0)
  bnorm_safe = jnp.where(bnorm > 0, bnorm, 1.0)
  u = jnp.zeros_like(b) if x0 is None else x0.astype(dtype)
  r = b - matmul(u) if x0 is not None else b
  z = precond(r)
  rz = jnp.sum(r * z, 0)
  res = jnp.linalg.norm(r, axis=0) / bnorm_safe
  breakdown = 10 * eps
  done = (res <= breakdown) | ((res < tol) & (min_iters == 0)) | (rz <= 0) | ~jnp.isfinite(res)
  nl = max(num_lanczos, 1)
  alphas = jnp.zeros((nl, t), dtype)
  betas = jnp.zeros((nl, t), dtype)
  steps = jnp.zeros((t,), jnp.int32)
  hist_len = max_iters + 1 if record_history else 1
  hist = jnp.full((hist_len, t), jnp.nan, dtype).at[0].set(res)

  def cond(state):
    j, _, _, _, _, _, done, *_ = state
    return (j < max_iters) & ~jnp.all(done)

  def body(state):
    j, u, r, z, d, rz, done, res, alphas, betas, steps, hist = state
    active = ~done
    v = matmul(d)
    dv = jnp.sum(d * v, 0)
    bad = active & ~(dv > 0)
    # A non-finite product (NaN/inf in A) is not a breakdown to stop quietly at: report it.
    nonfinite = active & ~jnp.isfinite(dv)
    step = active & (dv > 0)
    alpha = jnp.where(step, rz / jnp.where(step, dv, 1.0), 0.0)
    u = u + alpha * d
    r = r - alpha * v
    z_new = precond(r)
    rz_new = jnp.sum(r * z_new, 0)
    beta = jnp.where(step & (rz > 0), rz_new / jnp.where(rz > 0, rz, 1.0), 0.0)
    d = jnp.where(step, z_new + beta * d, d)
    z = jnp.where(step, z_new, z)
    rz = jnp.where(step, rz_new, rz)
    res = jnp.where(step, jnp.linalg.norm(r, axis=0) / bnorm_safe, res)
    res = jnp.where(nonfinite, jnp.nan, res)
    steps = steps + step.astype(jnp.int32)
    rec = step & (j < num_lanczos)
    idx = jnp.minimum(j, nl - 1)
    alphas = alphas.at[idx].set(jnp.where(rec, alpha, alphas[idx]))
    betas = betas.at[idx].set(jnp.where(rec, beta, betas[idx]))
    finished = ((res < tol) & (steps >= min_iters)) | (res <= breakdown) | (rz <= 0)
    done = done | bad | (step & finished)
    if record_history:
      hist = hist.at[j + 1].set(res)
    return j + 1, u, r, z, d, rz, done, res, alphas, betas, steps, hist

  state = (jnp.int32(0), u, r, z, z, rz, done, res, alphas, betas, steps, hist)
  state = jax.lax.while_loop(cond, body, state)
  _, u, _, _, _, _, _, res, alphas, betas, steps, hist = state
  lanczos_steps = jnp.minimum(steps, num_lanczos)
  if num_lanczos == 0:
    alphas = alphas[:0]
    betas = betas[:0]
  return MBCGResult(
      solution=u[:, 0] if vector else u,
      alpha=alphas,
      beta=betas,
      lanczos_steps=lanczos_steps,
      num_iters=steps,
      rel_residual=res,
      converged=res < tol,
      residual_history=hist if record_history else None,
  )


def cg_tridiagonals(alpha: jax.Array, beta: jax.Array, steps: jax.Array) -> jax.Array:
  """Lanczos tridiagonal matrices from CG coefficients.

  Args:
    alpha: ``(m, t)`` CG step sizes.
    beta: ``(m, t)`` CG direction coefficients.
    steps: ``(t,)`` valid steps per column (``<= m``). Entries past a column's last step are
      padded with a decoupled identity block, so ``e1ᵀ f(T) e1`` only sees the valid block.

  Returns:
    ``(t, m, m)`` symmetric tridiagonal matrices.
  """
  validation.check_array(alpha, "alpha", ndim=2, dtype_kind="f")
  validation.check_array(beta, "beta", shape=alpha.shape, dtype_kind="f")
  validation.check_array(steps, "steps", shape=(alpha.shape[1],), dtype_kind="iu")
  if alpha.shape[0] == 0:
    raise ValueError("alpha must have at least one row (num_lanczos >= 1), got shape "
                     f"{alpha.shape}")
  m, _ = alpha.shape
  idx = jnp.arange(m)[:, None]
  valid = idx < steps[None, :]
  a_safe = jnp.where(valid, alpha, 1.0)
  inv_a = 1.0 / a_safe
  prev_ratio = jnp.concatenate([jnp.zeros_like(alpha[:1]), beta[:-1] / a_safe[:-1]], 0)
  diag = jnp.where(valid, inv_a + prev_ratio, 1.0)
  off = jnp.sqrt(jnp.maximum(beta[:-1], 0.0)) / a_safe[:-1]
  off = jnp.where(valid[1:], off, 0.0)
  dmat = jax.vmap(jnp.diag)(diag.T)
  if m == 1:
    return dmat
  lower = jax.vmap(lambda o: jnp.diag(o, -1))(off.T)
  return dmat + lower + jnp.swapaxes(lower, -1, -2)


def lanczos(matmul: MatMul, v0: jax.Array, num_steps: int, *, reorthogonalize: bool = True
            ) -> tuple[jax.Array, jax.Array]:
  """Symmetric Lanczos with full reorthogonalisation.

  Args:
    matmul: ``V -> A @ V`` for ``(n, k)`` blocks.
    v0: ``(n,)`` nonzero start vector.
    num_steps: number of Lanczos vectors ``k``.
    reorthogonalize: Gram–Schmidt against all previous vectors (twice), which keeps ``Q``
      orthonormal in floating point.

  Returns:
    ``(Q, T)``: ``(n, k)`` orthonormal basis and ``(k, k)`` tridiagonal with ``Qᵀ A Q = T``.
    If the Krylov space is exhausted early, the remaining columns of ``Q`` are 0 and ``T`` is
    padded with a decoupled identity block.
  """
  validation.check_array(v0, "v0", ndim=1, dtype_kind="f", finite=True)
  if v0.shape[0] == 0:
    raise ValueError("v0 must have at least one entry, got shape (0,)")
  if validation.is_concrete(v0) and not bool(jnp.any(v0 != 0)):
    raise ValueError("v0 must be nonzero (the Lanczos start vector is v0 / ||v0||)")
  if isinstance(num_steps, bool) or not isinstance(num_steps, int):
    raise TypeError(f"num_steps must be an int, got {num_steps!r}")
  if num_steps < 1:
    raise ValueError(f"num_steps must be >= 1, got {num_steps}")
  n = v0.shape[0]
  dtype = v0.dtype
  q0 = v0 / jnp.linalg.norm(v0)
  qs = jnp.zeros((n, num_steps), dtype).at[:, 0].set(q0)
  eps = jnp.finfo(dtype).eps

  def body(j, carry):
    qs, diag, off, alive = carry
    q = qs[:, j]
    w = matmul(q[:, None])[:, 0]
    a = jnp.dot(q, w)
    w = w - a * q - jnp.where(j > 0, off[jnp.maximum(j - 1, 0)], 0.0) * qs[:, jnp.maximum(j - 1, 0)]
    if reorthogonalize:
      for _ in range(2):
        w = w - qs @ (qs.T @ w)
    bnorm = jnp.linalg.norm(w)
    diag = diag.at[j].set(jnp.where(alive, a, 1.0))
    cont = alive & (bnorm > 1e3 * eps * jnp.abs(a) + 1e-300)
    nxt = jnp.where(cont, w / jnp.where(cont, bnorm, 1.0), 0.0)
    has_next = j + 1 < num_steps
    qs = jnp.where(has_next, qs.at[:, jnp.minimum(j + 1, num_steps - 1)].set(nxt), qs)
    off = off.at[jnp.minimum(j, num_steps - 1)].set(jnp.where(cont & has_next, bnorm, 0.0))
    return qs, diag, off, cont

  diag = jnp.ones((num_steps,), dtype)
  off = jnp.zeros((num_steps,), dtype)
  qs, diag, off, _ = jax.lax.fori_loop(0, num_steps, body, (qs, diag, off, jnp.bool_(True)))
  t = jnp.diag(diag) + jnp.diag(off[:-1], -1) + jnp.diag(off[:-1], 1)
  return qs, t

"""Rank-k pivoted-Cholesky preconditioner ``P̂ = L Lᵀ + σ² I`` (Gardner et al. 2018, §4.1).

The partial pivoted Cholesky factor (Harbrecht et al. 2012) only needs the kernel diagonal and
``k`` kernel rows. With it, ``P̂`` is solved by the Woodbury identity, ``log|P̂|`` is exact by the
matrix determinant lemma, and probes ``z ~ N(0, P̂)`` are ``L ε₁ + σ ε₂``:

    P̂⁻¹ v = (v − L (σ² I_k + LᵀL)⁻¹ Lᵀ v) / σ² = (v − R Rᵀ v) / σ²,   R = L C⁻ᵀ,  C Cᵀ = σ² I_k + LᵀL
    log|P̂| = (n − k) log σ² + log|σ² I_k + LᵀL|
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl

from jaxpapers._src import validation


def pivoted_cholesky(diag: jax.Array, row_fn: Callable[[jax.Array], jax.Array], rank: int, *,
                     rel_tol: float = 1e-10, block: int = 128) -> tuple[jax.Array, jax.Array]:
  """Partial pivoted Cholesky ``K ≈ L Lᵀ`` of a PSD matrix given by its diagonal and rows.

  Each step pivots on the largest remaining diagonal entry ``d_i``, sets the new column to
  ``(K[i, :] − L L[i]ᵀ) / √d_i`` and updates ``d −= column²``. Once ``max d < rel_tol · max diag``
  the remaining columns are 0 (the factor is then exact).

  The columns are built in blocks of ``block``: step ``m`` of a block starting at column ``m₀``
  multiplies by the ``m₀`` finished columns (a static slice) and by the block's own, instead of
  by all ``rank`` columns, zeros included. That halves the work and the memory traffic of a
  rank-1000 factor (the loop is bound by reading ``L``), with the same result up to rounding.

  Args:
    diag: ``(n,)`` diagonal of ``K``.
    row_fn: ``i -> K[i, :]`` for a traced integer ``i``.
    rank: number of columns ``k`` (static).
    rel_tol: relative stopping threshold on the remaining diagonal.
    block: columns per block (static; ``block >= rank`` is the unblocked loop).

  Returns:
    ``(L, pivots)``: ``(n, k)`` factor and ``(k,)`` pivot indices.
  """
  validation.check_array(diag, "diag", ndim=1, dtype_kind="f", finite=True)
  if validation.is_concrete(diag) and bool(jnp.any(diag < 0)):
    raise ValueError("diag must be >= 0 (the diagonal of a PSD matrix)")
  if isinstance(rank, bool) or not isinstance(rank, int):
    raise TypeError(f"rank must be an int, got {rank!r}")
  if rank < 0:
    raise ValueError(f"rank must be >= 0, got {rank}")
  if isinstance(block, bool) or not isinstance(block, int) or block < 1:
    raise ValueError(f"block must be a positive int, got {block!r}")
  n = diag.shape[0]
  rank = min(rank, n)
  pivots = jnp.zeros((rank,), jnp.int32)
  if rank == 0:
    return jnp.zeros((n, 0), diag.dtype), pivots
  thresh = rel_tol * jnp.max(diag)
  done = jnp.zeros((n, 0), diag.dtype)  # the finished columns of L
  d = diag
  for m0 in range(0, rank, block):
    size = min(block, rank - m0)

    def body(j, carry, m0=m0, prev=done):
      blk, d, pivots = carry
      i = jnp.argmax(d)
      piv = d[i]
      ok = piv > thresh
      row = row_fn(i) - blk @ blk[i]
      if m0:
        row = row - prev @ prev[i]
      col = row / jnp.sqrt(jnp.where(ok, piv, 1.0))
      col = jnp.where(ok, col, 0.0)
      blk = blk.at[:, j].set(col)
      d = jnp.maximum(d - col * col, 0.0)
      d = jnp.where(ok, d.at[i].set(0.0), d)
      pivots = pivots.at[m0 + j].set(i.astype(jnp.int32))
      return blk, d, pivots

    blk, d, pivots = jax.lax.fori_loop(0, size, body,
                                       (jnp.zeros((n, size), diag.dtype), d, pivots))
    done = jnp.concatenate([done, blk], 1)
  return done, pivots


class Preconditioner(NamedTuple):
  """``P̂ = L Lᵀ + σ² I`` with its Woodbury factor.

  Attributes:
    lmat: ``(n, k)`` low-rank factor (``k = 0`` gives ``P̂ = σ² I``).
    noise: scalar ``σ² > 0``.
    inner_chol: ``(k, k)`` lower Cholesky factor ``C`` of ``σ² I_k + LᵀL``.
    woodbury: ``(n, k)`` ``R = L C⁻ᵀ``, so that ``P̂⁻¹ v = (v − R Rᵀ v) / σ²``; or, for the
      orthogonal form, ``U`` with orthonormal columns spanning ``L``.
    spectrum: ``None`` (Woodbury form) or ``(k,)`` eigenvalues ``s²`` of ``LLᵀ`` on ``U``
      (orthogonal form, ``LLᵀ = U diag(s²) Uᵀ``).
  """

  lmat: jax.Array
  noise: jax.Array
  inner_chol: jax.Array
  woodbury: jax.Array
  spectrum: jax.Array | None = None

  def solve(self, v: jax.Array) -> jax.Array:
    """``P̂⁻¹ v`` for ``(n,)`` or ``(n, t)`` ``v``.

    Woodbury form: two thin products. ``R`` is formed once by a triangular solve, so no
    triangular solve runs per CG iteration (inside XLA:CPU's while loop a ``cho_solve`` per
    iteration cost more than the kernel product). Its ``v − R Rᵀ v`` cancels where
    ``s² ≫ σ²``: once ``s²/σ²`` nears ``1/ε`` of the dtype the computed ``P̂⁻¹`` is no longer
    positive definite and CG breaks down (float32: n = 10⁶ points, or σ² ≈ 10⁻⁴ at n = 4000).
    Orthogonal form: ``P̂⁻¹ v = U (Uᵀv / (s² + σ²)) + (I − UUᵀ)² v / σ²``, the complement
    projected twice so no component of ``v`` along ``U`` survives it; five thin products.
    """
    if self.lmat.shape[1] == 0:
      return v / self.noise
    u = self.woodbury
    if self.spectrum is None:
      return (v - u @ (u.T @ v)) / self.noise
    c = u.T @ v
    w = v - u @ c
    w = w - u @ (u.T @ w)
    inv = 1.0 / (self.spectrum + self.noise)
    return w / self.noise + u @ (inv * c.T).T  # c is (k,) or (k, t)

  def logdet(self) -> jax.Array:
    """Exact ``log|P̂|`` (matrix determinant lemma)."""
    n, k = self.lmat.shape
    if self.spectrum is not None:
      return (n - k) * jnp.log(self.noise) + jnp.sum(jnp.log(self.spectrum + self.noise))
    return ((n - k) * jnp.log(self.noise)
            + 2.0 * jnp.sum(jnp.log(jnp.diag(self.inner_chol))))

  def sample(self, eps_low: jax.Array, eps_noise: jax.Array) -> jax.Array:
    """``z = L ε₁ + σ ε₂ ~ N(0, P̂)`` from standard normals ``(k, t)`` and ``(n, t)``."""
    return self.lmat @ eps_low + jnp.sqrt(self.noise) * eps_noise

  def matmul(self, v: jax.Array) -> jax.Array:
    """``P̂ v``."""
    return self.lmat @ (self.lmat.T @ v) + self.noise * v

  def trace_factors(self) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(c, A, B)`` with ``tr(P̂⁻¹ M) = c·tr(M) + Σ_ij A_ij (M B)_ij`` for any ``n × n`` ``M``.

    Woodbury form: ``P̂⁻¹ = (I − R Rᵀ)/σ²`` gives ``(1/σ², −R/σ², R)``; orthogonal form:
    ``P̂⁻¹ = (I − U Uᵀ)/σ² + U diag(1/(s² + σ²)) Uᵀ`` gives ``(1/σ², U·(1/(s²+σ²) − 1/σ²), U)``.
    ``tr(P̂⁻¹ M)`` then costs one product of ``M`` with ``k`` columns.
    """
    c = 1.0 / self.noise
    u = self.woodbury
    if self.spectrum is None:
      return c, -u * c, u
    return c, u * (1.0 / (self.spectrum + self.noise) - c), u


def make_preconditioner(lmat: jax.Array, noise: jax.Array, *, orthogonal: bool = False
                        ) -> Preconditioner:
  """Builds :class:`Preconditioner` from a low-rank factor ``L`` and noise ``σ²``.

  Args:
    lmat: ``(n, k)`` factor.
    noise: ``σ² > 0`` (a concrete non-positive or non-finite value raises ``ValueError``).
    orthogonal: use the orthogonal form (QR of ``L`` and an eigendecomposition of the ``k × k``
      ``R Rᵀ``, ``O(n k²)`` once), which stays positive definite in float32 whatever ``s²/σ²``;
      the default Woodbury form is cheaper per CG iteration (two thin products instead of five).
  """
  validation.check_array(lmat, "lmat", ndim=2, dtype_kind="f", finite=True)
  if validation.is_concrete(noise):
    value = float(jnp.asarray(noise))  # σ² = 0 makes P̂ singular for k < n: P̂⁻¹ = inf
    if not (jnp.isfinite(value) and value > 0):
      raise ValueError(f"noise must be finite and > 0 for the preconditioner, got {value}")
  k = lmat.shape[1]
  noise = jnp.asarray(noise, lmat.dtype)
  if orthogonal and k > 0:
    q, r = jnp.linalg.qr(lmat)
    s2, w = jnp.linalg.eigh(r @ r.T)
    return Preconditioner(lmat, noise, jnp.zeros((0, 0), lmat.dtype), q @ w,
                          jnp.maximum(s2, 0.0))
  inner = noise * jnp.eye(k, dtype=lmat.dtype) + lmat.T @ lmat
  if k == 0:
    return Preconditioner(lmat, noise, inner, lmat)
  chol = jnp.linalg.cholesky(inner)
  woodbury = jsl.solve_triangular(chol, lmat.T, lower=True).T
  return Preconditioner(lmat, noise, chol, woodbury)

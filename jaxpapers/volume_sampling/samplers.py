"""Exact samplers for volume sampling, leveraged volume sampling and i.i.d. baselines.

Reference: M. Dereziński, M. K. Warmuth, D. Hsu. "Leveraged volume sampling for linear
regression". NeurIPS 2018.

Notation: ``X`` is an ``n x d`` design of full column rank, ``l_i = x_i^T (X^T X)^{-1} x_i`` are
the leverage scores (``sum_i l_i = d``) and ``k >= d`` is the number of responses we may ask for.

* Volume sampling of size ``k``: ``P(S) = det(X_S^T X_S) / (C(n-d, k-d) det(X^T X))`` over
  subsets ``|S| = k``.  Sampled exactly by *reverse iterative sampling*: starting from
  ``S = [n]``, remove ``i`` with probability ``(1 - x_i^T (X_S^T X_S)^{-1} x_i) / (|S| - d)``
  until ``|S| = k`` (:func:`volume_sample`, ``O((n - k) n d^2)``).  :func:`fast_volume_sample`
  proposes ``i`` uniformly from ``S`` and accepts with probability ``1 - x_i^T Z x_i``
  (``Z = (X_S^T X_S)^{-1}`` kept by Sherman-Morrison), which removes ``i`` with exactly the same
  probabilities in expected ``O(n d^2)`` total time while ``|S| >= 2d``; below ``2d`` (only when
  ``k < 2d``) it switches to the exact step on the remaining ``2d`` rows.
* Leveraged volume sampling (q-rescaled volume sampling with ``q_i = l_i / d``): a sequence
  ``pi in [n]^k`` with ``P(pi) ∝ det(sum_t x_{pi_t} x_{pi_t}^T / q_{pi_t}) prod_t q_{pi_t}``.
  Sampled by *determinantal rejection sampling* (Algorithm 1 of the paper): draw
  ``s = max(k, 4 d^2)`` i.i.d. indices from ``q``, accept with probability
  ``det(X~^T X~ / s) / det(X^T X)`` where ``X~`` has rows ``x_{pi_t} / sqrt(q_{pi_t})``
  (acceptance rate ``prod_{j<d} (1 - j/s)``), then volume-sample ``k`` of the ``s`` rescaled rows.
  After the one-time ``O(n d^2)`` leverage scores, one sample costs ``O(d^4 + s log n)``.
* :func:`dpp_volume_sample`: the same volume-sampling law as a size-``d`` projection-DPP sample
  padded with ``k - d`` uniform rows (Cauchy-Binet), in ``d`` vectorised ``O(nd)`` steps after
  a CholeskyQR2 basis (:func:`orthonormal_basis`); one eager call is one compiled program.

Every sampler is a pure function of an explicit typed key, jit-able with ``k`` static and
vmap-able over keys; it returns a :class:`Sample` whose ``weights`` give the paper's estimator
through :func:`jaxpapers.volume_sampling.estimators.least_squares_estimate`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers._src import validation


class Sample(NamedTuple):
  """A sampled multiset of rows and the weights of its least-squares estimator.

  Attributes:
    indices: ``(k,)`` int32 row indices into ``X`` (sorted for the without-replacement samplers;
      in draw order, possibly repeated, for the with-replacement ones).
    weights: ``(k,)`` weights of the estimator ``argmin_w sum_t weights_t (x_{i_t}^T w - y_{i_t})^2``:
      ones for (fast) volume and uniform sampling, ``1 / q_{i_t}`` for leveraged volume sampling,
      ``1 / (k q_{i_t})`` for i.i.d. leverage-score sampling.
    proposals: int32 scalar: the number of proposals the sampler drew (uniform proposals of the
      rejection loop for :func:`fast_volume_sample`, rounds of ``s`` i.i.d. draws for
      :func:`leveraged_volume_sample`, removal steps for :func:`volume_sample`, 1 for the
      one-shot samplers :func:`dpp_volume_sample`, :func:`leverage_sample`, :func:`uniform_sample`).
  """

  indices: jax.Array
  weights: jax.Array
  proposals: jax.Array


class LeverageState(NamedTuple):
  """The one-time ``O(n d^2)`` part of leveraged volume sampling, bound to its design.

  Attributes:
    q: ``(n,)`` sampling probabilities ``l_i / d``.
    cdf: ``(n,)`` cumulative sums of ``q`` (inverse-CDF sampling in ``O(log n)`` per draw).
    logdet_gram: ``log det(X^T X)``.
    fingerprint: ``(2,)`` two fixed pseudo-random linear functionals of ``X`` (see
      :func:`design_fingerprint`); :func:`leveraged_volume_sample` refuses a state whose
      fingerprint does not match the ``X`` it is given (a state of another design with the
      same ``n`` would otherwise silently sample from the wrong law).
  """

  q: jax.Array
  cdf: jax.Array
  logdet_gram: jax.Array
  fingerprint: jax.Array


def design_fingerprint(X: jax.Array) -> jax.Array:
  """``(sum_ij X_ij a_ij, sum_ij X_ij b_ij)`` for fixed quasi-random ``a, b`` in ``[-1/2, 1/2)``.

  ``O(nd)``. Two designs of the same shape that differ in any entry give different
  fingerprints except on a measure-zero set of perturbations; equal designs give equal values up
  to summation rounding (compared with a relative tolerance in :func:`leveraged_volume_sample`).
  """
  n, d = X.shape
  i = jnp.arange(n, dtype=jnp.float32)[:, None]
  j = jnp.arange(d, dtype=jnp.float32)[None, :]
  a = jnp.mod(0.7548776662 * i + 0.5698402910 * j + 0.31, 1.0) - 0.5
  b = jnp.mod(0.6180339887 * i + 0.4142135624 * j + 0.77, 1.0) - 0.5
  return jnp.stack([jnp.sum(X * a.astype(X.dtype)), jnp.sum(X * b.astype(X.dtype))])


def _fingerprint_mismatch(state, X):
  tol = 1e-4 * (jnp.sum(jnp.abs(X)) + jnp.finfo(X.dtype).tiny)
  return jnp.any(jnp.abs(state.fingerprint - design_fingerprint(X)) > tol)


# ----------------------------------------------------------------------------- validation


def _check_key(key):
  if not (hasattr(key, "dtype") and jnp.issubdtype(key.dtype, jax.dtypes.prng_key)):
    raise TypeError(
        "key must be a typed PRNG key from jax.random.key(seed), got "
        f"{getattr(key, 'dtype', type(key).__name__)}")
  if key.shape != ():
    raise ValueError(f"key must be a single key (shape ()), got shape {key.shape}; vmap over keys")


def _check_design(X, name: str = "X", *, rank: bool = True, finite: bool = True):
  validation.check_array(X, name, ndim=2, dtype_kind="f", finite=finite)
  n, d = X.shape
  if d < 1 or n < d:
    raise ValueError(f"{name} must have at least as many rows as columns (n >= d >= 1), got {X.shape}")
  if rank and validation.is_concrete(X):
    r = np.linalg.matrix_rank(np.asarray(X))
    if r < d:
      raise ValueError(f"{name} must have full column rank d={d}, got rank {r} "
                       "(drop collinear/constant columns)")
  return n, d


def _check_k(k, n: int, d: int, *, replacement: bool = False) -> int:
  if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
    raise TypeError(f"k must be a Python int (it fixes the sample's shape), got {type(k).__name__}")
  k = int(k)
  if k < d:
    raise ValueError(f"k must be >= d={d} (the number of columns of X), got k={k}")
  if not replacement and k > n:
    raise ValueError(f"k must be <= n={n} for sampling without replacement, got k={k}")
  return k


# ----------------------------------------------------------------------------- leverage scores


def leverage_scores(X: jax.Array) -> jax.Array:
  """Exact leverage scores ``l_i = x_i^T (X^T X)^{-1} x_i`` from a thin QR, ``O(n d^2)``.

  Args:
    X: ``(n, d)`` float design of full column rank.

  Returns:
    ``(n,)`` scores in ``[0, 1]`` summing to ``d``.
  """
  _check_design(X)
  return _leverage(X)


def _leverage(X):
  q, _ = jnp.linalg.qr(X, mode="reduced")
  return jnp.sum(q * q, axis=1)


def approximate_leverage_scores(key: jax.Array, X: jax.Array, *, sketch_size: int | None = None,
                                jl_dim: int | None = None) -> jax.Array:
  """Fast approximate leverage scores for ``n >> d`` (sketch-and-precondition).

  A CountSketch ``S`` (``sketch_size`` buckets, random signs; ``O(nd)``) gives ``S X = Q R``;
  then ``l_i ≈ ||x_i^T R^{-1} G||^2`` with an optional Gaussian JL matrix ``G`` of ``jl_dim``
  columns (``O(n d jl_dim)`` instead of ``O(n d^2)``).  ``X R^{-1}`` is a well-conditioned basis
  of ``range(X)`` when ``S`` is a subspace embedding, so each score is within a constant factor
  (Drineas, Magdon-Ismail, Mahoney, Woodruff 2012; Clarkson & Woodruff 2013).

  Args:
    key: typed PRNG key.
    X: ``(n, d)`` float design of full column rank.
    sketch_size: CountSketch rows; default ``min(n, 10 d^2)`` (clipped below at ``d``).
    jl_dim: columns of the JL projection; ``None`` (default) uses ``R^{-1}`` itself (one GEMM).

  Returns:
    ``(n,)`` approximate scores (not renormalised).
  """
  _check_key(key)
  n, d = _check_design(X, rank=False)
  m = min(n, 10 * d * d) if sketch_size is None else int(sketch_size)
  if m < d:
    raise ValueError(f"sketch_size must be >= d={d}, got {m}")
  if jl_dim is not None and int(jl_dim) < 1:
    raise ValueError(f"jl_dim must be >= 1, got {jl_dim}")
  k_bucket, k_sign, k_jl = jax.random.split(key, 3)
  buckets = jax.random.randint(k_bucket, (n,), 0, m)
  signs = jax.random.rademacher(k_sign, (n,), dtype=X.dtype)
  sx = jax.ops.segment_sum(X * signs[:, None], buckets, num_segments=m)
  _, r = jnp.linalg.qr(sx, mode="reduced")
  if jl_dim is None:
    rhs = jnp.eye(d, dtype=X.dtype)
  else:
    rhs = jax.random.normal(k_jl, (d, int(jl_dim)), X.dtype) / math.sqrt(int(jl_dim))
  omega = jax.scipy.linalg.solve_triangular(r, rhs, lower=False)
  return jnp.sum((X @ omega) ** 2, axis=1)


def prepare_leveraged(X: jax.Array) -> LeverageState:
  """The one-time ``O(n d^2)`` step of :func:`leveraged_volume_sample` (reuse it across draws).

  Args:
    X: ``(n, d)`` float design of full column rank.

  Returns:
    A :class:`LeverageState` with ``q = l / d``, its CDF and ``log det(X^T X)``.
  """
  _check_design(X)
  return _prepare_leveraged(X)


def _prepare_leveraged(X) -> LeverageState:
  d = X.shape[1]
  qmat, r = jnp.linalg.qr(X, mode="reduced")
  lev = jnp.sum(qmat * qmat, axis=1)
  q = lev / d
  logdet = 2.0 * jnp.sum(jnp.log(jnp.abs(jnp.diagonal(r))))
  return LeverageState(q=q, cdf=jnp.cumsum(q), logdet_gram=logdet,
                       fingerprint=design_fingerprint(X))


_CHUNK_BITS = 23
_NUM_CHUNKS = 4


def _log_uniform_from_bits(bits, dtype):
  """``log U`` for ``U = sum_t c_t 2^{-23 (t+1)}`` with ``c_t`` the low 23 bits of ``bits[t]``.

  Four 23-bit chunks give ``U`` a resolution of ``2^-92`` whatever ``dtype`` is, so
  ``log U < log p`` has probability ``p`` (to a relative ``2^-23``) for any ``p >= 2^-92``:
  a float32 uniform would floor every acceptance rate below ``2^-23 ≈ 1.2e-7`` at that
  value. With ``j`` leading zero chunks, ``log U = log(c_j + (c_{j+1} + 1/2) 2^-23)
  - 23 (j + 1) log 2`` (the unread low bits replaced by their mean; ``c_j + 1/2`` for the last
  chunk); ``-inf`` if all are zero.
  """
  c = (bits & jnp.uint32(2**_CHUNK_BITS - 1)).astype(dtype)
  nz = c > 0
  j = jnp.argmax(nz)
  nxt = c[jnp.minimum(j + 1, _NUM_CHUNKS - 1)]
  lead = c[j] + jnp.where(j + 1 < _NUM_CHUNKS, (nxt + 0.5) * 2.0**-_CHUNK_BITS, 0.5)
  val = jnp.log(lead) - (_CHUNK_BITS * (j + 1)).astype(dtype) * math.log(2.0)
  return jnp.where(jnp.any(nz), val, -jnp.inf).astype(dtype)


def _log_uniform(key, dtype):
  """A draw of ``log U``, ``U ~ Uniform(0, 1)``, accurate far below float32's ``2^-23``."""
  return _log_uniform_from_bits(jax.random.bits(key, (_NUM_CHUNKS,), jnp.uint32), dtype)


def _iid_from_uniforms(u, cdf):
  """Indices with probabilities ``diff(cdf)`` from uniforms ``u`` by inverse-CDF search."""
  idx = jnp.searchsorted(cdf, u * cdf[-1], side="right")
  return jnp.clip(idx, 0, cdf.shape[0] - 1).astype(jnp.int32)


def _draw_iid(key, cdf, num):
  """``num`` i.i.d. indices with probabilities ``diff(cdf)``."""
  return _iid_from_uniforms(jax.random.uniform(key, (num,), dtype=cdf.dtype), cdf)


# ----------------------------------------------------------------------------- volume sampling


def _exact_removals(key, X, mask, num_remove: int):
  """``num_remove`` exact reverse-iterative removal steps on the rows where ``mask`` is true.

  Step: ``h_i = 1 - x_i^T (X_S^T X_S)^{-1} x_i`` from a fresh Cholesky factor of the masked Gram
  matrix; remove ``i`` with probability ``h_i / sum_S h`` (``= h_i / (|S| - d)``) by inverse CDF.
  """
  if num_remove == 0:
    return mask

  def step(mask, u):
    w = mask.astype(X.dtype)
    chol = jnp.linalg.cholesky((X * w[:, None]).T @ X)
    half = jax.scipy.linalg.solve_triangular(chol, X.T, lower=True)  # (d, m)
    h = jnp.where(mask, jnp.clip(1.0 - jnp.sum(half * half, axis=0), 0.0, 1.0), 0.0)
    cdf = jnp.cumsum(h)
    i = jnp.clip(jnp.searchsorted(cdf, u * cdf[-1], side="right"), 0, mask.shape[0] - 1)
    i = jnp.where(mask[i], i, jnp.argmax(h))  # rounding guard: never pick a removed row
    return mask.at[i].set(False), None

  us = jax.random.uniform(key, (num_remove,), X.dtype)
  mask, _ = jax.lax.scan(step, mask, us)
  return mask


def volume_sample(key: jax.Array, X: jax.Array, k: int) -> Sample:
  """Exact volume sampling by reverse iterative sampling (the reference sampler).

  Removes one row at a time from ``S = [n]`` with probability
  ``(1 - x_i^T (X_S^T X_S)^{-1} x_i) / (|S| - d)`` (recomputing ``X_S^T X_S`` exactly at each of
  the ``n - k`` steps, ``O((n - k) n d^2)``) so that ``P(S) ∝ det(X_S^T X_S)``.

  Args:
    key: typed PRNG key.
    X: ``(n, d)`` float design of full column rank.
    k: sample size, ``d <= k <= n`` (static).

  Returns:
    :class:`Sample` with sorted indices, unit weights and ``proposals = n - k``.
  """
  _check_key(key)
  n, d = _check_design(X)
  k = _check_k(k, n, d)
  mask = _exact_removals(key, X, jnp.ones((n,), bool), n - k)
  idx = jnp.nonzero(mask, size=k)[0].astype(jnp.int32)
  return Sample(idx, jnp.ones((k,), X.dtype), jnp.int32(n - k))


class _RejectCarry(NamedTuple):
  key: jax.Array
  perm: jax.Array
  size: jax.Array
  z: jax.Array
  trials: jax.Array


def _fast_volume_positions(key, X, k: int, z0=None):
  """Positions (sorted, ``(k,)``) of a volume sample of size ``k`` from the rows of ``X``.

  Returns ``(positions, num_uniform_proposals)``.
  """
  n, d = X.shape
  stop = min(n, max(k, 2 * d))
  k_reject, k_exact = jax.random.split(key)
  if z0 is None:
    z0 = jnp.linalg.inv(X.T @ X)
  init = _RejectCarry(k_reject, jnp.arange(n, dtype=jnp.int32), jnp.int32(n), z0, jnp.int32(0))

  def cond(c):
    return c.size > stop

  def body(c):
    k_pos = jax.random.fold_in(c.key, c.trials)
    k_acc = jax.random.fold_in(k_pos, 1)
    j = jax.random.randint(k_pos, (), 0, c.size)
    i = c.perm[j]
    x = X[i]
    zx = c.z @ x
    h = 1.0 - x @ zx
    accept = jax.random.uniform(k_acc, (), X.dtype) < h
    last = c.size - 1
    moved = c.perm[last]
    # On acceptance swap positions j and last (O(1) scatters, no O(n) select).
    perm = c.perm.at[j].set(jnp.where(accept, moved, i))
    perm = perm.at[last].set(jnp.where(accept, i, perm[last]))
    z = jnp.where(accept, c.z + jnp.outer(zx, zx) / jnp.where(accept, h, 1.0), c.z)
    return _RejectCarry(c.key, perm, c.size - accept.astype(jnp.int32), z, c.trials + 1)

  out = jax.lax.while_loop(cond, body, init) if stop < n else init
  kept = out.perm[:stop]
  if stop > k:  # k < 2d: finish with exact removals on the remaining 2d rows.
    mask = _exact_removals(k_exact, X[kept], jnp.ones((stop,), bool), stop - k)
    kept = jnp.where(mask, kept, n)
  return jnp.sort(kept)[:k], out.trials


def fast_volume_sample(key: jax.Array, X: jax.Array, k: int) -> Sample:
  """Volume sampling by reverse iterative sampling with uniform proposals (exact law).

  While ``|S| > max(k, 2d)``: draw ``i`` uniformly from ``S`` and remove it with probability
  ``h_i = 1 - x_i^T Z x_i`` (``Z = (X_S^T X_S)^{-1}``, downdated by Sherman-Morrison
  ``Z <- Z + Z x x^T Z / h_i``).  A removal therefore happens with probability
  ``h_i / (|S| - d)`` as in exact reverse iterative sampling, with ``|S| / (|S| - d) <= 2``
  expected proposals per removal; total expected cost ``O(n d^2)``.  If ``k < 2d`` the last
  ``2d - k`` removals are done exactly on the ``2d`` remaining rows.

  Args:
    key: typed PRNG key.
    X: ``(n, d)`` float design of full column rank.
    k: sample size, ``d <= k <= n`` (static).

  Returns:
    :class:`Sample` with sorted indices, unit weights and the number of uniform proposals.
  """
  _check_key(key)
  n, d = _check_design(X)
  k = _check_k(k, n, d)
  pos, trials = _fast_volume_positions(key, X, k)
  return Sample(pos.astype(jnp.int32), jnp.ones((k,), X.dtype), trials)


def _block_shape(n: int) -> tuple[int, int]:
  """``(blocks, width)`` with ``width ~ sqrt(n)`` and ``blocks * width >= n`` (two-level CDF)."""
  width = max(1, math.isqrt(n - 1) + 1) if n > 1 else 1
  return -(-n // width), width


def _inverse_cdf_two_level(p2, u):
  """The index ``i`` of the flattened ``p2 >= 0`` with ``cdf[i-1] <= t < cdf[i]`` (``cdf`` its
  cumulative sum, ``t = u cdf[-1]``, ``u`` in ``[0, 1)``), so ``P(i) = p_i / sum(p)`` for a
  uniform ``u``; ``O(n)`` work but only ``O(sqrt n)``-long cumulative sums.

  ``p2`` is ``(blocks, width)``: pick the block by the cumulative block sums, then the entry
  within it. Rounding can land just outside the block's positive entries; the index is then
  clipped to the first/last positive entry of that block, so a row with ``p = 0`` (already
  chosen, or padding) is never returned.
  """
  width = p2.shape[1]
  sums = jnp.sum(p2, axis=1)
  csum = jnp.cumsum(sums)
  t = u * csum[-1]
  b = jnp.minimum(jnp.sum(csum <= t), p2.shape[0] - 1)
  b = jnp.where(sums[b] > 0, b, jnp.argmax(sums))  # rounding guard (t at the very top)
  row = p2[b]
  j = jnp.sum(jnp.cumsum(row) <= t - (csum[b] - sums[b]))
  pos = row > 0
  lo = jnp.argmax(pos)
  hi = width - 1 - jnp.argmax(pos[::-1])
  return b * width + jnp.clip(j, lo, hi)


def _projection_dpp(key, U):
  """A size-``d`` volume sample ``P(T) ∝ det(U_T)^2`` of the rows of an orthonormal ``U``.

  Chain rule of the projection DPP with kernel ``U U^T``: pick ``i`` with probability
  ``r_i / sum(r)`` where ``r_i`` is the squared norm of ``u_i`` orthogonal to the directions
  already picked, then add the new direction; ``d`` vectorised ``O(n d)`` steps. Each pick is
  an inverse-CDF draw over ``sqrt(n)`` blocks of ``sqrt(n)`` rows (an ``n``-long ``cumsum`` is
  several times slower than a sum on CPU); ``U`` is zero-padded to ``blocks * width`` rows,
  whose ``r = 0`` is never picked.
  """
  n, d = U.shape
  blocks, width = _block_shape(n)
  if blocks * width > n:
    U = jnp.concatenate([U, jnp.zeros((blocks * width - n, d), U.dtype)])
  us = jax.random.uniform(key, (d,), U.dtype)

  def step(carry, inp):
    r, basis = carry
    j, u = inp
    p2 = jnp.clip(r, 0.0, None).reshape(blocks, width)
    i = _inverse_cdf_two_level(p2, u)
    v = U[i] - basis @ (basis.T @ U[i])
    c = v / jnp.linalg.norm(v)
    r = (r - (U @ c) ** 2).at[i].set(0.0)
    return (r, basis.at[:, j].set(c)), i.astype(jnp.int32)

  init = (jnp.sum(U * U, axis=1), jnp.zeros((d, d), U.dtype))
  _, idx = jax.lax.scan(step, init, (jnp.arange(d), us))
  return idx


def _cholesky_qr(A):
  """One CholeskyQR pass: ``A = Q R``, ``R = chol(A^T A)^T``, ``Q = A R^{-1}`` by one GEMM.

  Returns ``(Q, R, R^{-1})``.
  """
  eye = jnp.eye(A.shape[1], dtype=A.dtype)
  low = jnp.linalg.cholesky(A.T @ A)
  low_inv = jax.scipy.linalg.solve_triangular(low, eye, lower=True)
  return A @ low_inv.T, low.T, low_inv.T


def _orthonormal_basis(X):
  """:func:`orthonormal_basis` plus a flag: ``True`` only if ``X`` surely has full column rank.

  The flag is ``1 / ||R^{-1}||_F > ||R||_F max(n, d) eps`` on the CholeskyQR2 path, which
  implies ``s_min(X) > s_max(X) max(n, d) eps`` (``np.linalg.matrix_rank``'s test); ``False``
  on the Householder fallback (the caller then checks ``R``'s singular values).
  """
  n, d = X.shape
  u1, r1, r1_inv = _cholesky_qr(X)
  g1 = u1.T @ u1
  eye = jnp.eye(d, dtype=X.dtype)
  ok = jnp.all(jnp.isfinite(g1)) & (jnp.sum((g1 - eye) ** 2) < 0.25)

  def second_pass(u1):
    u2, r2, r2_inv = _cholesky_qr(u1)
    r, r_inv = r2 @ r1, r1_inv @ r2_inv
    tol = max(n, d) * jnp.finfo(X.dtype).eps
    full = jnp.sqrt(jnp.sum(r_inv ** 2)) * jnp.sqrt(jnp.sum(r ** 2)) * tol < 1.0
    return u2, r, full & jnp.all(jnp.isfinite(r_inv))

  def householder(u1):
    del u1
    q, r = jnp.linalg.qr(X, mode="reduced")
    return q, r, jnp.bool_(False)

  return jax.lax.cond(ok, second_pass, householder, u1)


def orthonormal_basis(X: jax.Array) -> tuple[jax.Array, jax.Array]:
  """A thin QR ``X = U R`` (``U^T U = I_d``, ``R`` upper triangular) by CholeskyQR2.

  Two passes of CholeskyQR (``R_1 = chol(X^T X)^T``, ``U_1 = X R_1^{-1}``, then the same on
  ``U_1``) cost two ``n x d`` Gram matrices and two GEMMs with ``d x d`` triangles: BLAS-3 work
  that XLA fuses and runs without LAPACK's tall-skinny Householder QR (``geqrf``/``orgqr``,
  which dominated a single sampling call: tens of ms at ``n = 1e3`` on a loaded multi-core CPU).
  The second pass makes ``U`` orthonormal to ``O(eps)`` whenever the first pass left
  ``||U_1^T U_1 - I||_F < 1/2`` (Yamamoto et al. 2015; this needs ``cond(X)`` below about
  ``eps^{-1/2}``). Otherwise (ill-conditioned or rank-deficient ``X``, NaN Cholesky) it falls
  back to Householder QR under ``lax.cond`` (both branches run under ``vmap`` over ``X``).

  Args:
    X: ``(n, d)`` float design, ``n >= d``.

  Returns:
    ``(U, R)``: ``(n, d)`` orthonormal columns spanning ``range(X)`` and ``(d, d)`` ``R``.
  """
  u, r, _ = _orthonormal_basis(X)
  return u, r


def _uniform_subset(key, num: int, m: int):
  """``m`` distinct integers forming a uniformly random ``m``-subset of ``[0, num)``.

  Floyd's algorithm: for ``j = num - m, ..., num - 1`` draw ``t`` uniform in ``[0, j]`` and keep
  ``t``, or ``j`` if ``t`` was already kept.  ``O(m^2)`` work, nothing of size ``num``.
  """
  if m == 0:
    return jnp.zeros((0,), jnp.int32)
  js = jnp.arange(num - m, num, dtype=jnp.int32)
  ts = jax.random.randint(key, (m,), 0, js + 1, dtype=jnp.int32)

  def body(t, chosen):
    present = jnp.any(chosen == ts[t])
    return chosen.at[t].set(jnp.where(present, js[t], ts[t]))

  return jax.lax.fori_loop(0, m, body, jnp.full((m,), -1, jnp.int32))


def _dpp_volume_positions(key, X, k: int, basis=None):
  """Sorted positions of a size-``k`` volume sample: a size-``d`` sample plus uniform padding.

  ``basis``: an orthonormal basis of ``range(X)``; Householder QR of ``X`` when ``None``.
  """
  n, d = X.shape
  if k == n:
    return jnp.arange(n, dtype=jnp.int32)
  k_dpp, k_pad = jax.random.split(key)
  if basis is None:
    basis, _ = jnp.linalg.qr(X, mode="reduced")
  core = jnp.sort(_projection_dpp(k_dpp, basis))
  # A uniform (k - d)-subset of the n - d other rows: rank t -> the t-th row not in the core.
  pad = _uniform_subset(k_pad, n - d, k - d)
  for j in range(d):
    pad = pad + (core[j] <= pad).astype(jnp.int32)
  return jnp.sort(jnp.concatenate([core, pad])).astype(jnp.int32)


def _dpp_volume_impl(key, X, k: int):
  """The whole of :func:`dpp_volume_sample` as one program (jitted with ``k`` static).

  Returns ``(sample, checks)``: besides the sample, what the eager input checks need without
  copying ``X`` to the host, packed in one small array: ``[nonfinite, surely_full_rank,
  R.ravel()]`` (``R`` of ``X = U R`` has the singular values of ``X``; see
  :func:`_orthonormal_basis`).
  """
  nonfinite = jnp.logical_not(jnp.all(jnp.isfinite(X)))
  basis, r, full = _orthonormal_basis(X)
  pos = _dpp_volume_positions(key, X, k, basis=basis)
  checks = jnp.concatenate([jnp.stack([nonfinite, full]).astype(X.dtype), r.ravel()])
  return Sample(pos, jnp.ones((k,), X.dtype), jnp.int32(1)), checks


def _rank_from_r(r, n: int) -> int:
  """``np.linalg.matrix_rank(X)`` from the ``d x d`` factor ``R`` of ``X = U R`` (host, tiny SVD).

  Same tolerance as ``matrix_rank``: singular values above ``s_max max(n, d) eps``.
  """
  r = np.asarray(r)
  sv = np.linalg.svd(r, compute_uv=False)
  if not np.all(np.isfinite(sv)):
    return 0
  tol = sv.max(initial=0.0) * max(n, r.shape[0]) * np.finfo(r.dtype).eps
  return int(np.sum(sv > tol))


_dpp_volume_jit = jax.jit(_dpp_volume_impl, static_argnums=2)


def dpp_volume_sample(key: jax.Array, X: jax.Array, k: int) -> Sample:
  """Volume sampling as a size-``d`` volume sample padded with ``k - d`` uniform rows (exact law).

  By Cauchy-Binet ``det(X_S^T X_S) = sum_{T ⊂ S, |T| = d} det(X_T)^2``, so drawing ``T`` with
  ``P(T) ∝ det(X_T)^2`` (the projection DPP of ``range(X)``, sampled by its chain rule in
  ``d`` vectorised ``O(nd)`` steps after an ``O(n d^2)`` orthonormal basis) and then ``k - d``
  further rows uniformly from the other ``n - d`` (Floyd's algorithm, ``O(k^2)``) gives
  ``P(S) ∝ det(X_S^T X_S)`` (Dereziński & Warmuth,
  2017; used by the paper to relate volume sampling to uniform sampling).  The same law as
  :func:`volume_sample` with no sequential loop over ``n``.

  One call is one compiled program (cached per shape, dtype and ``k``): the basis is
  :func:`orthonormal_basis` (CholeskyQR2, GEMMs only), each of the ``d`` chain-rule picks a
  two-level inverse CDF, and the eager input checks (finite entries, full column rank) come
  out of that program as two flags and the ``d x d`` factor ``R`` of ``X = U R`` (rank from
  its singular values with ``np.linalg.matrix_rank``'s tolerance, when a cheap sufficient test
  is inconclusive), so ``X`` is never copied to the host. Under ``jit``/``vmap`` these checks
  are skipped unless ``X`` itself is concrete (closed over), as before.

  Args:
    key: typed PRNG key.
    X: ``(n, d)`` float design of full column rank.
    k: sample size, ``d <= k <= n`` (static).

  Returns:
    :class:`Sample` with sorted indices, unit weights and ``proposals = 1``.
  """
  _check_key(key)
  n, d = _check_design(X, rank=False, finite=False)
  k = _check_k(k, n, d)
  sample, checks = _dpp_volume_jit(key, X, k)
  if validation.is_concrete(checks):  # an eager call: raise what the checks found
    checks = np.asarray(checks)  # one transfer of d^2 + 2 numbers
    if checks[0]:
      raise ValueError("X contains NaN or inf entries")
    rank = d if checks[1] else _rank_from_r(checks[2:].reshape(d, d), n)
    if rank < d:
      raise ValueError(f"X must have full column rank d={d}, got rank {rank} "
                       "(drop collinear/constant columns)")
  elif validation.is_concrete(X):  # traced key, concrete X (closed over): check once, on host
    _check_design(X)
  return sample


# ----------------------------------------------------------------------------- ridge VS


def _log_elementary(logmu):
  """``logE[l, m] = log e_l(mu_1..mu_m)`` (elementary symmetric polynomials) for l, m <= r."""
  r = logmu.shape[0]
  col = jnp.full((r + 1,), -jnp.inf, logmu.dtype).at[0].set(0.0)
  cols = [col]
  for m in range(r):
    shifted = jnp.concatenate([jnp.full((1,), -jnp.inf, logmu.dtype), col[:-1]])
    col = jnp.logaddexp(col, logmu[m] + shifted)
    cols.append(col)
  return jnp.stack(cols, axis=1)  # (r + 1, r + 1)


def _log_comb(a, b):
  return (jax.scipy.special.gammaln(a + 1.0) - jax.scipy.special.gammaln(b + 1.0)
          - jax.scipy.special.gammaln(a - b + 1.0))


def ridge_volume_log_normalizer(X: jax.Array, k: int, lam) -> jax.Array:
  """``log sum_{|S|=k} det(X_S^T X_S + lam I)`` in closed form, ``O(n d^2)``.

  ``det(X_S^T X_S + lam I) = lam^d sum_{T ⊂ S} det(L_T)`` with ``L = X X^T / lam`` (expansion of
  ``det(I + L_S)`` in principal minors), hence the sum over ``|S| = k`` is
  ``lam^d sum_j C(n - j, k - j) e_j(mu)`` with ``mu_i = sigma_i(X)^2 / lam``.
  """
  n, d = X.shape
  sig = jnp.linalg.svd(X, compute_uv=False)
  lam = jnp.asarray(lam, X.dtype)
  logmu = 2.0 * jnp.log(sig) - jnp.log(lam)
  r = sig.shape[0]
  log_e = _log_elementary(logmu)[:, r]
  j = jnp.arange(r + 1, dtype=X.dtype)
  logw = jnp.where(j <= k, _log_comb(n - j, jnp.minimum(k - j, n - j)), -jnp.inf)
  return d * jnp.log(lam) + jax.nn.logsumexp(logw + log_e)


def ridge_volume_sample(key: jax.Array, X: jax.Array, k: int, lam) -> Sample:
  """Regularised (ridge) volume sampling: ``P(S) ∝ det(X_S^T X_S + lam I)`` over ``|S| = k``.

  Dereziński & Warmuth, "Subsampling for Ridge Regression via Regularized Volume Sampling"
  (AISTATS 2018) use this determinant to pick ``k`` rows whose responses are then asked for,
  with the ridge estimator ``w_lam(S) = (X_S^T X_S + lam I)^{-1} X_S^T y_S``. ``k`` may be
  smaller than ``d`` and ``X`` need not have full column rank (``lam > 0``). As ``lam -> 0``
  the law tends to plain volume sampling (:func:`volume_sample`).

  Exact sampler (``O(n d^2)``, jit-able with ``k`` static): with ``L = X X^T / lam``,
  ``det(X_S^T X_S + lam I) ∝ det(I + L_S) = sum_{T ⊂ S} det(L_T)``, so ``S`` is drawn as
  ``T`` plus ``k - |T|`` uniformly chosen other rows, where ``T`` has probability
  ``∝ C(n - |T|, k - |T|) det(L_T)``: first the eigen-index set ``J`` of ``L`` with
  ``P(J) ∝ C(n - |J|, k - |J|) prod_{i ∈ J} mu_i`` (``mu_i = sigma_i^2 / lam``; its size
  from the elementary symmetric polynomials ``e_j(mu)``, then the Kulesza–Taskar
  inclusion rule), then ``T`` from the projection DPP of the left singular vectors ``U_J``.

  Ridge estimator. Writing ``X~ = [X; sqrt(lam) I_d]`` and ``y~ = [y; 0]``,
  ``det(X_S^T X_S + lam I) = det(X~_{S ∪ A}^T X~_{S ∪ A})`` (``A`` the ``d`` added rows) and
  ``w_lam(S)`` is the least-squares solution on ``S ∪ A``: the law is volume sampling of the
  augmented design *conditioned on keeping A*. Unbiasedness of volume sampling
  (``E[X~_{S~}^+ y~_{S~}] = w~*``, the full ridge solution) holds for the unconditioned law
  only; under this conditioned law ``E[w_lam(S)] != w*_lam`` in general (the ridge estimator is
  biased, as ridge regression is — checked against enumeration in the tests). What
  Dereziński & Warmuth (2018) prove for regularised volume sampling is a bound instead,
  ``E[(X_S^T X_S + lam I)^{-1}] ⪯ (n - d_lam + 1)/(k - d_lam + 1) (X^T X + lam I)^{-1}``
  (``d_lam = tr(X^T X (X^T X + lam I)^{-1})``, ``k >= d_lam``), from which their
  mean-squared-error guarantee for ``w_lam(S)`` follows; we state it, not test it, for their
  reverse-iterative variant.

  Args:
    key: typed PRNG key.
    X: ``(n, d)`` finite float design (any rank).
    k: sample size, ``1 <= k <= n`` (static).
    lam: the ridge parameter ``lam > 0``.

  Returns:
    :class:`Sample` with sorted distinct indices, unit weights and ``proposals = 1``.

  Raises:
    TypeError: a non-key ``key`` or a non-int ``k``.
    ValueError: a bad ``X``, ``k`` out of ``[1, n]`` or ``lam <= 0``/non-finite.
  """
  _check_key(key)
  validation.check_array(X, "X", ndim=2, dtype_kind="f", finite=True)
  n, d = X.shape
  if n < 1 or d < 1:
    raise ValueError(f"X must be a non-empty (n, d) matrix, got shape {X.shape}")
  if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
    raise TypeError(f"k must be a Python int (it fixes the sample's shape), got {type(k).__name__}")
  k = int(k)
  if not 1 <= k <= n:
    raise ValueError(f"k must be in [1, n={n}], got k={k}")
  if validation.is_concrete(lam):
    lam_f = float(np.asarray(lam))
    if not (np.isfinite(lam_f) and lam_f > 0):
      raise ValueError(f"lam must be a finite number > 0 (use volume_sample for lam = 0), got "
                       f"{lam_f}")
  return Sample(_ridge_positions(key, X, k, jnp.asarray(lam, X.dtype)),
                jnp.ones((k,), X.dtype), jnp.int32(1))


def _ridge_positions(key, X, k: int, lam):
  n, _ = X.shape
  k_size, k_eig, k_dpp, k_pad = jax.random.split(key, 4)
  basis, sig, _ = jnp.linalg.svd(X, full_matrices=False)
  r = sig.shape[0]
  logmu = 2.0 * jnp.log(sig) - jnp.log(lam)
  log_e = _log_elementary(logmu)  # (r + 1, r + 1)
  j = jnp.arange(r + 1)
  logw = jnp.where(j <= k, _log_comb(n - j.astype(X.dtype),
                                     jnp.minimum(k - j, n - j).astype(X.dtype)), -jnp.inf)
  size = jax.random.categorical(k_size, logw + log_e[:, r])

  # Kulesza & Taskar: include eigen-index m (from the last) w.p. mu_m e_{l-1}(mu_<m) / e_l(mu_<=m).
  def pick(l, inp):
    m, logu = inp
    logp = logmu[m] + log_e[jnp.maximum(l - 1, 0), m] - log_e[l, m + 1]
    take = (l > 0) & (logu < logp)
    return l - take.astype(l.dtype), take

  logus = jnp.log(jax.random.uniform(k_eig, (r,), X.dtype))
  _, taken = jax.lax.scan(pick, size, (jnp.arange(r - 1, -1, -1), logus))
  chosen = taken[::-1]
  ub = basis * chosen.astype(X.dtype)[None, :]
  us = jax.random.uniform(k_dpp, (r,), X.dtype)

  def step(carry, inp):
    resid, frame = carry
    t, u = inp
    active = t < size
    cdf = jnp.cumsum(jnp.clip(resid, 0.0, None))
    i = jnp.clip(jnp.searchsorted(cdf, u * cdf[-1], side="right"), 0, n - 1)
    v = ub[i] - frame @ (frame.T @ ub[i])
    c = v / jnp.maximum(jnp.linalg.norm(v), jnp.finfo(X.dtype).tiny)
    new_resid = (resid - (ub @ c) ** 2).at[i].set(0.0)
    resid = jnp.where(active, new_resid, resid)
    frame = jnp.where(active, frame.at[:, t].set(c), frame)
    return (resid, frame), jnp.where(active, i, -1).astype(jnp.int32)

  init = (jnp.sum(ub * ub, axis=1), jnp.zeros((ub.shape[1], r), X.dtype))
  _, core = jax.lax.scan(step, init, (jnp.arange(r), us))
  # the core rows first, then a uniform (k - |T|)-subset of the others: k smallest priorities.
  prio = jax.random.uniform(k_pad, (n,), X.dtype)
  prio = prio.at[jnp.where(core >= 0, core, n)].set(-1.0, mode="drop")
  _, pos = jax.lax.top_k(-prio, k)
  return jnp.sort(pos).astype(jnp.int32)


# ----------------------------------------------------------------------------- leveraged VS


class _LvsCarry(NamedTuple):
  key: jax.Array
  idx: jax.Array
  accepted: jax.Array
  trials: jax.Array


def default_oversample(k: int, d: int) -> int:
  """The paper's number of i.i.d. proposals per rejection round, ``s = max(k, 4 d^2)``."""
  return max(int(k), 4 * int(d) * int(d))


def leveraged_volume_sample(key: jax.Array, X: jax.Array, k: int, *,
                            state: LeverageState | None = None,
                            oversample: int | None = None,
                            subsample: str = "dpp", max_rounds: int = 10_000,
                            check_state: bool = True) -> Sample:
  """Leveraged volume sampling by determinantal rejection sampling (Algorithm 1 of the paper).

  Repeats: draw ``pi_1..pi_s`` i.i.d. from ``q = l / d`` and accept with probability
  ``det(X~^T X~ / s) / det(X^T X)`` (``x~_t = x_{pi_t} / sqrt(q_{pi_t})``; the ratio is ``<= 1``
  by AM-GM since ``tr(X~^T X~ (X^T X)^{-1}) / s = d``).  Then volume-samples ``k`` of the
  ``s`` rescaled rows (see ``subsample``) and returns their original indices.
  The result is distributed as ``P(pi) ∝ det(sum_t x_{pi_t} x_{pi_t}^T / q_{pi_t}) prod_t q_{pi_t}``
  over sequences of length ``k``; each ``pi_t`` has marginal ``q``.

  The acceptance test is done in log space against ``log U`` drawn with 92 random bits
  (:func:`_log_uniform_from_bits`), so acceptance rates far below float32's ``2^-23`` (e.g. the
  ``~1.7e-10`` of a small ``oversample``) are honoured rather than floored at ``2^-23``. The
  expected number of rounds is ``1 / prod_{j<d}(1 - j/s)`` (:func:`acceptance_probability`;
  ``<= 8/7`` at the default ``s``).

  Args:
    key: typed PRNG key.
    X: ``(n, d)`` float design of full column rank.
    k: sample size ``>= d`` (static; may exceed ``n`` since rows can repeat).
    state: the output of :func:`prepare_leveraged` *for this X* (computed here when ``None``).
    oversample: ``s``, the i.i.d. draws per round; default ``max(k, 4 d^2)`` (paper); must be
      ``>= k``.
    subsample: how ``k`` of the ``s`` rescaled rows are volume-sampled: ``"dpp"`` (default;
      :func:`dpp_volume_sample`'s algorithm, ``O(s d^2)`` in ``d`` vectorised steps) or
      ``"reverse"`` (:func:`fast_volume_sample`'s rejection algorithm, as in the paper's
      Algorithm 1). Both are exact.
    max_rounds: cap on rejection rounds. Exceeding it raises ``RuntimeError`` when called
      eagerly; under ``jit``/``vmap`` (no exception possible) that sample gets NaN weights and
      indices ``n`` (out of range), which :func:`~.estimators.least_squares_estimate` refuses.
    check_state: verify that ``state`` was prepared from this ``X`` (shape and
      :func:`design_fingerprint`, ``O(nd)``). A mismatch raises ``ValueError`` eagerly and gives
      NaN weights under tracing.

  Returns:
    :class:`Sample` with ``indices = pi`` (possibly repeated), ``weights = 1 / q_pi`` and the
    number of rejection rounds in ``proposals``.

  Raises:
    TypeError: a non-key ``key`` or non-int ``k``.
    ValueError: bad ``X``, ``k``, ``oversample``, ``max_rounds`` or a ``state`` of another design.
    RuntimeError: no round accepted within ``max_rounds`` (eager calls only).
  """
  _check_key(key)
  n, d = _check_design(X, rank=state is None)
  k = _check_k(k, n, d, replacement=True)
  s = default_oversample(k, d) if oversample is None else oversample
  if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < k:
    raise ValueError(f"oversample must be an int >= k={k}, got {oversample!r}")
  s = int(s)
  if isinstance(max_rounds, bool) or not isinstance(max_rounds, (int, np.integer)) \
      or not 1 <= max_rounds < 2**31 - 1:
    raise ValueError(f"max_rounds must be an int in [1, 2^31 - 1), got {max_rounds!r}")
  validation.check_in(subsample, "subsample", ("dpp", "reverse"))
  mismatch = jnp.bool_(False)
  if state is None:
    state = _prepare_leveraged(X)
  else:
    if not isinstance(state, LeverageState) or state.q.shape != (n,) \
        or state.fingerprint.shape != (2,):
      raise ValueError(f"state must be prepare_leveraged(X) for this X (q of shape ({n},)), got "
                       f"{type(state).__name__} with q of shape "
                       f"{getattr(getattr(state, 'q', None), 'shape', None)}")
    if check_state:
      mismatch = _fingerprint_mismatch(state, X)
      if validation.is_concrete(mismatch) and bool(mismatch):
        raise ValueError("state was prepared for a different design than X (same n but its "
                         "fingerprint differs): pass state=prepare_leveraged(X) for this X")
  k_rounds, k_vs = jax.random.split(key)

  def cond(c):
    return jnp.logical_not(c.accepted) & (c.trials < max_rounds)

  def body(c):
    k_idx, k_acc = jax.random.split(jax.random.fold_in(c.key, c.trials))
    idx = _draw_iid(k_idx, state.cdf, s)
    rows = X[idx] * jax.lax.rsqrt(state.q[idx])[:, None]
    sign, logdet = jnp.linalg.slogdet(rows.T @ rows / s)
    log_ratio = jnp.where(sign > 0, logdet - state.logdet_gram, -jnp.inf)
    accept = _log_uniform(k_acc, state.cdf.dtype) < log_ratio
    return _LvsCarry(c.key, idx, accept, c.trials + 1)

  init = _LvsCarry(k_rounds, jnp.zeros((s,), jnp.int32), jnp.bool_(False), jnp.int32(0))
  out = jax.lax.while_loop(cond, body, init)
  if validation.is_concrete(out.accepted) and not bool(out.accepted):
    raise RuntimeError(
        f"leveraged_volume_sample: no rejection round accepted within max_rounds={max_rounds} "
        f"(acceptance rate per round prod_(j<d)(1 - j/s) = {acceptance_probability(d, s):.3g} "
        f"for d={d}, s={s}); raise max_rounds or oversample")
  if k == s:
    pos = jnp.arange(s)
  else:
    rows = X[out.idx] * jax.lax.rsqrt(state.q[out.idx])[:, None]
    if subsample == "dpp":
      pos = _dpp_volume_positions(k_vs, rows, k)
    else:
      pos, _ = _fast_volume_positions(k_vs, rows, k)
  idx = out.idx[pos]
  bad = mismatch | ~out.accepted
  weights = jnp.where(bad, jnp.nan, 1.0 / state.q[idx])
  idx = jnp.where(~out.accepted, jnp.int32(n), idx)
  return Sample(idx, weights, out.trials)


def acceptance_probability(d: int, s: int) -> float:
  """Exact acceptance rate of one rejection round, ``prod_{j<d} (1 - j / s)`` (paper, Sec. 4)."""
  if d < 1 or s < d:
    raise ValueError(f"need 1 <= d <= s, got d={d}, s={s}")
  return float(np.prod([1.0 - j / s for j in range(d)]))


# ----------------------------------------------------------------------------- i.i.d. baselines


def leverage_sample(key: jax.Array, X: jax.Array, k: int, *,
                    scores: jax.Array | None = None) -> Sample:
  """I.i.d. leverage-score sampling: ``k`` draws with replacement from ``q = l / sum(l)``.

  Args:
    key: typed PRNG key.
    X: ``(n, d)`` float design.
    k: number of draws ``>= d`` (static).
    scores: ``(n,)`` (approximate) leverage scores; exact :func:`leverage_scores` when ``None``.

  Returns:
    :class:`Sample` with the drawn indices and the standard rescaling ``weights = 1 / (k q)``.
  """
  _check_key(key)
  n, d = _check_design(X, rank=scores is None)
  k = _check_k(k, n, d, replacement=True)
  if scores is None:
    scores = _leverage(X)
  else:
    validation.check_array(scores, "scores", shape=(n,), dtype_kind="f", finite=True)
  q = scores / jnp.sum(scores)
  idx = _draw_iid(key, jnp.cumsum(q), k)
  return Sample(idx, 1.0 / (k * q[idx]), jnp.int32(1))


def uniform_sample(key: jax.Array, X: jax.Array, k: int) -> Sample:
  """Uniform sampling of ``k`` distinct rows (the baseline; Floyd's algorithm, ``O(k^2)``).

  Args:
    key: typed PRNG key.
    X: ``(n, d)`` float design (only its shape and dtype are used).
    k: sample size, ``d <= k <= n`` (static).
  """
  _check_key(key)
  n, d = _check_design(X, rank=False)
  k = _check_k(k, n, d)
  idx = jnp.sort(_uniform_subset(key, n, k))
  return Sample(idx, jnp.ones((k,), X.dtype), jnp.int32(1))


SAMPLERS = {
    "volume_reverse": volume_sample,
    "volume_fast": fast_volume_sample,
    "volume_dpp": dpp_volume_sample,
    "leveraged_volume": leveraged_volume_sample,
    "leverage": leverage_sample,
    "uniform": uniform_sample,
}

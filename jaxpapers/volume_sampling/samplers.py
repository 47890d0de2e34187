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
  padded with ``k - d`` uniform rows (Cauchy-Binet), in ``d`` vectorised ``O(nd)`` steps.

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
  """The one-time ``O(n d^2)`` part of leveraged volume sampling.

  Attributes:
    q: ``(n,)`` sampling probabilities ``l_i / d``.
    cdf: ``(n,)`` cumulative sums of ``q`` (inverse-CDF sampling in ``O(log n)`` per draw).
    logdet_gram: ``log det(X^T X)``.
  """

  q: jax.Array
  cdf: jax.Array
  logdet_gram: jax.Array


# ----------------------------------------------------------------------------- validation


def _check_key(key):
  if not (hasattr(key, "dtype") and jnp.issubdtype(key.dtype, jax.dtypes.prng_key)):
    raise TypeError(
        "key must be a typed PRNG key from jax.random.key(seed), got "
        f"{getattr(key, 'dtype', type(key).__name__)}")
  if key.shape != ():
    raise ValueError(f"key must be a single key (shape ()), got shape {key.shape}; vmap over keys")


def _check_design(X, name: str = "X", *, rank: bool = True):
  validation.check_array(X, name, ndim=2, dtype_kind="f", finite=True)
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
  return LeverageState(q=q, cdf=jnp.cumsum(q), logdet_gram=logdet)


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


def _projection_dpp(key, U):
  """A size-``d`` volume sample ``P(T) ∝ det(U_T)^2`` of the rows of an orthonormal ``U``.

  Chain rule of the projection DPP with kernel ``U U^T``: pick ``i`` with probability
  ``r_i / sum(r)`` where ``r_i`` is the squared norm of ``u_i`` orthogonal to the directions
  already picked, then add the new direction; ``d`` vectorised ``O(n d)`` steps.
  """
  n, d = U.shape
  us = jax.random.uniform(key, (d,), U.dtype)

  def step(carry, inp):
    r, basis = carry
    j, u = inp
    cdf = jnp.cumsum(jnp.clip(r, 0.0, None))
    i = jnp.clip(jnp.searchsorted(cdf, u * cdf[-1], side="right"), 0, n - 1)
    v = U[i] - basis @ (basis.T @ U[i])
    c = v / jnp.linalg.norm(v)
    r = (r - (U @ c) ** 2).at[i].set(0.0)
    return (r, basis.at[:, j].set(c)), i.astype(jnp.int32)

  init = (jnp.sum(U * U, axis=1), jnp.zeros((d, d), U.dtype))
  _, idx = jax.lax.scan(step, init, (jnp.arange(d), us))
  return idx


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


def _dpp_volume_positions(key, X, k: int):
  """Sorted positions of a size-``k`` volume sample: a size-``d`` sample plus uniform padding."""
  n, d = X.shape
  if k == n:
    return jnp.arange(n, dtype=jnp.int32)
  k_dpp, k_pad = jax.random.split(key)
  basis, _ = jnp.linalg.qr(X, mode="reduced")
  core = jnp.sort(_projection_dpp(k_dpp, basis))
  # A uniform (k - d)-subset of the n - d other rows: rank t -> the t-th row not in the core.
  pad = _uniform_subset(k_pad, n - d, k - d)
  for j in range(d):
    pad = pad + (core[j] <= pad).astype(jnp.int32)
  return jnp.sort(jnp.concatenate([core, pad])).astype(jnp.int32)


def dpp_volume_sample(key: jax.Array, X: jax.Array, k: int) -> Sample:
  """Volume sampling as a size-``d`` volume sample padded with ``k - d`` uniform rows (exact law).

  By Cauchy-Binet ``det(X_S^T X_S) = sum_{T ⊂ S, |T| = d} det(X_T)^2``, so drawing ``T`` with
  ``P(T) ∝ det(X_T)^2`` (the projection DPP of ``range(X)``, sampled by its chain rule in
  ``d`` vectorised ``O(nd)`` steps after an ``O(n d^2)`` QR) and then ``k - d`` further rows
  uniformly from the other ``n - d`` (Floyd's algorithm, ``O(k^2)``) gives
  ``P(S) ∝ det(X_S^T X_S)`` (Dereziński & Warmuth,
  2017; used by the paper to relate volume sampling to uniform sampling).  The same law as
  :func:`volume_sample` with no sequential loop over ``n``.

  Args:
    key: typed PRNG key.
    X: ``(n, d)`` float design of full column rank.
    k: sample size, ``d <= k <= n`` (static).

  Returns:
    :class:`Sample` with sorted indices, unit weights and ``proposals = 1``.
  """
  _check_key(key)
  n, d = _check_design(X)
  k = _check_k(k, n, d)
  return Sample(_dpp_volume_positions(key, X, k), jnp.ones((k,), X.dtype), jnp.int32(1))


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
                            subsample: str = "dpp") -> Sample:
  """Leveraged volume sampling by determinantal rejection sampling (Algorithm 1 of the paper).

  Repeats: draw ``pi_1..pi_s`` i.i.d. from ``q = l / d`` and accept with probability
  ``det(X~^T X~ / s) / det(X^T X)`` (``x~_t = x_{pi_t} / sqrt(q_{pi_t})``; the ratio is ``<= 1``
  by AM-GM since ``tr(X~^T X~ (X^T X)^{-1}) / s = d``).  Then volume-samples ``k`` of the
  ``s`` rescaled rows (see ``subsample``) and returns their original indices.
  The result is distributed as ``P(pi) ∝ det(sum_t x_{pi_t} x_{pi_t}^T / q_{pi_t}) prod_t q_{pi_t}``
  over sequences of length ``k``; each ``pi_t`` has marginal ``q``.

  Args:
    key: typed PRNG key.
    X: ``(n, d)`` float design of full column rank.
    k: sample size ``>= d`` (static; may exceed ``n`` since rows can repeat).
    state: the output of :func:`prepare_leveraged` (computed here when ``None``).
    oversample: ``s``, the i.i.d. draws per round; default ``max(k, 4 d^2)`` (paper); must be
      ``>= k``.
    subsample: how ``k`` of the ``s`` rescaled rows are volume-sampled: ``"dpp"`` (default;
      :func:`dpp_volume_sample`'s algorithm, ``O(s d^2)`` in ``d`` vectorised steps) or
      ``"reverse"`` (:func:`fast_volume_sample`'s rejection algorithm, as in the paper's
      Algorithm 1). Both are exact.

  Returns:
    :class:`Sample` with ``indices = pi`` (possibly repeated), ``weights = 1 / q_pi`` and the
    number of rejection rounds in ``proposals``.
  """
  _check_key(key)
  n, d = _check_design(X, rank=state is None)
  k = _check_k(k, n, d, replacement=True)
  s = default_oversample(k, d) if oversample is None else oversample
  if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < k:
    raise ValueError(f"oversample must be an int >= k={k}, got {oversample!r}")
  s = int(s)
  validation.check_in(subsample, "subsample", ("dpp", "reverse"))
  if state is None:
    state = _prepare_leveraged(X)
  elif not isinstance(state, LeverageState) or state.q.shape != (n,):
    raise ValueError(f"state must be prepare_leveraged(X) for this X (q of shape ({n},))")
  k_rounds, k_vs = jax.random.split(key)

  def cond(c):
    return jnp.logical_not(c.accepted)

  def body(c):
    u = jax.random.uniform(jax.random.fold_in(c.key, c.trials), (s + 1,), state.cdf.dtype)
    idx = _iid_from_uniforms(u[:s], state.cdf)
    rows = X[idx] * jax.lax.rsqrt(state.q[idx])[:, None]
    sign, logdet = jnp.linalg.slogdet(rows.T @ rows / s)
    log_ratio = jnp.where(sign > 0, logdet - state.logdet_gram, -jnp.inf)
    accept = jnp.log(u[s]) < log_ratio
    return _LvsCarry(c.key, idx, accept, c.trials + 1)

  init = _LvsCarry(k_rounds, jnp.zeros((s,), jnp.int32), jnp.bool_(False), jnp.int32(0))
  out = jax.lax.while_loop(cond, body, init)
  if k == s:
    pos = jnp.arange(s)
  else:
    rows = X[out.idx] * jax.lax.rsqrt(state.q[out.idx])[:, None]
    if subsample == "dpp":
      pos = _dpp_volume_positions(k_vs, rows, k)
    else:
      pos, _ = _fast_volume_positions(k_vs, rows, k)
  idx = out.idx[pos]
  return Sample(idx, 1.0 / state.q[idx], out.trials)


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

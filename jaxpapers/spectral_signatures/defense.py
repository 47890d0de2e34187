"""Spectral-signature detection and two peers (Tran, Li & Mądry, NeurIPS 2018, Algorithm 1).

For every class y, with representations ``R_i`` of the examples labelled y, mean ``R̂`` and top
right singular vector ``v`` of the centred matrix ``[R_i − R̂]``, the outlier score is

    τ_i = ((R_i − R̂) · v)²,

and the ``⌊1.5 · ε · n_y + ½⌋`` highest-scoring examples of the class are removed before
retraining. The authors' reference code (MadryLab/backdoor_data_poisoning, ``compute_corr.py``)
takes the same ``v`` from the SVD of the *centred* matrix but projects the *uncentred*
representations: ``τ_i = |R_i · v|`` (the norm of the ``1 × n`` correlation row). ``centered=False``
computes exactly that score, for comparison: it differs from the paper's score by the class-wide
offset ``R̂ · v``, which can push clean examples above the poisons (see the Gaussian-mixture test).

Every scorer runs all classes in one call: examples are gathered into a padded
``(num_classes, max_class_size, d)`` block with a mask (see :func:`class_blocks`) and the
per-class computation is ``vmap``-ped over classes.

Peers, run through the same per-class padding and the same removal rule:

* :func:`activation_clustering_scores` — Chen et al. (2018): per class, PCA-whiten to 10 dims,
  FastICA, 2-means; the smaller cluster is suspicious.
* :func:`spectre_scores` — SPECTRE-style (Hayase et al., 2021): PCA, a robust mean/covariance by
  iterative trimming, whitening with it, then the QUantum Entropy (QUE) score.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers._src.validation import check_array, check_in, is_concrete

METHODS = ("eigh", "power")


class ClassBlocks(NamedTuple):
  """Padded per-class layout of a labelled set.

  Attributes:
    index: ``(num_classes, max_class_size)`` int32 row indices into the data; ``n`` (out of
      range) on padding slots.
    mask: ``(num_classes, max_class_size)`` bool, true on real examples.
    counts: ``(num_classes,)`` int32 class sizes.
  """

  index: jax.Array
  mask: jax.Array
  counts: jax.Array


def _check_labels(labels, n, num_classes):
  check_array(labels, "labels", ndim=1, dtype_kind="iu", shape=(n,))
  if not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
    raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
  if is_concrete(labels) and n:
    lo, hi = int(np.min(np.asarray(labels))), int(np.max(np.asarray(labels)))
    if lo < 0 or hi >= num_classes:
      raise ValueError(f"labels must lie in [0, {num_classes}), got range [{lo}, {hi}]")


_ROW_BUCKET = 256  # rows are padded to a multiple of this (fewer recompiles across set sizes).
_CLASS_BUCKET = 32  # inferred class padding is rounded up to a multiple of this.


def _resolve_max_class_size(labels, num_classes, max_class_size):
  n = labels.shape[0]
  if max_class_size is None:
    if is_concrete(labels):
      biggest = max(1, int(np.bincount(np.asarray(labels), minlength=num_classes).max()))
      return -(-biggest // _CLASS_BUCKET) * _CLASS_BUCKET
    return max(1, n)
  if max_class_size < 1:
    raise ValueError(f"max_class_size must be >= 1, got {max_class_size}")
  if is_concrete(labels):
    biggest = int(np.bincount(np.asarray(labels), minlength=num_classes).max())
    if biggest > max_class_size:
      raise ValueError(f"max_class_size={max_class_size} is smaller than the largest class "
                       f"({biggest} examples)")
  return int(max_class_size)


def class_blocks(labels: jax.Array, num_classes: int, max_class_size: int) -> ClassBlocks:
  """Groups example indices by class into a padded ``(num_classes, max_class_size)`` table.

  Pure and jittable (``num_classes`` and ``max_class_size`` are static); a class larger than
  ``max_class_size`` would be truncated and labels outside ``[0, num_classes)`` dropped, which
  is refused when ``labels`` are concrete.
  """
  check_array(labels, "labels", ndim=1, dtype_kind="iu")
  if is_concrete(labels):
    _check_labels(labels, labels.shape[0], num_classes)
    _resolve_max_class_size(labels, num_classes, max_class_size)
  return _class_blocks_jit(labels, num_classes, max_class_size)


@functools.partial(jax.jit, static_argnames=("num_classes", "max_class_size"))
def _class_blocks_jit(labels, num_classes, max_class_size):
  n = labels.shape[0]
  order = jnp.argsort(labels, stable=True)
  # Labels equal to num_classes (row padding) sort last and are not counted.
  counts = jnp.bincount(labels, length=num_classes + 1)[:num_classes].astype(jnp.int32)
  starts = jnp.cumsum(counts) - counts
  slot = jnp.arange(max_class_size)
  mask = slot[None, :] < counts[:, None]
  pos = jnp.clip(starts[:, None] + slot[None, :], 0, max(n - 1, 0))
  index = jnp.where(mask, order[pos], n).astype(jnp.int32)
  return ClassBlocks(index=index, mask=mask, counts=counts)


def _gather(reps, blocks):
  rows = reps[jnp.clip(blocks.index, 0, reps.shape[0] - 1)]
  return jnp.where(blocks.mask[..., None], rows, 0.0)


def _scatter(values, blocks, n):
  flat_idx = blocks.index.reshape(-1)
  return jnp.zeros((n,), values.dtype).at[flat_idx].set(values.reshape(-1), mode="drop")


def _masked_mean(x, mask):
  w = mask.astype(x.dtype)
  return (w @ x) / jnp.maximum(w.sum(), 1.0)


def _top_right_singular_vector_eigh(a):
  m, d = a.shape
  if d <= m:
    _, vecs = jnp.linalg.eigh(a.T @ a)
    v = vecs[:, -1]
  else:
    _, vecs = jnp.linalg.eigh(a @ a.T)
    v = a.T @ vecs[:, -1]
  return v / jnp.maximum(jnp.linalg.norm(v), jnp.finfo(a.dtype).tiny)


def _top_right_singular_vector_power(a, num_iters, block_size=8):
  m, d = a.shape
  b = min(block_size, d, m)
  # Deterministic start: the b rows of largest norm (Σ_i (a_i·v₁)² = σ₁² > 0, so the top
  # direction has weight on them unless a is 0), refined by block subspace iteration.
  _, rows = jax.lax.top_k(jnp.sum(a * a, axis=1), b)
  q, _ = jnp.linalg.qr(a[rows].T)

  def body(_, q):
    q, _ = jnp.linalg.qr(a.T @ (a @ q))
    return q

  q = jax.lax.fori_loop(0, num_iters, body, q)
  small = a @ q
  _, vecs = jnp.linalg.eigh(small.T @ small)  # Rayleigh–Ritz on the block.
  v = q @ vecs[:, -1]
  return v / jnp.maximum(jnp.linalg.norm(v), jnp.finfo(a.dtype).tiny)


def _class_spectral(block, mask, centered, method, num_iters):
  # Both variants take v from the SVD of the centred class matrix [R_i − R̂].
  mean = _masked_mean(block, mask)
  a = jnp.where(mask[:, None], block - mean, 0.0)
  if method == "eigh":
    v = _top_right_singular_vector_eigh(a)
  else:
    v = _top_right_singular_vector_power(a, num_iters)
  if centered:  # the paper: ((R_i − R̂)·v)².
    score = (a @ v) ** 2
  else:  # the reference code: |R_i·v|, uncentred representations on the centred direction.
    score = jnp.abs(block @ v)
  return jnp.where(mask, score, 0.0), v, mean


def _prepare(reps, labels, num_classes, max_class_size):
  check_array(reps, "reps", ndim=2, dtype_kind="fiu", finite=True)
  chex.assert_rank(reps, 2)
  if reps.shape[0] == 0 or reps.shape[1] == 0:
    raise ValueError(f"reps must hold at least one example of at least one feature, got shape "
                     f"{tuple(reps.shape)}")
  _check_labels(labels, reps.shape[0], num_classes)
  m = _resolve_max_class_size(labels, num_classes, max_class_size)
  # Host-side (NumPy) padding for concrete inputs avoids op-by-op dispatch; traced inputs are
  # padded with jnp inside the caller's trace.
  xp = np if (is_concrete(reps) and is_concrete(labels)
              and not isinstance(reps, jax.Array)) else jnp
  dtype = reps.dtype if np.dtype(reps.dtype).kind == "f" else np.float32
  reps = xp.asarray(reps, dtype)
  n = reps.shape[0]
  pad = (-n) % _ROW_BUCKET
  labels = xp.asarray(labels, np.int32)
  if pad:  # padding rows get the out-of-range label num_classes and are ignored.
    reps = xp.concatenate([reps, xp.zeros((pad, reps.shape[1]), dtype)])
    labels = xp.concatenate([labels, xp.full((pad,), num_classes, np.int32)])
  return reps, labels, m, n


class SpectralSignature(NamedTuple):
  """Per-example scores and the per-class quantities behind them.

  Attributes:
    scores: ``(n,)`` outlier scores τ_i.
    directions: ``(num_classes, d)`` top right singular vectors ``v`` of the centred class
      matrices (sign arbitrary).
    means: ``(num_classes, d)`` class means ``R̂`` (subtracted before the SVD in both variants;
      subtracted before the projection only when ``centered=True``).
  """

  scores: jax.Array
  directions: jax.Array
  means: jax.Array


@functools.partial(jax.jit, static_argnames=("num_classes", "centered", "method", "num_iters",
                                             "max_class_size", "n"))
def _spectral_jit(reps, labels, num_classes, centered, method, num_iters, max_class_size, n):
  blocks = _class_blocks_jit(labels, num_classes, max_class_size)
  x = _gather(reps, blocks)
  fn = functools.partial(_class_spectral, centered=centered, method=method, num_iters=num_iters)
  scores, dirs, means = jax.vmap(fn)(x, blocks.mask)
  return SpectralSignature(_scatter(scores, blocks, reps.shape[0])[:n], dirs, means)


def spectral_signature(reps: jax.Array, labels: jax.Array, num_classes: int, *,
                       centered: bool = True, method: str = "eigh", num_iters: int = 20,
                       max_class_size: int | None = None) -> SpectralSignature:
  """Spectral-signature scores of every example, all classes in one jitted call.

  Args:
    reps: ``(n, d)`` learned representations (e.g. a late layer of the poisoned network).
    labels: ``(n,)`` integer labels in ``[0, num_classes)`` (the possibly poisoned labels).
    num_classes: number of classes (static).
    centered: score ``((R_i − R̂)·v)²`` as in the paper (default); ``False`` gives the
      authors' reference-code score ``|R_i·v|`` (same centred-SVD direction ``v``, uncentred
      representations projected on it).
    method: ``"eigh"`` (exact: top eigenvector of the smaller of ``AᵀA``/``AAᵀ``) or
      ``"power"`` (block subspace iteration, ``num_iters`` steps; cheaper for large ``d``).
    num_iters: subspace iterations for ``method="power"``.
    max_class_size: static padding size; defaults to the largest class when ``labels`` is
      concrete (and to ``n`` under tracing).

  Returns:
    A :class:`SpectralSignature`; empty classes get zero direction and no scores.
  """
  check_in(method, "method", METHODS)
  if not isinstance(num_iters, int) or num_iters < 1:
    raise ValueError(f"num_iters must be a positive int, got {num_iters!r}")
  reps, labels, m, n = _prepare(reps, labels, num_classes, max_class_size)
  return _spectral_jit(reps, labels, int(num_classes), bool(centered), method, num_iters, m, n)


def spectral_scores(reps: jax.Array, labels: jax.Array, num_classes: int, *,
                    centered: bool = True, method: str = "eigh", num_iters: int = 20,
                    max_class_size: int | None = None) -> jax.Array:
  """``(n,)`` scores τ_i = ((R_i − R̂_y)·v_y)², or ``|R_i·v_y|`` when ``centered=False``.

  See :func:`spectral_signature`.
  """
  return spectral_signature(reps, labels, num_classes, centered=centered, method=method,
                            num_iters=num_iters, max_class_size=max_class_size).scores


def _check_removal_args(epsilon, multiplier):
  if not 0.0 < float(epsilon) < 0.5:
    raise ValueError(f"epsilon must be in (0, 0.5), got {epsilon}")
  if not (float(multiplier) > 0 and np.isfinite(float(multiplier))):
    raise ValueError(f"multiplier must be a finite number > 0, got {multiplier}")


def _removal_counts(counts, epsilon, multiplier):
  k = jnp.floor(multiplier * epsilon * counts.astype(jnp.float32) + 0.5).astype(jnp.int32)
  return jnp.minimum(k, counts.astype(jnp.int32))


def removal_counts(counts: jax.Array, epsilon: float, multiplier: float = 1.5) -> jax.Array:
  """Per-class removal budget ``min(n_y, ⌊multiplier · ε · n_y + ½⌋)`` (paper: 1.5·ε·n_y).

  ``counts`` must be non-negative integers (class sizes).
  """
  counts = jnp.asarray(counts) if not isinstance(counts, jax.Array) else counts
  check_array(counts, "counts", dtype_kind="iu")
  if is_concrete(counts) and counts.size and int(np.min(np.asarray(counts))) < 0:
    raise ValueError(f"counts must be non-negative class sizes, got {np.asarray(counts).tolist()}")
  _check_removal_args(epsilon, multiplier)
  return _removal_counts(counts, epsilon, multiplier)


def removal_mask(scores: jax.Array, labels: jax.Array, num_classes: int, epsilon: float,
                 multiplier: float = 1.5) -> jax.Array:
  """Marks the ``⌊1.5·ε·n_y + ½⌋`` highest-scoring examples of every class y for removal.

  Ties are broken by index (lower index first). Pure and jittable in ``scores``/``labels``.

  Args:
    scores: ``(n,)`` outlier scores (higher = more suspicious; NaN is refused, ``±inf`` ranks
      first/last).
    labels: ``(n,)`` labels in ``[0, num_classes)``.
    num_classes: number of classes.
    epsilon: the assumed poisoning rate ε ∈ (0, 0.5).
    multiplier: removal multiplier (the paper's 1.5).

  Returns:
    ``(n,)`` bool mask, true for removed examples.
  """
  check_array(scores, "scores", ndim=1, dtype_kind="fiu")
  chex.assert_rank(scores, 1)
  if is_concrete(scores) and np.any(np.isnan(np.asarray(scores, np.float64))):
    raise ValueError("scores contains NaN entries: a NaN score has no rank, so the removal set "
                     "would be arbitrary")
  _check_labels(labels, scores.shape[0], num_classes)
  _check_removal_args(epsilon, multiplier)
  return _removal_jit(scores, labels, float(epsilon), float(multiplier), int(num_classes))


@functools.partial(jax.jit, static_argnames=("num_classes",))
def _removal_jit(scores, labels, epsilon, multiplier, num_classes):
  k = _removal_counts(jnp.bincount(labels, length=num_classes), epsilon, multiplier)
  return _removal_mask(scores, labels, k, num_classes)


def _removal_mask(scores, labels, k, num_classes):
  """Top-``k[y]`` scores of every class y (ties: lower index first)."""
  n = scores.shape[0]
  order = jnp.lexsort((-scores.astype(jnp.float32), labels))  # by label, then score desc.
  counts = jnp.bincount(labels, length=num_classes)
  starts = jnp.cumsum(counts) - counts
  sorted_labels = labels[order]
  rank = jnp.arange(n) - starts[sorted_labels]
  return jnp.zeros((n,), bool).at[order].set(rank < k[sorted_labels])


# ---------------------------------------------------------------------------------------------
# Peers.


def _pca(a, mask, k):
  """Top-``k`` principal axes ``(d, k)`` and variances of the (already centred, masked) ``a``."""
  count = jnp.maximum(mask.sum(), 1).astype(a.dtype)
  m, d = a.shape
  if d <= m:
    vals, vecs = jnp.linalg.eigh(a.T @ a / count)
    return vecs[:, ::-1][:, :k], vals[::-1][:k]
  vals, u = jnp.linalg.eigh(a @ a.T / count)
  u, vals = u[:, ::-1][:, :k], vals[::-1][:k]
  v = a.T @ u
  v = v / jnp.maximum(jnp.linalg.norm(v, axis=0, keepdims=True), jnp.finfo(a.dtype).tiny)
  return v, vals


def _sym_decorrelate(w):
  vals, vecs = jnp.linalg.eigh(w @ w.T)
  return (vecs * (1.0 / jnp.sqrt(jnp.maximum(vals, 1e-12)))) @ vecs.T @ w


def fastica_rotation(z: jax.Array, mask: jax.Array, num_iters: int = 200) -> jax.Array:
  """Symmetric FastICA (logcosh contrast) unmixing matrix ``W`` (k×k, orthogonal) of whitened ``z``.

  Fixed-point update ``W ← E[g(Wz) zᵀ] − diag(E[g'(Wz)]) W`` followed by symmetric
  decorrelation ``W ← (WWᵀ)^{-½} W``, with ``g = tanh``; expectations over ``mask``-ed rows;
  deterministic start ``W = I``; ``num_iters`` fixed iterations (jit-friendly).
  """
  k = z.shape[1]
  wts = mask.astype(z.dtype) / jnp.maximum(mask.sum(), 1).astype(z.dtype)

  def body(_, w):
    y = z @ w.T  # (m, k)
    g = jnp.tanh(y)
    gp = 1.0 - g * g
    w_new = (g * wts[:, None]).T @ z - (wts @ gp)[:, None] * w
    return _sym_decorrelate(w_new)

  return jax.lax.fori_loop(0, num_iters, body, jnp.eye(k, dtype=z.dtype))


def two_means(x: jax.Array, mask: jax.Array, num_iters: int = 50):
  """Lloyd's 2-means on masked rows; returns ``(assign (m,) int32, centres (2, k))``.

  Deterministic farthest-point start: centre 0 is the row farthest from the mean, centre 1 the
  row farthest from centre 0.
  """
  mean = _masked_mean(x, mask)
  far = lambda c: jnp.argmax(jnp.where(mask, jnp.sum((x - c) ** 2, axis=1), -jnp.inf))
  c0 = x[far(mean)]
  centres = jnp.stack([c0, x[far(c0)]])

  def body(_, centres):
    d2 = jnp.sum((x[:, None, :] - centres[None]) ** 2, axis=-1)
    assign = jnp.argmin(d2, axis=1)
    onehot = jax.nn.one_hot(assign, 2, dtype=x.dtype) * mask[:, None]
    sizes = onehot.sum(0)
    new = (onehot.T @ x) / jnp.maximum(sizes, 1.0)[:, None]
    return jnp.where(sizes[:, None] > 0, new, centres)

  centres = jax.lax.fori_loop(0, num_iters, body, centres)
  d2 = jnp.sum((x[:, None, :] - centres[None]) ** 2, axis=-1)
  return jnp.argmin(d2, axis=1).astype(jnp.int32), centres


class ClusteringResult(NamedTuple):
  """Activation-clustering output.

  Attributes:
    scores: ``(n,)`` ``‖s − c_big‖² − ‖s − c_small‖²`` in ICA coordinates (> 0 ⇔ in the smaller
      cluster), so the same top-``1.5εn_y`` removal rule applies.
    in_small_cluster: ``(n,)`` bool: Chen et al.'s flag (member of the smaller cluster).
    small_fraction: ``(num_classes,)`` relative size of each class's smaller cluster (Chen et al.
      call a class poisoned when it is ≲ 0.35).
  """

  scores: jax.Array
  in_small_cluster: jax.Array
  small_fraction: jax.Array


def _class_ac(block, mask, num_components, ica_iters, kmeans_iters):
  a = jnp.where(mask[:, None], block - _masked_mean(block, mask), 0.0)
  k = min(num_components, *a.shape)
  axes, var = _pca(a, mask, k)
  z = jnp.where(mask[:, None], (a @ axes) / jnp.sqrt(jnp.maximum(var, 1e-12)), 0.0)
  s = z @ fastica_rotation(z, mask, ica_iters).T
  assign, centres = two_means(s, mask, kmeans_iters)
  sizes = jnp.stack([jnp.sum(mask & (assign == 0)), jnp.sum(mask & (assign == 1))])
  small = jnp.argmin(sizes)
  d2 = jnp.sum((s[:, None, :] - centres[None]) ** 2, axis=-1)
  score = d2[:, 1 - small] - d2[:, small]
  frac = sizes[small] / jnp.maximum(mask.sum(), 1)
  return jnp.where(mask, score, 0.0), mask & (assign == small), frac


@functools.partial(jax.jit, static_argnames=("num_classes", "num_components", "ica_iters",
                                             "kmeans_iters", "max_class_size", "n"))
def _ac_jit(reps, labels, num_classes, num_components, ica_iters, kmeans_iters, max_class_size,
            n):
  blocks = _class_blocks_jit(labels, num_classes, max_class_size)
  fn = functools.partial(_class_ac, num_components=num_components, ica_iters=ica_iters,
                         kmeans_iters=kmeans_iters)
  score, flag, frac = jax.vmap(fn)(_gather(reps, blocks), blocks.mask)
  rows = reps.shape[0]
  return ClusteringResult(_scatter(score, blocks, rows)[:n], _scatter(flag, blocks, rows)[:n],
                          frac)


def activation_clustering_scores(reps: jax.Array, labels: jax.Array, num_classes: int, *,
                                 num_components: int = 10, ica_iters: int = 200,
                                 kmeans_iters: int = 50,
                                 max_class_size: int | None = None) -> ClusteringResult:
  """Activation clustering (Chen et al., 2018), a peer of the spectral score.

  Per class: centre, PCA-whiten to ``num_components`` (10) dims, FastICA, 2-means. Because
  symmetric FastICA returns an orthogonal rotation of whitened data, the 2-means partition is
  the same as on the whitened PCA coordinates; ICA is kept for fidelity to the method.

  Returns:
    A :class:`ClusteringResult`.
  """
  for name, v in (("num_components", num_components), ("ica_iters", ica_iters),
                  ("kmeans_iters", kmeans_iters)):
    if not isinstance(v, int) or v < 1:
      raise ValueError(f"{name} must be a positive int, got {v!r}")
  reps, labels, m, n = _prepare(reps, labels, num_classes, max_class_size)
  return _ac_jit(reps, labels, int(num_classes), num_components, ica_iters, kmeans_iters, m, n)


def _class_spectre(block, mask, num_components, trim_fraction, trim_iters, alpha):
  a = jnp.where(mask[:, None], block - _masked_mean(block, mask), 0.0)
  k = min(num_components, *a.shape)
  axes, _ = _pca(a, mask, k)
  x = a @ axes  # (m, k)
  count = mask.sum()
  keep_n = jnp.maximum(jnp.floor((1.0 - trim_fraction) * count), 1).astype(jnp.int32)
  eye = jnp.eye(k, dtype=x.dtype)

  def moments(w):
    wf = w.astype(x.dtype)
    mu = (wf @ x) / jnp.maximum(wf.sum(), 1.0)
    c = x - mu
    cov = (c * wf[:, None]).T @ c / jnp.maximum(wf.sum(), 1.0)
    return mu, cov + 1e-6 * jnp.trace(cov) / k * eye

  def body(_, w):
    mu, cov = moments(w)
    c = x - mu
    dist = jnp.sum(c * jnp.linalg.solve(cov, c.T).T, axis=1)
    dist = jnp.where(mask, dist, jnp.inf)
    thresh = jnp.sort(dist)[keep_n - 1]
    return mask & (dist <= thresh)

  w = jax.lax.fori_loop(0, trim_iters, body, mask)
  mu, cov = moments(w)
  vals, vecs = jnp.linalg.eigh(cov)
  whiten = (vecs / jnp.sqrt(jnp.maximum(vals, 1e-12))) @ vecs.T
  y = jnp.where(mask[:, None], (x - mu) @ whiten, 0.0)
  sig = y.T @ y / jnp.maximum(count, 1).astype(x.dtype)
  svals, svecs = jnp.linalg.eigh(sig)
  top = svals[-1]
  expo = alpha * (svals - 1.0) / jnp.maximum(top - 1.0, 1e-6)
  expo = expo - jnp.max(expo)  # scale-free: Q is normalised by its trace below.
  q = (svecs * jnp.exp(expo)) @ svecs.T
  q = q / jnp.trace(q)
  return jnp.where(mask, jnp.sum((y @ q) * y, axis=1), 0.0)


@functools.partial(jax.jit, static_argnames=("num_classes", "num_components", "trim_iters",
                                             "max_class_size", "n"))
def _spectre_jit(reps, labels, num_classes, num_components, trim_fraction, trim_iters, alpha,
                 max_class_size, n):
  blocks = _class_blocks_jit(labels, num_classes, max_class_size)
  fn = functools.partial(_class_spectre, num_components=num_components,
                         trim_fraction=trim_fraction, trim_iters=trim_iters, alpha=alpha)
  scores = jax.vmap(fn)(_gather(reps, blocks), blocks.mask)
  return _scatter(scores, blocks, reps.shape[0])[:n]


def spectre_scores(reps: jax.Array, labels: jax.Array, num_classes: int, *,
                   num_components: int = 32, trim_fraction: float = 0.15, trim_iters: int = 5,
                   alpha: float = 4.0, max_class_size: int | None = None) -> jax.Array:
  """Robust-covariance whitened QUE score, SPECTRE-style (Hayase et al., 2021), a peer.

  Per class: centre, project on the top ``num_components`` principal axes, estimate a robust
  mean/covariance by ``trim_iters`` rounds of discarding the ``trim_fraction`` largest
  Mahalanobis distances (a simple stand-in for SPECTRE's robust estimator), whiten every
  example with it, and score ``τ_i = y_iᵀ Q y_i`` with
  ``Q ∝ exp(α (Σ̃ − I)/(‖Σ̃‖ − 1))``, ``Σ̃`` the covariance of the whitened class.

  Returns:
    ``(n,)`` scores (higher = more suspicious).
  """
  if not 0.0 <= float(trim_fraction) < 1.0:
    raise ValueError(f"trim_fraction must be in [0, 1), got {trim_fraction}")
  if not float(alpha) > 0:
    raise ValueError(f"alpha must be > 0, got {alpha}")
  for name, v in (("num_components", num_components), ("trim_iters", trim_iters)):
    if not isinstance(v, int) or v < 1:
      raise ValueError(f"{name} must be a positive int, got {v!r}")
  reps, labels, m, n = _prepare(reps, labels, num_classes, max_class_size)
  return _spectre_jit(reps, labels, int(num_classes), num_components, float(trim_fraction),
                      trim_iters, float(alpha), m, n)


class DetectionStats(NamedTuple):
  """How a removal mask did against the true poisons."""

  num_poisons: int
  caught: int
  removed: int
  recall: float
  precision: float


def detection_stats(removed: jax.Array, poison_mask: jax.Array) -> DetectionStats:
  """Poisons caught (``removed & poison``), total removed, recall and precision."""
  removed, poison = np.asarray(removed, bool), np.asarray(poison_mask, bool)
  if removed.shape != poison.shape:
    raise ValueError(f"removed and poison_mask must have the same shape, got {removed.shape} "
                     f"and {poison.shape}")
  caught, n_p, n_r = int(np.sum(removed & poison)), int(poison.sum()), int(removed.sum())
  return DetectionStats(n_p, caught, n_r, caught / max(n_p, 1), caught / max(n_r, 1))

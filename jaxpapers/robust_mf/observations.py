"""Partially observed matrices: a COO sparse layout and a dense-mask layout with the same operations.

The MM/APG solver of Yao & Kwok (NeurIPS 2018) only ever touches the observed set Ω through five
operations, implemented here for both layouts:

* ``sample(obs, A, B)`` — the entries [A Bᵀ]_ij for (i, j) ∈ Ω;
* ``left(obs, s, B)`` — S B for S supported on Ω (an m × r matrix);
* ``right(obs, s, A)`` — Sᵀ A (an n × r matrix);
* ``row_sums`` / ``col_sums`` — Σ_j S_ij and Σ_i S_ij.

On the sparse path an "Ω-array" is a vector of length |Ω| and every operation is a gather or a
``segment_sum``: O(|Ω| r) time and O(|Ω| + (m + n) r) memory, never an m × n array. On the dense
path an Ω-array is an m × n array that is zero off the mask (the layout RMF-MM, Lin et al. 2017,
works in): O(m n r) per operation.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers._src import validation


@functools.partial(jax.tree_util.register_dataclass, data_fields=["rows", "cols", "values"],
                   meta_fields=["shape"])
@dataclasses.dataclass(frozen=True)
class SparseObservations:
  """Observed entries X_ij, (i, j) ∈ Ω, of an m × n matrix in COO form.

  Attributes:
    rows: int32[|Ω|] row indices in [0, m).
    cols: int32[|Ω|] column indices in [0, n).
    values: float[|Ω|] observed values.
    shape: static ``(m, n)``.
  """

  rows: jax.Array
  cols: jax.Array
  values: jax.Array
  shape: tuple[int, int]

  @property
  def nnz(self) -> int:
    return int(self.values.shape[-1])

  @property
  def dtype(self):
    return self.values.dtype


@functools.partial(jax.tree_util.register_dataclass, data_fields=["values", "mask"],
                   meta_fields=[])
@dataclasses.dataclass(frozen=True)
class DenseObservations:
  """An m × n matrix with a 0/1 observation mask (the dense path, as in RMF-MM).

  Attributes:
    values: float[m, n]; entries off the mask are ignored (stored as 0).
    mask: float[m, n] with 1 on Ω and 0 elsewhere (same dtype as ``values``).
  """

  values: jax.Array
  mask: jax.Array

  @property
  def shape(self) -> tuple[int, int]:
    return tuple(self.values.shape[-2:])

  @property
  def dtype(self):
    return self.values.dtype


Observations = SparseObservations | DenseObservations


def _check_shape(shape, name="shape"):
  if (not isinstance(shape, (tuple, list)) or len(shape) != 2
      or not all(isinstance(s, (int, np.integer)) for s in shape)):
    raise TypeError(f"{name} must be a pair of ints (m, n), got {shape!r}")
  m, n = int(shape[0]), int(shape[1])
  if m <= 0 or n <= 0:
    raise ValueError(f"{name} must be positive, got {(m, n)}")
  return m, n


def sparse_observations(rows, cols, values, shape, *, dtype=None) -> SparseObservations:
  """Validates COO triplets and returns :class:`SparseObservations`.

  Args:
    rows: integer row indices, shape (|Ω|,).
    cols: integer column indices, shape (|Ω|,).
    values: observed values, shape (|Ω|,), finite.
    shape: ``(m, n)``, the full matrix size.
    dtype: floating dtype of ``values`` (default: ``values``'s own float dtype, or float32).

  Raises:
    TypeError: non-integer indices, non-numeric values or a malformed ``shape``.
    ValueError: empty Ω, mismatched lengths, indices out of range, a duplicated (row, col)
      (the message names the first repeated position), or NaN/inf values.
  """
  m, n = _check_shape(shape)
  rows, cols, values = np.asarray(rows), np.asarray(cols), np.asarray(values)
  validation.check_array(rows, "rows", ndim=1, dtype_kind="iu")
  validation.check_array(cols, "cols", ndim=1, dtype_kind="iu")
  validation.check_array(values, "values", ndim=1, dtype_kind="fiu")
  if values.shape[0] == 0:
    raise ValueError("the observed set Ω is empty: values has length 0")
  if not rows.shape == cols.shape == values.shape:
    raise ValueError(f"rows, cols and values must have the same length, got {rows.shape}, "
                     f"{cols.shape}, {values.shape}")
  if rows.min() < 0 or rows.max() >= m:
    raise ValueError(f"rows must lie in [0, {m}), got range [{rows.min()}, {rows.max()}]")
  if cols.min() < 0 or cols.max() >= n:
    raise ValueError(f"cols must lie in [0, {n}), got range [{cols.min()}, {cols.max()}]")
  flat = rows.astype(np.int64) * n + cols.astype(np.int64)
  order = np.argsort(flat, kind="stable")
  same = flat[order][1:] == flat[order][:-1]
  if same.any():
    later = order[1:][same]  # positions that repeat an earlier (row, col)
    pos = int(later.min())
    first = int(np.flatnonzero(flat == flat[pos])[0])
    raise ValueError(f"duplicate entry: position {pos} repeats (row, col) = "
                     f"({int(rows[pos])}, {int(cols[pos])}) of position {first}; "
                     f"{int(same.sum())} duplicate(s) in all (merge them before building Ω)")
  if dtype is None:
    dtype = values.dtype if values.dtype.kind == "f" else jnp.float32
  values = np.asarray(values, dtype=dtype)
  validation.check_array(values, "values", finite=True)
  return SparseObservations(jnp.asarray(rows, jnp.int32), jnp.asarray(cols, jnp.int32),
                            jnp.asarray(values), (m, n))


def dense_observations(values, mask) -> DenseObservations:
  """Validates a dense matrix and 0/1 mask; entries off the mask are zeroed (NaN allowed there).

  Raises:
    TypeError: non-floating ``values``.
    ValueError: shape mismatch, empty mask, or NaN/inf on the mask.
  """
  values = np.asarray(values)
  mask = np.asarray(mask)
  validation.check_array(values, "values", ndim=2, dtype_kind="f")
  validation.check_array(mask, "mask", ndim=2, shape=values.shape)
  observed = mask.astype(bool)
  if not observed.any():
    raise ValueError("the observed set Ω is empty: mask has no nonzero entry")
  if not np.all(np.isfinite(values[observed])):
    raise ValueError("values contains NaN or inf entries on the mask")
  clean = np.where(observed, values, 0).astype(values.dtype)
  return DenseObservations(jnp.asarray(clean), jnp.asarray(observed, dtype=values.dtype))


def to_dense(obs: SparseObservations) -> DenseObservations:
  """The dense-mask layout of sparse observations (builds m × n arrays; for tests and RMF-MM)."""
  m, n = obs.shape
  vals = jnp.zeros((m, n), obs.dtype).at[obs.rows, obs.cols].set(obs.values)
  mask = jnp.zeros((m, n), obs.dtype).at[obs.rows, obs.cols].set(1)
  return DenseObservations(vals, mask)


def sample(obs: Observations, a, b):
  """[A Bᵀ] on Ω: a vector of length |Ω| (sparse) or a masked m × n array (dense)."""
  if isinstance(obs, SparseObservations):
    return jnp.sum(a[obs.rows] * b[obs.cols], axis=-1)
  return obs.mask * (a @ b.T)


def left(obs: Observations, s, b):
  """S B for the Ω-array ``s`` (S zero off Ω): an m × r matrix."""
  if isinstance(obs, SparseObservations):
    return jax.ops.segment_sum(s[:, None] * b[obs.cols], obs.rows, num_segments=obs.shape[0])
  return s @ b


def right(obs: Observations, s, a):
  """Sᵀ A for the Ω-array ``s``: an n × r matrix."""
  if isinstance(obs, SparseObservations):
    return jax.ops.segment_sum(s[:, None] * a[obs.rows], obs.cols, num_segments=obs.shape[1])
  return s.T @ a


def row_sums(obs: Observations, s):
  """Σ_j S_ij over (i, j) ∈ Ω, shape (m,)."""
  if isinstance(obs, SparseObservations):
    return jax.ops.segment_sum(s, obs.rows, num_segments=obs.shape[0])
  return jnp.sum(s, axis=1)


def col_sums(obs: Observations, s):
  """Σ_i S_ij over (i, j) ∈ Ω, shape (n,)."""
  if isinstance(obs, SparseObservations):
    return jax.ops.segment_sum(s, obs.cols, num_segments=obs.shape[1])
  return jnp.sum(s, axis=0)


def on_omega(obs: Observations, x):
  """Zeroes an elementwise function of Ω-arrays off the mask (identity on the sparse path)."""
  if isinstance(obs, SparseObservations):
    return x
  return obs.mask * x


def count(obs: Observations):
  """|Ω| as a scalar array."""
  if isinstance(obs, SparseObservations):
    return jnp.asarray(obs.values.shape[-1], obs.dtype)
  return jnp.sum(obs.mask)


def check_indices(obs: Observations):
  """Raises ``ValueError`` if a concrete sparse ``obs`` has an index outside ``obs.shape``.

  JAX clamps out-of-range gathers and drops out-of-range scatters, so such an index would give a
  finite wrong number rather than an error; :class:`SparseObservations` built directly (not by
  :func:`sparse_observations`) are checked here. Skipped under tracing.
  """
  if not isinstance(obs, SparseObservations):
    return
  m, n = obs.shape
  for name, idx, size in (("rows", obs.rows, m), ("cols", obs.cols, n)):
    if not validation.is_concrete(idx):
      continue
    validation.check_array(idx, f"obs.{name}", dtype_kind="iu")
    arr = np.asarray(idx)
    if arr.size and (arr.min() < 0 or arr.max() >= size):
      bad = int(np.flatnonzero((arr < 0) | (arr >= size))[0])
      raise ValueError(f"obs.{name} must lie in [0, {size}) for obs.shape = {obs.shape}, got "
                       f"{int(arr[bad])} at position {bad}")


def check_factors(obs: Observations, u, v):
  """U (m, r) and V (n, r) of one rank r matching ``obs.shape``, and ``obs``'s indices in range.

  Raises:
    TypeError: ``obs`` of the wrong type or non-floating factors.
    ValueError: wrong ranks/shapes or out-of-range indices.
  """
  if not isinstance(obs, (SparseObservations, DenseObservations)):
    raise TypeError(f"obs must be SparseObservations or DenseObservations, got "
                    f"{type(obs).__name__}")
  m, n = obs.shape
  validation.check_array(u, "u", ndim=2, dtype_kind="f")
  validation.check_array(v, "v", ndim=2, dtype_kind="f")
  if u.shape[0] != m:
    raise ValueError(f"u must have m = {m} rows (obs.shape = {obs.shape}), got shape {u.shape}")
  if v.shape[0] != n:
    raise ValueError(f"v must have n = {n} rows (obs.shape = {obs.shape}), got shape {v.shape}")
  if u.shape[1] != v.shape[1]:
    raise ValueError(f"u and v must have the same rank, got shapes {u.shape} and {v.shape}")
  check_indices(obs)


def predict(obs: Observations, u, v):
  """Predictions u_iᵀ v_j at the observed positions of ``obs`` (an Ω-array).

  Raises:
    ValueError: factor shapes that do not match ``obs.shape`` or indices outside it.
  """
  check_factors(obs, u, v)
  return sample(obs, u, v)


def rmse(obs: Observations, u, v):
  """Root-mean-square error of U Vᵀ against the values of ``obs`` over its Ω.

  Raises:
    ValueError: factor shapes that do not match ``obs.shape`` or indices outside it.
  """
  check_factors(obs, u, v)
  err = on_omega(obs, obs.values - sample(obs, u, v))
  return jnp.sqrt(jnp.sum(err**2) / count(obs))


def mae(obs: Observations, u, v):
  """Mean absolute error of U Vᵀ against the values of ``obs`` over its Ω.

  Raises:
    ValueError: factor shapes that do not match ``obs.shape`` or indices outside it.
  """
  check_factors(obs, u, v)
  err = on_omega(obs, obs.values - sample(obs, u, v))
  return jnp.sum(jnp.abs(err)) / count(obs)

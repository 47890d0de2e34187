"""Matrix-free kernel operators: the only thing BBMM needs from a GP model is ``K̂ @ V``.

Gardner et al., "GPyTorch: Blackbox Matrix-Matrix Gaussian Process Inference with GPU
Acceleration", NeurIPS 2018, §3–§5: exact GPs, SGPR (Titsias 2009) and SKI/KISS-GP (Wilson &
Nickisch 2015) differ only in how ``K̂ V`` is computed. Each operator here is a frozen (hashable)
dataclass of static settings with the methods

* ``prepare(params, x) -> state``: everything the products need (a pytree);
* ``matmul(state, V)``: ``K̂ V = (K + σ² I) V`` for an ``(n, t)`` block;
* ``kernel_diag(state)``, ``kernel_row(state, i)``: ``diag K`` and ``K[i, :]`` (pivoted Cholesky);
* ``cross_matmul(state, x_star, V)``: ``K(X*, X) V``; ``cross_matrix(state, x_star)``:
  ``K(X, X*)``; ``prior_diag(state, x_star)``: ``diag K(X*, X*)`` (prediction);
* ``trace_term(state)``: an extra MLL term (SGPR's ``−tr(K − Q)/(2σ²)``, else 0).

The exact operator never forms the ``n × n`` matrix: ``K V`` is computed in row blocks with
``lax.map`` under ``jax.checkpoint``, so the backward pass recomputes each block and memory is
``O(n t + block · n)``. With a ``mesh`` the row blocks are spread over devices with ``shard_map``
(Wang et al., "Exact Gaussian Processes on a Million Data Points", NeurIPS 2019).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np

from jaxpapers._src import mesh as mesh_lib
from jaxpapers._src import validation
from jaxpapers.bbmm import kernels


class GPParams(NamedTuple):
  """Hyperparameters of a GP with Gaussian likelihood (constrained values).

  Attributes:
    kernel: kernel parameters (``KernelParams`` or a tuple for sums/products).
    noise: scalar Gaussian-likelihood noise variance ``σ² > 0``.
    mean: scalar constant mean (fixed at 0 for a zero-mean model).
    inducing: ``(m, d)`` inducing inputs for SGPR, ``None`` otherwise.
  """

  kernel: Any
  noise: jax.Array
  mean: jax.Array
  inducing: jax.Array | None = None


def blocked_kernel_matmul(spec, kparams, x1: jax.Array, x2: jax.Array, v: jax.Array,
                          block_size: int) -> jax.Array:
  """``K(x1, x2) @ v`` computed in row blocks of ``x1`` (never more than ``block_size × n2``).

  Each block is wrapped in ``jax.checkpoint``, so reverse-mode differentiation recomputes the
  block instead of storing it.
  """

  @jax.checkpoint
  def block(xb, kp, x2, v):
    return kernels.matrix(spec, kp, xb, x2) @ v

  n1 = x1.shape[0]
  if n1 <= block_size:
    return block(x1, kparams, x2, v)
  nb = -(-n1 // block_size)
  xp, _ = mesh_lib.pad_to_multiple(x1, block_size)
  out = jax.lax.map(lambda xb: block(xb, kparams, x2, v), xp.reshape(nb, block_size, -1))
  return out.reshape(nb * block_size, v.shape[1])[:n1]


def sharded_kernel_matmul(spec, kparams, x1, x2, v, block_size: int, mesh, axis: str = "data"):
  """:func:`blocked_kernel_matmul` with the rows of ``x1`` split over ``mesh`` axis ``axis``."""
  ndev = mesh.shape[axis]
  xp, n1 = mesh_lib.pad_to_multiple(x1, ndev)
  P = mesh_lib.P

  def local(xl, kp, x2, v):
    return blocked_kernel_matmul(spec, kp, xl, x2, v, block_size)

  fn = mesh_lib.shard_map(local, mesh, in_specs=(P(axis), P(), P(), P()), out_specs=P(axis))
  return fn(xp, kparams, x2, v)[:n1]


class ExactState(NamedTuple):
  kernel: Any
  noise: jax.Array
  x: jax.Array
  dense_k: jax.Array | None = None  # K(X, X) when the operator materialises it


@dataclasses.dataclass(frozen=True)
class ExactOperator:
  """Exact GP ``K̂ = K(X, X) + σ² I`` with matrix-free, blocked (optionally sharded) products.

  Attributes:
    kernel: kernel spec (see :mod:`jaxpapers.bbmm.kernels`).
    block_size: rows of ``K`` materialised at once.
    mesh: optional device mesh; rows are split over its ``"data"`` axis with ``shard_map``.
    materialize: form the dense ``n × n`` ``K̂`` once per likelihood evaluation and reuse it in
      every CG iteration (GPyTorch's default for exact GPs; fast for ``n`` up to ~10⁴ on CPU,
      memory ``O(n²)``). ``False`` keeps every product matrix-free.
  """

  kernel: Any = "rbf"
  block_size: int = 1024
  mesh: Any = None
  materialize: bool = False

  def __post_init__(self):
    kernels.check_spec(self.kernel, "kernel")
    if self.block_size < 1:
      raise ValueError(f"block_size must be >= 1, got {self.block_size}")

  def prepare(self, params: GPParams, x: jax.Array) -> ExactState:
    dense_k = kernels.matrix(self.kernel, params.kernel, x, x) if self.materialize else None
    return ExactState(params.kernel, params.noise, x, dense_k)

  def _kmm(self, state, x1, v):
    if self.mesh is not None:
      return sharded_kernel_matmul(self.kernel, state.kernel, x1, state.x, v, self.block_size,
                                   self.mesh)
    return blocked_kernel_matmul(self.kernel, state.kernel, x1, state.x, v, self.block_size)

  def matmul(self, state: ExactState, v: jax.Array) -> jax.Array:
    if state.dense_k is not None:
      return state.dense_k @ v + state.noise * v
    return self._kmm(state, state.x, v) + state.noise * v

  def kernel_diag(self, state: ExactState) -> jax.Array:
    return kernels.diag(self.kernel, state.kernel, state.x)

  def kernel_row(self, state: ExactState, i) -> jax.Array:
    if state.dense_k is not None:
      return jax.lax.dynamic_index_in_dim(state.dense_k, i, 0, keepdims=False)
    xi = jax.lax.dynamic_slice_in_dim(state.x, i, 1, 0)
    return kernels.matrix(self.kernel, state.kernel, xi, state.x)[0]

  def kernel_block(self, state: ExactState, idx: jax.Array) -> jax.Array:
    """``K[idx, idx]`` (noise excluded), from the inputs: ``O(k² d)``, no rows of ``K``."""
    xi = state.x[idx]
    return kernels.matrix(self.kernel, state.kernel, xi, xi)

  def cross_matmul(self, state: ExactState, x_star: jax.Array, v: jax.Array) -> jax.Array:
    return self._kmm(state, x_star, v)

  def cross_matrix(self, state: ExactState, x_star: jax.Array) -> jax.Array:
    return kernels.matrix(self.kernel, state.kernel, state.x, x_star)

  def prior_diag(self, state: ExactState, x_star: jax.Array) -> jax.Array:
    return kernels.diag(self.kernel, state.kernel, x_star)

  def trace_term(self, state: ExactState) -> jax.Array:
    return jnp.zeros((), state.x.dtype)

  def dense(self, state: ExactState) -> jax.Array:
    """The dense ``K̂`` (tests and the Cholesky baseline only)."""
    k = kernels.matrix(self.kernel, state.kernel, state.x, state.x)
    return k + state.noise * jnp.eye(k.shape[0], dtype=k.dtype)


class SGPRState(NamedTuple):
  kernel: Any
  noise: jax.Array
  x: jax.Array
  inducing: jax.Array
  chol_zz: jax.Array
  a: jax.Array  # L_zz^{-1} K_zx, (m, n); Q = aᵀ a


@dataclasses.dataclass(frozen=True)
class SGPROperator:
  """SGPR (Titsias 2009): ``K̂ = Q + σ² I``, ``Q = K_xz K_zz⁻¹ K_zx``, plus ``−tr(K − Q)/(2σ²)``.

  Attributes:
    kernel: kernel spec.
    jitter: added to ``K_zz``'s diagonal, relative to the kernel scale.
  """

  kernel: Any = "rbf"
  jitter: float = 1e-6

  def __post_init__(self):
    kernels.check_spec(self.kernel, "kernel")

  def prepare(self, params: GPParams, x: jax.Array) -> SGPRState:
    if params.inducing is None:
      raise ValueError("params.inducing must be an (m, d) array for SGPR")
    z = params.inducing
    kzz = kernels.matrix(self.kernel, params.kernel, z, z)
    scale = jnp.max(jnp.diag(kzz))
    chol = jnp.linalg.cholesky(kzz + self.jitter * scale * jnp.eye(z.shape[0], dtype=z.dtype))
    a = jsl.solve_triangular(chol, kernels.matrix(self.kernel, params.kernel, z, x), lower=True)
    return SGPRState(params.kernel, params.noise, x, z, chol, a)

  def matmul(self, state: SGPRState, v):
    return state.a.T @ (state.a @ v) + state.noise * v

  def kernel_diag(self, state):
    return jnp.sum(state.a * state.a, 0)

  def kernel_row(self, state, i):
    return state.a.T @ jax.lax.dynamic_index_in_dim(state.a, i, 1, keepdims=False)

  def _a_star(self, state, x_star):
    kzs = kernels.matrix(self.kernel, state.kernel, state.inducing, x_star)
    return jsl.solve_triangular(state.chol_zz, kzs, lower=True)

  def cross_matmul(self, state, x_star, v):
    return self._a_star(state, x_star).T @ (state.a @ v)

  def cross_matrix(self, state, x_star):
    return state.a.T @ self._a_star(state, x_star)

  def prior_diag(self, state, x_star):
    a = self._a_star(state, x_star)
    return jnp.sum(a * a, 0)

  def trace_term(self, state):
    kdiag = kernels.diag(self.kernel, state.kernel, state.x)
    return -0.5 * jnp.sum(kdiag - jnp.sum(state.a * state.a, 0)) / state.noise

  def dense(self, state):
    n = state.x.shape[0]
    return state.a.T @ state.a + state.noise * jnp.eye(n, dtype=state.a.dtype)


# ----------------------------------------------------------------------------- SKI / KISS-GP


def cubic_weights(s: jax.Array) -> jax.Array:
  """Keys' cubic convolution kernel (a = −0.5), the interpolant of KISS-GP."""
  a = -0.5
  s = jnp.abs(s)
  w1 = (a + 2) * s**3 - (a + 3) * s**2 + 1
  w2 = a * s**3 - 5 * a * s**2 + 8 * a * s - 4 * a
  return jnp.where(s <= 1, w1, jnp.where(s < 2, w2, 0.0))


def interpolation(x: jax.Array, lo: jax.Array, h: jax.Array, grid_size: tuple[int, ...]):
  """Per-dimension cubic interpolation indices and weights onto a regular grid.

  Returns:
    ``(idx, w)`` of shape ``(n, d, 4)``: grid indices ``j − 1 .. j + 2`` around each coordinate
    and their cubic-convolution weights (each row sums to 1).
  """
  g = (x - lo) / h
  j = jnp.floor(g).astype(jnp.int32)
  offs = jnp.arange(-1, 3, dtype=jnp.int32)
  idx = j[..., None] + offs
  w = cubic_weights(g[..., None] - idx.astype(x.dtype))
  sizes = jnp.asarray(grid_size, jnp.int32)[None, :, None]
  return jnp.clip(idx, 0, sizes - 1), w


def _flat_interp(idx, w, grid_size):
  """Tensor-product flat indices/weights ``(n, 4^d)`` from per-dimension ``(n, d, 4)``."""
  n, d, _ = idx.shape
  flat = jnp.zeros((n, 1), jnp.int32)
  wt = jnp.ones((n, 1), w.dtype)
  for k in range(d):
    flat = (flat[:, :, None] * grid_size[k] + idx[:, k][:, None, :]).reshape(n, -1)
    wt = (wt[:, :, None] * w[:, k][:, None, :]).reshape(n, -1)
  return flat, wt


def toeplitz_matmul(col: jax.Array, v: jax.Array, axis: int = 0) -> jax.Array:
  """``T v`` along ``axis`` for the symmetric Toeplitz ``T`` with first column ``col`` (by FFT).

  ``T`` is embedded in a ``2m`` circulant ``[c_0 … c_{m−1}, 0, c_{m−1} … c_1]``.
  """
  validation.check_array(col, "col", ndim=1, dtype_kind="f")
  validation.check_array(v, "v", dtype_kind="f")
  if not -v.ndim <= axis < v.ndim:
    raise ValueError(f"axis must be in [-{v.ndim}, {v.ndim}), got {axis}")
  if col.shape[0] == 0 or v.shape[axis] != col.shape[0]:
    raise ValueError(f"v must have {col.shape[0]} (= len(col) >= 1) entries along axis {axis}, "
                     f"got shape {v.shape}")
  m = col.shape[0]
  circ = jnp.concatenate([col, jnp.zeros((1,), col.dtype), col[:0:-1]])
  v = jnp.moveaxis(v, axis, 0)
  shape = v.shape
  v2 = v.reshape(m, -1)
  fv = jnp.fft.rfft(v2, n=2 * m, axis=0)
  fc = jnp.fft.rfft(circ)
  out = jnp.fft.irfft(fc[:, None] * fv, n=2 * m, axis=0)[:m].astype(v.dtype)
  return jnp.moveaxis(out.reshape(shape), 0, axis)


class SKIState(NamedTuple):
  kernel: Any
  noise: jax.Array
  cols: tuple  # per-dimension Toeplitz first columns (unit scale)
  scale: jax.Array
  lo: jax.Array
  h: jax.Array
  idx: jax.Array  # (n, 4^d) flat grid indices
  w: jax.Array  # (n, 4^d) weights
  diag_factors: jax.Array  # (n,) diag of W K_UU Wᵀ


@dataclasses.dataclass(frozen=True)
class SKIOperator:
  """SKI / KISS-GP: ``K ≈ W K_UU Wᵀ`` on a regular grid, ``K_UU = s ⊗_d T_d`` (Toeplitz).

  The grid has ``grid_size[d]`` points per dimension covering the training inputs with a margin
  of two cells (cubic interpolation needs four neighbours). ``K_UU`` is a Kronecker product of
  symmetric Toeplitz matrices, multiplied by FFT; ``W`` has ``4^d`` nonzeros per row. The kernel
  is the product over dimensions of the one-dimensional base kernel (exactly the ARD RBF for
  ``"rbf"``; a product of 1-D Matérns for Matérn specs, as in KISS-GP).

  Attributes:
    kernel: a base kernel name (``"rbf"``, ``"matern12"``, ``"matern32"``, ``"matern52"``).
    grid_size: points per input dimension (≥ 6 each).
  """

  kernel: str = "rbf"
  grid_size: tuple = (100,)

  def __post_init__(self):
    validation.check_in(self.kernel, "kernel", kernels.BASE_KERNELS)
    if not self.grid_size or any(int(g) < 6 for g in self.grid_size):
      raise ValueError(f"grid_size entries must be >= 6, got {self.grid_size}")

  def grid(self, x: jax.Array):
    """``(lo, h)``: grid origin and spacing per dimension covering ``x`` with a 2-cell margin."""
    m = jnp.asarray(self.grid_size, x.dtype)
    xmin, xmax = jnp.min(x, 0), jnp.max(x, 0)
    span = jnp.where(xmax > xmin, xmax - xmin, 1.0)
    h = span / (m - 5)
    return xmin - 2 * h, h

  def _interp(self, state_or_lo, h, x):
    idx, w = interpolation(x, state_or_lo, h, self.grid_size)
    return idx, w

  def prepare(self, params: GPParams, x: jax.Array) -> SKIState:
    if x.shape[1] != len(self.grid_size):
      raise ValueError(f"x has {x.shape[1]} columns but grid_size has {len(self.grid_size)} entries")
    kp = params.kernel
    lo, h = self.grid(x)
    lo, h = jax.lax.stop_gradient(lo), jax.lax.stop_gradient(h)
    ls = jnp.broadcast_to(kp.lengthscale, (x.shape[1],))
    cols = tuple(
        kernels.profile(self.kernel, (jnp.arange(m, dtype=x.dtype) * h[k] / ls[k]) ** 2)
        for k, m in enumerate(self.grid_size))
    idx_d, w_d = self._interp(lo, h, x)
    diag = jnp.ones((x.shape[0],), x.dtype)
    for k in range(x.shape[1]):
      c = cols[k][jnp.abs(idx_d[:, k, :, None] - idx_d[:, k, None, :])]
      diag = diag * jnp.einsum("na,nab,nb->n", w_d[:, k], c, w_d[:, k])
    idx, w = _flat_interp(idx_d, w_d, self.grid_size)
    return SKIState(kp, params.noise, cols, kp.scale, lo, h, idx, w, diag)

  def _kuu(self, state, u):
    # u: (M, t) on the flattened grid.
    t = u.shape[1]
    g = u.reshape(*self.grid_size, t)
    for k, col in enumerate(state.cols):
      g = toeplitz_matmul(col, g, axis=k)
    return state.scale * g.reshape(-1, t)

  def _wt(self, idx, w, v):
    size = math.prod(self.grid_size)
    vals = w[:, :, None] * v[:, None, :]
    return jnp.zeros((size, v.shape[1]), v.dtype).at[idx.reshape(-1)].add(
        vals.reshape(-1, v.shape[1]))

  @staticmethod
  def _w(idx, w, u):
    return jnp.einsum("nk,nkt->nt", w, u[idx])

  def matmul(self, state: SKIState, v):
    return self._w(state.idx, state.w, self._kuu(state, self._wt(state.idx, state.w, v))) \
        + state.noise * v

  def kernel_diag(self, state):
    return state.scale * state.diag_factors

  def kernel_row(self, state, i):
    n = state.idx.shape[0]
    e = jnp.zeros((n, 1), state.w.dtype).at[i, 0].set(1.0)
    return self._w(state.idx, state.w, self._kuu(state, self._wt(state.idx, state.w, e)))[:, 0]

  def _star(self, state, x_star):
    idx_d, w_d = self._interp(state.lo, state.h, x_star)
    return _flat_interp(idx_d, w_d, self.grid_size)

  def cross_matmul(self, state, x_star, v):
    si, sw = self._star(state, x_star)
    return self._w(si, sw, self._kuu(state, self._wt(state.idx, state.w, v)))

  def cross_matrix(self, state, x_star):
    si, sw = self._star(state, x_star)
    e = jnp.eye(x_star.shape[0], dtype=sw.dtype)
    return self._w(state.idx, state.w, self._kuu(state, self._wt(si, sw, e)))

  def prior_diag(self, state, x_star):
    return kernels.diag(self.kernel, state.kernel, x_star)

  def trace_term(self, state):
    return jnp.zeros((), state.w.dtype)

  def interpolation_matrix(self, state, x=None):
    """Dense ``W`` (tests only)."""
    idx, w = (state.idx, state.w) if x is None else self._star(state, x)
    size = math.prod(self.grid_size)
    n = idx.shape[0]
    return jnp.zeros((n, size), w.dtype).at[jnp.arange(n)[:, None], idx].add(w)

  def grid_points(self, state):
    """``(M, d)`` grid coordinates in the flattened (C-order) layout."""
    axes = [state.lo[k] + state.h[k] * jnp.arange(m, dtype=state.h.dtype)
            for k, m in enumerate(self.grid_size)]
    mesh = jnp.meshgrid(*axes, indexing="ij")
    return jnp.stack([g.reshape(-1) for g in mesh], -1)

  def dense(self, state):
    """Dense ``W K_UU Wᵀ + σ² I`` from its definition (tests only)."""
    grid = self.grid_points(state)
    kp = kernels.KernelParams(jnp.broadcast_to(state.kernel.lengthscale, (grid.shape[1],)),
                              state.scale)
    kuu = state.scale * jnp.ones((grid.shape[0],) * 2, grid.dtype)
    for k in range(grid.shape[1]):
      d2 = ((grid[:, k, None] - grid[None, :, k]) / kp.lengthscale[k]) ** 2
      kuu = kuu * kernels.profile(self.kernel, d2)
    wmat = self.interpolation_matrix(state)
    return wmat @ kuu @ wmat.T + state.noise * jnp.eye(wmat.shape[0], dtype=wmat.dtype)


def check_gp_inputs(params: GPParams, x, y=None, *, name_x: str = "x", name_y: str = "y",
                    per_point_noise: bool = False):
  """Validates GP hyperparameters and data (shapes, dtypes, NaNs, positivity) before any work.

  ``per_point_noise``: ``params.noise`` is an ``(n,)`` vector of variances (one per row of
  ``x``) instead of a scalar.
  """
  if not isinstance(params, GPParams):
    raise TypeError(f"params must be a GPParams, got {type(params).__name__}")
  validation.check_array(x, name_x, ndim=2, dtype_kind="f", finite=True)
  if x.shape[0] == 0 or x.shape[1] == 0:
    raise ValueError(f"{name_x} must have at least one row and one column, got shape {x.shape}")
  if y is not None:
    validation.check_array(y, name_y, ndim=1, dtype_kind="f", finite=True)
    if y.shape[0] != x.shape[0]:
      raise ValueError(f"{name_y} has {y.shape[0]} entries but {name_x} has {x.shape[0]} rows")
  validation.check_array(params.noise, "params.noise", ndim=1 if per_point_noise else 0,
                         dtype_kind="f")
  if per_point_noise and params.noise.shape[0] != x.shape[0]:
    raise ValueError(f"params.noise must have shape ({x.shape[0]},) (one noise variance per "
                     f"training point), got {params.noise.shape}")
  if validation.is_concrete(params.noise):
    arr = np.asarray(params.noise)
    bad = ~(np.isfinite(arr) & (arr > 0))
    if np.any(bad) and arr.ndim:
      i = int(np.argmax(bad))
      raise ValueError(f"params.noise must be finite and > 0 at every point, got "
                       f"{int(np.sum(bad))} bad entries (first: index {i}, value {arr[i]})")
    if np.any(bad):
      raise ValueError(f"params.noise must be finite and > 0, got {float(arr)}")
  validation.check_array(params.mean, "params.mean", ndim=0, dtype_kind="f", finite=True)
  if params.inducing is not None:
    validation.check_array(params.inducing, "params.inducing", ndim=2, dtype_kind="f", finite=True)
    if params.inducing.shape[1] != x.shape[1]:
      raise ValueError(f"params.inducing must have {x.shape[1]} columns, got {params.inducing.shape}")

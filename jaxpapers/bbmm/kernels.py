"""Stationary covariance kernels (RBF, Matérn 1/2, 3/2, 5/2) with ARD lengthscales, sums, products.

Gardner et al., "GPyTorch: Blackbox Matrix-Matrix Gaussian Process Inference with GPU
Acceleration", NeurIPS 2018. BBMM only needs kernel matrix–matrix products; this module gives the
kernel entries those products are built from.

A kernel is described by a static, hashable *spec* and a pytree of *parameters*:

* a base spec is one of ``"rbf"``, ``"matern12"``, ``"matern32"``, ``"matern52"``; its parameters
  are a :class:`KernelParams` (ARD ``lengthscale`` of shape ``(d,)`` and a scalar output ``scale``);
* ``("sum", spec_1, spec_2, ...)`` and ``("product", spec_1, spec_2, ...)`` combine kernels; their
  parameters are a tuple with one entry per child.

With ``r = ||(x - x') / ℓ||``:

* RBF: ``s · exp(-r² / 2)``
* Matérn 1/2: ``s · exp(-r)``
* Matérn 3/2: ``s · (1 + √3 r) exp(-√3 r)``
* Matérn 5/2: ``s · (1 + √5 r + 5 r² / 3) exp(-√5 r)``
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers._src import validation

BASE_KERNELS = ("rbf", "matern12", "matern32", "matern52")
COMBINATORS = ("sum", "product")

KernelSpec = Any  # str | tuple[str, KernelSpec, ...]


class KernelParams(NamedTuple):
  """Parameters of a base stationary kernel.

  Attributes:
    lengthscale: ``(d,)`` ARD lengthscales (``ℓ > 0``).
    scale: scalar output scale (``s > 0``), the kernel's value at ``r = 0``.
  """

  lengthscale: jax.Array
  scale: jax.Array


def check_spec(spec: KernelSpec, name: str = "kernel") -> KernelSpec:
  """Validates a kernel spec and returns it (raises ``ValueError`` naming ``name``)."""
  if isinstance(spec, str):
    validation.check_in(spec, name, BASE_KERNELS)
    return spec
  if isinstance(spec, tuple) and len(spec) >= 3 and spec[0] in COMBINATORS:
    for i, child in enumerate(spec[1:]):
      check_spec(child, f"{name}[{i + 1}]")
    return spec
  raise ValueError(
      f"{name} must be one of {list(BASE_KERNELS)} or ('sum'|'product', spec, spec, ...), "
      f"got {spec!r}")


def init_params(spec: KernelSpec, dim: int, lengthscale: float = 1.0, scale: float = 1.0,
                dtype=None) -> Any:
  """Default parameters for ``spec`` on ``dim``-dimensional inputs.

  Products get ``scale ** (1 / #children)`` per child so the product's scale is ``scale``; sums
  get ``scale / #children`` per child.
  """
  check_spec(spec)
  if dim < 1:
    raise ValueError(f"dim must be >= 1, got {dim}")
  for value, name in ((lengthscale, "lengthscale"), (scale, "scale")):
    validation.check_positive(value, name)
    if not np.isfinite(value):
      raise ValueError(f"{name} must be finite, got {value}")
  dtype = dtype or jnp.zeros(()).dtype
  if isinstance(spec, str):
    return KernelParams(jnp.full((dim,), lengthscale, dtype), jnp.asarray(scale, dtype))
  k = len(spec) - 1
  child_scale = scale ** (1.0 / k) if spec[0] == "product" else scale / k
  return tuple(init_params(c, dim, lengthscale, child_scale, dtype) for c in spec[1:])


def check_params(spec: KernelSpec, params: Any, dim: int | None = None, name: str = "params"):
  """Checks structure, shapes and (for concrete values) positivity of kernel parameters."""
  if isinstance(spec, str):
    if not isinstance(params, KernelParams):
      raise TypeError(f"{name} must be a KernelParams for kernel {spec!r}, got {type(params).__name__}")
    validation.check_array(params.lengthscale, f"{name}.lengthscale", ndim=1, dtype_kind="f")
    validation.check_array(params.scale, f"{name}.scale", ndim=0, dtype_kind="f")
    if dim is not None and params.lengthscale.shape[0] not in (1, dim):
      raise ValueError(f"{name}.lengthscale must have shape ({dim},) or (1,) to match the inputs, "
                       f"got {params.lengthscale.shape}")
    for field in ("lengthscale", "scale"):
      value = getattr(params, field)
      if validation.is_concrete(value):
        arr = np.asarray(value)
        if not np.all(np.isfinite(arr) & (arr > 0)):
          raise ValueError(f"{name}.{field} must be finite and > 0, got {arr}")
    return
  if not isinstance(params, tuple) or len(params) != len(spec) - 1:
    raise TypeError(f"{name} must be a tuple of {len(spec) - 1} child parameters for {spec[0]!r}")
  for i, (c, p) in enumerate(zip(spec[1:], params)):
    check_params(c, p, dim, f"{name}[{i}]")


def _safe_sqrt(r2):
  # sqrt with a finite (zero) gradient at r² = 0, the kernel diagonal.
  pos = r2 > 0
  return jnp.where(pos, jnp.sqrt(jnp.where(pos, r2, 1.0)), 0.0)


def profile(name: str, r2):
  """The unit-scale stationary profile ``k(r)`` of a base kernel as a function of ``r²``."""
  if name == "rbf":
    return jnp.exp(-0.5 * r2)
  r = _safe_sqrt(r2)
  if name == "matern12":
    return jnp.exp(-r)
  if name == "matern32":
    a = np.sqrt(3.0) * r
    return (1.0 + a) * jnp.exp(-a)
  if name == "matern52":
    a = np.sqrt(5.0) * r
    return (1.0 + a + a * a / 3.0) * jnp.exp(-a)
  raise ValueError(f"unknown base kernel {name!r}")


def scaled_sqdist(x1, x2, lengthscale):
  """``||(x1_i - x2_j) / ℓ||²`` for all pairs, clipped at 0 (shape ``(n1, n2)``)."""
  a = x1 / lengthscale
  b = x2 / lengthscale
  sq = jnp.sum(a * a, -1)[:, None] + jnp.sum(b * b, -1)[None, :] - 2.0 * a @ b.T
  return jnp.maximum(sq, 0.0)


def matrix(spec: KernelSpec, params: Any, x1: jax.Array, x2: jax.Array) -> jax.Array:
  """The kernel matrix ``K(x1, x2)`` of shape ``(n1, n2)`` (no validation; use inside jit)."""
  if isinstance(spec, str):
    return params.scale * profile(spec, scaled_sqdist(x1, x2, params.lengthscale))
  mats = [matrix(c, p, x1, x2) for c, p in zip(spec[1:], params)]
  out = mats[0]
  for m in mats[1:]:
    out = out + m if spec[0] == "sum" else out * m
  return out


def diag(spec: KernelSpec, params: Any, x: jax.Array) -> jax.Array:
  """``diag K(x, x)`` (shape ``(n,)``) without forming the matrix."""
  n = x.shape[0]
  if isinstance(spec, str):
    return jnp.broadcast_to(params.scale, (n,)).astype(x.dtype)
  vals = [diag(c, p, x) for c, p in zip(spec[1:], params)]
  out = vals[0]
  for v in vals[1:]:
    out = out + v if spec[0] == "sum" else out * v
  return out


def kernel_matrix(spec: KernelSpec, params: Any, x1: jax.Array, x2: jax.Array | None = None
                  ) -> jax.Array:
  """Validated dense kernel matrix ``K(x1, x2)`` (``x2`` defaults to ``x1``).

  Args:
    spec: kernel spec (see the module docstring).
    params: matching parameters (``KernelParams`` or a tuple of them).
    x1: ``(n1, d)`` inputs.
    x2: ``(n2, d)`` inputs or ``None``.

  Returns:
    ``(n1, n2)`` covariance matrix.
  """
  check_spec(spec, "spec")
  validation.check_array(x1, "x1", ndim=2, dtype_kind="f", finite=True)
  x2 = x1 if x2 is None else x2
  validation.check_array(x2, "x2", ndim=2, dtype_kind="f", finite=True)
  if x1.shape[1] != x2.shape[1]:
    raise ValueError(f"x1 and x2 must have the same number of columns, got {x1.shape} and {x2.shape}")
  check_params(spec, params, x1.shape[1])
  return matrix(spec, params, x1, x2)

"""Covariance kernels (RBF, Matérn, periodic, linear, spectral mixture) with ARD, sums, products.

Gardner et al., "GPyTorch: Blackbox Matrix-Matrix Gaussian Process Inference with GPU
Acceleration", NeurIPS 2018. BBMM only needs kernel matrix–matrix products; this module gives the
kernel entries those products are built from.

A kernel is described by a static, hashable *spec* and a pytree of *parameters*:

* a base spec is one of ``"rbf"``, ``"matern12"``, ``"matern32"``, ``"matern52"``; its parameters
  are a :class:`KernelParams` (ARD ``lengthscale`` of shape ``(d,)`` and a scalar output ``scale``);
* ``"periodic"`` (:class:`PeriodicParams`), ``"linear"`` (:class:`LinearParams`) and
  ``"spectral_mixture"`` (:class:`SpectralMixtureParams`), GPyTorch's ``PeriodicKernel``,
  ``LinearKernel`` and ``SpectralMixtureKernel`` (formulas below);
* ``("sum", spec_1, spec_2, ...)`` and ``("product", spec_1, spec_2, ...)`` combine kernels; their
  parameters are a tuple with one entry per child.

With ``r = ||(x - x') / ℓ||``:

* RBF: ``s · exp(-r² / 2)``
* Matérn 1/2: ``s · exp(-r)``
* Matérn 3/2: ``s · (1 + √3 r) exp(-√3 r)``
* Matérn 5/2: ``s · (1 + √5 r + 5 r² / 3) exp(-√5 r)``

and, for the other kernels (``τ = x − x'``):

* periodic (GPyTorch's ``PeriodicKernel`` times an output scale):
  ``s · exp(−2 Σ_d sin²(π τ_d / p_d) / ℓ_d)``. As in GPyTorch, the lengthscale ``ℓ_d`` divides
  the squared sine *unsquared* (GPyTorch: ``diff.sin().pow(2).div(lengthscale).mul(-2)``), so
  the textbook form ``exp(−2 sin²(π τ / p) / λ²)`` (MacKay 1998, Rasmussen & Williams eq. 4.31)
  is ``ℓ = λ²``. Periods ``p_d`` are per dimension (ARD) or shared.
* linear: ``Σ_d v_d x_d x'_d + c`` (GPyTorch's ``LinearKernel`` is ``v xᵀx'``: one shared
  variance ``v``, no offset; ARD variances and the optional offset ``c ≥ 0`` — the inhomogeneous
  linear kernel — extend it). Not stationary: its diagonal is ``Σ_d v_d x_d² + c``, and its rank is
  at most ``d + 1``, so its kernel matrix alone is singular (the noise makes ``K̂`` definite).
* spectral mixture (Wilson & Adams, "Gaussian Process Kernels for Pattern Discovery and
  Extrapolation", ICML 2013; GPyTorch's ``SpectralMixtureKernel``):
  ``Σ_q w_q Π_d exp(−2π² τ_d² σ_{q,d}²) cos(2π τ_d μ_{q,d})``, with weights ``w_q``, spectral
  means (frequencies) ``μ_{q,d}`` and spectral standard deviations ``σ_{q,d}`` (GPyTorch's
  ``mixture_weights``, ``mixture_means``, ``mixture_scales``; the spectral density is a mixture
  of Gaussians ``N(±μ_q, diag σ_q²)``). Every parameter is positive, as GPyTorch constrains them.

Every kernel parameter is positive, so :func:`~jaxpapers.bbmm.train.fit` can optimise all of them
through a softplus.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers._src import validation

BASE_KERNELS = ("rbf", "matern12", "matern32", "matern52")  # stationary profiles (SKI grids)
EXTRA_KERNELS = ("periodic", "linear", "spectral_mixture")
KERNEL_NAMES = BASE_KERNELS + EXTRA_KERNELS
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


class PeriodicParams(NamedTuple):
  """Parameters of the periodic kernel ``s · exp(−2 Σ_d sin²(π τ_d / p_d) / ℓ_d)``.

  Attributes:
    lengthscale: ``(d,)`` or ``(1,)`` lengthscales ``ℓ > 0`` (dividing ``sin²`` unsquared, as
      in GPyTorch).
    period: ``(d,)`` or ``(1,)`` period lengths ``p > 0``.
    scale: scalar output scale ``s > 0``.
  """

  lengthscale: jax.Array
  period: jax.Array
  scale: jax.Array


class LinearParams(NamedTuple):
  """Parameters of the linear kernel ``Σ_d v_d x_d x'_d + c``.

  Attributes:
    variance: ``(d,)`` (ARD) or ``(1,)`` (shared, GPyTorch's ``variance``) weights ``v > 0``.
    offset: scalar ``c > 0``, or ``None`` for the homogeneous kernel ``Σ_d v_d x_d x'_d``.
  """

  variance: jax.Array
  offset: jax.Array | None = None


class SpectralMixtureParams(NamedTuple):
  """Parameters of the ``Q``-component spectral mixture kernel (Wilson & Adams 2013).

  Attributes:
    weights: ``(Q,)`` mixture weights ``w_q > 0`` (``k(0) = Σ_q w_q``).
    means: ``(Q, d)`` or ``(Q, 1)`` spectral means (frequencies, cycles per unit input) ``μ > 0``.
    scales: ``(Q, d)`` or ``(Q, 1)`` spectral standard deviations ``σ > 0`` (inverse
      lengthscales: component ``q`` decays like an RBF with lengthscale ``1 / (2π σ_q)``).
  """

  weights: jax.Array
  means: jax.Array
  scales: jax.Array


PARAM_TYPES = {name: KernelParams for name in BASE_KERNELS}
PARAM_TYPES.update(periodic=PeriodicParams, linear=LinearParams,
                   spectral_mixture=SpectralMixtureParams)


def check_spec(spec: KernelSpec, name: str = "kernel") -> KernelSpec:
  """Validates a kernel spec and returns it (raises ``ValueError`` naming ``name``)."""
  if isinstance(spec, str):
    validation.check_in(spec, name, KERNEL_NAMES)
    return spec
  if isinstance(spec, tuple) and len(spec) >= 3 and spec[0] in COMBINATORS:
    for i, child in enumerate(spec[1:]):
      check_spec(child, f"{name}[{i + 1}]")
    return spec
  raise ValueError(
      f"{name} must be one of {list(KERNEL_NAMES)} or ('sum'|'product', spec, spec, ...), "
      f"got {spec!r}")


def init_params(spec: KernelSpec, dim: int, lengthscale: float = 1.0, scale: float = 1.0,
                dtype=None, *, period: float = 1.0, num_mixtures: int = 4,
                offset: float | None = None) -> Any:
  """Default parameters for ``spec`` on ``dim``-dimensional inputs.

  Products get ``scale ** (1 / #children)`` per child so the product's scale is ``scale``; sums
  get ``scale / #children`` per child. Per kernel:

  * stationary / periodic: ARD ``lengthscale`` (``(dim,)``), output ``scale``; periodic
    ``period`` (``(dim,)``);
  * linear: ARD ``variance = scale`` (``(dim,)``) and ``offset`` (``None``: no offset);
  * spectral mixture with ``Q = num_mixtures``: ``w_q = scale / Q``, ``σ_{q,d} = 1 / (2π ℓ)``
    (every component decays like an RBF of lengthscale ``ℓ``) and means
    ``μ_{q,d} = q / (Q ℓ)``, ``q = 1 … Q``, spread up to ``1 / ℓ`` cycles per unit. GPyTorch's
    ``initialize_from_data`` is data dependent; fit from here, or set the fields yourself.
  """
  check_spec(spec)
  if dim < 1:
    raise ValueError(f"dim must be >= 1, got {dim}")
  for value, name in ((lengthscale, "lengthscale"), (scale, "scale"), (period, "period")):
    validation.check_positive(value, name)
    if not np.isfinite(value):
      raise ValueError(f"{name} must be finite, got {value}")
  if offset is not None and not (np.isfinite(offset) and offset > 0):
    raise ValueError(f"offset must be None or finite and > 0, got {offset}")
  if isinstance(num_mixtures, bool) or not isinstance(num_mixtures, (int, np.integer)) \
      or num_mixtures < 1:
    raise ValueError(f"num_mixtures must be an int >= 1, got {num_mixtures!r}")
  dtype = dtype or jnp.zeros(()).dtype
  if isinstance(spec, str):
    if spec == "periodic":
      return PeriodicParams(jnp.full((dim,), lengthscale, dtype), jnp.full((dim,), period, dtype),
                            jnp.asarray(scale, dtype))
    if spec == "linear":
      return LinearParams(jnp.full((dim,), scale, dtype),
                          None if offset is None else jnp.asarray(offset, dtype))
    if spec == "spectral_mixture":
      q = int(num_mixtures)
      means = jnp.arange(1, q + 1, dtype=dtype)[:, None] / (q * lengthscale)
      return SpectralMixtureParams(jnp.full((q,), scale / q, dtype),
                                   jnp.broadcast_to(means, (q, dim)),
                                   jnp.full((q, dim), 1.0 / (2 * np.pi * lengthscale), dtype))
    return KernelParams(jnp.full((dim,), lengthscale, dtype), jnp.asarray(scale, dtype))
  k = len(spec) - 1
  child_scale = scale ** (1.0 / k) if spec[0] == "product" else scale / k
  return tuple(init_params(c, dim, lengthscale, child_scale, dtype, period=period,
                           num_mixtures=num_mixtures, offset=offset) for c in spec[1:])


def check_params(spec: KernelSpec, params: Any, dim: int | None = None, name: str = "params"):
  """Checks structure, shapes and (for concrete values) positivity of kernel parameters."""
  if isinstance(spec, str):
    cls = PARAM_TYPES[spec]
    if not isinstance(params, cls):
      raise TypeError(f"{name} must be a {cls.__name__} for kernel {spec!r}, "
                      f"got {type(params).__name__}")
    fields = _FIELD_RANKS[spec]
    for field, rank in fields.items():
      value = getattr(params, field)
      if value is None and field == "offset":
        continue
      validation.check_array(value, f"{name}.{field}", ndim=rank, dtype_kind="f")
      if rank >= 1 and field != "weights" and dim is not None and value.shape[-1] not in (1, dim):
        want = f"({dim},) or (1,)" if rank == 1 else f"(Q, {dim}) or (Q, 1)"
        raise ValueError(f"{name}.{field} must have shape {want} to match the inputs, "
                         f"got {value.shape}")
      if validation.is_concrete(value):
        arr = np.asarray(value)
        if not np.all(np.isfinite(arr) & (arr > 0)):
          raise ValueError(f"{name}.{field} must be finite and > 0, got {arr}")
    if spec == "spectral_mixture":
      q = params.weights.shape[0]
      if q == 0 or params.means.shape[0] != q or params.scales.shape[0] != q:
        raise ValueError(f"{name}: weights, means and scales must have the same number Q >= 1 of "
                         f"components, got shapes {params.weights.shape}, {params.means.shape}, "
                         f"{params.scales.shape}")
    return
  if not isinstance(params, tuple) or len(params) != len(spec) - 1:
    raise TypeError(f"{name} must be a tuple of {len(spec) - 1} child parameters for {spec[0]!r}")
  for i, (c, p) in enumerate(zip(spec[1:], params)):
    check_params(c, p, dim, f"{name}[{i}]")


_FIELD_RANKS = {name: {"lengthscale": 1, "scale": 0} for name in BASE_KERNELS}
_FIELD_RANKS.update(periodic={"lengthscale": 1, "period": 1, "scale": 0},
                    linear={"variance": 1, "offset": 0},
                    spectral_mixture={"weights": 1, "means": 2, "scales": 2})


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


def periodic_matrix(params: PeriodicParams, x1, x2):
  """``s · exp(−2 Σ_d sin²(π τ_d / p_d) / ℓ_d)`` by matrix products (no ``(n1, n2, d)`` array).

  ``sin²(π(a − b)/p) = (1 − cos A cos B − sin A sin B) / 2`` with ``A = 2πa/p``, ``B = 2πb/p``,
  so ``Σ_d sin²(·)/ℓ_d = ½ Σ_d 1/ℓ_d − ½ [(cos A / ℓ) cos Bᵀ + (sin A / ℓ) sin Bᵀ]`` (clipped at
  0; the cancellation costs ``O(ε)`` absolute accuracy, as for :func:`scaled_sqdist`).
  """
  d = x1.shape[1]
  inv_ls = jnp.broadcast_to(1.0 / params.lengthscale, (d,))
  a = (2 * np.pi) * x1 / params.period
  b = (2 * np.pi) * x2 / params.period
  cross = (jnp.cos(a) * inv_ls) @ jnp.cos(b).T + (jnp.sin(a) * inv_ls) @ jnp.sin(b).T
  s = jnp.maximum(0.5 * jnp.sum(inv_ls) - 0.5 * cross, 0.0)
  return params.scale * jnp.exp(-2.0 * s)


def linear_matrix(params: LinearParams, x1, x2):
  """``Σ_d v_d x1_d x2_d + c``."""
  out = (x1 * params.variance) @ x2.T
  return out if params.offset is None else out + params.offset


def spectral_mixture_matrix(params: SpectralMixtureParams, x1, x2):
  """``Σ_q w_q exp(−2π² ||σ_q ∘ τ||²) Π_d cos(2π μ_{q,d} τ_d)``, per component by products.

  ``cos(2πμ(a − b)) = cos A cos B + sin A sin B`` (``A = 2πμa``) gives each dimension's cosine
  as an ``(n1, n2)`` matrix product, so memory is ``O(Q n1 n2)`` and nothing is ``(n1, n2, d)``.
  """
  d = x1.shape[1]

  def component(w, mu, sig):
    r2 = scaled_sqdist(x1, x2, 1.0 / jnp.broadcast_to(sig, (d,)))
    out = w * jnp.exp(-2.0 * np.pi ** 2 * r2)
    mu = jnp.broadcast_to(mu, (d,))
    for k in range(d):
      a = 2 * np.pi * mu[k] * x1[:, k]
      b = 2 * np.pi * mu[k] * x2[:, k]
      out = out * (jnp.cos(a)[:, None] * jnp.cos(b)[None, :]
                   + jnp.sin(a)[:, None] * jnp.sin(b)[None, :])
    return out

  return jnp.sum(jax.vmap(component)(params.weights, params.means, params.scales), 0)


def matrix(spec: KernelSpec, params: Any, x1: jax.Array, x2: jax.Array) -> jax.Array:
  """The kernel matrix ``K(x1, x2)`` of shape ``(n1, n2)`` (no validation; use inside jit)."""
  if spec == "periodic":
    return periodic_matrix(params, x1, x2)
  if spec == "linear":
    return linear_matrix(params, x1, x2)
  if spec == "spectral_mixture":
    return spectral_mixture_matrix(params, x1, x2)
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
  if spec == "linear":
    out = jnp.sum(x * x * params.variance, -1)
    return out if params.offset is None else out + params.offset
  if spec == "spectral_mixture":
    return jnp.broadcast_to(jnp.sum(params.weights), (n,)).astype(x.dtype)
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
    params: matching parameters (``KernelParams`` etc., or a tuple of them).
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

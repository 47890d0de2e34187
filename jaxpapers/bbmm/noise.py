"""Per-point Gaussian noise: fixed (known) and heteroscedastic (learned) noise variances.

GPyTorch's ``FixedNoiseGaussianLikelihood`` (known per-observation noise variances, e.g. from
repeated measurements) and a heteroscedastic likelihood with one noise variance per training
point both replace ``σ² I`` by a diagonal ``D = diag(d_1 … d_n)``:

    K̂ = K(X, X) + D,    log p(y) = −½ rᵀ K̂⁻¹ r − ½ log|K̂| − (n/2) log 2π.

:class:`DiagonalNoiseOperator` wraps an :class:`~jaxpapers.bbmm.operators.ExactOperator`; the
per-point variances are ``params.noise`` of shape ``(n,)``. Everything else (``bbmm_mll``,
``cholesky_mll``, ``mll``, ``prediction_cache``, ``predictive_mean``, ``love_variance``,
``exact_variance``, ``cholesky_predict``, ``fit``, ``make_fit``) takes it unchanged.

Preconditioning. BBMM's preconditioner is ``P̂ = L Lᵀ + σ_p² I`` with a scalar ``σ_p²``. Here
``σ_p² = min_i d_i`` and the pivoted Cholesky factors ``K + (D − σ_p² I)`` (positive
semidefinite), whose diagonal and rows this operator reports as its "kernel" part. So
``P̂ → K̂`` as the rank grows (a full-rank factor gives ``P̂ = K̂`` exactly), and the SLQ and
variance-reduced estimators see the same ``P̂`` as for homoscedastic noise.

Fixed noise (``learn_noise=False``) stops the gradient of ``params.noise``: the variances are
data, so their gradient is 0 and :func:`~jaxpapers.bbmm.train.fit`'s Adam leaves them unchanged
(pick ``noise_floor`` below the smallest known variance, e.g. 0: ``fit`` optimises
``noise − noise_floor`` through a softplus and raises a ``ValueError`` otherwise). GPyTorch's ``learn_additional_noise`` (a learned
scalar on top of the fixed vector) is not provided. Predictions are of the latent ``f(x*)``;
noise at test points is the caller's to add.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers.bbmm import kernels
from jaxpapers.bbmm import operators as ops


class DiagonalNoiseState(NamedTuple):
  """State of :class:`DiagonalNoiseOperator`.

  Attributes:
    base: the wrapped operator's state, prepared with zero noise.
    noise: scalar ``σ_p² = min_i d_i`` (the preconditioner's noise).
    excess: ``(n,)`` ``d_i − σ_p² ≥ 0``, factored with ``K`` by the preconditioner.
    x: ``(n, d)`` training inputs.
  """

  base: Any
  noise: jax.Array
  excess: jax.Array
  x: jax.Array


@dataclasses.dataclass(frozen=True)
class DiagonalNoiseOperator:
  """``K̂ = K(X, X) + diag(d)`` with per-point noise variances ``d = params.noise`` (shape ``(n,)``).

  Attributes:
    base: an :class:`~jaxpapers.bbmm.operators.ExactOperator` giving ``K`` (its blocked,
      sharded or materialised products are reused).
    learn_noise: ``True``: heteroscedastic noise, ``d`` is a hyperparameter (gradients flow);
      ``False``: fixed, known noise (GPyTorch's ``FixedNoiseGaussianLikelihood``), ``d`` gets a
      zero gradient.
  """

  base: ops.ExactOperator = ops.ExactOperator()
  learn_noise: bool = True

  def __post_init__(self):
    if not isinstance(self.base, ops.ExactOperator):
      raise TypeError(f"base must be an ExactOperator, got {type(self.base).__name__}")
    if not isinstance(self.learn_noise, (bool, np.bool_)):
      raise TypeError(f"learn_noise must be a bool, got {self.learn_noise!r}")

  @property
  def kernel(self):
    return self.base.kernel

  def check_inputs(self, params: ops.GPParams, x, y=None) -> None:
    """Data and kernel checks, with ``params.noise`` an ``(n,)`` vector of finite variances > 0."""
    ops.check_gp_inputs(params, x, y, per_point_noise=True)
    kernels.check_params(self.kernel, params.kernel, x.shape[1], "params.kernel")

  def prepare(self, params: ops.GPParams, x: jax.Array) -> DiagonalNoiseState:
    d = params.noise if self.learn_noise else jax.lax.stop_gradient(params.noise)
    base = self.base.prepare(params._replace(noise=jnp.zeros((), d.dtype)), x)
    floor = jnp.min(d)
    return DiagonalNoiseState(base, floor, d - floor, x)

  def _d(self, state):
    return state.noise + state.excess

  def matmul(self, state: DiagonalNoiseState, v: jax.Array) -> jax.Array:
    return self.base.matmul(state.base, v) + self._d(state)[:, None] * v

  def kernel_diag(self, state: DiagonalNoiseState) -> jax.Array:
    return self.base.kernel_diag(state.base) + state.excess

  def kernel_row(self, state: DiagonalNoiseState, i) -> jax.Array:
    row = self.base.kernel_row(state.base, i)
    return row.at[i].add(state.excess[i])

  def kernel_block(self, state: DiagonalNoiseState, idx: jax.Array) -> jax.Array:
    """``K[idx, idx] + diag(excess[idx])``: the rows :meth:`kernel_row` gives, at ``idx`` only."""
    block = getattr(self.base, "kernel_block", None)
    if block is None:
      base = jax.vmap(lambda i: self.base.kernel_row(state.base, i))(idx)[:, idx]
    else:
      base = block(state.base, idx)
    return base + jnp.diag(state.excess[idx])

  def cross_matmul(self, state: DiagonalNoiseState, x_star, v):
    return self.base.cross_matmul(state.base, x_star, v)

  def cross_matrix(self, state: DiagonalNoiseState, x_star):
    return self.base.cross_matrix(state.base, x_star)

  def prior_diag(self, state: DiagonalNoiseState, x_star):
    return self.base.prior_diag(state.base, x_star)

  def trace_term(self, state: DiagonalNoiseState) -> jax.Array:
    return self.base.trace_term(state.base)

  def dense(self, state: DiagonalNoiseState) -> jax.Array:
    """The dense ``K + diag(d)`` (tests and the Cholesky baseline only)."""
    return self.base.dense(state.base) + jnp.diag(self._d(state))


def fixed_noise_operator(kernel: kernels.KernelSpec = "rbf", **base_kwargs) -> DiagonalNoiseOperator:
  """GPyTorch's ``FixedNoiseGaussianLikelihood``: known per-point noise variances (no gradient).

  ``base_kwargs`` go to :class:`~jaxpapers.bbmm.operators.ExactOperator`.
  """
  return DiagonalNoiseOperator(ops.ExactOperator(kernel, **base_kwargs), learn_noise=False)


def heteroscedastic_operator(kernel: kernels.KernelSpec = "rbf", **base_kwargs
                             ) -> DiagonalNoiseOperator:
  """Heteroscedastic noise: one learned noise variance per training point."""
  return DiagonalNoiseOperator(ops.ExactOperator(kernel, **base_kwargs), learn_noise=True)

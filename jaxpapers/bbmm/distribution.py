"""A NumPyro distribution whose ``log_prob`` is the BBMM GP marginal likelihood.

Gardner et al., "GPyTorch: Blackbox Matrix-Matrix Gaussian Process Inference with GPU
Acceleration", NeurIPS 2018. GPyTorch users sample GP hyperparameters with Pyro's NUTS on the
model's marginal likelihood; :class:`BBMMMultivariateNormal` lets NumPyro do the same here. For
``y ~ N(μ, K̂)`` with ``K̂ = K(X, X; θ) + σ² I`` given by a matrix-free operator,

    log p(y) = −½ (y − μ)ᵀ K̂⁻¹ (y − μ) − ½ log|K̂| − (n/2) log 2π

is computed by mBCG + stochastic Lanczos quadrature (``method="bbmm"``, gradients by the
trace-estimator VJP of :mod:`jaxpapers.bbmm.likelihood`) or by dense Cholesky
(``method="cholesky"``). Samples use a dense Cholesky factor of ``K̂``.
"""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from numpyro.distributions import constraints

from jaxpapers._src import validation
from jaxpapers.bbmm import kernels
from jaxpapers.bbmm import likelihood as mll_lib
from jaxpapers.bbmm import operators as ops


class BBMMMultivariateNormal(dist.Distribution):
  """``N(loc, K̂(θ, X))`` with the BBMM marginal likelihood as ``log_prob``.

  The probes of the stochastic estimator are drawn from the fixed ``probe_key``, so ``log_prob``
  is a deterministic, differentiable function of ``(value, loc, params, x)`` (common random
  numbers), as Hamiltonian Monte Carlo needs; its gradient w.r.t. the hyperparameters, ``x`` and
  ``loc`` is the BBMM estimator, exact as ``settings.num_probes`` grows (and exact up to CG
  tolerance in ``K̂⁻¹ r`` and the log-determinant when ``settings.precond_rank ≥ n``).
  ``params.mean`` is ignored: the mean is ``loc``.

  Attributes:
    loc: scalar or ``(n,)`` mean.
    params: :class:`~jaxpapers.bbmm.operators.GPParams` (kernel parameters, noise σ² > 0).
    x: ``(n, d)`` inputs.
    operator: exact / SGPR / SKI operator (static).
    settings: :class:`~jaxpapers.bbmm.likelihood.Settings` (static).
    method: ``"bbmm"``, ``"cholesky"`` or ``"auto"`` (static; as in
      :func:`~jaxpapers.bbmm.likelihood.mll`).
    probe_key: PRNG key of the probe vectors.
  """

  arg_constraints = {"loc": constraints.real}
  support = constraints.real_vector
  reparametrized_params = ["loc"]
  pytree_data_fields = ("loc", "params", "x", "probe_key")
  pytree_aux_fields = ("operator", "settings", "method")

  def __init__(self, loc, params: ops.GPParams, x: jax.Array,
               operator: Any = ops.ExactOperator("rbf"),
               settings: mll_lib.Settings = mll_lib.Settings(), *, method: str = "bbmm",
               probe_key: jax.Array | int = 0, validate_args: bool | None = None):
    """Builds the distribution.

    Args:
      loc: scalar or ``(n,)`` mean vector.
      params: GP hyperparameters (``params.mean`` is not used).
      x: ``(n, d)`` inputs (may be the output of a feature network: deep kernel learning).
      operator: an operator from :mod:`jaxpapers.bbmm.operators`.
      settings: BBMM settings.
      method: ``"bbmm"``, ``"cholesky"`` or ``"auto"``.
      probe_key: key (or integer seed) of the probes (fixed across ``log_prob`` calls).
      validate_args: NumPyro's argument validation.

    Raises:
      ValueError / TypeError: naming the offending argument.
    """
    ops.check_gp_inputs(params, x)
    if isinstance(operator.kernel, (str, tuple)):
      kernels.check_params(operator.kernel, params.kernel, x.shape[1], "params.kernel")
    mll_lib.check_settings(settings)
    validation.check_in(method, "method", ("auto", "bbmm", "cholesky"))
    n = x.shape[0]
    loc = jnp.asarray(loc, x.dtype) if not hasattr(loc, "dtype") else loc
    validation.check_array(loc, "loc", ndim=(0, 1), dtype_kind="f", finite=True)
    if loc.ndim == 1 and loc.shape[0] != n:
      raise ValueError(f"loc must be a scalar or have shape ({n},) to match x, got {loc.shape}")
    if isinstance(probe_key, int):
      probe_key = jax.random.key(probe_key)
    self.loc = loc
    self.params = params
    self.x = x
    self.operator = operator
    self.settings = settings
    self.method = method
    self.probe_key = probe_key
    super().__init__(batch_shape=(), event_shape=(n,), validate_args=validate_args)

  def _state(self):
    return self.operator.prepare(self.params, self.x)

  def log_prob(self, value: jax.Array) -> jax.Array:
    """BBMM (or Cholesky) ``log p(value)``; ``value`` is ``(..., n)``, the result ``(...)``."""
    n = self.event_shape[0]
    validation.check_array(value, "value", dtype_kind="f", finite=True)
    if value.ndim < 1 or value.shape[-1] != n:
      raise ValueError(f"value must have shape (..., {n}), got {value.shape}")
    if self._validate_args:
      self._validate_sample(value)
    batch = value.shape[:-1]
    flat = value.reshape(-1, n)

    def one(v):
      r = v - self.loc
      out, _ = mll_lib.mll(self.probe_key, self.operator, self.params, self.x, r,
                           self.settings, method=self.method, zero_mean=True)
      return out

    out = one(flat[0]) if not batch else jax.vmap(one)(flat)
    return out.reshape(batch)

  def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> jax.Array:
    """Exact samples ``loc + L ε`` with ``L Lᵀ = K̂`` (dense Cholesky; ``O(n³)``)."""
    n = self.event_shape[0]
    chol = jnp.linalg.cholesky(self.covariance_matrix)
    eps = jax.random.normal(key, tuple(sample_shape) + (n,), chol.dtype)
    out = self.mean + eps @ chol.T
    chex.assert_shape(out, tuple(sample_shape) + (n,))
    return out

  @property
  def mean(self) -> jax.Array:
    return jnp.broadcast_to(self.loc, self.event_shape)

  @property
  def covariance_matrix(self) -> jax.Array:
    """The dense ``K̂`` (``n × n``)."""
    return self.operator.dense(self._state())

  @property
  def variance(self) -> jax.Array:
    state = self._state()
    return self.operator.kernel_diag(state) + self.params.noise

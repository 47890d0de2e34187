"""The plain ℓ2 matrix-factorization baseline (alternating least squares) on COO observations.

Minimises ½ Σ_Ω (X_ij − u_iᵀ v_j)² + λ/2 (‖U‖² + ‖V‖²), the "MF" baseline of Yao & Kwok
(NeurIPS 2018). Each half-step solves the m (or n) ridge problems
(Σ_{j∈Ω_i} v_j v_jᵀ + λ I) u_i = Σ_{j∈Ω_i} X_ij v_j exactly, with the r × r Gram matrices
accumulated by ``segment_sum``: O(|Ω| r² + (m + n) r³) per sweep, no m × n array.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxpapers.robust_mf import observations as obs_lib
from jaxpapers.robust_mf import rmfnl


class ALSResult(NamedTuple):
  """Output of :func:`fit_l2`.

  Attributes:
    u: (m, r) factor.
    v: (n, r) factor.
    objectives: (num_sweeps + 1,) the ℓ2 objective before and after each sweep.
  """

  u: jax.Array
  v: jax.Array
  objectives: jax.Array


def l2_objective(obs, u, v, lam):
  """½ Σ_Ω (X − U Vᵀ)² + λ/2 (‖U‖² + ‖V‖²)."""
  err = obs_lib.on_omega(obs, obs.values - obs_lib.sample(obs, u, v))
  return 0.5 * jnp.sum(err**2) + 0.5 * lam * (jnp.sum(u**2) + jnp.sum(v**2))


def _solve_side(seg_ids, other_ids, values, other, num, lam):
  """Ridge solves for every row: (Σ v vᵀ + λI) u = Σ x v, grouped by ``seg_ids``."""
  vo = other[other_ids]
  gram = jax.ops.segment_sum(vo[:, :, None] * vo[:, None, :], seg_ids, num_segments=num)
  rhs = jax.ops.segment_sum(values[:, None] * vo, seg_ids, num_segments=num)
  r = other.shape[1]
  gram = gram + lam * jnp.eye(r, dtype=other.dtype)
  return jnp.linalg.solve(gram, rhs[..., None])[..., 0]


@functools.partial(jax.jit, static_argnames=("rank", "num_sweeps"))
def _fit_l2(key, obs, lam, init_scale, *, rank, num_sweeps):
  m, n = obs.shape
  dtype = obs.values.dtype
  ku, kv = jax.random.split(key)
  u = init_scale * jax.random.normal(ku, (m, rank), dtype)
  v = init_scale * jax.random.normal(kv, (n, rank), dtype)

  def sweep(carry, _):
    u, v = carry
    u = _solve_side(obs.rows, obs.cols, obs.values, v, m, lam)
    v = _solve_side(obs.cols, obs.rows, obs.values, u, n, lam)
    return (u, v), l2_objective(obs, u, v, lam)

  obj0 = l2_objective(obs, u, v, lam)
  (u, v), objs = jax.lax.scan(sweep, (u, v), None, length=num_sweeps)
  return ALSResult(u, v, jnp.concatenate([obj0[None], objs]))


def fit_l2(key, observations, rank: int, *, lam=None, num_sweeps: int = 30,
           init_scale=1.0) -> ALSResult:
  """ℓ2 matrix factorization by alternating least squares (the MF baseline).

  Args:
    key: ``jax.random.key`` for the N(0, init_scale²) initialisation.
    observations: :class:`~.observations.SparseObservations`.
    rank: factor rank, 1 ≤ r ≤ min(m, n).
    lam: ridge λ; default 20 / (m + n) (as for the robust losses).
    num_sweeps: ALS sweeps (each updates U then V).
    init_scale: standard deviation of the random initialisation.

  Raises:
    TypeError / ValueError: as :func:`~.rmfnl.fit`, and for ``num_sweeps`` < 1.
  """
  if not isinstance(observations, obs_lib.SparseObservations):
    raise TypeError("observations must be SparseObservations, got "
                    f"{type(observations).__name__}")
  rank = rmfnl._check_common(observations, rank, "l1", 1, 1, 1)
  key = rmfnl._check_key(key)
  if not isinstance(num_sweeps, int) or num_sweeps < 1:
    raise ValueError(f"num_sweeps must be a positive int, got {num_sweeps!r}")
  lam = rmfnl.default_lambda(observations.shape) if lam is None else lam
  rmfnl._check_scalar(lam, "lam")
  dtype = observations.values.dtype
  return _fit_l2(key, observations, jnp.asarray(lam, dtype), jnp.asarray(init_scale, dtype),
                 rank=rank, num_sweeps=num_sweeps)

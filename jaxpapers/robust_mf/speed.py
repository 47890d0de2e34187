"""Time to the same objective: RMF-MM as its authors run it (relaxed MM + LADMPSAP, dense) vs
RMFNL-ℓ1 (sparse dual APG), on synthetic data.

Both minimise H = ‖W ⊙ (X − U Vᵀ)‖₁ + λ/2 (‖U‖² + ‖V‖²), λ = 20 / (m + n), from the same spectral
start. Each solver first runs to its own stopping rule (RMF-MM: :func:`.ladmpsap.rmf_mm_ladmpsap`
with the authors' defaults; RMFNL: :func:`.rmfnl.fit` defaults). The common target is the worse
of the two final objectives × (1 + ``target_rtol``); the time to reach it is then measured by a
second run of each solver that stops there (RMF-MM: ``target_objective=``; RMFNL: ``max_outer`` =
the first MM step whose H is below the target — both runs are deterministic, so they retrace the
first). Compilation is excluded (a warm-up call with the same static arguments precedes every
timed call).

Data (:func:`.data.synthetic`): rank-r N(0, 1) factors, N(0, 0.1²) noise on Ω, a share
``outlier_ratio`` of Ω corrupted by U[−10, 10] kicks; the density default of ``data.synthetic``.
"""

from __future__ import annotations

import math
import time

import jax
import numpy as np

from jaxpapers._src.prng import as_key
from jaxpapers.robust_mf import data, ladmpsap, rmfnl
from jaxpapers.robust_mf import observations as obs_lib


def _timed(fn):
  start = time.perf_counter()
  out = jax.block_until_ready(fn())
  return out, time.perf_counter() - start


def compare_with_rmf_mm(key, m: int, rank: int = 5, *, density=None, outlier_ratio: float = 0.1,
                        target_rtol: float = 1e-3) -> dict:
  """RMF-MM (LADMPSAP) vs RMFNL-ℓ1 on one synthetic m × m problem: both solvers to their own
  stopping rules, then each timed to the common target objective (the worse final H ×
  (1 + ``target_rtol``)); compilation excluded. Returns a flat record (objectives, seconds,
  iteration counts, test RMSE against the clean matrix).

  Raises:
    ValueError: if ``m`` or ``rank`` is not a positive int or ``target_rtol`` is negative.
  """
  if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 2:
    raise ValueError(f"m must be an int >= 2, got {m!r}")
  if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or not 1 <= rank < m:
    raise ValueError(f"rank must be an int in [1, m), got {rank!r}")
  if not float(target_rtol) >= 0.0:
    raise ValueError(f"target_rtol must be >= 0, got {target_rtol!r}")
  k_data, key = jax.random.split(as_key(key))
  p = data.synthetic(k_data, m, m, rank, density=density, outlier_ratio=outlier_ratio)
  # RMF-MM: warm-up with the same static arguments (stops after its first kept step), then timed.
  ladmpsap.rmf_mm_ladmpsap(key, p.train, rank, target_objective=math.inf)
  mm, t_mm = _timed(lambda: ladmpsap.rmf_mm_ladmpsap(key, p.train, rank))
  fit = lambda max_outer=100: rmfnl.fit(key, p.train, rank, "l1", max_outer=max_outer)
  jax.block_until_ready(fit())
  nl, t_nl = _timed(fit)
  h_mm = float(mm.objectives[int(mm.num_outer)])
  h_nl = float(nl.objectives[int(nl.num_steps)])
  target = max(h_mm, h_nl) * (1.0 + target_rtol)
  mm_t, tt_mm = _timed(lambda: ladmpsap.rmf_mm_ladmpsap(key, p.train, rank,
                                                        target_objective=target))
  objs = np.asarray(nl.objectives[: int(nl.num_steps) + 1])
  k = int(np.argmax(objs <= target))  # first MM step at or below the target
  if k == 0:
    tt_nl, nl_k = 0.0, 0
  else:
    jax.block_until_ready(fit(k))
    nl_t, tt_nl = _timed(lambda: fit(k))
    nl_k = int(nl_t.num_steps)
    assert float(nl_t.objectives[nl_k]) <= target
  rec = dict(
      m=m, n=m, rank=rank, nnz=int(p.train.nnz), density=p.train.nnz / (m * m),
      outlier_ratio=outlier_ratio, lam=rmfnl.default_lambda((m, m)),
      h_start=float(mm.objectives[0]), h_rmf_mm=h_mm, h_rmfnl=h_nl, target=target,
      target_rtol=target_rtol,
      seconds_rmf_mm=t_mm, seconds_rmfnl=t_nl,
      seconds_to_target_rmf_mm=tt_mm, seconds_to_target_rmfnl=tt_nl,
      speedup_to_target=tt_mm / tt_nl if tt_nl > 0 else math.inf,
      rmf_mm_outer=int(mm.num_outer), rmf_mm_accepted=int(mm.num_accepted),
      rmf_mm_inner=int(mm.total_inner), rmf_mm_converged=bool(mm.converged),
      rmf_mm_outer_to_target=int(mm_t.num_outer), rmf_mm_inner_to_target=int(mm_t.total_inner),
      rmfnl_steps=int(nl.num_steps), rmfnl_apg=int(nl.apg_iterations.sum()),
      rmfnl_converged=bool(nl.converged), rmfnl_steps_to_target=nl_k,
      test_rmse_rmf_mm=float(obs_lib.rmse(p.test, mm.u, mm.v)),
      test_rmse_rmfnl=float(obs_lib.rmse(p.test, nl.u, nl.v)),
  )
  return rec

"""``train_and_evaluate``: fit ℓ2, RMF-MM and RMFNL (ℓ1 and nonconvex) and report test errors.

Reproduces the experiment layout of Yao & Kwok (NeurIPS 2018): a synthetic low-rank
matrix with outliers (test RMSE on unobserved entries, CPU time) or MovieLens-100K with a share
of the training ratings corrupted (test RMSE/MAE). Nonconvex losses start from the ℓ1 solution.
"""

from __future__ import annotations

import os
import time

import jax
import ml_collections
import numpy as np

from jaxpapers._src import metrics as metrics_lib
from jaxpapers._src.prng import as_key
from jaxpapers._src.validation import check_in
from jaxpapers.robust_mf import baselines, data, rmfnl
from jaxpapers.robust_mf import observations as obs_lib


def make_problem(config: ml_collections.ConfigDict, key) -> tuple[obs_lib.SparseObservations,
                                                                   obs_lib.SparseObservations]:
  """The (train, test) observations described by ``config``."""
  check_in(config.dataset, "config.dataset", ("synthetic", "movielens-100k"))
  if config.dataset == "synthetic":
    p = data.synthetic(key, config.m, config.n, config.rank, density=config.density,
                       noise_std=config.noise_std, outlier_ratio=config.outlier_ratio,
                       outlier_magnitude=config.outlier_magnitude, num_test=config.num_test)
    return p.train, p.test
  split = data.load_movielens_100k(config.data_dir)
  train = split.train
  if config.movielens_outlier_ratio > 0:
    train, _ = data.inject_outliers(key, train, config.movielens_outlier_ratio, 1.0, 5.0)
  return train, split.test


def _timed(fn):
  start = time.perf_counter()
  out = jax.block_until_ready(fn())
  return out, time.perf_counter() - start


def evaluate(test, u, v) -> dict:
  """Test RMSE and MAE of U Vᵀ on the held-out observations."""
  return {"test_rmse": float(obs_lib.rmse(test, u, v)), "test_mae": float(obs_lib.mae(test, u, v))}


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Runs every method of ``config`` and returns ``{method: {metric: value}}``.

  Methods: ``l2`` (ALS), ``rmf_mm`` (dense ℓ1 RMF-MM, when ``config.run_rmf_mm``) and
  ``rmfnl_<loss>`` for each loss in ``config.losses`` (the ℓ1 stage uses ρ₀ =
  ``config.l1_rho0``; nonconvex losses start from its solution with the exact majorizer).
  Per-MM-step objectives go to ``<workdir>/metrics.jsonl``; seconds include JIT compilation
  (one compile serves all RMFNL losses of a given problem size) and, for nonconvex losses,
  exclude the ℓ1 warm start.
  """
  os.makedirs(workdir, exist_ok=True)
  key = as_key(int(config.seed))
  k_data, k_init = jax.random.split(key)
  train, test = make_problem(config, k_data)
  lam = config.lam if config.lam is not None else rmfnl.default_lambda(train.shape)
  results: dict[str, dict] = {}
  solver = dict(max_outer=config.max_outer, outer_tol=config.outer_tol,
                max_inner=config.max_inner, inner_tol=config.inner_tol,
                check_every=config.check_every)
  with metrics_lib.MetricsWriter(os.path.join(workdir, "metrics.jsonl"), log=False) as writer:

    def record(name, res, seconds, objectives=None):
      results[name] = {**evaluate(test, res.u, res.v), "seconds": seconds}
      if objectives is not None:
        steps = int(res.num_steps) if hasattr(res, "num_steps") else len(objectives) - 1
        objectives = np.asarray(objectives)[: steps + 1]
        for t, h in enumerate(objectives):
          writer.write(t, method=name, objective=float(h))
        results[name].update(objective=float(objectives[-1]), steps=steps)
      writer.write(0, method=name, summary=True, **results[name])

    res, sec = _timed(lambda: baselines.fit_l2(k_init, train, config.rank, lam=config.l2_lam,
                                               num_sweeps=config.l2_sweeps))
    record("l2", res, sec, res.objectives)
    if config.run_rmf_mm:
      res, sec = _timed(lambda: rmfnl.rmf_mm(k_init, train, config.rank, lam=lam,
                                             init_scale=config.init_scale,
                                             max_outer=config.max_outer,
                                             max_inner=config.max_inner))
      record("rmf_mm", res, sec, res.objectives)
    l1 = None
    for loss in ("l1",) + tuple(x for x in config.losses if x != "l1"):
      init = None if loss == "l1" else (l1.u, l1.v)
      rho0 = config.l1_rho0 if loss == "l1" else 1.0
      res, sec = _timed(lambda: rmfnl.fit(k_init, train, config.rank, loss,
                                          theta=config.theta[loss], lam=lam, init=init,
                                          init_scale=config.init_scale, rho0=rho0, **solver))
      if loss == "l1":
        l1 = res
      if loss in config.losses:
        record(f"rmfnl_{loss}", res, sec, res.objectives)
  results["problem"] = {"m": train.shape[0], "n": train.shape[1], "nnz": train.nnz,
                        "lam": float(lam)}
  return results

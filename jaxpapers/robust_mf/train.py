"""``train_and_evaluate``: fit ℓ2, RMF-MM and RMFNL (ℓ1 and nonconvex) and report test errors.

Reproduces the experiment layout of Yao & Kwok (NeurIPS 2018): a synthetic low-rank
matrix with outliers (test RMSE on unobserved entries, CPU time) or MovieLens-100K with a share
of the training ratings corrupted (test RMSE/MAE). Nonconvex losses start from the ℓ1 solution
when ``warm_start_from_l1`` (the config default; a choice of ours, see :mod:`.config`).

:func:`ratings_protocol_fold` / :func:`protocol_verdict` are the MovieLens-100K 5-fold comparison
(ℓ2 vs ℓ1 vs nonconvex, test RMSE and MAE, λ per method on validation, paired per-fold verdict).
"""

from __future__ import annotations

import os
import time

import jax
import ml_collections
import numpy as np

from jaxpapers._src import metrics as metrics_lib
from jaxpapers._src import stats as stats_lib
from jaxpapers._src import workdir as workdir_lib
from jaxpapers._src.prng import as_key
from jaxpapers._src.validation import check_in
from jaxpapers.robust_mf import baselines, data, ladmpsap, rmfnl
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
    train, _ = data.inject_outliers(key, train, config.movielens_outlier_ratio, 1.0, 5.0,
                                    config.movielens_corruption)
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

  Methods: ``l2`` (ALS), ``rmf_mm`` (RMF-MM with LADMPSAP, dense, when ``config.run_rmf_mm``) and
  ``rmfnl_<loss>`` for each loss in ``config.losses`` (the ℓ1 stage uses ρ₀ =
  ``config.l1_rho0``; nonconvex losses start from its solution with the exact majorizer).
  With ``config.warm_start_from_l1`` False every nonconvex loss starts like the ℓ1 stage
  (``config.init``, ρ₀ = ``config.l1_rho0``) instead. Per-MM-step objectives go to
  ``<workdir>/metrics.jsonl``; seconds include JIT compilation (one compile serves all RMFNL
  losses of a given problem size) and, for nonconvex losses, exclude the ℓ1 warm start.
  """
  workdir_lib.prepare(workdir)  # a clear error naming the path before any work
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
      # RMF-MM as its authors run it (LADMPSAP, their defaults), from the same start
      res, sec = _timed(lambda: ladmpsap.rmf_mm_ladmpsap(k_init, train, config.rank, lam=lam,
                                                         init=config.init,
                                                         init_scale=config.init_scale))
      record("rmf_mm", res, sec, np.asarray(res.objectives)[: int(res.num_outer) + 1])
    l1 = None
    warm = bool(config.get("warm_start_from_l1", True))
    for loss in ("l1",) + tuple(x for x in config.losses if x != "l1"):
      from_l1 = loss != "l1" and warm
      init = (l1.u, l1.v) if from_l1 else config.init
      rho0 = 1.0 if from_l1 else config.l1_rho0
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


def corrupted_ratings_experiment(key, train, test, *, corruption: str = "opposite",
                                 ratio: float = 0.1, low: float = 1.0, high: float = 5.0,
                                 rank: int = 5, lams=(1.0, 3.0, 10.0), val_fraction=0.1,
                                 theta=1.0, max_outer: int = 60, lsp_outer: int = 20,
                                 max_inner: int = 300, l2_sweeps: int = 20) -> dict:
  """ℓ2 (ALS), ℓ1 and LSP (RMFNL) on ratings with a share of the training ratings corrupted.

  Protocol: corrupt ``ratio`` of the training ratings (:func:`~.data.inject_outliers` with
  ``corruption``), centre every rating by the mean of the corrupted training ratings (the
  prediction is offset + u_iᵀ v_j), hold out ``val_fraction`` of the corrupted training ratings
  as a validation set, fit each method on the rest for every λ in ``lams`` and keep, per method,
  the λ with the lowest validation MAE; its test MAE is reported (no refit). LSP starts from the
  ℓ1 solution at the same λ. λ is selected per method because the RMF-MM default
  λ = 20 / (m + n) regularises almost nothing on a sparse rating matrix (≈ 0.008 on
  MovieLens-100K against ~85 ratings per user): every method then overfits, and which one looks
  best depends on where its solver stops.

  Returns:
    ``{"selected": {method: {"lam", "val_mae", "test_mae", "test_rmse"}}, "grid": [...],
    "offset": float, "num_corrupted": int}`` with methods ``l2``, ``l1`` and ``lsp``.
  """
  k_out, k_val, k_init = jax.random.split(key, 3)
  corrupted, mask = data.inject_outliers(k_out, train, ratio, low, high, corruption)
  offset = float(np.mean(np.asarray(corrupted.values, np.float64)))
  fit_part, val = data.holdout(k_val, data.shift(corrupted, offset), val_fraction)
  test_c = data.shift(test, offset)
  grid = []
  for lam in lams:
    l2 = baselines.fit_l2(k_init, fit_part, rank, lam=lam, num_sweeps=l2_sweeps)
    l1 = rmfnl.fit(k_init, fit_part, rank, "l1", lam=lam, rho0=0.004, init_scale=0.1,
                   inner_tol=1e-3, max_outer=max_outer, max_inner=max_inner)
    lsp = rmfnl.fit(k_init, fit_part, rank, "lsp", theta=theta, lam=lam, init=(l1.u, l1.v),
                    inner_tol=1e-3, max_outer=lsp_outer, max_inner=max_inner)
    for name, res in (("l2", l2), ("l1", l1), ("lsp", lsp)):
      row = {"method": name, "lam": float(lam), "val_mae": float(obs_lib.mae(val, res.u, res.v)),
             **{k: v for k, v in evaluate(test_c, res.u, res.v).items()}}
      if hasattr(res, "num_steps"):
        row["steps"] = int(res.num_steps)
      grid.append(row)
  selected = {}
  for name in ("l2", "l1", "lsp"):
    best = min((r for r in grid if r["method"] == name), key=lambda r: r["val_mae"])
    selected[name] = {"lam": best["lam"], "val_mae": best["val_mae"],
                      "test_mae": best["test_mae"], "test_rmse": best["test_rmse"]}
  return {"selected": selected, "grid": grid, "offset": offset,
          "num_corrupted": int(np.asarray(mask).sum())}



# ---------------------------------------------------------------------------------------------
# MovieLens-100K, 5 folds: ℓ2 vs ℓ1 vs nonconvex with a paired per-fold verdict

NONCONVEX_LOSSES = ("lsp", "geman", "laplace")


def ratings_protocol_fold(key, train, test, *, rank: int = 5, lams=(3.0, 10.0, 30.0),
                          val_fraction: float = 0.1, losses=NONCONVEX_LOSSES, theta=1.0,
                          warm_start_from_l1: bool = True, outlier_ratio: float = 0.0,
                          corruption: str = "opposite", max_outer: int = 100,
                          nonconvex_outer: int = 40, max_inner: int = 300,
                          l2_sweeps: int = 20) -> dict:
  """One fold of the MovieLens comparison: ℓ2 (ALS), ℓ1 and nonconvex RMFNL, λ per method.

  Protocol: (optionally corrupt ``outlier_ratio`` of the training ratings, default none: the
  real ratings as they are), centre every rating by the mean training rating (prediction =
  offset + u_iᵀ v_j; no user/item biases, as in the paper's model U Vᵀ), hold out
  ``val_fraction`` of the training ratings for validation, fit every method on the rest for
  each λ in ``lams`` and keep, per method, the λ with the lowest validation RMSE. Test RMSE and
  MAE of that fit are reported (no refit; the test ratings are never used for a choice).
  Nonconvex losses start from the ℓ1 solution at the same λ when ``warm_start_from_l1``,
  otherwise from the spectral start with RMF-MM's relaxation ρ₀ = 0.004 and ``max_outer`` steps.

  Returns:
    ``{"selected": {method: {"lam", "val_rmse", "val_mae", "test_rmse", "test_mae"}},
    "grid": [...], "offset": float}`` with methods ``l2``, ``l1`` and each of ``losses``.
  """
  k_out, k_val, k_init = jax.random.split(key, 3)
  if outlier_ratio > 0:
    train, _ = data.inject_outliers(k_out, train, outlier_ratio, 1.0, 5.0, corruption)
  offset = float(np.mean(np.asarray(train.values, np.float64)))
  fit_part, val = data.holdout(k_val, data.shift(train, offset), val_fraction)
  test_c = data.shift(test, offset)
  methods = ("l2", "l1") + tuple(losses)
  grid = []
  for lam in lams:
    fits = {"l2": baselines.fit_l2(k_init, fit_part, rank, lam=lam, num_sweeps=l2_sweeps)}
    fits["l1"] = rmfnl.fit(k_init, fit_part, rank, "l1", lam=lam, rho0=0.004, inner_tol=1e-3,
                           max_outer=max_outer, max_inner=max_inner)
    for loss in losses:
      if warm_start_from_l1:
        start = dict(init=(fits["l1"].u, fits["l1"].v), max_outer=nonconvex_outer)
      else:
        start = dict(init="spectral", rho0=0.004, max_outer=max_outer)
      fits[loss] = rmfnl.fit(k_init, fit_part, rank, loss, theta=theta, lam=lam,
                             inner_tol=1e-3, max_inner=max_inner, **start)
    for name, res in fits.items():
      row = {"method": name, "lam": float(lam),
             "val_rmse": float(obs_lib.rmse(val, res.u, res.v)),
             "val_mae": float(obs_lib.mae(val, res.u, res.v)), **evaluate(test_c, res.u, res.v)}
      if hasattr(res, "num_steps"):
        row["steps"] = int(res.num_steps)
      grid.append(row)
  selected = {}
  for name in methods:
    best = min((r for r in grid if r["method"] == name), key=lambda r: r["val_rmse"])
    selected[name] = {k: best[k] for k in ("lam", "val_rmse", "val_mae", "test_rmse",
                                           "test_mae")}
  return {"selected": selected, "grid": grid, "offset": offset}


def paired_interval(a, b, confidence: float = 0.95) -> dict:
  """Mean, standard error and the Student-t ``confidence`` interval (``lo``, ``hi``) of the paired
  a − b (:func:`jaxpapers._src.stats.mean_interval`).

  With one pair the interval is (−inf, inf) and the standard error NaN, so a verdict built on it
  is inconclusive; a NaN difference makes every figure NaN.
  """
  d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
  if d.ndim != 1 or d.size == 0:
    raise ValueError(f"need two equal-length 1-d sequences, got differences of shape {d.shape}")
  iv = stats_lib.mean_interval(d, confidence)
  return {"mean": iv["mean"], "se": iv["se"] if d.size > 1 else float("nan"), "lo": iv["low"],
          "hi": iv["high"], "n": iv["n"]}


def protocol_verdict(per_fold: dict, candidate: str, baselines_=("l1", "l2"),
                     metrics=("test_rmse", "test_mae"), confidence: float = 0.95
                     ) -> tuple[str, dict]:
  """Paired per-fold verdict: does ``candidate`` beat every baseline on every metric?

  ``per_fold[method][metric]`` is the list of per-fold values (lower is better). For each
  (baseline, metric) the paired difference candidate − baseline gets a ``confidence`` interval
  (:func:`paired_interval`). ``"pass"`` when every interval lies below 0, ``"fail"`` when any
  lies above 0 (the candidate is worse there), ``"inconclusive"`` otherwise (including NaNs).

  Returns:
    The verdict and ``{f"{baseline}/{metric}": interval}``.
  """
  comps = {f"{b}/{m}": paired_interval(per_fold[candidate][m], per_fold[b][m], confidence)
           for b in baselines_ for m in metrics}
  if any(c["lo"] > 0 for c in comps.values()):
    return "fail", comps
  if all(c["hi"] < 0 for c in comps.values()):
    return "pass", comps
  return "inconclusive", comps


def best_by_validation(per_fold: dict, candidates, metric: str = "val_rmse") -> str:
  """The candidate with the lowest mean validation ``metric`` over folds (never test)."""
  return min(candidates, key=lambda c: float(np.mean(per_fold[c][metric])))

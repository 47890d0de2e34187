"""The MovieLens-100K 5-fold protocol of robust_mf: folds, λ by validation, the paired verdict."""

import jax
import numpy as np
import pytest
import scipy.stats

from jaxpapers._src import data as data_lib
from jaxpapers._src import metrics as metrics_lib
from jaxpapers.robust_mf import config, data, train
from jaxpapers.robust_mf import observations as obs_lib

_HAS_UDATA = data_lib.has_dataset("movielens-100k", ["u.data", "u1.test"])


def _per_fold(candidate, l1, l2):
  return {"cand": {"test_rmse": candidate[0], "test_mae": candidate[1]},
          "l1": {"test_rmse": l1[0], "test_mae": l1[1]},
          "l2": {"test_rmse": l2[0], "test_mae": l2[1]}}


def test_paired_interval_is_the_student_t_interval_of_the_differences():
  iv = train.paired_interval([2.0, 4.0, 6.0], [1.0, 2.0, 3.0])  # d = 1, 2, 3
  se = 1.0 / np.sqrt(3.0)
  half = scipy.stats.t.ppf(0.975, 2) * se  # 4.303 · se
  assert iv["mean"] == pytest.approx(2.0) and iv["se"] == pytest.approx(se)
  assert iv["lo"] == pytest.approx(2.0 - half) and iv["hi"] == pytest.approx(2.0 + half)
  assert iv["n"] == 3
  one = train.paired_interval([1.0], [0.0])  # one pair: no spread, the interval is everything
  assert one["lo"] == -np.inf and one["hi"] == np.inf


def test_protocol_verdict_pass_fail_inconclusive_from_hand_made_folds():
  l1 = ([0.95, 0.94, 0.96, 0.93, 0.95], [0.75, 0.74, 0.76, 0.73, 0.75])
  l2 = ([0.97, 0.96, 0.98, 0.95, 0.97], [0.77, 0.76, 0.78, 0.75, 0.77])
  jitter = np.array([0.001, -0.002, 0.0, 0.002, -0.001])
  # Better than both baselines by 0.02 on every fold, on both metrics: intervals below 0.
  better = tuple(list(np.asarray(x) - 0.02 + jitter) for x in l1)
  verdict, comps = train.protocol_verdict(_per_fold(better, l1, l2), "cand")
  assert verdict == "pass", comps
  assert set(comps) == {"l1/test_rmse", "l1/test_mae", "l2/test_rmse", "l2/test_mae"}
  assert all(c["hi"] < 0 for c in comps.values())
  # Worse than ℓ1 on MAE on every fold (better elsewhere): one interval above 0 is a fail.
  worse_mae = (better[0], list(np.asarray(l1[1]) + 0.01 + jitter))
  verdict, comps = train.protocol_verdict(_per_fold(worse_mae, l1, l2), "cand")
  assert verdict == "fail" and comps["l1/test_mae"]["lo"] > 0, comps
  # Better on some folds, worse on others: the interval straddles 0.
  mixed = (list(np.asarray(l1[0]) + np.array([-0.02, 0.02, -0.02, 0.02, 0.0])), better[1])
  verdict, comps = train.protocol_verdict(_per_fold(mixed, l1, l2), "cand")
  assert verdict == "inconclusive", comps
  # A single fold can never pass or fail; a NaN is never a pass.
  first = lambda xs: tuple([x[0]] for x in xs)
  assert train.protocol_verdict(_per_fold(first(better), first(l1), first(l2)),
                                "cand")[0] == "inconclusive"
  nan = ([np.nan] + better[0][1:], better[1])
  assert train.protocol_verdict(_per_fold(nan, l1, l2), "cand")[0] == "inconclusive"


def test_best_nonconvex_is_chosen_on_validation_never_on_test():
  per_fold = {"lsp": {"val_rmse": [0.90, 0.91], "test_rmse": [0.99, 0.99]},
              "geman": {"val_rmse": [0.95, 0.96], "test_rmse": [0.80, 0.80]}}
  assert train.best_by_validation(per_fold, ("lsp", "geman")) == "lsp"


def test_warm_start_from_l1_is_a_config_option(tmp_path):
  c = config.get_config("smoke")
  assert c.warm_start_from_l1 is True  # documented default (a repository choice, see config)
  c.m = c.n = 40
  c.max_outer, c.max_inner, c.l2_sweeps = 4, 20, 3
  c.run_rmf_mm = False
  first_obj = {}
  for warm in (True, False):
    c.warm_start_from_l1 = warm
    res = train.train_and_evaluate(c, str(tmp_path / str(warm)))
    assert np.isfinite(res["rmfnl_lsp"]["test_rmse"])
    rows = metrics_lib.read_metrics(tmp_path / str(warm) / "metrics.jsonl")
    first_obj[warm] = next(r["objective"] for r in rows
                           if r.get("method") == "rmfnl_lsp" and "summary" not in r)
  # Different starting points: the LSP objective at step 0 differs (ℓ1 solution vs spectral).
  assert first_obj[True] != pytest.approx(first_obj[False], rel=1e-6), first_obj


def _toy_ratings(key, m=60, n=50, rank=2, density=0.5):
  """A rank-2 rating matrix on the 1–5 scale, observed at random, split into train / test."""
  k1, k2, k3 = jax.random.split(key, 3)
  u = np.asarray(jax.random.normal(k1, (m, rank)))
  v = np.asarray(jax.random.normal(k2, (n, rank)))
  full = np.clip(np.rint(3.0 + 0.8 * u @ v.T), 1, 5)
  keep = np.asarray(jax.random.uniform(k3, (m, n))) < density
  rows, cols = np.nonzero(keep)
  obs = obs_lib.sparse_observations(rows.astype(np.int32), cols.astype(np.int32),
                                    full[rows, cols], (m, n))
  return data.holdout(jax.random.key(7), obs, 0.2)


def test_ratings_protocol_fold_selects_lambda_by_validation_rmse():
  train_obs, test_obs = _toy_ratings(jax.random.key(0))
  res = train.ratings_protocol_fold(jax.random.key(1), train_obs, test_obs, rank=2,
                                    lams=(0.1, 30.0), val_fraction=0.2,
                                    losses=("lsp",), max_outer=10, nonconvex_outer=5,
                                    max_inner=50, l2_sweeps=5)
  assert set(res["selected"]) == {"l2", "l1", "lsp"}
  assert len(res["grid"]) == 6
  for method, sel in res["selected"].items():
    rows = [r for r in res["grid"] if r["method"] == method]
    assert sel["lam"] == min(rows, key=lambda r: r["val_rmse"])["lam"]  # never the test score
    assert all(np.isfinite(sel[k]) for k in ("test_rmse", "test_mae", "val_rmse"))
  # Without the warm start the nonconvex fit runs from the spectral start: other numbers.
  cold = train.ratings_protocol_fold(jax.random.key(1), train_obs, test_obs, rank=2,
                                     lams=(0.1,), val_fraction=0.2, losses=("lsp",),
                                     warm_start_from_l1=False, max_outer=10,
                                     nonconvex_outer=5, max_inner=50, l2_sweeps=5)
  warm_row = next(r for r in res["grid"] if r["method"] == "lsp" and r["lam"] == 0.1)
  assert cold["selected"]["lsp"]["val_rmse"] != pytest.approx(warm_row["val_rmse"], rel=1e-6)


@pytest.mark.skipif(not _HAS_UDATA,
                    reason="MovieLens-100K u.data not found in JAXPAPERS_DATA or ../shared/data")
def test_movielens_100k_folds_are_the_grouplens_5_fold_split():
  folds = data.load_movielens_100k_folds()
  assert len(folds) == 5
  pairs = []
  for f in folds:
    assert f.train.shape == f.test.shape == (943, 1682)
    assert f.train.nnz == 80000 and f.test.nnz == 20000
    tr = set(zip(np.asarray(f.train.rows).tolist(), np.asarray(f.train.cols).tolist()))
    te = set(zip(np.asarray(f.test.rows).tolist(), np.asarray(f.test.cols).tolist()))
    assert not tr & te
    pairs.append(te)
  assert len(set().union(*pairs)) == 100000  # disjoint test sets covering u.data
  # Fold 1 is the shipped u1.test (as (user, item) pairs; ids map to the same 0-based indices).
  u1 = data.load_movielens_100k(split="u1")
  shipped = set(zip(np.asarray(u1.test.rows).tolist(), np.asarray(u1.test.cols).tolist()))
  assert shipped == pairs[0]
  with pytest.raises(ValueError, match="num_folds"):
    data.load_movielens_100k_folds(num_folds=6)

"""Robustness claims of Yao & Kwok (NeurIPS 2018) at test scale, and the experiment binary."""

import json

import jax
import numpy as np
import pytest

from jaxpapers._src import data as data_lib
from jaxpapers._src import metrics as metrics_lib
from jaxpapers.robust_mf import baselines, config, data, rmfnl, train
from jaxpapers.robust_mf import observations as obs_lib


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nonconvex_losses_beat_l1_and_l2_at_20_percent_outliers(seed):
  # 20 % of Ω get U[−10, 10] added (std 10/√3 ≈ 5.8, ~58 noise levels of 0.1). Margins that
  # follow from that, not from a measurement, on each of 3 seeds:
  #  * ℓ2 breaks down: a least-squares fit absorbs a share of the outlier energy, so its test
  #    RMSE is many noise levels (≥ 5 σ = 0.5) above the noise;
  #  * a bounded-influence (concave) loss does not: LSP/Laplace test RMSE < ℓ2's / 2;
  #  * started from the ℓ1 solution, the concave weights φ′(|E|) only down-weight the large
  #    (outlier) residuals that still bias ℓ1: LSP/Laplace test RMSE < ℓ1's.
  p = data.synthetic(jax.random.key(seed), 300, 300, 5, density=0.15, outlier_ratio=0.2,
                     num_test=10000)
  key = jax.random.key(100 + seed)
  noise_std = 0.1  # data.synthetic's default
  l2 = baselines.fit_l2(key, p.train, 5, lam=1.0, num_sweeps=15)
  l1 = rmfnl.fit(key, p.train, 5, "l1", rho0=0.004, inner_tol=1e-3, max_outer=100,
                 max_inner=300)
  assert bool(l1.converged)
  rmse = {"l2": float(obs_lib.rmse(p.test, l2.u, l2.v)),
          "l1": float(obs_lib.rmse(p.test, l1.u, l1.v))}
  for loss in ("lsp", "laplace"):
    res = rmfnl.fit(key, p.train, 5, loss, theta=1.0, init=(l1.u, l1.v), inner_tol=1e-3,
                    max_outer=30, max_inner=300)
    rmse[loss] = float(obs_lib.rmse(p.test, res.u, res.v))
  assert rmse["l2"] >= 5 * noise_std, rmse
  for loss in ("lsp", "laplace"):
    assert rmse[loss] < rmse["l2"] / 2, rmse
    assert rmse[loss] < rmse["l1"], rmse


_HAS_ML100K = data_lib.has_dataset("movielens-100k", ["u1.base", "u1.test"])
_HAS_ML100K_FOLDS = data_lib.has_dataset("movielens-100k", ["u.data"])


def _first_users(obs, num):
  keep = np.asarray(obs.rows) < num
  return obs_lib.SparseObservations(obs.rows[keep], obs.cols[keep], obs.values[keep],
                                    (num, obs.shape[1]))


@pytest.mark.skipif(not _HAS_ML100K,
                    reason="MovieLens-100K not found in JAXPAPERS_DATA or ../shared/data")
def test_movielens_100k_real_files_and_corruption():
  split = data.load_movielens_100k()
  assert split.train.nnz == 80000 and split.test.nnz == 20000
  assert split.train.shape == (943, 1682)
  both = np.concatenate([np.asarray(split.train.values), np.asarray(split.test.values)])
  np.testing.assert_allclose(both.astype(np.float64).mean(), 3.52987, atol=5e-5)  # README.txt
  assert set(np.unique(both)) == {1.0, 2.0, 3.0, 4.0, 5.0}
  clean = np.asarray(split.train.values)
  for mode in ("uniform", "opposite"):
    corrupted, mask = data.inject_outliers(jax.random.key(0), split.train, 0.1, 1.0, 5.0, mode)
    mask, vals = np.asarray(mask), np.asarray(corrupted.values)
    assert int(mask.sum()) == 8000
    np.testing.assert_array_equal(vals[~mask], clean[~mask])
  # "opposite": every corrupted rating is moved by 2–4 stars.
  assert np.all(np.abs(vals[mask] - clean[mask]) >= 2.0)


@pytest.mark.slow
@pytest.mark.skipif(not _HAS_ML100K_FOLDS,
                    reason="MovieLens-100K u.data not found in JAXPAPERS_DATA or ../shared/data")
@pytest.mark.parametrize("fold", [0, 1])
def test_movielens_100k_gross_corruption_l1_and_lsp_beat_l2(fold):
  # 10 % of the training ratings sent to the far end of the 1–5 scale (2–4 stars off), on two
  # GroupLens folds (first 300 users, for time), rank 5, λ chosen per method by the validation
  # routine from a grid (not fixed here; λ = 30 is left out of the grid only for time: on this
  # 300-user subset the relaxed-MM ℓ1 fit at λ = 30 runs its 60 steps at the APG cap, ~4 min). Margins that follow from the corruption: ℓ2's squared
  # loss gives the gross errors quadratic weight, ℓ1's and LSP's bounded influence does not, so
  # both have lower test MAE than ℓ2 on each fold; and every method learns more than the
  # centring offset alone (a constant prediction).
  split = data.load_movielens_100k_folds(num_folds=fold + 1)[fold]
  tr, te = _first_users(split.train, 300), _first_users(split.test, 300)
  res = train.corrupted_ratings_experiment(jax.random.key(fold), tr, te, corruption="opposite",
                                           lams=(1.0, 3.0, 10.0), max_outer=60, lsp_outer=20)
  mae = {k: v["test_mae"] for k, v in res["selected"].items()}
  assert mae["l1"] < mae["l2"], (mae, res["selected"])
  assert mae["lsp"] < mae["l2"], (mae, res["selected"])
  assert res["num_corrupted"] == round(0.1 * tr.nnz)  # corrupted before the holdout
  for name, sel in res["selected"].items():  # the validation routine picked λ
    rows = [r for r in res["grid"] if r["method"] == name]
    assert sel["lam"] == min(rows, key=lambda r: r["val_mae"])["lam"]
  constant = float(np.mean(np.abs(np.asarray(te.values) - res["offset"])))
  assert max(mae.values()) < constant, (mae, constant)


def test_train_and_evaluate_smoke_writes_metrics(tmp_path):
  c = config.get_config("smoke")
  c.m = c.n = 40
  c.max_outer = 4
  c.max_inner = 20
  c.l2_sweeps = 3
  c.run_rmf_mm = False  # the dense path has its own tests; this checks the pipeline
  res = train.train_and_evaluate(c, str(tmp_path))
  assert set(res) == {"l2", "rmfnl_l1", "rmfnl_lsp", "problem"}
  for name in ("l2", "rmfnl_l1", "rmfnl_lsp"):
    assert np.isfinite(res[name]["test_rmse"]) and res[name]["seconds"] > 0
  lines = metrics_lib.read_metrics(tmp_path / "metrics.jsonl")
  curve = [r["objective"] for r in lines if r.get("method") == "rmfnl_lsp" and "summary" not in r]
  assert len(curve) == res["rmfnl_lsp"]["steps"] + 1
  assert curve[-1] <= curve[0]
  json.dumps(res)
  with pytest.raises(ValueError, match="scale"):
    config.get_config("huge")

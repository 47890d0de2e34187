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
def test_nonconvex_losses_beat_l1_and_l2_at_20_percent_outliers():
  # The m = n = 500, r = 5 setting (density 0.1, 20 % of Ω + U[−10, 10], λ = 20/(m+n)).
  # Measured: ℓ2 1.62, ℓ1 0.098, LSP 0.080, Laplace 0.079. A converged ℓ1 fit does NOT break
  # down here (the "ℓ1 ≥ 0.5" is not reproduced); what holds is the ordering below.
  p = data.synthetic(jax.random.key(0), 500, 500, 5, density=0.1, outlier_ratio=0.2,
                     num_test=20000)
  key = jax.random.key(1)
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
  assert rmse["l2"] >= 0.5, rmse  # ℓ2 breaks down
  for loss in ("lsp", "laplace"):
    assert rmse[loss] <= 0.09, rmse
    assert rmse[loss] <= 0.9 * rmse["l1"], rmse


_HAS_ML100K = data_lib.has_dataset("movielens-100k", ["u1.base", "u1.test"])


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
@pytest.mark.skipif(not _HAS_ML100K,
                    reason="MovieLens-100K not found in JAXPAPERS_DATA or ../shared/data")
def test_movielens_100k_gross_corruption_l1_and_lsp_beat_l2():
  # The claim on the real u1 split: 10 % of the training ratings corrupted (to the far
  # end of the scale), rank 5, ℓ1 and LSP test MAE ≥ 0.04 below ℓ2. λ = 10 is the value the
  # validation split selects for all three methods (movielens100k_corrupted reproduction, λ grid
  # {3, 10, 30}); measured MAE ℓ2 0.858, ℓ1 0.801, LSP 0.812.
  split = data.load_movielens_100k()
  res = train.corrupted_ratings_experiment(jax.random.key(0), split.train, split.test,
                                           corruption="opposite", lams=(10.0,), max_outer=100,
                                           lsp_outer=40)
  mae = {k: v["test_mae"] for k, v in res["selected"].items()}
  assert mae["l1"] <= mae["l2"] - 0.04, mae
  assert mae["lsp"] <= mae["l2"] - 0.04, mae
  assert res["num_corrupted"] == 8000  # 10 % of u1.base, corrupted before the holdout
  # All three learned more than the centring offset alone (a constant prediction).
  constant = float(np.mean(np.abs(np.asarray(split.test.values) - res["offset"])))
  assert max(mae.values()) < constant - 0.05, (mae, constant)


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

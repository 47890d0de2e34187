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
  p = data.synthetic(jax.random.key(0), 500, 500, 5, density=0.1, outlier_ratio=0.2,
                     num_test=20000)
  key = jax.random.key(1)
  l2 = baselines.fit_l2(key, p.train, 5, num_sweeps=15)
  l1 = rmfnl.fit(key, p.train, 5, "l1", rho0=0.004, inner_tol=1e-3, max_outer=40,
                 max_inner=300)
  rmse = {"l2": float(obs_lib.rmse(p.test, l2.u, l2.v)),
          "l1": float(obs_lib.rmse(p.test, l1.u, l1.v))}
  for loss in ("lsp", "laplace"):
    res = rmfnl.fit(key, p.train, 5, loss, theta=1.0, init=(l1.u, l1.v), inner_tol=1e-3,
                    max_outer=15, max_inner=300)
    rmse[loss] = float(obs_lib.rmse(p.test, res.u, res.v))
  assert rmse["l2"] >= 0.5, rmse  # ℓ2 breaks down
  for loss in ("lsp", "laplace"):
    assert rmse[loss] <= 0.1, rmse
    assert rmse[loss] < 0.95 * rmse["l1"], rmse


@pytest.mark.skipif(not data_lib.has_dataset("movielens-100k", ["u1.base", "u1.test"]),
                    reason="MovieLens-100K not found in JAXPAPERS_DATA or ../shared/data")
def test_movielens_100k_real_files_and_corruption():
  # The claim (ℓ1 and LSP test MAE ≥ 0.04 below ℓ2 at 10% corruption) is NOT asserted:
  # we measured it to depend on the step count of the relaxed ℓ1 stage (ℓ1 MAE 0.869 after 20
  # steps, 0.907 after 30, vs ℓ2 0.890); the movielens100k_corrupted reproduction reports it.
  split = data.load_movielens_100k()
  assert split.train.nnz == 80000 and split.test.nnz == 20000
  assert split.train.shape == (943, 1682)
  both = np.concatenate([np.asarray(split.train.values), np.asarray(split.test.values)])
  np.testing.assert_allclose(both.astype(np.float64).mean(), 3.52987, atol=5e-5)  # README.txt
  assert set(np.unique(both)) == {1.0, 2.0, 3.0, 4.0, 5.0}
  corrupted, mask = data.inject_outliers(jax.random.key(0), split.train, 0.1, 1.0, 5.0)
  assert int(mask.sum()) == 8000
  np.testing.assert_array_equal(np.asarray(corrupted.values)[~np.asarray(mask)],
                                np.asarray(split.train.values)[~np.asarray(mask)])


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

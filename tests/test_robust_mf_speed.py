"""RMF-MM vs RMFNL time-to-objective comparison (``robust_mf.speed``): the record's own identities."""

import jax
import numpy as np
import pytest

from jaxpapers.robust_mf import speed


def test_compare_with_rmf_mm_record_is_consistent():
  r = speed.compare_with_rmf_mm(jax.random.key(0), 40, 2)
  # the target is the worse final objective × (1 + 1e-3), so both solvers reach it
  assert r["target"] == pytest.approx(max(r["h_rmf_mm"], r["h_rmfnl"]) * 1.001, rel=1e-12)
  assert r["h_rmf_mm"] <= r["target"] and r["h_rmfnl"] <= r["target"]
  # both start from the same spectral point and only go down (monotone MM)
  assert r["h_rmf_mm"] <= r["h_start"] and r["h_rmfnl"] <= r["h_start"]
  assert r["rmf_mm_outer_to_target"] <= r["rmf_mm_outer"]
  assert r["rmfnl_steps_to_target"] <= r["rmfnl_steps"]
  assert np.isfinite(r["test_rmse_rmf_mm"]) and np.isfinite(r["test_rmse_rmfnl"])
  t_nl = r["seconds_to_target_rmfnl"]
  expected = r["seconds_to_target_rmf_mm"] / t_nl if t_nl > 0 else np.inf
  assert r["speedup_to_target"] == pytest.approx(expected)


@pytest.mark.parametrize("kwargs, match", [
    ({"m": 1}, "m must be"), ({"m": 20, "rank": 0}, "rank must be"),
    ({"m": 20, "rank": 20}, "rank must be"), ({"m": 20, "target_rtol": -1.0}, "target_rtol"),
    ({"m": True}, "m must be")])
def test_compare_with_rmf_mm_rejects_bad_arguments(kwargs, match):
  with pytest.raises(ValueError, match=match):
    speed.compare_with_rmf_mm(jax.random.key(0), **kwargs)

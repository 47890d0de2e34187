"""Defogger seed / out-of-distribution study: the paired summaries and verdicts, hand-made numbers."""

import json
import math

import pytest

from jaxpapers._src import stats
from jaxpapers.defogger import config as config_lib
from jaxpapers.defogger import reproductions, study


def test_mean_interval_hand_values():
  iv = stats.mean_interval([1.0, 2.0, 3.0])
  assert iv["mean"] == 2.0 and iv["n"] == 3
  assert iv["se"] == pytest.approx(1.0 / math.sqrt(3))
  # t(0.975, 2) = 4.302652729...
  assert iv["high"] - iv["mean"] == pytest.approx(4.3026527297 / math.sqrt(3), rel=1e-9)
  one = stats.mean_interval([0.5])
  assert one["low"] == -math.inf and one["high"] == math.inf
  nan = stats.mean_interval([1.0, float("nan")])
  assert all(math.isnan(nan[k]) for k in ("mean", "se", "low", "high"))
  with pytest.raises(ValueError, match="values"):
    stats.mean_interval([])
  with pytest.raises(ValueError, match="confidence"):
    stats.mean_interval([1.0, 2.0], confidence=1.5)


def test_interval_verdict_pass_fail_inconclusive():
  v = lambda xs, target, hib=True: stats.interval_verdict(stats.mean_interval(xs), target, hib)
  assert v([0.05, 0.06, 0.07], 0.03) == "pass"
  assert v([0.00, 0.01, 0.005], 0.03) == "fail"          # whole interval below the target
  assert v([0.10, -0.05, 0.04], 0.03) == "inconclusive"  # mean above, interval spans 0
  assert v([0.02, 0.03, 0.05], 0.03) == "inconclusive"   # mean 0.033, interval spans 0
  assert v([-0.01, -0.012, -0.011], 0.0, False) == "pass"  # lower is better: clearly below 0
  assert v([0.01, 0.012, 0.011], 0.0, False) == "fail"
  assert v([0.01, float("nan")], 0.0) == "fail"


def _seed(margin_ml, margin_str, l1_ml):
  base = {b: {"hid_u": 0.4, "l1_hidden": 0.05} for b in study.BASELINES}
  base["previously_seen"] = {"hid_u": 0.45, "l1_hidden": 0.04}
  rows = dict(base, ml={"hid_u": 0.45 + margin_ml, "l1_hidden": 0.04 + l1_ml},
              str={"hid_u": 0.45 + margin_str, "l1_hidden": 0.04})
  return {"in_distribution": {"0": rows, "1": rows, "3": rows}, "train": {}, "thresholds": {}}


def test_summarize_pairs_each_seed_with_its_best_baseline():
  per_seed = [_seed(0.05, 0.0, -0.002), _seed(0.06, 0.005, -0.003), _seed(0.07, 0.0025, -0.001)]
  s = study.summarize(per_seed)
  cell = s["in_distribution"]["0"]
  assert cell["ml"]["hid_u_margin"]["mean"] == pytest.approx(0.06)
  assert cell["str"]["hid_u_margin"]["mean"] == pytest.approx(0.0025)
  assert cell["ml"]["l1_hidden_diff"]["mean"] == pytest.approx(-0.002)
  assert cell["ml"]["best_baseline"] == ["previously_seen"] * 3
  m = {"summary": s, "verdicts": {f"{c}/s{k}/{n}": stats.interval_verdict(iv, 0.03)
                                  for c, k, n, iv in reproductions._cells(s, "hid_u_margin")}}
  assert set(m["verdicts"]) == {f"in_distribution/s{k}/{n}" for k in (0, 1) for n in ("ml", "str")}
  assert reproductions._check_seeds_ood(m, "cpu") == "fail"  # str's interval lies below 0.03


def test_run_seed_refuses_a_folder_of_another_configuration(tmp_path):
  c = config_lib.get_config("smoke")
  c.models = {"ml": {"encoder": "ml"}, "str": {"encoder": "str"}}
  (tmp_path / "seed0.json").write_text(json.dumps({"config_hash": "other", "complete": True}))
  with pytest.raises(ValueError, match="another configuration"):
    study.run_seed(c, 0, str(tmp_path))
  with pytest.raises(ValueError, match="models must be names"):
    study.run_seed(c, 0, str(tmp_path), models=("nope",))

"""Verdicts of the cued-set rows: paired intervals, and inconclusive at the ceiling or at chance."""

import pytest

from jaxpapers._src import stats
from jaxpapers.convlstm_attention import reproductions as rep


def _measured(conv, a, b=None, c=None, d=None):
  m = {"accuracy": {"convlstm": conv, "a": a}}
  m["a_minus_convlstm"] = stats.mean_interval([x - y for x, y in zip(a, conv)])
  for name, acc in (("b", b), ("c", c), ("d", d)):
    acc = a if acc is None else acc
    m["accuracy"][name] = acc
    m[f"{name}_minus_a"] = stats.mean_interval([x - y for x, y in zip(acc, a)])
  return m


def test_a_within_two_points_passes_fails_or_is_inconclusive_by_interval():
  conv = [0.70, 0.72, 0.74]
  assert rep.check_cued_a(_measured(conv, [0.71, 0.725, 0.745]), "cpu") == "pass"
  assert rep.check_cued_a(_measured(conv, [0.60, 0.62, 0.64]), "cpu") == "fail"  # 10 points down
  assert rep.check_cued_a(_measured(conv, [0.60, 0.74, 0.80]), "cpu") == "inconclusive"


def test_ceiling_or_chance_is_inconclusive_whatever_the_difference():
  assert rep.check_cued_a(_measured([0.99, 0.99, 1.0], [0.99, 0.99, 1.0]), "cpu") == "inconclusive"
  assert rep.check_cued_a(_measured([0.1, 0.12, 0.11], [0.0, 0.01, 0.0]), "cpu") == "inconclusive"
  assert rep.check_cued_attention(_measured([0.5, 0.5, 0.5], [0.5, 0.5, 0.5]), "cpu") \
      == "inconclusive"


def test_attention_better_than_a_fails_the_claim():
  conv, a = [0.70, 0.72, 0.74], [0.70, 0.71, 0.72]
  assert rep.check_cued_attention(_measured(conv, a), "cpu") == "pass"  # identical to (a)
  better = [0.80, 0.82, 0.81]
  assert rep.check_cued_attention(_measured(conv, a, b=better), "cpu") == "fail"
  noisy = [0.65, 0.80, 0.74]
  assert rep.check_cued_attention(_measured(conv, a, c=noisy), "cpu") == "inconclusive"


def test_cued_config_is_declared_for_every_scale():
  cfg = rep.cued_config("cpu")
  assert cfg.dataset == "synthetic_cued" and cfg.size == 32 and cfg.controls == []
  assert tuple(cfg.variants) == rep.CUED_VARIANTS


def test_motion_config_is_declared_for_every_scale():
  for scale in ("smoke", "cpu", "full"):
    cfg = rep.set_config("motion", scale)
    assert cfg.dataset == "recorded_motion" and cfg.num_classes == 4 and cfg.motion_normalize
    assert cfg.controls == []
  assert tuple(rep.set_config("motion", "cpu").variants) == rep.CUED_VARIANTS
  with pytest.raises(ValueError, match="name must be"):
    rep.set_config("jester", "cpu")


def test_motion_rows_are_registered_and_skip_without_the_recordings(tmp_path, monkeypatch):
  # Without aeon's data and without data_dir the rows say skipped (naming what was searched),
  # never an error or a number.
  from jaxpapers._src import registry, reproduce
  from jaxpapers.convlstm_attention import motion
  rows = {r.name: r for r in registry.reproductions("convlstm_attention")}
  monkeypatch.setattr(motion, "_aeon_data_dir", lambda: None)
  for name in ("motion_gates_without_convolutions", "motion_attention_does_not_help"):
    row = reproduce.run_row(rows[name], "smoke", str(tmp_path))
    assert row["verdict"] == "skipped", row
    assert "BasicMotions_TRAIN.ts" in row["ours"], row

"""Calibration, AUROC and abstention metrics of uncertainty-aware attention (Heo et al., 2018)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from jaxpapers._src import testing
from jaxpapers.ua_attention import metrics as m


def test_ece_perfectly_calibrated_is_below_one_percent():
  k1, k2 = jax.random.split(jax.random.key(0))
  p = jax.random.uniform(k1, (100_000,))
  y = jax.random.bernoulli(k2, p).astype(jnp.int32)
  assert float(m.expected_calibration_error(p, y)) < 0.01


def test_ece_constant_point_nine_on_half_positives_is_forty_percent():
  p = jnp.full((1000,), 0.9)
  y = jnp.arange(1000) % 2
  np.testing.assert_allclose(m.expected_calibration_error(p, y), 0.4, atol=1e-4)
  rel = m.reliability_diagram(p, y)
  assert float(rel.count[9]) == 1000 and float(jnp.nansum(rel.count)) == 1000
  np.testing.assert_allclose(rel.frequency[9], 0.5)
  assert np.isnan(np.asarray(rel.confidence[0]))


def _ece_loop(p, y, bins=10):
  p, y = np.asarray(p, np.float64), np.asarray(y, np.float64)
  total = 0.0
  for b in range(bins):
    lo, hi = b / bins, (b + 1) / bins
    sel = (p >= lo) & ((p < hi) if b < bins - 1 else (p <= hi))
    if sel.any():
      total += sel.sum() / len(p) * abs(y[sel].mean() - p[sel].mean())
  return total


def test_ece_matches_loop_reference_and_jit():
  rng = np.random.default_rng(0)
  p = jnp.asarray(rng.uniform(size=500) ** 2, jnp.float32)
  p = p.at[0].set(1.0).at[1].set(0.0).at[2].set(0.3)  # bin edges
  y = jnp.asarray(rng.integers(0, 2, 500))
  np.testing.assert_allclose(m.expected_calibration_error(p, y), _ece_loop(p, y), rtol=1e-4)
  testing.assert_jit_matches_eager(m.reliability_diagram, p, y)


def test_auroc_matches_sklearn_with_ties():
  rng = np.random.default_rng(1)
  s = rng.integers(0, 5, 300).astype(np.float32)  # many ties
  y = (rng.uniform(size=300) < 0.3 + 0.1 * s).astype(np.int32)
  np.testing.assert_allclose(m.auroc(jnp.asarray(s), jnp.asarray(y)), roc_auc_score(y, s),
                             rtol=1e-5)
  assert float(m.auroc(jnp.array([0.1, 0.9]), jnp.array([0, 1]))) == 1.0
  assert np.isnan(float(m.auroc(jnp.array([0.1, 0.9]), jnp.array([1, 1]))))


def test_abstention_curve_loop_reference_full_coverage_and_monotone():
  rng = np.random.default_rng(2)
  u = rng.uniform(size=200).astype(np.float32)
  err = rng.integers(0, 2, 200)
  curve = m.abstention_curve(jnp.asarray(u), jnp.asarray(err))
  order = np.argsort(u, kind="stable")
  ref = [err[order[:k]].mean() for k in range(1, 201)]
  np.testing.assert_allclose(curve.error, ref, rtol=1e-6)
  np.testing.assert_allclose(curve.error[-1], err.mean(), rtol=1e-6)
  assert np.all(np.diff(np.asarray(curve.coverage)) > 0) and float(curve.coverage[-1]) == 1.0
  assert np.all(np.diff(np.asarray(curve.threshold)) >= 0)
  # When uncertainty ranks every error above every correct prediction, error never falls as
  # coverage grows, and it is zero until the first error is admitted.
  oracle = jnp.asarray(err + 0.1 * rng.uniform(size=200), jnp.float32)
  oc = m.abstention_curve(oracle, jnp.asarray(err))
  assert np.all(np.diff(np.asarray(oc.error)) >= -1e-7)
  n_right = int((err == 0).sum())
  assert float(oc.error[n_right - 1]) == 0.0
  assert float(m.error_at_coverage(oc, 1.0)) == pytest.approx(err.mean())
  assert float(oc.area) < float(curve.area)


def test_abstain_withholds_the_most_uncertain():
  prob = jnp.array([0.9, 0.2, 0.6, 0.4, 0.7])
  unc = jnp.array([0.05, 0.3, 0.01, 0.2, 0.1])
  np.testing.assert_array_equal(m.abstain(prob, unc, 0.6), [1, -1, 1, -1, 1])
  np.testing.assert_array_equal(m.abstain(prob, unc, 1.0), [1, 0, 1, 0, 1])
  err = jnp.array([0, 1, 1, 0, 0])
  kept = np.asarray(m.abstain(prob, unc, 0.6)) >= 0
  curve = m.abstention_curve(unc, err)
  assert float(m.error_at_coverage(curve, 0.6)) == pytest.approx(np.asarray(err)[kept].mean())
  with pytest.raises(ValueError, match="uncertainty must have shape"):
    m.abstain(prob, unc[:3], 0.5)


def test_metric_inputs_are_validated():
  with pytest.raises(ValueError, match="labels must have shape"):
    m.expected_calibration_error(jnp.ones(3), jnp.ones(4))
  with pytest.raises(ValueError, match="scores must have rank 1"):
    m.auroc(jnp.ones((3, 1)), jnp.ones(3))
  with pytest.raises(ValueError, match="num_bins"):
    m.reliability_diagram(jnp.ones(3), jnp.ones(3), num_bins=0)
  with pytest.raises(ValueError, match="coverage"):
    m.error_at_coverage(m.abstention_curve(jnp.ones(3), jnp.ones(3)), 0.0)


def test_nan_score_gives_nan_auroc_not_half():
  y = jnp.asarray([0, 1, 0, 1])
  s = jnp.asarray([0.1, jnp.nan, 0.3, 0.8])
  assert np.isnan(float(m.auroc(s, y)))
  assert np.isnan(float(jax.jit(m.auroc)(s, y)))
  assert np.isnan(float(m.auroc(jnp.full((4,), jnp.nan), y)))
  # ±inf scores still rank.
  assert float(m.auroc(jnp.asarray([-jnp.inf, jnp.inf, 2.0, 1.0]), y)) == 0.75


@pytest.mark.parametrize("bad", [1.2, -0.1, float("nan")])
def test_ece_rejects_non_probabilities(bad):
  p = jnp.asarray([0.2, 0.7, bad, 0.5])
  y = jnp.asarray([0, 1, 1, 0])
  with pytest.raises(ValueError, match=r"prob must be probabilities in \[0, 1\]"):
    m.expected_calibration_error(p, y)
  with pytest.raises(ValueError, match="prob"):
    m.reliability_diagram(p, y)
  # Under jit the values are unknown at trace time: the ECE is NaN, never a finite number.
  assert np.isnan(float(jax.jit(m.expected_calibration_error)(p, y)))


def test_metrics_reject_non_binary_labels_and_nan_uncertainty():
  p = jnp.asarray([0.2, 0.7, 0.5])
  with pytest.raises(ValueError, match="labels must be binary"):
    m.auroc(p, jnp.asarray([0, 2, 1]))
  with pytest.raises(ValueError, match="labels must be binary"):
    m.expected_calibration_error(p, jnp.asarray([0.0, 0.5, 1.0]))
  with pytest.raises(ValueError, match="uncertainty contains NaN"):
    m.abstention_curve(jnp.asarray([0.1, jnp.nan, 0.2]), jnp.asarray([0, 1, 0]))

"""Evaluation of calibrated, abstaining predictions (Heo et al., NeurIPS 2018, Section 4).

* :func:`auroc` — area under the ROC curve (Mann–Whitney statistic with tied ranks averaged).
* :func:`expected_calibration_error` / :func:`reliability_diagram` — ECE over ``num_bins`` equal-width
  bins of the predicted probability of the positive class (10 bins in the paper):
  ``ECE = Σ_b (n_b / N) |mean(y_b) − mean(p_b)|``.
* :func:`abstention_curve` — error rate against coverage when the most uncertain predictions are
  withheld ("I don't know"), the paper's Figure 5 analysis.

All functions are pure ``jax.numpy`` and jit-compatible. Concrete bad inputs raise (probabilities
outside ``[0, 1]``, non-binary labels, NaN uncertainties); under ``jit`` the checks cannot see
values, so a NaN score or an out-of-range probability makes the metric NaN instead of a finite
wrong number.
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers._src.validation import check_array, is_concrete


def _check_pair(prob, labels, prob_name="prob", labels_name="labels"):
  check_array(prob, prob_name, ndim=1, dtype_kind="f")
  check_array(labels, labels_name, ndim=1, shape=prob.shape, dtype_kind="biuf")
  chex.assert_rank([prob, labels], [1, 1])
  if prob.shape[0] == 0:
    raise ValueError(f"{prob_name} must not be empty")
  if is_concrete(labels):
    lab = np.asarray(labels, np.float64)
    if not np.all((lab == 0) | (lab == 1)):
      raise ValueError(f"{labels_name} must be binary (0/1), got values "
                       f"{np.unique(lab)[:5].tolist()}")


def _check_probabilities(prob, name):
  if is_concrete(prob):
    p = np.asarray(prob, np.float64)
    if np.any(np.isnan(p)) or np.any(p < 0.0) or np.any(p > 1.0):
      bad = p[np.isnan(p) | (p < 0.0) | (p > 1.0)]
      raise ValueError(f"{name} must be probabilities in [0, 1], got {bad[:3].tolist()}")


def auroc(scores: jax.Array, labels: jax.Array) -> jax.Array:
  """Area under the ROC curve of ``scores`` for binary ``labels`` (ties count one half).

  Returns NaN when only one class is present or any score is NaN (a NaN has no rank; ``±inf``
  ranks normally).
  """
  _check_pair(scores, labels, "scores")
  y = labels.astype(bool)
  s = jnp.sort(scores)
  less = jnp.searchsorted(s, scores, side="left")
  leq = jnp.searchsorted(s, scores, side="right")
  ranks = (less + leq + 1).astype(jnp.float32) / 2.0  # 1-based average ranks
  n_pos = jnp.sum(y).astype(jnp.float32)
  n_neg = y.shape[0] - n_pos
  u = jnp.sum(jnp.where(y, ranks, 0.0)) - n_pos * (n_pos + 1) / 2
  ok = (n_pos > 0) & (n_neg > 0) & ~jnp.any(jnp.isnan(scores))
  return jnp.where(ok, u / (n_pos * n_neg), jnp.nan)


class ReliabilityDiagram(NamedTuple):
  """Per-bin statistics of a reliability diagram (bins over the predicted probability).

  Attributes:
    bin_edges: ``(num_bins + 1,)`` edges in ``[0, 1]``.
    confidence: ``(num_bins,)`` mean predicted probability per bin (NaN for an empty bin).
    frequency: ``(num_bins,)`` observed frequency of positives per bin (NaN for an empty bin).
    count: ``(num_bins,)`` number of predictions per bin.
    ece: scalar expected calibration error (a fraction; ×100 for %).
  """

  bin_edges: jax.Array
  confidence: jax.Array
  frequency: jax.Array
  count: jax.Array
  ece: jax.Array


def reliability_diagram(prob: jax.Array, labels: jax.Array, num_bins: int = 10
                        ) -> ReliabilityDiagram:
  """Reliability diagram and ECE of predicted probabilities ``prob`` for binary ``labels``.

  Args:
    prob: ``(N,)`` predicted probabilities of the positive class in ``[0, 1]``.
    labels: ``(N,)`` binary labels.
    num_bins: number of equal-width bins (10 in the paper); ``p = 1`` falls in the last bin.

  Raises:
    ValueError: ``prob`` outside ``[0, 1]`` or NaN, non-binary ``labels``, bad ``num_bins``
      (concrete inputs; under ``jit`` such ``prob`` gives a NaN ``ece``).
  """
  _check_pair(prob, labels)
  _check_probabilities(prob, "prob")
  if not isinstance(num_bins, int) or num_bins < 1:
    raise ValueError(f"num_bins must be a positive int, got {num_bins!r}")
  prob = prob.astype(jnp.float32)
  y = labels.astype(jnp.float32)
  idx = jnp.clip(jnp.floor(prob * num_bins).astype(jnp.int32), 0, num_bins - 1)
  count = jax.ops.segment_sum(jnp.ones_like(prob), idx, num_segments=num_bins)
  sum_p = jax.ops.segment_sum(prob, idx, num_segments=num_bins)
  sum_y = jax.ops.segment_sum(y, idx, num_segments=num_bins)
  safe = jnp.maximum(count, 1.0)
  valid = jnp.all((prob >= 0.0) & (prob <= 1.0))  # false for NaN too
  ece = jnp.where(valid, jnp.sum(jnp.abs(sum_y - sum_p)) / prob.shape[0], jnp.nan)
  nan = jnp.full_like(count, jnp.nan)
  return ReliabilityDiagram(
      bin_edges=jnp.linspace(0.0, 1.0, num_bins + 1),
      confidence=jnp.where(count > 0, sum_p / safe, nan),
      frequency=jnp.where(count > 0, sum_y / safe, nan),
      count=count, ece=ece)


def expected_calibration_error(prob: jax.Array, labels: jax.Array, num_bins: int = 10
                               ) -> jax.Array:
  """ECE (a fraction in ``[0, 1]``) over ``num_bins`` equal-width probability bins; see module doc."""
  return reliability_diagram(prob, labels, num_bins).ece


def ece_noise_floor(key: jax.Array, prob: jax.Array, num_bins: int = 10,
                    num_draws: int = 256) -> jax.Array:
  """ECE a *perfectly calibrated* model with these predictions would score on this test set.

  Labels are drawn ``y_i ~ Bernoulli(prob_i)`` ``num_draws`` times and the mean ECE (a fraction)
  is returned: the finite-sample floor under which a measured ECE says nothing about calibration.
  For ``N`` predictions of 0.5 it is ``E|Binomial(N, ½)/N − ½| ≈ √(1/(2πN))``.

  Raises:
    ValueError: ``prob`` outside ``[0, 1]`` or NaN (concrete inputs), bad ``num_bins`` or
      ``num_draws``.
  """
  _check_probabilities(prob, "prob")
  for name, v in (("num_bins", num_bins), ("num_draws", num_draws)):
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
      raise ValueError(f"{name} must be a positive int, got {v!r}")
  prob = jnp.asarray(prob, jnp.float32)
  labels = jax.random.bernoulli(key, prob, (num_draws,) + prob.shape).astype(jnp.int32)
  eces = jax.vmap(lambda y: reliability_diagram(prob, y, num_bins).ece)(labels)
  return jnp.mean(eces)


class AbstentionCurve(NamedTuple):
  """Error against coverage when the most uncertain predictions are withheld.

  Attributes:
    coverage: ``(N,)`` fraction of predictions kept, ``1/N, 2/N, ..., 1``.
    error: ``(N,)`` error rate on the kept (most certain) predictions at each coverage.
    threshold: ``(N,)`` the uncertainty of the last kept prediction: abstaining on everything
      with uncertainty above it gives that coverage.
    area: mean error over coverages (lower is better).
  """

  coverage: jax.Array
  error: jax.Array
  threshold: jax.Array
  area: jax.Array


def abstention_curve(uncertainty: jax.Array, errors: jax.Array) -> AbstentionCurve:
  """Error/coverage curve: keep the ``k`` least uncertain predictions for ``k = 1..N``.

  Ties in ``uncertainty`` are kept in input order (stable sort). At full coverage the error equals
  the overall error rate.

  Args:
    uncertainty: ``(N,)`` uncertainty per prediction (e.g. MC predictive variance).
    errors: ``(N,)`` 1 where the prediction is wrong, 0 where right.
  """
  _check_pair(uncertainty, errors, "uncertainty", "errors")
  if is_concrete(uncertainty) and np.any(np.isnan(np.asarray(uncertainty, np.float64))):
    raise ValueError("uncertainty contains NaN entries: they cannot be ordered")
  order = jnp.argsort(uncertainty, stable=True)
  kept_errors = jnp.cumsum(errors.astype(jnp.float32)[order])
  n = uncertainty.shape[0]
  k = jnp.arange(1, n + 1, dtype=jnp.float32)
  error = kept_errors / k
  return AbstentionCurve(coverage=k / n, error=error, threshold=uncertainty[order],
                         area=jnp.mean(error))


def error_at_coverage(curve: AbstentionCurve, coverage: float) -> jax.Array:
  """Error rate of an :class:`AbstentionCurve` when keeping the first ``coverage`` fraction."""
  if not 0.0 < coverage <= 1.0:
    raise ValueError(f"coverage must be in (0, 1], got {coverage}")
  n = curve.coverage.shape[0]
  k = max(int(round(coverage * n)), 1)
  return curve.error[k - 1]


def abstain(prob: jax.Array, uncertainty: jax.Array, coverage: float = 0.8) -> jax.Array:
  """Predictions with "I don't know": ``1``/``0`` for the ``coverage`` fraction of least uncertain
  inputs, ``-1`` for the rest (ties in ``uncertainty`` broken by input order, as in
  :func:`abstention_curve`, so the kept predictions' error is ``error_at_coverage``).

  Args:
    prob: ``(N,)`` predicted probabilities.
    uncertainty: ``(N,)`` their uncertainty (e.g. MC predictive variance).
    coverage: fraction of predictions to keep, in ``(0, 1]``.
  """
  check_array(prob, "prob", ndim=1, dtype_kind="f")
  check_array(uncertainty, "uncertainty", ndim=1, shape=prob.shape, dtype_kind="f")
  _check_probabilities(prob, "prob")
  if is_concrete(uncertainty) and np.any(np.isnan(np.asarray(uncertainty, np.float64))):
    raise ValueError("uncertainty contains NaN entries: they cannot be ordered")
  if not 0.0 < coverage <= 1.0:
    raise ValueError(f"coverage must be in (0, 1], got {coverage}")
  n = prob.shape[0]
  k = max(int(round(coverage * n)), 1)
  rank = jnp.empty((n,), jnp.int32).at[jnp.argsort(uncertainty, stable=True)].set(
      jnp.arange(n, dtype=jnp.int32))
  return jnp.where(rank < k, (prob > 0.5).astype(jnp.int32), -1)

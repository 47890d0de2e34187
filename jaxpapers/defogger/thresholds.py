"""Existence thresholds tuned on validation games, and held-out evaluation with them.

Synnaeve et al., "Forward Modeling for Partial Observation Strategy Games — A StarCraft Defogger",
NeurIPS 2018.
"""

from __future__ import annotations

from jaxpapers.defogger.baselines import MapStatistics, baseline_predictions
from jaxpapers.defogger.dataset import Dataset
from jaxpapers.defogger.predict import evaluate_predictions, predict

THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def tune_threshold(probs, data: Dataset, s: int, key: str, thresholds=THRESHOLDS) -> float:
  """The existence threshold of ``probs = (counts, exist_prob, bt_prob)`` maximising the ``key``
  F1 (``"hid_u"``, ``"nmy_u"`` or ``"op_bt"``) at horizon ``s`` on ``data``.

  Raises:
    ValueError: on an unknown ``key`` or an empty ``thresholds``.
  """
  if key not in ("hid_u", "nmy_u", "op_bt"):
    raise ValueError(f"key must be 'hid_u', 'nmy_u' or 'op_bt', got {key!r}")
  if not len(thresholds):
    raise ValueError("thresholds must not be empty")
  best, best_t = -1.0, thresholds[0]
  for thr in thresholds:
    p = probs[0], probs[1] > thr, probs[2] > thr
    m = evaluate_predictions(*p, data, s)
    if m[key] > best:
      best, best_t = m[key], thr
  return best_t


def tune_map_threshold(map_stats: MapStatistics, val_set: Dataset,
                       thresholds=THRESHOLDS) -> float:
  """The per-map statistics' existence threshold maximising ``hid_u`` F1 at s = 0 on ``val_set``."""
  best, best_t = -1.0, thresholds[0]
  for thr in thresholds:
    m = evaluate_predictions(*baseline_predictions(val_set, map_stats, thr)["map_statistics"],
                             val_set, 0)["hid_u"]
    if m > best:
      best, best_t = m, thr
  return best_t


def tune_model_thresholds(module, params, config, val_set: Dataset):
  """The model's existence thresholds tuned on ``val_set``, one per horizon of
  ``config.horizons``: ``(hid_u thresholds, op_bt thresholds)`` (each maximising that F1)."""
  val_pred = predict(module, params, val_set, config)
  thr_u, thr_bt = [], []
  for k, s in enumerate(config.horizons):
    vp = (val_pred[0][..., k, :], val_pred[1][..., k, :], val_pred[2][:, :, k])
    thr_u.append(tune_threshold(vp, val_set, s, "hid_u"))
    thr_bt.append(tune_threshold(vp, val_set, s, "op_bt"))
  return thr_u, thr_bt


def evaluate_with_thresholds(module, params, config, test_set: Dataset, thr_u, thr_bt):
  """Held-out metrics ``{s: metrics}`` at every horizon of ``config.horizons`` with given
  existence thresholds (e.g. tuned in distribution and applied to other map sizes or lengths).

  Raises:
    ValueError: if the thresholds do not have one entry per horizon.
  """
  if len(thr_u) != len(config.horizons) or len(thr_bt) != len(config.horizons):
    raise ValueError(f"thr_u and thr_bt need one threshold per horizon {list(config.horizons)}, "
                     f"got {len(thr_u)} and {len(thr_bt)}")
  test_pred = predict(module, params, test_set, config)
  out = {}
  for k, s in enumerate(config.horizons):
    exist = test_pred[1][..., k, :] > thr_u[k]
    out[s] = evaluate_predictions(test_pred[0][..., k, :] * exist, exist,
                                  test_pred[2][:, :, k] > thr_bt[k], test_set, s)
  return out


def evaluate_model(module, params, config, val_set: Dataset, test_set: Dataset):
  """Held-out metrics of a trained model at every horizon of ``config.horizons``.

  Existence thresholds (for ``hid_u`` and for ``op_bt``) are tuned on ``val_set``; returns
  ``({s: metrics on test_set}, [hid_u threshold per horizon])``.
  """
  thr_u, thr_bt = tune_model_thresholds(module, params, config, val_set)
  return evaluate_with_thresholds(module, params, config, test_set, thr_u, thr_bt), thr_u

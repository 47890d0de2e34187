"""Small statistics shared by the reproductions: means with Student-t intervals over seeds/folds."""

from __future__ import annotations

import math

import numpy as np
import scipy.stats


def mean_interval(values, confidence: float = 0.95) -> dict:
  """``{"mean", "se", "low", "high", "n", "values"}`` of ``values`` (one number per seed or
  fold): the standard error ``std(ddof=1) / √n`` and the two-sided Student-t interval with
  ``n − 1`` degrees of freedom. With one value the interval is ``(-inf, inf)``; a NaN anywhere
  makes every figure NaN (never a finite wrong number).

  Raises:
    ValueError: if ``values`` is empty or not 1-D, or ``confidence`` is not in ``(0, 1)``.
  """
  v = np.asarray(values, np.float64)
  if v.ndim != 1 or v.size == 0:
    raise ValueError(f"values must be a non-empty 1-D sequence, got shape {v.shape}")
  if not 0.0 < float(confidence) < 1.0:
    raise ValueError(f"confidence must be in (0, 1), got {confidence}")
  mean = float(v.mean())
  if v.size == 1:
    se, half = float("nan") if math.isnan(mean) else 0.0, math.inf
  else:
    se = float(v.std(ddof=1) / math.sqrt(v.size))
    half = float(scipy.stats.t.ppf(0.5 + confidence / 2, v.size - 1)) * se
  if math.isnan(mean):
    half = se = float("nan")
  return {"mean": mean, "se": se, "low": mean - half, "high": mean + half, "n": int(v.size),
          "values": [float(x) for x in v]}


def interval_verdict(interval: dict, target: float, higher_is_better: bool = True) -> str:
  """``"pass"`` when the mean reaches ``target`` and the interval excludes 0 on the good side,
  ``"fail"`` when the whole interval misses ``target``, else ``"inconclusive"`` (NaN: fail).

  ``interval`` is a :func:`mean_interval` of a paired difference (method − baseline, or baseline −
  method for a lower-is-better metric when ``higher_is_better`` is false, which flips signs).
  """
  sign = 1.0 if higher_is_better else -1.0
  mean, low, high = (sign * interval[k] for k in ("mean", "low", "high"))
  if sign < 0:
    low, high = high, low
  if any(math.isnan(x) for x in (mean, low, high)):
    return "fail"
  if mean >= target and low > 0.0:
    return "pass"
  if high < target:
    return "fail"
  return "inconclusive"


def steps_to_fraction(curve, fraction: float = 0.9, *, window: int = 50,
                      final_fraction: float = 0.1) -> int:
  """Learning speed: the first step at which the ``window``-step moving average of ``curve``
  reaches ``fraction`` of its final value (the mean of the last ``final_fraction`` of the steps).

  ``curve[i]`` is the metric after step ``i + 1`` (e.g. the training accuracy of each step's
  batch); the result counts steps from 1, and is ``len(curve)`` if the average never gets there.
  A NaN anywhere raises: an unfinished or diverged curve has no learning speed.

  Raises:
    ValueError: ``curve`` empty, not 1-D or not finite; ``fraction`` / ``final_fraction`` not in
      (0, 1]; ``window`` < 1.
  """
  c = np.asarray(curve, np.float64)
  if c.ndim != 1 or c.size == 0:
    raise ValueError(f"curve must be a non-empty 1-D sequence, got shape {c.shape}")
  if not np.all(np.isfinite(c)):
    raise ValueError("curve must be finite (a NaN or inf step has no learning speed)")
  for name, v in (("fraction", fraction), ("final_fraction", final_fraction)):
    if not 0.0 < float(v) <= 1.0:
      raise ValueError(f"{name} must be in (0, 1], got {v}")
  if int(window) != window or window < 1:
    raise ValueError(f"window must be a positive int, got {window!r}")
  w = min(int(window), c.size)
  final = float(c[-max(1, int(round(final_fraction * c.size))):].mean())
  smooth = np.convolve(c, np.ones(w) / w, mode="valid")  # smooth[j]: steps j+1 … j+w
  hit = np.flatnonzero(smooth >= fraction * final)
  return int(hit[0] + w) if hit.size else int(c.size)

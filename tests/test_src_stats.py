"""Shared statistics: Student-t intervals and the learning-speed measure."""

import numpy as np
import pytest

from jaxpapers._src import stats


def test_mean_interval_matches_a_hand_computed_t_interval():
  out = stats.mean_interval([1.0, 2.0, 3.0])
  # mean 2, sd 1, se 1/√3, t_{0.975, 2} = 4.30265273 (tables)
  half = 4.30265273 / np.sqrt(3)
  assert out["mean"] == 2.0 and out["n"] == 3
  np.testing.assert_allclose([out["low"], out["high"]], [2 - half, 2 + half], rtol=1e-8)


def test_steps_to_fraction_on_a_hand_made_curve():
  # 0 for 100 steps, then a linear ramp to 1 over 100 steps, then 1 for 800 steps. Final value 1;
  # with window 1 the first step at ≥ 0.9 is the ramp's step 90 (value 90/100): step 100 + 90.
  curve = np.concatenate([np.zeros(100), np.arange(1, 101) / 100, np.ones(800)])
  assert stats.steps_to_fraction(curve, 0.9, window=1) == 190
  # A window of 20 delays it: the average of steps s-19 … s reaches 0.9 at s = 199.5 → 200.
  assert stats.steps_to_fraction(curve, 0.9, window=20) == 200
  # A flat curve reaches its final value as soon as the first window is full.
  assert stats.steps_to_fraction(np.zeros(10), 0.9, window=3) == 3
  assert stats.steps_to_fraction(np.linspace(0, 1, 11)[1:], 1.0, window=5,
                                 final_fraction=0.1) == 10


def test_steps_to_fraction_rejects_bad_input():
  with pytest.raises(ValueError, match="curve must be finite"):
    stats.steps_to_fraction([0.1, np.nan, 0.5])
  with pytest.raises(ValueError, match="non-empty 1-D"):
    stats.steps_to_fraction([])
  with pytest.raises(ValueError, match="fraction must be in"):
    stats.steps_to_fraction([0.1, 0.2], 1.5)
  with pytest.raises(ValueError, match="window must be a positive int"):
    stats.steps_to_fraction([0.1, 0.2], window=0)

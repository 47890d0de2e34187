"""Defogger: a short training run on held-out synthetic games (the issue's learning checks).

The cpu configuration cut to 48 training games and 600 updates of 4 games (Adam 3e-3), horizons
s = 0 and 3; existence thresholds tuned on 8 validation games, metrics on 16 test games.
Measured (seed 0): ml hid_u F1 0.492 / 0.479 at s = 0 / 3 vs the best rule-based baseline
(previously seen) 0.469 / 0.404; without memory channels, recurrent 0.494 / 0.467 vs
non-recurrent 0.419 / 0.389.
"""

import functools

import jax
import pytest

from jaxpapers.defogger import config as config_lib
from jaxpapers.defogger import train

pytestmark = pytest.mark.slow

HORIZONS = (0, 3)


@functools.cache
def _setup():
  c = config_lib.get_config("cpu")
  c.num_steps = 600
  c.train_games, c.val_games, c.test_games = 48, 8, 16
  c.horizons = list(HORIZONS)
  data = train.build_dataset(jax.random.key(0), c.train_games + c.val_games + c.test_games, c)
  return c, train.split_dataset(data, c.train_games, c.val_games, c.test_games)


def _hid_u(name):
  """Held-out hid_u F1 per horizon of model ``name`` (threshold tuned on validation games)."""
  c, (tr, va, te) = _setup()
  mc = train.model_config(c, name)
  module, params, hist = train.train(mc, tr, None, progress=False)
  assert hist["loss"][-50:].mean() < hist["loss"][:50].mean()
  metrics, _ = train.evaluate_model(module, params, mc, va, te)
  return {s: m["hid_u"] for s, m in metrics.items()}


def test_ml_model_beats_rule_based_baselines_and_f1_falls_with_horizon():
  _, (_, _, te) = _setup()
  base = train.baseline_predictions(te)
  ml = _hid_u("ml")
  for s in HORIZONS:
    best = max(train.evaluate_predictions(*p, te, s)["hid_u"]
               for name, p in base.items() if name in ("input_only", "memory", "previously_seen"))
    # The paper's claim itself (strictly better than the best baseline), no margin tuned on the
    # measured values: measured 0.023 / 0.075 above it at s = 0 / 3 on this seed.
    assert ml[s] > best, (s, ml, best)
  assert ml[0] >= ml[3], ml


def test_removing_recurrence_loses_hidden_unit_f1():
  # judged without memory channels, which carry the history themselves (the reference's inputs)
  recurrent = _hid_u("ml_no_memory")
  flat = _hid_u("ml_no_memory_no_recurrence")
  for s in HORIZONS:
    assert flat[s] <= recurrent[s] - 0.03, (s, recurrent, flat)

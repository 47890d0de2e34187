"""``train_and_evaluate``: the defogger experiment end to end, and its results tables.

Synnaeve et al., "Forward Modeling for Partial Observation Strategy Games — A StarCraft Defogger",
NeurIPS 2018. Generates train/validation/test games, trains the configured models, evaluates them
and the rule-based baselines on held-out games, and runs the downstream bot experiment.

Each concern lives in its own module, and this one only wires them together:
:mod:`~jaxpapers.defogger.dataset` (featurized sequences), :mod:`~jaxpapers.defogger.loss` (the
objective), :mod:`~jaxpapers.defogger.loop` (the training loop), :mod:`~jaxpapers.defogger.predict`
(predictions and metrics), :mod:`~jaxpapers.defogger.baselines` (rule-based baselines) and
:mod:`~jaxpapers.defogger.thresholds` (threshold tuning). Their public names are re-exported here
so that ``train.<name>`` keeps working.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import jax
import ml_collections
import numpy as np

from jaxpapers._src import workdir as workdir_lib
from jaxpapers.defogger import bot
from jaxpapers.defogger.baselines import MapStatistics as MapStatistics
from jaxpapers.defogger.baselines import baseline_predictions as baseline_predictions
from jaxpapers.defogger.baselines import map_statistics as map_statistics
from jaxpapers.defogger.dataset import TIME_SCALE as TIME_SCALE
from jaxpapers.defogger.dataset import Dataset as Dataset
from jaxpapers.defogger.dataset import N as N
from jaxpapers.defogger.dataset import build_dataset as build_dataset
from jaxpapers.defogger.dataset import delta_base as delta_base
from jaxpapers.defogger.dataset import feature_config as feature_config
from jaxpapers.defogger.dataset import game_config as game_config
from jaxpapers.defogger.dataset import model_inputs as model_inputs
from jaxpapers.defogger.dataset import sequence_features as sequence_features
from jaxpapers.defogger.dataset import split_dataset as split_dataset
from jaxpapers.defogger.loop import TrainState as TrainState
from jaxpapers.defogger.loop import make_optimizer as make_optimizer
from jaxpapers.defogger.loop import train as train
from jaxpapers.defogger.loss import loss_fn as loss_fn
from jaxpapers.defogger.loss import make_module as make_module
from jaxpapers.defogger.loss import unroll as unroll
from jaxpapers.defogger.predict import evaluate_predictions as evaluate_predictions
from jaxpapers.defogger.predict import gate_counts as gate_counts
from jaxpapers.defogger.predict import predict as predict
from jaxpapers.defogger.thresholds import THRESHOLDS as THRESHOLDS
from jaxpapers.defogger.thresholds import evaluate_model as evaluate_model
from jaxpapers.defogger.thresholds import tune_map_threshold as tune_map_threshold
from jaxpapers.defogger.thresholds import tune_threshold as tune_threshold


def model_config(config, name: str):
  """``config`` with the overrides of model ``name`` (``config.models[name]``) applied."""
  if name not in config.models:
    raise ValueError(f"name must be one of {list(config.models)}, got {name!r}")
  c = config.copy_and_resolve_references()
  for k, v in config.models[name].items():
    setattr(c, k, v)
  return c


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       models: dict | None = None, progress: bool = True) -> dict:
  """Generates train/validation/test games, trains the model(s), evaluates them and the
  baselines on the held-out test games, and runs the downstream bot experiment.

  Writes a results table per horizon to ``<workdir>/results.json`` (updated as each model
  finishes). Existence thresholds (model and per-map statistics) are tuned on the validation
  games. When ``models`` is a dict it receives ``{name: (module, params, config, thresholds)}``.
  """
  workdir_lib.prepare(workdir)  # a clear error naming the path before any work
  key = jax.random.key(config.seed)
  t0 = time.perf_counter()
  data = build_dataset(jax.random.fold_in(key, 0),
                       config.train_games + config.val_games + config.test_games, config)
  train_set, val_set, test_set = split_dataset(data, config.train_games, config.val_games,
                                               config.test_games)
  jax.block_until_ready(test_set)
  results: dict[str, Any] = {"data_seconds": time.perf_counter() - t0, "horizons": {}}
  map_stats = map_statistics(train_set)
  map_thr = tune_map_threshold(map_stats, val_set)
  base = baseline_predictions(test_set, map_stats, map_thr)
  for s in config.horizons:
    results["horizons"][str(s)] = {name: evaluate_predictions(*p, test_set, s) for name, p in base.items()}
  results["thresholds"] = {"map_statistics": map_thr}
  out_path = os.path.join(workdir, "results.json")

  def save():
    with open(out_path, "w", encoding="utf-8") as f:
      json.dump(results, f, indent=1)

  save()
  bot_model = None
  for name in config.models:
    c = model_config(config, name)
    t1 = time.perf_counter()
    module, params, hist = train(c, train_set, os.path.join(workdir, name), progress=progress)
    results.setdefault("train_seconds", {})[name] = time.perf_counter() - t1
    metrics_by_horizon, thresholds = evaluate_model(module, params, c, val_set, test_set)
    for s, m in metrics_by_horizon.items():
      results["horizons"][str(s)][name] = m
    results["thresholds"][name] = thresholds
    results.setdefault("final_loss", {})[name] = float(np.mean(hist["loss"][-10:]))
    if models is not None:
      models[name] = (module, params, c, thresholds)
    if name == "ml":
      bot_model = (module, params, c, thresholds)
    save()
  # the downstream bot experiment (win rates with / without the defogger) on fresh games
  module, params, c, thresholds = bot_model if bot_model is not None else (None, None, config, None)
  t2 = time.perf_counter()
  results["bot"] = bot.evaluate_bots(jax.random.fold_in(key, 7), int(config.bot_games), c, module,
                                     params)
  results["bot_seconds"] = time.perf_counter() - t2
  results["total_seconds"] = time.perf_counter() - t0
  save()
  return results


def format_tables(results: dict) -> str:
  """One markdown table per horizon: method | op_bt F1 | hid_u F1 | nmy_u F1 | L1 | L1 summed |
  L1 hidden (L1: mean per cell and type; L1 summed: the reference's form, summed over cells and
  types per step and averaged over steps and games)."""
  if not isinstance(results, dict) or "horizons" not in results:
    raise ValueError("results must be a dict from train_and_evaluate (with a 'horizons' table)")
  lines = []
  for s, rows in results["horizons"].items():
    lines += [f"\nhorizon s = {s}",
              "| method | op_bt F1 | hid_u F1 | nmy_u F1 | L1 | L1 summed | L1 hidden |",
              "|---|---|---|---|---|---|---|"]
    for name, m in rows.items():
      l1_sum = f"{m['l1_sum']:.3f}" if "l1_sum" in m else "—"
      lines.append(f"| {name} | {m['op_bt']:.3f} | {m['hid_u']:.3f} | {m['nmy_u']:.3f} | "
                   f"{m['l1']:.4f} | {l1_sum} | {m['l1_hidden']:.4f} |")
  if "bot" in results:
    b = results["bot"]
    lines += [f"\ndownstream bot ({b['num_games']} games, decisions at frame {b['decision_frame']})",
              "| bot | win rate | switch to keep/inf/heavy/air | composition L1 | target error |",
              "|---|---|---|---|---|"]
    for name, w in b["win_rate"].items():
      if name == "scripted":
        lines.append(f"| scripted | {w:.3f} | — | — | — |")
        continue
      comp = b["composition_error"].get(name)
      lines.append(f"| {name} | {w:.3f} | {'/'.join(map(str, b['choice'][name]))} | "
                   f"{'—' if comp is None else f'{comp:.1f}'} | {b['target_error'][name]:.1f} |")
  return "\n".join(lines)

"""The defogger over training seeds and out of distribution: ml and str against the baselines.

Synnaeve et al., "Forward Modeling for Partial Observation Strategy Games — A StarCraft Defogger",
NeurIPS 2018. For each seed: fresh train/validation/test games, the configured models trained on
them, existence thresholds tuned on the validation games (in distribution), then held-out metrics
of the models and of every rule-based baseline on test games of each *condition*: the training
distribution, and maps of other sizes or games of other lengths (``CONDITIONS``). The models'
thresholds stay the in-distribution ones; the per-map statistics baseline, which is a table
indexed by step and cell and cannot transfer, is refitted on as many training games of each
condition as the models were trained on (an advantage the models do not get).

Every seed's results are written to ``<workdir>/seed<k>.json`` as soon as they exist (with the
configuration's hash: a folder of another configuration is refused) and each model checkpoints
while it trains, so an interrupted study resumes where it stopped.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import jax
import ml_collections

from jaxpapers._src import checkpoint
from jaxpapers._src import stats as stats_lib
from jaxpapers._src import workdir as workdir_lib
from jaxpapers._src.fileio import read_json_for_config, write_json_atomic
from jaxpapers.defogger import loop
from jaxpapers.defogger import thresholds as thresholds_lib
from jaxpapers.defogger.baselines import baseline_predictions, map_statistics
from jaxpapers.defogger.dataset import build_dataset, split_dataset
from jaxpapers.defogger.predict import evaluate_predictions

BASELINES = ("input_only", "memory", "memory_tech", "previously_seen", "map_statistics")

# Test conditions: overrides of the training configuration. Map sides 48 (denser: the same units
# on 56 % of the area) and 96 (sparser); games twice as long as the training games.
CONDITIONS = {
    "in_distribution": {},
    "map48": {"map_size": 48},
    "map96": {"map_size": 96},
    "frames_x2": {"num_frames": 320},
}


def _model_config(config, name: str, seed: int):
  c = config.copy_and_resolve_references()
  for k, v in config.models[name].items():
    setattr(c, k, v)
  c.seed = int(seed)
  return c


def _condition_config(config, overrides: Mapping):
  c = config.copy_and_resolve_references()
  for k, v in overrides.items():
    if k not in c:
      raise ValueError(f"condition override {k!r} is not a config field")
    setattr(c, k, v)
  return c


def _study_hash(config, models, conditions) -> str:
  flat = checkpoint.flatten_config(config, ignore=("seed", "progress", "chunk_size", "bot_games"))
  flat["study_models"] = list(models)
  flat["study_conditions"] = {k: dict(v) for k, v in conditions.items()}
  return checkpoint.config_hash(flat)


def run_seed(config: ml_collections.ConfigDict, seed: int, workdir: str, *,
             models: Sequence[str] = ("ml", "str"), conditions: Mapping = CONDITIONS,
             progress: bool = False) -> dict:
  """One seed of the study: ``{condition: {str(s): {method: metrics}}}`` plus ``"train"``
  (final losses and update counts) and ``"thresholds"``; cached in ``<workdir>/seed<k>.json``.

  Raises:
    ValueError: on an unknown model name or condition field, or when ``workdir`` holds the
      results of another configuration.
  """
  for name in models:
    if name not in config.models:
      raise ValueError(f"models must be names in config.models {list(config.models)}, got "
                       f"{name!r}")
  workdir_lib.prepare(workdir)
  digest = _study_hash(config, models, conditions)
  path = os.path.join(workdir, f"seed{int(seed)}.json")
  cached = read_json_for_config(path, digest)
  if cached is not None and cached.get("complete"):
    return cached
  key = jax.random.key(int(seed))
  n_tr, n_va, n_te = config.train_games, config.val_games, config.test_games
  data = build_dataset(jax.random.fold_in(key, 0), n_tr + n_va + n_te, config)
  train_set, val_set, test_set = split_dataset(data, n_tr, n_va, n_te)
  map_thr = thresholds_lib.tune_map_threshold(map_statistics(train_set), val_set)
  out = {"config_hash": digest, "seed": int(seed), "complete": False, "train": {},
         "thresholds": {"map_statistics": map_thr}}
  trained = {}
  for name in models:
    c = _model_config(config, name, seed)
    module, params, hist = loop.train(c, train_set, os.path.join(workdir, f"seed{seed}_{name}"),
                                      progress=progress)
    thr_u, thr_bt = thresholds_lib.tune_model_thresholds(module, params, c, val_set)
    trained[name] = (module, params, c, thr_u, thr_bt)
    out["train"][name] = {"updates": int(c.num_steps), "final_loss": float(hist["loss"][-10:].mean())}
    out["thresholds"][name] = {"hid_u": thr_u, "op_bt": thr_bt}
  for i, (cond, overrides) in enumerate(conditions.items()):
    if not overrides:
      test, stats_train = test_set, train_set
    else:
      # one generator call (one compilation) per condition: statistics games + test games
      cc = _condition_config(config, overrides)
      extra = build_dataset(jax.random.fold_in(key, 1000 + i), n_tr + n_te, cc)
      stats_train, test = split_dataset(extra, n_tr, n_te)
    base = baseline_predictions(test, map_statistics(stats_train), map_thr)
    rows = {str(s): {b: evaluate_predictions(*p, test, s) for b, p in base.items()}
            for s in config.horizons}
    for name, (module, params, c, thr_u, thr_bt) in trained.items():
      for s, m in thresholds_lib.evaluate_with_thresholds(module, params, c, test, thr_u, thr_bt).items():
        rows[str(s)][name] = m
    out[cond] = rows
    write_json_atomic(path, out)  # finished conditions are never lost
  out["complete"] = True
  write_json_atomic(path, out)
  return out


def summarize(per_seed: Sequence[Mapping], models: Sequence[str] = ("ml", "str"),
              baselines: Sequence[str] = BASELINES) -> dict:
  """Paired differences over seeds, per condition, horizon and model:
  ``{cond: {s: {model: {"hid_u": mean_interval, "hid_u_margin": ..., "l1_hidden_diff": ...,
  "best_baseline": [...]}}}}``. The margin is the model's hid_u F1 minus the best baseline's on
  the same seed's games; the L1 difference is the model's hidden-cell count L1 minus the lowest
  baseline's (negative: the model's counts are better)."""
  if not per_seed:
    raise ValueError("per_seed must hold at least one seed's results")
  conds = [k for k in per_seed[0] if isinstance(per_seed[0][k], dict)
           and k not in ("train", "thresholds")]
  out = {}
  for cond in conds:
    out[cond] = {}
    for s in per_seed[0][cond]:
      out[cond][s] = {}
      for name in models:
        margins, l1d, f1, best = [], [], [], []
        for r in per_seed:
          rows = r[cond][s]
          b = max(baselines, key=lambda k: rows[k]["hid_u"])
          best.append(b)
          f1.append(rows[name]["hid_u"])
          margins.append(rows[name]["hid_u"] - rows[b]["hid_u"])
          l1d.append(rows[name]["l1_hidden"] - min(rows[k]["l1_hidden"] for k in baselines))
        out[cond][s][name] = {"hid_u": stats_lib.mean_interval(f1),
                              "hid_u_margin": stats_lib.mean_interval(margins),
                              "l1_hidden_diff": stats_lib.mean_interval(l1d),
                              "best_baseline": best}
  return out


def run_study(config: ml_collections.ConfigDict, workdir: str, seeds: Sequence[int], *,
              models: Sequence[str] = ("ml", "str"), conditions: Mapping = CONDITIONS,
              progress: bool = False) -> dict:
  """Every seed of the study (see :func:`run_seed`) and their :func:`summarize`."""
  per_seed = [run_seed(config, s, workdir, models=models, conditions=conditions,
                       progress=progress) for s in seeds]
  return {"per_seed": per_seed, "summary": summarize(per_seed, models)}

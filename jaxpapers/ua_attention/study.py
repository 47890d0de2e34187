"""Seeds × variants study behind the registered PhysioNet rows: every variant trained on the same
split per seed, per-seed results cached, intervals over seeds and paired differences.

Each seed draws its own train/validation/test split and initialisation; every variant of that seed
sees the same split, so differences between variants are paired. A seed's results are written to
``<workdir>/seed<k>.json`` after each variant (finished variants are never lost) together with the
configuration's hash: a folder holding another configuration is refused.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import ml_collections
import numpy as np

from jaxpapers._src import checkpoint
from jaxpapers._src import workdir as workdir_lib
from jaxpapers._src.fileio import read_json_for_config, write_json_atomic
from jaxpapers._src.prng import as_key
from jaxpapers._src.stats import mean_interval
from jaxpapers.ua_attention import train as train_lib

# Metrics summarised per variant; "lower" ones are better when smaller.
METRICS = ("auroc", "ece", "ece_floor", "abstention_area", "error_at_80", "error_at_50", "error",
           "epochs", "best_epoch", "final_val_loss", "best_val_loss", "train_seconds")


def study_hash(config: ml_collections.ConfigDict) -> str:
  """Hash of everything in ``config`` that changes a seed's results (not the seed itself)."""
  flat = checkpoint.flatten_config(config, ignore=("seed", "cache_dir", "data_dir"))
  return checkpoint.config_hash(flat)


def run_seed(config: ml_collections.ConfigDict, seed: int, workdir: str, *,
             progress: bool = False) -> dict:
  """Trains and evaluates every variant of ``config.variants`` on seed ``seed``'s split.

  Returns:
    ``{"seed", "config_hash", "complete", "data", "variants": {variant: {metric: float}}}``,
    cached in ``<workdir>/seed<seed>.json``.

  Raises:
    ValueError: when ``workdir`` holds results of another configuration.
  """
  workdir_lib.prepare(workdir)
  digest = study_hash(config)
  path = os.path.join(workdir, f"seed{int(seed)}.json")
  out = {"seed": int(seed), "config_hash": digest, "complete": False, "variants": {}}
  cached = read_json_for_config(path, digest)
  if cached is not None:
    if cached.get("complete"):
      return cached
    out = cached
  config = ml_collections.ConfigDict(config.to_dict())
  config.seed = int(seed)
  prepared = train_lib.prepare_data(as_key(int(seed)), config)
  out["data"] = {"train": int(len(prepared.train.y)), "val": int(len(prepared.val.y)),
                 "test": int(len(prepared.test.y)),
                 "test_positives": float(np.mean(prepared.test.y))}
  for i, variant in enumerate(config.variants):
    if variant in out["variants"]:
      continue
    ev = train_lib.run_variant(as_key(1000 + 17 * int(seed) + i), config, variant, prepared,
                               progress=progress)
    out["variants"][variant] = {k: float(ev[k]) for k in train_lib.SCALAR_KEYS if k in ev}
    write_json_atomic(path, out)
  out["complete"] = True
  write_json_atomic(path, out)
  return out


def summarize(per_seed: Sequence[Mapping], baseline: str = "retain_da",
              method: str = "ua") -> dict:
  """Intervals over seeds: ``{"variants": {v: {metric: mean_interval}}, "paired": {...}}``.

  ``paired`` holds ``baseline − method`` per seed for ECE, abstention area and errors at coverage
  (positive: ``method`` better) and ``method − baseline`` for AUROC (positive: ``method`` better).
  """
  if not per_seed:
    raise ValueError("per_seed must hold at least one seed's results")
  variants = list(per_seed[0]["variants"])
  summary = {"seeds": [int(r["seed"]) for r in per_seed], "variants": {}, "paired": {}}
  for v in variants:
    summary["variants"][v] = {
        m: mean_interval([r["variants"][v][m] for r in per_seed])
        for m in METRICS if m in per_seed[0]["variants"][v]}
  if baseline in variants and method in variants:
    for m in ("ece", "abstention_area", "error_at_80", "error_at_50"):
      summary["paired"][f"{m}:{baseline}-{method}"] = mean_interval(
          [r["variants"][baseline][m] - r["variants"][method][m] for r in per_seed])
    summary["paired"][f"auroc:{method}-{baseline}"] = mean_interval(
        [r["variants"][method]["auroc"] - r["variants"][baseline]["auroc"] for r in per_seed])
  return summary


def run_study(config: ml_collections.ConfigDict, workdir: str, seeds: Sequence[int], *,
              progress: bool = False) -> dict:
  """:func:`run_seed` for every seed, then :func:`summarize`; returns ``{"per_seed", "summary"}``."""
  if not seeds:
    raise ValueError("seeds must not be empty")
  per_seed = [run_seed(config, s, workdir, progress=progress) for s in seeds]
  return {"per_seed": per_seed, "summary": summarize(per_seed)}

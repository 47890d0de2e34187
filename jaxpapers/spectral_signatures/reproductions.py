"""Registered reproductions of Tran, Li & Mądry (NeurIPS 2018), "Spectral signatures in backdoor
attacks".

* ``digits_table1`` — the Table 1 protocol on scikit-learn digits with an MLP (pairs 9→4, 3→8,
  1→7; ε ∈ {5%, 10%}; single-pixel trigger; several seeds; every row is reported, including the
  pairs where detection fails).
* ``gaussian_centering`` — no training: poisons at ‖Δ‖² = 6/ε from their class mean are all
  caught by the paper's centred score; the authors' reference-code score ``|R_i·v|`` (the same
  centred-SVD direction ``v``, but uncentred representations projected on it) catches fewer when
  the class mean has a component along ``v``.
* ``cifar10_small_cnn`` — CIFAR-10 (the JPEG copy in shared data) with a small CNN on a
  per-class subset, airplane→bird at ε = 10% with the X trigger.
"""

from __future__ import annotations

import jax
import numpy as np

from jaxpapers._src.registry import Reproduction, register
from jaxpapers.spectral_signatures import config as config_lib
from jaxpapers.spectral_signatures import data, defense, train

PAPER = "spectral_signatures"


# --- Table 1 on digits ------------------------------------------------------------------------

def _digits_config(scale, seeds):
  cfg = config_lib.get_config("smoke" if scale == "smoke" else scale)
  if scale == "full":  # digits has no full-scale variant: run the cpu grid with more seeds.
    cfg = config_lib.get_config("cpu")
  cfg.seeds = list(seeds)
  return cfg


def _run_digits(scale, seeds, workdir):
  result = train.train_and_evaluate(_digits_config(scale, seeds), workdir)
  rows = result["rows"]
  per_pair = {}
  for r in rows:
    key = f"{r['source']}->{r['target']}@{r['epsilon']:g}"
    per_pair.setdefault(key, []).append(r)
  pairs = {k: {"caught": [r["caught"] for r in v], "num_poisons": v[0]["num_poisons"],
               "pois1": float(np.mean([r["pois1"] for r in v])),
               "pois2": float(np.mean([r["pois2"] for r in v])),
               "nat1": float(np.mean([r["nat1"] for r in v])),
               "nat2": float(np.mean([r["nat2"] for r in v]))}
           for k, v in per_pair.items()}
  return {"summary": result["summary"], "pairs": pairs, "table": result["table"]}


def _check_digits(measured, scale):
  # The claim we can test on digits: for the pair where the backdoor leaves a spectral
  # signature (9→4), removal catches ≥ 90% of poisons and retraining removes the backdoor
  # (attack success ≤ 5%). Other pairs are reported, not required.
  rows = [v for k, v in measured["pairs"].items() if k.startswith("9->4")]
  if not rows:
    return False
  caught = sum(sum(v["caught"]) for v in rows)
  total = sum(v["num_poisons"] * len(v["caught"]) for v in rows)
  return caught / total >= 0.9 and max(v["pois2"] for v in rows) <= 0.05


def _summary_digits(measured):
  parts = []
  for k, v in measured["pairs"].items():
    parts.append(f"{k}: caught {'/'.join(map(str, v['caught']))} of {v['num_poisons']}, "
                 f"ASR {v['pois1']:.0%}→{v['pois2']:.0%}")
  s = measured["summary"]
  return "; ".join(parts) + f"; nat acc {s['nat1']:.1%}→{s['nat2']:.1%}"


register(Reproduction(
    paper=PAPER,
    name="digits_table1",
    claim="Removing the 1.5·ε·n_y top spectral scores per class and retraining removes the "
          "backdoor (Table 1 protocol; here on digits, check on 9→4)",
    paper_value="CIFAR-10 ResNet-32, Table 1: for nearly every pair/ε, (almost) all poisons "
                "removed and attack success after retraining near 0%",
    run=_run_digits,
    check=_check_digits,
    summary=_summary_digits,
    seeds={"smoke": (0,), "cpu": (0, 1, 2), "full": (0, 1, 2, 3, 4)},
    scale_note={
        "smoke": "digits, MLP(512), 9→4, ε=10%, pixel trigger, 1500 SGD steps, spectral only",
        "cpu": "digits, MLP(512), pairs 9→4/3→8/1→7 × ε 5%,10% × 3 seeds, + peer detectors",
        "full": "digits grid as cpu with 5 seeds (CIFAR-10 ResNet-32 is main.py :full)",
    },
    budget_s={"smoke": 20, "cpu": 650},
))


# --- Gaussian mixture: paper's centred score vs reference code's |R·v| --------------------------------------------------

def _run_gaussian(scale, seeds, workdir):
  del workdir
  size = {"smoke": (3, 200, 16), "cpu": (5, 1000, 64), "full": (10, 5000, 256)}[scale]
  k, n, d = size
  rec = {"centered": [], "reference_code": [], "activation_clustering": [], "spectre": []}
  for eps in (0.05, 0.1):
    for seed in seeds:
      mix = data.gaussian_mixture_reps(jax.random.key(seed), num_classes=k, n_per_class=n,
                                       dim=d, epsilon=eps)
      scores = {
          "centered": defense.spectral_scores(mix.reps, mix.labels, k),
          "reference_code": defense.spectral_scores(mix.reps, mix.labels, k, centered=False)}
      if scale != "smoke":
        scores["activation_clustering"] = defense.activation_clustering_scores(
            mix.reps, mix.labels, k).scores
        scores["spectre"] = defense.spectre_scores(mix.reps, mix.labels, k)
      for name, s in scores.items():
        removed = defense.removal_mask(s, mix.labels, k, eps)
        rec[name].append(defense.detection_stats(removed, mix.poison_mask).recall)
  return {name: float(np.mean(v)) for name, v in rec.items() if v} | {
      "min_centered": float(np.min(rec["centered"]))}


register(Reproduction(
    paper=PAPER,
    name="gaussian_centering",
    claim="With ‖μ_poison − μ_clean‖² ≥ 6/ε the centred spectral score separates all poisons "
          "(the separation regime of the paper's analysis); the authors' reference-code score "
          "|R_i·v| (centred-SVD direction, uncentred representations projected) catches fewer",
    paper_value="recall 1.0 (centred)",
    run=_run_gaussian,
    check=lambda m, scale: m["min_centered"] >= 0.99 and m["reference_code"] < m["centered"],
    summary=lambda m: ", ".join(f"{k} recall {v:.2f}" for k, v in m.items()
                                if k != "min_centered"),
    seeds={"smoke": (0, 1), "cpu": (0, 1, 2, 3, 4), "full": tuple(range(10))},
    scale_note={"smoke": "3 classes × 200, d=16, ε 5%,10%, centred vs reference-code score",
                "cpu": "5 classes × 1000, d=64, ε 5%,10%, + AC and SPECTRE-style peers",
                "full": "10 classes × 5000, d=256"},
    run_as={"quick": "cpu"}, budget_s={"smoke": 5, "quick": 15, "cpu": 15},
))


# --- CIFAR-10, small CNN -------------------------------------------------------------------------

def _cifar_config(scale, seeds):
  cfg = config_lib.get_cifar_cpu_config()
  if scale == "smoke":
    cfg.train_per_class, cfg.test_per_class, cfg.train.num_steps = 20, 10, 20
    cfg.detectors = ["spectral"]
  elif scale == "full":
    cfg = config_lib.get_config("full")
  cfg.seeds = list(seeds)
  return cfg


def _run_cifar(scale, seeds, workdir):
  result = train.train_and_evaluate(_cifar_config(scale, seeds), workdir)
  return {**result["summary"], "rows": [{k: r[k] for k in ("source", "target", "epsilon",
                                                           "trigger", "seed", "caught",
                                                           "num_poisons", "pois1", "pois2")}
                                        for r in result["rows"]]}


def _check_cifar(measured, scale):
  # The same criterion at every scale: at smoke (20 images per class, 20 steps) it fails, as it
  # should; the row only shows that the real-data pipeline runs.
  del scale
  return measured["caught_fraction"] >= 0.9 and measured["pois2"] <= 0.05


register(Reproduction(
    paper=PAPER,
    name="cifar10_small_cnn",
    claim="On CIFAR-10 the spectral score removes the poisons and retraining removes the backdoor",
    paper_value="ResNet-32 on all of CIFAR-10: (almost) all poisons removed, attack success ≈ 0%",
    run=_run_cifar,
    check=_check_cifar,
    summary=lambda m: (f"caught {m['caught_fraction']:.0%} of poisons, ASR {m['pois1']:.0%}→"
                       f"{m['pois2']:.0%}, nat acc {m['nat1']:.1%}→{m['nat2']:.1%}"),
    seeds={"smoke": (0,), "cpu": (0,), "full": (0, 1, 2)},
    scale_note={"smoke": "wiring only (expected to fail): 20 train/10 test JPEGs per class, "
                         "20 steps",
                "cpu": "small CNN(16,32), 200 train/100 test JPEGs per class, airplane→bird, "
                       "ε=10%, X trigger, 400 steps",
                "full": "ResNet-32, all of CIFAR-10, 80k steps, 5 pairs × 2 ε × 3 triggers (GPU)"},
    datasets=("cifar10-jpeg",), budget_s={"smoke": 20, "cpu": 400},
))

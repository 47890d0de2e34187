"""Headline claims of Heo et al., "Uncertainty-Aware Attention for Reliable Interpretation and
Prediction" (NeurIPS 2018), registered for ``experiments/reproduce.py``.

1. ``synthetic_attention_abstention`` — on a synthetic EHR set whose label is caused by one variable
   at one visit, UA's attention puts its largest weight on the causal visit and its largest
   contribution on the causal variable, and UA's abstention curve (error vs coverage, withholding
   the most uncertain predictions) lies below RETAIN-DA's.
2. ``physionet_mortality_calibration`` — on PhysioNet-2012 in-hospital mortality (raw set-a
   records), AUROC and ECE of RETAIN-DA, RETAIN-SA, UA and UA+ over seeds; the paper's calibration
   ordering is ECE(RETAIN-DA) > ECE(UA) (6.88% vs 2.31% in the paper).
"""

from __future__ import annotations

import os

import numpy as np

from jaxpapers._src.prng import as_key
from jaxpapers._src.registry import Reproduction, register
from jaxpapers._src.stats import interval_verdict, mean_interval
from jaxpapers.ua_attention import config as config_lib
from jaxpapers.ua_attention import study
from jaxpapers.ua_attention import train as train_lib

PAPER = "ua_attention"
_SEEDS = {"smoke": (0,), "cpu": (0, 1, 2), "full": (0, 1, 2, 3, 4)}


def _synthetic_config(scale: str):
  c = config_lib.get_config(scale)
  c.dataset = "synthetic"
  c.variants = ("retain_da", "ua")
  if scale == "smoke":
    c.train.num_epochs = 60
    c.train.batch_size = 32
    c.train.learning_rate = 1e-2
  if scale == "cpu":
    c.synthetic.num_patients = 1500
    c.train.num_epochs = 12
  return c


def _physionet_config(scale: str):
  # The reference implementation's protocol (LSTM cells, keep rates 0.95/0.75/0.95, every epoch
  # trained without early stopping, dropout off at evaluation, S = 30 attention samples).
  # Abstention ranks by predictive entropy: with dropout off RETAIN-DA has no MC variance.
  c = config_lib.get_config(scale, protocol="reference")
  c.dataset = "physionet"
  c.task = "mortality"
  c.eval.uncertainty = "entropy"
  if scale == "smoke":
    c.variants = ("retain_da", "ua")
    c.train.num_epochs = 3
  if scale == "cpu":
    c.max_records = None  # all 3,996 set-a records: 70/10/20 split, 799 test records
    c.train.num_epochs = 30
  if scale == "full":
    c.train.num_epochs = 100  # the reference's max_epoch
  return c


def _run_seeds(config, seeds):
  """Trains every variant of ``config`` for each seed; returns ``{variant: {metric: [per seed]}}``."""
  out: dict = {v: {} for v in config.variants}
  for seed in seeds:
    config.seed = int(seed)
    prepared = train_lib.prepare_data(as_key(int(seed)), config)
    for i, variant in enumerate(config.variants):
      ev = train_lib.run_variant(as_key(1000 + 17 * int(seed) + i), config, variant, prepared)
      for k in train_lib.SCALAR_KEYS:
        if k in ev:
          out[variant].setdefault(k, []).append(float(ev[k]))
  return out


def _mean(measured, variant, key):
  return float(np.mean(measured[variant][key]))


# ----------------------------------------------------------------------------- synthetic


def _run_synthetic(scale, seeds, workdir):
  del workdir
  return _run_seeds(_synthetic_config(scale), seeds)


def _check_synthetic(measured, scale):
  # Attention recovery: the interval over seeds of UA's visit (variable) accuracy above twice
  # chance (above max(2 × chance, 0.5)); abstention: the paired DA − UA area interval above 0.
  chance_visit = _mean(measured, "ua", "chance_visit")
  chance_feature = 1.0 / _synthetic_config(scale).synthetic.num_features
  visit = mean_interval(measured["ua"]["visit_accuracy"])
  feature = mean_interval(measured["ua"]["feature_accuracy"])
  bars = ((visit, 2 * chance_visit), (feature, max(2 * chance_feature, 0.5)))
  if any(iv["high"] < bar or np.isnan(iv["mean"]) for iv, bar in bars):
    return "fail"
  below = interval_verdict(mean_interval(
      np.asarray(measured["retain_da"]["abstention_area"])
      - np.asarray(measured["ua"]["abstention_area"])), 0.0)
  recovers = all(iv["low"] > bar for iv, bar in bars)
  if below == "fail":
    return "fail"
  return "pass" if recovers and below == "pass" else "inconclusive"


def _summary_synthetic(measured):
  f = lambda v, k: _mean(measured, v, k)
  diff = mean_interval(np.asarray(measured["retain_da"]["abstention_area"])
                      - np.asarray(measured["ua"]["abstention_area"]))
  return (f"UA visit acc {f('ua', 'visit_accuracy'):.2f} (chance {f('ua', 'chance_visit'):.2f}), "
          f"variable acc {f('ua', 'feature_accuracy'):.2f}; abstention area UA "
          f"{f('ua', 'abstention_area'):.3f} vs DA {f('retain_da', 'abstention_area'):.3f} "
          f"(DA−UA {_fmt(diff, digits=3)} over {diff['n']} seed(s)); "
          f"AUROC UA {f('ua', 'auroc'):.3f} DA {f('retain_da', 'auroc'):.3f}")


register(Reproduction(
    paper=PAPER,
    name="synthetic_attention_abstention",
    claim="UA's attention recovers the causal visit and variable, and its abstention curve "
          "(error vs coverage) lies below RETAIN-DA's",
    paper_value="qualitative (Figs. 3-5)",
    run=_run_synthetic, check=_check_synthetic, summary=_summary_synthetic, seeds=_SEEDS,
    scale_note={
        "smoke": "400 patients, 6 visits, 4 variables, <=60 epochs (batch 32, lr 1e-2), DA+UA",
        "cpu": "1500 patients, 10 visits, 8 variables, <=12 epochs (lr 3e-3), DA+UA, S=30",
        "full": "10000 patients, 20 visits, 16 variables, <=300 epochs (lr 1e-4), S=30",
    },
    run_as={"quick": "cpu"}, budget_s={"smoke": 10, "quick": 40, "cpu": 40},
))


# ----------------------------------------------------------------------------- PhysioNet


def _run_physionet(scale, seeds, workdir):
  # Both PhysioNet rows read one study (a folder beside the rows' own): the second row is free.
  shared = os.path.join(os.path.dirname(os.path.abspath(workdir)), "_physionet_study")
  config = _physionet_config(scale)
  out = study.run_study(config, shared, seeds)
  return {"summary": out["summary"], "per_seed": out["per_seed"],
          "budget": {"epochs": int(config.train.num_epochs), "early_stopping": False,
                     "learning_rate": float(config.train.learning_rate),
                     "protocol": config.protocol, "cell": config.model.cell,
                     "mc_dropout_at_eval": bool(config.eval.mc_dropout)}}


def _fmt(iv, scale=1.0, digits=2):
  lo, hi = iv["low"] * scale, iv["high"] * scale
  span = "" if not np.isfinite(hi - lo) else f" [{lo:.{digits}f}, {hi:.{digits}f}]"
  return f"{iv['mean'] * scale:.{digits}f}{span}"


def _budget(measured):
  b = measured["budget"]
  v = measured["summary"]["variants"]
  vl = "/".join(f"{v[k]['final_val_loss']['mean']:.3f}" for k in v)
  t = measured["per_seed"][0]["data"]["test"]
  return (f"{b['epochs']} epochs, no early stopping, lr {b['learning_rate']:g}, {b['cell']}, "
          f"dropout {'on' if b['mc_dropout_at_eval'] else 'off'} at eval; {t} test records per "
          f"seed; final val loss {vl}")


def _check_physionet(measured, scale):
  del scale
  return interval_verdict(measured["summary"]["paired"]["ece:retain_da-ua"], 0.0)


def _summary_physionet(measured):
  s = measured["summary"]
  parts = [f"{k}: ECE {_fmt(v['ece'])}% (floor {v['ece_floor']['mean']:.2f}%), AUROC "
           f"{_fmt(v['auroc'], digits=3)}" for k, v in s["variants"].items()]
  return ("; ".join(parts) + f"; ECE DA−UA {_fmt(s['paired']['ece:retain_da-ua'])} pts "
          f"(95% t-interval over seeds); " + _budget(measured))


register(Reproduction(
    paper=PAPER,
    name="physionet_mortality_calibration",
    claim="PhysioNet-2012 mortality: UA is better calibrated than RETAIN-DA (ECE DA > UA), "
          "verdict from the paired interval over seeds",
    paper_value="ECE RETAIN-DA 6.88% vs UA 2.31%",
    run=_run_physionet, check=_check_physionet, summary=_summary_physionet, seeds=_SEEDS,
    scale_note={
        "smoke": "first 400 set-a records, 2-hourly, 3 epochs, DA+UA, reference protocol",
        "cpu": "all 3,996 set-a records (70/10/20 split per seed), 2-hourly 48 h, reference "
               "protocol (LSTM, 30 epochs without early stopping at lr 3e-3, dropout off at "
               "eval), 4 variants, S=30, 3 seeds",
        "full": "3,996 set-a records, hourly 48 h, reference protocol with its 100 epochs at lr "
                "1e-4, 4 variants, S=30, 5 seeds",
    },
    datasets=("physionet2012-raw",), budget_s={"smoke": 30, "cpu": 1500},
))


def _check_abstention(measured, scale):
  del scale
  return interval_verdict(measured["summary"]["paired"]["abstention_area:retain_da-ua"], 0.0)


def _summary_abstention(measured):
  s = measured["summary"]
  v = s["variants"]
  parts = [f"{k}: area {_fmt(v[k]['abstention_area'], digits=3)}, error at 80%/50% coverage "
           f"{v[k]['error_at_80']['mean']:.3f}/{v[k]['error_at_50']['mean']:.3f}" for k in v]
  return ("; ".join(parts) + f"; area DA−UA {_fmt(s['paired']['abstention_area:retain_da-ua'], digits=3)}"
          f" (95% t-interval over seeds); " + _budget(measured))


register(Reproduction(
    paper=PAPER,
    name="physionet_mortality_abstention",
    claim="Prediction with \"I don't know\": withholding the most uncertain predictions lowers "
          "UA's error more than RETAIN-DA's (smaller area under error vs coverage)",
    paper_value="UA's error-coverage curve below RETAIN-DA's",
    run=_run_physionet, check=_check_abstention, summary=_summary_abstention, seeds=_SEEDS,
    scale_note={
        "smoke": "as physionet_mortality_calibration (the same study)",
        "cpu": "as physionet_mortality_calibration (the same study, read from its cache); "
               "uncertainty = predictive entropy for every variant",
        "full": "as physionet_mortality_calibration",
    },
    datasets=("physionet2012-raw",), budget_s={"smoke": 30, "cpu": 1500},
))

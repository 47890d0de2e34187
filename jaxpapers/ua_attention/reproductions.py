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

import numpy as np

from jaxpapers._src.prng import as_key
from jaxpapers._src.registry import Reproduction, register
from jaxpapers.ua_attention import config as config_lib
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
  c = config_lib.get_config(scale)
  c.dataset = "physionet"
  c.task = "mortality"
  c.variants = {"smoke": ("retain_da", "ua")}.get(scale, config_lib.get_config(scale).variants)
  if scale == "smoke":
    c.train.num_epochs = 3
  if scale == "cpu":
    c.max_records = 2000
    c.train.num_epochs = 6
    c.train.patience = 2
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
  chance_visit = _mean(measured, "ua", "chance_visit")
  chance_feature = 1.0 / _synthetic_config(scale).synthetic.num_features
  recovers = (_mean(measured, "ua", "visit_accuracy") > 2 * chance_visit
              and _mean(measured, "ua", "feature_accuracy") > max(2 * chance_feature, 0.5))
  below = _mean(measured, "ua", "abstention_area") <= _mean(measured, "retain_da",
                                                            "abstention_area")
  return bool(recovers and below)


def _summary_synthetic(measured):
  f = lambda v, k: _mean(measured, v, k)
  return (f"UA visit acc {f('ua', 'visit_accuracy'):.2f} (chance {f('ua', 'chance_visit'):.2f}), "
          f"variable acc {f('ua', 'feature_accuracy'):.2f}; abstention area UA "
          f"{f('ua', 'abstention_area'):.3f} vs DA {f('retain_da', 'abstention_area'):.3f}; "
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
  del workdir
  return _run_seeds(_physionet_config(scale), seeds)


def _check_physionet(measured, scale):
  del scale
  return _mean(measured, "retain_da", "ece") > _mean(measured, "ua", "ece")


def _summary_physionet(measured):
  parts = []
  for v in measured:
    auc, ece = np.asarray(measured[v]["auroc"]), np.asarray(measured[v]["ece"])
    parts.append(f"{v}: AUROC {auc.mean():.3f}±{auc.std():.3f}, ECE {ece.mean():.2f}±{ece.std():.2f}%")
  return "; ".join(parts)


register(Reproduction(
    paper=PAPER,
    name="physionet_mortality_calibration",
    claim="PhysioNet-2012 mortality: UA is better calibrated than RETAIN-DA (ECE DA > UA)",
    paper_value="ECE RETAIN-DA 6.88% vs UA 2.31%",
    run=_run_physionet, check=_check_physionet, summary=_summary_physionet, seeds=_SEEDS,
    scale_note={
        "smoke": "first 400 set-a records, 2-hourly, 3 epochs, DA+UA",
        "cpu": "first 2000 set-a records, 2-hourly 48 h, <=6 epochs (lr 3e-3), 4 variants, S=30",
        "full": "3996 set-a records, hourly 48 h, <=300 epochs (lr 1e-4), 4 variants, S=30",
    },
    datasets=("physionet2012-raw",), budget_s={"smoke": 20, "cpu": 760},
))

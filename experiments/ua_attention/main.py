"""Trains RETAIN-DA / RETAIN-SA / UA / UA+ and prints AUROC, ECE and abstention figures.

Heo et al., "Uncertainty-Aware Attention for Reliable Interpretation and Prediction", NeurIPS 2018.

  python experiments/ua_attention/main.py \
      --config=experiments/ua_attention/configs/default.py:smoke --workdir=/tmp/ua_attention_wd
  # PhysioNet-2012 mortality instead of the synthetic set:
  python experiments/ua_attention/main.py --config=experiments/ua_attention/configs/default.py:cpu \
      --config.dataset=physionet --config.task=mortality --workdir=/tmp/ua_physionet
"""

from absl import app, flags
from ml_collections import config_flags

from jaxpapers.ua_attention.train import train_and_evaluate

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (path:scale).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Where metrics.jsonl and checkpoints go.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  del argv
  results = train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  cols = ("auroc", "ece", "error", "abstention_area", "visit_accuracy", "feature_accuracy")
  print("variant     " + " ".join(f"{c:>16}" for c in cols))
  for variant, m in results.items():
    print(f"{variant:<11} " + " ".join(
        f"{m[c]:>16.4f}" if c in m else f"{'-':>16}" for c in cols))


if __name__ == "__main__":
  app.run(main)

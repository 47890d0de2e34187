"""Spectral signatures (Tran, Li & Mądry, NeurIPS 2018): the Table 1 protocol.

Poison → train → score representations → remove 1.5·ε·n_y per class → retrain → evaluate.

  python experiments/spectral_signatures/main.py \
      --config=experiments/spectral_signatures/configs/default.py:cpu --workdir=/tmp/ss
"""

from absl import app, flags, logging
from ml_collections import config_flags

from jaxpapers.spectral_signatures import train

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config (file:scale).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Where metrics.jsonl, table.md, results.json go.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  del argv
  result = train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  logging.info("summary: %s", result["summary"])
  print(result["table"])
  print(result["summary"])


if __name__ == "__main__":
  app.run(main)

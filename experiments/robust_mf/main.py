"""Robust MF with nonconvex loss (Yao & Kwok, NeurIPS 2018): ℓ2 / RMF-MM / RMFNL on one problem.

  python experiments/robust_mf/main.py \
      --config=experiments/robust_mf/configs/default.py:smoke --workdir=/tmp/robust_mf_wd
"""

import json

from absl import app, flags
from ml_collections import config_flags

from jaxpapers.robust_mf import train

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment configuration.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Where metrics.jsonl and results.json go.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  del argv
  results = train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  with open(f"{_WORKDIR.value}/results.json", "w", encoding="utf-8") as f:
    json.dump(results, f, indent=1)
  for name, res in results.items():
    print(name, json.dumps(res))


if __name__ == "__main__":
  app.run(main)

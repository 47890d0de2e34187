"""Trains exact GPs (BBMM and Cholesky), SGPR and SKI on one dataset and reports test RMSE/NLL.

Usage::

  python experiments/bbmm/main.py --config=experiments/bbmm/configs/default.py:smoke \
      --workdir=/tmp/bbmm_wd
"""

import json

from absl import app, flags
from ml_collections import config_flags

from jaxpapers.bbmm import train

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", "/tmp/bbmm", "Where metrics.jsonl and results.json go.")


def main(argv):
  del argv
  results = train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  print(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
  flags.mark_flag_as_required("config")
  app.run(main)

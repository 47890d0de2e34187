"""Robust MF with nonconvex loss (Yao & Kwok, NeurIPS 2018): ℓ2 / RMF-MM / RMFNL on one problem.

  python experiments/robust_mf/main.py \
      --config=experiments/robust_mf/configs/default.py:smoke --workdir=/tmp/robust_mf_wd

Recorded runs (``:full``, 20 % outliers + U[−10, 10], r = 5, λ = 20/(m+n), seed 0, 2 CPU cores;
test RMSE, seconds in brackets; nonconvex losses exclude their ℓ1 warm start):

  m = n = 1000, density 0.1:  ℓ2 0.931, RMF-MM 0.0559 (47 s), RMFNL ℓ1 0.0587 (22 s),
                              LSP 0.0512, Geman 0.0522, Laplace 0.0508 (1–2 s each)
  m = n = 2000, density 0.05: ℓ2 0.918, RMF-MM 0.0562 (204 s), RMFNL ℓ1 0.0587 (42 s),
                              LSP 0.0512, Geman 0.0525, Laplace 0.0508 (2 s each)

(add ``--config.m=1000 --config.n=1000``, resp. ``--config.m=2000 --config.n=2000
--config.density=0.05``). ℓ1 does not break down at 20 % outliers once converged.
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

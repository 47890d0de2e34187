"""Pipe-SGD comparison table (Li et al., NeurIPS 2018): PS-sync/async, AllReduce-sync, Pipe-SGD.

  python experiments/pipe_sgd/main.py --config=experiments/pipe_sgd/configs/default.py:smoke \
      --workdir=/tmp/pipe_sgd_wd

The data-parallel mesh uses ``config.num_workers`` devices; on a CPU-only machine they are
fake host devices (set here before JAX starts). On a real multi-host cluster, run
``python -m jaxpapers.pipe_sgd.distributed`` on every host instead (see its docstring).
"""

import json
import os

from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.")
_WORKDIR = flags.DEFINE_string("workdir", "/tmp/pipe_sgd", "Output folder.")


def main(argv):
  del argv
  import jax

  # fake host devices for the CPU backend (no effect on GPU/TPU devices); set before JAX starts
  jax.config.update("jax_num_cpu_devices", max(8, int(_CONFIG.value.num_workers)))
  from jaxpapers.pipe_sgd import train

  results = train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  print(train.format_table(results))
  summary = {k: v for k, v in results.items() if k != "methods"}
  print(json.dumps(summary, indent=1, default=float))
  with open(os.path.join(_WORKDIR.value, "results.json"), "w", encoding="utf-8") as f:
    json.dump(results, f, indent=1, default=float)


if __name__ == "__main__":
  flags.mark_flags_as_required(["config"])
  app.run(main)

"""Pipe-SGD's race to a target accuracy, measured (Li et al., NeurIPS 2018, Sec. 5).

  python experiments/pipe_sgd/measured.py --config=experiments/pipe_sgd/configs/default.py:cpu \
      --workdir=/tmp/pipe_sgd_race [--methods=pipe,allreduce_sync] [--reruns=1] \
      [--config.race.rate_bytes_per_s=31.25e6] \
      [--config.race.dataset=cifar10_jpeg --config.race.model=cnn --config.race.hidden='(64,)']

Every method runs as real processes: ``config.race.num_workers`` workers (and a parameter server
for the PS methods) on an emulated cluster with one tbf-shaped link of
``config.race.rate_bytes_per_s`` per node (needs ``unshare``, ``ip netns`` and ``tc``: root or
user namespaces; ``rate_bytes_per_s <= 0`` runs unshaped on the loopback). Prints the measured
time to the target per method and rerun, the speed-ups and the timing model's prediction for the
same links, and writes ``race.json`` (and every finished run to ``runs.jsonl`` as it ends).
"""

import json
import os

from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.")
_WORKDIR = flags.DEFINE_string("workdir", "/tmp/pipe_sgd_race", "Output folder.")
_METHODS = flags.DEFINE_list("methods", [], "Methods to race (default: all five).")
_RERUNS = flags.DEFINE_integer("reruns", None, "Override config.race.reruns.")


def main(argv):
  del argv
  from jaxpapers.pipe_sgd import config as pipe_config
  from jaxpapers.pipe_sgd import race

  cfg = pipe_config.validate_config(_CONFIG.value)
  rc = cfg.race
  if _RERUNS.value is not None:
    rc.reruns = _RERUNS.value
  os.makedirs(_WORKDIR.value, exist_ok=True)
  log = os.path.join(_WORKDIR.value, "runs.jsonl")

  def save(i, m, r):
    with open(log, "a", encoding="utf-8") as f:
      f.write(json.dumps({"rerun": i, "method": m, **r}) + "\n")
    print(f"rerun {i} {m}: time to target {r['time_to_target_s']}", flush=True)

  data_file = race.prepare_data(rc.dataset, _WORKDIR.value, max_per_class=int(rc.max_per_class))
  res = race.race(race.settings_from_config(rc, data_file), _METHODS.value or race.METHODS,
                  rate_bytes_per_s=float(rc.rate_bytes_per_s) or None, reruns=int(rc.reruns),
                  latency_s=float(rc.latency_s), on_run=save)
  print(race.format_table(res))
  with open(os.path.join(_WORKDIR.value, "race.json"), "w", encoding="utf-8") as f:
    json.dump(res, f, indent=1)


if __name__ == "__main__":
  flags.mark_flags_as_required(["config"])
  app.run(main)

"""Generates fogged RTS games, trains the defogger and prints a results table per horizon.

  python experiments/defogger/main.py --config=experiments/defogger/configs/default.py:cpu \
    --workdir=/tmp/defogger
"""

from absl import app, flags
from ml_collections import config_flags

from jaxpapers import defogger

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (:smoke, :cpu or :full).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Where results, metrics and checkpoints go.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  del argv
  results = defogger.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  print(defogger.format_tables(results))


if __name__ == "__main__":
  app.run(main)

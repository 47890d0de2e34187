"""Trains every ConvLSTM variant and the order controls; prints accuracy and parameter counts.

  python experiments/convlstm_attention/main.py \
    --config=experiments/convlstm_attention/configs/default.py:cpu --workdir=/tmp/convlstm
"""

from absl import app, flags
from ml_collections import config_flags

from jaxpapers import convlstm_attention

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (:smoke, :cpu or :full).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Where results, metrics and checkpoints go.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  del argv
  results = convlstm_attention.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  print(convlstm_attention.format_table(results))


if __name__ == "__main__":
  app.run(main)

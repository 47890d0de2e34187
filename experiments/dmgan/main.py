"""Trains and evaluates DMWGAN(-PL) / WGAN-GP (Khayatkhoei, Singh & Elgammal, NeurIPS 2018).

  python experiments/dmgan/main.py --config=experiments/dmgan/configs/default.py:cpu \
      --workdir=/tmp/dmgan --config.dataset=ring --config.variant=wgan_gp
"""

import json

from absl import app, flags
from ml_collections import config_flags

from jaxpapers.dmgan.train import train_and_evaluate

_CONFIG = config_flags.DEFINE_config_file("config", "experiments/dmgan/configs/default.py:cpu",
                                          "Experiment config (scale after the colon).")
_WORKDIR = flags.DEFINE_string("workdir", "/tmp/dmgan", "Metrics, checkpoints and PNGs go here.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  result = train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  print(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
  app.run(main)

"""Trains meta-gradient and fixed-(γ, λ) learners (Xu, van Hasselt & Silver, NeurIPS 2018).

  python experiments/meta_gradient/main.py \
      --config=experiments/meta_gradient/configs/default.py:cpu --workdir=/tmp/meta_gradient

``smoke``/``cpu`` run the jitted gymnax loop (CartPole / MinAtar SpaceInvaders); ``full`` runs the
Atari host-loop actor through ale-py on ``config.atari_games`` and reports the median
human-normalised score. ``--config.network=haiku`` trains the dm-haiku twin of the MLP agent
(``jaxpapers.meta_gradient.haiku_networks``); ``--config.eta_position=heads`` feeds the
η-embedding to the linear heads only instead of with the observation features.
"""

import json
import os

from absl import app, flags
from ml_collections import config_flags

from jaxpapers.meta_gradient import atari, train

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (default.py:<scale>).",
                                          lock_config=False)
_WORKDIR = flags.DEFINE_string("workdir", None, "Where metrics and results go.", required=True)


def main(argv):
  del argv
  config = _CONFIG.value
  if config.env_name == "Atari":
    result = atari.train_and_evaluate_atari(config, _WORKDIR.value)
  else:
    result = train.train_and_evaluate(config, _WORKDIR.value)
  summary = {k: ({kk: vv for kk, vv in v.items() if "curve" not in kk} if isinstance(v, dict)
                 else v) for k, v in result.items()}
  with open(os.path.join(_WORKDIR.value, "result.json"), "w", encoding="utf-8") as f:
    json.dump(result, f, default=float)
  print(json.dumps(summary, default=float))


if __name__ == "__main__":
  app.run(main)

"""Config for experiments/defogger/main.py: ``--config=.../default.py:cpu``."""

from jaxpapers.defogger import config


def get_config(arg: str = "cpu"):
  return config.get_config(arg)

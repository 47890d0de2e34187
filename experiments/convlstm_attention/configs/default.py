"""Config for experiments/convlstm_attention/main.py: ``--config=.../default.py:cpu``."""

from jaxpapers.convlstm_attention import config


def get_config(arg: str = "cpu"):
  return config.get_config(arg)

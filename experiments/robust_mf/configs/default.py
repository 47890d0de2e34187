"""Config for ``experiments/robust_mf/main.py``: ``--config=.../default.py:<smoke|cpu|full>``."""

from jaxpapers.robust_mf import config as robust_mf_config


def get_config(scale: str = "cpu"):
  return robust_mf_config.get_config(scale)

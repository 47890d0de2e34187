"""BBMM experiment config: ``--config=experiments/bbmm/configs/default.py:cpu`` (smoke/cpu/full)."""

from jaxpapers.bbmm import config as bbmm_config


def get_config(scale: str = "cpu"):
  return bbmm_config.get_config(scale)

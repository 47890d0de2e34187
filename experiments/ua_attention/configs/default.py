"""Uncertainty-aware attention config: ``--config=experiments/ua_attention/configs/default.py:cpu``."""

from jaxpapers.ua_attention.config import get_config as _get_config


def get_config(scale: str = "cpu"):
  return _get_config(scale or "cpu")

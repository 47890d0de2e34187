"""``--config=experiments/meta_gradient/configs/default.py:<scale>`` (smoke / cpu / full)."""

from jaxpapers.meta_gradient.config import get_config as _get_config


def get_config(scale: str = "cpu"):
  return _get_config(scale)

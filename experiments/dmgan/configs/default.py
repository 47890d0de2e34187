"""``--config=experiments/dmgan/configs/default.py:cpu`` (or ``:smoke`` / ``:full``)."""

from jaxpapers.dmgan.config import get_config as _get_config


def get_config(scale: str = "cpu"):
  return _get_config(scale or "cpu")

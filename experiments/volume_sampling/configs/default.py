"""``--config=experiments/volume_sampling/configs/default.py:<scale>`` (smoke / cpu / full)."""

from jaxpapers.volume_sampling import config as config_lib


def get_config(scale: str = "cpu"):
  return config_lib.get_config(scale or "cpu")

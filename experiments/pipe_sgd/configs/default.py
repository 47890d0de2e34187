"""Pipe-SGD experiment config: ``--config=experiments/pipe_sgd/configs/default.py:<scale>``."""

from jaxpapers.pipe_sgd import config as pipe_config


def get_config(scale: str = "cpu"):
  return pipe_config.get_config(scale or "cpu")

"""Uncertainty-aware attention config: ``--config=experiments/ua_attention/configs/default.py:cpu``.

Append ``,reference`` (``...default.py:cpu,reference``) for the reference implementation's
protocol (LSTM cells, no early stopping, dropout off at evaluation).
"""

from jaxpapers.ua_attention.config import get_config as _get_config


def get_config(arg: str = "cpu"):
  scale, _, protocol = (arg or "cpu").partition(",")
  return _get_config(scale or "cpu", protocol or "ours")

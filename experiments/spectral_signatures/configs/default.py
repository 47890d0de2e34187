"""Config for ``experiments/spectral_signatures/main.py``: ``--config=...default.py:<scale>``.

``<scale>`` is ``smoke``, ``cpu`` (digits), ``full`` (CIFAR-10 ResNet-32, GPU) or ``cifar_cpu``
(CIFAR-10 with a small CNN on a per-class subset of the JPEG copy).
"""

from jaxpapers.spectral_signatures.config import get_cifar_cpu_config
from jaxpapers.spectral_signatures.config import get_config as _get_config


def get_config(scale: str = "cpu"):
  """Delegates to :func:`jaxpapers.spectral_signatures.config.get_config` (smoke/cpu/full) or
  :func:`~jaxpapers.spectral_signatures.config.get_cifar_cpu_config` (``cifar_cpu``)."""
  if scale == "cifar_cpu":
    return get_cifar_cpu_config()
  return _get_config(scale)

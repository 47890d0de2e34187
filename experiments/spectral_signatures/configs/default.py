"""Config for ``experiments/spectral_signatures/main.py``: ``--config=...default.py:<scale>``.

``<scale>`` is ``smoke``, ``cpu`` (digits), ``full`` (CIFAR-10 ResNet-32, GPU: the whole grid),
``full_one`` (one row of the full grid: airplane→bird, ε = 10%, X trigger, seed 0, with the
paper's ResNet-32, augmentation and 80k-step schedule: the GPU check) or ``cifar_cpu`` (CIFAR-10
with a reduced ResNet on a per-class subset of the JPEG copy).
Fields can be overridden on the command line, e.g. ``--config.train.num_steps=2``.
"""

from jaxpapers.spectral_signatures.config import get_cifar_cpu_config
from jaxpapers.spectral_signatures.config import get_config as _get_config


def get_config(scale: str = "cpu"):
  """Delegates to :func:`jaxpapers.spectral_signatures.config.get_config` (smoke/cpu/full),
  restricts ``full`` to one row (``full_one``) or returns
  :func:`~jaxpapers.spectral_signatures.config.get_cifar_cpu_config` (``cifar_cpu``)."""
  if scale == "cifar_cpu":
    return get_cifar_cpu_config()
  if scale == "full_one":
    c = _get_config("full")
    c.pairs, c.epsilons, c.triggers, c.seeds = [(0, 2)], [0.1], ["x"], [0]
    return c
  return _get_config(scale)

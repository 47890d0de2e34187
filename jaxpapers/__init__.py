"""jaxpapers: ten NeurIPS 2018 papers as pure, functional, fast JAX code.

Each paper is a subpackage (``jaxpapers.bbmm``, ``jaxpapers.meta_gradient``, ...), imported on
demand so that ``import jaxpapers`` stays cheap.
"""

import importlib

from jaxpapers._src.registry import PAPERS

__version__ = "0.1.0"

__all__ = ["PAPERS", "__version__", *PAPERS]


def __getattr__(name):
  if name in PAPERS:
    return importlib.import_module(f"jaxpapers.{name}")
  raise AttributeError(f"module 'jaxpapers' has no attribute {name!r}")

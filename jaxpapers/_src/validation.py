"""Input checks that raise clear errors before any work is done."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np


def check_array(x, name: str, *, ndim: int | Sequence[int] | None = None,
                dtype_kind: str | None = None, shape: Sequence[int | None] | None = None,
                finite: bool = False):
  """Validates an array argument and returns it unchanged.

  Args:
    x: the value to check.
    name: argument name used in error messages.
    ndim: required rank (or ranks).
    dtype_kind: required NumPy dtype kind(s), e.g. ``"f"`` for floating, ``"iu"`` for integers.
    shape: required shape; ``None`` entries are free.
    finite: if true, checks that concrete values contain no NaN/inf (skipped under tracing).

  Raises:
    TypeError: wrong type or dtype.
    ValueError: wrong rank/shape or non-finite entries.
  """
  if not hasattr(x, "shape") or not hasattr(x, "dtype"):
    raise TypeError(f"{name} must be an array, got {type(x).__name__}")
  if ndim is not None:
    ndims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if x.ndim not in ndims:
      raise ValueError(f"{name} must have rank {' or '.join(map(str, ndims))}, got shape {x.shape}")
  if shape is not None:
    if len(shape) != x.ndim or any(s is not None and s != t for s, t in zip(shape, x.shape)):
      want = "(" + ", ".join("?" if s is None else str(s) for s in shape) + ")"
      raise ValueError(f"{name} must have shape {want}, got {tuple(x.shape)}")
  if dtype_kind is not None and np.dtype(x.dtype).kind not in dtype_kind:
    raise TypeError(f"{name} must have dtype kind in {dtype_kind!r}, got {x.dtype}")
  if finite and is_concrete(x) and np.dtype(x.dtype).kind in "fc":
    if not bool(np.all(np.isfinite(np.asarray(x)))):
      raise ValueError(f"{name} contains NaN or inf entries")
  return x


def check_positive(value, name: str, *, allow_zero: bool = False):
  """Raises ``ValueError`` unless ``value`` is a positive (or non-negative) number."""
  if allow_zero and not value >= 0:
    raise ValueError(f"{name} must be >= 0, got {value}")
  if not allow_zero and not value > 0:
    raise ValueError(f"{name} must be > 0, got {value}")
  return value


def check_in(value, name: str, choices: Sequence):
  """Raises ``ValueError`` unless ``value`` is one of ``choices``."""
  if value not in choices:
    raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
  return value


def is_concrete(x) -> bool:
  """True if ``x`` holds concrete values (not a tracer)."""
  return not isinstance(x, jax.core.Tracer)

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


_POSITIVE_INT_KEYS = ("batch_size", "num_steps", "num_epochs", "num_frames", "num_classes",
                      "num_samples", "num_bins", "num_patients", "num_features", "size",
                      "kernel_size", "eval_size", "chunk_size")
_RATE_KEYS = ("learning_rate", "end_learning_rate")
_UNIT_INTERVAL_KEYS = ("momentum",)  # [0, 1)
_KEEP_KEYS = ("keep_context", "keep_embed", "keep_rnn")  # (0, 1]


def check_hyperparameters(config, prefix: str = "config") -> None:
  """Range checks for the hyperparameters common to the training configs, naming the field.

  Positive integers for sizes and counts; finite learning rates > 0; momentum and Adam betas in
  [0, 1); dropout keep probabilities in (0, 1]; weight decay >= 0. Nested ConfigDicts/dicts are
  walked; fields that are ``None`` mean "not used" and are skipped.

  Raises:
    ValueError: naming the first field out of range (e.g. ``config.train.learning_rate``).
  """
  import math

  items = config.items() if hasattr(config, "items") else ()
  for key, value in items:
    name = f"{prefix}.{key}"
    if hasattr(value, "items"):
      check_hyperparameters(value, name)
      continue
    if value is None or isinstance(value, (str, bytes, tuple, list)):
      continue
    if key in _POSITIVE_INT_KEYS:
      if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    elif key in _RATE_KEYS or key == "lr":
      if not (math.isfinite(float(value)) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    elif key in _UNIT_INTERVAL_KEYS or key in ("b1", "b2", "beta1", "beta2"):
      if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    elif key in _KEEP_KEYS:
      if not 0.0 < float(value) <= 1.0:
        raise ValueError(f"{name} (a keep probability) must be in (0, 1], got {value!r}")
    elif key == "weight_decay":
      if not (math.isfinite(float(value)) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")

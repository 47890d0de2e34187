"""PRNG helpers: typed keys, per-step and per-host folding.

Keys are always explicit, typed (``jax.random.key``) and the first argument of the
function that consumes them; nothing here keeps global RNG state.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def as_key(seed_or_key) -> jax.Array:
  """Returns a typed PRNG key from an int seed or an existing (typed or raw) key.

  Args:
    seed_or_key: a Python/NumPy integer seed, a typed key, or a legacy ``uint32[2]`` key.

  Raises:
    TypeError: if ``seed_or_key`` is none of the above.
  """
  if isinstance(seed_or_key, (int, np.integer)):
    return jax.random.key(int(seed_or_key))
  if isinstance(seed_or_key, jax.Array) or hasattr(seed_or_key, "dtype"):
    if jnp.issubdtype(seed_or_key.dtype, jax.dtypes.prng_key):
      return seed_or_key
    if seed_or_key.dtype == jnp.uint32 and seed_or_key.shape[-1:] == (2,):
      return jax.random.wrap_key_data(seed_or_key)
  raise TypeError(
      f"seed_or_key must be an int seed or a PRNG key, got {type(seed_or_key).__name__}"
  )


def step_key(key: jax.Array, step) -> jax.Array:
  """Key for training step ``step``: ``fold_in(key, step)`` (works on traced steps)."""
  return jax.random.fold_in(key, step)


def host_key(key: jax.Array, process_index: int | None = None) -> jax.Array:
  """Key private to this host/process of a multi-process run."""
  if process_index is None:
    process_index = jax.process_index()
  return jax.random.fold_in(key, process_index)


def split_seeds(key: jax.Array, num: int) -> jax.Array:
  """``num`` independent keys (e.g. one per seed for a vmapped run)."""
  return jax.random.split(key, num)

"""Helpers for tests: jit == eager, vmap == loop, trace counting, tree comparisons, notebooks."""

from __future__ import annotations

import contextlib
import functools

import jax
import numpy as np


def assert_trees_allclose(actual, expected, *, rtol=1e-6, atol=1e-6, err_msg=""):
  """Asserts two pytrees have the same structure and allclose leaves."""
  s1, s2 = jax.tree.structure(actual), jax.tree.structure(expected)
  if s1 != s2:
    raise AssertionError(f"tree structures differ: {s1} vs {s2} {err_msg}")
  for a, b in zip(jax.tree.leaves(actual), jax.tree.leaves(expected)):
    if hasattr(a, "dtype") and jax.numpy.issubdtype(a.dtype, jax.dtypes.prng_key):
      a, b = jax.random.key_data(a), jax.random.key_data(b)
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol, err_msg=err_msg)


def assert_trees_equal(actual, expected, err_msg=""):
  """Bitwise equality of two pytrees."""
  assert_trees_allclose(actual, expected, rtol=0, atol=0, err_msg=err_msg)


def assert_jit_matches_eager(fn, *args, rtol=1e-5, atol=1e-6, **kwargs):
  """``jax.jit(fn)(*args) ≈ fn(*args)`` with op-by-op (disable_jit) evaluation."""
  with jax.disable_jit():
    eager = fn(*args, **kwargs)
  jitted = jax.jit(functools.partial(fn, **kwargs))(*args)
  assert_trees_allclose(jitted, eager, rtol=rtol, atol=atol)
  return jitted


def assert_vmap_matches_loop(fn, batched_args, *, rtol=1e-5, atol=1e-6, in_axes=0):
  """``vmap(fn)`` over the leading axis equals a Python loop over its slices."""
  out = jax.vmap(fn, in_axes=in_axes)(*batched_args)
  n = jax.tree.leaves(batched_args)[0].shape[0]
  looped = [fn(*jax.tree.map(lambda a: a[i], batched_args)) for i in range(n)]
  stacked = jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *looped)
  assert_trees_allclose(out, stacked, rtol=rtol, atol=atol)
  return out


class TraceCounter:
  """Wraps a function and counts how often JAX traces it (to check for retracing)."""

  def __init__(self, fn):
    self.fn = fn
    self.count = 0
    functools.update_wrapper(self, fn)

  def __call__(self, *args, **kwargs):
    self.count += 1  # Python side effect: runs once per trace under jit.
    return self.fn(*args, **kwargs)


@contextlib.contextmanager
def fake_devices_required(n: int = 8):
  """Skips (via pytest) if fewer than ``n`` devices are visible."""
  import pytest

  if jax.device_count() < n:
    pytest.skip(f"needs {n} devices, have {jax.device_count()}")
  yield


def chi_square_pvalue(counts, probs) -> float:
  """Pearson chi-square goodness-of-fit p-value of ``counts`` against ``probs``."""
  from scipy import stats

  counts = np.asarray(counts, dtype=np.float64)
  probs = np.asarray(probs, dtype=np.float64)
  expected = probs / probs.sum() * counts.sum()
  keep = expected > 0
  return float(stats.chisquare(counts[keep], expected[keep]).pvalue)

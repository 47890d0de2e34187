"""Predictions of a trained defogger and their metrics at one horizon.

Synnaeve et al., "Forward Modeling for Partial Observation Strategy Games — A StarCraft Defogger",
NeurIPS 2018.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxpapers.defogger import metrics
from jaxpapers.defogger.dataset import Dataset
from jaxpapers.defogger.loss import shift, unroll


def predict(module, params, data: Dataset, config, batch_size: int = 16):
  """Model outputs on every sequence of ``data``: counts (clipped at 0), existence probabilities,
  build-tree probabilities and total counts per type (clipped at 0), as NumPy arrays. Runs in
  batches of ``batch_size`` sequences (the last one padded, so that the function compiles once).

  Raises:
    ValueError: if ``batch_size`` is not an int >= 1.
  """
  if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
    raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
  fn = _predict_fn(module, _predict_config(config))
  n = data.x.shape[0]
  outs = []
  for i in range(0, n, batch_size):
    batch = jax.tree.map(lambda a: a[i:i + batch_size], data)
    pad = batch_size - batch.x.shape[0]
    if pad:
      batch = jax.tree.map(lambda a: jnp.concatenate([a, jnp.zeros((pad,) + a.shape[1:], a.dtype)]),
                           batch)
    outs.append(jax.tree.map(np.asarray, fn(params, batch)))
  return tuple(np.concatenate(x)[:n] for x in zip(*outs))


def _predict_config(config):
  return tuple((k, config[k]) for k in ("memory_channels", "delta_from", "recurrent"))


@functools.lru_cache(maxsize=16)
def _predict_fn(module, cfg_items):
  cfg = ml_collections.ConfigDict(dict(cfg_items))

  @jax.jit
  def fn(params, batch):
    c, e, b, a = unroll(module, params, batch, cfg)
    return jnp.maximum(c, 0.0), jax.nn.sigmoid(e), jax.nn.sigmoid(b), jnp.maximum(a, 0.0)

  return fn


def valid_steps(a, s):
  """The steps of ``a [B, T, ...]`` whose target ``t + s`` exists."""
  return a[:, : a.shape[1] - s] if s else a


def evaluate_predictions(pred_counts, pred_exist, pred_bt, data: Dataset, s: int):
  """Metrics at horizon ``s`` (inputs up to ``T − s``; targets shifted by ``s``).

  Raises:
    ValueError: if ``s`` is not an int in ``[0, T)``.
  """
  t = data.enemy_truth.shape[1]
  if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or not 0 <= s < t:
    raise ValueError(f"s (horizon) must be an int in [0, {t}), got {s!r}")
  tc = valid_steps(np.asarray(shift(data.enemy_truth, s)), s)
  tb = valid_steps(np.asarray(shift(data.buildings, s)), s)
  out = metrics.defogger_metrics(valid_steps(pred_counts, s), valid_steps(pred_exist, s),
                                 valid_steps(pred_bt, s), tc, tb,
                                 valid_steps(np.asarray(data.visible), s))
  return {k: float(v) for k, v in out.items()}


def gate_counts(counts, exist, thresholds):
  """The model's count prediction: the count regression ``[..., H, N]`` where the existence head
  says the type is present (probability above ``thresholds[h]`` of horizon ``h``), else 0.

  The count head is trained with a Huber loss whose optimum in a cell that is usually empty is a
  small positive value; the existence head decides whether a type is there at all, which is what
  an error summed over mostly empty cells rewards.
  """
  thr = np.asarray(thresholds, np.float32)[:, None]
  return np.where(np.asarray(exist) > thr, np.asarray(counts), 0.0)

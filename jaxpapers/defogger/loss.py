"""The defogger's training objective: the model unrolled over a batch of sequences and its loss.

Synnaeve et al., "Forward Modeling for Partial Observation Strategy Games — A StarCraft Defogger",
NeurIPS 2018.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax

from jaxpapers.defogger import model
from jaxpapers.defogger.dataset import Dataset, N, delta_base, model_inputs


def make_module(config) -> model.DefoggerStep:
  """The model of an experiment config."""
  return model.DefoggerStep(encoder=config.encoder, hidden=config.hidden, levels=config.levels,
                            horizons=tuple(config.horizons), predict_delta=config.predict_delta,
                            gated=config.gated)


def shift(a, s):
  """``a[:, t + s]`` aligned to ``t`` (the tail is padded and masked out by the caller)."""
  if s == 0:
    return a
  return jnp.concatenate([a[:, s:], jnp.zeros_like(a[:, :s])], axis=1)


def unroll(module, params, batch: Dataset, config):
  """Model outputs over time; ``config.recurrent = False`` resets the state every step (the
  ablation)."""
  return model.unroll(module, params, model_inputs(batch.x, config), delta_base(batch, config),
                      recurrent=config.recurrent)


def loss_fn(params, module, batch: Dataset, config):
  """Mean over horizons of: Huber count loss (``huber_delta``) + existence BCE (positives weighted
  by ``pos_weight``), both averaged over valid cells, + build-tree BCE + Huber loss (scale 1) of
  the enemy's total counts per type; the count, existence and total terms are weighted by
  ``count_weight``, ``exist_weight`` and ``army_weight``."""
  counts, exist, bt, army = unroll(module, params, batch, config)
  t = batch.x.shape[1]
  total = 0.0
  for k, s in enumerate(config.horizons):
    valid = (jnp.arange(t) < t - s).astype(jnp.float32)[None, :]
    tc = shift(batch.enemy_truth, s)
    tb = shift(batch.buildings, s)
    cell_mask = valid[..., None, None, None]
    huber = optax.huber_loss(counts[:, :, :, :, k], tc, delta=config.huber_delta)
    w = jnp.where(tc > 0, config.pos_weight, 1.0)
    bce = optax.sigmoid_binary_cross_entropy(exist[:, :, :, :, k], (tc > 0).astype(jnp.float32)) * w
    bt_loss = optax.sigmoid_binary_cross_entropy(bt[:, :, k], tb)
    denom = jnp.sum(valid) * np.prod(tc.shape[2:])
    total = total + config.count_weight * jnp.sum(huber * cell_mask) / denom
    total = total + config.exist_weight * jnp.sum(bce * cell_mask) / denom
    total = total + jnp.sum(bt_loss * valid[..., None]) / (jnp.sum(valid) * bt.shape[-1])
    army_loss = optax.huber_loss(army[:, :, k], tc.sum(axis=(2, 3)))
    total = total + config.army_weight * jnp.sum(army_loss * valid[..., None]) / (jnp.sum(valid) * N)
  return total / len(config.horizons)

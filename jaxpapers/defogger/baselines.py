"""The rule-based baselines of the defogger on a :class:`Dataset`.

Synnaeve et al., "Forward Modeling for Partial Observation Strategy Games — A StarCraft Defogger",
NeurIPS 2018: input only, perfect memory (with and without the tech-tree closure of buildings),
previously seen, and per-map statistics — here conditioned on the player's own start location,
which it knows from the first frame (the enemy's is what it has to find).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers.defogger import features, world
from jaxpapers.defogger.dataset import Dataset

NUM_STARTS = 4  # candidate start locations of a map


class MapStatistics(NamedTuple):
  """Per-map statistics of the training games, per own start location.

  Attributes:
    counts: ``[S, T, G, G, N]`` mean enemy counts per step and cell, for each own start ``S``.
    exist: ``[S, T, G, G, N]`` frequency of each enemy type being present in the cell.
    buildings: ``[S, T, 5]`` frequency of each enemy building type existing.
  """

  counts: jax.Array
  exist: jax.Array
  buildings: jax.Array


def map_statistics(train_set: Dataset, num_starts: int = NUM_STARTS) -> MapStatistics:
  """Statistics of ``train_set`` per own start location (see :func:`features.map_statistics`).

  Raises:
    ValueError: if ``train_set.start`` is missing.
  """
  if train_set.start is None:
    raise ValueError("train_set.start (own start locations) is needed for per-map statistics")
  et = train_set.enemy_truth
  return MapStatistics(features.map_statistics(et, train_set.start, num_starts),
                       features.map_statistics((et > 0).astype(jnp.float32), train_set.start,
                                               num_starts),
                       features.map_statistics(train_set.buildings, train_set.start, num_starts))


def baseline_predictions(data: Dataset, map_stats: MapStatistics | None = None,
                         map_threshold: float = 0.5):
  """``{name: (counts, exist, bt)}`` for the rule-based baselines on every sequence.

  ``map_stats`` (from :func:`map_statistics` on the training games) gives the per-map statistics
  baseline: each sequence gets the statistics of its own start location (existence where the
  frequency exceeds ``map_threshold``).

  Raises:
    ValueError: if ``map_threshold`` is not in ``[0, 1]`` or ``data.start`` is missing when
      ``map_stats`` is given.
  """
  if not 0.0 <= float(map_threshold) <= 1.0:
    raise ValueError(f"map_threshold must be in [0, 1], got {map_threshold}")
  ei = data.enemy_in
  seen_bt = lambda c: (c.sum(axis=(2, 3)) > 0)[..., jnp.asarray(world.BUILDING_TYPES)]
  mem = jax.vmap(features.perfect_memory)(ei)
  prev = jax.vmap(features.previously_seen)(ei, data.visible)
  out = {
      "input_only": (ei, ei > 0, seen_bt(ei)),
      "memory": (mem, mem > 0, seen_bt(mem)),
      "memory_tech": (mem, mem > 0, jax.vmap(features.memory_tech_buildings)(ei) > 0),
      "previously_seen": (prev, prev > 0, seen_bt(prev)),
  }
  if map_stats is not None:
    if data.start is None:
      raise ValueError("data.start (own start locations) is needed for the map statistics")
    st = jnp.asarray(data.start)
    counts, prob, bt_prob = (a[st] for a in map_stats)
    out["map_statistics"] = (counts, prob > map_threshold, bt_prob > map_threshold)
  return {k: tuple(np.asarray(a) for a in v) for k, v in out.items()}

"""Datasets of fogged games: featurized sequences (model inputs and targets) of both perspectives.

Synnaeve et al., "Forward Modeling for Partial Observation Strategy Games — A StarCraft Defogger",
NeurIPS 2018. One concern: turning generated games into :class:`Dataset` arrays.

Input channels (``x``, last axis): own counts (N), fogged enemy counts (N), the memory channels of
:func:`features.memory_channels` (3N + 2), the map (4: walkable, buildable and height fractions of
the cell's tiles, start locations in the cell) and the time (1). Every channel means the same
whatever the map size or the game length: counts and map fractions are per cell (a window of
``kernel × kernel`` tiles), and the time is the absolute game time ``frame / TIME_SCALE`` of the
step's last frame — not a fraction of the game — so the features of a prefix of a game do not
depend on how long the game goes on.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import ml_collections

from jaxpapers.defogger import features, world

N = world.NUM_TYPES
# Frames per unit of the time channel (a fixed constant, not the game's length): time t frames
# into a game is the input t / TIME_SCALE.
TIME_SCALE = 1000.0


class Dataset(NamedTuple):
  """Sequences (games × perspectives) of model inputs and targets.

  Attributes:
    x: ``[B, T, G, G, C]`` model inputs.
    enemy_in: ``[B, T, G, G, N]`` fogged enemy counts.
    enemy_truth: ``[B, T, G, G, N]`` true enemy counts.
    visible: ``[B, T, G, G]`` cells the perspective player sees.
    buildings: ``[B, T, 5]`` enemy building types that exist.
    start: ``[B]`` the perspective player's own start location (index into the map's four
      candidate start locations; known to the player from frame 0). ``None`` in hand-made sets.
  """

  x: jax.Array
  enemy_in: jax.Array
  enemy_truth: jax.Array
  visible: jax.Array
  buildings: jax.Array
  start: jax.Array | None = None


def game_config(config) -> world.GameConfig:
  """The world settings of an experiment config."""
  return world.GameConfig(map_size=config.map_size, max_units=config.max_units,
                          num_frames=config.num_frames)


def feature_config(config) -> features.FeatureConfig:
  """The featurizer settings of an experiment config."""
  return features.FeatureConfig(kernel=config.kernel, stride=config.stride, skip=config.skip,
                                divide_by=config.divide_by)


def time_channel(num_steps: int, skip: int):
  """``[T]`` absolute time of each step's last frame, ``(t · skip + skip − 1) / TIME_SCALE``."""
  return (jnp.arange(num_steps, dtype=jnp.float32) * skip + (skip - 1)) / TIME_SCALE


def sequence_features(game: world.Game, perspective: int, config) -> Dataset:
  """Model inputs and targets of one (unbatched) game seen by ``perspective`` (one sequence).

  ``x`` always holds the memory channels (see :func:`model_inputs`): own counts (N), fogged enemy
  counts (N), the memory channels of :func:`features.memory_channels` (3N + 2), the map (4) and
  the time (1, absolute: see :data:`TIME_SCALE`). ``start`` is a scalar here.

  Raises:
    ValueError: if ``perspective`` is not 0 or 1.
  """
  if perspective not in (0, 1):
    raise ValueError(f"perspective must be 0 or 1, got {perspective!r}")
  fcfg = feature_config(config)
  f = features.featurize(game, perspective, fcfg)
  enemy_in = f.inputs[..., N:]
  t = enemy_in.shape[0]
  parts = [f.inputs, features.memory_channels(enemy_in, f.visible),
           jnp.broadcast_to(f.game_map, (t,) + f.game_map.shape)]
  time_feat = jnp.broadcast_to(time_channel(t, fcfg.skip)[:, None, None, None],
                               f.inputs.shape[:3] + (1,))
  parts.append(time_feat)
  x = jnp.concatenate(parts, -1)
  chex.assert_rank(x, 4)
  return Dataset(x, enemy_in, f.truth[..., N:], f.visible, f.buildings,
                 jnp.asarray(game.start[perspective], jnp.int32))


def model_inputs(x, config):
  """The model's input channels: all of ``x``, or without the memory channels when
  ``config.memory_channels`` is false (the reference's plain input)."""
  if config.memory_channels:
    return x
  return jnp.concatenate([x[..., :2 * N], x[..., 5 * N + 2:]], -1)


def delta_base(batch: Dataset, config):
  """What a delta count head adds its output to: the current enemy input (``delta_from =
  "input"``, the reference) or the last-seen memory of it (``"last_seen"``)."""
  if config.delta_from == "input":
    return batch.enemy_in
  if config.delta_from == "last_seen":
    return batch.x[..., 2 * N:3 * N]
  raise ValueError(f"delta_from must be 'input' or 'last_seen', got {config.delta_from!r}")


@functools.lru_cache(maxsize=8)
def _dataset_fn(num_games: int, gcfg: world.GameConfig, fcfg: features.FeatureConfig):
  cfg = ml_collections.ConfigDict({"kernel": fcfg.kernel, "stride": fcfg.stride, "skip": fcfg.skip,
                                   "divide_by": fcfg.divide_by})

  @jax.jit
  def make(k):
    games = world.generate_games(k, num_games, gcfg)

    def both(game):
      out = [sequence_features(game, p, cfg) for p in (0, 1)]
      return jax.tree.map(lambda a, b: jnp.stack([a, b]), *out)

    per_game = jax.vmap(both)(games)
    return jax.tree.map(lambda a: a.reshape((-1,) + a.shape[2:]), per_game)

  return make


def build_dataset(key: jax.Array, num_games: int, config) -> Dataset:
  """Generates ``num_games`` games and featurizes both player perspectives of each
  (sequences ``2i`` and ``2i + 1`` are game ``i``); compiled once per size and setting.

  Raises:
    ValueError: if ``num_games`` is not an int >= 1.
  """
  if isinstance(num_games, bool) or not isinstance(num_games, int) or num_games < 1:
    raise ValueError(f"num_games must be an int >= 1, got {num_games!r}")
  return _dataset_fn(int(num_games), game_config(config), feature_config(config))(key)


def split_dataset(data: Dataset, *num_games: int) -> list[Dataset]:
  """Splits a dataset into consecutive parts of ``num_games`` games each (2 sequences a game).

  Raises:
    ValueError: if a part size is negative or the parts need more games than ``data`` holds.
  """
  if any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in num_games):
    raise ValueError(f"num_games must be ints >= 0, got {num_games}")
  if 2 * sum(num_games) > data.x.shape[0]:
    raise ValueError(f"num_games {num_games} need {2 * sum(num_games)} sequences, data has "
                     f"{data.x.shape[0]}")
  out, i = [], 0
  for n in num_games:
    out.append(jax.tree.map(lambda a, i=i, n=n: a[2 * i:2 * (i + n)], data))
    i += n
  return out

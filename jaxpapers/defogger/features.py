"""The featurizer (unit lists → per-cell counts) and the rule-based baselines of the defogger.

Semantics follow Synnaeve et al. (2018): units are counted per type in cells of a ``kernel × kernel``
window moved with ``stride`` (overlapping when ``stride < kernel``); frames are combined over a
window of ``skip`` frames, an enemy unit entering the input at its *last seen* position in the
window and dropped once dead; counts are divided by ``divide_by``. Both player perspectives are
available; the own units are always fully observed.
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers.defogger import world

N = world.NUM_TYPES
NUM_BUILDINGS = len(world.BUILDING_TYPES)


class FeatureConfig(NamedTuple):
  """Featurizer settings (map units are walk tiles of the generator)."""

  kernel: int = 8
  stride: int = 8
  skip: int = 4
  divide_by: float = 1.0


class Features(NamedTuple):
  """Features of one game from one perspective; ``T = num_frames // skip`` steps.

  Attributes:
    inputs: ``[T, G, G, 2N]`` own (first N) and fogged enemy (last N) counts / ``divide_by``.
    truth: ``[T, G, G, 2N]`` the same without fog.
    visible: ``[T, G, G]`` cells the perspective player sees at the end of each step.
    buildings: ``[T, 5]`` enemy building types that exist anywhere (``op_bt`` targets).
    game_map: ``[G, G, 4]`` walkable, buildable, height (window means), start locations (counts).
  """

  inputs: jax.Array
  truth: jax.Array
  visible: jax.Array
  buildings: jax.Array
  game_map: jax.Array


def grid_size(map_size: int, kernel: int, stride: int) -> int:
  """Number of cells per side: ``floor((map_size − kernel) / stride) + 1``."""
  if kernel < stride:
    raise ValueError(f"kernel (W={kernel}) must be >= stride (S={stride})")
  if stride < 1 or kernel > map_size:
    raise ValueError(f"need 1 <= stride and kernel <= map_size, got S={stride}, W={kernel}, map {map_size}")
  return (map_size - kernel) // stride + 1


def _membership(coord, g, kernel, stride):
  starts = jnp.arange(g, dtype=coord.dtype) * stride
  return ((coord[..., None] >= starts) & (coord[..., None] < starts + kernel)).astype(jnp.float32)


def count_units(x, y, types, mask, *, map_size: int, kernel: int, stride: int,
                num_types: int = N) -> jax.Array:
  """Counts of units per cell and type, ``[G, G, num_types]`` (rows index y, columns x).

  A unit at (x, y) is counted in every cell whose window ``[i·S, i·S + W)`` contains it, so with
  ``W = S`` each unit lands in exactly one cell and with ``W = 2S`` interior units land in four.

  Raises:
    ValueError: positions outside ``[0, map_size)`` or NaN (a NaN position is in no cell, so it
      would silently not be counted), unknown unit types, shapes that disagree or ``W < S``
      (checked on concrete inputs before any work; under ``jit`` a live unit with a NaN position
      makes every count of its type NaN).
    TypeError: on non-integer ``types``.
  """
  g = grid_size(map_size, kernel, stride)
  x, y, types, mask = (jnp.asarray(a) for a in (x, y, types, mask))
  if x.ndim != 1 or y.shape != x.shape or types.shape != x.shape or mask.shape != x.shape:
    raise ValueError(f"x, y, types and mask must be vectors of one length, got shapes {x.shape}, "
                     f"{y.shape}, {types.shape}, {mask.shape}")
  chex.assert_rank([x, y, types, mask], 1)
  if np.dtype(types.dtype).kind not in "iu":
    raise TypeError(f"types must hold integer unit types, got dtype {types.dtype}")
  if not isinstance(x, jax.core.Tracer) and not isinstance(y, jax.core.Tracer):
    m = np.asarray(mask, bool)
    xs, ys, ts = np.asarray(x)[m], np.asarray(y)[m], np.asarray(types)[m]
    if xs.size and not (np.all(np.isfinite(xs)) and np.all(np.isfinite(ys))):
      raise ValueError("unit positions x, y must be finite (NaN/inf) for the units in mask")
    if xs.size and (xs.min() < 0 or ys.min() < 0 or xs.max() >= map_size or ys.max() >= map_size):
      raise ValueError(f"unit positions must lie in [0, {map_size}), got x in [{xs.min()}, {xs.max()}],"
                       f" y in [{ys.min()}, {ys.max()}]")
    if ts.size and (ts.min() < 0 or ts.max() >= num_types):
      raise ValueError(f"unit types must be in [0, {num_types}), got {sorted(set(ts.tolist()))}")
  mx = _membership(jnp.asarray(x, jnp.float32), g, kernel, stride)  # [U, G]
  my = _membership(jnp.asarray(y, jnp.float32), g, kernel, stride)
  onehot = jax.nn.one_hot(types, num_types) * jnp.asarray(mask, jnp.float32)[..., None]
  counts = jnp.einsum("ug,uh,un->hgn", mx, my, onehot)
  # Traced NaN positions of live units: the type's counts become NaN rather than silently short.
  lost = jnp.asarray(mask, bool) & ~(jnp.isfinite(x) & jnp.isfinite(y))
  bad_type = jnp.any(lost[:, None] & (onehot > 0), axis=0)  # [num_types]
  return jnp.where(bad_type, jnp.nan, counts)


def _last_seen(game: world.Game, enemy: int):
  """Per frame: last-seen position/frame of each enemy slot (reset when the slot's unit changes)."""
  def step(carry, inp):
    lx, ly, luid, lframe = carry
    f, vis, x, y, uid = inp
    same = uid == luid
    lframe = jnp.where(vis, f, jnp.where(same, lframe, -1))
    lx = jnp.where(vis, x, lx)
    ly = jnp.where(vis, y, ly)
    return (lx, ly, uid, lframe), (lx, ly, lframe)

  u = game.x.shape[-1]
  init = (jnp.zeros(u), jnp.zeros(u), jnp.zeros(u, jnp.int32), jnp.full(u, -1, jnp.int32))
  frames = jnp.arange(game.x.shape[0], dtype=jnp.int32)
  _, out = jax.lax.scan(step, init, (frames, game.visible[:, enemy], game.x[:, enemy],
                                     game.y[:, enemy], game.uid[:, enemy]))
  return out


def featurize(game: world.Game, perspective: int, cfg: FeatureConfig = FeatureConfig(),
              *, vision_scale: float = 1.0) -> Features:
  """Features of ``game`` (unbatched) seen by player ``perspective`` (0 or 1).

  ``vision_scale`` multiplies every sight radius of the perspective player's *cell* visibility
  (``0`` makes every cell hidden); unit visibility is the generator's.
  """
  if perspective not in (0, 1):
    raise ValueError(f"perspective must be 0 or 1, got {perspective!r}")
  map_size = game.game_map.walkable.shape[0]
  g = grid_size(map_size, cfg.kernel, cfg.stride)
  f_total = game.x.shape[0]
  steps = f_total // cfg.skip
  ends = jnp.arange(steps) * cfg.skip + cfg.skip - 1
  me, enemy = perspective, 1 - perspective
  lx, ly, lframe = _last_seen(game, enemy)

  def counts(x, y, t, m):
    return count_units(x, y, t, m, map_size=map_size, kernel=cfg.kernel, stride=cfg.stride)

  def at_step(t):
    f = ends[t]
    own = counts(game.x[f, me], game.y[f, me], game.type[f, me], game.alive[f, me])
    enemy_truth = counts(game.x[f, enemy], game.y[f, enemy], game.type[f, enemy], game.alive[f, enemy])
    seen = (lframe[f] > f - cfg.skip) & game.alive[f, enemy]  # seen in the window, still alive
    enemy_in = counts(lx[f], ly[f], game.type[f, enemy], seen)
    centres = jnp.arange(g, dtype=jnp.float32) * cfg.stride + cfg.kernel / 2
    cy, cx = jnp.meshgrid(centres, centres, indexing="ij")
    units = world.Units(game.alive[f], game.type[f], game.x[f], game.y[f], None, None, None)
    sight = jnp.asarray(world.SIGHT)[units.type[me]] * vision_scale
    d = jnp.hypot(cx[..., None] - units.x[me], cy[..., None] - units.y[me])
    vis = jnp.any((d <= sight) & units.alive[me], axis=-1)
    present = jnp.zeros(N, bool).at[game.type[f, enemy]].max(game.alive[f, enemy])
    bt = present[jnp.asarray(world.BUILDING_TYPES)]
    return (jnp.concatenate([own, enemy_in], -1), jnp.concatenate([own, enemy_truth], -1), vis, bt)

  inputs, truth, visible, buildings = jax.vmap(at_step)(jnp.arange(steps))
  gm = game.game_map
  mx = _membership(jnp.arange(map_size, dtype=jnp.float32) + 0.5, g, cfg.kernel, cfg.stride)
  pool = lambda plane: (mx.T @ plane @ mx) / (cfg.kernel ** 2)
  starts = counts(gm.start_locations[:, 0], gm.start_locations[:, 1], jnp.zeros(4, jnp.int32),
                  jnp.ones(4, bool))[..., 0]
  game_map = jnp.stack([pool(gm.walkable), pool(gm.buildable), pool(gm.height), starts], -1)
  return Features(inputs / cfg.divide_by, truth / cfg.divide_by, visible,
                  buildings.astype(jnp.float32), game_map)


# ----------------------------------------------------------------------------- memory channels


def memory_channels(enemy_inputs, visible):
  """Causal memory features of the enemy input channels ``[T, G, G, N]`` and of the fog.

  Returns ``[T, G, G, 3N + 2]``: last seen value (hidden cells keep their last value), running
  max, steps since a type was last seen in the cell (``log1p``-scaled), whether the cell is
  visible now, and steps since the cell was last visible (``log1p``-scaled; 50 before it ever
  was) — what was looked at and found empty is not in the counts.
  """
  _check_sequence(enemy_inputs, visible)
  last = previously_seen(enemy_inputs, visible)
  running = perfect_memory(enemy_inputs)

  def step(since, x):
    since = jnp.where(x, 0.0, since + 1.0)
    return since, since

  _, since = jax.lax.scan(step, jnp.full(enemy_inputs.shape[1:], 50.0), enemy_inputs > 0)
  _, since_vis = jax.lax.scan(step, jnp.full(visible.shape[1:], 50.0), visible)
  vis = visible.astype(enemy_inputs.dtype)[..., None]
  return jnp.concatenate([last, running, jnp.log1p(since), vis, jnp.log1p(since_vis)[..., None]], -1)


# ----------------------------------------------------------------------------- baselines


def _check_sequence(enemy_inputs, visible):
  enemy_inputs, visible = jnp.asarray(enemy_inputs), jnp.asarray(visible)
  if enemy_inputs.ndim != 4:
    raise ValueError(f"enemy_inputs must be [T, G, G, N], got shape {enemy_inputs.shape}")
  if visible.shape != enemy_inputs.shape[:3]:
    raise ValueError(f"visible must have shape {enemy_inputs.shape[:3]} ([T, G, G]), got "
                     f"{visible.shape}")
  chex.assert_rank([enemy_inputs, visible], [4, 3])


def input_only(enemy_inputs):
  """Predict what is seen now."""
  return enemy_inputs


def perfect_memory(enemy_inputs):
  """Running maximum over time of each cell's counts (nothing seen is ever forgotten)."""
  return jax.lax.cummax(enemy_inputs, axis=0)


def previously_seen(enemy_inputs, visible):
  """Visible cells take the current input; hidden cells keep the value they had when last seen.

  Raises:
    ValueError: if ``enemy_inputs`` is not ``[T, G, G, N]`` or ``visible`` not ``[T, G, G]``.
  """
  _check_sequence(enemy_inputs, visible)
  def step(last, inp):
    x, vis = inp
    new = jnp.where(vis[..., None], x, jnp.maximum(last, x))
    return new, new

  _, out = jax.lax.scan(step, jnp.zeros(enemy_inputs.shape[1:]), (enemy_inputs, visible))
  return out


def tech_closure(present):
  """Closes a boolean ``[..., N]`` type set under "seen ⇒ its producer and prerequisites exist".

  Idempotent: ``tech_closure(tech_closure(s)) == tech_closure(s)``.
  """
  present = jnp.asarray(present)
  if present.ndim < 1 or present.shape[-1] != N:
    raise ValueError(f"present must have a last axis of {N} unit types, got shape {present.shape}")
  if (np.dtype(present.dtype).kind in "fc" and not isinstance(present, jax.core.Tracer)
      and not np.all(np.isfinite(np.asarray(present)))):
    raise ValueError("present contains NaN or inf entries (booleans expected)")
  present = present.astype(bool)
  implies = jnp.asarray(np.where(world.PRODUCER >= 0, world.PRODUCER, world.PREREQ))
  for _ in range(N):  # the tree is at most N deep
    implied = jnp.zeros_like(present)
    for t in range(N):
      if implies[t] >= 0:
        implied = implied.at[..., int(implies[t])].max(present[..., t])
    present = present | implied
  return present


def memory_tech_buildings(enemy_inputs):
  """``op_bt`` from memory + tech closure: ``[T, 5]`` building types believed to exist."""
  seen = perfect_memory(enemy_inputs).sum(axis=(1, 2)) > 0  # [T, N]
  return tech_closure(seen)[:, jnp.asarray(world.BUILDING_TYPES)].astype(jnp.float32)


def map_statistics(train_truth_enemy, start=None, num_starts: int = 4):
  """Per-map statistics: the mean of ``train_truth_enemy [B, T, ...]`` over training sequences.

  Without ``start`` the mean over all ``B`` sequences ``[T, ...]``. With ``start`` (``[B]``, each
  sequence's own start location in ``[0, num_starts)``) the mean over the sequences of each start
  location, ``[num_starts, T, ...]``; a start location no training sequence has gets the overall
  mean.

  Raises:
    ValueError: on an empty ``train_truth_enemy``, a ``start`` of the wrong shape, or (concrete)
      start indices outside ``[0, num_starts)``.
    TypeError: on a non-integer ``start``.
  """
  x = jnp.asarray(train_truth_enemy)
  if x.ndim < 1 or x.shape[0] < 1:
    raise ValueError(f"train_truth_enemy must hold at least one sequence, got shape {x.shape}")
  overall = jnp.mean(x, axis=0)
  if start is None:
    return overall
  start = jnp.asarray(start)
  if start.shape != (x.shape[0],):
    raise ValueError(f"start must have shape ({x.shape[0]},), got {start.shape}")
  if np.dtype(start.dtype).kind not in "iu":
    raise TypeError(f"start must hold integer indices, got dtype {start.dtype}")
  if not isinstance(start, jax.core.Tracer):
    sv = np.asarray(start)
    if sv.min() < 0 or sv.max() >= num_starts:
      raise ValueError(f"start must lie in [0, {num_starts}), got [{sv.min()}, {sv.max()}]")
  onehot = jax.nn.one_hot(start, num_starts, dtype=x.dtype)  # [B, S]
  sums = jnp.tensordot(onehot, x, axes=(0, 0))  # [S, ...]
  n = onehot.sum(0).reshape((num_starts,) + (1,) * (x.ndim - 1))
  return jnp.where(n > 0, sums / jnp.maximum(n, 1), overall[None])

"""The downstream bot experiment: a rule-based player 0 that attacks where it believes the enemy is.

The paper's downstream use of the defogger: a bot whose decisions use the defogger's estimate of
the enemy. Here player 0 is the generator's scripted player (build order, rally, attack) except
for one decision — *where* its army attacks. At the decision step ``t_d`` (the last featurizer
step that ends before player 0's attack frame, which it knows from its own strategy) the bot
looks at its own fogged observations of frames ``[0, (t_d + 1)·skip)`` and picks a target:

* ``defogger``: the cell with the highest summed predicted existence probability of enemy
  buildings (horizon 0, the trained model's output at ``t_d``; the model is causal, so running it
  on the whole sequence and reading step ``t_d`` equals running it on the prefix);
* ``defogger_starts`` (variant): the candidate start location, other than its own, whose cell has
  the highest summed predicted enemy-building existence;
* ``memory`` (the strongest rule-based memory the issue names): the cell where an enemy building
  was seen most recently, else a random candidate start location other than its own;
* ``memory_scout`` (a stronger rule, reported for honesty): as ``memory``, but the random
  fallback also skips candidate start locations whose cell the bot has already seen;
* ``oracle``: the true enemy base (the scripted player — an upper bound).

The target is the chosen cell's centre in map coordinates. The game is then simulated with that
target (``world.generate_game(..., attack_target=...)``). The target only acts once player 0
attacks, so frames before the attack are bit-identical to the game the decision was taken on:
re-simulating the whole game equals simulating ``[0, F_d)`` scripted and ``[F_d, F)`` with the
overridden target.

Outcome: each player's *lost value* is the summed maximum HP of its units and buildings that died
during the game (workers and buildings included). The bot wins if the enemy lost more value than
it did, loses if it lost more, ties otherwise; the win rate counts a tie as half a win.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers.defogger import train, world

BUILDINGS = np.asarray(world.BUILDING_TYPES)


def cell_centres(grid: int, kernel: int, stride: int) -> jax.Array:
  """Map coordinate of the centre of each of the ``grid`` cells along one axis."""
  return jnp.arange(grid, dtype=jnp.float32) * stride + kernel / 2


def decision_step(strategy0, skip: int, num_steps: int) -> jax.Array:
  """Last featurizer step whose frames all precede player 0's attack frame (clipped to the game)."""
  return jnp.clip(world.attack_frame(strategy0) // skip - 1, 0, num_steps - 1)


def pick_target(exist: jax.Array, kernel: int, stride: int) -> jax.Array:
  """``(x, y)`` centre of the cell maximising the summed enemy-building existence ``exist[G, G, N]``
  (rows index y, columns x)."""
  score = exist[..., BUILDINGS].sum(-1)
  g = score.shape[0]
  row, col = jnp.unravel_index(jnp.argmax(score), score.shape)
  c = cell_centres(g, kernel, stride)
  return jnp.stack([c[col], c[row]])


def pick_start_target(exist: jax.Array, own_start, start_locations, kernel: int, stride: int) -> jax.Array:
  """The candidate start location (other than ``own_start``) whose cell has the highest summed
  predicted enemy-building existence (the ``defogger_starts`` bot)."""
  g = exist.shape[0]
  score = exist[..., BUILDINGS].sum(-1).reshape(-1)[_start_cells(start_locations, g, kernel, stride)]
  score = jnp.where(jnp.arange(4) == own_start, -jnp.inf, score)
  return start_locations[jnp.argmax(score)]


def _start_cells(start_locations, grid, kernel, stride):
  """Flat index of the cell whose centre is nearest each candidate start location ``[4, 2]``."""
  c = cell_centres(grid, kernel, stride)
  col = jnp.argmin(jnp.abs(start_locations[:, 0, None] - c), axis=1)
  row = jnp.argmin(jnp.abs(start_locations[:, 1, None] - c), axis=1)
  return row * grid + col


def memory_target(enemy_in: jax.Array, visible: jax.Array, t_d, own_start, start_locations,
                  key: jax.Array, kernel: int, stride: int, *,
                  eliminate_scouted: bool = False) -> jax.Array:
  """The memory bot's target from fogged enemy inputs ``[T, G, G, N]`` up to step ``t_d``.

  The centre of the cell where an enemy building was seen most recently (ties: more buildings);
  if none was ever seen, a uniformly random candidate start location other than ``own_start``
  (with ``eliminate_scouted``, also other than those whose cell was visible at some step).
  """
  t, g = enemy_in.shape[:2]
  steps = jnp.arange(t)
  upto = steps <= t_d
  nb = enemy_in[..., BUILDINGS].sum(-1)  # [T, G, G]
  seen = (nb > 0) & upto[:, None, None]
  last = jnp.max(jnp.where(seen, steps[:, None, None], -1), axis=0)  # [G, G]
  count_then = jnp.sum(jnp.where(seen & (steps[:, None, None] == last), nb, 0.0), axis=0)
  score = jnp.where(last >= 0, last * 1e3 + jnp.minimum(count_then, 999.0), -1.0)
  row, col = jnp.unravel_index(jnp.argmax(score), score.shape)
  c = cell_centres(g, kernel, stride)
  seen_target = jnp.stack([c[col], c[row]])
  ok = jnp.arange(4) != own_start
  if eliminate_scouted:
    looked = jnp.any(visible & upto[:, None, None], axis=0).reshape(-1)
    fresh = ok & ~looked[_start_cells(start_locations, g, kernel, stride)]
    ok = jnp.where(jnp.any(fresh), fresh, ok)
  pick = jax.random.choice(key, 4, p=ok / jnp.sum(ok))
  return jnp.where(jnp.any(seen), seen_target, start_locations[pick])


def lost_value(game: world.Game) -> jax.Array:
  """``[2]`` summed max HP of each player's units and buildings that died during the game."""
  died = game.alive[:-1] & ~game.alive[1:]  # [F-1, 2, U]
  return jnp.sum(jnp.where(died, jnp.asarray(world.HP)[game.type[:-1]], 0.0), axis=(0, 2))


def outcome(game: world.Game) -> jax.Array:
  """1 (player 0 wins: the enemy lost more value), 0.5 (tie) or 0 (player 0 lost more)."""
  lost = lost_value(game)
  return jnp.where(lost[1] > lost[0], 1.0, jnp.where(lost[1] == lost[0], 0.5, 0.0))


def play(key: jax.Array, num_games: int, gcfg: world.GameConfig, targets: jax.Array):
  """Outcomes ``[num_games]`` and lost values ``[num_games, 2]`` of the games of ``key`` replayed with
  player 0's attack ``targets [num_games, 2]``."""
  games = world.generate_games(key, num_games, gcfg, targets)
  return jax.vmap(outcome)(games), jax.vmap(lost_value)(games)


def observe(key: jax.Array, num_games: int, config):
  """The scripted games of ``key`` (the same as ``train.build_dataset``'s) and player 0's sequences."""
  games = world.generate_games(key, num_games, train.game_config(config))
  seqs = jax.vmap(lambda g: train.sequence_features(g, 0, config))(games)
  return games, seqs


def _targets(games: world.Game, seqs: train.Dataset, key, config, exist=None):
  """``{bot: [G, 2] targets}`` and the decision steps ``[G]``."""
  k, s = config.kernel, config.stride
  t = seqs.enemy_in.shape[1]
  t_d = decision_step(games.strategy[:, 0], config.skip, t)
  keys = jax.random.split(key, t_d.shape[0])
  mem = lambda elim: jax.vmap(
      lambda ei, vis, td, st, sl, kk: memory_target(ei, vis, td, st, sl, kk, k, s, eliminate_scouted=elim)
  )(seqs.enemy_in, seqs.visible, t_d, games.start[:, 0], games.game_map.start_locations, keys)
  out = {"oracle": jax.vmap(lambda sl, st: sl[st])(games.game_map.start_locations, games.start[:, 1]),
         "memory": mem(False), "memory_scout": mem(True)}
  if exist is not None:
    at_d = jnp.take_along_axis(exist, t_d[:, None, None, None, None], axis=1)[:, 0]
    out["defogger"] = jax.vmap(lambda e: pick_target(e, k, s))(at_d)
    out["defogger_starts"] = jax.vmap(lambda e, st, sl: pick_start_target(e, st, sl, k, s))(
        at_d, games.start[:, 0], games.game_map.start_locations)
  return out, t_d


def evaluate_bots(key: jax.Array, num_games: int, config, module=None, params=None) -> dict:
  """Win rates of the bots on ``num_games`` fresh games (``defogger`` only when a model is given).

  Returns ``{"win_rate": {bot: rate}, "win_rate_rush": {bot: rate on games where the bot rushes},
  "target_error": {bot: mean distance from target to the true enemy base}, "num_games": n}``.
  """
  k_games, k_rand = jax.random.split(key)
  gcfg = train.game_config(config)
  games, seqs = jax.jit(lambda kk: observe(kk, num_games, config))(k_games)
  exist = None
  if module is not None:
    h0 = list(config.horizons).index(0)
    exist = jnp.asarray(train.predict(module, params, seqs, config)[1][..., h0, :])
  targets, _ = _targets(games, seqs, k_rand, config, exist)
  play_fn = jax.jit(lambda kk, tg: play(kk, num_games, gcfg, tg))
  rush = np.asarray(games.strategy[:, 0]) == 0
  true_base = np.asarray(targets["oracle"])
  res = {"win_rate": {}, "win_rate_rush": {}, "target_error": {}, "num_games": num_games,
         "num_rush": int(rush.sum())}
  for name, tg in targets.items():
    won, _ = play_fn(k_games, tg)
    won = np.asarray(won)
    res["win_rate"][name] = float(won.mean())
    res["win_rate_rush"][name] = float(won[rush].mean()) if rush.any() else float("nan")
    res["target_error"][name] = float(np.linalg.norm(np.asarray(tg) - true_base, axis=1).mean())
  return res


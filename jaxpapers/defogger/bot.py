"""The downstream bot experiment: a rule-based player 0 whose decisions use its estimate of the enemy.

The paper's downstream use of the defogger: a rule-based bot whose estimate of the enemy (its
army composition and its base) comes from the defogger instead of from what it remembers. Here
player 0 is the generator's scripted player (build order, rally, attack) except for the decisions
it takes at one decision frame ``F_d = (t_d + 1) · skip`` (the first frame after featurizer step
``t_d``), from its own fogged observations of frames ``[0, F_d)``:

* **production (composition)**: from its estimate of the enemy's army — infantry, heavy and air
  unit counts ``E`` — it switches production to the counter (``world.DAMAGE``: heavy beats
  infantry, air beats heavy, infantry beats air) of the enemy's main army type
  ``argmax_u E_u · HP_u``, building the producer building (and its prerequisites) when missing.
  With no enemy army in the estimate (``Σ E_u · HP_u < 1 unit``) it keeps its scripted production.
* **attack target (base location)**: where its army attacks (it attacks at
  ``max(scripted attack frame, F_d)``).

Bots (all take the same rule; only the estimate differs):

* ``defogger``: composition = the trained model's predicted total enemy counts per type at
  ``t_d`` (its global composition head, at the longest horizon: the army the bot will meet); target = the candidate start location,
  other than its own, whose cell has the highest summed predicted enemy-building existence
  (horizon 0). The model is causal, so reading step ``t_d`` of a run over the whole sequence
  equals running it on the prefix.
* ``memory``: composition = the most units of each type seen at once in any step up to ``t_d``;
  target = the cell where an enemy building was seen most recently, else a random candidate start
  location other than its own.
* ``memory_scout`` (a stronger memory rule): as ``memory``, but the random fallback also skips
  candidate start locations whose cell the bot has already seen.
* ``fixed_heavy``: no estimate of the composition — always switch to heavy units (the counter of
  infantry, the most common main enemy army at the decision) — with the ``memory_scout`` target:
  what a prior alone gives.
* ``scripted``: the scripted player itself (its strategy's production, the true enemy base).
* ``oracle``: the rule with the true enemy composition at ``t_d + max horizon`` and the true base
  (an upper bound of the rule).

The orders act from ``F_d`` on, so frames before it are bit-identical to the game the decision was
taken on (``world.BotOrders``): re-simulating the whole game equals simulating ``[0, F_d)``
scripted and ``[F_d, F)`` with the orders.

Outcome: each player's *lost value* is the summed maximum HP of its units and buildings that died
during the game (workers and buildings included). The bot wins if the enemy lost more value than
it did, loses if it lost more, ties otherwise; the win rate counts a tie as half a win.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers._src.validation import check_array
from jaxpapers.defogger import dataset, world
from jaxpapers.defogger.predict import predict

BUILDINGS = np.asarray(world.BUILDING_TYPES)
ARMY = np.array([2, 3, 4])  # infantry, heavy, air
COUNTER = np.array([1, 2, 0])  # index into ARMY of the counter of each ARMY type
# Production propensities (worker, scout, infantry, heavy, air) after a switch to each ARMY type.
SWITCH_PRODUCTION = np.array([[0.10, 0.0, 0.30, 0.04, 0.04],
                              [0.10, 0.0, 0.04, 0.30, 0.04],
                              [0.10, 0.0, 0.04, 0.04, 0.30]], np.float32)
# Buildings (barracks, factory, starport) a switch to each ARMY type needs.
SWITCH_TECH = np.array([[True, False, False], [True, True, False], [True, True, True]])


def cell_centres(grid: int, kernel: int, stride: int) -> jax.Array:
  """Map coordinate of the centre of each of the ``grid`` cells along one axis."""
  return jnp.arange(grid, dtype=jnp.float32) * stride + kernel / 2


def decision_step(decision_frame: int, skip: int, num_steps: int) -> int:
  """The last featurizer step whose frames all precede ``decision_frame`` (clipped to the game)."""
  return int(np.clip(decision_frame // skip - 1, 0, num_steps - 1))


def counter_choice(composition) -> jax.Array:
  """Index into ``ARMY`` of the unit type to switch production to, from an estimated enemy army
  ``composition [..., 3]`` (infantry, heavy, air counts); ``-1`` (keep the scripted production)
  when the estimate holds less than one unit's worth of HP."""
  hp = jnp.asarray(world.HP)[ARMY]
  strength = jnp.asarray(composition, jnp.float32) * hp
  main = jnp.argmax(strength, axis=-1)
  return jnp.where(strength.sum(-1) >= hp.min(), jnp.asarray(COUNTER)[main], -1)


def make_orders(choice, frame, target, strategy0) -> world.BotOrders:
  """``world.BotOrders`` for a production switch to ``ARMY[choice]`` (``-1``: the scripted
  production of ``strategy0``) and an attack on ``target``, from ``frame`` on."""
  c = jnp.maximum(choice, 0)
  keep = choice < 0
  production = jnp.where(keep, world.strategy_production(strategy0), jnp.asarray(SWITCH_PRODUCTION)[c])
  tech = jnp.where(keep, False, jnp.asarray(SWITCH_TECH)[c])
  return world.BotOrders(jnp.asarray(frame, jnp.int32), jnp.asarray(target, jnp.float32), production,
                         tech)


def pick_target(exist: jax.Array, kernel: int, stride: int) -> jax.Array:
  """``(x, y)`` centre of the cell maximising the summed enemy-building existence ``exist[G, G, N]``
  (rows index y, columns x).

  Raises:
    ValueError: if ``exist`` is not ``[G, G, N]`` or (concrete) holds NaN/inf, which has no
      maximising cell.
  """
  check_array(exist, "exist", ndim=3, shape=(None, None, world.NUM_TYPES), finite=True)
  chex.assert_rank(exist, 3)
  score = exist[..., BUILDINGS].sum(-1)
  g = score.shape[0]
  row, col = jnp.unravel_index(jnp.argmax(score), score.shape)
  c = cell_centres(g, kernel, stride)
  return jnp.stack([c[col], c[row]])


def pick_start_target(exist: jax.Array, own_start, start_locations, kernel: int, stride: int) -> jax.Array:
  """The candidate start location (other than ``own_start``) whose cell has the highest summed
  predicted enemy-building existence (the ``defogger`` bot's target)."""
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

  Raises:
    ValueError: if ``enemy_in`` is not ``[T, G, G, N]``, ``visible`` not ``[T, G, G]``, or
      (concrete) ``enemy_in`` holds NaN/inf.
  """
  check_array(enemy_in, "enemy_in", ndim=4, shape=(None, None, None, world.NUM_TYPES), finite=True)
  check_array(visible, "visible", ndim=3, shape=tuple(enemy_in.shape[:3]))
  chex.assert_rank([enemy_in, visible], [4, 3])
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


def memory_composition(enemy_in: jax.Array, t_d) -> jax.Array:
  """``[3]``: the most enemy infantry, heavy and air units seen at once in a step ``<= t_d``
  (fogged enemy counts ``[T, G, G, N]``, with ``W = S`` so that no unit is counted twice)."""
  totals = enemy_in[..., ARMY].sum(axis=(1, 2))  # [T, 3]
  return jnp.max(jnp.where((jnp.arange(enemy_in.shape[0]) <= t_d)[:, None], totals, 0.0), axis=0)


def lost_value(game: world.Game) -> jax.Array:
  """``[2]`` summed max HP of each player's units and buildings that died during the game."""
  died = game.alive[:-1] & ~game.alive[1:]  # [F-1, 2, U]
  return jnp.sum(jnp.where(died, jnp.asarray(world.HP)[game.type[:-1]], 0.0), axis=(0, 2))


def outcome(game: world.Game) -> jax.Array:
  """1 (player 0 wins: the enemy lost more value), 0.5 (tie) or 0 (player 0 lost more)."""
  lost = lost_value(game)
  return jnp.where(lost[1] > lost[0], 1.0, jnp.where(lost[1] == lost[0], 0.5, 0.0))


def play(key: jax.Array, num_games: int, gcfg: world.GameConfig, orders: world.BotOrders):
  """Outcomes ``[num_games]`` and lost values ``[num_games, 2]`` of the games of ``key`` replayed with
  player 0's ``orders`` (leading axis ``[num_games]``)."""
  games = world.generate_games(key, num_games, gcfg, orders)
  return jax.vmap(outcome)(games), jax.vmap(lost_value)(games)


def observe(key: jax.Array, num_games: int, config):
  """The scripted games of ``key`` and player 0's sequences of them."""
  games = world.generate_games(key, num_games, dataset.game_config(config))
  seqs = jax.vmap(lambda g: dataset.sequence_features(g, 0, config))(games)
  return games, seqs


def _decisions(games: world.Game, seqs: dataset.Dataset, key, config, t_d: int, army=None,
               exist=None):
  """``{bot: (composition [G, 3], target [G, 2])}`` for every bot at decision step ``t_d``."""
  k, s = config.kernel, config.stride
  keys = jax.random.split(key, games.start.shape[0])
  sl, own = games.game_map.start_locations, games.start[:, 0]
  mem_comp = jax.vmap(lambda ei: memory_composition(ei, t_d))(seqs.enemy_in)
  mem = lambda elim: jax.vmap(
      lambda ei, vis, st, l, kk: memory_target(ei, vis, t_d, st, l, kk, k, s, eliminate_scouted=elim)
  )(seqs.enemy_in, seqs.visible, own, sl, keys)
  t_true = min(t_d + max(config.horizons), seqs.enemy_truth.shape[1] - 1)
  true_comp = seqs.enemy_truth[:, t_true][..., ARMY].sum(axis=(1, 2))
  true_base = jax.vmap(lambda l, st: l[st])(sl, games.start[:, 1])
  out = {"oracle": (true_comp, true_base), "memory": (mem_comp, mem(False)),
         "memory_scout": (mem_comp, mem(True))}
  if army is not None:
    comp = army[:, t_d][..., ARMY]
    target = jax.vmap(lambda e, st, l: pick_start_target(e, st, l, k, s))(exist[:, t_d], own, sl)
    out["defogger"] = (comp, target)
  return out


def evaluate_bots(key: jax.Array, num_games: int, config, module=None, params=None) -> dict:
  """Win rates of the bots on ``num_games`` fresh games (``defogger`` only when a model is given).

  Returns ``{"win_rate": {bot: rate}, "choice": {bot: fraction of games per switch (keep,
  infantry, heavy, air)}, "target_error": {bot: mean distance from target to the true enemy base},
  "composition_error": {bot: mean L1 error of the estimated army counts}, "num_games": n,
  "decision_frame": F_d}``.
  """
  k_games, k_rand = jax.random.split(key)
  gcfg = dataset.game_config(config)
  games, seqs = jax.jit(lambda kk: observe(kk, num_games, config))(k_games)
  t_d = decision_step(int(config.bot_decision_frame), config.skip, seqs.x.shape[1])
  frame = (t_d + 1) * config.skip
  army = exist = None
  if module is not None:
    _, e, _, a = predict(module, params, seqs, config)
    army, exist = a[:, :, -1], e[..., list(config.horizons).index(0), :]
  decisions = _decisions(games, seqs, k_rand, config, t_d, army, exist)
  play_fn = jax.jit(lambda kk, o: play(kk, num_games, gcfg, o))
  strategy0 = games.strategy[:, 0]
  true_comp, true_base = (np.asarray(a) for a in decisions["oracle"])
  res = {"win_rate": {}, "choice": {}, "target_error": {}, "composition_error": {},
         "num_games": num_games, "decision_frame": frame}
  scripted = jax.vmap(world.scripted_orders)(strategy0, jnp.asarray(true_base))
  res["win_rate"]["scripted"] = float(np.asarray(play_fn(k_games, scripted)[0]).mean())
  # no estimate at all: always switch to heavy units (the counter of infantry, the most common
  # main enemy army at the decision), attacking the memory_scout target
  n = strategy0.shape[0]
  fixed = (None, decisions["memory_scout"][1])
  for name, (comp, target) in list(decisions.items()) + [("fixed_heavy", fixed)]:
    choice = jnp.ones(n, jnp.int32) if comp is None else counter_choice(comp)
    orders = jax.vmap(lambda ch, tg, st: make_orders(ch, frame, tg, st))(choice, target, strategy0)
    won = np.asarray(play_fn(k_games, orders)[0])
    res["win_rate"][name] = float(won.mean())
    res["choice"][name] = np.bincount(np.asarray(choice) + 1, minlength=4).tolist()
    res["target_error"][name] = float(np.linalg.norm(np.asarray(target) - true_base, axis=1).mean())
    if comp is not None:
      res["composition_error"][name] = float(np.abs(np.asarray(comp) - true_comp).sum(1).mean())
  return res


"""Defogger downstream bot: target override of the generator, target picking, memory rule, outcome."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers._src import testing
from jaxpapers.defogger import bot, world

N = world.NUM_TYPES
SL = jnp.array([[6.0, 6.0], [26.0, 6.0], [6.0, 26.0], [26.0, 26.0]])
# long enough for a rush (attack frame 45) to start; small map and few slots keep compiles short
CFG = world.GameConfig(map_size=32, max_units=16, num_frames=64, scout_frame=2)
NUM = 4


@pytest.fixture(scope="module")
def games():
  key = jax.random.key(11)
  default = jax.jit(lambda k: world.generate_games(k, NUM, CFG))(key)
  targeted = jax.jit(lambda k, t: world.generate_games(k, NUM, CFG, t))
  sl, start = default.game_map.start_locations, default.start
  true_base = jax.vmap(lambda s, i: s[i])(sl, start[:, 1])
  wrong = jax.vmap(lambda s, i: s[(i + 1) % 4])(sl, start[:, 0])  # a corner next to the bot's own
  return default, targeted(key, true_base), targeted(key, wrong)


def test_true_target_is_the_scripted_game_and_prefix_is_unchanged(games):
  default, with_true, with_wrong = games
  testing.assert_trees_equal(with_true, default)  # bit for bit
  attack = np.asarray(world.attack_frame(default.strategy[:, 0]))
  moved = []
  for i in range(NUM):
    a = min(int(attack[i]), CFG.num_frames)
    for name in ("alive", "type", "x", "y", "uid", "visible"):
      np.testing.assert_array_equal(np.asarray(getattr(with_wrong, name)[i, :a]),
                                    np.asarray(getattr(default, name)[i, :a]), err_msg=name)
    if a < CFG.num_frames:
      moved.append(not np.array_equal(np.asarray(with_wrong.x[i, a:, 0]), np.asarray(default.x[i, a:, 0])))
  if moved:  # once it attacks, the army of player 0 goes elsewhere
    assert any(moved)


def test_pick_target_hand_made():
  exist = jnp.zeros((4, 4, N)).at[2, 1, 5].set(0.9).at[0, 3, 6].set(0.5)
  exist = exist.at[0, 0, 2].set(1.0)  # a unit, not a building: ignored
  np.testing.assert_allclose(bot.pick_target(exist, 8, 8), [12.0, 20.0])  # (x = col, y = row)
  # summed over building types: two buildings in a cell beat one more likely building
  exist2 = exist.at[3, 3, 6].set(0.6).at[3, 3, 7].set(0.6)
  np.testing.assert_allclose(bot.pick_target(exist2, 8, 8), [28.0, 28.0])
  np.testing.assert_allclose(bot.pick_target(exist, 8, 4), [8.0, 12.0])  # overlapping windows
  # restricted to candidate starts other than the own one: start 1 = (26, 6) sits in row 0, col 3
  np.testing.assert_allclose(bot.pick_start_target(exist, 0, SL, 8, 8), [26.0, 6.0])
  np.testing.assert_allclose(bot.pick_start_target(exist2, 3, SL, 8, 8), [26.0, 6.0])
  assert list(np.asarray(bot.decision_step(jnp.array([0, 1, 2]), 4, 40))) == [10, 27, 22]
  assert list(np.asarray(bot.decision_step(jnp.array([0, 1]), 4, 8))) == [7, 7]



def test_memory_target_last_seen_building_and_fallback():
  ei = jnp.zeros((5, 4, 4, N)).at[1, 3, 0, 5].set(1.0).at[3, 1, 2, 8].set(1.0)
  ei = ei.at[4, 2, 2, 2].set(3.0)  # enemy infantry, not a building
  vis = jnp.zeros((5, 4, 4), bool)
  k = jax.random.key(0)
  np.testing.assert_allclose(bot.memory_target(ei, vis, 2, 0, SL, k, 8, 8), [4.0, 28.0])
  np.testing.assert_allclose(bot.memory_target(ei, vis, 4, 0, SL, k, 8, 8), [20.0, 12.0])
  # nothing seen: a random candidate start other than the own one, each of the other three
  empty = jnp.zeros_like(ei)
  fn = jax.jit(jax.vmap(lambda kk: bot.memory_target(empty, vis, 4, 2, SL, kk, 8, 8)))
  picks = np.asarray(fn(jax.random.split(k, 64)))
  idx = {int(np.argmin(np.abs(SL - p).sum(1))) for p in picks}
  assert idx == {0, 1, 3}
  # with elimination of scouted corners: start 1 (cell row 0, col 3) and 3 were seen
  seen = vis.at[2, 0, 3].set(True).at[1, 3, 3].set(True)
  fn2 = jax.jit(jax.vmap(lambda kk: bot.memory_target(empty, seen, 4, 2, SL, kk, 8, 8,
                                                      eliminate_scouted=True)))
  np.testing.assert_allclose(fn2(jax.random.split(k, 16)), np.broadcast_to(SL[0], (16, 2)))
  # the bot's decision step bounds what it remembers: a corner seen after t_d is not excluded
  idx2 = {int(np.argmin(np.abs(SL - p).sum(1))) for p in np.asarray(
      jax.vmap(lambda kk: bot.memory_target(empty, seen, 1, 2, SL, kk, 8, 8, eliminate_scouted=True))(
          jax.random.split(k, 64)))}
  assert idx2 == {0, 1}


def test_targets_vmapped_equal_loop(games):
  from jaxpapers.defogger import config as dconfig
  from jaxpapers.defogger import train

  default = games[0]
  c = dconfig.get_config("smoke")
  c.map_size, c.max_units, c.num_frames = CFG.map_size, CFG.max_units, CFG.num_frames
  seqs = jax.jit(jax.vmap(lambda g: train.sequence_features(g, 0, c)))(default)
  exist = jax.nn.sigmoid(jax.random.normal(jax.random.key(1), seqs.enemy_in.shape[:4] + (N,)))
  targets, t_d = jax.jit(lambda g, s, k, e: bot._targets(g, s, k, c, e))(
      default, seqs, jax.random.key(2), exist)
  keys = jax.random.split(jax.random.key(2), NUM)
  pick = jax.jit(lambda e: bot.pick_target(e, 8, 8))
  mem = jax.jit(lambda *a: bot.memory_target(*a, 8, 8))
  for i in range(NUM):
    g = jax.tree.map(lambda a, i=i: a[i], default)
    s = jax.tree.map(lambda a, i=i: a[i], seqs)
    np.testing.assert_allclose(targets["defogger"][i], pick(exist[i, t_d[i]]))
    np.testing.assert_allclose(targets["memory"][i], mem(
        s.enemy_in, s.visible, t_d[i], g.start[0], g.game_map.start_locations, keys[i]))
    np.testing.assert_allclose(targets["oracle"][i], g.game_map.start_locations[g.start[1]])
  # targets are cell centres / corners on the map
  for tg in targets.values():
    assert np.all((np.asarray(tg) >= 0) & (np.asarray(tg) < CFG.map_size))
  out = jax.vmap(bot.outcome)(default)
  assert out.shape == (NUM,) and set(np.asarray(out).tolist()) <= {0.0, 0.5, 1.0}


def test_outcome_hand_made():
  f, u = 3, 4
  alive = np.zeros((f, 2, u), bool)
  types = np.zeros((f, 2, u), np.int32)
  alive[:, 0, :2] = True
  alive[:, 1, :2] = True
  types[:, 1, 0] = 5  # enemy base
  types[:, 0, :2] = 2  # bot infantry
  game = lambda a: world.Game(None, None, None, jnp.asarray(a), jnp.asarray(types), None, None, None, None)
  assert float(bot.outcome(game(alive))) == 0.5  # nobody lost anything
  a = alive.copy()
  a[2, 1, 0] = False  # the enemy base dies in the last frame
  a[1:, 0, :2] = False  # both bot infantry die
  np.testing.assert_allclose(bot.lost_value(game(a)), [100.0, 800.0])
  assert float(bot.outcome(game(a))) == 1.0
  a[2, 1, 0] = True
  assert float(bot.outcome(game(a))) == 0.0
  # a reused slot (dead, then a new unit) counts the death once
  a = alive.copy()
  a[1, 1, 1] = False
  np.testing.assert_allclose(bot.lost_value(game(a)), [0.0, 40.0])

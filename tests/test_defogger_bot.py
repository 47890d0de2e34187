"""Defogger downstream bot: orders in the generator, counters, decisions, memory rules, outcome."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers._src import testing
from jaxpapers.defogger import bot, world

N = world.NUM_TYPES
SL = jnp.array([[6.0, 6.0], [26.0, 6.0], [6.0, 26.0], [26.0, 26.0]])
# long enough for a rush (attack frame 45) to start; small map and few slots keep compiles short
CFG = world.GameConfig(map_size=32, max_units=32, num_frames=64, scout_frame=2)
NUM = 4


F_D = 40  # the bot's decision frame in these tests


def _true_base(g):
  return jax.vmap(lambda s, i: s[i])(g.game_map.start_locations, g.start[:, 1])


@pytest.fixture(scope="module")
def games():
  key = jax.random.key(11)
  default = jax.jit(lambda k: world.generate_games(k, NUM, CFG))(key)
  ordered = jax.jit(lambda k, o: world.generate_games(k, NUM, CFG, o))
  sl, start = default.game_map.start_locations, default.start
  scripted = jax.vmap(world.scripted_orders)(default.strategy[:, 0], _true_base(default))
  wrong = jax.vmap(lambda s, i: s[(i + 1) % 4])(sl, start[:, 0])  # a corner next to the bot's own
  air = jax.vmap(lambda t, st: bot.make_orders(jnp.int32(2), F_D, t, st))(wrong, default.strategy[:, 0])
  return default, ordered(key, scripted), ordered(key, air)


def test_scripted_orders_are_the_scripted_game_and_prefix_is_unchanged(games):
  default, with_script, with_air = games
  testing.assert_trees_equal(with_script, default)  # bit for bit
  for name in ("alive", "type", "x", "y", "uid", "visible"):
    np.testing.assert_array_equal(np.asarray(getattr(with_air, name)[:, :F_D]),
                                  np.asarray(getattr(default, name)[:, :F_D]), err_msg=name)
  # the tech switch: from F_D + 2 on player 0 owns a starport (built on the tech tree), then air
  alive, types = np.asarray(with_air.alive[:, :, 0]), np.asarray(with_air.type[:, :, 0])
  room = alive[:, F_D - 1].sum(1) <= CFG.max_units - 3  # free slots for the three buildings
  assert room.any()
  for i in np.nonzero(room)[0]:
    owned = lambda f, t, i=i: bool(np.any(alive[i, f] & (types[i, f] == t)))
    assert all(owned(F_D + 2, t) for t in (6, 7, 8))
    for f in range(F_D, CFG.num_frames):  # prerequisites whenever a starport stands
      assert not owned(f, 8) or owned(f, 7)
    assert np.any(alive[i, -1] & (types[i, -1] == 4))  # air units were made


def test_counters_in_combat():
  def duel(a, b):
    units = world.Units(alive=jnp.ones((2, 1), bool), type=jnp.array([[a], [b]]),
                        x=jnp.array([[10.0], [11.0]]), y=jnp.array([[10.0], [10.0]]),
                        hp=jnp.array([[500.0], [500.0]]), uid=jnp.zeros((2, 1), jnp.int32),
                        aux=jnp.zeros((2, 1), jnp.int32))
    return 500.0 - np.asarray(world._combat(units).hp[:, 0])  # damage taken by each side

  np.testing.assert_allclose(duel(3, 4), [16.0, 0.0])  # heavy cannot hit air; air hunts heavy
  np.testing.assert_allclose(duel(3, 2), [3.0, 24.0])  # heavy crushes infantry
  np.testing.assert_allclose(duel(2, 4), [4.0, 12.0])  # infantry shoots air
  np.testing.assert_allclose(duel(9, 4), [8.0, 20.0])  # turrets are anti-air


def test_counter_choice_and_orders():
  comp = jnp.array([[10.0, 0, 0], [0, 5, 0], [0, 0, 3], [0, 0, 0], [4, 1, 0], [2, 1, 0]])
  # HP-weighted main army type -> its counter (heavy, air, infantry); nothing -> keep (-1)
  assert np.asarray(bot.counter_choice(comp)).tolist() == [1, 2, 0, -1, 1, 2]
  keep = bot.make_orders(jnp.int32(-1), 44, jnp.zeros(2), jnp.int32(1))
  np.testing.assert_allclose(keep.production, world.strategy_production(1))
  assert not np.any(np.asarray(keep.tech))
  heavy = bot.make_orders(jnp.int32(1), 44, jnp.zeros(2), jnp.int32(1))
  assert int(np.argmax(np.asarray(heavy.production)[2:])) == 1
  assert np.asarray(heavy.tech).tolist() == [True, True, False]


def test_memory_composition():
  ei = jnp.zeros((4, 2, 2, N)).at[0, 0, 0, 2].set(3.0).at[1, 1, 1, 2].set(2.0).at[1, 0, 1, 3].set(1.0)
  ei = ei.at[3, 0, 0, 4].set(5.0)
  np.testing.assert_allclose(bot.memory_composition(ei, 2), [3.0, 1.0, 0.0])  # most seen at once
  np.testing.assert_allclose(bot.memory_composition(ei, 3), [3.0, 1.0, 5.0])


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
  assert bot.decision_step(44, 4, 40) == 10 and bot.decision_step(44, 4, 8) == 7



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


def test_decisions_vmapped_equal_loop(games):
  from jaxpapers.defogger import config as dconfig
  from jaxpapers.defogger import train

  default = games[0]
  c = dconfig.get_config("smoke")
  c.map_size, c.max_units, c.num_frames = CFG.map_size, CFG.max_units, CFG.num_frames
  seqs = jax.jit(jax.vmap(lambda g: train.sequence_features(g, 0, c)))(default)
  exist = jax.nn.sigmoid(jax.random.normal(jax.random.key(1), seqs.enemy_in.shape[:4] + (N,)))
  army = jnp.abs(jax.random.normal(jax.random.key(3), seqs.enemy_in.shape[:2] + (N,)))
  t_d = 9
  dec = jax.jit(lambda g, s, k, a, e: bot._decisions(g, s, k, c, t_d, a, e))(
      default, seqs, jax.random.key(2), army, exist)
  keys = jax.random.split(jax.random.key(2), NUM)
  pick = jax.jit(lambda e, st, sl: bot.pick_start_target(e, st, sl, 8, 8))
  mem = jax.jit(lambda *a: bot.memory_target(*a, 8, 8))
  for i in range(NUM):
    g = jax.tree.map(lambda a, i=i: a[i], default)
    s = jax.tree.map(lambda a, i=i: a[i], seqs)
    np.testing.assert_allclose(dec["defogger"][1][i], pick(exist[i, t_d], g.start[0],
                                                           g.game_map.start_locations))
    np.testing.assert_allclose(dec["defogger"][0][i], army[i, t_d, bot.ARMY])
    np.testing.assert_allclose(dec["memory"][1][i], mem(
        s.enemy_in, s.visible, t_d, g.start[0], g.game_map.start_locations, keys[i]))
    np.testing.assert_allclose(dec["memory"][0][i], bot.memory_composition(s.enemy_in, t_d))
    np.testing.assert_allclose(dec["oracle"][1][i], g.game_map.start_locations[g.start[1]])
  # targets are cell centres / corners on the map
  for _, tg in dec.values():
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

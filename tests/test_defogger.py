"""Defogger: generator, featurizer, baselines, metrics, model causality, loaders, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers._src import testing
from jaxpapers.defogger import data, features, metrics, model, world

CFG = world.GameConfig(map_size=32, max_units=16, num_frames=24, scout_frame=2)
N = world.NUM_TYPES


@pytest.fixture(scope="module")
def games():
  return jax.jit(lambda k: world.generate_games(k, 3, CFG))(jax.random.key(0))


def _game(games, i):
  return jax.tree.map(lambda a: a[i], games)


def test_generator_vmap_equals_loop_and_is_reproducible(games):
  keys = jax.random.split(jax.random.key(0), 3)
  single = jax.jit(lambda k: world.generate_game(k, CFG))
  for i in range(3):
    testing.assert_trees_equal(single(keys[i]), _game(games, i))
  g = _game(games, 0)
  assert g.alive.shape == (CFG.num_frames, 2, CFG.max_units)
  alive = np.asarray(g.alive)
  assert alive[0].sum() == 12  # base, 4 workers, scout each
  # units stay on the map; visibility only for alive units
  assert np.all((np.asarray(g.x)[alive] >= 0) & (np.asarray(g.x)[alive] < CFG.map_size))
  assert not np.any(np.asarray(g.visible) & ~alive)
  # the tech tree holds: a factory is only ever built while a barracks exists
  types = np.asarray(g.type)
  for f in range(CFG.num_frames):
    for p in (0, 1):
      have = set(types[f, p][alive[f, p]].tolist())
      assert 7 not in have or 6 in have or f > 0


def test_featurizer_counts_sum_and_overlap():
  x = jnp.array([3.0, 12.5, 17.0, 30.9])
  y = jnp.array([4.0, 12.5, 2.0, 30.0])
  t = jnp.array([0, 2, 2, 5])
  m = jnp.array([True, True, True, False])
  c = features.count_units(x, y, t, m, map_size=32, kernel=8, stride=8)
  assert c.shape == (4, 4, N)
  np.testing.assert_array_equal(c.sum(axis=(0, 1)), np.bincount([0, 2, 2], minlength=N))
  assert float(c[0, 0, 0]) == 1 and float(c[1, 1, 2]) == 1 and float(c[0, 2, 2]) == 1
  c2 = features.count_units(x[1:2], y[1:2], t[1:2], m[1:2], map_size=32, kernel=8, stride=4)
  assert c2.shape == (7, 7, N)
  assert float(c2.sum()) == 4  # an interior unit lands in four overlapping cells
  np.testing.assert_array_equal(np.argwhere(np.asarray(c2[..., 2]) > 0), [[2, 2], [2, 3], [3, 2], [3, 3]])


def test_featurize_own_equals_truth_enemy_bounded(games):
  g = _game(games, 1)
  fc1 = features.FeatureConfig(kernel=8, stride=8, skip=1)
  f = features.featurize(g, 0, fc1)
  np.testing.assert_array_equal(f.inputs[..., :N], f.truth[..., :N])
  assert bool(jnp.all(f.inputs[..., N:] <= f.truth[..., N:]))  # skip=1: seen units where they are
  f4 = features.featurize(g, 1, features.FeatureConfig(kernel=8, stride=8, skip=4))
  assert f4.inputs.shape[0] == CFG.num_frames // 4
  assert bool(jnp.all(f4.inputs[..., N:].sum((1, 2)) <= f4.truth[..., N:].sum((1, 2))))
  # nothing seen (vision radius 0) => no enemy input; no cell visible
  blind = g._replace(visible=jnp.zeros_like(g.visible))
  fb = features.featurize(blind, 0, fc1, vision_scale=0.0)
  assert float(fb.inputs[..., N:].sum()) == 0 and not bool(fb.visible.any())
  fs = features.featurize(g, 0, features.FeatureConfig(kernel=8, stride=8, skip=1, divide_by=4.0))
  np.testing.assert_allclose(fs.inputs * 4.0, f.inputs, rtol=1e-6)


def test_baselines_properties(games):
  f = features.featurize(_game(games, 2), 0, features.FeatureConfig(skip=2, kernel=8, stride=8))
  e = f.inputs[..., N:]
  prev = features.previously_seen(e, f.visible)
  vis = np.asarray(f.visible)
  np.testing.assert_array_equal(np.asarray(prev)[vis], np.asarray(e)[vis])
  mem = features.perfect_memory(e)
  assert bool(jnp.all(jnp.diff(mem, axis=0) >= 0))
  np.testing.assert_array_equal(features.input_only(e), e)
  present = jax.random.bernoulli(jax.random.key(3), 0.2, (20, N))
  once = features.tech_closure(present)
  np.testing.assert_array_equal(features.tech_closure(once), once)
  starport_only = jnp.zeros(N, bool).at[8].set(True)
  np.testing.assert_array_equal(np.nonzero(np.asarray(features.tech_closure(starport_only)))[0],
                                [5, 6, 7, 8])  # starport => factory => barracks => base
  mc = features.memory_channels(e, f.visible)
  assert mc.shape == e.shape[:-1] + (3 * N + 2,)
  np.testing.assert_array_equal(mc[..., :N], prev)
  np.testing.assert_array_equal(mc[..., N:2 * N], mem)
  np.testing.assert_array_equal(mc[..., 3 * N], vis)  # visible now; steps since visible: 0 then
  assert float(jnp.abs(mc[..., 3 * N + 1][vis]).max()) == 0.0
  since = np.expm1(np.asarray(mc[..., 3 * N + 1]))
  hidden_after_visible = ~vis[1:] & vis[:-1]
  np.testing.assert_allclose(since[1:][hidden_after_visible], 1.0, rtol=1e-5)


def test_metrics_hand_cases():
  true = jnp.array([[[1, 0, 1, 0]], [[0, 1, 0, 0]]], bool)  # 2 games
  assert float(metrics.f1_score(true, true)) == 1.0
  empty = jnp.zeros_like(true)
  assert float(metrics.f1_score(empty, true)) == 0.0
  pred = jnp.array([[[1, 1, 0, 0]], [[0, 1, 0, 1]]], bool)
  p, r = metrics.per_game_pr(pred, true)
  np.testing.assert_allclose(p, [0.5, 0.5])
  np.testing.assert_allclose(r, [0.5, 1.0])
  np.testing.assert_allclose(metrics.f1_score(pred, true), 2 * 0.5 * 0.75 / 1.25)
  mask = jnp.array([[[True, False, True, True]], [[True, True, True, True]]])
  p, r = metrics.per_game_pr(pred, true, mask)
  np.testing.assert_allclose(p, [1.0, 0.5])
  assert not bool(jnp.isnan(metrics.f1_score(empty, empty)))


@pytest.fixture(scope="module")
def small_model():
  module = model.DefoggerStep(encoder="ml", hidden=4, levels=1, horizons=(0, 1))
  params = model.init(jax.random.key(0), module, 1, 4, 6)
  params = jax.tree.map(lambda p: p + 0.1 * jax.random.normal(jax.random.key(1), p.shape), params)
  return module, params


def test_model_is_causal_and_scan_equals_loop(small_model):
  module, params = small_model
  xs = jax.random.normal(jax.random.key(2), (1, 5, 4, 4, 6))
  ei = jnp.abs(jax.random.normal(jax.random.key(3), (1, 5, 4, 4, N)))
  jac = jax.jacrev(lambda x: model.unroll(module, params, x, ei)[1][0, 2].sum())(xs)
  assert float(jnp.abs(jac[:, 3:]).max()) == 0.0  # step 2 ignores steps 3, 4
  assert float(jnp.abs(jac[:, :3]).max()) > 0.0
  outs = model.unroll(module, params, xs, ei)
  assert len(outs) == 4  # counts, existence, build tree, total counts per type
  state = module.initial_state(1, 4)
  for t in range(5):
    state, step_outs = module.apply(params, state, xs[:, t], ei[:, t])
    for a, b in zip(step_outs, outs):
      np.testing.assert_allclose(a, b[:, t], rtol=1e-5, atol=1e-6)
  # the non-recurrent ablation == every step from the zero state
  flat = model.unroll(module, params, xs, ei, recurrent=False)[1]
  for t in range(5):
    e = module.apply(params, module.initial_state(1, 4), xs[:, t], ei[:, t])[1][1]
    np.testing.assert_allclose(e, flat[:, t], rtol=1e-5, atol=1e-6)
  # vmap over games == loop
  xs2 = jnp.concatenate([xs, xs[:, ::-1]])
  ei2 = jnp.concatenate([ei, ei[:, ::-1]])
  both = model.unroll(module, params, xs2, ei2)[1]
  np.testing.assert_allclose(both[1:], model.unroll(module, params, xs2[1:], ei2[1:])[1],
                             rtol=1e-5, atol=1e-6)


def test_zero_initialised_delta_head_predicts_the_input():
  for encoder in ("ml", "str"):
    module = model.DefoggerStep(encoder=encoder, hidden=4, levels=1, horizons=(0, 3))
    params = model.init(jax.random.key(0), module, 1, 4, 6)
    xs = jax.random.normal(jax.random.key(2), (2, 3, 4, 4, 6))
    ei = jnp.abs(jax.random.normal(jax.random.key(3), (2, 3, 4, 4, N)))
    counts = model.unroll(module, params, xs, ei)[0]
    for k in range(2):
      np.testing.assert_allclose(counts[..., k, :], ei, rtol=1e-6)


def test_training_inputs_memory_channels_and_delta_base(games):
  from jaxpapers.defogger import config as dconfig
  from jaxpapers.defogger import train

  c = dconfig.get_config("smoke")
  c.map_size, c.max_units, c.num_frames = CFG.map_size, CFG.max_units, CFG.num_frames
  seq = jax.jit(jax.vmap(lambda g: train.sequence_features(g, 0, c)))(games)
  assert seq.x.shape[-1] == 5 * N + 7  # own, enemy, memory (3N + 2), map (4), time
  np.testing.assert_array_equal(seq.x[..., N:2 * N], seq.enemy_in)
  last = jax.vmap(features.previously_seen)(seq.enemy_in, seq.visible)
  np.testing.assert_array_equal(seq.x[..., 2 * N:3 * N], last)
  c.memory_channels = False
  plain = train.model_inputs(seq.x, c)
  assert plain.shape[-1] == 2 * N + 5
  np.testing.assert_array_equal(plain[..., -5:], seq.x[..., -5:])
  # a zero-initialised delta head predicts its base: the input, or the last-seen memory
  for delta_from, base in (("input", seq.enemy_in), ("last_seen", last)):
    c.memory_channels, c.delta_from = True, delta_from
    module = train.make_module(c)
    params = model.init(jax.random.key(0), module, 1, seq.x.shape[2], seq.x.shape[-1])
    counts = train.unroll(module, params, seq, c)[0]
    for k in range(len(c.horizons)):
      np.testing.assert_allclose(counts[..., k, :], base, rtol=1e-6)
  c.delta_from = "memory"
  with pytest.raises(ValueError, match="delta_from must be"):
    train.delta_base(seq, c)
  # the count prediction is gated by the existence threshold of its horizon
  cnt = np.ones((1, 2, 3))
  ex = np.array([[[0.2, 0.6, 0.9], [0.2, 0.6, 0.9]]])
  np.testing.assert_array_equal(train.gate_counts(cnt, ex, [0.5, 0.7]), [[[0, 1, 1], [0, 0, 1]]])


def test_unit_list_round_trip(games, tmp_path):
  g = _game(games, 0)
  path = tmp_path / "game.csv"
  data.save_unit_lists(g, path)
  loaded = data.load_unit_lists(path, g.game_map, num_frames=CFG.num_frames, max_units=64)
  fc = features.FeatureConfig(kernel=8, stride=8, skip=2)
  a, b = features.featurize(g, 0, fc), features.featurize(loaded, 0, fc)
  np.testing.assert_allclose(b.truth, a.truth, atol=1e-6)
  np.testing.assert_allclose(b.inputs, a.inputs, atol=1e-6)
  np.testing.assert_array_equal(b.visible, a.visible)
  bad = tmp_path / "bad.csv"
  bad.write_text("frame,id,player,type,x,y,visible\n0,1,0,12,1.0,1.0,0\n")
  with pytest.raises(ValueError, match="unit type must be in"):
    data.load_unit_lists(bad, g.game_map)


def test_bad_input_errors():
  with pytest.raises(ValueError, match="must be >= stride"):
    features.count_units(jnp.zeros(1), jnp.zeros(1), jnp.zeros(1, jnp.int32), jnp.ones(1, bool),
                         map_size=32, kernel=4, stride=8)
  with pytest.raises(ValueError, match="positions must lie in"):
    features.count_units(jnp.array([40.0]), jnp.zeros(1), jnp.zeros(1, jnp.int32),
                         jnp.ones(1, bool), map_size=32, kernel=8, stride=8)
  with pytest.raises(ValueError, match="unit types must be in"):
    features.count_units(jnp.zeros(1), jnp.zeros(1), jnp.array([N]), jnp.ones(1, bool),
                         map_size=32, kernel=8, stride=8)
  with pytest.raises(ValueError, match="perspective must be 0 or 1"):
    features.featurize(None, 2)
  with pytest.raises(ValueError, match="encoder must be"):
    model.DefoggerStep(encoder="cnn").initial_state(1, 4)


def _truncate(game, frames):
  per_frame = ("alive", "type", "x", "y", "uid", "visible")
  return game._replace(**{k: getattr(game, k)[:frames] for k in per_frame})


def test_prefix_features_do_not_depend_on_game_length(games):
  from jaxpapers.defogger import config as dconfig
  from jaxpapers.defogger import dataset

  c = dconfig.get_config("smoke")
  c.map_size, c.max_units, c.num_frames, c.skip = CFG.map_size, CFG.max_units, CFG.num_frames, 2
  g = _game(games, 1)
  full = dataset.sequence_features(g, 1, c)
  short = dataset.sequence_features(_truncate(g, 10), 1, c)  # 5 of the 12 steps
  assert short.x.shape[0] == 5 and full.x.shape[0] == 12
  for a, b in zip(short[:5], full[:5]):
    np.testing.assert_array_equal(a, b[:5])
  # the time channel is absolute: frame of the step's last frame / TIME_SCALE
  np.testing.assert_allclose(full.x[:, 0, 0, -1], (np.arange(12) * 2 + 1) / dataset.TIME_SCALE,
                             rtol=1e-6)
  assert int(full.start) == int(g.start[1])


def test_map_channels_are_cell_fractions_independent_of_map_size(games):
  """A cell's map channels are fractions of its own tiles: embedding the map in a larger one
  leaves the features of the original cells unchanged."""
  g = _game(games, 0)
  fc = features.FeatureConfig(kernel=8, stride=8, skip=2)
  small = features.featurize(g, 0, fc).game_map
  gm = g.game_map
  pad = lambda p: jnp.pad(p, ((0, 32), (0, 32)))
  big_map = world.GameMap(pad(gm.walkable), pad(gm.buildable), pad(gm.height), gm.start_locations)
  big = features.featurize(g._replace(game_map=big_map), 0, fc).game_map
  assert big.shape[:2] == (8, 8) and small.shape[:2] == (4, 4)
  np.testing.assert_allclose(big[:4, :4], small, atol=1e-6)
  assert float(small[..., :3].min()) >= 0.0 and float(small[..., :3].max()) <= 1.0
  # a 2-cell map by hand: walkable fraction of each 8x8 window
  walk = np.zeros((16, 16), np.float32)
  walk[:8, :4] = 1.0  # half of cell (0, 0)
  hand = world.GameMap(jnp.asarray(walk), jnp.zeros((16, 16)), jnp.zeros((16, 16)),
                       jnp.asarray([[1.0, 1.0], [14.0, 14.0], [1.0, 14.0], [14.0, 1.0]]))
  gm2 = features.featurize(g._replace(game_map=hand, x=jnp.clip(g.x, 0, 15),
                                      y=jnp.clip(g.y, 0, 15)), 0, fc).game_map
  np.testing.assert_allclose(gm2[..., 0], [[0.5, 0.0], [0.0, 0.0]], atol=1e-6)
  np.testing.assert_allclose(gm2[..., 3], np.ones((2, 2)), atol=1e-6)  # one start per cell


def test_map_statistics_conditions_on_own_start():
  # 4 sequences, 2 steps, 1x1 grid, 1 type: starts 0, 0, 2, 2 (start 1 and 3 never seen)
  truth = jnp.asarray([1.0, 3.0, 10.0, 20.0])[:, None, None, None, None] * jnp.ones((4, 2, 1, 1, N))
  start = jnp.asarray([0, 0, 2, 2])
  per = features.map_statistics(truth, start, 4)
  assert per.shape == (4, 2, 1, 1, N)
  np.testing.assert_allclose(per[:, 0, 0, 0, 0], [2.0, 8.5, 15.0, 8.5])  # unseen: overall mean
  np.testing.assert_allclose(features.map_statistics(truth), truth.mean(0))
  from jaxpapers.defogger import baselines, dataset

  ds = dataset.Dataset(truth, truth, truth, jnp.zeros((4, 2, 1, 1), bool), jnp.zeros((4, 2, 5)),
                       start)
  stats = baselines.map_statistics(ds)
  pred = baselines.baseline_predictions(ds._replace(start=jnp.asarray([2, 0, 1, 0])), stats, 0.5)
  np.testing.assert_allclose(pred["map_statistics"][0][:, 0, 0, 0, 0], [15.0, 2.0, 8.5, 2.0])
  with pytest.raises(ValueError, match="start"):
    features.map_statistics(truth, jnp.asarray([0, 1, 5, 0]), 4)
  with pytest.raises(ValueError, match="start"):
    baselines.baseline_predictions(ds._replace(start=None), stats)


def test_l1_summed_form():
  # 1 game, 2 steps, 2x2 grid, N types: step 0 off by 1 in two cells, step 1 off by 3 in one
  true = np.zeros((1, 2, 2, 2, N), np.float32)
  pred = true.copy()
  pred[0, 0, 0, 0, 1] = 1.0
  pred[0, 0, 1, 1, 2] = 1.0
  pred[0, 1, 0, 1, 0] = 3.0
  m = metrics.defogger_metrics(pred, pred > 0, np.zeros((1, 2, 5), bool), true,
                               np.zeros((1, 2, 5)), np.ones((1, 2, 2, 2), bool))
  np.testing.assert_allclose(m["l1_sum"], (2.0 + 3.0) / 2)
  np.testing.assert_allclose(m["l1"], 5.0 / (2 * 4 * N))


def test_count_units_rejects_nan_positions():
  with pytest.raises(ValueError, match="finite"):
    features.count_units(jnp.array([jnp.nan, 3.0]), jnp.array([1.0, 2.0]), jnp.array([0, 1]),
                         jnp.ones(2, bool), map_size=32, kernel=8, stride=8)
  # a dead (masked) unit's position does not matter
  c = features.count_units(jnp.array([jnp.nan, 3.0]), jnp.array([1.0, 2.0]), jnp.array([0, 1]),
                           jnp.array([False, True]), map_size=32, kernel=8, stride=8)
  assert float(c.sum()) == 1.0 and float(c[0, 0, 1]) == 1.0
  # under jit a live NaN unit makes its type's counts NaN, never a silent undercount
  f = jax.jit(lambda x: features.count_units(x, jnp.array([1.0, 2.0]), jnp.array([0, 1]),
                                             jnp.ones(2, bool), map_size=32, kernel=8, stride=8))
  out = f(jnp.array([jnp.nan, 3.0]))
  assert bool(jnp.all(jnp.isnan(out[..., 0]))) and float(out[0, 0, 1]) == 1.0

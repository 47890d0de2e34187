"""Bad input to the public functions of dmgan and defogger: NaN, inf, empty, wrong rank,
out-of-range and wrong dtype give a clear error naming the argument, or an honest NaN — never a
finite wrong value."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers import defogger, dmgan
from jaxpapers.defogger import bot as dbot
from jaxpapers.defogger import metrics as dmetrics
from jaxpapers.defogger import model as dmodel
from jaxpapers.dmgan import core, data, metrics, networks

NAN, INF = float("nan"), float("inf")
N_G = 3
N = defogger.world.NUM_TYPES


def _is_nan(v) -> bool:
  return bool(np.all(np.isnan(np.asarray(v, np.float64))))


# ------------------------------------------------------------------------------------ dmgan prior


@pytest.mark.parametrize("posterior, match", [
    (jnp.full((4, N_G), NAN), "posterior"),
    (jnp.full((4, N_G), INF), "posterior"),
    (jnp.zeros((0, N_G)), "posterior"),
    (jnp.full((N_G,), 1 / N_G), "posterior"),  # rank 1
    (jnp.full((4, N_G + 1), 0.25), "posterior"),  # n_g mismatch
    (jnp.full((4, N_G), 2.0), "posterior"),  # not probabilities
])
def test_prior_loss_and_update_reject_bad_posterior(posterior, match):
  logits = jnp.zeros((N_G,))
  with pytest.raises(ValueError, match=match):
    core.prior_loss(logits, posterior, 1.0)
  with pytest.raises(ValueError, match=match):
    core.prior_update(core.init_prior(N_G), posterior, 1.0)


def test_prior_loss_other_arguments_and_nan_under_jit():
  post = jnp.full((4, N_G), 1 / N_G)
  with pytest.raises(TypeError, match="posterior"):
    core.prior_loss(jnp.zeros((N_G,)), jnp.ones((4, N_G), jnp.int32), 1.0)
  with pytest.raises(ValueError, match="logits"):
    core.prior_loss(jnp.array([0.0, NAN, 0.0]), post, 1.0)
  with pytest.raises(ValueError, match="kappa"):
    core.prior_loss(jnp.zeros((N_G,)), post, NAN)
  # under jit the checks cannot see values: a NaN posterior gives a NaN loss, not a finite one
  assert _is_nan(jax.jit(core.prior_loss)(jnp.zeros((N_G,)), jnp.full((4, N_G), NAN), 1.0))


def test_entropy_weight_and_active_generators():
  for bad in (-1, NAN, INF):
    with pytest.raises(ValueError, match="step"):
      core.entropy_weight(bad)
  with pytest.raises(ValueError, match="decay"):
    core.entropy_weight(0, decay=0.0)
  with pytest.raises(ValueError, match="scale"):
    core.entropy_weight(0, scale=NAN)
  for bad in (jnp.array([0.5, NAN, 0.5]), jnp.array([0.5, INF, 0.5])):
    with pytest.raises(ValueError, match="probs"):
      core.active_generators(bad)
  with pytest.raises(ValueError, match="probs"):
    core.active_generators(jnp.zeros((0,)))
  with pytest.raises(ValueError, match="probs"):
    core.active_generators(jnp.ones((2, 2)) / 4)
  with pytest.raises(TypeError, match="probs"):
    core.active_generators(jnp.array([1, 0]))
  with pytest.raises(ValueError, match="probs"):
    core.active_generators(jnp.array([1.2, -0.2]))
  with pytest.raises(ValueError, match="threshold"):
    core.active_generators(jnp.array([0.5, 0.5]), threshold=1.5)
  for bad in (0, -2, 2.5):
    with pytest.raises(ValueError, match="num_generators"):
      core.init_prior(bad)


# ------------------------------------------------------------------------------ dmgan generators


@pytest.fixture(scope="module")
def toy():
  gen, crit = networks.toy_models(latent_dim=4)
  params = networks.init_generators(jax.random.key(0), gen, N_G)
  return gen, crit, params, crit.init(jax.random.key(1))


def test_generate_rejects_out_of_range_index_and_is_nan_under_jit(toy):
  gen, _, params, _ = toy
  z = jnp.zeros((3, 4))
  for c in (jnp.array([0, 1, N_G]), jnp.array([0, -1, 1])):
    with pytest.raises(ValueError, match=r"c \(generator indices\)"):
      networks.generate(gen, params, z, c)
  out = jax.jit(lambda c: networks.generate(gen, params, z, c))(jnp.array([0, N_G, 1]))
  assert _is_nan(out[1]) and bool(jnp.all(jnp.isfinite(out[jnp.array([0, 2])])))
  with pytest.raises(TypeError, match="c"):
    networks.generate(gen, params, z, jnp.zeros(3))
  with pytest.raises(ValueError, match="c"):
    networks.generate(gen, params, z, jnp.zeros(2, jnp.int32))
  with pytest.raises(ValueError, match="z"):
    networks.generate(gen, params, jnp.zeros(4), jnp.zeros(1, jnp.int32))
  with pytest.raises(TypeError, match="z"):
    networks.generate(gen, params, jnp.zeros((3, 4), jnp.int32), jnp.zeros(3, jnp.int32))
  with pytest.raises(ValueError, match="num_generators"):
    networks.init_generators(jax.random.key(0), gen, 0)


def test_losses_reject_bad_batches(toy):
  gen, crit, params, cparams = toy
  x = jnp.zeros((4, 2))
  with pytest.raises(ValueError, match="x_real"):
    core.critic_loss(cparams, crit, jax.random.key(0), x.at[0, 0].set(NAN), x)
  with pytest.raises(ValueError, match="x_fake"):
    core.critic_loss(cparams, crit, jax.random.key(0), x, x.at[1, 1].set(INF))
  with pytest.raises(ValueError, match="x_fake"):
    core.critic_loss(cparams, crit, jax.random.key(0), x, jnp.zeros((3, 2)))
  with pytest.raises(ValueError, match="x_real"):
    core.critic_loss(cparams, crit, jax.random.key(0), jnp.zeros((0, 2)), jnp.zeros((0, 2)))
  with pytest.raises(TypeError, match="x_real"):
    core.critic_loss(cparams, crit, jax.random.key(0), x.astype(jnp.int32), x)
  score = lambda v: crit.apply(cparams, v)[0]
  with pytest.raises(ValueError, match="x_hat"):
    core.gradient_penalty(score, x.at[0, 0].set(NAN))
  with pytest.raises(ValueError, match="x_hat"):
    core.gradient_penalty(score, jnp.zeros((0, 2)))
  enc = networks.init_encoder(jax.random.key(2), crit.feature_dim, N_G, 8)
  with pytest.raises(ValueError, match="labels"):
    core.encoder_loss(enc, cparams, crit, x, jnp.array([0, 1, 2, N_G]))
  with pytest.raises(ValueError, match="c"):
    core.generator_loss(params, gen, cparams, crit, enc, jnp.zeros((4, 4)), jnp.array([0, 1, 2, 7]))
  state = core.init_state(jax.random.key(0), core.DMGANConfig(num_generators=N_G, latent_dim=4),
                          gen, crit)
  for bad in (0, -3, 2.5):
    with pytest.raises(ValueError, match="num"):
      core.sample_model(jax.random.key(0), state, gen, bad, 4)
  with pytest.raises(ValueError, match="variant"):
    core.variant_config("gan")
  with pytest.raises(ValueError, match="num_generators"):
    core.DMGANConfig(num_generators=0)
  with pytest.raises(ValueError, match="batch_size"):
    core.DMGANConfig(batch_size=0)


# ---------------------------------------------------------------------------- dmgan data, metrics


def test_off_manifold_fraction_nan_is_never_a_fraction():
  ds = data.four_segments()
  assert _is_nan(metrics.off_manifold_fraction(ds, jnp.full((5, 2), NAN)))
  one_nan = jnp.asarray([[0.5, 0.5], [NAN, 0.0]])
  assert _is_nan(metrics.off_manifold_fraction(ds, one_nan))
  assert _is_nan(jax.jit(lambda v: metrics.off_manifold_fraction(ds, v))(jnp.full((5, 2), NAN)))
  # inf samples are honestly off the manifold
  assert float(metrics.off_manifold_fraction(ds, jnp.asarray([[INF, 0.0], [0.5, 0.5]]))) == 0.5
  with pytest.raises(ValueError, match="x"):
    metrics.off_manifold_fraction(ds, jnp.zeros((0, 2)))
  with pytest.raises(ValueError, match="x"):
    metrics.off_manifold_fraction(ds, jnp.zeros((4, 3)))
  with pytest.raises(ValueError, match="x"):
    metrics.off_manifold_fraction(ds, jnp.zeros((2,)))
  with pytest.raises(TypeError, match="x"):
    metrics.off_manifold_fraction(ds, jnp.zeros((4, 2), jnp.int32))
  for bad in (0.0, -1.0, INF, NAN):
    with pytest.raises(ValueError, match="threshold"):
      metrics.off_manifold_fraction(ds, jnp.zeros((4, 2)), bad)


def test_distance_metrics_nan_and_shapes():
  x = jnp.ones((5, 3))
  assert _is_nan(metrics.energy_distance(x.at[0, 0].set(NAN), x))
  with pytest.raises(ValueError, match="x"):
    metrics.energy_distance(jnp.zeros((0, 3)), x)
  with pytest.raises(ValueError, match="same sample dimension"):
    metrics.energy_distance(x, jnp.ones((5, 4)))
  with pytest.raises(TypeError, match="y"):
    metrics.energy_distance(x, jnp.ones((5, 3), jnp.int32))
  mu, cov = jnp.zeros(3), jnp.eye(3)
  assert _is_nan(metrics.frechet_distance(mu, cov.at[0, 1].set(NAN), mu, cov))
  assert _is_nan(metrics.frechet_distance(mu.at[0].set(NAN), cov, mu, cov))
  with pytest.raises(ValueError, match="cov2"):
    metrics.frechet_distance(mu, cov, mu, jnp.eye(4))
  with pytest.raises(ValueError, match="mu1"):
    metrics.frechet_distance(jnp.zeros((3, 1)), cov, mu, cov)
  with pytest.raises(ValueError, match="mu1"):
    metrics.frechet_distance(jnp.zeros((0,)), jnp.zeros((0, 0)), jnp.zeros((0,)), jnp.zeros((0, 0)))


def test_toy_data_and_samplers_reject_bad_input():
  with pytest.raises(ValueError, match="name"):
    data.toy_dataset("spiral")
  for kwargs, match in [({"radius": 0.0}, "radius"), ({"radius": NAN}, "radius"),
                        ({"gap": -1.0}, "gap"), ({"radius": INF}, "radius")]:
    with pytest.raises(ValueError, match=match):
      data.two_circles(**kwargs)
  with pytest.raises(ValueError, match="num_modes"):
    data.gaussian_ring(0)
  with pytest.raises(ValueError, match="std"):
    data.gaussian_ring(3, std=NAN)
  with pytest.raises(ValueError, match="kind"):
    data.ToyDataset("spirals", (((0.0, 0.0), 1.0),))
  with pytest.raises(ValueError, match="pieces"):
    data.ToyDataset("circles", ())
  for w in ((1.0, NAN, 1.0), (1.0, -1.0, 1.0), (0.0, 0.0, 0.0), (1.0, 1.0), (INF, 1.0, 1.0)):
    with pytest.raises(ValueError, match="weights"):
      data.three_segments(w)
  with pytest.raises(TypeError, match="weights"):
    data.three_segments("abc")
  for bad in (-1, 2.5):
    with pytest.raises(ValueError, match="num"):
      data.sample_toy(jax.random.key(0), data.four_segments(), bad)
  with pytest.raises(TypeError, match="ds"):
    data.sample_toy(jax.random.key(0), "segments", 4)
  with pytest.raises(ValueError, match="data"):
    data.array_sampler(jnp.full((4, 2), NAN))
  with pytest.raises(ValueError, match="data"):
    data.array_sampler(jnp.zeros((4,)))
  with pytest.raises(ValueError, match="samplers"):
    data.mixture_sampler([])
  with pytest.raises(TypeError, match="samplers"):
    data.mixture_sampler([None])
  # distances of NaN points are NaN, not a finite distance
  assert _is_nan(data.distance_to_manifold(data.four_segments(), jnp.full((1, 2), NAN)))


def test_two_domain_mixture_rejects_bad_images():
  a = jnp.zeros((3, 4, 4, 1))
  with pytest.raises(ValueError, match="images_a"):
    dmgan.two_domain_mixture(jax.random.key(0), a.at[0, 0, 0, 0].set(NAN), a, 4)
  with pytest.raises(ValueError, match="images_b"):
    dmgan.two_domain_mixture(jax.random.key(0), a, jnp.zeros((0, 4, 4, 1)), 4)
  with pytest.raises(ValueError, match="images_a"):
    dmgan.two_domain_mixture(jax.random.key(0), jnp.zeros((3, 4, 4)), a, 4)
  with pytest.raises(ValueError, match="fraction_a"):
    dmgan.two_domain_mixture(jax.random.key(0), a, a, 4, fraction_a=NAN)
  with pytest.raises(ValueError, match="num"):
    dmgan.two_domain_mixture(jax.random.key(0), a, a, 0)
  with pytest.raises(ValueError, match="split"):
    dmgan.load_mnist("validation")
  with pytest.raises(FileNotFoundError):
    dmgan.read_idx("/nonexistent/file-idx3-ubyte")


# ------------------------------------------------------------------------------------- defogger


def test_count_units_bad_input():
  kw = dict(map_size=32, kernel=8, stride=8)
  one = (jnp.ones(1, bool),)
  for bad in (NAN, INF, -INF):
    with pytest.raises(ValueError, match="x, y must be finite"):
      defogger.count_units(jnp.array([bad]), jnp.zeros(1), jnp.zeros(1, jnp.int32), *one, **kw)
    with pytest.raises(ValueError, match="x, y must be finite"):
      defogger.count_units(jnp.zeros(1), jnp.array([bad]), jnp.zeros(1, jnp.int32), *one, **kw)
  with pytest.raises(ValueError, match="positions must lie in"):
    defogger.count_units(jnp.array([-1.0]), jnp.zeros(1), jnp.zeros(1, jnp.int32), *one, **kw)
  with pytest.raises(ValueError, match="unit types must be in"):
    defogger.count_units(jnp.zeros(1), jnp.zeros(1), jnp.array([-1]), *one, **kw)
  with pytest.raises(TypeError, match="types"):
    defogger.count_units(jnp.zeros(1), jnp.zeros(1), jnp.zeros(1), *one, **kw)
  with pytest.raises(ValueError, match="x, y, types and mask"):
    defogger.count_units(jnp.zeros((1, 1)), jnp.zeros((1, 1)), jnp.zeros((1, 1), jnp.int32),
                         jnp.ones((1, 1), bool), **kw)
  with pytest.raises(ValueError, match="x, y, types and mask"):
    defogger.count_units(jnp.zeros(2), jnp.zeros(1), jnp.zeros(1, jnp.int32), *one, **kw)
  with pytest.raises(ValueError, match="kernel"):
    defogger.count_units(jnp.zeros(1), jnp.zeros(1), jnp.zeros(1, jnp.int32), *one,
                         map_size=4, kernel=8, stride=8)
  empty = defogger.count_units(jnp.zeros(0), jnp.zeros(0), jnp.zeros(0, jnp.int32),
                               jnp.ones(0, bool), **kw)
  assert empty.shape == (4, 4, N) and float(empty.sum()) == 0.0  # no units: honest zeros


def test_memory_features_and_baselines_bad_input():
  e = jnp.zeros((3, 2, 2, N))
  vis = jnp.ones((3, 2, 2), bool)
  with pytest.raises(ValueError, match="visible"):
    defogger.previously_seen(e, jnp.ones((3, 2), bool))
  with pytest.raises(ValueError, match="enemy_inputs"):
    defogger.memory_channels(jnp.zeros((3, 2, 2)), vis)
  # NaN counts stay NaN through the baselines (never a finite count)
  nan_e = e.at[1, 0, 0, 2].set(NAN)
  assert _is_nan(defogger.perfect_memory(nan_e)[2, 0, 0, 2])
  assert _is_nan(defogger.input_only(nan_e)[1, 0, 0, 2])
  with pytest.raises(ValueError, match="present"):
    defogger.tech_closure(jnp.zeros((2, N + 1), bool))
  with pytest.raises(ValueError, match="present"):
    defogger.tech_closure(jnp.full((N,), NAN))
  with pytest.raises(ValueError, match="perspective"):
    defogger.featurize(None, -1)


def test_metrics_bad_input():
  true = jnp.array([[1, 0, 1]], bool)
  with pytest.raises(ValueError, match="pred"):
    defogger.f1_score(jnp.array([[NAN, 0.0, 1.0]]), true)  # bool(NaN) would be True
  with pytest.raises(ValueError, match="same shape"):
    defogger.per_game_pr(jnp.zeros((1, 2), bool), true)
  with pytest.raises(ValueError, match="pred"):
    defogger.f1_score(jnp.zeros((0, 3), bool), jnp.zeros((0, 3), bool))  # no games: no F1
  with pytest.raises(ValueError, match="pred"):
    defogger.per_game_pr(jnp.array(True), jnp.array(True))
  shape = (1, 2, 2, 2, N)
  z = np.zeros(shape, np.float32)
  args = (np.zeros(shape, bool), np.zeros((1, 2, 5), bool), z, np.zeros((1, 2, 5)),
          np.ones((1, 2, 2, 2), bool))
  m = defogger.defogger_metrics(np.full(shape, NAN, np.float32), *args)
  assert _is_nan(m["l1"]) and _is_nan(m["l1_sum"]) and _is_nan(m["l1_hidden"])
  with pytest.raises(ValueError, match="true_counts"):
    defogger.defogger_metrics(z, args[0], args[1], np.full(shape, NAN, np.float32), *args[3:])
  with pytest.raises(ValueError, match="pred_counts"):
    defogger.defogger_metrics(z[..., :3], *args)
  with pytest.raises(ValueError, match="visible"):
    defogger.defogger_metrics(z, *args[:4], np.ones((1, 2, 2), bool))
  assert set(dmetrics.defogger_metrics(z, *args)) >= {"l1", "l1_sum", "hid_u"}


def test_bot_targets_bad_input():
  exist = jnp.zeros((4, 4, N))
  with pytest.raises(ValueError, match="exist"):
    defogger.pick_target(exist.at[0, 0, 5].set(NAN), 8, 8)
  with pytest.raises(ValueError, match="exist"):
    defogger.pick_target(jnp.zeros((4, 4)), 8, 8)
  starts = jnp.asarray([[4.0, 4.0], [28.0, 28.0], [4.0, 28.0], [28.0, 4.0]])
  e = jnp.zeros((3, 4, 4, N))
  with pytest.raises(ValueError, match="enemy_in"):
    defogger.memory_target(e.at[0, 0, 0, 5].set(NAN), jnp.zeros((3, 4, 4), bool), 1, 0, starts,
                           jax.random.key(0), 8, 8)
  with pytest.raises(ValueError, match="visible"):
    defogger.memory_target(e, jnp.zeros((3, 4), bool), 1, 0, starts, jax.random.key(0), 8, 8)
  assert dbot.pick_target(exist.at[1, 2, 5].set(1.0), 8, 8).tolist() == [20.0, 12.0]


def test_model_and_dataset_bad_input():
  module = dmodel.DefoggerStep(encoder="ml", hidden=4, levels=1, horizons=(0,))
  params = dmodel.init(jax.random.key(0), module, 1, 4, 6)
  xs, bases = jnp.zeros((1, 2, 4, 4, 6)), jnp.zeros((1, 2, 4, 4, N))
  with pytest.raises(ValueError, match="xs"):
    defogger.unroll(module, params, xs[0], bases)
  with pytest.raises(ValueError, match="bases"):
    defogger.unroll(module, params, xs, bases[..., :3])
  with pytest.raises(ValueError, match="xs"):
    defogger.unroll(module, params, xs[:, :0], bases[:, :0])
  with pytest.raises(TypeError, match="xs"):
    defogger.unroll(module, params, xs.astype(jnp.int32), bases)
  out = defogger.unroll(module, params, xs.at[0, 0, 0, 0, 0].set(NAN), bases)
  assert not bool(jnp.all(jnp.isfinite(out[0])))  # NaN in, NaN out
  cfg = defogger.config.get_config("smoke")
  for bad in (0, -1, 2.5):
    with pytest.raises(ValueError, match="num_games"):
      defogger.build_dataset(jax.random.key(0), bad, cfg)
  with pytest.raises(ValueError, match="perspective"):
    defogger.sequence_features(None, 2, cfg)
  with pytest.raises(ValueError, match="results"):
    defogger.format_tables({})


@pytest.mark.parametrize("field,value", [("g_lr", -1e-4), ("d_b1", 1.0), ("q_b2", 1.5),
                                         ("r_b1", -0.1), ("kappa_scale", -1.0),
                                         ("kappa_decay", 1.01), ("r_lr", float("nan"))])
def test_dmgan_config_rejects_out_of_range_hyperparameters(field, value):
  from jaxpapers.dmgan import core as dm_core

  with pytest.raises(ValueError, match=field):
    dm_core.DMGANConfig(**{field: value})
  dm_core.DMGANConfig(**{field: getattr(dm_core.DMGANConfig(), field)})  # the default is fine

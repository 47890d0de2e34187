"""The jitted training loop: jit == un-jitted, vmap over seeds == loop, no retracing, configs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers._src.testing import TraceCounter, assert_trees_allclose
from jaxpapers.meta_gradient import config as mg_config
from jaxpapers.meta_gradient import train


def _tiny():
  c = mg_config.get_config("smoke")
  c.num_envs, c.unroll_length, c.hidden = 2, 3, (8,)
  c.total_env_steps = 2 * 3 * 3
  c.meta_lr = 0.05  # large enough that η visibly moves in a few steps
  return c


@pytest.fixture(scope="module")
def learner():
  return train.make_learner(_tiny(), "meta_gamma_lambda")


@pytest.fixture(scope="module")
def jit_step(learner):
  counter = TraceCounter(learner.step)
  return jax.jit(counter), counter


def _run(step, state, n):
  for i in range(n):
    state, metrics = step(state, jnp.int32(i))
  return state, metrics


def test_jit_matches_unjitted_and_does_not_retrace(learner, jit_step):
  step, counter = jit_step
  state0 = learner.init(jax.random.key(0))
  jitted, m_jit = _run(step, state0, 2)
  assert counter.count == 1  # two calls, one trace
  eager, m_eager = _run(learner.step, state0, 2)  # un-jitted reference (op by op)
  assert_trees_allclose(jitted.params, eager.params, rtol=2e-4, atol=2e-5)
  np.testing.assert_allclose([jitted.meta.gamma_logit, jitted.meta.lambda_logit],
                             [eager.meta.gamma_logit, eager.meta.lambda_logit], rtol=1e-4)
  # The meta-parameters moved (the meta-gradient reached η) and the first step only acted.
  assert float(jitted.meta.gamma_logit) != float(state0.meta.gamma_logit)
  assert bool(m_jit["updated"]) and float(m_eager["meta_grad_lambda"]) != 0.0


def test_vmap_over_seeds_matches_loop(learner, jit_step):
  step, _ = jit_step
  keys = jnp.stack([jax.random.key(s) for s in (3, 4)])
  vstep = jax.jit(jax.vmap(learner.step, in_axes=(0, None)))
  vstate, _ = _run(vstep, jax.vmap(learner.init)(keys), 2)
  for i, k in enumerate(keys):
    s, _ = _run(step, learner.init(k), 2)
    assert_trees_allclose(jax.tree.map(lambda x: x[i], vstate.params), s.params, rtol=1e-4,
                          atol=1e-5)
    np.testing.assert_allclose(vstate.meta.gamma_logit[i], s.meta.gamma_logit, rtol=1e-5)


def test_episode_score_and_configs():
  hist = {"return_sum": np.array([[1.0, 0.0], [4.0, 6.0], [2.0, 0.0], [3.0, 9.0]]),
          "return_count": np.array([[1, 0], [2, 1], [1, 0], [1, 3]])}
  np.testing.assert_allclose(train.episode_score(hist, 0.5), [2.5, 3.0])
  for scale in ("smoke", "cpu", "full"):
    c = mg_config.get_config(scale)
    assert 0 < c.gamma_ref <= 1 and c.lambda_ref == 1.0
  with pytest.raises(ValueError, match="scale"):
    mg_config.get_config("huge")
  c = _tiny()
  c.env_name = "Pong-v0"
  with pytest.raises(ValueError, match="env_name"):
    train.make_learner(c)
  c = _tiny()
  c.gamma_ref = 1.2
  with pytest.raises(ValueError, match="gamma_ref"):
    train.make_learner(c)
  with pytest.raises(ValueError, match="variant"):
    train.make_learner(_tiny(), "meta_everything")


def test_make_train_jitted_matches_unjitted_loop_and_vmap_matches_seeds():
  c = _tiny()  # 3 updates: the first only acts, the next two learn and meta-learn
  train_fn = train.make_train(c, "meta_gamma_lambda")
  final, hist = jax.jit(train_fn)(jax.random.key(0))
  assert hist["gamma"].shape == (3,) and hist["return_sum"].shape == (3,)
  np.testing.assert_array_equal(hist["updated"], [False, True, True])
  # Un-jitted reference: init and the Python loop over un-jitted steps (op by op).
  ref = train.make_learner(c, "meta_gamma_lambda")
  state, ref_hist = ref.init(jax.random.key(0)), []
  for i in range(ref.num_updates):
    state, m = ref.step(state, jnp.int32(i))
    ref_hist.append(m)
  assert_trees_allclose(final.params, state.params, rtol=2e-4, atol=2e-5)
  np.testing.assert_allclose([final.meta.gamma_logit, final.meta.lambda_logit],
                             [state.meta.gamma_logit, state.meta.lambda_logit], rtol=1e-4)
  for name in ("gamma", "lambda_", "return_sum", "meta_objective"):
    np.testing.assert_allclose(hist[name], [float(m[name]) for m in ref_hist], rtol=1e-4,
                               atol=1e-6, err_msg=name)
  assert float(final.meta.lambda_logit) != float(ref.init(jax.random.key(0)).meta.lambda_logit)
  # vmap over seeds == one run per seed.
  keys = jnp.stack([jax.random.key(s) for s in (5, 6)])
  vfinal, vhist = jax.jit(jax.vmap(train_fn))(keys)
  assert vhist["gamma"].shape == (2, 3)
  for i in range(2):
    s, h = jax.jit(train_fn)(keys[i])
    assert_trees_allclose(jax.tree.map(lambda x, i=i: x[i], vfinal.params), s.params, rtol=1e-4,
                          atol=1e-5)
    np.testing.assert_allclose(vhist["lambda_"][i], h["lambda_"], rtol=1e-5)


def test_run_variants_fixed_program_matches_meta_program_with_frozen_eta():
  c = _tiny()
  out = train.run_variants(c, ("fixed", "meta_gamma"), (0,))
  assert set(out) == {"fixed", "meta_gamma"}
  np.testing.assert_allclose(out["fixed"]["gamma"], [c.gamma_init], rtol=1e-6)
  np.testing.assert_allclose(out["meta_gamma"]["lambda"], [c.lambda_init], rtol=1e-6)
  assert out["meta_gamma"]["gamma"][0] != pytest.approx(c.gamma_init, rel=1e-7)
  # The plain program's fixed run equals the meta program run with learn_mask = [0, 0].
  learner = train.make_learner(c, "meta_gamma_lambda")
  state = learner.init(jax.random.key(0), jnp.zeros(2))
  step = jax.jit(learner.step)
  for i in range(learner.num_updates):
    state, m = step(state, jnp.int32(i))
  plain = train.make_learner(c, "fixed")
  pstate = plain.init(jax.random.key(0))
  pstep = jax.jit(plain.step)
  for i in range(plain.num_updates):
    pstate, _ = pstep(pstate, jnp.int32(i))
  assert_trees_allclose(pstate.params, state.params, rtol=1e-5, atol=1e-6)
  assert train._chunk_size(60, 40) == 30 and train._chunk_size(7, 40) == 7


def test_full_config_optimizer_on_mean_loss_equals_impala_on_summed_loss():
  """ε / N² and clip / N on a mean loss reproduce RMSProp(ε = 0.01) + clip 40 on the summed loss."""
  from jaxpapers.meta_gradient import core

  c = mg_config.get_config("full")
  n = c.num_envs * c.unroll_length
  ours = core.make_inner_optimizer("rmsprop", c.learning_rate, decay=c.rms_decay, eps=c.rms_eps,
                                   max_grad_norm=c.max_grad_norm)
  impala = core.make_inner_optimizer("rmsprop", c.learning_rate, decay=0.99, eps=0.01,
                                     max_grad_norm=40.0)
  params = {"w": jnp.zeros((3,), jnp.float32)}
  s_ours, s_impala = ours.init(params), impala.init(params)
  rng = np.random.default_rng(0)
  for scale in (1e-4, 1e-2, 1.0):  # clipping inactive, then active on the summed gradient
    g_mean = {"w": jnp.asarray(rng.normal(size=3) * scale, jnp.float32)}
    g_sum = jax.tree.map(lambda g: g * n, g_mean)
    u_ours, s_ours = ours.update(g_mean, s_ours)
    u_impala, s_impala = impala.update(g_sum, s_impala)
    np.testing.assert_allclose(u_ours["w"], u_impala["w"], rtol=1e-4)

"""dm-haiku networks in the meta-gradient learner: equal weights give the flax learner's results."""

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers._src.testing import assert_trees_allclose
from jaxpapers.meta_gradient import config as mg_config
from jaxpapers.meta_gradient import core, haiku_networks, networks, train

T, B, A, D = 4, 3, 3, 5


def _traj(key, core_state=()):
  ks = jax.random.split(key, 7)
  obs = jax.random.normal(ks[0], (T, B, D))
  nxt = jnp.concatenate([obs[1:], jax.random.normal(ks[1], (1, B, D))])
  term = jax.random.bernoulli(ks[2], 0.2, (T, B))
  trunc = jax.random.bernoulli(ks[3], 0.1, (T, B)) & ~term
  first = jnp.concatenate([jnp.ones((1, B), bool), (term | trunc)[:-1]])
  return core.Trajectory(obs, nxt, jax.random.randint(ks[4], (T, B), 0, A),
                         jax.random.normal(ks[5], (T, B)), term, trunc, first,
                         0.3 * jax.random.normal(ks[6], (T, B, A)), core_state)


def _train(agent, params, steps=2):
  """Meta-gradient iterations (inner update, reverse-mode meta-gradient, Adam on η)."""
  opt = core.make_inner_optimizer("rmsprop", 0.05, eps=1e-3)
  learner = core.make_meta_learner(agent, opt, eta_conditioning=True)
  meta_opt = core.make_meta_optimizer(0.05)
  meta = core.init_meta_params(0.95, 0.9)
  opt_state, meta_opt_state = opt.init(params), meta_opt.init(meta)
  grad = jax.jit(learner.meta_gradient)
  objectives = []
  for k in range(steps):
    t1 = _traj(jax.random.key(2 * k), agent.initial_state(B))
    t2 = _traj(jax.random.key(2 * k + 1), agent.initial_state(B))
    g, (params, opt_state, objective) = grad(meta, params, opt_state, t1, t2)
    meta, meta_opt_state = core.meta_step(meta, meta_opt_state, g, meta_opt)
    objectives.append(float(objective))
  return params, meta, np.asarray(objectives)


def test_haiku_agent_trains_like_the_flax_agent_from_equal_weights():
  kw = dict(hidden=(8, 8), lstm_size=4, eta_embed_dim=3, eta_position="input")
  flax_agent = networks.make_agent(A, torso="mlp", **kw)
  hk_agent = haiku_networks.make_haiku_agent(A, **kw)
  flax_params = flax_agent.init(jax.random.key(0), jnp.zeros((B, D)))
  hk_params = haiku_networks.haiku_params_from_flax(flax_params)
  # The converted dict has exactly the haiku network's own parameter tree.
  fresh = hk_agent.init(jax.random.key(1), jnp.zeros((B, D)))
  assert jax.tree.structure(fresh) == jax.tree.structure(hk_params)
  jax.tree.map(lambda a, b: np.testing.assert_equal(a.shape, b.shape), fresh, hk_params)
  p_f, m_f, j_f = _train(flax_agent, flax_params)
  p_h, m_h, j_h = _train(hk_agent, hk_params)
  assert np.all(np.isfinite(j_f))
  np.testing.assert_allclose(j_h, j_f, rtol=1e-5, atol=1e-6)
  assert_trees_allclose(p_h, haiku_networks.haiku_params_from_flax(p_f), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose([m_h.gamma_logit, m_h.lambda_logit],
                             [m_f.gamma_logit, m_f.lambda_logit], rtol=1e-5, atol=1e-6)
  # The meta-parameters and the weights moved: the comparison is not between two initial states.
  assert float(m_f.gamma_logit) != float(core.init_meta_params(0.95, 0.9).gamma_logit)
  assert not np.allclose(p_f["params"]["torso"]["Dense_0"]["kernel"],
                         flax_params["params"]["torso"]["Dense_0"]["kernel"])


def test_bare_hk_transform_plugs_into_the_learner_and_the_training_loop():
  # A bare hk.transform (apply takes an rng) is accepted by make_meta_learner directly.
  fwd = haiku_networks.haiku_actor_critic(A, hidden=(8,))
  bare = hk.transform(fwd)
  agent = haiku_networks.make_haiku_agent(A, hidden=(8,))
  params = agent.init(jax.random.key(0), jnp.zeros((B, D)))
  opt = core.make_inner_optimizer("sgd", 0.1)
  traj, opt_state = _traj(jax.random.key(3)), opt.init(params)
  via_bare = core.make_meta_learner(bare, opt).inner_update(core.init_meta_params(), params,
                                                            opt_state, traj)[0]
  via_agent = core.make_meta_learner(agent, opt).inner_update(core.init_meta_params(), params,
                                                              opt_state, traj)[0]
  assert_trees_allclose(via_bare, via_agent, rtol=0, atol=0)
  # The jitted gymnax loop with config.network="haiku" equals the flax one from equal weights.
  c = mg_config.get_config("smoke")
  c.num_envs, c.unroll_length, c.hidden, c.total_env_steps = 2, 3, (8,), 2 * 3 * 3
  c.eta_conditioning, c.eta_embed_dim, c.meta_lr = True, 2, 0.05
  flax_learner = train.make_learner(c, "meta_gamma_lambda")
  c.network = "haiku"
  hk_learner = train.make_learner(c, "meta_gamma_lambda")
  s_f = flax_learner.init(jax.random.key(4))
  s_h = hk_learner.init(jax.random.key(4), None, haiku_networks.haiku_params_from_flax(s_f.params))
  step_f, step_h = jax.jit(flax_learner.step), jax.jit(hk_learner.step)
  for i in range(3):  # the first step only acts; two updates follow
    s_f, _ = step_f(s_f, jnp.int32(i))
    s_h, _ = step_h(s_h, jnp.int32(i))
  assert_trees_allclose(s_h.params, haiku_networks.haiku_params_from_flax(s_f.params), rtol=1e-5,
                        atol=1e-6)
  np.testing.assert_allclose(s_h.meta.gamma_logit, s_f.meta.gamma_logit, rtol=1e-5)
  with pytest.raises(ValueError, match="params"):
    hk_learner.init(jax.random.key(4), None, s_f.params)  # a flax tree is not the haiku tree
  c.torso = "conv"
  with pytest.raises(ValueError, match="config.network"):
    train.make_learner(c, "meta_gamma_lambda")


def test_from_haiku_validates_its_arguments():
  with pytest.raises(TypeError, match="transformed"):
    haiku_networks.from_haiku(lambda p: p, A)
  with pytest.raises(ValueError, match="num_actions"):
    haiku_networks.from_haiku(hk.transform(haiku_networks.haiku_actor_critic(A)), 0)
  with pytest.raises(ValueError, match="eta_position"):
    haiku_networks.make_haiku_agent(A, eta_position="middle")
  with pytest.raises(ValueError, match="torso='mlp'"):
    haiku_networks.haiku_params_from_flax(
        networks.make_agent(A, torso="conv", hidden=(8,)).init(jax.random.key(0),
                                                                jnp.zeros((B, 10, 10, 4))))

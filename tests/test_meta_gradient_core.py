"""Meta-gradient core: finite differences, V-trace identities, the trace, rlax flags, bad input."""

import flax.linen
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rlax

from jaxpapers.meta_gradient import core, envs, networks

T, B, A, D = 5, 3, 3, 4


def _traj(key, dtype=jnp.float32, core_state=()):
  ks = jax.random.split(key, 7)
  obs = jax.random.normal(ks[0], (T, B, D), dtype)
  nxt = jnp.concatenate([obs[1:], jax.random.normal(ks[1], (1, B, D), dtype)])
  term = jax.random.bernoulli(ks[2], 0.15, (T, B))
  trunc = jax.random.bernoulli(ks[3], 0.15, (T, B)) & ~term
  first = jnp.concatenate([jnp.ones((1, B), bool), (term | trunc)[:-1]])
  return core.Trajectory(obs, nxt, jax.random.randint(ks[4], (T, B), 0, A),
                         jax.random.normal(ks[5], (T, B), dtype), term, trunc, first,
                         0.3 * jax.random.normal(ks[6], (T, B, A), dtype), core_state)


@pytest.fixture(scope="module")
def agent():
  return networks.make_agent(A, hidden=(8,))


def _params(agent, dtype):
  p = agent.init(jax.random.key(0), jnp.zeros((B, D)))
  return jax.tree.map(lambda x: x.astype(dtype), p)


@pytest.mark.parametrize("kind", ["sgd", "rmsprop"])
def test_meta_gradient_matches_frozen_advantage_finite_difference(agent, kind):
  with jax.enable_x64(True):
    params = _params(agent, jnp.float64)
    # max_grad_norm=0.5 makes the clipping active, so the test covers it.
    opt = core.make_inner_optimizer(kind, 0.1, max_grad_norm=0.5)
    learner = core.make_meta_learner(agent.apply, opt, gamma_ref=0.99, lambda_ref=1.0)
    meta = core.init_meta_params(0.9, 0.8, jnp.float64)
    t1, t2 = _traj(jax.random.key(1), jnp.float64), _traj(jax.random.key(2), jnp.float64)
    opt_state = opt.init(params)
    _, _, m = learner.inner_update_with_metrics(meta, params, opt_state, t1)
    assert float(m["grad_norm"]) > 0.5  # clipping is active
    g, (new_params, _, _) = jax.jit(learner.meta_gradient)(meta, params, opt_state, t1, t2)
    _, frozen = learner.meta_objective(new_params, t2, meta)

    @jax.jit
    def objective(m):
      return learner.meta_objective(learner.inner_update(m, params, opt_state, t1)[0], t2, m,
                                    frozen)[0]

    eps = 1e-6
    for field in core.MetaParams._fields:
      up = objective(meta._replace(**{field: getattr(meta, field) + eps}))
      down = objective(meta._replace(**{field: getattr(meta, field) - eps}))
      fd = float((up - down) / (2 * eps))
      auto = float(getattr(g, field))
      assert abs(auto) > 1e-5, field  # the meta-gradient is not (accidentally) zero
      np.testing.assert_allclose(auto, fd, rtol=1e-5, atol=1e-9, err_msg=field)


def test_vtrace_on_policy_equals_lambda_return():
  traj = _traj(jax.random.key(3))
  ks = jax.random.split(jax.random.key(4), 2)
  values = jax.random.normal(ks[0], (T, B))
  next_values = jax.random.normal(ks[1], (T, B))
  # Consistency of v(S_{t+1}) where the episode continues.
  cont = ~(traj.terminated | traj.truncated)
  next_values = next_values.at[:-1].set(jnp.where(cont[:-1], values[1:], next_values[:-1]))
  gamma, lam = 0.9, 0.7
  targets, adv = core.vtrace_targets(values, next_values, traj.rewards, traj.terminated,
                                     traj.truncated, jnp.ones((T, B)), gamma, lam)
  ref = core.lambda_returns_reference(values, next_values, traj.rewards, traj.terminated,
                                      traj.truncated, gamma, lam)
  np.testing.assert_allclose(np.asarray(targets), ref, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(np.asarray(adv), ref - np.asarray(values), rtol=1e-5, atol=1e-5)
  # λ = 1, γ = 1 and a terminal at the end: the Monte-Carlo return.
  r = traj.rewards[:, 0]
  term = jnp.zeros((T, 1), bool).at[-1].set(True)
  none = jnp.zeros((T, 1), bool)
  v_next = jnp.concatenate([values[1:, :1], next_values[-1:, :1]])
  mc, _ = core.vtrace_targets(values[:, :1], v_next, r[:, None], term, none,
                              jnp.ones((T, 1)), 1.0, 1.0)
  np.testing.assert_allclose(np.asarray(mc[:, 0]), np.cumsum(np.asarray(r)[::-1])[::-1],
                             rtol=1e-5, atol=1e-5)


def test_rlax_default_flags_kill_the_meta_gradient_ours_do_not():
  traj = _traj(jax.random.key(5))
  v = jax.random.normal(jax.random.key(6), (T + 1,))
  r, d = traj.rewards[:, 0], 0.9 * jnp.ones((T,))

  def rlax_default(lam):
    out = rlax.vtrace_td_error_and_advantage(v[:-1], v[1:], r, d, jnp.ones((T,)), lam)
    return out.errors.sum() + rlax.policy_gradient_loss(
        traj.behaviour_logits[:, 0], traj.actions[:, 0], out.pg_advantage, jnp.ones((T,)))

  assert float(jax.grad(rlax_default)(0.8)) == 0.0

  def ours(meta):
    targets, adv = core.vtrace_targets(v[:-1, None], v[1:, None], r[:, None],
                                       jnp.zeros((T, 1), bool), jnp.zeros((T, 1), bool),
                                       jnp.ones((T, 1)), *core.meta_values(meta))
    return targets.sum() + adv.sum()

  g = jax.grad(ours)(core.init_meta_params(0.9, 0.8))
  assert abs(float(g.gamma_logit)) > 1e-4 and abs(float(g.lambda_logit)) > 1e-4


def test_trace_recursion_over_three_steps_and_mu_zero_matches_reverse_mode(agent):
  params = _params(agent, jnp.float32)
  opt = core.make_inner_optimizer("sgd", 0.05)
  learner = core.make_meta_learner(agent.apply, opt)
  meta = core.init_meta_params(0.95, 0.9)
  opt_state = opt.init(params)
  direction = jax.jit(learner.update_direction)
  update = jax.jit(learner.inner_update)
  mu = 0.5
  z = core.zero_trace(params)
  dirs, p, o = [], params, opt_state
  for k in range(3):
    d = direction(meta, p, o, _traj(jax.random.key(10 + k)))
    dirs.append(d)
    z = core.accumulate_trace(z, d, mu)
    p, o = update(meta, p, o, _traj(jax.random.key(10 + k)))
  expected = jax.tree.map(lambda a, b, c: mu**2 * a + mu * b + c, *dirs)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), z, expected)
  # With μ = 0 the trace-based meta-gradient equals reverse mode through the update.
  t1, t2 = _traj(jax.random.key(20)), _traj(jax.random.key(21))
  g_rev, (p1, _, _) = jax.jit(learner.meta_gradient)(meta, params, opt_state, t1, t2)
  g_theta, _ = learner.objective_grad(p1, t2, meta)
  z1 = core.accumulate_trace(core.zero_trace(params), direction(meta, params, opt_state, t1), 0.0)
  g_fwd = learner.meta_gradient_from_trace(g_theta, z1)
  for field in core.MetaParams._fields:
    np.testing.assert_allclose(getattr(g_fwd, field), getattr(g_rev, field), rtol=1e-3,
                               atol=1e-7)


def _state_spread_of_eta_effect(agent, params, traj, learner):
  """Spread over states of logits(s, η₁) − logits(s, η₂): 0 when η shifts every state alike."""
  def logits(meta):
    return agent.apply(params, traj.obs, traj.next_obs, traj.first, agent.initial_state(B),
                       learner.eta_input(meta)).logits

  m1, m2 = core.init_meta_params(0.9, 0.8), core.init_meta_params(0.5, 0.2)
  diff = np.asarray(logits(m1) - logits(m2)).reshape(T * B, A)
  return float(np.max(diff.max(0) - diff.min(0))), float(np.abs(diff).max())


@pytest.mark.parametrize("lstm_size", [0, 6])
def test_eta_embedding_conditions_outputs_without_gradient_to_eta(lstm_size):
  traj = _traj(jax.random.key(7))
  spreads = {}
  for position in ("input", "heads"):
    agent = networks.make_agent(A, hidden=(8,), lstm_size=lstm_size, eta_embed_dim=4,
                                eta_position=position)
    params = agent.init(jax.random.key(0), jnp.zeros((B, D)))
    # The policy head starts at N(0, 0.01²) weights; scale it up so differences are measurable.
    params["params"]["policy"]["kernel"] = 30.0 * params["params"]["policy"]["kernel"]
    learner = core.make_meta_learner(agent, core.make_inner_optimizer("sgd", 0.1),
                                     eta_conditioning=True)
    spread, size = _state_spread_of_eta_effect(agent, params, traj._replace(
        core_state=agent.initial_state(B)), learner)
    assert size > 1e-3, position  # η changes the logits in both forms
    spreads[position] = spread

    def values(meta):
      out = agent.apply(params, traj.obs, traj.next_obs, traj.first, agent.initial_state(B),
                        learner.eta_input(meta))
      return out.values.sum()

    g = jax.grad(values)(core.init_meta_params(0.9, 0.8))
    assert float(g.gamma_logit) == 0.0 and float(g.lambda_logit) == 0.0
  # At the input e_η interacts with the state; at the heads it is one shift for every state
  # (without an LSTM; with one, the heads see h_t, which mixes η only in the "input" form).
  assert spreads["input"] > 1e-3, spreads
  assert spreads["heads"] < 1e-5, spreads


def test_eta_conditioning_needs_an_embedding_and_init_logits_stay_below_one():
  plain = networks.make_agent(A, hidden=(8,))
  opt = core.make_inner_optimizer("sgd", 0.1)
  with pytest.raises(ValueError, match="eta_conditioning"):
    core.make_meta_learner(plain, opt, eta_conditioning=True)
  # A bare apply function cannot be inspected; the network refuses the η input when applied.
  learner = core.make_meta_learner(plain.apply, opt, eta_conditioning=True)
  params = plain.init(jax.random.key(0), jnp.zeros((B, D)))
  with pytest.raises(ValueError, match="eta_embed_dim"):
    learner.inner_update(core.init_meta_params(), params, opt.init(params),
                         _traj(jax.random.key(1)))
  # γ = 1 − 1e-9 would round to a discount of exactly 1.0 in float32; the logit is clipped.
  for v in (1.0 - 1e-9, 1.0 - 1e-12, 1e-30):
    meta = core.init_meta_params(v, v)
    gamma, lam = core.meta_values(meta)
    assert 0.0 < float(gamma) < 1.0 and 0.0 < float(lam) < 1.0, v
    assert meta.gamma_logit.dtype == jnp.float32
  # Within the float32 range the logit is exact.
  np.testing.assert_allclose(float(core.meta_values(core.init_meta_params(0.99, 0.9))[0]), 0.99,
                             rtol=1e-6)
  assert 15.0 < core.max_logit(jnp.float32) < 17.0
  with jax.enable_x64(True):
    meta = core.init_meta_params(1.0 - 1e-12, 0.5, jnp.float64)
    assert float(core.meta_values(meta)[0]) == pytest.approx(1.0 - 1e-12, rel=0, abs=1e-15)


def test_lstm_agent_resets_on_first_and_bootstraps_next_values():
  agent = networks.make_agent(A, torso="mlp", hidden=(8,), lstm_size=6)
  params = agent.init(jax.random.key(0), jnp.zeros((B, D)))
  traj = _traj(jax.random.key(8), core_state=agent.initial_state(B))
  out = agent.apply(params, traj.obs, traj.next_obs, traj.first, traj.core_state, None)
  assert out.logits.shape == (T, B, A) and out.next_values.shape == (T, B)
  # Where the episode continues, v(next_obs_t) is the value at t+1 of the same unroll.
  cont = np.asarray(~(traj.terminated | traj.truncated))[:-1]
  np.testing.assert_allclose(np.asarray(out.next_values[:-1])[cont], np.asarray(out.values[1:])[cont],
                             rtol=1e-5, atol=1e-6)
  # A reset at t makes the outputs from t on independent of the incoming core state.
  random_core = jax.tree.map(lambda x: x + 1.0, traj.core_state)
  out2 = agent.apply(params, traj.obs, traj.next_obs, traj.first, random_core, None)
  np.testing.assert_allclose(out2.values, out.values, rtol=1e-6)  # first[0] is True everywhere
  no_reset = traj.first.at[0].set(False)
  out3 = agent.apply(params, traj.obs, traj.next_obs, no_reset, random_core, None)
  assert not np.allclose(out3.values[0], out.values[0])


def test_bad_inputs_raise_clear_errors(agent):
  with pytest.raises(ValueError, match="gamma_ref"):
    core.make_meta_learner(agent.apply, core.make_inner_optimizer("sgd", 0.1), gamma_ref=0.0)
  with pytest.raises(ValueError, match="gamma_ref"):
    core.check_reference(1.5, 1.0)
  with pytest.raises(ValueError, match="lambda_ref"):
    core.check_reference(0.99, -0.1)
  with pytest.raises(ValueError, match="gamma"):
    core.init_meta_params(1.0, 0.5)
  with pytest.raises(ValueError, match="kind"):
    core.make_inner_optimizer("adagrad", 0.1)
  traj = _traj(jax.random.key(9))
  with pytest.raises(ValueError, match="trajectory.actions"):
    core.check_trajectory(traj._replace(actions=traj.actions[:-1]))
  with pytest.raises(ValueError, match="trajectory.next_obs"):
    core.check_trajectory(traj._replace(next_obs=traj.next_obs[..., :-1]))
  with pytest.raises(TypeError, match="trajectory.terminated"):
    core.check_trajectory(traj._replace(terminated=traj.terminated.astype(jnp.float32)))
  learner = core.make_meta_learner(agent.apply, core.make_inner_optimizer("sgd", 0.1))
  params = _params(agent, jnp.float32)
  with pytest.raises(ValueError, match="trajectory.behaviour_logits"):
    learner.inner_update(core.init_meta_params(), params, (),
                         traj._replace(behaviour_logits=traj.behaviour_logits[:, :1]))
  with pytest.raises(ValueError, match="env_name"):
    envs.make_env("Pong-NoFrameskip-v4")


def test_patch_conv_equals_flax_conv_in_values_gradients_and_init():
  x = jax.random.normal(jax.random.key(0), (3, 10, 10, 4))
  ref, ours = flax.linen.Conv(5, (3, 3), padding="VALID"), networks.PatchConv(5, (3, 3))
  p_ref, p_ours = ref.init(jax.random.key(1), x), ours.init(jax.random.key(1), x)
  jax.tree.map(np.testing.assert_array_equal, p_ours, p_ref)  # same parameters, same init
  p_ref = jax.tree.map(lambda a: a + 0.1, p_ref)  # a non-zero bias
  np.testing.assert_allclose(ours.apply(p_ref, x), ref.apply(p_ref, x), rtol=1e-5, atol=1e-5)

  def loss(module):
    return lambda p, x: jnp.sum(jnp.tanh(module.apply(p, x)) ** 2)

  g_ours, g_ref = (jax.grad(loss(m), argnums=(0, 1))(p_ref, x) for m in (ours, ref))
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), g_ours, g_ref)


def test_impala_torso_and_agent_shapes_params_and_finite_outputs():
  torso = networks.ImpalaTorso(channels=(4, 8), hidden=16)
  x = jax.random.randint(jax.random.key(0), (2, 12, 12, 3), 0, 256).astype(jnp.uint8)
  params = torso.init(jax.random.key(1), x)["params"]
  # Two sections of conv + max-pool + 2 residual blocks (2 convs each), then the dense layer.
  assert sorted(params) == [f"Conv_{i}" for i in (0, 1, 2, 3, 4, 5, 6, 7, 8, 9)] + ["Dense_0"]
  assert params["Conv_0"]["kernel"].shape == (3, 3, 3, 4)
  assert params["Conv_4"]["kernel"].shape == (3, 3, 4, 4)
  assert params["Conv_5"]["kernel"].shape == (3, 3, 4, 8)
  assert params["Dense_0"]["kernel"].shape == (3 * 3 * 8, 16)  # 12 -> 6 -> 3 after two pools
  out = torso.apply({"params": params}, x)
  assert out.shape == (2, 16) and np.all(np.isfinite(out)) and np.all(np.asarray(out) >= 0.0)
  # The Atari agent (IMPALA torso + LSTM + η-embedding) on [T, B, 12, 12, 4] frames.
  t, b = 3, 2
  agent = networks.make_agent(A, torso="impala", hidden=(16,), lstm_size=8, eta_embed_dim=4)
  frames = jax.random.randint(jax.random.key(2), (t, b, 12, 12, 4), 0, 256).astype(jnp.uint8)
  p = agent.init(jax.random.key(3), frames[0])
  assert p["params"]["torso"]["Conv_14"]["kernel"].shape == (3, 3, 32, 32)
  first = jnp.zeros((t, b), bool).at[0].set(True)
  eta = jnp.array([0.99, 0.9])
  out = jax.jit(agent.apply)(p, frames, frames, first, agent.initial_state(b), eta)
  assert out.logits.shape == (t, b, A) and out.values.shape == (t, b)
  assert out.next_values.shape == (t, b)
  for leaf in jax.tree.leaves(out):
    assert np.all(np.isfinite(leaf))
  g = jax.jit(jax.grad(lambda q: agent.apply(q, frames, frames, first, agent.initial_state(b),
                                             eta).values.sum()))(p)
  norms = jax.tree.map(lambda a: float(jnp.abs(a).sum()), g["params"]["torso"])
  assert all(np.isfinite(v) for v in jax.tree.leaves(norms))
  assert norms["Conv_0"]["kernel"] > 0 and norms["Dense_0"]["kernel"] > 0

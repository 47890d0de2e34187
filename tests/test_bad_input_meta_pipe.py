"""Bad input to the public functions of meta_gradient and pipe_sgd: a clear error naming the
argument, or an honest NaN, never a finite wrong value."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxpapers.meta_gradient import atari, core, data, networks, toy, train
from jaxpapers.meta_gradient import config as mg_config
from jaxpapers.pipe_sgd import allreduce, compression, models, pipeline, timing
from jaxpapers.pipe_sgd import config as ps_config

NAN, INF = float("nan"), float("inf")


# ----------------------------------------------------------------------------- meta_gradient


@pytest.mark.parametrize("kwargs,match", [
    (dict(gamma=NAN), "gamma"), (dict(gamma=INF), "gamma"), (dict(gamma=0.0), "gamma"),
    (dict(lambda_=1.0), "lambda_"), (dict(lambda_=-0.1), "lambda_"), (dict(gamma="0.9"), "gamma"),
    (dict(gamma=True), "gamma"),
])
def test_init_meta_params_rejects_out_of_range(kwargs, match):
  with pytest.raises(ValueError, match=match):
    core.init_meta_params(**kwargs)


def test_init_meta_params_rejects_integer_dtype():
  with pytest.raises(TypeError, match="dtype"):
    core.init_meta_params(0.9, 0.9, jnp.int32)


@pytest.mark.parametrize("kwargs,match", [
    (dict(learning_rate=-1e-3), "learning_rate"), (dict(learning_rate=0.0), "learning_rate"),
    (dict(learning_rate=NAN), "learning_rate"), (dict(learning_rate=INF), "learning_rate"),
    (dict(decay=1.0), "decay"), (dict(decay=-0.1), "decay"), (dict(eps=-1e-3), "eps"),
    (dict(max_grad_norm=0.0), "max_grad_norm"), (dict(max_grad_norm=NAN), "max_grad_norm"),
    (dict(kind="adam"), "kind"),
])
def test_inner_optimizer_hyperparameters(kwargs, match):
  with pytest.raises(ValueError, match=match):
    core.make_inner_optimizer(**kwargs)


@pytest.mark.parametrize("kwargs,match", [
    (dict(learning_rate=-1e-3), "learning_rate"), (dict(learning_rate=NAN), "learning_rate"),
    (dict(b1=1.0), "b1"), (dict(b1=1.5), "b1"), (dict(b2=1.0), "b2"), (dict(b2=-0.5), "b2"),
    (dict(eps=-1.0), "eps"), (dict(eps=NAN), "eps"),
])
def test_meta_optimizer_hyperparameters(kwargs, match):
  with pytest.raises(ValueError, match=match):
    core.make_meta_optimizer(**kwargs)


def test_schedules_are_accepted_as_learning_rates():
  sched = optax.linear_schedule(1e-3, 0.0, 10)
  assert isinstance(core.make_inner_optimizer("sgd", sched), optax.GradientTransformation)
  assert isinstance(core.make_meta_optimizer(sched), optax.GradientTransformation)


def test_meta_learner_arguments():
  agent = networks.make_agent(3, hidden=(4,))
  opt = core.make_inner_optimizer("sgd", 0.1)
  with pytest.raises(ValueError, match="baseline_cost"):
    core.make_meta_learner(agent, opt, baseline_cost=-0.5)
  with pytest.raises(ValueError, match="entropy_cost"):
    core.make_meta_learner(agent, opt, entropy_cost=NAN)
  with pytest.raises(ValueError, match="lambda_ref"):
    core.make_meta_learner(agent, opt, lambda_ref=NAN)
  with pytest.raises(TypeError, match="optimizer"):
    core.make_meta_learner(agent, "sgd")
  with pytest.raises(TypeError, match="eta_conditioning"):
    core.make_meta_learner(agent, opt, eta_conditioning="input")
  with pytest.raises(TypeError, match="apply_fn"):
    core.make_meta_learner(42, opt)
  with pytest.raises(ValueError, match="mu"):
    core.accumulate_trace(core.zero_trace({"w": jnp.ones(2)}), core.zero_trace({"w": jnp.ones(2)}),
                          NAN)


def _vtrace_inputs(t=3, b=2):
  f = jnp.ones((t, b))
  no = jnp.zeros((t, b), bool)
  return dict(values=f, next_values=f, rewards=f, terminated=no, truncated=no, rhos=f)


def test_vtrace_targets_wrong_rank_dtype_range_and_nan():
  kw = _vtrace_inputs()
  with pytest.raises(AssertionError, match="rank"):
    core.vtrace_targets(**{**kw, "rewards": jnp.ones(3)}, gamma=0.9, lambda_=0.9)
  with pytest.raises(AssertionError):
    core.vtrace_targets(**{**kw, "rhos": jnp.ones((3, 3))}, gamma=0.9, lambda_=0.9)
  with pytest.raises(TypeError, match="terminated"):
    core.vtrace_targets(**{**kw, "terminated": jnp.zeros((3, 2))}, gamma=0.9, lambda_=0.9)
  with pytest.raises(ValueError, match="gamma"):
    core.vtrace_targets(**kw, gamma=1.5, lambda_=0.9)
  with pytest.raises(ValueError, match="lambda_"):
    core.vtrace_targets(**kw, gamma=0.9, lambda_=-0.1)
  # A NaN reward makes the targets it feeds NaN (t = 0 and 1 here), not a finite number.
  targets, adv = core.vtrace_targets(**{**kw, "rewards": kw["rewards"].at[1, 0].set(NAN)},
                                     gamma=0.9, lambda_=0.9)
  t = np.asarray(targets)
  assert np.all(np.isnan(t[:2, 0])) and np.all(np.isfinite(t[:, 1])) and np.isfinite(t[2, 0])
  targets, _ = core.vtrace_targets(**kw, gamma=NAN, lambda_=0.9)
  assert np.all(np.isnan(np.asarray(targets)))


def test_trajectory_checks_name_the_field():
  t, b, a = 3, 2, 4
  f = jnp.zeros((t, b))
  no = jnp.zeros((t, b), bool)
  traj = core.Trajectory(jnp.zeros((t, b, 5)), jnp.zeros((t, b, 5)), jnp.zeros((t, b), jnp.int32),
                         f, no, no, no, jnp.zeros((t, b, a)))
  assert core.check_trajectory(traj, a) == (t, b)
  with pytest.raises(TypeError, match="trajectory.rewards"):
    core.check_trajectory(traj._replace(rewards=jnp.zeros((t, b), jnp.int32)))
  with pytest.raises(ValueError, match="trajectory.rewards"):
    core.check_trajectory(traj._replace(rewards=jnp.zeros((0, b))))
  with pytest.raises(TypeError, match="trajectory.actions"):
    core.check_trajectory(traj._replace(actions=f))
  with pytest.raises(ValueError, match="trajectory.behaviour_logits"):
    core.check_trajectory(traj, 3)
  with pytest.raises(TypeError, match="Trajectory"):
    core.check_trajectory(tuple(traj))


def test_agent_builder_arguments():
  for kwargs, match in [(dict(num_actions=0), "num_actions"), (dict(hidden=()), "hidden"),
                        (dict(hidden=(8, 0)), "hidden"), (dict(lstm_size=-1), "lstm_size"),
                        (dict(eta_embed_dim=-2), "eta_embed_dim"),
                        (dict(eta_position="tail"), "eta_position"), (dict(torso="rnn"), "torso")]:
    with pytest.raises(ValueError, match=match):
      networks.make_agent(**{"num_actions": 3, **kwargs})


def test_eta_return_rank_dtype_range_and_nan():
  r, v, ones = jnp.array([1.0, 2.0, 4.0]), jnp.zeros(3), jnp.ones(3)
  with pytest.raises(ValueError, match="rewards"):
    toy.eta_return(jnp.ones((3, 2)), v, ones, ones)
  with pytest.raises(ValueError, match="rewards"):
    toy.eta_return(jnp.zeros((0,)), jnp.zeros(0), jnp.zeros(0), jnp.zeros(0))
  with pytest.raises(TypeError, match="rewards"):
    toy.eta_return(jnp.ones(3, jnp.int32), v, ones, ones)
  with pytest.raises(ValueError, match="gammas"):
    toy.eta_return(r, v, 2.0 * ones, ones)
  with pytest.raises(ValueError, match="lambdas"):
    toy.eta_return(r, v, ones, -ones)
  with pytest.raises(ValueError, match="values"):
    toy.eta_return(r, jnp.zeros(4), ones, ones)
  out = np.asarray(toy.eta_return(r.at[1].set(NAN), v, ones, ones))
  assert np.isnan(out[0]) and np.isnan(out[1]) and out[2] == 4.0  # NaN only where it flows


def test_toy_config_ranges():
  key = jax.random.key(0)
  for cfg, match in [(toy.ToyConfig(value_lr=-0.1), "value_lr"),
                     (toy.ToyConfig(meta_lr=NAN), "meta_lr"),
                     (toy.ToyConfig(init_prob=1.0), "init_prob")]:
    with pytest.raises(ValueError, match=match):
      toy.run_toy(key, cfg, 1)
  with pytest.raises(ValueError, match="num_episodes"):
    toy.run_toy(key, toy.ToyConfig(), 0)


def test_scores_tables():
  assert np.isnan(data.human_normalized("Pong", NAN))
  with pytest.raises(ValueError, match="game"):
    data.human_normalized("NotAGame", 1.0)
  with pytest.raises(ValueError, match="scores"):
    data.median_human_normalized({})
  with pytest.raises(ValueError, match="frame_a"):
    atari.max_pool_and_resize(np.zeros((4, 4, 3)), np.zeros((4, 4, 3)))


@pytest.mark.parametrize("field,value", [
    ("learning_rate", -1e-3), ("learning_rate", NAN), ("learning_rate", INF), ("meta_lr", 0.0),
    ("rms_decay", 1.0), ("rms_eps", -1.0), ("max_grad_norm", 0.0), ("entropy_cost", -0.01),
    ("baseline_cost", INF), ("gamma_init", 1.0), ("lambda_init", NAN), ("gamma_ref", 1.5),
    ("trace_decay", 2.0), ("num_envs", 0), ("eta_embed_dim", 0), ("eta_position", "tail"),
    ("network", "torch"),
])
def test_meta_gradient_config_ranges(field, value):
  c = mg_config.get_config("smoke")
  c.eta_conditioning = True
  c[field] = value
  with pytest.raises(ValueError, match=f"config.{field}"):
    train.validate_config(c, "meta_gamma_lambda")


# ----------------------------------------------------------------------------- pipe_sgd


def _mlp_problem():
  params = models.init_mlp(jax.random.key(0), 4, (3,), 2)
  loss = lambda w, b: models.cross_entropy_loss(models.mlp_apply, w, b)
  return params, loss


@pytest.mark.parametrize("lr", [-0.1, 0.0, NAN, INF, "0.1", True])
def test_make_train_step_learning_rate(lr):
  params, loss = _mlp_problem()
  with pytest.raises(ValueError, match="learning_rate"):
    pipeline.make_train_step(loss, allreduce.default_mesh(1), learning_rate=lr)


def test_pipeline_arguments():
  params, loss = _mlp_problem()
  mesh = allreduce.default_mesh(1)
  for width in (0, 1.5, True, "2"):
    with pytest.raises(ValueError, match="width"):
      pipeline.make_train_step(loss, mesh, width=width)
  with pytest.raises(ValueError, match="warmup_steps"):
    pipeline.make_train_step(loss, mesh, warmup_steps=1.5)
  with pytest.raises(TypeError, match="loss_fn"):
    pipeline.make_train_step(None, mesh)
  with pytest.raises(ValueError, match="axis_name"):
    pipeline.make_train_step(loss, mesh, axis_name="model")
  with pytest.raises(TypeError, match="optimizer"):
    pipeline.init_pipe_state(params, 2, optimizer=optax.sgd)
  step = pipeline.make_train_step(loss, mesh)
  with pytest.raises(ValueError, match="batch is empty"):
    step(pipeline.init_pipe_state(params, 2), {})
  with pytest.raises(TypeError, match="state"):
    step(params, {"x": jnp.zeros((2, 4)), "y": jnp.zeros((2,), jnp.int32)})


def test_losses_reject_wrong_labels_and_give_nan_for_nan_input():
  params, _ = _mlp_problem()
  x = jnp.zeros((2, 4))
  with pytest.raises(TypeError, match=r"batch\['y'\]"):
    models.cross_entropy_loss(models.mlp_apply, params, {"x": x, "y": jnp.zeros(2)})
  with pytest.raises(ValueError, match=r"batch\['y'\]"):
    models.cross_entropy_loss(models.mlp_apply, params, {"x": x, "y": jnp.zeros((2, 1), jnp.int32)})
  with pytest.raises(ValueError, match="empty"):
    models.cross_entropy_loss(models.mlp_apply, params,
                              {"x": jnp.zeros((0, 4)), "y": jnp.zeros((0,), jnp.int32)})
  # An out-of-range label and a NaN feature give NaN, not a finite loss.
  y_bad = jnp.array([0, 7], jnp.int32)
  assert np.isnan(float(models.cross_entropy_loss(models.mlp_apply, params, {"x": x, "y": y_bad})))
  x_nan = x.at[0, 0].set(NAN)
  assert np.isnan(float(models.cross_entropy_loss(
      models.mlp_apply, params, {"x": x_nan, "y": jnp.zeros(2, jnp.int32)})))
  with pytest.raises(ValueError, match="image_shape"):
    models.init_model(jax.random.key(0), "mlp", (0,), 10)
  with pytest.raises(ValueError, match="image_shape"):
    models.init_model(jax.random.key(0), "cnn", (8, 8), 10)
  with pytest.raises(ValueError, match="layer sizes"):
    models.init_mlp(jax.random.key(0), 4, (0,), 2)


def test_compressors_on_wrong_dtype_empty_and_nonfinite():
  with pytest.raises(TypeError, match="x"):
    compression.truncate16_encode(jnp.ones(3, jnp.int32))
  with pytest.raises(TypeError, match="x"):
    compression.quantize8_encode(jnp.ones(3, jnp.int32))
  with pytest.raises(TypeError, match="payload"):
    compression.truncate16_decode(jnp.ones(3, jnp.float32))
  with pytest.raises(TypeError, match="codes"):
    compression.quantize8_decode((jnp.ones(3, jnp.int32), jnp.float32(1.0)))
  for name in ("none", "truncate16", "quantize8"):
    assert compression.roundtrip(jnp.zeros((0,)), name).shape == (0,)
    out = np.asarray(compression.roundtrip(jnp.array([1.0, NAN, -2.0]), name))
    assert np.isnan(out[1]) and np.all(np.isfinite(out[[0, 2]])), name  # NaN stays local
  with pytest.raises(TypeError, match="floating"):
    allreduce.make_allreduce(allreduce.default_mesh(1))(jnp.ones((1, 3), jnp.int32))


def test_allreduce_helpers():
  for p in (0, -1, 1.5, True):
    with pytest.raises(ValueError, match="axis_size"):
      allreduce.ring_elements_sent(p, 4)
  for n in (-1, NAN, 2.5):
    with pytest.raises(ValueError, match="n must"):
      allreduce.ring_elements_sent(2, n)
  with pytest.raises(ValueError, match="num_devices"):
    allreduce.default_mesh(0)
  with pytest.raises(ValueError, match="compressor"):
    allreduce.make_allreduce(allreduce.default_mesh(1), method="psum", compressor="quantize8")


def test_timing_model_rejects_negative_costs_and_propagates_nan():
  net = timing.Network(1e-5, 1e-9, 1e-10)
  with pytest.raises(ValueError, match="net.alpha"):
    timing.ring_allreduce_time(timing.Network(-1e-5, 1e-9, 0.0), 4, 10)
  with pytest.raises(ValueError, match="net.beta"):
    timing.ps_sync_time(timing.Network(1e-5, -1e-9, 0.0), 4, 10, 1.0)
  with pytest.raises(ValueError, match="t_comp"):
    timing.pipe_sgd_time(net, 4, 10, -1.0)
  with pytest.raises(ValueError, match="t_up"):
    timing.allreduce_sync_time(net, 4, 10, 1.0, -0.5)
  with pytest.raises(ValueError, match="t_comp"):
    timing.ps_async_time(net, 4, 10, -1.0)
  with pytest.raises(ValueError, match="zeta"):
    timing.ring_allreduce_time(net, 4, 10, bits=16, zeta=-1.0)
  with pytest.raises(ValueError, match="p"):
    timing.ring_allreduce_time(net, 0, 10)
  with pytest.raises(ValueError, match="n"):
    timing.ring_allreduce_time(net, 2, -10)
  with pytest.raises(ValueError, match="bits"):
    timing.ring_allreduce_time(net, 2, 10, bits=4)
  with pytest.raises(TypeError, match="net"):
    timing.ring_allreduce_time((1e-5, 1e-9, 0.0), 2, 10)
  with pytest.raises(ValueError, match="bandwidth"):
    timing.network_from_bandwidth(1e-5, NAN)
  with pytest.raises(ValueError, match="t_comp"):
    timing.best_pipeline_width(NAN, 1.0)
  with pytest.raises(ValueError, match="max_width"):
    timing.best_pipeline_width(1.0, 1.0, max_width=0)
  assert np.isnan(float(timing.pipe_sgd_time(net, 4, 10, NAN)))
  assert np.isnan(float(timing.ring_allreduce_time(timing.Network(NAN, 1e-9, 0.0), 4, 10)))


@pytest.mark.parametrize("field,value", [
    ("learning_rate", -0.3), ("learning_rate", NAN), ("num_workers", 0), ("batch_size", 31),
    ("width", 0), ("num_steps", 0), ("target_accuracy", 1.5), ("compressor", "int4"),
    ("model", "resnet"), ("timing.bandwidth_bytes_per_s", 0.0), ("timing.latency_s", -1.0),
    ("timing.zeta", NAN),
])
def test_pipe_sgd_config_ranges(field, value):
  c = ps_config.get_config("smoke")
  if "." in field:
    c.timing[field.split(".")[1]] = value
  else:
    c[field] = value
  with pytest.raises(ValueError, match=field.split(".")[-1]):
    ps_config.validate_config(c)

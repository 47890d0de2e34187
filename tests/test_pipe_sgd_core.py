"""Pipe-SGD core: ring AllReduce, compressors, the width-K step, overlap runner, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers._src.mesh import P, shard
from jaxpapers._src.testing import TraceCounter, assert_trees_allclose
from jaxpapers.pipe_sgd import allreduce, compression, models, pipeline


def _mesh(p):
  if jax.device_count() < p:
    pytest.skip(f"needs {p} devices")
  return allreduce.default_mesh(p)


@pytest.mark.parametrize("p", [2, 3, 4, 8])
def test_ring_allreduce_equals_psum(p):
  mesh = _mesh(p)
  x = jax.random.normal(jax.random.key(p), (p, 37))  # 37 is not a multiple of p: padding path
  ring = jax.jit(allreduce.make_allreduce(mesh, method="ring"))(x)
  psum = jax.jit(allreduce.make_allreduce(mesh, method="psum"))(x)
  np.testing.assert_allclose(ring, psum, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(ring[0], np.asarray(x, np.float64).sum(0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("comp", ["truncate16", "quantize8"])
def test_compressed_ring_is_identical_on_all_ranks_and_bounded(comp):
  p = 4
  mesh = _mesh(p)
  x = jax.random.normal(jax.random.key(1), (p, 64)) * 3.0
  out = np.asarray(jax.jit(allreduce.make_allreduce(mesh, compressor=comp))(x))
  for r in range(1, p):
    np.testing.assert_array_equal(out[r], out[0])
  exact = np.asarray(x, np.float64).sum(0)
  err = np.abs(out[0] - exact)
  if comp == "truncate16":
    # each of the p - 1 reduce-scatter hops and the final all-gather encode lose < 2^-7 relative
    bound = 2.0**-7 * p * np.abs(np.asarray(x, np.float64)).sum(0) * 1.1
    assert np.all(err <= bound)
  else:
    # each hop loses at most half a quantization step of a message whose max is <= sum_i max|x_i|
    step = np.abs(np.asarray(x)).max(axis=1).sum() / 127
    assert np.all(err <= p * step / 2 * 1.01)
  assert err.max() > 0  # the compression really is lossy


def test_pmap_path_matches_shard_map():
  mesh = _mesh(2)
  x = jax.random.normal(jax.random.key(2), (2, 10))
  a = allreduce.pmap_ring_allreduce(x, "truncate16")
  b = allreduce.make_allreduce(mesh, compressor="truncate16")(x)
  np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_ring_elements_sent_is_2_p_minus_1_over_p_n():
  for p in (2, 3, 4, 8):
    n = 24 * p
    assert allreduce.ring_elements_sent(p, n) == 2 * (p - 1) * n // p


def test_truncate16_error_bound_elementwise():
  rng = np.random.default_rng(3)
  x = jnp.asarray(rng.normal(size=4096) * 10.0 ** rng.integers(-20, 20, size=4096), jnp.float32)
  payload = compression.truncate16_encode(x)
  assert payload.dtype == jnp.uint16
  t = np.asarray(compression.truncate16_decode(payload), np.float64)
  xd = np.asarray(x, np.float64)
  assert np.all(np.abs(xd - t) < 2.0**-7 * np.abs(xd) + 1e-45)
  assert np.all(np.abs(t) <= np.abs(xd))
  assert np.all(np.sign(t) == np.sign(xd))
  # hand-derived: 1 + 2^-7 + 2^-9 keeps its first 7 mantissa bits only
  v = jnp.float32(1 + 2**-7 + 2**-9)
  assert float(compression.roundtrip(v[None], "truncate16")[0]) == 1 + 2**-7


def test_quantize8_error_bound_elementwise():
  x = jax.random.normal(jax.random.key(5), (1000,)) * 7.0
  codes, scale = compression.quantize8_encode(x)
  assert codes.dtype == jnp.int8
  np.testing.assert_allclose(float(scale), float(jnp.max(jnp.abs(x))) / 127, rtol=1e-6)
  d = compression.quantize8_decode((codes, scale))
  assert np.all(np.abs(np.asarray(d) - np.asarray(x)) <= float(scale) / 2 * (1 + 1e-5))
  z = compression.roundtrip(jnp.zeros(5), "quantize8")  # all-zero message: no division by 0
  np.testing.assert_array_equal(z, np.zeros(5))


def _problem(n=64, d=12, k=3, seed=0):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, d)).astype(np.float32)
  y = rng.integers(0, k, size=n).astype(np.int32)
  params = models.init_mlp(jax.random.key(seed), d, (8,), k)
  loss = lambda w, b: models.cross_entropy_loss(models.mlp_apply, w, b)
  return params, loss, {"x": x, "y": y}


def _stream(batch, steps, seed=0):
  rng = np.random.default_rng(seed)
  n = batch["y"].shape[0]
  idx = np.stack([rng.permutation(n)[: n // 2] for _ in range(steps)])
  return {"x": batch["x"][idx], "y": batch["y"][idx]}


def _run_scan(step, state, stream):
  return jax.jit(lambda s, b: jax.lax.scan(step, s, b))(state, stream)


def _serial_delayed(loss, params, stream, width, lr):
  """The serial reference: w_{t+1} = w_t - lr * grad f(w_{t-K+1}; batch_{t-K+1}) on one device."""
  grad = jax.jit(jax.grad(loss))
  hist = []
  w = params
  for t in range(stream["y"].shape[0]):
    hist.append(grad(w, {"x": stream["x"][t], "y": stream["y"][t]}))
    s = t - width + 1
    if s >= 0:
      w = jax.tree.map(lambda a, g: a - lr * g, w, hist[s])
  return w


def test_width1_equals_synchronous_sgd():
  params, loss, data = _problem()
  stream = _stream(data, 10)
  step = pipeline.make_train_step(loss, _mesh(4), width=1, learning_rate=0.3)
  state, _ = _run_scan(step, pipeline.init_pipe_state(params, 1), stream)
  ref = _serial_delayed(loss, params, stream, 1, 0.3)
  assert_trees_allclose(state.params, ref, rtol=1e-5, atol=1e-5)


def test_width2_on_4_devices_equals_delayed_gradient_recursion_after_100_steps():
  params, loss, data = _problem()
  stream = _stream(data, 100)
  step = pipeline.make_train_step(loss, _mesh(4), width=2, learning_rate=0.2)
  state, metrics = _run_scan(step, pipeline.init_pipe_state(params, 2), stream)
  ref = _serial_delayed(loss, params, stream, 2, 0.2)
  assert_trees_allclose(state.params, ref, rtol=1e-5, atol=1e-5)
  assert int(state.step) == 100
  assert metrics["loss"][-1] < metrics["loss"][0]


def test_width3_ring_on_8_devices_equals_single_device_recursion():
  params, loss, data = _problem()
  stream = _stream(data, 20)
  ref = _serial_delayed(loss, params, stream, 3, 0.2)  # single device, whole batch
  ring = pipeline.make_train_step(loss, _mesh(8), width=3, learning_rate=0.2, reduction="ring")
  s8, _ = _run_scan(ring, pipeline.init_pipe_state(params, 3), stream)
  assert_trees_allclose(s8.params, ref, rtol=1e-5, atol=1e-5)


def _quadratic_run(width, eta_lambda, steps=300):
  lam = 2.0
  loss = lambda w, b: 0.5 * lam * jnp.mean(b["a"]) * jnp.sum(w["w"] ** 2)
  step = pipeline.make_train_step(loss, _mesh(4), width=width, learning_rate=eta_lambda / lam)
  state = pipeline.init_pipe_state({"w": jnp.ones(3)}, width)
  stream = {"a": jnp.ones((steps, 8))}
  state, _ = _run_scan(step, state, stream)
  return float(jnp.max(jnp.abs(state.params["w"])))


def test_stability_on_quadratic():
  assert _quadratic_run(2, 0.9) < 1e-4  # z^2 - z + 0.9: |z| = sqrt(0.9) < 1
  assert _quadratic_run(2, 1.1) > 1e4   # |z| = sqrt(1.1) > 1
  assert _quadratic_run(1, 1.9) < 1e-4  # |1 - 1.9| = 0.9
  assert _quadratic_run(2, 1.9, steps=100) > 1e4  # the same step size diverges once the gradient is stale


def test_compressed_training_tracks_uncompressed():
  params, loss, data = _problem()
  stream = _stream(data, 10)
  exact = pipeline.make_train_step(loss, _mesh(2), width=2, learning_rate=0.2)
  trunc = pipeline.make_train_step(loss, _mesh(2), width=2, learning_rate=0.2,
                                   compressor="truncate16")
  a, _ = _run_scan(exact, pipeline.init_pipe_state(params, 2), stream)
  b, _ = _run_scan(trunc, pipeline.init_pipe_state(params, 2), stream)
  diff = max(float(jnp.max(jnp.abs(u - v))) for u, v in zip(jax.tree.leaves(a.params),
                                                             jax.tree.leaves(b.params)))
  assert 0 < diff < 1e-2


def test_no_retracing():
  params, loss, data = _problem()
  counted = TraceCounter(loss)
  mesh = _mesh(4)
  step = jax.jit(pipeline.make_train_step(counted, mesh, width=2, learning_rate=0.1))
  # place the inputs as the step's outputs are placed, so the jit cache key never changes
  state = shard(pipeline.init_pipe_state(params, 2), mesh, P())
  stream = _stream(data, 3)
  for t in range(3):
    batch = shard({"x": stream["x"][t], "y": stream["y"][t]}, mesh, P("data"))
    state, _ = step(state, batch)
  assert counted.count == 1


@pytest.mark.parametrize("width", [1, 2])
def test_overlapped_runner_follows_the_same_recursion(width):
  params, loss, data = _problem()
  stream = _stream(data, 12)
  mesh = _mesh(4)
  compute, reduce = pipeline.make_overlap_fns(loss, mesh)
  batches = [{"x": stream["x"][t], "y": stream["y"][t]} for t in range(12)]
  res = pipeline.run_overlapped(compute, reduce, params, batches, width=width, learning_rate=0.2)
  ref = _serial_delayed(loss, params, stream, width, 0.2)
  assert_trees_allclose(res.params, ref, rtol=1e-5, atol=1e-5)
  assert res.losses.shape == (12,) and res.iteration_seconds.shape == (12,)


@pytest.mark.parametrize("width", [1, 2])
def test_overlapped_runner_compiles_before_start(width):
  """``before_start`` runs after every compilation (no compile event follows it), before
  iteration 0, and the run equals one without it."""
  params, loss, data = _problem()
  stream = _stream(data, 6)
  mesh = _mesh(4)
  compute, reduce = pipeline.make_overlap_fns(loss, mesh)
  batches = [{"x": stream["x"][t], "y": stream["y"][t]} for t in range(6)]
  events, compiles = [], []

  def listener(name, secs, **kw):
    del secs, kw
    if "compile" in name and events:  # only compiles after before_start was called
      compiles.append(name)

  jax.monitoring.register_event_duration_secs_listener(listener)
  try:
    res = pipeline.run_overlapped(compute, reduce, params, iter(batches), width=width,
                                  learning_rate=0.2, before_start=lambda: events.append("start"),
                                  callback=lambda t, w: events.append(t))
  finally:
    jax.monitoring.unregister_event_duration_listener(listener)
  assert events == ["start"] + list(range(6))
  assert compiles == []
  ref = pipeline.run_overlapped(compute, reduce, params, batches, width=width, learning_rate=0.2)
  assert_trees_allclose(res.params, ref.params, rtol=1e-6, atol=1e-6)
  called = []
  pipeline.run_overlapped(compute, reduce, params, [], before_start=lambda: called.append(1))
  assert called == [1]
  with pytest.raises(TypeError, match="before_start"):
    pipeline.run_overlapped(compute, reduce, params, batches, before_start=1)


def test_bad_inputs():
  params, loss, data = _problem()
  mesh = _mesh(4)
  with pytest.raises(ValueError, match="width"):
    pipeline.make_train_step(loss, mesh, width=0)
  with pytest.raises(ValueError, match="width"):
    pipeline.init_pipe_state(params, 0)
  with pytest.raises(ValueError, match="compressor"):
    pipeline.make_train_step(loss, mesh, compressor="topk")
  with pytest.raises(ValueError, match="reduction='ring'"):
    pipeline.make_train_step(loss, mesh, compressor="quantize8", reduction="pmean")
  with pytest.raises(ValueError, match="learning_rate"):
    pipeline.make_train_step(loss, mesh, learning_rate=-1.0)
  step = pipeline.make_train_step(loss, mesh, width=2)
  with pytest.raises(ValueError, match="not divisible by the device count 4"):
    step(pipeline.init_pipe_state(params, 2), {"x": data["x"][:10], "y": data["y"][:10]})
  with pytest.raises(ValueError, match="pending"):
    step(pipeline.init_pipe_state(params, 3), {"x": data["x"][:8], "y": data["y"][:8]})
  with pytest.raises(ValueError, match="compressor"):
    compression.get_compressor("int4")
  with pytest.raises(ValueError, match="method"):
    allreduce.make_allreduce(mesh, method="tree")
  with pytest.raises(TypeError, match="floating"):
    jax.jit(allreduce.make_allreduce(mesh))(jnp.ones((4, 3), jnp.int32))


def test_cnn_and_mlp_models():
  x = jnp.asarray(np.random.default_rng(0).uniform(size=(4, 8, 8, 1)), jnp.float32)
  y = jnp.array([0, 1, 2, 9], jnp.int32)
  for name in ("mlp", "cnn"):
    params, apply_fn = models.init_model(jax.random.key(0), name, (8, 8, 1), 10, hidden=(16,),
                                         channels=(4, 8))
    loss = lambda w: models.cross_entropy_loss(apply_fn, w, {"x": x, "y": y})
    g = jax.jit(jax.grad(loss))(params)
    assert jax.tree.structure(g) == jax.tree.structure(params)
    # hand-derived: d loss / d (last bias) = mean(softmax(logits) - onehot(y))
    last = "dense1" if name == "mlp" else "fc1"
    probs = jax.nn.softmax(jax.jit(apply_fn)(params, x))
    expected = np.mean(np.asarray(probs) - np.eye(10)[np.asarray(y)], axis=0)
    np.testing.assert_allclose(g[last]["b"], expected, rtol=1e-5, atol=1e-6)
    # hand check: zero weights give uniform logits, so the loss is log(10)
    zeros = jax.tree.map(jnp.zeros_like, params)
    np.testing.assert_allclose(float(jax.jit(loss)(zeros)), np.log(10.0), rtol=1e-6)
    assert jax.jit(apply_fn)(params, x).shape == (4, 10)
  with pytest.raises(ValueError, match="model"):
    models.init_model(jax.random.key(0), "resnet", (8, 8, 1), 10)
  with pytest.raises(ValueError, match="too small"):
    models.init_cnn(jax.random.key(0), (2, 2, 1), (4, 4), 10)

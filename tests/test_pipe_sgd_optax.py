"""Pipe-SGD with optax optimizers and warm-up, float64 rings, non-finite int8 codes, the worker CLI."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxpapers._src.testing import assert_trees_allclose
from jaxpapers.pipe_sgd import allreduce, compression, distributed, models, pipeline


def _mesh(p):
  if jax.device_count() < p:
    pytest.skip(f"needs {p} devices")
  return allreduce.default_mesh(p)


def _problem(steps, batch=30, d=6, k=3, seed=0):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(steps, batch, d)).astype(np.float32)
  y = rng.integers(0, k, size=(steps, batch)).astype(np.int32)
  params = models.init_mlp(jax.random.key(seed), d, (8,), k)
  loss = lambda w, b: models.cross_entropy_loss(models.mlp_apply, w, b)
  return params, loss, {"x": x, "y": y}


def _serial_stale(loss, params, stream, width, opt, warmup=0):
  """One device, whole batch: u(g_t) for t < W, then u(g_{t-K+1}) once t - K + 1 >= W."""
  grad = jax.jit(jax.grad(loss))
  state, w, hist = opt.init(params), params, []
  for t in range(stream["y"].shape[0]):
    hist.append(grad(w, {"x": stream["x"][t], "y": stream["y"][t]}))
    s = t if t < warmup else t - width + 1
    if t >= warmup and s < warmup:
      continue  # the pipeline refills: nothing arrives, neither w nor the optimizer moves
    updates, state = opt.update(hist[s], state, w)
    w = optax.apply_updates(w, updates)
  return w, state


def _schedule_momentum():
  schedule = optax.linear_schedule(0.3, 0.05, transition_steps=6)
  return optax.sgd(schedule, momentum=0.9)


@pytest.mark.parametrize("p,warmup", [(3, 0), (5, 0), (5, 2)])
def test_k2_schedule_momentum_equals_serial_stale_recursion(p, warmup):
  steps = 8
  params, loss, stream = _problem(steps)
  opt = _schedule_momentum()
  step = pipeline.make_train_step(loss, _mesh(p), width=2, optimizer=opt, warmup_steps=warmup)
  state = pipeline.init_pipe_state(params, 2, opt)
  state, _ = jax.jit(lambda s, b: jax.lax.scan(step, s, b))(state, stream)
  ref, ref_state = _serial_stale(loss, params, stream, 2, opt, warmup)
  assert_trees_allclose(state.params, ref, rtol=1e-5, atol=1e-5)
  assert_trees_allclose(state.opt_state, ref_state, rtol=1e-5, atol=1e-5)
  # The schedule counted the applied updates only: all but the K - 1 = 1 refill iteration.
  counts = [int(c) for c in jax.tree.leaves(state.opt_state) if jnp.issubdtype(c.dtype, jnp.integer)]
  assert counts == [steps - 1]
  # Not a vacuous comparison: a different staleness gives different weights.
  other, _ = _serial_stale(loss, params, stream, 1, opt, 0)
  assert not np.allclose(jax.tree.leaves(other)[0], jax.tree.leaves(ref)[0], atol=1e-4)


def test_schedule_as_learning_rate_and_adam_in_the_overlapped_runner():
  steps, p = 6, 3
  params, loss, stream = _problem(steps)
  schedule = optax.exponential_decay(0.5, transition_steps=1, decay_rate=0.8)
  step = pipeline.make_train_step(loss, _mesh(p), width=2, learning_rate=schedule)
  state, _ = jax.jit(lambda s, b: jax.lax.scan(step, s, b))(
      pipeline.init_pipe_state(params, 2, optax.sgd(schedule)), stream)
  ref, _ = _serial_stale(loss, params, stream, 2, optax.sgd(schedule))
  assert_trees_allclose(state.params, ref, rtol=1e-5, atol=1e-5)
  # The two-thread runner follows the same recursion with Adam and one warm-up step.
  adam = optax.adam(0.05, b1=0.8)
  compute, reduce = pipeline.make_overlap_fns(loss, _mesh(p))
  batches = [{"x": stream["x"][t], "y": stream["y"][t]} for t in range(steps)]
  res = pipeline.run_overlapped(compute, reduce, params, batches, width=2, optimizer=adam,
                                warmup_steps=1)
  ref, ref_state = _serial_stale(loss, params, stream, 2, adam, warmup=1)
  assert_trees_allclose(res.params, ref, rtol=1e-5, atol=1e-5)
  assert_trees_allclose(res.opt_state, ref_state, rtol=1e-5, atol=1e-5)


def test_optimizer_arguments_are_validated():
  params, loss, stream = _problem(2)
  mesh = _mesh(3)
  with pytest.raises(ValueError, match="not both"):
    pipeline.make_train_step(loss, mesh, learning_rate=0.1, optimizer=optax.sgd(0.1))
  with pytest.raises(TypeError, match="optimizer"):
    pipeline.make_train_step(loss, mesh, optimizer="adam")
  with pytest.raises(ValueError, match="warmup_steps"):
    pipeline.make_train_step(loss, mesh, warmup_steps=-1)
  with pytest.raises(ValueError, match="learning_rate"):
    pipeline.run_overlapped(lambda w, b: (w, 0.0), lambda g: g, params, [], learning_rate=np.nan)
  step = pipeline.make_train_step(loss, mesh, optimizer=optax.adam(1e-3))
  batch = {"x": stream["x"][0], "y": stream["y"][0]}
  with pytest.raises(ValueError, match="opt_state"):
    step(pipeline.init_pipe_state(params, 2), batch)  # an SGD state for an Adam step


def test_ring_keeps_float64_and_float32():
  p = 3
  mesh = _mesh(p)
  with jax.enable_x64(True):
    # Offsets of 1e-12 vanish in float32 (eps 1.2e-7) but not in float64.
    x = 1.0 + 1e-12 * jnp.arange(p * 7, dtype=jnp.float64).reshape(p, 7)
    out = jax.jit(allreduce.make_allreduce(mesh, method="ring"))(x)
    assert out.dtype == jnp.float64
    exact = np.asarray(x).sum(0)
    np.testing.assert_allclose(np.asarray(out[0]) - p, exact - p, rtol=1e-9, atol=1e-15)
    assert np.ptp(np.asarray(out[0])) > 1e-11  # the offsets survived
    comp = jax.jit(allreduce.make_allreduce(mesh, compressor="truncate16"))(x)
    assert comp.dtype == jnp.float64
  out32 = jax.jit(allreduce.make_allreduce(mesh, method="ring"))(jnp.ones((p, 5), jnp.float32))
  assert out32.dtype == jnp.float32
  np.testing.assert_array_equal(np.asarray(out32), np.full((p, 5), float(p)))


def test_quantize8_clips_inf_and_keeps_nan_local():
  x = jnp.array([1.0, -2.0, jnp.inf, 3.0, -jnp.inf, jnp.nan, 0.5], jnp.float32)
  codes, scale = compression.quantize8_encode(x)
  np.testing.assert_allclose(float(scale), 3.0 / 127, rtol=1e-6)  # the finite maximum
  d = np.asarray(compression.quantize8_decode((codes, scale)))
  finite = np.isfinite(np.asarray(x))
  assert np.all(np.abs(d[finite] - np.asarray(x)[finite]) <= float(scale) / 2 * (1 + 1e-5))
  np.testing.assert_allclose(d[[2, 4]], [3.0, -3.0], rtol=1e-6)  # ±inf saturate at ±max finite
  assert np.isnan(d[5]) and np.sum(np.isnan(d)) == 1
  # Inside the compressed ring one rank's inf leaves the other elements' sums intact.
  p = 4
  mesh = _mesh(p)
  rows = jax.random.normal(jax.random.key(0), (p, 16))
  out = np.asarray(jax.jit(allreduce.make_allreduce(mesh, compressor="quantize8"))(
      rows.at[1, 3].set(jnp.inf)))
  exact = np.asarray(rows, np.float64).sum(0)
  keep = np.arange(16) != 3
  assert np.all(np.isfinite(out[0]))
  step = np.abs(np.asarray(rows)).max(axis=1).sum() / 127
  assert np.all(np.abs(out[0][keep] - exact[keep]) <= p * step / 2 * 1.01)
  # truncate16 keeps inf and NaN (even a NaN whose payload is in the low 16 bits).
  odd_nan = jax.lax.bitcast_convert_type(jnp.uint32(0x7F800001), jnp.float32)
  t = np.asarray(compression.roundtrip(jnp.stack([jnp.float32(jnp.inf), odd_nan]), "truncate16"))
  assert t[0] == np.inf and np.isnan(t[1])


def test_coordinator_binds_to_its_own_address_and_cli_takes_batch_size(tmp_path):
  assert distributed.coordinator_bind_address("10.0.0.5:1234") == "10.0.0.5:1234"
  assert distributed.coordinator_bind_address("h:1", "0.0.0.0:1") == "0.0.0.0:1"
  for bad in ("10.0.0.5", ":1234", "h:0", "h:port"):
    with pytest.raises(ValueError, match="coordinator"):
      distributed.coordinator_bind_address(bad)
  out = tmp_path / "w"
  distributed.launch_local(1, ["--mode=train", "--steps=3", "--batch_size=8", f"--out={out}"],
                           timeout=120)
  got = np.load(out / "params.npz")
  ref = distributed.run_tiny(allreduce.default_mesh(1), steps=3, batch_size=8)
  ref16 = distributed.run_tiny(allreduce.default_mesh(1), steps=3, batch_size=16)
  np.testing.assert_allclose(got["dense0/w"], ref["params"]["dense0"]["w"], rtol=1e-5, atol=1e-6)
  assert not np.allclose(got["dense0/w"], ref16["params"]["dense0"]["w"])  # the flag mattered
  with pytest.raises(ValueError, match="batch_size"):
    distributed.run_tiny(allreduce.default_mesh(2), steps=1, batch_size=7)
  with pytest.raises(ValueError, match="batch_size"):
    distributed.run_tiny(allreduce.default_mesh(1), steps=1, batch_size=65)

"""Tests for the shared private helpers in jaxpapers/_src."""

import json
import pathlib
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers._src import (
  checkpoint,
  data,
  loop,
  mesh,
  metrics,
  prng,
  registry,
  testing,
  validation,
)


class TrainState(NamedTuple):
  params: jax.Array
  velocity: jax.Array
  key: jax.Array
  step: jax.Array


def _sgd_step(state: TrainState, step):
  """A noisy heavy-ball step on f(w) = ½‖w − 1‖² whose noise depends on the key and step."""
  key = prng.step_key(state.key, step)
  noise = 0.01 * jax.random.normal(key, state.params.shape)
  grad = state.params - 1.0 + noise
  velocity = 0.9 * state.velocity + grad
  params = state.params - 0.1 * velocity
  loss = 0.5 * jnp.sum((params - 1.0) ** 2)
  return TrainState(params, velocity, state.key, state.step + 1), {"loss": loss}


def _init_state():
  return TrainState(jnp.zeros(5), jnp.zeros(5), jax.random.key(3), jnp.int32(0))


# ---------------------------------------------------------------- prng


def test_as_key_from_int_and_keys():
  k = prng.as_key(7)
  assert jnp.issubdtype(k.dtype, jax.dtypes.prng_key)
  np.testing.assert_array_equal(jax.random.key_data(k), jax.random.key_data(jax.random.key(7)))
  assert prng.as_key(k) is k
  raw = jax.random.PRNGKey(7)
  np.testing.assert_array_equal(jax.random.key_data(prng.as_key(raw)), jax.random.key_data(k))
  with pytest.raises(TypeError, match="seed_or_key"):
    prng.as_key("seven")


def test_step_and_host_keys_differ_and_are_deterministic():
  k = jax.random.key(0)
  a, b = prng.step_key(k, 1), prng.step_key(k, 2)
  assert not np.array_equal(jax.random.key_data(a), jax.random.key_data(b))
  np.testing.assert_array_equal(jax.random.key_data(prng.step_key(k, 1)), jax.random.key_data(a))
  h0, h1 = prng.host_key(k, 0), prng.host_key(k, 1)
  assert not np.array_equal(jax.random.key_data(h0), jax.random.key_data(h1))
  np.testing.assert_array_equal(jax.random.key_data(prng.host_key(k)), jax.random.key_data(h0))
  assert prng.split_seeds(k, 4).shape == (4,)


# ---------------------------------------------------------------- loop


def test_run_chunked_matches_python_loop_and_chunking_is_invisible():
  state = _init_state()
  expected = state
  losses = []
  for s in range(23):
    expected, m = _sgd_step(expected, jnp.int32(s))
    losses.append(float(m["loss"]))
  for chunk in (1, 5, 23, 100):
    for scan in (True, False):  # one lax.scan per chunk, or a Python loop of one jitted step
      final, hist = loop.run_chunked(_sgd_step, state, 23, chunk_size=chunk, progress=False,
                                     scan=scan)
      testing.assert_trees_allclose(final, expected, rtol=1e-6, atol=1e-7)
      np.testing.assert_allclose(hist["loss"], losses, rtol=1e-5)
      assert hist["loss"].shape == (23,)


def test_run_chunked_calls_back_after_each_chunk_and_validates():
  seen = []
  loop.run_chunked(_sgd_step, _init_state(), 10, chunk_size=4, progress=False,
                   on_chunk=lambda st, step, m: seen.append((step, float(m["loss"]), int(st.step))))
  assert [s for s, _, _ in seen] == [4, 8, 10]
  assert [t for _, _, t in seen] == [4, 8, 10]
  with pytest.raises(ValueError, match="start_step"):
    loop.run_chunked(_sgd_step, _init_state(), 5, start_step=6)
  with pytest.raises(ValueError, match="chunk_size"):
    loop.run_chunked(_sgd_step, _init_state(), 5, chunk_size=0)


# ---------------------------------------------------------------- metrics


def test_metrics_file_is_valid_json_lines(tmp_path):
  path = tmp_path / "sub" / "metrics.jsonl"
  with metrics.MetricsWriter(path, log=False) as w:
    w.write(1, loss=jnp.float32(0.5), acc=np.float64(0.25), hist=jnp.arange(3))
    w.write(2, loss=float("nan"), name="eval")
  with metrics.MetricsWriter(path, log=False) as w:  # a resumed run appends
    w.write(3, loss=1.0)
  lines = path.read_text().splitlines()
  assert len(lines) == 3
  recs = [json.loads(line) for line in lines]
  assert recs[0] == {"step": 1, "loss": 0.5, "acc": 0.25, "hist": [0, 1, 2]}
  assert recs[1]["loss"] == "nan" and recs[1]["name"] == "eval"
  assert metrics.read_metrics(path) == recs


# ---------------------------------------------------------------- checkpoint


def test_resume_from_checkpoint_equals_uninterrupted_run(tmp_path):
  total, chunk = 30, 7
  uninterrupted, hist_full = loop.run_chunked(_sgd_step, _init_state(), total, chunk_size=chunk,
                                              progress=False)

  ckpt = checkpoint.Checkpointer(tmp_path / "ckpt")

  class Killed(Exception):
    pass

  def save_then_die(state, step, _):
    ckpt.save(step, state)
    if step >= 14:
      raise Killed  # the process is "killed" after the second chunk's checkpoint

  with pytest.raises(Killed):
    loop.run_chunked(_sgd_step, _init_state(), total, chunk_size=chunk, progress=False,
                     on_chunk=save_then_die)
  ckpt.close()

  ckpt2 = checkpoint.Checkpointer(tmp_path / "ckpt")
  restored, step = ckpt2.restore(_init_state())
  assert step == 14 and isinstance(restored, TrainState)
  assert jnp.issubdtype(restored.key.dtype, jax.dtypes.prng_key)
  assert restored.step.dtype == jnp.int32
  final, hist = loop.run_chunked(_sgd_step, restored, total, chunk_size=chunk, start_step=step,
                                 progress=False)
  testing.assert_trees_equal(final, uninterrupted)
  np.testing.assert_array_equal(hist["loss"], hist_full["loss"][14:])
  ckpt2.close()


def test_restore_without_checkpoint_is_none(tmp_path):
  with checkpoint.Checkpointer(tmp_path / "empty") as c:
    assert c.latest_step() is None
    assert c.restore(_init_state()) is None


# ---------------------------------------------------------------- mesh


def test_mesh_shard_map_psum_matches_single_device():
  assert jax.device_count() == 8
  m = mesh.make_mesh("data")
  assert m.shape == {"data": 8}
  x = jnp.arange(32.0).reshape(8, 4)

  def local_sum(block):
    return jax.lax.psum(block.sum(0), "data")

  f = jax.jit(mesh.shard_map(local_sum, m, in_specs=mesh.P("data"), out_specs=mesh.P()))
  np.testing.assert_allclose(f(x), x.sum(0))
  xs = mesh.shard(x, m, mesh.P("data"))
  assert len(xs.sharding.device_set) == 8
  np.testing.assert_allclose(f(xs), x.sum(0))


def test_mesh_two_axes_and_errors():
  m = mesh.make_mesh(("a", "b"), (2, 4))
  assert m.shape == {"a": 2, "b": 4}
  with pytest.raises(ValueError, match="needs 16 devices"):
    mesh.make_mesh("data", (16,))
  with pytest.raises(ValueError, match="shape is required"):
    mesh.make_mesh(("a", "b"))


def test_pad_to_multiple():
  x = jnp.ones((5, 2))
  y, n = mesh.pad_to_multiple(x, 4)
  assert y.shape == (8, 2) and n == 5 and float(y[5:].sum()) == 0.0
  z, n = mesh.pad_to_multiple(x, 5)
  assert z.shape == (5, 2) and n == 5


# ---------------------------------------------------------------- data


def test_find_dataset_explicit_and_env(tmp_path, monkeypatch):
  folder = tmp_path / "toyset"
  folder.mkdir()
  (folder / "a.txt").write_text("1")
  assert data.find_dataset("toyset", ["a.txt"], data_dir=tmp_path) == folder
  assert data.find_dataset("toyset", ["a.txt"], data_dir=folder) == folder
  monkeypatch.setenv(data.ENV_VAR, str(tmp_path))
  assert data.find_dataset("toyset", ["a.txt"]) == folder
  assert data.has_dataset("toyset", ["a.txt"])


def test_missing_dataset_error_names_folder_and_files(tmp_path, monkeypatch):
  monkeypatch.setenv(data.ENV_VAR, str(tmp_path))
  with pytest.raises(data.DatasetNotFoundError) as e:
    data.find_dataset("movielens-100k", ["u.data", "u1.base"], data_dir=tmp_path)
  msg = str(e.value)
  assert "movielens-100k" in msg and "u.data" in msg and "u1.base" in msg and str(tmp_path) in msg
  assert isinstance(e.value, FileNotFoundError)
  (tmp_path / "movielens-100k").mkdir()
  (tmp_path / "movielens-100k" / "u.data").write_text("")
  with pytest.raises(data.DatasetNotFoundError, match="u1.base"):
    data.find_dataset("movielens-100k", ["u.data", "u1.base"], data_dir=tmp_path)
  assert not data.has_dataset("nope-" + pathlib.Path(tmp_path).name)


# ---------------------------------------------------------------- validation


def test_validation_errors_name_the_argument():
  validation.check_array(jnp.ones((2, 3)), "X", ndim=2, dtype_kind="f", shape=(None, 3), finite=True)
  with pytest.raises(ValueError, match="X must have rank 2"):
    validation.check_array(jnp.ones(3), "X", ndim=2)
  with pytest.raises(ValueError, match=r"y must have shape \(\?, 4\)"):
    validation.check_array(jnp.ones((2, 3)), "y", shape=(None, 4))
  with pytest.raises(TypeError, match="labels must have dtype kind"):
    validation.check_array(jnp.ones(3), "labels", dtype_kind="iu")
  with pytest.raises(TypeError, match="X must be an array"):
    validation.check_array([1, 2], "X")
  with pytest.raises(ValueError, match="X contains NaN"):
    validation.check_array(jnp.array([1.0, jnp.nan]), "X", finite=True)
  with pytest.raises(ValueError, match="rank must be > 0"):
    validation.check_positive(0, "rank")
  validation.check_positive(0, "eps", allow_zero=True)
  with pytest.raises(ValueError, match="loss must be one of"):
    validation.check_in("huber", "loss", ["l1", "lsp"])

  @jax.jit
  def f(x):  # finite checks are skipped on tracers rather than failing
    return validation.check_array(x, "x", finite=True) * 2

  np.testing.assert_allclose(f(jnp.array([jnp.inf])), [jnp.inf])


# ---------------------------------------------------------------- testing helpers


def test_testing_helpers_detect_differences():
  fn = lambda x: jnp.sin(x) * 2
  testing.assert_jit_matches_eager(fn, jnp.arange(3.0))
  testing.assert_vmap_matches_loop(lambda x, y: x @ y, (jnp.ones((4, 3)), jnp.ones((4, 3))))
  with pytest.raises(AssertionError):
    testing.assert_trees_allclose({"a": jnp.ones(2)}, {"a": jnp.zeros(2)})
  with pytest.raises(AssertionError, match="structures differ"):
    testing.assert_trees_allclose({"a": 1.0}, {"b": 1.0})
  counted = testing.TraceCounter(lambda x: x + 1)
  g = jax.jit(counted)
  g(jnp.ones(2))
  g(jnp.zeros(2))
  assert counted.count == 1
  g(jnp.zeros(3))
  assert counted.count == 2
  assert testing.chi_square_pvalue([100, 100, 100], [1, 1, 1]) > 0.99
  assert testing.chi_square_pvalue([300, 0, 0], [1, 1, 1]) < 1e-10


# ---------------------------------------------------------------- registry


def _dummy(name="r1", paper="bbmm"):
  return registry.Reproduction(
      paper=paper, name=name, claim="c", paper_value=1.0,
      run=lambda scale, seeds, wd: {"x": 1.0}, check=lambda m, s: m["x"] > 0,
      summary=lambda m: f"{m['x']}")


def test_registry_validates():
  with pytest.raises(ValueError, match="paper must be one of"):
    registry.register(_dummy(paper="nope"))
  bad = registry.Reproduction(paper="bbmm", name="b", claim="c", paper_value=None,
                              run=lambda *a: {}, check=lambda *a: True, summary=str,
                              seeds={"smoke": (0,)})
  with pytest.raises(ValueError, match="no seeds for scale"):
    registry.register(bad)
  with pytest.raises(ValueError, match="paper must be one of"):
    registry.reproductions("nope")
  assert set(registry.available_papers()) <= set(registry.PAPERS)


def test_run_chunked_passes_extra_args_as_traced_arguments():
  def step(state, i, scale):
    return state + scale * i, {"v": state}

  final, hist = loop.run_chunked(step, jnp.float32(0), 5, chunk_size=2, progress=False,
                                 args=(jnp.float32(2.0),))
  assert float(final) == 2.0 * (0 + 1 + 2 + 3 + 4)
  np.testing.assert_allclose(hist["v"], [0, 0, 2, 6, 12])

"""BBMM data loaders (on files the test writes), training, config and the experiment driver."""

import json
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import io

from jaxpapers._src import data as shared_data
from jaxpapers._src import metrics
from jaxpapers.bbmm import config, data, kernels, likelihood, operators, train


def test_load_mat_wilson_and_xy_layouts(tmp_path):
  rng = np.random.default_rng(0)
  arr = rng.normal(size=(7, 4))
  io.savemat(tmp_path / "w.mat", {"data": arr})
  x, y = data.load_mat(tmp_path / "w.mat")
  np.testing.assert_array_equal(x, arr[:, :3])
  np.testing.assert_array_equal(y, arr[:, 3])
  xs = rng.integers(0, 255, size=(5, 2)).astype(np.uint8)  # pol_delve stores X as uint8
  io.savemat(tmp_path / "xy.mat", {"X": xs, "Y": np.arange(5.0)[:, None]})
  x, y = data.load_mat(tmp_path / "xy.mat")
  assert x.dtype == np.float64 and x.shape == (5, 2) and y.shape == (5,)
  np.testing.assert_array_equal(x, xs.astype(np.float64))
  io.savemat(tmp_path / "bad.mat", {"A": arr})
  with pytest.raises(ValueError, match="expected a 'data' matrix"):
    data.load_mat(tmp_path / "bad.mat")
  io.savemat(tmp_path / "mismatch.mat", {"X": arr, "Y": np.ones((3, 1))})
  with pytest.raises(ValueError, match="disagree"):
    data.load_mat(tmp_path / "mismatch.mat")
  arr[2, 1] = np.nan
  io.savemat(tmp_path / "nan.mat", {"data": arr})
  with pytest.raises(ValueError, match="NaN"):
    data.load_mat(tmp_path / "nan.mat")


def test_load_csv_with_and_without_header(tmp_path):
  (tmp_path / "h.csv").write_text("a,b,target\n1,2,3\n4,5,6\n")
  x, y = data.load_csv(tmp_path / "h.csv")
  np.testing.assert_array_equal(x, [[1, 2], [4, 5]])
  np.testing.assert_array_equal(y, [3, 6])
  (tmp_path / "n.csv").write_text("1;2;3\n4;5;6\n")
  x, y = data.load_csv(tmp_path / "n.csv", target_column=0, delimiter=";")
  np.testing.assert_array_equal(x, [[2, 3], [5, 6]])
  np.testing.assert_array_equal(y, [1, 4])
  (tmp_path / "nan.csv").write_text("1,2,nan\n")
  with pytest.raises(ValueError, match="NaN"):
    data.load_csv(tmp_path / "nan.csv")


def test_load_uci_from_folder_and_missing(tmp_path):
  folder = tmp_path / "uci-gp-mat"
  folder.mkdir()
  io.savemat(folder / "yacht_wilson.mat", {"data": np.arange(21.0).reshape(3, 7)})
  x, y = data.load_uci("yacht", tmp_path)
  assert x.shape == (3, 6) and y.tolist() == [6.0, 13.0, 20.0]
  with pytest.raises(shared_data.DatasetNotFoundError):
    data.load_uci("kin40k", tmp_path)
  with pytest.raises(ValueError, match="name must be one of"):
    data.load_uci("boston", tmp_path)


@pytest.mark.skipif(not shared_data.has_dataset("uci-gp-mat", ["yacht_wilson.mat"]),
                    reason="shared uci-gp-mat data not present")
def test_real_yacht_and_elevators_shapes():
  x, y = data.load_uci("yacht")
  assert x.shape == (308, 6) and y.shape == (308,)
  x, y = data.load_uci("elevators")
  assert x.shape == (16599, 17) and y.shape == (16599,)


def test_split_and_normalize():
  x = np.arange(200.0).reshape(100, 2)
  y = np.arange(100.0)
  s = data.split(jax.random.key(0), x, y)
  assert (len(s.y_train), len(s.y_val), len(s.y_test)) == (64, 16, 20)
  assert len(set(s.y_train) | set(s.y_val) | set(s.y_test)) == 100
  ns, stats = data.normalize(s)
  np.testing.assert_allclose(ns.x_train.mean(0), 0, atol=1e-12)
  np.testing.assert_allclose(ns.y_train.std(), 1, rtol=1e-12)
  np.testing.assert_allclose(ns.y_test * stats["y_std"] + stats["y_mean"], s.y_test)
  assert len(data.split(jax.random.key(0), x, y, max_train=10).y_train) == 10
  with pytest.raises(ValueError, match="fractions"):
    data.split(jax.random.key(0), x, y, (0.5, 0.5, 0.5))


def test_synthetic_is_deterministic_and_smooth():
  x, y = data.synthetic(jax.random.key(1), 50, 3, noise=0.0)
  x2, y2 = data.synthetic(jax.random.key(1), 50, 3, noise=0.0)
  np.testing.assert_array_equal(y, y2)
  assert x.shape == (50, 3) and float(x.min()) >= 0 and float(x.max()) <= 1
  with pytest.raises(ValueError, match="lengthscale"):
    data.synthetic(jax.random.key(1), 5, lengthscale=0.0)


def test_unconstrained_round_trip():
  p = operators.GPParams(kernels.init_params(("sum", "rbf", "matern32"), 2, 0.7, 2.0),
                         jnp.asarray(0.3), jnp.asarray(-1.0))
  back = train.from_unconstrained(train.to_unconstrained(p))
  for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(p)):
    np.testing.assert_allclose(a, b, rtol=1e-5)


def test_fit_raises_likelihood_and_bbmm_matches_cholesky_training():
  x, y = data.synthetic(jax.random.key(0), 120, 1, lengthscale=0.2, noise=0.01)
  op = operators.ExactOperator("rbf", materialize=True)
  p0 = operators.GPParams(kernels.init_params("rbf", 1, 0.7, 0.7), jnp.asarray(0.7),
                          jnp.asarray(0.0))
  settings = likelihood.Settings(num_probes=8, num_lanczos=30, precond_rank=5)
  out = {}
  for method in ("cholesky", "bbmm"):
    p, hist = train.fit(jax.random.key(1), op, p0, x, y, num_steps=30, settings=settings,
                        method=method, learning_rate=0.1, chunk_size=30)
    out[method] = (p, hist)
    assert hist["loss"].shape == (30,)
    assert hist["loss"][-1] < hist["loss"][0] - 0.2
  p_c, p_b = out["cholesky"][0], out["bbmm"][0]
  assert abs(float(p_c.noise) - float(p_b.noise)) / float(p_c.noise) < 0.2
  assert bool(np.all(out["bbmm"][1]["converged"]))


def test_config_scales_and_bad_scale():
  for scale in ("smoke", "cpu", "full"):
    c = config.get_config(scale)
    assert c.scale == scale and c.num_steps > 0
    likelihood.Settings(**dict(c.settings))
  with pytest.raises(ValueError, match="scale"):
    config.get_config("tiny")


def test_train_and_evaluate_smoke_writes_results(tmp_path):
  c = config.get_config("smoke")
  c.models = ("sgpr", "ski")
  c.num_steps = 2
  c.n_synthetic = 150
  out = train.train_and_evaluate(c, str(tmp_path))
  # Smooth 2-D data (noise σ² = 0.01 on a unit-variance function): both approximations fit it
  # far better than the prior (RMSE 1 on z-scored targets) after two steps.
  for model in ("sgpr", "ski"):
    assert np.isfinite(out[model]["nll"]) and out[model]["rmse"] < 0.4, out[model]
    assert out[model]["all_converged"]
  lines = metrics.read_metrics(os.path.join(tmp_path, "metrics.jsonl"))
  assert {line["model"] for line in lines} == {"sgpr", "ski"}
  with open(os.path.join(tmp_path, "results.json")) as f:
    assert json.load(f)["n_train"] == out["n_train"]


def test_scale_binary_trains_matrix_free_with_tiny_arguments(tmp_path):
  repo = pathlib.Path(__file__).resolve().parents[1]
  env = dict(os.environ, PYTHONPATH=str(repo) + os.pathsep + os.environ.get("PYTHONPATH", ""))
  env.pop("XLA_FLAGS", None)
  proc = subprocess.run(
      [sys.executable, str(repo / "experiments" / "bbmm" / "scale.py"), "--sizes=300",
       "--steps=2", "--precond_rank=20", "--block_size=128", "--num_probes=4"],
      cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("n=")]
  assert len(lines) == 3 and "converged True" in lines[0] and "2 Adam steps" in lines[-1]

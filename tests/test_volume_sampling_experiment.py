"""The experiment driver, its config and the registered reproductions (tiny, fast settings)."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers._src import registry
from jaxpapers._src.metrics import read_metrics
from jaxpapers.volume_sampling import config as config_lib
from jaxpapers.volume_sampling import data, exact, train


def _write_housing(folder):
  rng = np.random.default_rng(0)
  x = rng.uniform(-1, 1, (506, 13))
  y = x @ rng.standard_normal(13) + rng.standard_normal(506)
  lines = [f"{t:.6f} " + " ".join(f"{j + 1}:{v:.6f}" for j, v in enumerate(r)) for t, r in zip(y, x)]
  (folder / "housing_scale").write_text("\n".join(lines) + "\n")


def test_train_and_evaluate_tiny(tmp_path):
  folder = tmp_path / "libsvm-regression"
  folder.mkdir()
  _write_housing(folder)
  cfg = config_lib.get_config("smoke")
  cfg.data_dir = str(folder)
  cfg.methods = ("leverage",)
  cfg.plot = True
  res = train.train_and_evaluate(cfg, str(tmp_path / "wd"))
  curves = res["datasets"]["housing"]["curves"]
  assert res["datasets"]["housing"]["d"] == 14
  for method in cfg.methods:
    s = curves[method][42]
    assert s["draws"] == 200 and 1.0 <= s["q25"] <= s["median"] <= s["q75"]
    assert s["mean"] >= 1.0 and s["se"] > 0
  lb = res["lower_bound"]
  assert lb["formula"][10] == exact.lower_bound_ratio(40, 3, 10)
  rows = read_metrics(tmp_path / "wd" / "metrics.jsonl")
  assert len(rows) == 2 and {r["dataset"] for r in rows} == {"housing", "lower_bound"}
  assert json.loads((tmp_path / "wd" / "results.json").read_text())["scale"] == "smoke"
  assert os.path.getsize(tmp_path / "wd" / "loss_ratio.png") > 1000


def test_sample_loss_ratios_properties():
  with jax.enable_x64(True):
    rng = np.random.default_rng(1)
    X = jnp.asarray(rng.standard_normal((30, 3)))
    y = jnp.asarray(rng.standard_normal(30))
    r = np.asarray(train.sample_loss_ratios(jax.random.key(0), X, y, 30, "volume", 4))
    np.testing.assert_allclose(r, 1.0, rtol=1e-10)  # k = n: the full least-squares solution
    with pytest.raises(ValueError, match="method must be one of"):
      train.sample_loss_ratios(jax.random.key(0), X, y, 5, "dpp", 4)
    with pytest.raises(ValueError, match="num_draws must be a positive int"):
      train.sample_loss_ratios(jax.random.key(0), X, y, 5, "volume", 0)
    with pytest.raises(ValueError, match="L\\* = 0"):
      train.sample_loss_ratios(jax.random.key(0), X, X[:, 0], 5, "volume", 4)


def test_config_scales():
  for scale in ("smoke", "cpu", "full"):
    cfg = config_lib.get_config(scale)
    assert cfg.num_draws >= 200 and set(cfg.methods) <= set(config_lib.METHODS)
    assert set(cfg.datasets) <= set(data.DATASETS)
  with pytest.raises(ValueError, match="scale must be one of"):
    config_lib.get_config("huge")


def test_reproductions_registered():
  reps = {r.name: r for r in registry.reproductions("volume_sampling")}
  assert set(reps) == {"cpusmall_k60", "k_equals_d", "lower_bound"}
  m = {"leveraged_volume": {"mean": 1.30, "se": 0.01}, "leverage": {"mean": 1.31, "se": 0.01},
       "volume": {"mean": 1.80, "se": 0.05}}
  assert reps["cpusmall_k60"].check(m, "cpu")
  m["volume"]["mean"] = 1.32  # not significantly above i.i.d. leverage: the claim fails
  assert not reps["cpusmall_k60"].check(m, "cpu")
  assert reps["k_equals_d"].check({"mean": 6.1, "se": 0.2, "target": 6.0}, "cpu")
  assert not reps["k_equals_d"].check({"mean": 5.0, "se": 0.2, "target": 6.0}, "cpu")

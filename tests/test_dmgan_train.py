"""DMGAN training entry point: metrics/PNG files, checkpoint resume, config validation."""

import os

import numpy as np
import pytest

from jaxpapers._src import registry
from jaxpapers._src.metrics import read_metrics
from jaxpapers.dmgan import config as config_lib
from jaxpapers.dmgan import (
  reproductions,  # noqa: F401  (registers the reproductions)
  train,
)


def _tiny(num_steps, checkpoint_every=0):
  c = config_lib.get_config("smoke")
  c.num_generators = 3
  c.critic_steps = 1
  c.batch_size = 8
  c.num_steps = num_steps
  c.chunk_size = 5
  c.eval_samples = 200
  c.checkpoint_every = checkpoint_every
  return c


def test_train_and_evaluate_writes_metrics_png_and_resumes_from_checkpoint(tmp_path):
  wd = str(tmp_path / "run")
  first = train.train_and_evaluate(_tiny(10, checkpoint_every=5), wd)
  assert first["steps"] == 10
  assert os.path.exists(first["png"]) and os.path.getsize(first["png"]) > 100
  assert len(first["prior"]) == 3 and abs(sum(first["prior"]) - 1) < 1e-3
  assert 0.0 <= first["off_manifold"] <= 1.0 and first["real_off_manifold"] == 0.0
  assert sum(first["generator_usage"]) == 200
  second = train.train_and_evaluate(_tiny(15, checkpoint_every=5), wd)  # resumes at step 10
  assert second["steps"] == 15
  steps = [r["step"] for r in read_metrics(os.path.join(wd, "metrics.jsonl"))]
  assert steps == [5, 10, 10, 15, 15]  # chunks 5, 10 + eval; resumed chunk 15 + eval


def test_config_scales_and_validation():
  for scale in config_lib.SCALES:
    c = config_lib.get_config(scale)
    assert c.num_generators == 10 and c.batch_size == 32 and c.critic_steps == 5
  for scale in ("cpu", "full"):  # the paper's toy setting at both scales
    c = config_lib.get_config(scale)
    assert c.learning_rate == 2e-4 and c.kappa_decay == 0.999 and c.num_steps == 30_000
  with pytest.raises(ValueError, match="scale"):
    config_lib.get_config("huge")
  c = _tiny(2)
  c.num_generators = 0
  with pytest.raises(ValueError, match="num_generators"):
    train.build_problem(c)
  c = _tiny(2)
  c.dataset = "faces"
  with pytest.raises(ValueError, match="dataset"):
    train.build_problem(c)


def test_capacity_matched_baseline_is_wider():
  c = _tiny(2)
  c.variant = "wgan_gp_matched"
  p = train.build_problem(c)
  assert p.cfg.num_generators == 1 and p.generator.width > 2.0


def test_reproductions_registered_with_checks():
  reps = {r.name: r for r in registry.reproductions("dmgan")}
  assert set(reps) == {"toy_segments", "toy_ring6", "digits"}
  seg = reps["toy_segments"]
  good = {"dmwgan_pl": {"off_manifold": 0.02, "active_generators": 4.0,
                        "per_seed": {"active_generators": [4]},
                        "prior": [[0.25, 0.25, 0.24, 0.24] + [0.002] * 6]},
          "wgan_gp": {"off_manifold": 0.08}, "dmwgan": {"off_manifold": 0.13}}
  assert seg.check(good, "full") and seg.check(good, "cpu")
  bad = dict(good, dmwgan_pl=dict(good["dmwgan_pl"], per_seed={"active_generators": [5]}))
  assert not seg.check(bad, "full")
  worse = dict(good, wgan_gp={"off_manifold": 0.01})
  assert not seg.check(worse, "cpu")
  assert "PL" in seg.summary(good) and np.isfinite(good["dmwgan_pl"]["off_manifold"])

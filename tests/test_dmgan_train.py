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
  # One line per step, then the eval line; the resumed run continues the same file.
  assert steps == [*range(1, 11), 10, *range(11, 16), 15]
  last = [r for r in read_metrics(os.path.join(wd, "metrics.jsonl")) if "d_loss" in r][-1]
  assert last["step"] == 15 and second["final"]["d_loss"] == last["d_loss"]  # 10% of 15 steps


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
  assert set(reps) == {"toy_segments", "toy_ring6", "toy_segments3", "toy_reference_length",
                       "digits"}
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


def test_toy_wgan_gp_baseline_is_full_width_and_matched_is_wider():
  c = _tiny(2)
  c.variant = "wgan_gp"
  p = train.build_problem(c)
  assert p.cfg.num_generators == 1 and p.generator.hidden == (128, 64)  # the reference's full width
  c.variant = "dmwgan_pl"
  assert train.build_problem(c).generator.hidden == (32, 16)  # a quarter of it per generator


def test_ring_check_is_absolute_and_segments3_check_counts_seeds():
  reps = {r.name: r for r in registry.reproductions("dmgan")}
  ring = reps["toy_ring6"]
  pl = {"off_manifold": 0.015, "active_generators": 6.0, "per_seed": {"active_generators": [6, 6, 6]}}
  # absolute: passes with baselines that are better, fails above 0.02 even if baselines are worse
  assert ring.check({"dmwgan_pl": pl, "wgan_gp": {"off_manifold": 0.001},
                     "dmwgan": {"off_manifold": 0.001}}, "cpu")
  assert not ring.check({"dmwgan_pl": dict(pl, off_manifold=0.03),
                         "wgan_gp": {"off_manifold": 0.5}, "dmwgan": {"off_manifold": 0.5}}, "cpu")
  assert not ring.check({"dmwgan_pl": dict(pl, per_seed={"active_generators": [6, 7, 6]})}, "cpu")
  assert "0.05" in ring.claim and "0.01" in ring.claim and "0.02" in ring.scale_note["cpu"]

  seg3 = reps["toy_segments3"]
  assert seg3.seeds["cpu"] == (0, 1, 2)
  good, off_mass, four = [0.51, 0.28, 0.21], [0.60, 0.25, 0.15], [0.5, 0.3, 0.2]

  def measured(actives, masses):
    return {"dmwgan_pl": {"off_manifold": 0.02, "active_generators": float(np.mean(actives)),
                          "per_seed": {"active_generators": actives}, "prior_piece_mass": masses}}

  assert seg3.check(measured([3, 3, 3], [good, good, good]), "cpu")
  assert seg3.check(measured([3, 3, 4], [good, good, four]), "cpu")  # 2 of 3 seeds pass
  assert not seg3.check(measured([3, 4, 3], [good, four, off_mass]), "cpu")  # only 1 of 3
  assert not seg3.check(measured([4, 4, 3], [good, good, good]), "cpu")
  assert "r_piece" in seg3.summary(measured([3, 3, 3], [good, good, good]))


def test_segments3_smoke_reproduction_runs(tmp_path):
  rep = {r.name: r for r in registry.reproductions("dmgan")}["toy_segments3"]
  m = rep.run("smoke", rep.seeds["smoke"], str(tmp_path))
  r = np.asarray(m["dmwgan_pl"]["prior_piece_mass"])
  assert r.shape == (1, 3) and abs(r.sum() - 1.0) < 1e-3
  assert m["dmwgan_pl"]["true_piece_mass"] == [[0.5, 0.3, 0.2]]
  assert rep.check(m, "smoke")


def test_reference_length_check_hand_made():
  rep = {r.name: r for r in registry.reproductions("dmgan")}["toy_reference_length"]

  def pl(active, off, **kw):
    return {"off_manifold": off,
            "per_seed": {"active_generators": active, "off_manifold": [off] * len(active)}, **kw}

  good = {"segments": {"dmwgan_pl": pl([4, 4, 4], 0.014), "wgan_gp": {"off_manifold": 0.08}},
          "ring": {"dmwgan_pl": pl([6, 6, 6], 0.01), "wgan_gp": {"off_manifold": 0.15}},
          "segments3": {"dmwgan_pl": pl([3, 3, 4], 0.02, prior_piece_mass=[
              [0.5, 0.3, 0.2], [0.52, 0.28, 0.2], [0.5, 0.3, 0.2]])}}
  assert rep.check(good, "cpu")
  ring_off = dict(good, ring={"dmwgan_pl": pl([6, 6, 6], 0.17), "wgan_gp": {"off_manifold": 0.15}})
  assert not rep.check(ring_off, "cpu")  # the absolute 0.02 bound
  seg3_bad = dict(good, segments3={"dmwgan_pl": pl([4, 4, 3], 0.02, prior_piece_mass=[
      [0.5, 0.3, 0.2]] * 3)})
  assert not rep.check(seg3_bad, "cpu")  # exactly 3 active on only 1 of 3 seeds
  assert "WGAN-GP off 0.080" in rep.summary(good)


def test_training_on_a_custom_weighted_sampler_as_documented():
  """The module docstring of :mod:`jaxpapers.dmgan.data`: a custom sampler with masses only."""
  import jax
  import jax.numpy as jnp

  from jaxpapers.dmgan import core, data, networks

  seg = lambda a, b: (lambda k, n: a + jax.random.uniform(k, (n, 1)) * (b - a))
  sampler = data.mixture_sampler(
      [seg(jnp.array([0., 0.]), jnp.array([1., 0.])), seg(jnp.array([0., 1.]), jnp.array([1., 1.]))],
      weights=(0.7, 0.3))
  config = _tiny(3)
  generator, critic = networks.toy_models()
  cfg = core.variant_config("dmwgan_pl", 3, batch_size=8, critic_steps=1)
  problem = train.Problem(cfg, generator, critic, sampler)
  state, hist, _ = train.train(config, workdir=None, problem=problem)
  assert int(state.step) == 3 and np.all(np.isfinite(hist["d_loss"]))
  r = core.prior_probs(state.prior.logits)
  assert r.shape == (3,) and abs(float(r.sum()) - 1.0) < 1e-5
  out, (x, c) = train.evaluate(jax.random.key(0), state, problem, 50)
  assert out["active_generators"] >= 1 and x.shape == (50, 2)

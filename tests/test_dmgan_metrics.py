"""DMGAN metrics: hand-derived values, exact references, jit == eager."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from jaxpapers._src import testing
from jaxpapers.dmgan import data, metrics


def test_energy_distance_hand_value_and_zero_for_identical_sets():
  x = jnp.asarray([[0.0], [2.0]])
  y = jnp.asarray([[1.0]])
  # E|X-Y| = 1, E|X-X'| = (0 + 2 + 2 + 0) / 4 = 1, E|Y-Y'| = 0  ->  2 - 1 - 0 = 1.
  np.testing.assert_allclose(metrics.energy_distance(x, y), 1.0, atol=1e-5)
  z = jax.random.normal(jax.random.key(0), (30, 3))
  np.testing.assert_allclose(metrics.energy_distance(z, z), 0.0, atol=1e-5)
  w = z + 1.0
  testing.assert_jit_matches_eager(metrics.energy_distance, z, w, rtol=1e-5, atol=1e-5)
  assert float(metrics.energy_distance(z, w)) > 0.1
  with pytest.raises(ValueError, match="same sample dimension"):
    metrics.energy_distance(z, jnp.zeros((4, 2)))


def test_frechet_distance_matches_scipy_sqrtm_and_gaussian_1d_formula():
  rng = np.random.default_rng(0)
  a = rng.normal(size=(6, 6))
  b = rng.normal(size=(6, 6))
  c1, c2 = a @ a.T + 0.1 * np.eye(6), b @ b.T + 0.1 * np.eye(6)
  m1, m2 = rng.normal(size=6), rng.normal(size=6)
  ref = np.sum((m1 - m2) ** 2) + np.trace(c1 + c2 - 2 * np.real(scipy.linalg.sqrtm(c1 @ c2)))
  with jax.enable_x64(True):
    got = metrics.frechet_distance(jnp.asarray(m1), jnp.asarray(c1), jnp.asarray(m2), jnp.asarray(c2))
  np.testing.assert_allclose(got, ref, rtol=1e-6)
  # 1-D Gaussians: (μ1 - μ2)² + (σ1 - σ2)².
  got = metrics.frechet_distance(jnp.asarray([1.0]), jnp.asarray([[4.0]]), jnp.asarray([-1.0]),
                                 jnp.asarray([[9.0]]))
  np.testing.assert_allclose(got, 4.0 + 1.0, rtol=1e-5)
  np.testing.assert_allclose(metrics.frechet_distance(jnp.asarray(m1, jnp.float32),
                                                      jnp.asarray(c1, jnp.float32),
                                                      jnp.asarray(m1, jnp.float32),
                                                      jnp.asarray(c1, jnp.float32)), 0.0, atol=2e-3)


def test_jensen_shannon_histogram_and_quality_curve_hand_values():
  np.testing.assert_allclose(metrics.jensen_shannon(jnp.asarray([1.0, 0.0]), jnp.asarray([0.0, 1.0])),
                             math.log(2), rtol=1e-6)
  np.testing.assert_allclose(metrics.jensen_shannon(jnp.asarray([2.0, 2.0]), jnp.asarray([1.0, 1.0])),
                             0.0, atol=1e-7)
  p, q = np.asarray([0.5, 0.5, 0.0]), np.asarray([0.25, 0.25, 0.5])
  m = 0.5 * (p + q)
  ref = 0.5 * np.sum(p[:2] * np.log(p[:2] / m[:2])) + 0.5 * np.sum(q * np.log(q / m))
  np.testing.assert_allclose(metrics.jensen_shannon(jnp.asarray(p), jnp.asarray(q)), ref, rtol=1e-5)
  probs = jnp.asarray([[0.9, 0.1, 0.0], [0.85, 0.15, 0.0], [0.1, 0.1, 0.8], [0.5, 0.4, 0.1],
                       [0.0, 0.05, 0.95]])
  np.testing.assert_array_equal(metrics.confident_histogram(probs, 0.8), [2.0, 0.0, 2.0])
  np.testing.assert_allclose(metrics.quality_curve(probs, jnp.asarray([0.5, 0.8, 0.9, 0.99])),
                             [1.0, 0.8, 0.4, 0.0])
  ref_hist = jnp.asarray([1.0, 0.0, 1.0])
  np.testing.assert_allclose(metrics.class_histogram_jsd(probs, ref_hist, 0.8), 0.0, atol=1e-7)
  np.testing.assert_allclose(metrics.class_histogram_jsd(probs, ref_hist, 0.999), math.log(2),
                             rtol=1e-6)


def test_off_manifold_fraction_hand_value():
  ds = data.four_segments()
  u = 1.0 / np.sqrt(2.0)  # the segment from (0.75, 0.25) to (0.25, 0.75) has normal (u, u)
  x = jnp.asarray([[0.5, 0.5], [0.5 + 0.04 * u, 0.5 + 0.04 * u], [0.5 + 0.1 * u, 0.5 + 0.1 * u],
                   [0.0, 0.0]], jnp.float32)  # d = 0, .04, .1, 1/√2
  np.testing.assert_allclose(data.distance_to_manifold(ds, x), [0.0, 0.04, 0.1, u], atol=1e-6)
  np.testing.assert_allclose(metrics.off_manifold_fraction(ds, x, 0.05), 0.5)


def test_classifier_learns_digits_and_image_metrics_are_consistent():
  x, y = data.load_digits()
  x, y = jnp.asarray(x), jnp.asarray(y)
  params = jax.jit(metrics.train_classifier, static_argnames=("steps",))(
      jax.random.key(0), x[:1500], y[:1500], steps=400)
  assert float(metrics.classifier_accuracy(params, x[1500:], y[1500:])) > 0.9
  m = jax.jit(metrics.image_metrics)(params, x[:600], x[600:1200], y)
  # Real digits against real digits: near-uniform confident histogram, small Fréchet distance.
  assert float(m["jsd"]) < 0.02
  noise = jax.random.uniform(jax.random.key(1), (600, 8, 8, 1), minval=-1, maxval=1)
  m_noise = jax.jit(metrics.image_metrics)(params, noise, x[600:1200], y)
  assert float(m_noise["frechet"]) > 5 * float(m["frechet"])
  assert np.all(np.diff(np.asarray(m["quality_curve"])) <= 0)

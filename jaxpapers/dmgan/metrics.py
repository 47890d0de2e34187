"""Evaluation metrics of the paper as jittable functions, plus the in-package classifier.

Khayatkhoei, Singh & Elgammal, "Disconnected Manifold Learning for Generative Adversarial
Networks", NeurIPS 2018. The paper measures off-manifold samples on toy data, and on images the
Jensen-Shannon divergence between the class histogram of confidently classified generated samples
and the data's, the fraction of samples above a confidence threshold (the "quality curve"), and a
Fréchet distance in a classifier's feature space.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from jaxpapers._src.validation import check_array, check_positive
from jaxpapers.dmgan import data as data_lib


def off_manifold_fraction(ds: data_lib.ToyDataset, x, threshold: float = 0.05):
  """Fraction of samples farther than ``threshold`` from the true pieces of toy set ``ds``.

  A sample with a NaN coordinate has no distance, so any NaN sample makes the result NaN (never
  a fraction that silently counts it as on or off the manifold); ``±inf`` samples are off it.

  Args:
    ds: the toy set.
    x: samples ``(num, 2)``, ``num >= 1``, floating.
    threshold: distance above which a sample is off the manifold, ``> 0`` and finite.

  Raises:
    ValueError: on a wrong shape, an empty ``x`` or a bad ``threshold``.
    TypeError: on a non-floating ``x``.
  """
  check_array(x, "x", ndim=2, shape=(None, 2), dtype_kind="f")
  chex.assert_rank(x, 2)
  if x.shape[0] < 1:
    raise ValueError("x must hold at least one sample, got shape (0, 2)")
  check_positive(threshold, "threshold")
  if not math.isfinite(threshold):
    raise ValueError(f"threshold must be finite, got {threshold}")
  dist = data_lib.distance_to_manifold(ds, x)
  frac = jnp.mean(dist > threshold)
  return jnp.where(jnp.any(jnp.isnan(x)), jnp.nan, frac)


def _pairwise_mean_dist(a, b):
  d2 = jnp.sum(a * a, 1)[:, None] + jnp.sum(b * b, 1)[None] - 2.0 * a @ b.T
  return jnp.mean(jnp.sqrt(jnp.maximum(d2, 0.0) + 1e-20))


def energy_distance(x, y):
  """Energy distance ``2 E||X - Y|| - E||X - X'|| - E||Y - Y'||`` (V-statistic) between samples.

  Samples are flattened to vectors; the V-statistic includes the zero self-distances, so it is
  non-negative and zero for identical sample sets.
  """
  check_array(x, "x", dtype_kind="f")
  check_array(y, "y", dtype_kind="f")
  for name, a in (("x", x), ("y", y)):
    if a.ndim < 1 or a.shape[0] < 1:
      raise ValueError(f"{name} must hold at least one sample, got shape {tuple(a.shape)}")
  x = x.reshape(x.shape[0], -1)
  y = y.reshape(y.shape[0], -1)
  if x.shape[1] != y.shape[1]:
    raise ValueError(f"x and y must have the same sample dimension, got {x.shape} and {y.shape}")
  return 2 * _pairwise_mean_dist(x, y) - _pairwise_mean_dist(x, x) - _pairwise_mean_dist(y, y)


def _sqrtm_psd(a):
  w, v = jnp.linalg.eigh(0.5 * (a + a.T))
  return (v * jnp.sqrt(jnp.maximum(w, 0.0))) @ v.T


def frechet_distance(mu1, cov1, mu2, cov2):
  """``||μ1 - μ2||² + tr(Σ1 + Σ2 - 2 (Σ1^{1/2} Σ2 Σ1^{1/2})^{1/2})`` (FID's formula).

  Uses symmetric eigendecompositions, so it is jittable and differentiable; the middle term equals
  ``tr((Σ1 Σ2)^{1/2})``. NaN inputs give NaN.

  Raises:
    ValueError: if the means are not vectors of one length ``d >= 1`` or the covariances are
      not ``(d, d)``.
    TypeError: on non-floating inputs.
  """
  check_array(mu1, "mu1", ndim=1, dtype_kind="f")
  d = mu1.shape[0]
  if d < 1:
    raise ValueError("mu1 must have at least one entry")
  check_array(mu2, "mu2", ndim=1, dtype_kind="f", shape=(d,))
  check_array(cov1, "cov1", ndim=2, dtype_kind="f", shape=(d, d))
  check_array(cov2, "cov2", ndim=2, dtype_kind="f", shape=(d, d))
  chex.assert_equal_shape([cov1, cov2])
  nan = jnp.any(jnp.isnan(cov1)) | jnp.any(jnp.isnan(cov2))
  cov1 = jnp.where(nan, 0.0, cov1)
  cov2 = jnp.where(nan, 0.0, cov2)
  s1 = _sqrtm_psd(cov1)
  cross = _sqrtm_psd(s1 @ cov2 @ s1)
  out = jnp.sum((mu1 - mu2) ** 2) + jnp.trace(cov1) + jnp.trace(cov2) - 2.0 * jnp.trace(cross)
  return jnp.where(nan, jnp.nan, out)


def feature_stats(features):
  """Mean and (unbiased) covariance of ``(N, d)`` features."""
  check_array(features, "features", ndim=2, dtype_kind="f")
  mu = jnp.mean(features, 0)
  xc = features - mu
  return mu, xc.T @ xc / (features.shape[0] - 1)


def jensen_shannon(p, q):
  """JSD in nats between two histograms (normalised here); ``0 ≤ JSD ≤ ln 2``."""
  p = p / jnp.sum(p)
  q = q / jnp.sum(q)
  m = 0.5 * (p + q)

  def kl(a, b):
    return jnp.sum(jnp.where(a > 0, a * (jnp.log(jnp.where(a > 0, a, 1.0)) - jnp.log(jnp.where(a > 0, b, 1.0))), 0.0))

  return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def confident_histogram(probs, threshold: float = 0.8):
  """Counts per class of samples whose top class probability is ``≥ threshold``."""
  check_array(probs, "probs", ndim=2, dtype_kind="f")
  conf = jnp.max(probs, 1)
  pred = jnp.argmax(probs, 1)
  keep = (conf >= threshold).astype(probs.dtype)
  return jnp.zeros((probs.shape[1],), probs.dtype).at[pred].add(keep)


def class_histogram_jsd(probs, reference_hist, threshold: float = 0.8):
  """JSD between the confident-sample class histogram and ``reference_hist``.

  If no sample reaches ``threshold`` the histograms share nothing and ``ln 2`` is returned.
  """
  hist = confident_histogram(probs, threshold)
  total = jnp.sum(hist)
  safe = jnp.where(total > 0, hist, jnp.ones_like(hist))
  return jnp.where(total > 0, jensen_shannon(safe, reference_hist), math.log(2.0))


def quality_curve(probs, thresholds):
  """Fraction of samples whose classifier confidence is ``≥ τ`` for each ``τ`` in ``thresholds``."""
  check_array(probs, "probs", ndim=2, dtype_kind="f")
  conf = jnp.max(probs, 1)
  return jnp.mean(conf[None, :] >= jnp.asarray(thresholds)[:, None], axis=1)


# ---------------------------------------------------------------------------------------------
# In-package classifier (MLP on flattened images).


class ClassifierParams(NamedTuple):
  w1: jax.Array
  b1: jax.Array
  w2: jax.Array
  b2: jax.Array


def classifier_apply(params: ClassifierParams, x):
  """``(logits, features)`` of the MLP classifier; features are the ReLU hidden layer."""
  h = jax.nn.relu(x.reshape(x.shape[0], -1) @ params.w1 + params.b1)
  return h @ params.w2 + params.b2, h


def train_classifier(key, images, labels, num_classes: int = 10, hidden: int = 128,
                     steps: int = 600, batch_size: int = 128, learning_rate: float = 1e-3,
                     weight_decay: float = 1e-4) -> ClassifierParams:
  """Trains the evaluation classifier with Adam on minibatches inside one ``lax.scan``."""
  check_array(images, "images", dtype_kind="f", finite=True)
  check_array(labels, "labels", ndim=1, dtype_kind="iu", shape=(images.shape[0],))
  check_positive(steps, "steps")
  x = jnp.asarray(images).reshape(images.shape[0], -1)
  y = jnp.asarray(labels)
  d = x.shape[1]
  k1, k2, k_run = jax.random.split(key, 3)
  params = ClassifierParams(jax.random.normal(k1, (d, hidden)) * math.sqrt(2.0 / d),
                            jnp.zeros((hidden,)),
                            jax.random.normal(k2, (hidden, num_classes)) * math.sqrt(1.0 / hidden),
                            jnp.zeros((num_classes,)))
  opt = optax.adamw(learning_rate, weight_decay=weight_decay)

  def loss_fn(p, xb, yb):
    logits = classifier_apply(p, xb)[0]
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), yb[:, None], 1))

  def step(carry, k):
    p, s = carry
    idx = jax.random.randint(k, (batch_size,), 0, x.shape[0])
    g = jax.grad(loss_fn)(p, x[idx], y[idx])
    u, s = opt.update(g, s, p)
    return (optax.apply_updates(p, u), s), None

  (params, _), _ = jax.lax.scan(step, (params, opt.init(params)), jax.random.split(k_run, steps))
  return params


def classifier_accuracy(params: ClassifierParams, images, labels):
  return jnp.mean(jnp.argmax(classifier_apply(params, images)[0], 1) == labels)


def image_metrics(params: ClassifierParams, fake, real, real_labels, num_classes: int = 10,
                  threshold: float = 0.8, thresholds=(0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)):
  """Class-histogram JSD, quality curve and classifier-feature Fréchet distance of ``fake``."""
  logits, feats = classifier_apply(params, fake)
  probs = jax.nn.softmax(logits)
  ref = jnp.zeros((num_classes,)).at[real_labels].add(1.0)
  _, feats_real = classifier_apply(params, real)
  mu_f, cov_f = feature_stats(feats)
  mu_r, cov_r = feature_stats(feats_real)
  return {"jsd": class_histogram_jsd(probs, ref, threshold),
          "confident_fraction": jnp.mean(jnp.max(probs, 1) >= threshold),
          "quality_curve": quality_curve(probs, jnp.asarray(thresholds)),
          "frechet": frechet_distance(mu_f, cov_f, mu_r, cov_r)}

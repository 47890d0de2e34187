"""Paper identities by exact enumeration (float64): normalisers, marginals, unbiasedness, k = d."""

import itertools
import math

import numpy as np
import pytest

from jaxpapers.volume_sampling import data, exact


def _design(n=7, d=2, seed=0):
  rng = np.random.default_rng(seed)
  X = rng.standard_normal((n, d))
  X[0] *= 4.0
  return X


def _ls(a, b):
  return np.linalg.lstsq(a, b, rcond=None)[0]


def test_normalizers_match_brute_force():
  X = _design()
  n, d, k = 7, 2, 3
  # Brute force, written independently of exact.enumerate_*.
  vs = sum(np.linalg.det(X[list(s)].T @ X[list(s)]) for s in itertools.combinations(range(n), k))
  assert vs == pytest.approx(exact.volume_normalizer(X, k), rel=1e-10, abs=0)
  assert exact.volume_normalizer(X, k) == pytest.approx(
      math.comb(5, 1) * np.linalg.det(X.T @ X), rel=1e-12)
  _, w = exact.enumerate_volume(X, k)
  assert w.sum() == pytest.approx(vs, rel=1e-10)
  for q in (None, np.arange(1.0, n + 1) / np.arange(1.0, n + 1).sum()):  # leveraged and arbitrary q
    qq = exact.leverage_scores_np(X) / d if q is None else q
    lvs = 0.0
    for pi in itertools.product(range(n), repeat=k):
      z = X[list(pi)] / np.sqrt(qq[list(pi)])[:, None]
      lvs += np.linalg.det(z.T @ z) * np.prod(qq[list(pi)])
    assert lvs == pytest.approx(exact.leveraged_normalizer(X, k), rel=1e-10, abs=0)
    assert exact.enumerate_leveraged(X, k, q)[1].sum() == pytest.approx(lvs, rel=1e-10)
  assert exact.leveraged_normalizer(X, k) == pytest.approx(6 * np.linalg.det(X.T @ X), rel=1e-12)


@pytest.mark.parametrize("k", [2, 3, 5])
def test_marginals_match_enumeration(k):
  X = _design()
  n, d = X.shape
  subsets, w = exact.enumerate_volume(X, k)
  p = w / w.sum()
  marg = np.array([p[(subsets == i).any(1)].sum() for i in range(n)])
  np.testing.assert_allclose(marg, exact.volume_marginals(X, k), atol=1e-10)
  lev = exact.leverage_scores_np(X)
  assert marg.sum() == pytest.approx(k)
  if k > d:  # a mixture of leverage and uniform marginals: not the leverage scores themselves
    assert np.max(np.abs(marg - k * lev / d)) > 0.05
  if k <= 3:
    seqs, w = exact.enumerate_leveraged(X, k)
    p = w / w.sum()
    for t in range(k):
      first = np.bincount(seqs[:, t], weights=p, minlength=n)
      np.testing.assert_allclose(first, lev / d, atol=1e-10)
    q = np.full(n, 1.0 / n)  # arbitrary q: l_j / k + (1 - d/k) q_j
    seqs, w = exact.enumerate_leveraged(X, k, q)
    first = np.bincount(seqs[:, 0], weights=w / w.sum(), minlength=n)
    np.testing.assert_allclose(first, exact.leveraged_marginals(X, k, q), atol=1e-10)


def test_both_estimators_unbiased_by_enumeration():
  X = _design(seed=1)
  rng = np.random.default_rng(2)
  y = X @ np.array([2.0, -1.0]) + rng.standard_normal(7) * 3
  w_star = _ls(X, y)
  k = 3
  subsets, w = exact.enumerate_volume(X, k)
  mean = sum(p * _ls(X[s], y[s]) for s, p in zip(subsets, w / w.sum()) if p > 0)
  np.testing.assert_allclose(mean, w_star, atol=1e-10)
  d = 2
  q = exact.leverage_scores_np(X) / d
  seqs, w = exact.enumerate_leveraged(X, k)
  mean = np.zeros(d)
  for s, p in zip(seqs, w / w.sum()):
    if p > 1e-300:
      sw = 1 / np.sqrt(q[s])
      mean += p * _ls(X[s] * sw[:, None], y[s] * sw)
  np.testing.assert_allclose(mean, w_star, atol=1e-10)


@pytest.mark.parametrize("n,d", [(7, 2), (8, 3)])
def test_k_equals_d_expected_loss_is_d_plus_one(n, d):
  rng = np.random.default_rng(n + d)
  X = rng.standard_normal((n, d)) * rng.exponential(1.0, (n, 1))
  y = rng.standard_normal(n)
  opt = np.sum((X @ _ls(X, y) - y) ** 2)
  subsets, w = exact.enumerate_volume(X, d)
  p = w / w.sum()
  el = sum(pi * np.sum((X @ np.linalg.solve(X[s], y[s]) - y) ** 2) for s, pi in zip(subsets, p))
  assert el / opt == pytest.approx(d + 1, rel=1e-9)


@pytest.mark.parametrize("k", [2, 4, 6, 8])
def test_lower_bound_instance(k):
  n, d = 10, 2
  X, y = data.lower_bound_instance(n, d, eps=1e-5)
  opt = np.sum((X @ _ls(X, y) - y) ** 2)
  subsets, w = exact.enumerate_volume(X, k)
  p = w / w.sum()
  el = sum(pi * np.sum((X @ _ls(X[s], y[s]) - y) ** 2) for s, pi in zip(subsets, p) if pi > 0)
  assert el / opt == pytest.approx(exact.lower_bound_ratio(n, d, k), rel=1e-6)
  assert exact.lower_bound_expected_ratio(n, d, k, 1e-5) == pytest.approx(el / opt, rel=1e-9)
  # At a finite eps the closed form still equals the enumeration exactly.
  X, y = data.lower_bound_instance(n, d, eps=0.3)
  opt = np.sum((X @ _ls(X, y) - y) ** 2)
  subsets, w = exact.enumerate_volume(X, k)
  p = w / w.sum()
  el = sum(pi * np.sum((X @ _ls(X[s], y[s]) - y) ** 2) for s, pi in zip(subsets, p) if pi > 0)
  assert exact.lower_bound_expected_ratio(n, d, k, 0.3) == pytest.approx(el / opt, rel=1e-10)
  assert exact.lower_bound_ratio(n, d, k) == 1 + (n - k) / (n - d)
  if k == d:
    # Not d + 1: the k = d identity needs every d-subset of rows in general position, and this
    # instance has singular pairs (e_d with eps e_d) that carry (d+1)-volume.
    assert el / opt == pytest.approx(2.0, rel=1e-6)


def test_exact_rejects_bad_designs():
  with pytest.raises(ValueError, match="n >= d"):
    exact.volume_normalizer(np.ones((2, 3)), 3)
  with pytest.raises(ValueError, match="NaN or inf"):
    exact.leverage_scores_np(np.array([[1.0, np.nan], [0.0, 1.0]]))


def test_iid_leverage_estimator_is_biased():
  # The i.i.d. rescaled estimator is not unbiased (the paper's motivation): at k = d its exact
  # mean over all n^k draws is measurably off w*, unlike the volume-sampling estimators.
  X = _design(seed=1)
  rng = np.random.default_rng(2)
  y = X @ np.array([2.0, -1.0]) + rng.standard_normal(7) * 3 + 2.0
  n, d = X.shape
  q = exact.leverage_scores_np(X) / d
  mean = np.zeros(d)
  for s in itertools.product(range(n), repeat=d):
    s = list(s)
    sw = 1 / np.sqrt(d * q[s])
    mean += np.prod(q[s]) * (np.linalg.pinv(X[s] * sw[:, None]) @ (y[s] * sw))
  assert np.max(np.abs(mean - _ls(X, y))) > 0.1

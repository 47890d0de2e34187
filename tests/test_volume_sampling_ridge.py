"""Regularised (ridge) volume sampling P(S) ∝ det(X_Sᵀ X_S + λ I) (Dereziński & Warmuth, AISTATS
2018) against exact enumeration."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers._src import testing
from jaxpapers.volume_sampling import exact, samplers


@pytest.fixture(autouse=True)
def _x64():
  with jax.enable_x64(True):
    yield


def _law_pvalue(X, k, lam, num=8000, seed=0):
  subsets, dets = exact.enumerate_ridge_volume(X, k, lam)
  keys = jax.random.split(jax.random.key(seed), num)
  draw = jax.jit(jax.vmap(lambda kk: samplers.ridge_volume_sample(kk, jnp.asarray(X), k, lam)))
  idx = np.asarray(draw(keys).indices)
  assert np.all(np.diff(idx, axis=1) > 0)  # sorted, distinct
  lookup = {tuple(s): i for i, s in enumerate(subsets)}
  counts = np.bincount([lookup[tuple(r)] for r in idx], minlength=len(subsets))
  return testing.chi_square_pvalue(counts, dets)


@pytest.mark.parametrize("k,lam", [(1, 0.1), (4, 2.0)])
def test_law_matches_enumeration(k, lam):
  # k = 1 < d = 3: allowed for λ > 0 (the determinant is never zero).
  rng = np.random.default_rng(0)
  X = rng.normal(size=(7, 3)) * rng.uniform(0.2, 2.0, size=(7, 1))
  assert _law_pvalue(X, k, lam, seed=k) > 1e-3


def test_law_on_rank_deficient_design():
  rng = np.random.default_rng(1)
  a = rng.normal(size=(6, 2))
  X = np.concatenate([a, a[:, :1] + a[:, 1:]], axis=1)  # rank 2, d = 3
  assert _law_pvalue(X, 3, 0.3, seed=5) > 1e-3


def test_normalizer_closed_form_matches_enumeration():
  rng = np.random.default_rng(2)
  X = rng.normal(size=(8, 3))
  for k in (1, 3, 5, 8):
    for lam in (0.01, 1.0, 30.0):
      _, dets = exact.enumerate_ridge_volume(X, k, lam)
      got = float(samplers.ridge_volume_log_normalizer(jnp.asarray(X), k, lam))
      assert got == pytest.approx(math.log(dets.sum()), rel=1e-10, abs=1e-10)
  # λ → 0: tends to volume sampling's C(n − d, k − d) det(XᵀX)
  got = float(samplers.ridge_volume_log_normalizer(jnp.asarray(X), 5, 1e-9))
  assert got == pytest.approx(math.log(exact.volume_normalizer(X, 5)), rel=1e-6)


def test_ridge_estimator_is_biased_under_this_law():
  # The docstring's claim: unlike plain volume sampling, E[w_λ(S)] ≠ w*_λ (exact, by enumeration).
  rng = np.random.default_rng(0)
  X, y = rng.normal(size=(7, 3)), rng.normal(size=7)
  lam, k = 0.5, 4
  subsets, dets = exact.enumerate_ridge_volume(X, k, lam)
  ws = np.array([np.linalg.solve(X[s].T @ X[s] + lam * np.eye(3), X[s].T @ y[s])
                 for s in subsets])
  mean = (dets / dets.sum()) @ ws
  ridge = np.linalg.solve(X.T @ X + lam * np.eye(3), X.T @ y)
  assert np.linalg.norm(mean - ridge) > 0.1 * np.linalg.norm(ridge)


def test_bad_inputs():
  X = jnp.ones((5, 2)).at[0, 1].set(2.0)
  key = jax.random.key(0)
  for lam in (0.0, -1.0, np.inf, np.nan):
    with pytest.raises(ValueError, match="lam must be a finite number > 0"):
      samplers.ridge_volume_sample(key, X, 2, lam)
  for k in (0, 6):
    with pytest.raises(ValueError, match="k must be in"):
      samplers.ridge_volume_sample(key, X, k, 1.0)
  with pytest.raises(TypeError, match="k must be a Python int"):
    samplers.ridge_volume_sample(key, X, 2.0, 1.0)
  with pytest.raises(TypeError, match="key must be a typed PRNG key"):
    samplers.ridge_volume_sample(0, X, 2, 1.0)
  with pytest.raises(ValueError, match="NaN or inf"):
    samplers.ridge_volume_sample(key, X.at[1, 1].set(jnp.nan), 2, 1.0)

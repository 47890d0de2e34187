"""Leveraged volume sampling (Dereziński, Warmuth & Hsu, NeurIPS 2018): small acceptance rates,
the round cap, state binding, and index checks of the estimator (issues 22/23)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxpapers._src import testing
from jaxpapers.volume_sampling import estimators, exact, samplers


def test_log_uniform_from_bits_by_hand():
  f = lambda b: float(samplers._log_uniform_from_bits(jnp.asarray(b, jnp.uint32), jnp.float32))
  # U = 5·2^-69 + (2^22 + ½)·2^-92: far below float32's uniform resolution 2^-23.
  want = math.log(5 + (2**22 + 0.5) * 2.0**-23) - 69 * math.log(2.0)
  assert f([0, 0, 5, 2**22]) == pytest.approx(want, rel=1e-6)
  # only the low 23 bits of each word count; a leading nonzero chunk gives U ≈ c0·2^-23.
  want = math.log(1 + (7 + 0.5) * 2.0**-23) - 23 * math.log(2.0)
  assert f([2**31 + 1, 7, 0, 0]) == pytest.approx(want, rel=1e-6)
  assert f([0, 0, 0, 0]) == -math.inf
  assert f([0, 0, 0, 3]) == pytest.approx(math.log(3.5) - 92 * math.log(2.0), rel=1e-6)


def test_log_uniform_is_minus_exponential():
  keys = jax.random.split(jax.random.key(0), 20000)
  e = -np.asarray(jax.vmap(lambda k: samplers._log_uniform(k, jnp.float32))(keys), np.float64)
  assert stats.kstest(e, "expon").pvalue > 1e-3


def test_law_at_small_acceptance_rate_matches_enumeration():
  # d = k = s = 6: each round is accepted with probability 6!/6^6 ≈ 0.0154, and a repeated row
  # has det = 0, so the law is over 6-subsets of the 8 rows: P(S) ∝ det(X_Sᵀ X_S).
  rng = np.random.default_rng(0)
  X = rng.normal(size=(8, 6)) * rng.uniform(0.3, 2.0, size=(8, 1))
  p_acc = samplers.acceptance_probability(6, 6)
  assert p_acc == pytest.approx(math.factorial(6) / 6**6)
  subsets, dets = exact.enumerate_volume(X, 6)
  xs = jnp.asarray(X, jnp.float32)
  state = samplers.prepare_leveraged(xs)
  num = 3000
  keys = jax.random.split(jax.random.key(1), num)
  draw = jax.jit(jax.vmap(lambda k: samplers.leveraged_volume_sample(k, xs, 6, state=state,
                                                                    oversample=6)))
  out = draw(keys)
  idx = np.sort(np.asarray(out.indices), axis=1)
  assert np.all(np.diff(idx, axis=1) > 0)  # no repeats
  lookup = {tuple(s): i for i, s in enumerate(subsets)}
  counts = np.bincount([lookup[tuple(r)] for r in idx], minlength=len(subsets))
  assert testing.chi_square_pvalue(counts, dets) > 1e-3
  # rounds per sample are geometric with mean 1/p_acc ≈ 65 (std of the mean ≈ 1.2)
  rounds = np.asarray(out.proposals, np.float64)
  assert abs(rounds.mean() - 1 / p_acc) < 5 * math.sqrt(1 - p_acc) / p_acc / math.sqrt(num)


def test_max_rounds_cap_raises_eagerly_and_poisons_under_jit():
  rng = np.random.default_rng(1)
  X = jnp.asarray(rng.normal(size=(40, 12)), jnp.float32)
  # d = s = 12: acceptance 12!/12^12 ≈ 5.4e-5, so 3 rounds essentially never suffice.
  with pytest.raises(RuntimeError, match="max_rounds=3"):
    samplers.leveraged_volume_sample(jax.random.key(0), X, 12, oversample=12, max_rounds=3)
  out = jax.jit(lambda k: samplers.leveraged_volume_sample(k, X, 12, oversample=12,
                                                           max_rounds=3))(jax.random.key(0))
  assert np.all(np.isnan(np.asarray(out.weights))) and np.all(np.asarray(out.indices) == 40)
  assert int(out.proposals) == 3
  y = jnp.ones((40,), jnp.float32)
  with pytest.raises(ValueError, match="indices must lie in"):
    estimators.least_squares_estimate(X, y, out.indices, out.weights)
  for bad in (0, -1, 1.5, True):
    with pytest.raises(ValueError, match="max_rounds must be"):
      samplers.leveraged_volume_sample(jax.random.key(0), X, 12, max_rounds=bad)


def test_state_of_another_design_is_refused():
  rng = np.random.default_rng(2)
  X = jnp.asarray(rng.normal(size=(30, 3)), jnp.float32)
  other = jnp.asarray(rng.normal(size=(30, 3)), jnp.float32)
  key = jax.random.key(0)
  with pytest.raises(ValueError, match="different design"):
    samplers.leveraged_volume_sample(key, X, 5, state=samplers.prepare_leveraged(other))
  scaled = X.at[7, 1].multiply(3.0)  # one entry changed
  with pytest.raises(ValueError, match="different design"):
    samplers.leveraged_volume_sample(key, X, 5, state=samplers.prepare_leveraged(scaled))
  with pytest.raises(ValueError, match="state must be prepare_leveraged"):
    samplers.leveraged_volume_sample(key, X, 5, state=samplers.prepare_leveraged(X[:20]))
  good = samplers.prepare_leveraged(X)
  ok = samplers.leveraged_volume_sample(key, X, 5, state=good)
  assert np.all(np.isfinite(np.asarray(ok.weights)))
  f = jax.jit(lambda x, st: samplers.leveraged_volume_sample(key, x, 5, state=st))
  assert np.all(np.isfinite(np.asarray(f(X, good).weights)))
  np.testing.assert_array_equal(np.asarray(f(X, good).indices), np.asarray(ok.indices))
  assert np.all(np.isnan(np.asarray(f(X, samplers.prepare_leveraged(other)).weights)))
  # opting out of the O(nd) check samples from the state's law, as documented
  out = samplers.leveraged_volume_sample(key, X, 5, state=samplers.prepare_leveraged(other),
                                         check_state=False)
  assert out.indices.shape == (5,)


def test_least_squares_estimate_rejects_out_of_range_indices():
  rng = np.random.default_rng(3)
  X = jnp.asarray(rng.normal(size=(10, 2)))
  y = jnp.asarray(rng.normal(size=(10,)))
  for bad in ([0, 10], [-1, 3], [2, 5, 11]):
    with pytest.raises(ValueError, match="indices must lie in \\[0, 10\\)"):
      estimators.least_squares_estimate(X, y, jnp.asarray(bad))
  with pytest.raises(ValueError, match="indices must not be empty"):
    estimators.least_squares_estimate(X, y, jnp.zeros((0,), jnp.int32))
  w = estimators.least_squares_estimate(X, y, jnp.arange(10))
  np.testing.assert_allclose(w, np.linalg.lstsq(np.asarray(X), np.asarray(y), rcond=None)[0],
                             rtol=1e-5)

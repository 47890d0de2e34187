"""Sampling laws, marginals, unbiasedness and transformations of the volume-sampling samplers."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers._src import testing
from jaxpapers.volume_sampling import estimators, exact, samplers

N_DRAWS = 40_000


@pytest.fixture(autouse=True)
def _x64():
  with jax.enable_x64(True):
    yield


def _design(n=7, d=2, seed=0, heavy=True):
  rng = np.random.default_rng(seed)
  X = rng.standard_normal((n, d))
  if heavy:  # very non-uniform leverage scores
    X[0] *= 4.0
  return jnp.asarray(X)


@functools.lru_cache(maxsize=None)
def _batched(sampler, k, **kw):
  return jax.jit(jax.vmap(lambda key, X: sampler(key, X, k, **kw), in_axes=(0, None)))


@functools.lru_cache(maxsize=None)
def _single(sampler, k):
  return jax.jit(lambda key, X: sampler(key, X, k))


_DRAWS = {}


def _draw(sampler, X, k, num=N_DRAWS, seed=1):
  """Draws (memoised per sampler, design and k, so tests share one compile and one batch)."""
  tag = (sampler, np.asarray(X).tobytes(), X.shape, k, num, seed)
  if tag not in _DRAWS:
    keys = jax.random.split(jax.random.key(seed), num)
    _DRAWS[tag] = (keys, _batched(sampler, k)(keys, X))
  return _DRAWS[tag][1]


def _keys(sampler, X, k, num=N_DRAWS, seed=1):
  _draw(sampler, X, k, num, seed)
  return _DRAWS[(sampler, np.asarray(X).tobytes(), X.shape, k, num, seed)][0]


def _pooled_pvalue(counts, probs, min_expected=5.0):
  """Chi-square p-value after pooling the cells whose expected count is below ``min_expected``."""
  counts = np.asarray(counts, float)
  probs = np.asarray(probs, float) / np.sum(probs)
  expected = probs * counts.sum()
  small = expected < min_expected
  if small.any():
    counts = np.append(counts[~small], counts[small].sum())
    probs = np.append(probs[~small], probs[small].sum())
  return testing.chi_square_pvalue(counts, probs)


def _subset_codes(idx, n):
  return np.sum(np.asarray(idx) * n ** np.arange(idx.shape[1])[::-1], axis=1)


@pytest.mark.parametrize("sampler,k", [
    (samplers.volume_sample, 3),
    (samplers.fast_volume_sample, 3),   # k < 2d: rejection down to 2d, then exact steps
    (samplers.fast_volume_sample, 5),   # k >= 2d: rejection only
    (samplers.dpp_volume_sample, 3),
    (samplers.dpp_volume_sample, 5),
])
def test_volume_law_matches_enumeration(sampler, k):
  X = _design()
  n = X.shape[0]
  subsets, dets = exact.enumerate_volume(X, k)
  out = _draw(sampler, X, k)
  idx = np.asarray(out.indices)
  assert np.all(np.diff(idx, axis=1) > 0), "indices must be sorted and distinct"
  codes = _subset_codes(idx, n)
  table = {c: i for i, c in enumerate(_subset_codes(subsets, n))}
  counts = np.bincount([table[c] for c in codes], minlength=len(subsets))
  assert _pooled_pvalue(counts, dets) > 1e-3
  # Exact marginals P(i in S) = l_i + (1 - l_i)(k - d)/(n - d).
  marg = exact.volume_marginals(X, k)
  freq = np.bincount(idx.ravel(), minlength=n) / N_DRAWS
  se = np.sqrt(marg * (1 - marg) / N_DRAWS) + 1e-12
  assert np.all(np.abs(freq - marg) < 5 * se)


def _lvs_reverse(key, X, k):
  return samplers.leveraged_volume_sample(key, X, k, subsample="reverse")


# "reverse" (the paper's Algorithm 1) runs the rejection VS from s = 16 rows to k: for k < 2d it
# finishes with exact steps, for k >= 2d it does not.
@pytest.mark.parametrize("n,k,sampler", [(7, 3, samplers.leveraged_volume_sample),
                                         (5, 4, samplers.leveraged_volume_sample),
                                         (7, 3, _lvs_reverse), (5, 4, _lvs_reverse)])
def test_leveraged_law_matches_enumeration(n, k, sampler):
  X = _design(n=n)
  d = X.shape[1]
  seqs, w = exact.enumerate_leveraged(X, k)
  out = _draw(sampler, X, k)
  idx = np.asarray(out.indices)
  if n ** k <= 400:  # the law over ordered sequences
    counts = np.bincount(_subset_codes(idx, n), minlength=n ** k)
    probs = w
  else:  # the law over multisets (cells: sorted sequences)
    keys, inv = np.unique(np.sort(seqs, axis=1), axis=0, return_inverse=True)
    probs = np.bincount(inv.ravel(), weights=w, minlength=len(keys))
    table = {tuple(r): i for i, r in enumerate(keys)}
    counts = np.bincount([table[tuple(r)] for r in np.sort(idx, axis=1)], minlength=len(keys))
  assert _pooled_pvalue(counts, probs) > 1e-3
  # Each position has marginal l_j / d, so the expected count of j is k l_j / d.
  lev = exact.leverage_scores_np(X)
  marg = exact.leveraged_marginals(X, k)
  np.testing.assert_allclose(marg, lev / d, atol=1e-12)
  freq = np.bincount(idx.ravel(), minlength=n) / (N_DRAWS * k)
  se = np.sqrt(marg * (1 - marg) / N_DRAWS)
  assert np.all(np.abs(freq - marg) < 5 * se)
  # Weights are 1/q at the drawn indices.
  np.testing.assert_allclose(np.asarray(out.weights), d / lev[idx], rtol=1e-10)


@pytest.mark.parametrize("n,k", [(7, 3), (5, 4)])
def test_rejection_acceptance_rate(n, k):
  d = 2
  s = samplers.default_oversample(k, d)
  assert s == 16  # max(k, 4 d^2)
  p = samplers.acceptance_probability(d, s)
  assert p == pytest.approx(1 - 1 / 16)  # prod_{j<d} (1 - j/s)
  assert samplers.acceptance_probability(3, 6) == pytest.approx((5 / 6) * (4 / 6))
  # Rounds per sample are geometric(p): mean 1/p = 1.0667 (48 standard errors away from 1).
  rounds = np.asarray(_draw(samplers.leveraged_volume_sample, _design(n=n), k).proposals)
  se = np.sqrt(1 - p) / p / np.sqrt(rounds.size)
  assert abs(rounds.mean() - 1 / p) < 4.5 * se
  assert rounds.min() == 1


def test_iid_and_uniform_laws():
  X = _design()
  n, d = X.shape
  lev = exact.leverage_scores_np(X)
  out = _draw(samplers.leverage_sample, X, 3)
  counts = np.bincount(_subset_codes(out.indices, n), minlength=n ** 3)
  q = lev / d
  assert _pooled_pvalue(counts, np.einsum("i,j,k->ijk", q, q, q).ravel()) > 1e-3
  np.testing.assert_allclose(np.asarray(out.weights), 1 / (3 * q[np.asarray(out.indices)]))
  out = _draw(samplers.uniform_sample, X, 3)
  subsets, _ = exact.enumerate_volume(X, 3)
  table = {c: i for i, c in enumerate(_subset_codes(subsets, n))}
  counts = np.bincount([table[c] for c in _subset_codes(out.indices, n)], minlength=len(subsets))
  assert _pooled_pvalue(counts, np.ones(len(subsets))) > 1e-3


@pytest.mark.parametrize("sampler", [samplers.volume_sample, samplers.fast_volume_sample,
                                     samplers.dpp_volume_sample, samplers.leveraged_volume_sample])
def test_estimators_unbiased_ztest(sampler):
  X = _design()
  rng = np.random.default_rng(3)
  y = jnp.asarray(np.asarray(X) @ np.array([1.0, -2.0]) + 2 * rng.standard_normal(7))
  out = _draw(sampler, X, 3)
  ws = np.asarray(jax.jit(jax.vmap(
      lambda i, w: estimators.least_squares_estimate(X, y, i, w)))(out.indices, out.weights))
  w_star = np.asarray(estimators.optimal_weights(X, y))
  z = (ws.mean(0) - w_star) / (ws.std(0) / np.sqrt(len(ws)))
  assert np.all(np.abs(z) < 4.5), z


@pytest.mark.parametrize("name", sorted(samplers.SAMPLERS))
def test_vmap_equals_loop_bitwise(name):
  sampler = samplers.SAMPLERS[name]
  X = _design()
  k = 3
  batched = _draw(sampler, X, k)
  keys = _keys(sampler, X, k)
  # The sampled indices and proposal counts agree bit for bit; the float weights 1/q may differ
  # in the last ulp between the batched and unbatched compiled programs.
  for i in range(3):
    one = _single(sampler, k)(keys[i], X)
    np.testing.assert_array_equal(one.indices, batched.indices[i])
    np.testing.assert_array_equal(one.proposals, batched.proposals[i])
    np.testing.assert_allclose(one.weights, batched.weights[i], rtol=1e-12)
  if name in ("leverage", "uniform"):  # op-by-op execution (loop-free samplers)
    with jax.disable_jit():
      eager = sampler(keys[0], X, k)
    np.testing.assert_array_equal(eager.indices, batched.indices[0])


def test_no_retracing_across_keys():
  X = _design()
  counter = testing.TraceCounter(
      lambda key: samplers.leveraged_volume_sample(key, X, 3).indices)
  fn = jax.jit(counter)
  for seed in range(4):
    fn(jax.random.key(seed)).block_until_ready()
  assert counter.count == 1


def test_leverage_scores_and_approximation():
  rng = np.random.default_rng(10)
  X = jnp.asarray(rng.standard_normal((3000, 5)) * rng.exponential(1.0, (3000, 1)))
  lev = samplers.leverage_scores(X)
  np.testing.assert_allclose(lev, exact.leverage_scores_np(X), rtol=1e-9, atol=1e-12)
  assert float(jnp.sum(lev)) == pytest.approx(5.0)
  for jl in (None, 128):
    approx = samplers.approximate_leverage_scores(jax.random.key(11), X, jl_dim=jl)
    ratio = np.asarray(approx / lev)
    assert 0.5 < ratio.min() and ratio.max() < 2.0, (jl, ratio.min(), ratio.max())
    assert abs(np.median(ratio) - 1.0) < 0.2
  # The sampler accepts approximate scores.
  out = samplers.leverage_sample(jax.random.key(12), X, 10, scores=approx)
  assert out.indices.shape == (10,)


def test_prepared_state_gives_same_samples():
  X = _design()
  state = samplers.prepare_leveraged(X)
  keys = _keys(samplers.leveraged_volume_sample, X, 3)
  with_state = jax.jit(lambda key, st: samplers.leveraged_volume_sample(key, X, 3, state=st))
  out = _draw(samplers.leveraged_volume_sample, X, 3)
  np.testing.assert_array_equal(with_state(keys[0], state).indices, out.indices[0])
  np.testing.assert_allclose(state.q, exact.leverage_scores_np(X) / 2, rtol=1e-10)
  assert float(state.logdet_gram) == pytest.approx(np.linalg.slogdet(np.asarray(X.T @ X))[1])


def test_bad_inputs():
  X = _design(n=10, d=3, seed=15)
  key = jax.random.key(0)
  for sampler in samplers.SAMPLERS.values():
    with pytest.raises(ValueError, match="k must be >= d"):
      sampler(key, X, 2)
    with pytest.raises(TypeError, match="k must be a Python int"):
      sampler(key, X, 3.0)
    with pytest.raises(ValueError, match="X contains NaN"):
      sampler(key, X.at[1, 1].set(jnp.nan), 4)
    with pytest.raises(ValueError, match="X contains NaN or inf"):
      sampler(key, X.at[0, 0].set(jnp.inf), 4)
    with pytest.raises(TypeError, match="key must be a typed PRNG key"):
      sampler(0, X, 4)
    with pytest.raises(ValueError, match="X must have rank 2"):
      sampler(key, X[0], 4)
    with pytest.raises(TypeError, match="X must have dtype kind"):
      sampler(key, X.astype(jnp.int32), 4)
  deficient = X.at[:, 2].set(X[:, 0] + X[:, 1])
  for name in ("volume_reverse", "volume_fast", "volume_dpp", "leveraged_volume", "leverage"):
    with pytest.raises(ValueError, match="full column rank"):
      samplers.SAMPLERS[name](key, deficient, 4)
  with pytest.raises(ValueError, match="k must be <= n"):
    samplers.fast_volume_sample(key, X, 11)
  with pytest.raises(ValueError, match="oversample must be an int >= k"):
    samplers.leveraged_volume_sample(key, X, 5, oversample=4)
  with pytest.raises(ValueError, match="state must be prepare_leveraged"):
    samplers.leveraged_volume_sample(key, X, 5, state=samplers.prepare_leveraged(X[:9]))
  y = jnp.ones(10)
  idx = jnp.arange(4)
  with pytest.raises(ValueError, match="y must have one entry per row"):
    estimators.least_squares_estimate(X, y[:9], idx)
  with pytest.raises(ValueError, match="y contains NaN"):
    estimators.least_squares_estimate(X, y.at[0].set(jnp.nan), idx)
  with pytest.raises(ValueError, match="weights must have shape"):
    estimators.least_squares_estimate(X, y, idx, jnp.ones(3))
  with pytest.raises(TypeError, match="indices must have dtype kind"):
    estimators.least_squares_estimate(X, y, idx.astype(float))

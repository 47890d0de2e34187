"""Bad inputs to the public functions of robust_mf and volume_sampling: a clear error naming the
argument (or an honest NaN), never a finite wrong value (issue 22)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers.robust_mf import baselines, data, rmfnl
from jaxpapers.robust_mf import observations as obs_lib
from jaxpapers.volume_sampling import estimators, samplers

KEY = jax.random.key(0)
ROWS, COLS, VALS = np.array([0, 1, 2, 2]), np.array([0, 1, 1, 2]), np.array([1.0, 2.0, 3.0, 4.0])


def _obs():
  return obs_lib.sparse_observations(ROWS, COLS, VALS, (3, 3))


# ----------------------------------------------------------------------------- robust_mf


def test_sparse_observations_bad_inputs():
  with pytest.raises(ValueError, match=r"duplicate entry: position 3 repeats \(row, col\) = "
                                       r"\(1, 1\) of position 1"):
    obs_lib.sparse_observations([0, 1, 2, 1], [0, 1, 1, 1], [1.0, 2.0, 3.0, 4.0], (3, 3))
  with pytest.raises(ValueError, match="values contains NaN or inf"):
    obs_lib.sparse_observations(ROWS, COLS, [1.0, np.inf, 3.0, 4.0], (3, 3))
  with pytest.raises(ValueError, match="rows must have rank 1"):
    obs_lib.sparse_observations(ROWS[:, None], COLS, VALS, (3, 3))
  with pytest.raises(TypeError, match="values must have dtype"):
    obs_lib.sparse_observations(ROWS, COLS, np.array(["a", "b", "c", "d"]), (3, 3))
  with pytest.raises(ValueError, match="shape must be positive"):
    obs_lib.sparse_observations(ROWS, COLS, VALS, (0, 3))
  with pytest.raises(ValueError, match="values must have rank 2"):
    obs_lib.dense_observations(np.ones(3), np.ones(3))
  with pytest.raises(ValueError, match="mask must have shape"):
    obs_lib.dense_observations(np.ones((3, 3)), np.ones((3, 2)))


def test_metrics_refuse_out_of_range_and_mismatched_factors():
  obs = _obs()
  u, v = jnp.ones((3, 2)), jnp.ones((3, 2))
  # built directly (bypassing sparse_observations): JAX would clamp index 5 to 2.
  bad = obs_lib.SparseObservations(jnp.asarray([0, 5]), jnp.asarray([0, 1]),
                                   jnp.asarray([1.0, 2.0]), (3, 3))
  for fn in (obs_lib.rmse, obs_lib.mae, obs_lib.predict):
    with pytest.raises(ValueError, match=r"obs.rows must lie in \[0, 3\).*got 5 at position 1"):
      fn(bad, u, v)
    with pytest.raises(ValueError, match="u must have m = 3 rows"):
      fn(obs, jnp.ones((2, 2)), v)
    with pytest.raises(ValueError, match="v must have n = 3 rows"):
      fn(obs, u, jnp.ones((4, 2)))
    with pytest.raises(ValueError, match="u and v must have the same rank"):
      fn(obs, u, jnp.ones((3, 1)))
    with pytest.raises(ValueError, match="u must have rank 2"):
      fn(obs, jnp.ones(3), v)
    with pytest.raises(TypeError, match="u must have dtype"):
      fn(obs, jnp.ones((3, 2), jnp.int32), v)
  neg = obs_lib.SparseObservations(jnp.asarray([0, 1]), jnp.asarray([-1, 1]),
                                   jnp.asarray([1.0, 2.0]), (3, 3))
  with pytest.raises(ValueError, match="obs.cols must lie in"):
    obs_lib.rmse(neg, u, v)
  # NaN factors give an honest NaN, not a finite number
  assert np.isnan(float(obs_lib.rmse(obs, u.at[0, 0].set(jnp.nan), v)))
  np.testing.assert_allclose(obs_lib.rmse(obs, u, v),
                             np.sqrt(np.mean((VALS - 2.0) ** 2)), rtol=1e-6)


def test_fit_and_baselines_bad_inputs():
  obs = _obs()
  bad = obs_lib.SparseObservations(jnp.asarray([0, 5]), jnp.asarray([0, 1]),
                                   jnp.asarray([1.0, 2.0]), (3, 3))
  for fn in (lambda o: rmfnl.fit(KEY, o, 1), lambda o: baselines.fit_l2(KEY, o, 1),
             lambda o: rmfnl.spectral_init(KEY, o, 1)):
    with pytest.raises(ValueError, match="obs.rows must lie in"):
      fn(bad)
  nan = obs_lib.SparseObservations(jnp.asarray([0, 1]), jnp.asarray([0, 1]),
                                   jnp.asarray([1.0, jnp.nan]), (3, 3))
  with pytest.raises(ValueError, match="observations.values contains NaN"):
    rmfnl.fit(KEY, nan, 1)
  for key in (0, 1.5, None, np.zeros(3)):
    with pytest.raises(TypeError, match="key must be a jax.random.key"):
      rmfnl.fit(key, obs, 1)
    with pytest.raises(TypeError, match="key must be a jax.random.key"):
      baselines.fit_l2(key, obs, 1)
  for lam in (np.inf, np.nan, 0.0):
    with pytest.raises(ValueError, match="lam must be a finite number > 0"):
      rmfnl.fit(KEY, obs, 1, lam=lam)
  with pytest.raises(ValueError, match="theta must be a finite number > 0"):
    rmfnl.fit(KEY, obs, 1, "lsp", theta=np.nan)
  with pytest.raises(TypeError, match="rank must be an int"):
    rmfnl.fit(KEY, obs, np.float64(1.0))
  with pytest.raises(ValueError, match="rank must be in"):
    rmfnl.fit(KEY, obs, np.int64(4))
  with pytest.raises(ValueError, match=r"init\[1\] must have shape"):
    rmfnl.fit(KEY, obs, 1, init=(np.zeros((3, 1)), np.zeros((3, 2))))
  with pytest.raises(ValueError, match=r"init\[0\] contains NaN"):
    rmfnl.fit(KEY, obs, 1, init=(np.full((3, 1), np.nan), np.zeros((3, 1))))


def test_synthetic_and_outlier_bad_inputs():
  for kw, msg in ((dict(m=0, n=5), "m must be a positive int"),
                  (dict(m=5, n=5, rank=6), "rank must be <="),
                  (dict(m=5, n=5, density=1.5), "density must be in"),
                  (dict(m=5, n=5, outlier_ratio=np.nan), "outlier_ratio must be in")):
    with pytest.raises(ValueError, match=msg):
      data.synthetic(KEY, **{"rank": 2, **kw})
  with pytest.raises(ValueError, match="ratio must be in"):
    data.inject_outliers(KEY, _obs(), np.nan, 1.0, 5.0)
  with pytest.raises(ValueError, match="need high > low"):
    data.inject_outliers(KEY, _obs(), 0.1, 5.0, np.nan)


# ----------------------------------------------------------------------------- volume_sampling

X = jnp.asarray(np.random.default_rng(0).normal(size=(12, 3)), jnp.float32)
Y = jnp.asarray(np.random.default_rng(1).normal(size=(12,)), jnp.float32)
SAMPLERS = [samplers.volume_sample, samplers.fast_volume_sample, samplers.dpp_volume_sample,
            samplers.leveraged_volume_sample, samplers.leverage_sample, samplers.uniform_sample,
            lambda k, x, s: samplers.ridge_volume_sample(k, x, s, 1.0)]


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_samplers_bad_design(sampler):
  with pytest.raises(ValueError, match="X contains NaN or inf"):
    sampler(KEY, X.at[2, 1].set(jnp.nan), 4)
  with pytest.raises(ValueError, match="X contains NaN or inf"):
    sampler(KEY, X.at[0, 0].set(jnp.inf), 4)
  with pytest.raises(ValueError, match="X must have rank 2"):
    sampler(KEY, X[:, 0], 4)
  with pytest.raises(TypeError, match="X must have dtype kind"):
    sampler(KEY, X.astype(jnp.int32), 4)
  with pytest.raises(TypeError, match="key must be a typed PRNG key"):
    sampler(0, X, 4)
  with pytest.raises(TypeError, match="k must be a Python int"):
    sampler(KEY, X, 4.0)
  with pytest.raises(ValueError, match="k must be"):
    sampler(KEY, X, 0)


def test_empty_and_rank_deficient_designs():
  with pytest.raises(ValueError, match="at least as many rows as columns|non-empty"):
    samplers.volume_sample(KEY, jnp.zeros((0, 3)), 0)
  with pytest.raises(ValueError, match="non-empty"):
    samplers.ridge_volume_sample(KEY, jnp.zeros((0, 3)), 1, 1.0)
  deficient = X.at[:, 2].set(X[:, 0])
  for fn in (samplers.volume_sample, samplers.leveraged_volume_sample, samplers.leverage_scores):
    with pytest.raises(ValueError, match="full column rank"):
      fn(KEY, deficient, 4) if fn is not samplers.leverage_scores else fn(deficient)


def test_estimators_bad_inputs():
  idx = jnp.arange(5)
  with pytest.raises(ValueError, match="indices must lie in"):
    estimators.least_squares_estimate(X, Y, jnp.asarray([0, 12]))
  with pytest.raises(ValueError, match="indices must have rank 1"):
    estimators.least_squares_estimate(X, Y, idx[None])
  with pytest.raises(TypeError, match="indices must have dtype"):
    estimators.least_squares_estimate(X, Y, idx.astype(jnp.float32))
  with pytest.raises(ValueError, match="weights contains NaN"):
    estimators.least_squares_estimate(X, Y, idx, jnp.full((5,), jnp.nan))
  with pytest.raises(ValueError, match="weights must have shape"):
    estimators.least_squares_estimate(X, Y, idx, jnp.ones((4,)))
  with pytest.raises(ValueError, match="y contains NaN"):
    estimators.least_squares_estimate(X, Y.at[3].set(jnp.nan), idx)
  with pytest.raises(ValueError, match="y must have one entry per row"):
    estimators.least_squares_estimate(X, Y[:5], idx)
  with pytest.raises(ValueError, match="w must have shape"):
    estimators.square_loss(X, Y, jnp.ones(4))
  with pytest.raises(ValueError, match="X contains NaN"):
    estimators.optimal_weights(X.at[0, 0].set(jnp.inf), Y)
  # NaN weights (e.g. a leveraged sample that hit max_rounds under jit) stay NaN under jit
  est = jax.jit(estimators.least_squares_estimate)(X, Y, idx, jnp.full((5,), jnp.nan))
  assert np.all(np.isnan(np.asarray(est)))


def test_approximate_leverage_scores_bad_inputs():
  with pytest.raises(ValueError, match="sketch_size must be >= d"):
    samplers.approximate_leverage_scores(KEY, X, sketch_size=2)
  with pytest.raises(ValueError, match="jl_dim must be >= 1"):
    samplers.approximate_leverage_scores(KEY, X, jl_dim=0)
  with pytest.raises(ValueError, match="scores contains NaN"):
    samplers.leverage_sample(KEY, X, 4, scores=jnp.full((12,), jnp.nan))

"""Preconditioned LOVE: variances against dense Cholesky, its self-measured error, the CG fallback."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers.bbmm import kernels, likelihood, operators, predict

pytestmark = pytest.mark.usefixtures("x64")  # float64 for this module only


def _problem(kernel, d, noise, n=500, m=100):
  rng = np.random.default_rng(1)
  x = rng.uniform(size=(n + m, d))
  xs, x = jnp.asarray(x[n:]), jnp.asarray(x[:n])
  y = jnp.asarray(np.sin(3 * np.asarray(x)).sum(1) + np.sqrt(noise) * rng.standard_normal(n))
  p = operators.GPParams(kernels.init_params(kernel, d, 0.5, 1.0, jnp.float64),
                         jnp.asarray(noise), jnp.zeros(()))
  op = operators.ExactOperator(kernel)
  _, var_ref = predict.cholesky_predict(op, p, x, y, xs, zero_mean=True)
  return op, p, x, y, xs, np.asarray(var_ref)


def _rel(v, ref):
  return np.abs(np.asarray(v) - ref) / ref


@pytest.mark.parametrize("noise", [0.1, 0.01, 0.001])
def test_preconditioned_love_within_one_percent_where_it_says_so(noise):
  # RBF on [0, 1]^3, n = 500, rank-150 preconditioner, 40 Lanczos steps. Plain LOVE (Lanczos on
  # K̂ itself) is 10–1000 % off at these noise levels; the preconditioned cache is within 1 %.
  op, p, x, y, xs, var_ref = _problem("rbf", 3, noise)
  settings = likelihood.Settings(precond_rank=150)
  cache = predict.prediction_cache(op, p, x, y, settings, love_rank=40, zero_mean=True)
  rel = _rel(predict.love_variance(op, cache, xs), var_ref)
  assert rel.max() < 1e-2 and rel.mean() < 1e-3
  # The error measured at the training check points is the same order as the real one.
  assert float(cache.love.error) < 1e-2
  assert 0.1 < float(cache.love.error) / rel.mean() < 10.0
  # predictive_variance then takes the LOVE branch: the same numbers.
  np.testing.assert_array_equal(predict.predictive_variance(op, cache, xs, settings),
                                predict.love_variance(op, cache, xs))


@pytest.mark.parametrize("kernel,d,rank,noise", [("matern52", 3, 150, 0.01),
                                                 ("rbf", 6, 20, 0.001)])
def test_predictive_variance_falls_back_to_cg_when_love_is_off(kernel, d, rank, noise):
  # A rougher kernel / weak preconditioner: LOVE is > 1 % off, knows it, and the fallback (CG
  # variances) is within 1 % of Cholesky.
  op, p, x, y, xs, var_ref = _problem(kernel, d, noise)
  settings = likelihood.Settings(precond_rank=rank)
  cache = predict.prediction_cache(op, p, x, y, settings, love_rank=20, zero_mean=True)
  assert _rel(predict.love_variance(op, cache, xs), var_ref).mean() > 1e-2
  assert float(cache.love.error) > 1e-2
  out = predict.predictive_variance(op, cache, xs, settings, tol=1e-6)
  np.testing.assert_array_equal(out, predict.exact_variance(op, cache, xs, settings, tol=1e-6))
  assert _rel(out, var_ref).max() < 1e-2


def test_predictive_variance_jit_equals_eager_and_cache_builds_under_jit():
  op, p, x, y, xs, _ = _problem("rbf", 3, 0.01, n=200, m=20)
  settings = likelihood.Settings(precond_rank=60)
  cache = predict.prediction_cache(op, p, x, y, settings, love_rank=20, zero_mean=True)
  eager = predict.predictive_variance(op, cache, xs, settings)
  jitted = jax.jit(lambda c, z: predict.predictive_variance(op, c, z, settings))(cache, xs)
  np.testing.assert_allclose(jitted, eager, rtol=1e-12, atol=1e-15)
  built = jax.jit(lambda q: predict.prediction_cache(op, q, x, y, settings, love_rank=20,
                                                     zero_mean=True))(p)
  np.testing.assert_allclose(built.love.error, cache.love.error, rtol=1e-6)
  # A cache without LOVE always gives CG variances.
  plain = predict.prediction_cache(op, p, x, y, settings, zero_mean=True)
  np.testing.assert_array_equal(predict.predictive_variance(op, plain, xs, settings),
                                predict.exact_variance(op, plain, xs, settings))


def test_love_arguments_are_checked():
  op, p, x, y, xs, _ = _problem("rbf", 2, 0.1, n=50, m=5)
  with pytest.raises(ValueError, match="love_checks must be >= 1"):
    predict.prediction_cache(op, p, x, y, love_rank=5, love_checks=0)
  with pytest.raises(TypeError, match="love_rank must be an int"):
    predict.prediction_cache(op, p, x, y, love_rank=2.5)
  cache = predict.prediction_cache(op, p, x, y, love_rank=5)
  with pytest.raises(ValueError, match="love_tol must be > 0"):
    predict.predictive_variance(op, cache, xs, love_tol=0.0)
  with pytest.raises(ValueError, match="x_star must have 2 columns"):
    predict.predictive_variance(op, cache, xs[:, :1])

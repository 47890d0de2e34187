"""BBMM fantasies (GPyTorch's get_fantasy_model): conditioning a prediction cache on new
observations by block elimination equals a fresh fit on the concatenated data (float64).
Issue 24 item 5.5."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers.bbmm import fantasy, kernels, likelihood, noise, operators, predict

pytestmark = pytest.mark.usefixtures("x64")

SETTINGS = likelihood.Settings(eval_cg_tol=1e-12, precond_rank=30)


def _data(n, seed):
  kx, ky = jax.random.split(jax.random.key(seed))
  x = jax.random.uniform(kx, (n, 2), jnp.float64)
  y = jnp.sin(6 * x[:, 0]) + jnp.cos(5 * x[:, 1]) + 0.1 * jax.random.normal(ky, (n,))
  return x, y


def _params(noise_val):
  return operators.GPParams(kernels.init_params(("sum", "rbf", "linear"), 2, 0.4, 1.0,
                                                jnp.float64), noise_val, jnp.asarray(0.2))


@pytest.mark.parametrize("materialize", [False, True])
def test_fantasy_equals_a_fresh_fit_on_the_concatenated_data(materialize):
  x, y = _data(120, 0)
  xn, yn = _data(8, 1)
  xs, _ = _data(15, 2)
  op = operators.ExactOperator(("sum", "rbf", "linear"), materialize=materialize)
  p = _params(jnp.asarray(0.05))
  cache = predict.prediction_cache(op, p, x, y, SETTINGS)
  up = fantasy.condition_on_observations(op, cache, xn, yn, SETTINGS)
  assert bool(up.converged)
  xc, yc = jnp.concatenate([x, xn]), jnp.concatenate([y, yn])
  mean_ref, var_ref = predict.cholesky_predict(op, p, xc, yc, xs)
  np.testing.assert_allclose(predict.predictive_mean(op, up.cache, xs), mean_ref, rtol=1e-6,
                             atol=1e-8)
  old_var = predict.exact_variance(op, cache, xs, SETTINGS, tol=1e-12)
  np.testing.assert_allclose(fantasy.fantasy_variance(op, up, cache, xs, old_var), var_ref,
                             rtol=1e-6, atol=1e-9)
  # the updated solve is K̂_cat⁻¹ r_cat, and a fresh-solve variance on the new cache agrees too
  khat = np.asarray(op.dense(op.prepare(p, xc)))
  np.testing.assert_allclose(up.cache.solve, np.linalg.solve(khat, np.asarray(yc) - 0.2),
                             rtol=1e-6, atol=1e-8)
  np.testing.assert_allclose(predict.exact_variance(op, up.cache, xs, SETTINGS, tol=1e-12),
                             var_ref, rtol=1e-6, atol=1e-9)


def test_fantasy_with_per_point_noise_and_a_batch_of_fantasies_by_vmap():
  x, y = _data(100, 3)
  xn, _ = _data(6, 4)
  xs, _ = _data(10, 5)
  d = 0.02 + 0.1 * x[:, 0]
  dn = 0.03 + 0.1 * xn[:, 1]
  op = noise.heteroscedastic_operator(("sum", "rbf", "linear"))
  p = _params(d)
  cache = predict.prediction_cache(op, p, x, y, SETTINGS)
  yns = jax.random.normal(jax.random.key(7), (3, 6), jnp.float64)  # three fantasy targets
  cond = jax.vmap(lambda yy: fantasy.condition_on_observations(op, cache, xn, yy, SETTINGS,
                                                               noise_new=dn).cache.solve)
  solves = cond(yns)
  old_var = predict.exact_variance(op, cache, xs, SETTINGS, tol=1e-12)
  xc = jnp.concatenate([x, xn])
  pc = p._replace(noise=jnp.concatenate([d, dn]))
  for i in range(3):
    yc = jnp.concatenate([y, yns[i]])
    mean_ref, var_ref = predict.cholesky_predict(op, pc, xc, yc, xs)
    up = fantasy.condition_on_observations(op, cache, xn, yns[i], SETTINGS, noise_new=dn)
    np.testing.assert_allclose(solves[i], up.cache.solve, rtol=1e-9, atol=1e-11)  # vmap == loop
    np.testing.assert_allclose(predict.predictive_mean(op, up.cache, xs), mean_ref, rtol=1e-6,
                               atol=1e-8)
    np.testing.assert_allclose(fantasy.fantasy_variance(op, up, cache, xs, old_var), var_ref,
                               rtol=1e-6, atol=1e-9)


def test_bad_fantasy_inputs_raise():
  x, y = _data(30, 0)
  op = operators.ExactOperator(("sum", "rbf", "linear"))
  cache = predict.prediction_cache(op, _params(jnp.asarray(0.1)), x, y)
  with pytest.raises(ValueError, match=r"x_new must have shape \(m >= 1, 2\)"):
    fantasy.condition_on_observations(op, cache, jnp.ones((3, 3)), jnp.ones(3))
  with pytest.raises(ValueError, match=r"y_new must have shape \(3\), got \(4,\)"):
    fantasy.condition_on_observations(op, cache, jnp.ones((3, 2)), jnp.ones(4))
  with pytest.raises(ValueError, match="y_new contains NaN"):
    fantasy.condition_on_observations(op, cache, jnp.ones((3, 2)), jnp.array([1.0, jnp.nan, 0]))
  with pytest.raises(ValueError, match="noise_new is only for a DiagonalNoiseOperator"):
    fantasy.condition_on_observations(op, cache, jnp.ones((3, 2)), jnp.ones(3),
                                      noise_new=jnp.ones(3))
  nop = noise.fixed_noise_operator(("sum", "rbf", "linear"))
  ncache = predict.prediction_cache(nop, _params(jnp.full((30,), 0.1)), x, y)
  with pytest.raises(ValueError, match="noise_new must be given"):
    fantasy.condition_on_observations(nop, ncache, jnp.ones((3, 2)), jnp.ones(3))
  with pytest.raises(ValueError, match="noise_new must be finite and > 0"):
    fantasy.condition_on_observations(nop, ncache, jnp.ones((3, 2)), jnp.ones(3),
                                      noise_new=jnp.array([0.1, 0.0, 0.1]))
  with pytest.raises(TypeError, match="operator must be an ExactOperator"):
    fantasy.condition_on_observations(operators.SGPROperator("rbf"), cache, x[:2], y[:2])
  up = fantasy.condition_on_observations(op, cache, x[:2] + 0.01, y[:2])
  with pytest.raises(ValueError, match=r"old_variance must have shape \(4\)"):
    fantasy.fantasy_variance(op, up, cache, x[:4], jnp.ones(3))

"""BBMM as a NumPyro distribution: log_prob / gradients vs NumPyro's dense MVN, sampling, NUTS."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro.infer import MCMC, NUTS

from jaxpapers import bbmm
from jaxpapers.bbmm import kernels, likelihood, operators

N = 30


pytestmark = pytest.mark.usefixtures("x64")  # float64 for the whole module (conftest)


def _problem(n=N):
  kx, ky = jax.random.split(jax.random.key(0))
  x = jax.random.uniform(kx, (n, 2), jnp.float64)
  y = jnp.sin(6 * x[:, 0]) + jnp.cos(4 * x[:, 1]) + 0.1 * jax.random.normal(ky, (n,))
  return x, y


def _params(theta):
  """Hyperparameters from a flat vector (lengthscales, scale, noise) for scalar gradients."""
  return operators.GPParams(kernels.KernelParams(theta[:2], theta[2]), theta[3],
                            jnp.zeros((), theta.dtype))


THETA = (0.3, 0.5, 1.2, 0.05)  # lengthscales, scale, noise; arrays are built under float64
LOC = 0.2


def _dense_log_prob(theta, loc, x, y):
  op = operators.ExactOperator("rbf")
  khat = op.dense(op.prepare(_params(theta), x))
  return dist.MultivariateNormal(jnp.broadcast_to(loc, y.shape), covariance_matrix=khat).log_prob(y)


def _bbmm_log_prob(theta, loc, x, y, settings, method):
  d = bbmm.BBMMMultivariateNormal(loc, _params(theta), x, operators.ExactOperator("rbf"), settings,
                                  method=method, probe_key=3)
  return d.log_prob(y)


def test_cholesky_path_log_prob_and_gradients_equal_numpyro_mvn():
  x, y = _problem()
  theta = jnp.asarray(THETA)
  ref, (g_theta, g_loc, g_x) = jax.jit(jax.value_and_grad(_dense_log_prob, argnums=(0, 1, 2)))(
      theta, LOC, x, y)
  fn = lambda t, m, xx: _bbmm_log_prob(t, m, xx, y, likelihood.Settings(), "cholesky")
  val, (b_theta, b_loc, b_x) = jax.jit(jax.value_and_grad(fn, argnums=(0, 1, 2)))(theta, LOC, x)
  assert val.dtype == jnp.float64
  np.testing.assert_allclose(val, ref, rtol=1e-10)
  np.testing.assert_allclose(b_theta, g_theta, rtol=1e-8)
  np.testing.assert_allclose(b_loc, g_loc, rtol=1e-8)
  np.testing.assert_allclose(b_x, g_x, rtol=1e-7, atol=1e-9)


def test_bbmm_path_log_prob_tight_and_gradient_agrees_with_numpyro_mvn():
  # With a full-rank pivoted-Cholesky preconditioner P̂ = K̂ the log-determinant is exact (the SLQ
  # term vanishes) and K̂⁻¹ r is exact up to cg_tol, so the value agrees to round-off; the
  # hyperparameter gradient keeps the Hutchinson noise of the trace term, O(1/√probes).
  x, y = _problem()
  settings = likelihood.Settings(num_probes=4000, num_lanczos=4, min_lanczos=0, precond_rank=N,
                                 cg_tol=1e-10)
  theta = jnp.asarray(THETA)
  ref, (g_theta, g_loc) = jax.jit(jax.value_and_grad(_dense_log_prob, argnums=(0, 1)))(
      theta, LOC, x, y)
  fn = lambda t, m: _bbmm_log_prob(t, m, x, y, settings, "bbmm")
  val, (b_theta, b_loc) = jax.jit(jax.value_and_grad(fn, argnums=(0, 1)))(theta, LOC)
  np.testing.assert_allclose(val, ref, rtol=1e-8)
  np.testing.assert_allclose(b_loc, g_loc, rtol=1e-7)  # the mean gradient needs only the solve
  err = np.linalg.norm(np.asarray(b_theta) - np.asarray(g_theta)) / np.linalg.norm(g_theta)
  assert err < 1e-2, (b_theta, g_theta)


def test_batched_values_and_samples_have_the_right_law():
  x, _ = _problem(8)
  p = _params(jnp.asarray(THETA))
  d = bbmm.BBMMMultivariateNormal(jnp.arange(8.0) / 8, p, x, method="cholesky")
  assert d.event_shape == (8,) and d.batch_shape == ()
  samples = d.sample(jax.random.key(1), (20000,))
  assert samples.shape == (20000, 8)
  cov = np.asarray(d.covariance_matrix)
  np.testing.assert_allclose(np.cov(np.asarray(samples).T), cov, atol=0.05 * cov.max())
  np.testing.assert_allclose(samples.mean(0), d.mean, atol=0.05)
  np.testing.assert_allclose(d.variance, np.diag(cov), rtol=1e-12)
  lp = d.log_prob(samples[:6].reshape(2, 3, 8))
  ref = dist.MultivariateNormal(d.mean, covariance_matrix=d.covariance_matrix).log_prob(
      samples[:6].reshape(2, 3, 8))
  assert lp.shape == (2, 3)
  np.testing.assert_allclose(lp, ref, rtol=1e-10)


def test_short_nuts_run_on_hyperparameters_gives_finite_samples():
  x, y = _problem(16)
  settings = likelihood.Settings(num_probes=4, num_lanczos=10, precond_rank=4, cg_tol=1e-4)

  def model(y):
    ls = numpyro.sample("lengthscale", dist.LogNormal(jnp.log(0.3), 0.5))
    scale = numpyro.sample("scale", dist.LogNormal(0.0, 0.5))
    noise = numpyro.sample("noise", dist.LogNormal(jnp.log(0.05), 0.5))
    p = operators.GPParams(kernels.KernelParams(jnp.broadcast_to(ls, (2,)), scale), noise,
                           jnp.zeros(()))
    numpyro.sample("y", bbmm.BBMMMultivariateNormal(0.0, p, x, settings=settings), obs=y)

  mcmc = MCMC(NUTS(model, max_tree_depth=3), num_warmup=10, num_samples=10, progress_bar=False)
  mcmc.run(jax.random.key(0), y)
  samples = mcmc.get_samples()
  for name in ("lengthscale", "scale", "noise"):
    assert samples[name].shape == (10,)
    assert np.all(np.isfinite(samples[name])) and np.all(samples[name] > 0)
  # The chain moved (NUTS accepted proposals) and stayed in a plausible range.
  assert np.unique(np.asarray(samples["noise"])).size > 1
  assert 0.003 < float(np.median(samples["noise"])) < 1.0


def test_bad_arguments_name_the_argument():
  x, y = _problem(10)
  p = _params(jnp.asarray(THETA))
  with pytest.raises(ValueError, match="loc must be a scalar or have shape"):
    bbmm.BBMMMultivariateNormal(jnp.zeros(9), p, x)
  with pytest.raises(ValueError, match="method"):
    bbmm.BBMMMultivariateNormal(0.0, p, x, method="lu")
  with pytest.raises(ValueError, match="params.noise"):
    bbmm.BBMMMultivariateNormal(0.0, p._replace(noise=jnp.asarray(-1.0)), x)
  with pytest.raises(ValueError, match="settings.num_probes"):
    bbmm.BBMMMultivariateNormal(0.0, p, x, settings=likelihood.Settings(num_probes=0))
  d = bbmm.BBMMMultivariateNormal(0.0, p, x)
  with pytest.raises(ValueError, match=r"value must have shape \(\.\.\., 10\)"):
    d.log_prob(jnp.zeros(9))
  with pytest.raises(TypeError, match="value must have dtype"):
    d.log_prob(jnp.zeros(10, jnp.int32))

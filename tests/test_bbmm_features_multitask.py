"""BBMM multitask GP (intrinsic coregionalisation, K̂ = B ⊗ K_X + diag(σ²) ⊗ I) against dense
float64 math on the full Tn × Tn matrix. Issue 24 item 5.4."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers._src import testing
from jaxpapers.bbmm import kernels, likelihood, multitask, operators, predict, train

pytestmark = pytest.mark.usefixtures("x64")

T, RANK = 3, 2
SPEC = ("sum", "rbf", "periodic")


def _problem(n=100):
  kx, ky = jax.random.split(jax.random.key(0))
  x = jax.random.uniform(kx, (n, 2), jnp.float64)
  f = jnp.sin(5 * x[:, 0]) + x[:, 1]
  y = jnp.stack([f, 0.5 * f + jnp.cos(4 * x[:, 1]), -f], 1)
  y = y + 0.1 * jax.random.normal(ky, y.shape, jnp.float64)
  p = multitask.init_params(jax.random.key(1), SPEC, 2, T, RANK, lengthscale=0.4,
                            dtype=jnp.float64)
  p = operators.GPParams(p.kernel, jnp.array([0.02, 0.05, 0.1]), jnp.asarray(0.1))
  return x, y, p


def _dense(p, x):
  kx, tc = p.kernel
  b = np.asarray(tc.factor) @ np.asarray(tc.factor).T + np.diag(np.asarray(tc.diag))
  k = np.asarray(kernels.kernel_matrix(SPEC, kx, x))
  return np.kron(b, k) + np.diag(np.repeat(np.asarray(p.noise), x.shape[0])), b


def test_operator_products_equal_the_dense_kronecker_matrix():
  x, y, p = _problem(40)
  op = multitask.MultitaskOperator(SPEC, T, RANK, block_size=16)
  state = op.prepare(p, x)
  dense, b = _dense(p, x)
  np.testing.assert_allclose(op.dense(state), dense, rtol=1e-12, atol=1e-14)
  v = jax.random.normal(jax.random.key(3), (T * 40, 5), jnp.float64)
  np.testing.assert_allclose(op.matmul(state, v), dense @ np.asarray(v), rtol=1e-11, atol=1e-12)
  kpart = dense - float(np.min(p.noise)) * np.eye(T * 40)  # what the preconditioner factors
  np.testing.assert_allclose(op.kernel_diag(state), np.diag(kpart), rtol=1e-12)
  for i in (0, 41, 119):
    np.testing.assert_allclose(op.kernel_row(state, i), kpart[i], rtol=1e-12, atol=1e-14)
  # task-major layout: entry t·n + i is task t at x_i
  np.testing.assert_array_equal(multitask.flatten_targets(y)[40:80], y[:, 1])
  np.testing.assert_allclose(multitask.task_covariance(p.kernel[1]), b, rtol=1e-12)


def test_bbmm_mll_and_gradient_equal_dense_cholesky_and_never_form_the_full_matrix():
  n = 100
  x, y, p = _problem(n)
  yv = multitask.flatten_targets(y)
  op = multitask.MultitaskOperator(SPEC, T, RANK, block_size=64)
  dense, _ = _dense(p, x)
  r = np.asarray(yv) - 0.1
  want = (-0.5 * r @ np.linalg.solve(dense, r) - 0.5 * np.linalg.slogdet(dense)[1]
          - 0.5 * T * n * np.log(2 * np.pi))
  ref, g_ref = jax.value_and_grad(lambda q: likelihood.cholesky_mll(op, q, x, yv))(p)
  np.testing.assert_allclose(ref, want, rtol=1e-10)
  # exact preconditioner (rank = T n): value and variance-reduced gradient exact in one draw
  settings = likelihood.Settings(cg_tol=1e-10, num_probes=2, precond_rank=T * n,
                                 grad_estimator="variance_reduced")
  val, g = jax.jit(jax.value_and_grad(
      lambda q: likelihood.bbmm_mll(jax.random.key(0), op, q, x, yv, settings)[0]))(p)
  np.testing.assert_allclose(val, ref, rtol=1e-8)
  flat = lambda t: np.concatenate([np.ravel(a) for a in jax.tree.leaves(t)])
  err = np.linalg.norm(flat(g) - flat(g_ref)) / np.linalg.norm(flat(g_ref))
  assert err < 1e-6, err
  # the BBMM path (low-rank preconditioner) has no Tn × Tn array anywhere in its jaxpr
  low = likelihood.Settings(num_probes=4, precond_rank=10)
  jaxpr = str(jax.make_jaxpr(jax.value_and_grad(
      lambda q: likelihood.bbmm_mll(jax.random.key(0), op, q, x, yv, low)[0]))(p))
  assert f"f64[{T * n},{T * n}]" not in jaxpr
  assert f"f64[{n},{n}]" not in jaxpr  # nor K_X itself (block_size 64 < n)


def test_per_task_predictions_equal_dense_math():
  x, y, p = _problem(60)
  yv = multitask.flatten_targets(y)
  xs = jax.random.uniform(jax.random.key(5), (7, 2), jnp.float64)
  op = multitask.MultitaskOperator(SPEC, T, RANK)
  settings = likelihood.Settings(eval_cg_tol=1e-11, precond_rank=40)
  cache = predict.prediction_cache(op, p, x, yv, settings)
  mean, var = multitask.predict(op, cache, xs, settings, tol=1e-11)
  assert mean.shape == var.shape == (7, T)
  dense, b = _dense(p, x)
  cross = np.kron(b, np.asarray(kernels.kernel_matrix(SPEC, p.kernel[0], x, xs)))  # (Tn, Tk)
  want_mean = 0.1 + cross.T @ np.linalg.solve(dense, np.asarray(yv) - 0.1)
  prior = np.kron(np.diag(b), np.diag(np.asarray(kernels.kernel_matrix(SPEC, p.kernel[0], xs))))
  want_var = prior - np.einsum("ij,ij->j", cross, np.linalg.solve(dense, cross))
  np.testing.assert_allclose(mean, want_mean.reshape(T, 7).T, rtol=1e-8, atol=1e-10)
  np.testing.assert_allclose(var, want_var.reshape(T, 7).T, rtol=1e-7, atol=1e-10)
  # the generic dense reference gives the same (task-major flattened)
  cm, cv = predict.cholesky_predict(op, p, x, yv, xs)
  np.testing.assert_allclose(cm, want_mean, rtol=1e-9, atol=1e-11)
  np.testing.assert_allclose(cv, want_var, rtol=1e-8, atol=1e-11)
  # LOVE's check points are rows of x (n of them), not of the (T·n,) targets.
  lc = predict.prediction_cache(op, p, x, yv, settings, love_rank=40)
  assert np.isfinite(float(lc.love.error))
  np.testing.assert_allclose(predict.predictive_variance(op, lc, xs, settings, tol=1e-10),
                             want_var, rtol=1e-2, atol=1e-8)
  # Batched generic variances keep the task-major order across batches (3 batches of 3 rows).
  np.testing.assert_allclose(predict.exact_variance(op, cache, xs, settings, tol=1e-11,
                                                    batch_size=3), want_var, rtol=1e-7, atol=1e-10)


def test_vmap_over_three_task_covariances_equals_loop():
  x, y, p = _problem(30)
  yv = multitask.flatten_targets(y)
  op = multitask.MultitaskOperator(SPEC, T, RANK)
  factors = jax.random.normal(jax.random.key(8), (3, T, RANK), jnp.float64)

  def fn(w):
    q = operators.GPParams((p.kernel[0], p.kernel[1]._replace(factor=w)), p.noise, p.mean)
    return likelihood.cholesky_mll(op, q, x, yv)

  testing.assert_vmap_matches_loop(fn, (factors,), rtol=1e-11, atol=1e-11)


def test_bad_multitask_inputs_raise_naming_the_argument():
  x, y, p = _problem(20)
  yv = multitask.flatten_targets(y)
  op = multitask.MultitaskOperator(SPEC, T, RANK)
  with pytest.raises(ValueError, match=r"y must have num_tasks \* n = 3 \* 20 = 60 entries"):
    likelihood.cholesky_mll(op, p, x, y[:, 0])
  with pytest.raises(ValueError, match=r"params.noise must have shape \(3\)"):
    likelihood.cholesky_mll(op, p._replace(noise=jnp.asarray(0.1)), x, yv)
  with pytest.raises(ValueError, match=r"params.noise must be finite and > 0"):
    likelihood.bbmm_mll(jax.random.key(0), op, p._replace(noise=jnp.array([0.1, -1.0, 0.1])),
                        x, yv)
  tc = p.kernel[1]
  with pytest.raises(ValueError, match=r"params.kernel\[1\].factor must have shape \(3, 2\)"):
    likelihood.cholesky_mll(op, p._replace(kernel=(p.kernel[0], tc._replace(
        factor=jnp.ones((3, 1))))), x, yv)
  with pytest.raises(ValueError, match=r"params.kernel\[1\].factor contains NaN"):
    predict.prediction_cache(op, p._replace(kernel=(p.kernel[0], tc._replace(
        factor=tc.factor.at[0, 0].set(jnp.nan)))), x, yv)
  with pytest.raises(ValueError, match=r"params.kernel\[1\].diag must be finite and > 0"):
    likelihood.cholesky_mll(op, p._replace(kernel=(p.kernel[0], tc._replace(
        diag=jnp.array([1.0, 0.0, 1.0])))), x, yv)
  with pytest.raises(TypeError, match="TaskCovariance"):
    likelihood.cholesky_mll(op, p._replace(kernel=p.kernel[0]), x, yv)
  with pytest.raises(ValueError, match="rank must be an int >= 1"):
    multitask.MultitaskOperator(SPEC, T, 0)
  with pytest.raises(ValueError, match="MultitaskOperator has parameters without a sign"):
    train.fit(jax.random.key(0), op, p, x, yv, num_steps=1)
  with pytest.raises(ValueError, match="MultitaskOperator has parameters without a sign"):
    train.make_fit(op, num_steps=1)
  cache = predict.prediction_cache(op, p, x, yv)
  with pytest.raises(ValueError, match=r"x_star must have shape \(k >= 1, 2\)"):
    multitask.predict(op, cache, jnp.ones((3, 3)))

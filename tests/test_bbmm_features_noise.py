"""BBMM: per-point noise -- fixed (GPyTorch's FixedNoiseGaussianLikelihood) and heteroscedastic --
against dense float64 Cholesky math. Issue 24 item 5.2."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers._src import testing
from jaxpapers.bbmm import kernels, likelihood, noise, operators, predict, train

pytestmark = pytest.mark.usefixtures("x64")


def _data(n=200, seed=0):
  kx, kd, ky = jax.random.split(jax.random.key(seed), 3)
  x = jax.random.uniform(kx, (n, 2), jnp.float64)
  d = 0.01 + 0.2 * x[:, 0] ** 2 + 0.05 * jax.random.uniform(kd, (n,), jnp.float64)  # variances
  y = jnp.sin(6 * x[:, 0]) + jnp.cos(5 * x[:, 1]) + jnp.sqrt(d) * jax.random.normal(ky, (n,))
  return x, y, d


SPEC = ("sum", "rbf", "periodic")


def _params(d, mean=0.1):
  k = (kernels.KernelParams(jnp.array([0.3, 0.5]), jnp.asarray(1.0)),
       kernels.PeriodicParams(jnp.array([1.0, 2.0]), jnp.array([0.5, 0.8]), jnp.asarray(0.3)))
  return operators.GPParams(k, d, jnp.asarray(mean))


def _dense_mll(kmat, d, r):
  khat = np.asarray(kmat) + np.diag(np.asarray(d))
  r = np.asarray(r)
  return (-0.5 * r @ np.linalg.solve(khat, r) - 0.5 * np.linalg.slogdet(khat)[1]
          - 0.5 * len(r) * np.log(2 * np.pi))


def test_cholesky_mll_equals_the_textbook_formula_and_the_scalar_case():
  x, y, d = _data(150)
  op = noise.heteroscedastic_operator(SPEC)
  p = _params(d)
  kmat = kernels.kernel_matrix(SPEC, p.kernel, x)
  np.testing.assert_allclose(likelihood.cholesky_mll(op, p, x, y),
                             _dense_mll(kmat, d, y - 0.1), rtol=1e-11)
  # constant per-point noise σ² is the homoscedastic GP
  const = p._replace(noise=jnp.full((150,), 0.07))
  np.testing.assert_allclose(likelihood.cholesky_mll(op, const, x, y),
                             likelihood.cholesky_mll(operators.ExactOperator(SPEC),
                                                     p._replace(noise=jnp.asarray(0.07)), x, y),
                             rtol=1e-12)
  # the dense operator is K + diag(d) and its "kernel" diagonal/rows are K + D − min(d) I
  state = op.prepare(p, x)
  np.testing.assert_allclose(op.dense(state), np.asarray(kmat) + np.diag(np.asarray(d)),
                             rtol=1e-12)
  kpart = np.asarray(kmat) + np.diag(np.asarray(d - d.min()))
  np.testing.assert_allclose(op.kernel_diag(state), np.diag(kpart), rtol=1e-12)
  np.testing.assert_allclose(op.kernel_row(state, 7), kpart[7], rtol=1e-12)
  np.testing.assert_allclose(state.noise, d.min())


@pytest.mark.parametrize("learn_noise", [True, False])
def test_bbmm_mll_and_gradient_equal_cholesky_with_exact_preconditioner(learn_noise):
  n = 200
  x, y, d = _data(n)
  op = noise.DiagonalNoiseOperator(operators.ExactOperator(SPEC, block_size=64), learn_noise)
  p = _params(d)
  settings = likelihood.Settings(cg_tol=1e-10, num_probes=2, precond_rank=n,
                                 grad_estimator="variance_reduced")
  ref, g_ref = jax.value_and_grad(lambda q: likelihood.cholesky_mll(op, q, x, y))(p)
  val, g = jax.jit(jax.value_and_grad(
      lambda q: likelihood.bbmm_mll(jax.random.key(0), op, q, x, y, settings)[0]))(p)
  np.testing.assert_allclose(val, ref, rtol=1e-8)
  flat = lambda t: np.concatenate([np.ravel(a) for a in jax.tree.leaves(t)])
  err = np.linalg.norm(flat(g) - flat(g_ref)) / np.linalg.norm(flat(g_ref))
  assert err < 1e-6, err
  if learn_noise:
    # ∂ log p / ∂ d_i = ½ (u_i² − (K̂⁻¹)_ii), u = K̂⁻¹ r
    khat = np.asarray(op.dense(op.prepare(p, x)))
    kinv = np.linalg.inv(khat)
    u = kinv @ np.asarray(y - 0.1)
    np.testing.assert_allclose(g.noise, 0.5 * (u * u - np.diag(kinv)), rtol=1e-6, atol=1e-9)
  else:
    assert np.all(np.asarray(g.noise) == 0) and np.all(np.asarray(g_ref.noise) == 0)


def test_predictions_equal_dense_math_and_bbmm_predictions():
  x, y, d = _data(120)
  xs = jax.random.uniform(jax.random.key(9), (12, 2), jnp.float64)
  p = _params(d)
  op = noise.fixed_noise_operator(SPEC)
  mean, var = predict.cholesky_predict(op, p, x, y, xs)
  khat = np.asarray(kernels.kernel_matrix(SPEC, p.kernel, x)) + np.diag(np.asarray(d))
  ksx = np.asarray(kernels.kernel_matrix(SPEC, p.kernel, xs, x))
  np.testing.assert_allclose(mean, 0.1 + ksx @ np.linalg.solve(khat, np.asarray(y) - 0.1),
                             rtol=1e-9, atol=1e-11)
  want = np.diag(np.asarray(kernels.kernel_matrix(SPEC, p.kernel, xs))) - np.einsum(
      "ij,ji->i", ksx, np.linalg.solve(khat, ksx.T))
  np.testing.assert_allclose(var, want, rtol=1e-8, atol=1e-11)
  settings = likelihood.Settings(eval_cg_tol=1e-10, precond_rank=40)
  cache = predict.prediction_cache(op, p, x, y, settings, love_rank=120)
  np.testing.assert_allclose(predict.predictive_mean(op, cache, xs), mean, rtol=1e-7, atol=1e-9)
  np.testing.assert_allclose(predict.exact_variance(op, cache, xs, settings, tol=1e-10), var,
                             rtol=1e-6, atol=1e-9)
  np.testing.assert_allclose(predict.love_variance(op, cache, xs), var, rtol=1e-4, atol=1e-6)


def test_fit_learns_heteroscedastic_noise_and_keeps_fixed_noise():
  x, y, d = _data(60)
  p0 = operators.GPParams(kernels.init_params("rbf", 2, 0.5, 1.0, jnp.float64),
                          jnp.full((60,), 0.1), jnp.asarray(0.0))
  het = noise.heteroscedastic_operator("rbf")
  p, hist = train.fit(jax.random.key(0), het, p0, x, y, num_steps=10, method="cholesky",
                      noise_floor=1e-4, chunk_size=10)
  loss = np.asarray(hist["loss"])
  assert np.all(np.isfinite(loss)) and loss[-1] < loss[0]
  assert p.noise.shape == (60,) and not np.allclose(p.noise, 0.1)
  fixed = noise.fixed_noise_operator("rbf")
  pf, hist = train.fit(jax.random.key(0), fixed, p0._replace(noise=d), x, y, num_steps=5,
                       method="cholesky", noise_floor=0.0, chunk_size=5)
  np.testing.assert_allclose(pf.noise, d, rtol=1e-12)  # zero gradient: Adam leaves it
  assert not np.allclose(pf.kernel.lengthscale, p0.kernel.lengthscale)
  # A known variance at or below noise_floor cannot be held by softplus(raw) + floor: an error
  # naming noise_floor before any work, never a NaN training run.
  low = d.at[0].set(5e-5)
  with pytest.raises(ValueError, match="noise_floor"):
    train.fit(jax.random.key(0), fixed, p0._replace(noise=low), x, y, num_steps=2,
              method="cholesky", noise_floor=1e-4)
  with pytest.raises(ValueError, match="noise_floor"):
    train.make_fit(fixed, num_steps=2, method="cholesky", noise_floor=1e-4)(
        jax.random.key(0), p0._replace(noise=low), x, y)
  # make_fit + vmap over three noise-vector data sets equals a loop
  fit_fn = train.make_fit(fixed, num_steps=3, method="cholesky", noise_floor=0.0)
  ds = jnp.stack([d, 2 * d, d[::-1]])
  testing.assert_vmap_matches_loop(lambda dd: fit_fn(jax.random.key(0), p0._replace(noise=dd),
                                                     x, y)[0], (ds,), rtol=1e-8, atol=1e-10)


def test_fit_warns_once_when_cg_is_capped_with_per_point_noise():
  # fit already reports non-convergence (test_bbmm_grad_convergence); here through the new
  # operator: a 2-iteration CG cap cannot reach cg_tol = 1e-8, so exactly one warning.
  import warnings
  x, y, d = _data(60)
  op = noise.heteroscedastic_operator("rbf")
  p0 = operators.GPParams(kernels.init_params("rbf", 2, 0.3, 1.0, jnp.float64), d,
                          jnp.asarray(0.0))
  settings = likelihood.Settings(max_cg_iters=2, cg_tol=1e-8, num_probes=2, precond_rank=0)
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    _, hist = train.fit(jax.random.key(0), op, p0, x, y, num_steps=2, settings=settings,
                        method="bbmm", chunk_size=2)
  msgs = [str(w.message) for w in caught if issubclass(w.category, likelihood.ConvergenceWarning)]
  assert len(msgs) == 1 and "fit (2 of 2 steps)" in msgs[0] and "after 2 iterations" in msgs[0]
  assert not np.any(np.asarray(hist["converged"]))


def test_bad_noise_raises_naming_params_noise():
  x, y, d = _data(30)
  op = noise.heteroscedastic_operator("rbf")
  k = kernels.init_params("rbf", 2, dtype=jnp.float64)
  gp = lambda dd: operators.GPParams(k, dd, jnp.asarray(0.0))
  with pytest.raises(ValueError, match=r"params.noise must have shape \(30,\)"):
    likelihood.cholesky_mll(op, gp(d[:-1]), x, y)
  with pytest.raises(ValueError, match="params.noise must have rank 1"):
    likelihood.bbmm_mll(jax.random.key(0), op, gp(jnp.asarray(0.1)), x, y)
  with pytest.raises(ValueError, match=r"finite and > 0 at every point.*index 3"):
    predict.cholesky_predict(op, gp(d.at[3].set(-1.0)), x, y, x[:2])
  with pytest.raises(ValueError, match=r"finite and > 0 at every point.*index 4, value nan"):
    predict.prediction_cache(op, gp(d.at[4].set(jnp.nan)), x, y)
  with pytest.raises(ValueError, match="y contains NaN"):
    train.fit(jax.random.key(0), op, gp(d), x, y.at[0].set(jnp.nan), num_steps=1)
  with pytest.raises(ValueError, match="params.noise must have rank 0"):  # vector into ExactOperator
    likelihood.cholesky_mll(operators.ExactOperator("rbf"), gp(d), x, y)
  with pytest.raises(TypeError, match="base must be an ExactOperator"):
    noise.DiagonalNoiseOperator(operators.SGPROperator("rbf"))

"""BBMM's exact path: the dense Gaussian log-density and its ``K̂⁻¹``-based derivative.

References are independent of :mod:`jaxpapers.bbmm.dense`: NumPy's inverse, and autodiff through
``jnp.linalg.slogdet`` / ``jnp.linalg.solve`` in float64.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers.bbmm import dense, kernels, likelihood, noise, operators

pytestmark = pytest.mark.usefixtures("x64")


def _spd(n, seed=0):
  a = np.random.default_rng(seed).normal(size=(n, n))
  return a @ a.T / n + 0.1 * np.eye(n)


def _reference(khat, r):
  sign, logdet = jnp.linalg.slogdet(khat)
  return -0.5 * jnp.dot(r, jnp.linalg.solve(khat, r)) - 0.5 * logdet + jnp.where(sign > 0, 0, jnp.nan)


@pytest.mark.parametrize("n", [7, 256, 257, 601])
def test_inverses_equal_numpy(n):
  # 257 and 601 recurse on unequal halves (601 → 300/301 → …); 7 and 256 are one block.
  k = _spd(n)
  chol = np.linalg.cholesky(k)
  np.testing.assert_allclose(dense.tril_inverse(jnp.asarray(chol)), np.linalg.inv(chol),
                             rtol=0, atol=1e-9 * np.abs(np.linalg.inv(chol)).max())
  kinv = np.asarray(dense.cholesky_inverse(jnp.asarray(chol)))
  np.testing.assert_allclose(kinv, np.linalg.inv(k), rtol=0, atol=1e-9 * np.abs(kinv).max())
  np.testing.assert_array_equal(kinv, kinv.T)
  assert np.all(np.triu(np.asarray(dense.tril_inverse(jnp.asarray(chol))), 1) == 0)


def test_cholesky_inverse_rejects_a_non_square_factor():
  with pytest.raises(ValueError, match="chol must be a square"):
    dense.cholesky_inverse(jnp.ones((3, 4)))


@pytest.mark.parametrize("n", [40, 300])
def test_value_and_derivatives_equal_the_slogdet_reference(n):
  k = jnp.asarray(_spd(n, 1))
  r = jnp.asarray(np.random.default_rng(2).normal(size=n))
  v, (gk, gr) = jax.value_and_grad(dense.gaussian_logpdf_terms, (0, 1))(k, r)
  rv, (rgk, rgr) = jax.value_and_grad(_reference, (0, 1))(k, r)
  np.testing.assert_allclose(v, rv, rtol=1e-10)
  # slogdet's gradient is K⁻ᵀ (not symmetrised); ours is that of f((K + Kᵀ)/2).
  np.testing.assert_allclose(gk, 0.5 * (rgk + rgk.T), rtol=1e-8, atol=1e-10)
  np.testing.assert_allclose(gr, rgr, rtol=1e-8, atol=1e-10)
  # Forward mode along a symmetric direction equals the reverse-mode contraction.
  dk = jnp.asarray(_spd(n, 3))
  dr = jnp.asarray(np.random.default_rng(4).normal(size=n))
  _, tangent = jax.jvp(dense.gaussian_logpdf_terms, (k, r), (dk, dr))
  _, ref_tangent = jax.jvp(_reference, (k, r), (dk, dr))
  np.testing.assert_allclose(tangent, ref_tangent, rtol=1e-8)
  np.testing.assert_allclose(tangent, jnp.sum(gk * dk) + jnp.dot(gr, dr), rtol=1e-8)


def test_second_derivative_equals_the_reference():
  n = 30
  k0, dk = jnp.asarray(_spd(n, 5)), jnp.asarray(_spd(n, 6))
  r = jnp.asarray(np.random.default_rng(7).normal(size=n))

  def along(f):
    return jax.grad(jax.grad(lambda t: f(k0 + t * dk, r)))(0.3)

  np.testing.assert_allclose(along(dense.gaussian_logpdf_terms), along(_reference), rtol=1e-8)


def test_not_positive_definite_gives_nan_value_and_gradient():
  k = jnp.asarray(_spd(20) - 5.0 * np.eye(20))
  r = jnp.ones(20)
  v, g = jax.value_and_grad(dense.gaussian_logpdf_terms)(k, r)
  assert np.isnan(v) and np.all(np.isnan(g))
  k_nan = jnp.asarray(_spd(20)).at[3, 4].set(jnp.nan)  # upper triangle: never factorised
  v, g = jax.value_and_grad(dense.gaussian_logpdf_terms, (0, 1))(k_nan, r)
  assert np.isnan(v) and np.all(np.isnan(g[0])) and np.all(np.isnan(g[1]))


def _gp_data(n, d=3, seed=0):
  kx, ky = jax.random.split(jax.random.key(seed))
  x = jax.random.uniform(kx, (n, d), jnp.float64)
  y = jnp.sin(6 * x[:, 0]) + jnp.cos(5 * x[:, -1]) + 0.1 * jax.random.normal(ky, (n,), jnp.float64)
  return x, y


@pytest.mark.parametrize("kern", ["rbf", "matern52"])
def test_cholesky_mll_gradients_equal_autodiff_of_the_dense_density(kern):
  # Hyperparameters (ARD lengthscales, scale, noise, mean) and the inputs x (deep kernels).
  n, d = 350, 3
  x, y = _gp_data(n, d)
  kp = kernels.init_params(kern, d, 0.3, 1.0, jnp.float64)
  kp = kp._replace(lengthscale=jnp.asarray([0.25, 0.35, 0.5], jnp.float64))
  p = operators.GPParams(kp, jnp.asarray(0.01, jnp.float64), jnp.asarray(0.1, jnp.float64))
  op = operators.ExactOperator(kern)

  def reference(q, xx):
    khat = op.dense(op.prepare(q, xx))
    return _reference(khat, y - q.mean) - 0.5 * n * np.log(2 * np.pi)

  v, g = jax.value_and_grad(lambda q, xx: likelihood.cholesky_mll(op, q, xx, y), (0, 1))(p, x)
  rv, rg = jax.value_and_grad(reference, (0, 1))(p, x)
  np.testing.assert_allclose(v, rv, rtol=1e-10)
  for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(rg)):
    np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-8 * np.abs(np.asarray(b)).max())
  # vmap over two data sets equals a loop.
  ys = jnp.stack([y, -0.5 * y])
  batched = jax.vmap(jax.grad(lambda q, yy: likelihood._cholesky_mll_jit(op, False, q, x, yy)),
                     (None, 0))(p, ys)
  for i in range(2):
    one = jax.grad(lambda q: likelihood.cholesky_mll(op, q, x, ys[i]))(p)
    for a, b in zip(jax.tree.leaves(batched), jax.tree.leaves(one)):
      np.testing.assert_allclose(a[i], b, rtol=1e-9, atol=1e-12)


def test_per_point_noise_gradient_equals_autodiff_of_the_dense_density():
  n, d = 120, 2
  x, y = _gp_data(n, d, seed=3)
  op = noise.DiagonalNoiseOperator(operators.ExactOperator("rbf"))
  kp = kernels.init_params("rbf", d, 0.3, 1.0, jnp.float64)
  p = operators.GPParams(kp, jnp.linspace(0.01, 0.2, n), jnp.asarray(0.0, jnp.float64))

  def reference(q):
    return _reference(op.dense(op.prepare(q, x)), y - q.mean) - 0.5 * n * np.log(2 * np.pi)

  g = jax.grad(lambda q: likelihood.cholesky_mll(op, q, x, y))(p)
  rg = jax.grad(reference)(p)
  for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(rg)):
    np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-10)

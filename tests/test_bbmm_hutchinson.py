"""The exact Cholesky MLL with a probed gradient (``method="cholesky_hutchinson"``).

``w = L⁻ᵀ ε`` has ``E[w wᵀ] = K̂⁻¹``, so ``½αᵀ∂K̂α − ½ mean_i w_iᵀ∂K̂w_i`` is unbiased for the exact
gradient (Stein, Chen & Anitescu 2013); the value is the Cholesky MLL itself.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers.bbmm import dense, kernels, likelihood, noise, operators, train

pytestmark = pytest.mark.usefixtures("x64")

K_SE = 4.0  # unbiasedness: |mean − exact| ≤ K_SE standard errors (per component)


def _data(n, d=3, seed=0):
  kx, ky = jax.random.split(jax.random.key(seed))
  x = jax.random.uniform(kx, (n, d), jnp.float64)
  y = jnp.sin(6 * x[:, 0]) + jnp.cos(5 * x[:, -1]) + 0.1 * jax.random.normal(ky, (n,), jnp.float64)
  return x, y


def _params(kern="matern52", d=3, noise_var=0.01):
  kp = kernels.init_params(kern, d, 0.3, 1.0, jnp.float64)
  kp = kp._replace(lengthscale=jnp.asarray([0.25, 0.35, 0.5], jnp.float64)[:d])
  return operators.GPParams(kp, jnp.asarray(noise_var, jnp.float64), jnp.asarray(0.1, jnp.float64))


def _flat(tree):
  return np.concatenate([np.ravel(np.asarray(v)) for v in jax.tree.leaves(tree)])


def test_spherical_probes_have_identity_second_moment_and_fixed_norm():
  n, t = 6, 40_000
  eps = np.asarray(dense.spherical_probes(jax.random.key(0), n, t, jnp.float64))
  np.testing.assert_allclose(np.linalg.norm(eps, axis=0), np.sqrt(n), rtol=1e-12)
  np.testing.assert_allclose(eps @ eps.T / t, np.eye(n), atol=0.03)


@pytest.mark.parametrize("which", ["exact", "diagonal_noise"])
def test_value_is_exact_and_gradient_unbiased(which):
  n, keys, t = 150, 200, 4
  x, y = _data(n)
  if which == "exact":
    op, p = operators.ExactOperator("matern52"), _params()
  else:
    op = noise.DiagonalNoiseOperator(operators.ExactOperator("rbf"))
    p = _params("rbf")._replace(noise=jnp.linspace(0.005, 0.05, n))
  exact, g = jax.value_and_grad(lambda q, xx: likelihood.cholesky_mll(op, q, xx, y), (0, 1))(p, x)
  ref = np.concatenate([_flat(g[0]), np.ravel(np.asarray(g[1]))])
  settings = likelihood.Settings(num_probes=t)

  def one(key):
    return jax.value_and_grad(lambda q, xx: likelihood._hutchinson_mll_jit(
        op, t, False, key, q, xx, y), (0, 1))(p, x)

  values, (gp, gx) = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(3), keys))
  np.testing.assert_allclose(values, exact, rtol=1e-12)  # every key: the exact value
  draws = np.stack([np.concatenate([_flat(jax.tree.map(lambda a, i=i: a[i], gp)),
                                    np.ravel(np.asarray(gx[i]))]) for i in range(keys)])
  mean, se = draws.mean(0), draws.std(0, ddof=1) / np.sqrt(keys)
  # Hyperparameters, one by one (the mean's gradient has no probe noise: rounding only).
  hp = _flat(g[0]).size
  assert np.all(np.abs(mean - ref)[:hp] <= K_SE * se[:hp] + 1e-9 * np.abs(ref).max())
  # The n·d input gradients together (hundreds of components: one by one, some 4σ excursions
  # are expected): the mean squared standardised error is ≈ 1 for an unbiased estimator.
  zx = (mean - ref)[hp:] / se[hp:]
  assert np.mean(zx ** 2) < 1.5
  # The draws do vary (a probed gradient), and the eager public function equals the jitted one.
  assert np.all(draws.std(0) > 0)
  key = jax.random.key(11)
  eager = jax.grad(lambda q: likelihood.cholesky_hutchinson_mll(key, op, q, x, y, settings))(p)
  jitted = jax.jit(jax.grad(lambda q: likelihood.cholesky_hutchinson_mll(
      key, op, q, x, y, settings)))(p)
  np.testing.assert_allclose(_flat(eager), _flat(jitted), rtol=1e-10)


def test_spread_is_the_gradient_and_predicts_its_error():
  n, t = 200, 16
  x, y = _data(n, seed=1)
  op, p = operators.ExactOperator("rbf"), _params("rbf")
  settings = likelihood.Settings(num_probes=t)
  key = jax.random.key(5)
  spread = likelihood.hutchinson_spread(key, op, p, x, y, settings)
  grad = jax.grad(lambda q: likelihood.cholesky_hutchinson_mll(key, op, q, x, y, settings))(p)
  np.testing.assert_allclose(_flat(spread.grad), _flat(grad), rtol=1e-8, atol=1e-10)
  np.testing.assert_allclose(spread.value, likelihood.cholesky_mll(op, p, x, y), rtol=1e-12)
  assert float(spread.mll_std_error) == 0.0
  # Its standard error is that of one draw: over 120 keys the spread of the gradients agrees
  # (ratio of the norm-wise spreads; the sampling error of 120 draws is ≈ 7 %).
  keys = jax.random.split(jax.random.key(9), 120)
  grads = jax.jit(jax.vmap(lambda k: _flat_jnp(jax.grad(
      lambda q: likelihood._hutchinson_mll_jit(op, t, False, k, q, x, y))(p))))(keys)
  observed = np.linalg.norm(np.asarray(grads).std(0, ddof=1))
  predicted = np.linalg.norm(_flat(spread.std_error))  # std of one t-probe draw
  assert 0.6 < predicted / observed < 1.6


def _flat_jnp(tree):
  return jnp.concatenate([jnp.ravel(v) for v in jax.tree.leaves(tree)])


def test_vmap_over_data_sets_equals_a_loop():
  n, t = 120, 8
  x, y = _data(n, seed=2)
  op, p = operators.ExactOperator("rbf"), _params("rbf")
  ys = jnp.stack([y, 0.5 * y, -y])
  key = jax.random.key(4)
  batched = jax.vmap(jax.value_and_grad(
      lambda q, yy: likelihood._hutchinson_mll_jit(op, t, False, key, q, x, yy)), (None, 0))(p, ys)
  settings = likelihood.Settings(num_probes=t)
  for i in range(3):
    v, g = jax.value_and_grad(lambda q, i=i: likelihood.cholesky_hutchinson_mll(
        key, op, q, x, ys[i], settings))(p)
    np.testing.assert_allclose(batched[0][i], v, rtol=1e-12)
    np.testing.assert_allclose(_flat(jax.tree.map(lambda a, i=i: a[i], batched[1])), _flat(g),
                               rtol=1e-9, atol=1e-12)


def test_mll_runs_it_and_not_positive_definite_gives_nan():
  n = 100
  x, y = _data(n, seed=3)
  op, p = operators.ExactOperator("rbf"), _params("rbf")
  settings = likelihood.Settings(num_probes=6)
  key = jax.random.key(0)
  value, info = likelihood.mll(key, op, p, x, y, settings, method="cholesky_hutchinson")
  np.testing.assert_allclose(value, likelihood.cholesky_mll(op, p, x, y), rtol=1e-12)
  assert bool(info.converged) and int(info.num_iters) == 0
  bad = p._replace(noise=jnp.asarray(-5.0))  # K̂ = K − 5 I is not positive definite
  v, g = jax.value_and_grad(lambda q: likelihood._hutchinson_mll_jit(
      op, 6, False, key, q, x, y))(bad)
  assert np.isnan(v) and np.all(np.isnan(_flat(g)))
  with pytest.raises(ValueError, match="method must be one of"):
    likelihood.mll(key, op, p, x, y, settings, method="hutchinson")


def test_fit_with_the_probed_gradient_reaches_the_exact_fit():
  # 60 Adam steps from the same start: the probed gradient's noise moves the optimum little.
  n = 200
  x, y = _data(n, seed=4)
  op = operators.ExactOperator("rbf")
  p0 = _params("rbf", noise_var=0.1)
  settings = likelihood.Settings(num_probes=30)
  exact, _ = train.fit(jax.random.key(1), op, p0, x, y, num_steps=60, settings=settings,
                       method="cholesky")
  probed, hist = train.fit(jax.random.key(1), op, p0, x, y, num_steps=60, settings=settings,
                           method="cholesky_hutchinson")
  assert np.all(np.asarray(hist["num_probes"]) == 30)
  np.testing.assert_allclose(_flat(probed.kernel), _flat(exact.kernel), rtol=0.05)
  np.testing.assert_allclose(probed.noise, exact.noise, rtol=0.05)
  # and it moved: the fit is not the start
  assert np.abs(_flat(exact.kernel) - _flat(p0.kernel)).max() > 0.05

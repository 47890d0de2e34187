"""BBMM: periodic, linear and spectral-mixture kernels (GPyTorch's PeriodicKernel, LinearKernel,
SpectralMixtureKernel) in the spec system, checked against dense float64 math.

Issue 24 item 5.1 (and 5.3: vmap of the MLL and of predictions over hyperparameter sets).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers._src import testing
from jaxpapers.bbmm import kernels, likelihood, operators, predict, train

pytestmark = pytest.mark.usefixtures("x64")


def _brute(spec, p, x1, x2):
  """Kernel matrices from the pairwise differences ``(n1, n2, d)`` in NumPy (the definitions)."""
  x1, x2 = np.asarray(x1), np.asarray(x2)
  tau = x1[:, None, :] - x2[None, :, :]
  if spec == "periodic":
    s = np.sin(np.pi * np.abs(tau) / np.asarray(p.period)) ** 2 / np.asarray(p.lengthscale)
    return float(p.scale) * np.exp(-2 * s.sum(-1))
  if spec == "linear":
    out = np.einsum("id,jd,d->ij", x1, x2, np.broadcast_to(np.asarray(p.variance), x1.shape[1:]))
    return out + (0.0 if p.offset is None else float(p.offset))
  if spec == "spectral_mixture":
    out = 0.0
    for w, mu, sig in zip(np.asarray(p.weights), np.asarray(p.means), np.asarray(p.scales)):
      out = out + w * np.prod(np.exp(-2 * np.pi**2 * tau**2 * sig**2)
                              * np.cos(2 * np.pi * tau * mu), -1)
    return out
  if spec == "rbf":
    r2 = np.sum((tau / np.asarray(p.lengthscale)) ** 2, -1)
    return float(p.scale) * np.exp(-0.5 * r2)
  mats = [_brute(c, q, x1, x2) for c, q in zip(spec[1:], p)]
  return sum(mats) if spec[0] == "sum" else np.prod(mats, 0)


def _data(n=200, d=2, seed=0):
  kx, ky = jax.random.split(jax.random.key(seed))
  x = jax.random.uniform(kx, (n, d), jnp.float64)
  y = (jnp.sin(2 * np.pi * x[:, 0] / 0.4) + x[:, -1]
       + 0.1 * jax.random.normal(ky, (n,), jnp.float64))
  return x, y


def _ard_params(spec, d=2):
  """Non-default ARD values (different per dimension) so ARD is exercised."""
  if spec == "periodic":
    return kernels.PeriodicParams(jnp.array([0.8, 1.7]), jnp.array([0.4, 0.9]), jnp.asarray(1.2))
  if spec == "linear":
    return kernels.LinearParams(jnp.array([0.5, 2.0]), jnp.asarray(0.3))
  if spec == "spectral_mixture":
    return kernels.SpectralMixtureParams(jnp.array([0.6, 0.3, 0.2]),  # Q = 3 components
                                         jnp.array([[2.5, 0.5], [0.7, 1.5], [1.1, 0.2]]),
                                         jnp.array([[0.3, 0.6], [0.9, 0.2], [0.4, 0.4]]))
  if spec == "rbf":
    return kernels.KernelParams(jnp.array([0.3, 0.6]), jnp.asarray(0.7))
  return tuple(_ard_params(c, d) for c in spec[1:])


SPECS = ["periodic", "linear", "spectral_mixture",
         ("product", "spectral_mixture", ("sum", "linear", "rbf"))]
# every new kernel, ARD, a sum and a product in one spec (the likelihood / prediction tests)
ALL = ("sum", ("product", "periodic", "rbf"), "linear", "spectral_mixture")


def test_values_by_hand():
  # periodic: τ = p/2 gives sin² = 1, so k = s·exp(−2/ℓ) (ℓ unsquared, as in GPyTorch).
  pp = kernels.PeriodicParams(jnp.array([0.5]), jnp.array([2.0]), jnp.asarray(3.0))
  np.testing.assert_allclose(kernels.kernel_matrix("periodic", pp, jnp.zeros((1, 1)),
                                                   jnp.ones((1, 1)))[0, 0],
                             3 * np.exp(-2 / 0.5), rtol=1e-12)
  # τ = p: the same value as τ = 0.
  np.testing.assert_allclose(kernels.kernel_matrix("periodic", pp, jnp.zeros((1, 1)),
                                                   jnp.full((1, 1), 2.0))[0, 0], 3.0, rtol=1e-12)
  # linear: v·x·x' + c = 2·(1·3 + 2·(−1))... with ARD v = (2, 0.5): 2·3 + 0.5·(−2) + 0.25.
  lp = kernels.LinearParams(jnp.array([2.0, 0.5]), jnp.asarray(0.25))
  np.testing.assert_allclose(kernels.kernel_matrix("linear", lp, jnp.array([[1.0, 2.0]]),
                                                   jnp.array([[3.0, -1.0]]))[0, 0],
                             6 - 1 + 0.25, rtol=1e-12)
  # spectral mixture, Q = 1, d = 1: τ = 1/(2μ) gives cos(π) = −1, so k = −w·exp(−2π²τ²σ²).
  sp = kernels.SpectralMixtureParams(jnp.array([1.5]), jnp.array([[2.0]]), jnp.array([[0.3]]))
  tau = 0.25
  np.testing.assert_allclose(kernels.kernel_matrix("spectral_mixture", sp, jnp.zeros((1, 1)),
                                                   jnp.full((1, 1), tau))[0, 0],
                             -1.5 * np.exp(-2 * np.pi**2 * tau**2 * 0.09), rtol=1e-12)


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_matrix_and_diag_equal_the_definitions_and_are_psd(spec):
  x1, _ = _data(30, seed=1)
  x2, _ = _data(20, seed=2)
  p = _ard_params(spec)
  np.testing.assert_allclose(kernels.kernel_matrix(spec, p, x1, x2), _brute(spec, p, x1, x2),
                             rtol=1e-10, atol=1e-12)
  full = kernels.kernel_matrix(spec, p, x1)
  np.testing.assert_allclose(kernels.diag(spec, p, x1), np.diag(np.asarray(full)), rtol=1e-12,
                             atol=1e-12)
  evals = np.linalg.eigvalsh(np.asarray(full))
  assert evals.min() > -1e-10 * evals.max()
  # shared (1,) lengthscales / periods / variances broadcast like (d,) copies of them
  shared = jax.tree.map(lambda a: a[..., :1] if a.ndim >= 1 and a.shape[-1] == 2 else a, p)
  if spec in ("periodic", "linear", "spectral_mixture"):
    wide = jax.tree.map(lambda a: jnp.broadcast_to(a[..., :1], a.shape) if a.ndim >= 1
                        and a.shape[-1] == 2 else a, p)
    np.testing.assert_allclose(kernels.kernel_matrix(spec, shared, x1, x2),
                               kernels.kernel_matrix(spec, wide, x1, x2), rtol=1e-12)


def test_bbmm_mll_and_gradient_equal_cholesky_with_exact_preconditioner():
  spec = ALL
  # precond_rank = n makes P̂ = K̂ (up to the factorisation's 1e-10 stop): the SLQ term vanishes,
  # the variance-reduced gradient is exact in one draw, and CG converges at once.
  n = 200
  x, y = _data(n)
  p = operators.GPParams(_ard_params(spec), jnp.asarray(0.05), jnp.asarray(0.1))
  op = operators.ExactOperator(spec, block_size=64)
  settings = likelihood.Settings(cg_tol=1e-10, num_probes=2, precond_rank=n,
                                 grad_estimator="variance_reduced")
  ref, g_ref = jax.value_and_grad(lambda q, xx: likelihood.cholesky_mll(op, q, xx, y),
                                  (0, 1))(p, x)
  val, g = jax.jit(jax.value_and_grad(
      lambda q, xx: likelihood.bbmm_mll(jax.random.key(0), op, q, xx, y, settings)[0],
      (0, 1)))(p, x)
  np.testing.assert_allclose(val, ref, rtol=1e-7)
  flat = lambda t: np.concatenate([np.ravel(a) for a in jax.tree.leaves(t)])
  err = np.linalg.norm(flat(g) - flat(g_ref)) / np.linalg.norm(flat(g_ref))
  assert err < 1e-6, err
  # and the dense reference is the textbook formula on the brute-force kernel matrix
  kd = _brute(spec, p.kernel, x, x) + 0.05 * np.eye(n)
  r = np.asarray(y) - 0.1
  want = (-0.5 * r @ np.linalg.solve(kd, r) - 0.5 * np.linalg.slogdet(kd)[1]
          - 0.5 * n * np.log(2 * np.pi))
  np.testing.assert_allclose(ref, want, rtol=1e-10)


def test_predictions_equal_dense_math_and_bbmm_predictions():
  spec = ALL
  x, y = _data(120)
  xs, _ = _data(15, seed=5)
  p = operators.GPParams(_ard_params(spec), jnp.asarray(0.05), jnp.asarray(0.1))
  op = operators.ExactOperator(spec)
  mean, var = predict.cholesky_predict(op, p, x, y, xs)
  kxx = _brute(spec, p.kernel, x, x) + 0.05 * np.eye(120)
  ksx = _brute(spec, p.kernel, xs, x)
  np.testing.assert_allclose(mean, 0.1 + ksx @ np.linalg.solve(kxx, np.asarray(y) - 0.1),
                             rtol=1e-8, atol=1e-10)
  want_var = np.diag(_brute(spec, p.kernel, xs, xs)) - np.einsum(
      "ij,ji->i", ksx, np.linalg.solve(kxx, ksx.T))
  np.testing.assert_allclose(var, np.maximum(want_var, 0), rtol=1e-7, atol=1e-10)
  settings = likelihood.Settings(eval_cg_tol=1e-10, precond_rank=50)
  cache = predict.prediction_cache(op, p, x, y, settings)
  np.testing.assert_allclose(predict.predictive_mean(op, cache, xs), mean, rtol=1e-7, atol=1e-9)
  np.testing.assert_allclose(predict.exact_variance(op, cache, xs, settings, tol=1e-10), var,
                             rtol=1e-6, atol=1e-9)


def test_vmap_of_mll_and_predictions_over_three_hyperparameter_sets_equals_loop():
  spec = ("sum", "periodic", "linear", "spectral_mixture")
  x, y = _data(60)
  xs, _ = _data(10, seed=3)
  base = _ard_params(spec)
  periods = jnp.array([[0.4, 0.9], [0.3, 1.1], [0.5, 0.7]])
  noises = jnp.array([0.02, 0.05, 0.1])
  op = operators.ExactOperator(spec)
  settings = likelihood.Settings(num_probes=4, num_lanczos=20, precond_rank=10)

  def params(per, s):
    return operators.GPParams((base[0]._replace(period=per),) + base[1:], s, jnp.asarray(0.0))

  def exact(per, s):
    p = params(per, s)
    m, var = predict.cholesky_predict(op, p, x, y, xs)
    return likelihood.cholesky_mll(op, p, x, y), m, var

  def bbmm(per, s):
    return likelihood.bbmm_mll(jax.random.key(0), op, params(per, s), x, y, settings)[0]

  testing.assert_vmap_matches_loop(exact, (periods, noises), rtol=1e-10, atol=1e-12)
  # A vmapped CG loop runs until every member stops, so its Lanczos / CG iterates differ
  # slightly from a lone run's: agreement to ~1e-5.
  testing.assert_vmap_matches_loop(bbmm, (periods, noises), rtol=2e-5, atol=1e-6)
  # and over three data sets
  ys = jnp.stack([y, 2 * y, y[::-1]])
  p = params(periods[0], noises[0])
  testing.assert_vmap_matches_loop(
      lambda yy: (likelihood.cholesky_mll(op, p, x, yy),
                  predict.cholesky_predict(op, p, x, yy, xs)[0]), (ys,), rtol=1e-10, atol=1e-12)


def test_fit_trains_new_kernels_through_the_softplus():
  spec = ("sum", "periodic", ("product", "linear", "spectral_mixture"))
  p0 = operators.GPParams(kernels.init_params(spec, 2, 0.5, 1.0, jnp.float64, period=0.5,
                                              num_mixtures=2), jnp.asarray(0.1), jnp.asarray(0.0))
  raw = train.to_unconstrained(p0)
  testing.assert_trees_allclose(train.from_unconstrained(raw), p0, rtol=1e-12, atol=1e-12)
  assert p0.kernel[1][0].offset is None  # an absent offset stays absent
  x, y = _data(60)
  op = operators.ExactOperator(spec)
  p, hist = train.fit(jax.random.key(0), op, p0, x, y, num_steps=5, method="cholesky")
  loss = np.asarray(hist["loss"])
  assert np.all(np.isfinite(loss)) and loss[-1] < loss[0]
  kernels.check_params(spec, p.kernel, 2)  # still positive and well formed


def test_bad_kernel_parameters_raise_naming_the_field():
  x, y = _data(20)
  op = operators.ExactOperator("periodic")
  good = kernels.init_params("periodic", 2, 1.0, 1.0, jnp.float64)
  gp = lambda k: operators.GPParams(k, jnp.asarray(0.1), jnp.asarray(0.0))
  with pytest.raises(ValueError, match=r"params.kernel.period must be finite and > 0"):
    likelihood.cholesky_mll(op, gp(good._replace(period=jnp.array([1.0, -1.0]))), x, y)
  with pytest.raises(TypeError, match="must be a PeriodicParams"):
    likelihood.cholesky_mll(op, gp(kernels.init_params("rbf", 2)), x, y)
  sm = kernels.init_params("spectral_mixture", 2, num_mixtures=3, dtype=jnp.float64)
  with pytest.raises(ValueError, match="same number Q"):
    likelihood.cholesky_mll(operators.ExactOperator("spectral_mixture"),
                            gp(sm._replace(weights=sm.weights[:2])), x, y)
  with pytest.raises(ValueError, match=r"means must have shape \(Q, 2\) or \(Q, 1\)"):
    likelihood.cholesky_mll(operators.ExactOperator("spectral_mixture"),
                            gp(sm._replace(means=jnp.ones((3, 3)))), x, y)
  with pytest.raises(ValueError, match="offset must be None or finite and > 0"):
    kernels.init_params("linear", 2, offset=-1.0)
  with pytest.raises(ValueError, match="num_mixtures"):
    kernels.init_params("spectral_mixture", 2, num_mixtures=0)
  with pytest.raises(ValueError, match="kernel must be one of"):
    operators.SKIOperator("periodic", (10,))  # SKI grids need a stationary profile
  # NaN in a parameter: an error before any work, never a finite value
  with pytest.raises(ValueError, match="variance"):
    likelihood.cholesky_mll(operators.ExactOperator("linear"),
                            gp(kernels.LinearParams(jnp.array([jnp.nan, 1.0]))), x, y)

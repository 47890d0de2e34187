"""BBMM: the variance-reduced log-det gradient (Wenger et al. 2022, "Preconditioning for scalable
Gaussian process hyperparameter optimization"; linear_operator's estimator).

``∂ log|K̂| = ∂ log|P̂| + tr(K̂⁻¹∂K̂) − tr(P̂⁻¹∂P̂)``: the first term exactly through the
pivoted-Cholesky factor (pivots fixed), the bracket by ``zᵀ(K̂⁻¹∂K̂ − P̂⁻¹∂P̂)P̂⁻¹z``, ``z ~ N(0, P̂)``.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers.bbmm import kernels, likelihood, operators

pytestmark = pytest.mark.usefixtures("x64")

K_SE = 4.0  # unbiasedness: |mean − exact| ≤ K_SE standard errors (per component)


def _data(n, d=2, seed=0):
  kx, ky = jax.random.split(jax.random.key(seed))
  x = jax.random.uniform(kx, (n, d), jnp.float64)
  y = jnp.sin(6 * x[:, 0]) + jnp.cos(5 * x[:, -1]) + 0.1 * jax.random.normal(ky, (n,), jnp.float64)
  return x, y


def _params(kern="rbf", d=2):
  return operators.GPParams(kernels.init_params(kern, d, 0.3, 1.0, jnp.float64),
                            jnp.asarray(0.05, jnp.float64), jnp.asarray(0.1, jnp.float64))


def _flat(tree):
  return np.concatenate([np.ravel(np.asarray(v)) for v in jax.tree.leaves(tree)])


def _grad_fn(op, settings, y):
  # gradient of the BBMM MLL w.r.t. (params, x) for a given probe key
  def value(p, x, key):
    return likelihood._bbmm_mll_jit(op, settings, False, key, p, x, y)[0]
  return jax.jit(jax.grad(value, (0, 1)))


@pytest.mark.parametrize("kern", ["rbf", "matern12"])
def test_exact_preconditioner_gives_the_exact_gradient_in_one_draw(kern):
  # rank = n: P̂ = K̂ (matern12: a full-rank factor; rbf: the factorisation stops once the
  # remaining diagonal is < 1e-10 of the largest, so P̂ = K̂ to that accuracy). The stochastic
  # bracket then vanishes and ∂log|P̂| is exact; only the CG tolerance is left.
  n = 60
  x, y = _data(n)
  p = _params(kern)
  op = operators.ExactOperator(kern)
  ref = _flat(jax.grad(lambda q, xx: likelihood.cholesky_mll(op, q, xx, y), (0, 1))(p, x))
  errs = {}
  for est, deflate in (("standard", False), ("variance_reduced", False), ("deflated", True)):
    settings = likelihood.Settings(cg_tol=1e-12, num_probes=2, precond_rank=n,
                                   grad_estimator="standard" if deflate else est,
                                   deflate_pivots=deflate)
    got = _flat(_grad_fn(op, settings, y)(p, x, jax.random.key(3)))
    errs[est] = np.linalg.norm(got - ref) / np.linalg.norm(ref)
  # the default standard estimator deflates the pivots: nothing is left to estimate at rank n
  assert errs["deflated"] < 1e-6, errs
  assert errs["variance_reduced"] < 1e-6, errs
  assert errs["standard"] > 1e-2, errs  # the paper's estimator keeps its Hutchinson noise


def test_exact_preconditioner_in_float32():
  # float32 cannot reach the factorisation's 1e-10 stop: the last pivots are rounding noise and
  # get no derivative (an unbiased choice). What is left is float32 solve accuracy: κ(K̂) ≈ 1e4
  # here (σ² = 0.01) gives ~1e-3 relative accuracy (measured 1e-3 at n = 400), so 2e-2.
  n = 150
  x64, y64 = _data(n)
  p64 = _params()._replace(noise=jnp.asarray(0.01, jnp.float64))
  op = operators.ExactOperator("rbf")
  with jax.enable_x64(False):
    x, y = jnp.asarray(np.asarray(x64, np.float32)), jnp.asarray(np.asarray(y64, np.float32))
    p = jax.tree.map(lambda v: jnp.asarray(np.asarray(v, np.float32)), p64)
    settings = likelihood.Settings(num_probes=4, precond_rank=n, grad_estimator="variance_reduced")
    got = _flat(_grad_fn(op, settings, y)(p, x, jax.random.key(3))[0])
  # reference: float64 Cholesky at the same (float32-rounded) data and parameters
  ref = _flat(jax.grad(lambda q: likelihood.cholesky_mll(
      op, q, jnp.asarray(np.asarray(x), jnp.float64), jnp.asarray(np.asarray(y), jnp.float64)))(
          jax.tree.map(lambda v: jnp.asarray(np.asarray(v), jnp.float64), p)))
  assert np.linalg.norm(got - ref) / np.linalg.norm(ref) < 2e-2


def test_value_is_the_same_for_both_estimators_and_bad_name_raises():
  x, y = _data(50)
  p = _params()
  op = operators.ExactOperator("rbf")
  s = likelihood.Settings(num_probes=4, precond_rank=5, deflate_pivots=False)  # same probes
  v1, _ = likelihood.bbmm_mll(jax.random.key(0), op, p, x, y, s)
  v2, _ = likelihood.bbmm_mll(jax.random.key(0), op, p, x, y,
                              s._replace(grad_estimator="variance_reduced"))
  assert float(v1) == float(v2)
  with pytest.raises(ValueError, match="grad_estimator"):
    likelihood.check_settings(s._replace(grad_estimator="exact"))


def test_partial_rank_is_unbiased_with_lower_variance():
  # rank 10 of n = 100: both estimators are unbiased; the variance-reduced one only estimates the
  # part of ∂log|K̂| the preconditioner misses, so its spread must be lower.
  n, draws = 100, 256
  x, y = _data(n, seed=1)
  p = _params()
  op = operators.ExactOperator("rbf")
  ref = _flat(jax.grad(lambda q: likelihood.cholesky_mll(op, q, x, y))(p))
  keys = jax.random.split(jax.random.key(11), draws)
  stats = {}
  for est in ("standard", "variance_reduced"):
    settings = likelihood.Settings(cg_tol=1e-11, num_probes=4, precond_rank=10,
                                   grad_estimator=est, deflate_pivots=False)  # paper's probes
    g = jax.jit(jax.vmap(jax.grad(lambda q, k: likelihood._bbmm_mll_jit(
        op, settings, False, k, q, x, y)[0]), in_axes=(None, 0)))(p, keys)
    g = np.stack([_flat(jax.tree.map(lambda v: v[i], g)) for i in range(draws)])
    mean, se = g.mean(0), g.std(0, ddof=1) / np.sqrt(draws)
    # the mean's gradient −uᵀ1 has no probe noise (SE ≈ 0): allow the CG tolerance there
    np.testing.assert_array_less(np.abs(mean - ref), K_SE * se + 1e-7 * np.abs(ref) + 1e-9)
    stats[est] = g.var(0, ddof=1)
  # The probe-dependent components (all but the mean, whose gradient −uᵀ1 is probe-free). The
  # draws share keys (paired), and a variance estimated from 256 draws has a relative standard
  # error of √(2/255) ≈ 9 %: no component may be worse beyond that (≤ 1.2×), and the total must
  # be clearly lower. Measured ratios (VR / standard): lengthscales 0.92, 0.99 (rank 10 leaves
  # most of ∂K/∂ℓ in the unpreconditioned spectrum), scale and noise 0.44 (their brackets are
  # proportional: ∂K̂/∂s = (K̂ − σ²I)/s and ∂P̂/∂s = (P̂ − σ²I)/s), total 0.64.
  mean_idx = len(ref) - 1  # GPParams leaves: kernel..., noise, mean
  sel = [i for i in range(len(ref)) if i != mean_idx]
  vr, std = stats["variance_reduced"][sel], stats["standard"][sel]
  assert np.all(vr < 1.2 * std), (vr, std)
  assert vr.sum() < 0.8 * std.sum(), (vr, std)
  assert np.all(vr[-2:] < 0.6 * std[-2:]), (vr, std)  # scale and noise


def test_variance_reduced_training_vmaps():
  # make_fit with the variance-reduced backward pass under vmap (the tangent factor's gathers and
  # triangular solves batch); same tolerance argument as tests/test_bbmm_vmap_fit.py.
  from jaxpapers.bbmm import train
  settings = likelihood.Settings(cg_tol=1e-11, num_probes=4, precond_rank=8, min_lanczos=5,
                                 grad_estimator="variance_reduced")
  fit_fn = train.make_fit(operators.ExactOperator("rbf"), num_steps=3, settings=settings,
                          method="bbmm")
  data = [_data(70, seed=s) for s in (0, 1)]
  xs, ys = jnp.stack([d[0] for d in data]), jnp.stack([d[1] for d in data])
  keys = jax.random.split(jax.random.key(2), 2)
  pb, hb = jax.jit(jax.vmap(fit_fn, in_axes=(0, None, 0, 0)))(keys, _params(), xs, ys)
  for i in range(2):
    p, h = jax.jit(fit_fn)(keys[i], _params(), xs[i], ys[i])
    np.testing.assert_allclose(_flat(jax.tree.map(lambda v: v[i], pb)), _flat(p),
                               rtol=1e3 * settings.cg_tol)
    assert bool(np.all(h["converged"]))

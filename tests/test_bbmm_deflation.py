"""BBMM: probes deflated off the preconditioner's pivots (``Settings.deflate_pivots``).

The pivoted-Cholesky factor reproduces its pivot rows, so ``A = P̂^{-½} K̂ P̂^{-½}`` is the identity
on ``W₀ = P̂^{½} E_π``; probes projected onto ``W₀^⊥`` plus the exact ``log|K̂_ππ|`` give unbiased
log-det and gradient estimates with less variance.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers.bbmm import kernels, likelihood, noise, operators

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


def _preconditioner(op, p, x, rank):
  state = op.prepare(p, x)
  settings = likelihood.Settings(precond_rank=rank)
  return likelihood._build_preconditioner(op, state, settings, x.shape[0])


def _matern_problem(n, k):
  """Inputs, parameters, operator, rank-k preconditioner, its pivots and the dense P̂."""
  x, _ = _data(n)
  p = _params()
  op = operators.ExactOperator("matern52")
  pre, piv = _preconditioner(op, p, x, k)
  return x, p, op, pre, piv, np.asarray(pre.matmul(jnp.eye(n)))


def test_projection_is_the_hand_derived_one():
  # z̃ = (I − P̂ E (Eᵀ P̂ E)⁻¹ Eᵀ) z for the pivots' selection E; pivot rows of z̃ vanish.
  n, k = 80, 12
  x, p, op, pre, piv, pmat = _matern_problem(n, k)
  e = np.zeros((n, k))
  e[np.asarray(piv), np.arange(k)] = 1.0
  expected = np.eye(n) - pmat @ e @ np.linalg.solve(e.T @ pmat @ e, e.T)
  z = jax.random.normal(jax.random.key(1), (n, 5), jnp.float64)
  zt, pzt, dim = likelihood.deflate_probes(pre, piv, z)
  np.testing.assert_allclose(np.asarray(zt), expected @ np.asarray(z), atol=1e-10)
  np.testing.assert_allclose(np.asarray(pzt), np.linalg.solve(pmat, np.asarray(zt)), atol=1e-8)
  np.testing.assert_allclose(np.asarray(zt)[np.asarray(piv)], 0.0, atol=1e-10)
  assert int(dim) == n - k
  # K[π, π] from the inputs equals the factor's L[π] L[π]ᵀ (what the projection relies on)
  kpp = likelihood.pivot_block(op, op.prepare(p, x), piv)
  lp = np.asarray(pre.lmat)[np.asarray(piv)]
  np.testing.assert_allclose(np.asarray(kpp), lp @ lp.T, atol=1e-10)


def test_pivot_directions_are_unit_eigenvectors():
  # A P̂^{½} e_i = P̂^{½} e_i  ⟺  K̂ e_i = P̂ e_i for every pivot i: the identity deflation uses.
  n, k = 90, 15
  x, p, op, pre, piv, pmat = _matern_problem(n, k)
  khat = np.asarray(op.dense(op.prepare(p, x)))
  np.testing.assert_allclose(khat[:, np.asarray(piv)], pmat[:, np.asarray(piv)], atol=1e-10)


def test_kernel_block_matches_the_rows():
  n = 50
  x, _ = _data(n)
  p = _params()
  idx = jnp.asarray([3, 17, 0, 41, 29])
  for op, params in ((operators.ExactOperator("matern52"), p),
                     (noise.DiagonalNoiseOperator(operators.ExactOperator("rbf")),
                      _params("rbf")._replace(noise=jnp.linspace(0.01, 0.2, n)))):
    state = op.prepare(params, x)
    rows = jax.vmap(lambda i, op=op, state=state: op.kernel_row(state, i))(idx)[:, idx]
    np.testing.assert_allclose(np.asarray(op.kernel_block(state, idx)), np.asarray(rows),
                               atol=1e-12)


def _draws(op, p, x, y, settings, num_keys):
  def one(key):
    return jax.value_and_grad(
        lambda q, xx: likelihood._bbmm_mll_jit(op, settings, False, key, q, xx, y)[0],
        (0, 1))(p, x)
  values, (gp, gx) = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(7), num_keys))
  flat = np.stack([np.concatenate([_flat(jax.tree.map(lambda a, i=i: a[i], gp)),
                                   np.ravel(np.asarray(gx[i]))]) for i in range(num_keys)])
  return np.asarray(values), flat


@pytest.mark.parametrize("which", ["exact", "diagonal_noise"])
def test_deflated_estimates_are_unbiased_and_less_noisy(which):
  n, k, keys = 160, 30, 160
  x, y = _data(n)
  if which == "exact":
    op, p = operators.ExactOperator("matern52"), _params()
  else:  # per-point noise: the preconditioner's σ² is the smallest, the rest is in the factor
    op = noise.DiagonalNoiseOperator(operators.ExactOperator("matern52"))
    p = _params()._replace(noise=jnp.linspace(0.005, 0.05, n))
  value, grad = jax.value_and_grad(lambda q, xx: likelihood.cholesky_mll(op, q, xx, y),
                                   (0, 1))(p, x)
  ref = np.concatenate([_flat(grad[0]), np.ravel(np.asarray(grad[1]))])
  tight = dict(cg_tol=1e-10, num_lanczos=n, max_cg_iters=2 * n, num_probes=4, precond_rank=k)
  num_ls = 3  # the lengthscales lead the flattened gradient
  sd = {}
  for deflate in (False, True):
    settings = likelihood.Settings(deflate_pivots=deflate, **tight)
    v, g = _draws(op, p, x, y, settings, keys)
    se_v = v.std(ddof=1) / np.sqrt(keys)
    se_g = g.std(0, ddof=1) / np.sqrt(keys)
    if deflate:
      assert abs(v.mean() - float(value)) <= K_SE * se_v + 1e-8, (v.mean(), float(value), se_v)
      bad = np.abs(g.mean(0) - ref) > K_SE * se_g + 1e-8
      assert not bad.any(), (g.mean(0)[bad], ref[bad], se_g[bad])
    sd[deflate] = (v.std(), g[:, :num_ls].std(0))
  # Less spread in the log-det and in every lengthscale's gradient. The draws share keys; a
  # standard deviation from 160 draws is known to ≈ 6 %, so a ratio above 1.2 is not noise.
  assert sd[False][0] / sd[True][0] > 1.2, sd
  assert np.all(sd[False][1] / sd[True][1] > 1.2), sd


def test_full_rank_factor_makes_one_draw_exact():
  # rank = n (matern12: no early stop): no complement is left, the probes are 0 and value and
  # gradient (w.r.t. hyperparameters and inputs) are the pivot block's, i.e. exact.
  n = 50
  x, y = _data(n)
  p = _params("matern12")
  op = operators.ExactOperator("matern12")
  settings = likelihood.Settings(cg_tol=1e-12, num_probes=3, precond_rank=n)
  valid = likelihood.pivot_mask(_preconditioner(op, p, x, n)[0].lmat)
  assert bool(jnp.all(valid))
  fn = lambda q, xx: likelihood._bbmm_mll_jit(op, settings, False, jax.random.key(2), q, xx, y)[0]
  v, g = jax.value_and_grad(fn, (0, 1))(p, x)
  rv, rg = jax.value_and_grad(lambda q, xx: likelihood.cholesky_mll(op, q, xx, y), (0, 1))(p, x)
  assert np.isfinite(float(v))
  np.testing.assert_allclose(float(v), float(rv), rtol=1e-7)  # the data fit's CG solve
  assert np.linalg.norm(_flat(g) - _flat(rg)) / np.linalg.norm(_flat(rg)) < 1e-6


def test_deflation_is_skipped_without_a_preconditioner_and_by_other_estimators():
  n = 40
  x, y = _data(n)
  p = _params()
  op = operators.ExactOperator("matern52")
  key = jax.random.key(0)
  for base in (dict(precond_rank=0), dict(precond_rank=10, grad_estimator="variance_reduced"),
               dict(precond_rank=10, grad_estimator="control_variate")):
    on = likelihood.Settings(deflate_pivots=True, **base)
    off = likelihood.Settings(deflate_pivots=False, **base)
    a = likelihood._bbmm_mll_jit(op, on, False, key, p, x, y)[0]
    b = likelihood._bbmm_mll_jit(op, off, False, key, p, x, y)[0]
    assert float(a) == float(b), base


def test_deflate_pivots_must_be_a_bool():
  with pytest.raises(TypeError, match="settings.deflate_pivots"):
    likelihood.check_settings(likelihood.Settings(deflate_pivots=1))


def test_gpytorch_defaults_do_not_deflate():
  assert likelihood.GPYTORCH_DEFAULTS.deflate_pivots is False

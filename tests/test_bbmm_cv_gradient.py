"""BBMM: the control-variate log-det gradient (``grad_estimator="control_variate"``).

``tr(K̂⁻¹∂K̂) = s̄ − β (c̄ − tr(C ∂K̂))``: ``s_i = (K̂⁻¹z_i)ᵀ∂K̂ P̂⁻¹z_i`` (the standard term),
``c_i = (C z_i)ᵀ∂K̂ P̂⁻¹z_i`` with ``E[c_i] = tr(C∂K̂)`` computed exactly, ``C = P̂⁻¹`` (or the
inverse of the leading ``cv_rank`` pivots' preconditioner) and ``β`` per hyperparameter the
probes' regression coefficient, clipped to [0, 1].
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers.bbmm import kernels, likelihood, operators

pytestmark = pytest.mark.usefixtures("x64")


def _data(n, d=2, seed=0):
  kx, ky = jax.random.split(jax.random.key(seed))
  x = jax.random.uniform(kx, (n, d), jnp.float64)
  y = jnp.sin(6 * x[:, 0]) + jnp.cos(5 * x[:, -1]) + 0.1 * jax.random.normal(ky, (n,), jnp.float64)
  return x, y


def _params(kern="rbf", d=2, noise=0.05):
  return operators.GPParams(kernels.init_params(kern, d, 0.3, 1.0, jnp.float64),
                            jnp.asarray(noise, jnp.float64), jnp.asarray(0.1, jnp.float64))


def _flat(tree):
  return np.concatenate([np.ravel(np.asarray(v)) for v in jax.tree.leaves(tree)])


def _grad_fn(op, settings, y):
  def value(p, x, key):
    return likelihood._bbmm_mll_jit(op, settings, False, key, p, x, y)[0]
  return jax.jit(jax.grad(value))


def _cholesky_grad(op, p, x, y):
  return _flat(jax.grad(lambda q: likelihood.cholesky_mll(op, q, x, y))(p))


@pytest.mark.parametrize("kern", ["rbf", "matern12"])
def test_exact_preconditioner_gives_the_exact_gradient_in_one_draw(kern):
  # rank = n: C = P̂⁻¹ = K̂⁻¹, so every c_i equals s_i, β = 1 and the estimate is tr(P̂⁻¹∂K̂),
  # exact; the standard estimator keeps its Hutchinson noise at the same key.
  n = 60
  x, y = _data(n)
  p = _params(kern)
  op = operators.ExactOperator(kern)
  ref = _cholesky_grad(op, p, x, y)
  errs = {}
  for est, deflate in (("standard", False), ("control_variate", False), ("deflated", True)):
    settings = likelihood.Settings(cg_tol=1e-12, num_probes=2, precond_rank=n,
                                   grad_estimator="standard" if deflate else est,
                                   deflate_pivots=deflate)
    got = _flat(_grad_fn(op, settings, y)(p, x, jax.random.key(3)))
    errs[est] = np.linalg.norm(got - ref) / np.linalg.norm(ref)
  # the default standard estimator deflates the pivots: nothing is left to estimate at rank n
  assert errs["deflated"] < 1e-6, errs
  assert errs["control_variate"] < 1e-6, errs
  assert errs["standard"] > 1e-2, errs  # the paper's estimator (full-space probes)


def test_correction_matches_a_hand_computed_beta():
  # The correction term, recomputed from dense matrices: per hyperparameter, s_i and c_i by
  # explicit ∂K̂ (autodiff of the dense matrix), β = Cov/Var clipped, ½β(c̄ − tr(C∂K̂)).
  n, t, k = 40, 6, 8
  x, _ = _data(n, seed=4)
  p = _params("rbf")
  op = operators.ExactOperator("rbf")
  st = op.prepare(p, x)
  settings = likelihood.Settings(precond_rank=k, cv_rank=k)
  pre = likelihood.build_preconditioner(op, st, settings, n)
  z = jax.random.normal(jax.random.key(0), (n, t), jnp.float64)
  khat = op.dense(st)
  kinv_z, pz = jnp.linalg.solve(khat, z), pre.solve(z)
  corr = likelihood._control_variate_correction(op, p, x, kinv_z, pz, pz, pre.trace_factors())
  flat, unravel = jax.flatten_util.ravel_pytree(p)
  dk = jax.jacfwd(lambda f: op.dense(op.prepare(unravel(f), x)))(flat)  # (n, n, P)
  pinv = jnp.linalg.inv(pre.matmul(jnp.eye(n, dtype=jnp.float64)))
  want = []
  for j in range(flat.shape[0]):
    s = np.einsum("ai,ab,bi->i", kinv_z, dk[..., j], pz)
    c = np.einsum("ai,ab,bi->i", pz, dk[..., j], pz)
    var = np.sum((c - c.mean()) ** 2)
    beta = 0.0 if var == 0 else np.clip(np.sum((s - s.mean()) * (c - c.mean())) / var, 0, 1)
    want.append(0.5 * beta * (c.mean() - np.trace(pinv @ dk[..., j])))
  np.testing.assert_allclose(_flat(corr), np.array(want), rtol=1e-8, atol=1e-10)


def test_partial_rank_is_unbiased_with_lower_variance():
  # rank 20 of n = 100 on a smooth kernel: P̂⁻¹ stands in for K̂⁻¹ on the captured part, so the
  # spread falls; the mean over 128 keys stays within 4 standard errors of Cholesky's gradient
  # plus the O(1/t) bias of a β estimated from the same 8 probes (bounded here by 0.2 SE).
  n, draws = 100, 128
  x, y = _data(n, seed=1)
  p = _params(noise=0.01)
  op = operators.ExactOperator("rbf")
  ref = _cholesky_grad(op, p, x, y)
  keys = jax.random.split(jax.random.key(11), draws)
  var = {}
  for est in ("standard", "control_variate"):
    settings = likelihood.Settings(cg_tol=1e-11, num_probes=8, precond_rank=20,
                                   grad_estimator=est, deflate_pivots=False)  # paper's probes
    g = jax.jit(jax.vmap(jax.grad(lambda q, kk: likelihood._bbmm_mll_jit(
        op, settings, False, kk, q, x, y)[0]), in_axes=(None, 0)))(p, keys)
    g = np.stack([_flat(jax.tree.map(lambda v: v[i], g)) for i in range(draws)])
    mean, se = g.mean(0), g.std(0, ddof=1) / np.sqrt(draws)
    np.testing.assert_array_less(np.abs(mean - ref), 4.2 * se + 1e-7 * np.abs(ref) + 1e-9)
    var[est] = g.var(0, ddof=1)
  sel = slice(0, len(ref) - 1)  # all but the mean (its gradient −uᵀ1 has no probe noise)
  assert var["control_variate"][sel].sum() < 0.5 * var["standard"][sel].sum(), var


def test_reduced_cv_rank_and_orthogonal_form_stay_exact_at_full_rank():
  # cv_rank < k builds C from the leading pivots (still unbiased); with the orthogonal
  # preconditioner form and cv_rank ≥ k, C = P̂⁻¹ = K̂⁻¹ again gives the exact gradient.
  n = 50
  x, y = _data(n, seed=2)
  p = _params("matern12")
  op = operators.ExactOperator("matern12")
  ref = _cholesky_grad(op, p, x, y)
  s = likelihood.Settings(cg_tol=1e-12, num_probes=3, precond_rank=n,
                          grad_estimator="control_variate", precond_form="orthogonal")
  got = _flat(_grad_fn(op, s, y)(p, x, jax.random.key(5)))
  assert np.linalg.norm(got - ref) / np.linalg.norm(ref) < 1e-6
  low = _flat(_grad_fn(op, s._replace(cv_rank=10), y)(p, x, jax.random.key(5)))
  assert np.all(np.isfinite(low)) and np.linalg.norm(low - ref) / np.linalg.norm(ref) > 1e-6


def test_jit_equals_eager_and_vmap_equals_loop():
  n = 40
  x, y = _data(n, seed=3)
  p = _params()
  op = operators.ExactOperator("rbf")
  s = likelihood.Settings(num_probes=4, precond_rank=10, grad_estimator="control_variate")

  def f(q, key):
    return likelihood.bbmm_mll(key, op, q, x, y, s)[0]

  key = jax.random.key(7)
  eager = _flat(jax.grad(f)(p, key))
  np.testing.assert_allclose(_flat(jax.jit(jax.grad(f))(p, key)), eager, rtol=1e-9)
  keys = jax.random.split(key, 3)
  batched = jax.vmap(jax.grad(lambda q, k: likelihood._bbmm_mll_jit(op, s, False, k, q, x, y)[0]),
                     in_axes=(None, 0))(p, keys)
  for i in range(3):
    one = jax.grad(lambda q: likelihood._bbmm_mll_jit(op, s, False, keys[i], q, x, y)[0])(p)
    np.testing.assert_allclose(_flat(jax.tree.map(lambda v: v[i], batched)), _flat(one),
                               rtol=1e-8)


def test_many_hyperparameters_fall_back_to_the_standard_estimator_and_bad_rank_raises():
  # Per-point noise (n elements > CV_MAX_PARAMS): β = 0, the same gradient as "standard".
  from jaxpapers.bbmm import noise as noise_lib
  n = likelihood.CV_MAX_PARAMS + 6
  x, y = _data(n, seed=5)
  op = noise_lib.DiagonalNoiseOperator()
  p = _params()._replace(noise=jnp.full((n,), 0.05, jnp.float64))
  s = likelihood.Settings(num_probes=3, precond_rank=10, deflate_pivots=False)
  g = {e: _flat(_grad_fn(op, s._replace(grad_estimator=e), y)(p, x, jax.random.key(1)))
       for e in ("standard", "control_variate")}
  np.testing.assert_allclose(g["control_variate"], g["standard"], rtol=1e-12)
  with pytest.raises(ValueError, match="cv_rank"):
    likelihood.check_settings(s._replace(cv_rank=-1))


@pytest.mark.parametrize("est", ["standard", "control_variate"])
def test_gradient_spread_equals_the_gradient_and_predicts_its_error(est):
  # grad is jax.grad(bbmm_mll) at the same key (mean, kernel and noise alike); the standard error
  # it reports matches the spread of the gradient over independent keys.
  n, draws = 80, 48
  x, y = _data(n, seed=6)
  p = _params(noise=0.02)
  op = operators.ExactOperator("rbf")
  s = likelihood.Settings(cg_tol=1e-10, num_probes=16, precond_rank=6, grad_estimator=est)
  key = jax.random.key(2)
  spread = likelihood.gradient_spread(key, op, p, x, y, s)
  direct = jax.grad(lambda q: likelihood.bbmm_mll(key, op, q, x, y, s)[0])(p)
  np.testing.assert_allclose(_flat(spread.grad), _flat(direct), rtol=1e-7, atol=1e-9)
  keys = jax.random.split(jax.random.key(9), draws)
  g = jax.jit(jax.vmap(jax.grad(lambda q, k: likelihood._bbmm_mll_jit(op, s, False, k, q, x, y)[0]),
                       in_axes=(None, 0)))(p, keys)
  g = np.stack([_flat(jax.tree.map(lambda v: v[i], g)) for i in range(draws)])
  ses = np.stack([_flat(likelihood.gradient_spread(k, op, p, x, y, s).std_error)
                  for k in keys[:12]])
  sel = slice(0, len(_flat(p)) - 1)  # the mean's gradient has no probe noise
  ratio = ses.mean(0)[sel] / g.std(0, ddof=1)[sel]
  assert np.all((ratio > 0.6) & (ratio < 1.6)), ratio  # 48 draws: the spread is known to ~10 %
  assert spread.probes_for(float(spread.rel_std_error) / 2) in (64, 65)  # 16 · 2², ceil


def test_gradient_spread_rejects_what_it_cannot_split():
  x, y = _data(30)
  op = operators.ExactOperator("rbf")
  with pytest.raises(ValueError, match="variance_reduced"):
    likelihood.gradient_spread(0, op, _params(), x, y,
                               likelihood.Settings(grad_estimator="variance_reduced"))
  with pytest.raises(ValueError, match="rel_tol"):
    likelihood.gradient_spread(0, op, _params(), x, y, likelihood.Settings(num_probes=3)
                               ).probes_for(0.0)


def test_fit_raises_the_probe_count_to_meet_a_relative_standard_error():
  from jaxpapers.bbmm import train
  x, y = _data(60, seed=7)
  op = operators.ExactOperator("rbf")
  s = likelihood.Settings(num_probes=4, precond_rank=5)
  kw = dict(num_steps=2, settings=s, method="bbmm")
  spread = likelihood.gradient_spread(0, op, _params(), x, y, s)  # fit's own key 0, same probes
  want = spread.probes_for(float(spread.rel_std_error) / 3)  # ≈ 9× the 4 probes
  _, hist = train.fit(0, op, _params(), x, y, probe_rel_tol=float(spread.rel_std_error) / 3,
                      max_probes=1000, **kw)
  assert list(hist["num_probes"]) == [want, want] and 30 <= want <= 40
  _, capped = train.fit(0, op, _params(), x, y, probe_rel_tol=1e-6, max_probes=50, **kw)
  assert list(capped["num_probes"]) == [50, 50]
  _, loose = train.fit(0, op, _params(), x, y, probe_rel_tol=10.0, **kw)  # never lowered
  assert list(loose["num_probes"]) == [4, 4]
  _, chol = train.fit(0, op, _params(), x, y, num_steps=2, settings=s, method="cholesky",
                      probe_rel_tol=0.01)
  assert list(chol["num_probes"]) == [0, 0]
  with pytest.raises(ValueError, match="max_probes"):
    train.fit(0, op, _params(), x, y, probe_rel_tol=0.01, max_probes=2, **kw)
  with pytest.raises(ValueError, match="probe_rel_tol"):
    train.fit(0, op, _params(), x, y, probe_rel_tol=0.0, **kw)

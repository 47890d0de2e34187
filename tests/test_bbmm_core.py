"""BBMM core: mBCG, Lanczos, SLQ, pivoted Cholesky, MLL + custom gradient, LOVE, sharding."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers._src import mesh as mesh_lib
from jaxpapers._src import testing
from jaxpapers.bbmm import cg, data, kernels, likelihood, operators, precond, predict

pytestmark = pytest.mark.usefixtures("x64")  # float64 for the whole module (conftest)


def _data(n=200, d=2, seed=0, noise=0.01):
  kx, ky = jax.random.split(jax.random.key(seed))
  x = jax.random.uniform(kx, (n, d), jnp.float64)
  y = jnp.sin(6 * x[:, 0]) + jnp.cos(5 * x[:, -1]) + jnp.sqrt(noise) * jax.random.normal(ky, (n,))
  return x, y


def _params(d=2, ls=0.3, scale=1.0, noise=0.01, mean=0.1):
  return operators.GPParams(kernels.init_params("rbf", d, ls, scale, jnp.float64),
                            jnp.asarray(noise), jnp.asarray(mean))


# ----------------------------------------------------------------------------- mBCG / Lanczos


def test_cg_two_by_two_by_hand():
  # A = [[4, 1], [1, 3]], b = [1, 2]: r0 = b, α0 = bᵀb / bᵀAb = 5 / 20 = 0.25, and CG is exact
  # after n = 2 steps.
  a = jnp.array([[4.0, 1.0], [1.0, 3.0]])
  b = jnp.array([1.0, 2.0])
  res = cg.mbcg(lambda v: a @ v, b, tol=1e-12, max_iters=10, num_lanczos=2)
  np.testing.assert_allclose(res.alpha[0, 0], 0.25, rtol=1e-12)
  np.testing.assert_allclose(res.solution, np.linalg.solve(np.asarray(a), np.asarray(b)), rtol=1e-10)
  assert int(res.num_iters[0]) == 2
  # The 2-step Lanczos tridiagonal of a 2x2 matrix has A's eigenvalues.
  tri = cg.cg_tridiagonals(res.alpha, res.beta, res.lanczos_steps)[0]
  np.testing.assert_allclose(np.linalg.eigvalsh(tri), np.linalg.eigvalsh(np.asarray(a)), rtol=1e-10)


def test_mbcg_tridiagonal_equals_lanczos():
  x, _ = _data(60)
  k = kernels.matrix("rbf", _params().kernel, x, x) + 0.05 * jnp.eye(60)
  b = jax.random.normal(jax.random.key(3), (60, 3))

  @jax.jit
  def run(k, b):
    res = cg.mbcg(lambda v: k @ v, b, tol=1e-14, max_iters=8, num_lanczos=8)
    tris = cg.cg_tridiagonals(res.alpha, res.beta, res.lanczos_steps)
    refs = jax.vmap(lambda b0: cg.lanczos(lambda v: k @ v, b0, 8)[1], in_axes=1)(b)
    return tris, refs

  tris, refs = run(k, b)
  np.testing.assert_allclose(tris, refs, rtol=1e-6, atol=1e-8)


def test_mbcg_solves_match_cholesky_with_and_without_preconditioner():
  x, _ = _data(200)
  p = _params()
  op = operators.ExactOperator("rbf")
  state = op.prepare(p, x)
  khat = op.dense(state)
  b = jax.random.normal(jax.random.key(1), (200, 4))
  ref = np.linalg.solve(np.asarray(khat), np.asarray(b))

  @jax.jit
  def run(state, b):
    lmat, _ = precond.pivoted_cholesky(op.kernel_diag(state), lambda i: op.kernel_row(state, i),
                                       15)
    pre = precond.make_preconditioner(lmat, state.noise)
    return [cg.mbcg(lambda v: op.matmul(state, v), b, precond=pc, tol=1e-4, max_iters=1000)
            for pc in (None, pre.solve)]

  for res in run(state, b):
    assert bool(jnp.all(res.converged))
    err = np.linalg.norm(res.solution - ref, axis=0) / np.linalg.norm(ref, axis=0)
    assert np.all(err < 1e-3), err


def test_mbcg_freezes_converged_columns_without_nan():
  x, _ = _data(80)
  k = kernels.matrix("rbf", _params().kernel, x, x) + 0.1 * jnp.eye(80)
  evals, evecs = jnp.linalg.eigh(k)
  b = jnp.stack([jnp.zeros(80), evecs[:, -1], jax.random.normal(jax.random.key(0), (80,))], 1)
  res = cg.mbcg(lambda v: k @ v, b, tol=1e-8, max_iters=500, num_lanczos=30, record_history=True)
  assert np.all(np.isfinite(res.solution)) and np.all(np.isfinite(res.alpha))
  assert np.all(np.isfinite(res.beta))
  iters = np.asarray(res.num_iters)
  assert iters[0] == 0 and iters[1] == 1 and iters[2] > 10
  np.testing.assert_allclose(res.solution[:, 1], evecs[:, -1] / evals[-1], rtol=1e-8)
  assert np.all(res.solution[:, 0] == 0)
  assert bool(jnp.all(res.converged))
  hist = np.asarray(res.residual_history)
  assert np.all(np.isfinite(hist[: iters[2] + 1, 2])) and np.all(np.isnan(hist[iters[2] + 1:, 2]))
  np.testing.assert_allclose(hist[iters[2], 2], res.rel_residual[2])
  assert hist[0, 2] == 1.0 and hist[iters[2], 2] < 1e-8


def test_preconditioner_cuts_cg_iterations_twice():
  x = jnp.linspace(0, 1, 400)[:, None]
  p = operators.GPParams(kernels.init_params("rbf", 1, 0.2, 1.0, jnp.float64), jnp.asarray(1e-3),
                         jnp.asarray(0.0))
  op = operators.ExactOperator("rbf")
  state = op.prepare(p, x)
  b = jnp.sin(10 * x)
  lmat, _ = precond.pivoted_cholesky(op.kernel_diag(state), lambda i: op.kernel_row(state, i), 15)
  pre = precond.make_preconditioner(lmat, p.noise)
  plain = cg.mbcg(lambda v: op.matmul(state, v), b, tol=1e-6, max_iters=1000)
  pc = cg.mbcg(lambda v: op.matmul(state, v), b, precond=pre.solve, tol=1e-6, max_iters=1000)
  assert bool(plain.converged[0]) and bool(pc.converged[0])
  assert int(plain.num_iters[0]) >= 2 * int(pc.num_iters[0]), (plain.num_iters, pc.num_iters)


# ----------------------------------------------------------------------------- preconditioner


def test_pivoted_cholesky_full_rank_is_exact_and_logdet_matches():
  x, _ = _data(40)
  kp = _params().kernel
  k = kernels.matrix("rbf", kp, x, x) + 1e-3 * jnp.eye(40)
  pc = jax.jit(lambda k, rank: precond.pivoted_cholesky(jnp.diag(k), lambda i: k[i], rank),
               static_argnums=1)
  lmat, piv = pc(k, 40)
  np.testing.assert_allclose(lmat @ lmat.T, k, atol=1e-8)
  assert len(set(np.asarray(piv).tolist())) == 40
  assert int(piv[0]) == int(jnp.argmax(jnp.diag(k)))
  low, _ = pc(k, 6)
  errs = [float(jnp.trace(k - l @ l.T)) for l in (low[:, :2], low[:, :4], low)]
  assert errs[0] > errs[1] > errs[2] >= -1e-9
  pre = precond.make_preconditioner(low, jnp.asarray(0.05))
  dense = low @ low.T + 0.05 * jnp.eye(40)
  np.testing.assert_allclose(pre.logdet(), np.linalg.slogdet(np.asarray(dense))[1], rtol=1e-10)
  v = jax.random.normal(jax.random.key(0), (40, 2))
  np.testing.assert_allclose(pre.solve(v), np.linalg.solve(np.asarray(dense), np.asarray(v)),
                             rtol=1e-8, atol=1e-10)


def test_blocked_pivoted_cholesky_equals_the_unblocked_loop():
  """Blocks change only which columns each step multiplies by (the finished ones and the block's
  own, never the zeros beyond): pivots identical, factor equal to rounding, for block sizes that
  do and do not divide the rank, and the exact-exhaustion rule (zero columns) kept."""
  x, _ = _data(60)
  k = kernels.matrix("rbf", _params().kernel, x, x) + 1e-3 * jnp.eye(60)
  pc = jax.jit(lambda k, rank, block: precond.pivoted_cholesky(jnp.diag(k), lambda i: k[i], rank,
                                                               block=block),
               static_argnums=(1, 2))
  ref, ref_piv = pc(k, 25, 25)  # one block: the plain loop
  for block in (1, 4, 7, 25, 64):
    lmat, piv = pc(k, 25, block)
    np.testing.assert_array_equal(piv, ref_piv)
    np.testing.assert_allclose(lmat, ref, atol=1e-12)
  low = jnp.asarray(np.random.default_rng(0).standard_normal((30, 3)))  # rank-3 PSD matrix
  kk = low @ low.T
  lmat, _ = pc(kk, 8, 3)
  np.testing.assert_allclose(lmat @ lmat.T, kk, atol=1e-10)
  assert float(jnp.max(jnp.abs(lmat[:, 3:]))) == 0.0  # exhausted: the remaining columns are 0
  with pytest.raises(ValueError, match="block must be a positive int"):
    precond.pivoted_cholesky(jnp.ones(3), lambda i: jnp.ones(3), 2, block=0)


def test_slq_term_vanishes_when_preconditioner_is_the_matrix():
  x, _ = _data(50)
  p = _params(noise=0.1)
  op = operators.ExactOperator("rbf")

  @jax.jit
  def run(p):
    state = op.prepare(p, x)
    k = op.dense(state) - p.noise * jnp.eye(50)
    lmat, _ = precond.pivoted_cholesky(jnp.diag(k), lambda i: k[i], 50, rel_tol=0.0)
    pre = precond.make_preconditioner(lmat, p.noise)
    z = pre.sample(jax.random.normal(jax.random.key(0), (50, 10)),
                   jax.random.normal(jax.random.key(1), (50, 10)))
    res = cg.mbcg(lambda v: op.matmul(state, v), z, precond=pre.solve, tol=1e-10, num_lanczos=20)
    slq = likelihood.slq_logdet(res.alpha, res.beta, res.lanczos_steps,
                                jnp.sum(z * pre.solve(z), 0))
    return slq, pre.logdet(), op.dense(state)

  slq, logdet_p, dense = run(p)
  assert abs(float(slq)) < 1e-6
  np.testing.assert_allclose(logdet_p, np.linalg.slogdet(np.asarray(dense))[1], rtol=1e-8)


# ----------------------------------------------------------------------------- likelihood


@pytest.fixture(scope="module")
def problem():
  x, y = _data(200, noise=0.01)
  return x, y, _params(noise=0.05), operators.ExactOperator("rbf", block_size=128)


@pytest.mark.parametrize("spherical", [True, False])
def test_slq_logdet_accuracy_one_draw_and_mean(problem, spherical):
  x, y, p, op = problem
  p = p._replace(noise=jnp.asarray(0.01))  # small noise: needs >= 50 Lanczos steps
  settings = likelihood.Settings(num_probes=10, num_lanczos=50, precond_rank=15,
                                 spherical_probes=spherical)
  exact = float(np.linalg.slogdet(np.asarray(op.dense(op.prepare(p, x))))[1])
  fn = jax.jit(jax.vmap(lambda k: likelihood.bbmm_mll(k, op, p, x, y, settings)[1].logdet))
  est = np.asarray(fn(jax.random.split(jax.random.key(0), 20)))
  assert abs(est[0] - exact) / abs(exact) < 0.02
  assert abs(est.mean() - exact) / abs(exact) < 0.005, (est.mean(), exact)


def test_mll_value_and_custom_gradient_match_cholesky(problem):
  x, y, p, op = problem
  settings = likelihood.Settings(num_probes=10, num_lanczos=50, precond_rank=15, cg_tol=1e-4)
  exact, g_exact = jax.value_and_grad(lambda q: likelihood.cholesky_mll(op, q, x, y))(p)
  fn = jax.jit(jax.vmap(jax.value_and_grad(
      lambda q, k: likelihood.bbmm_mll(k, op, q, x, y, settings)[0]), in_axes=(None, 0)))
  vals, grads = fn(p, jax.random.split(jax.random.key(1), 20))
  assert abs(float(vals.mean()) - float(exact)) / abs(float(exact)) < 0.05
  g_mean = jax.tree.map(lambda a: np.asarray(a).mean(0), grads)
  flat = lambda t: np.concatenate([np.ravel(a) for a in jax.tree.leaves(t)])
  err = np.linalg.norm(flat(g_mean) - flat(g_exact)) / np.linalg.norm(flat(g_exact))
  assert err < 0.05, (g_mean, g_exact)
  # The mean gradient is exact (it only needs the solve): d/dc = Σ K̂⁻¹ r.
  np.testing.assert_allclose(g_mean.mean, g_exact.mean, rtol=1e-3)


def test_jit_value_and_grad_compiles_once_and_same_key_same_output(problem):
  x, y, p, op = problem
  settings = likelihood.Settings(num_probes=4, num_lanczos=10)
  counter = testing.TraceCounter(lambda q, k: likelihood.bbmm_mll(k, op, q, x, y, settings)[0])
  fn = jax.jit(jax.value_and_grad(counter))
  a = fn(p, jax.random.key(5))
  b = fn(p._replace(noise=jnp.asarray(0.02)), jax.random.key(6))
  c = fn(p, jax.random.key(5))
  assert counter.count == 1
  testing.assert_trees_equal(a, c)
  assert float(a[0]) != float(b[0])
  eager = jax.value_and_grad(lambda q, k: likelihood.bbmm_mll(k, op, q, x, y, settings)[0])(
      p, jax.random.key(5))
  testing.assert_trees_allclose(a, eager, rtol=1e-6, atol=1e-6)


def test_vmap_over_hyperparameters_equals_loop(problem):
  x, y, p, op = problem
  settings = likelihood.Settings(num_probes=4, num_lanczos=20)
  noises = jnp.array([0.01, 0.05, 0.2])
  fn = lambda s: likelihood.bbmm_mll(jax.random.key(0), op, p._replace(noise=s), x, y, settings)[0]
  testing.assert_vmap_matches_loop(fn, (noises,), rtol=1e-6, atol=1e-6)


def test_cholesky_fallback_for_small_n(problem):
  x, y, p, op = problem
  v, info = likelihood.mll(jax.random.key(0), op, p, x, y)  # n = 300 <= 800
  np.testing.assert_allclose(v, likelihood.cholesky_mll(op, p, x, y), rtol=1e-12)
  assert bool(info.converged) and int(info.num_iters) == 0


def test_ill_conditioned_kernel_reports_nonconvergence():
  x = jnp.linspace(0, 1, 200)[:, None]
  p = operators.GPParams(kernels.init_params("rbf", 1, 2.0, 1.0, jnp.float64),
                         jnp.asarray(1e-10), jnp.asarray(0.0))
  op = operators.ExactOperator("rbf")
  y = jnp.sin(3 * x[:, 0])
  settings = likelihood.Settings(cg_tol=1e-6, max_cg_iters=30, precond_rank=0, num_lanczos=10,
                                 num_probes=2)
  with pytest.warns(likelihood.ConvergenceWarning, match="relative residual .* after 30 iterations"):
    v, info = likelihood.bbmm_mll(jax.random.key(0), op, p, x, y, settings)
  assert not bool(info.converged)
  with pytest.raises(likelihood.ConvergenceError, match="did not converge"):
    likelihood.check_converged(info)


# ----------------------------------------------------------------------------- prediction


def test_love_and_cg_variances_match_exact(problem):
  x, y, p, op = problem
  p = p._replace(noise=jnp.asarray(0.05))
  xs = jax.random.uniform(jax.random.key(9), (40, 2), jnp.float64)
  mean_ref, var_ref = predict.cholesky_predict(op, p, x, y, xs)
  cache = predict.prediction_cache(op, p, x, y, likelihood.Settings(eval_cg_tol=1e-6),
                                   love_rank=60)
  np.testing.assert_allclose(predict.predictive_mean(op, cache, xs), mean_ref, atol=1e-4)
  love = predict.love_variance(op, cache, xs)
  assert np.max(np.abs(love - var_ref)) < 1e-2
  exact = predict.exact_variance(op, cache, xs, tol=1e-8, batch_size=16)
  np.testing.assert_allclose(exact, var_ref, atol=1e-6)


# ----------------------------------------------------------------------------- operators


def test_blocked_and_sharded_matmul_equal_dense_and_gradients_match():
  x, _ = _data(203, d=3)
  kp = kernels.init_params("matern52", 3, 0.4, 1.3, jnp.float64)
  v = jax.random.normal(jax.random.key(2), (203, 3))
  dense = kernels.matrix("matern52", kp, x, x) @ v
  blocked = jax.jit(lambda kp: operators.blocked_kernel_matmul("matern52", kp, x, x, v, 64))(kp)
  np.testing.assert_allclose(blocked, dense, rtol=1e-10, atol=1e-10)
  with testing.fake_devices_required(8):
    mesh = mesh_lib.make_mesh("data")
    sharded = jax.jit(lambda kp: operators.sharded_kernel_matmul("matern52", kp, x, x, v, 16,
                                                                  mesh))(kp)
    np.testing.assert_allclose(sharded, dense, rtol=1e-10, atol=1e-10)
    g_sh = jax.grad(lambda kp: jnp.sum(
        operators.sharded_kernel_matmul("matern52", kp, x, x, v, 16, mesh) ** 2))(kp)
  g_dense = jax.grad(lambda kp: jnp.sum((kernels.matrix("matern52", kp, x, x) @ v) ** 2))(kp)
  g_blk = jax.grad(lambda kp: jnp.sum(
      operators.blocked_kernel_matmul("matern52", kp, x, x, v, 64) ** 2))(kp)
  testing.assert_trees_allclose(g_blk, g_dense, rtol=1e-9, atol=1e-9)
  testing.assert_trees_allclose(g_sh, g_dense, rtol=1e-9, atol=1e-9)


def test_sharded_mll_equals_serial(problem):
  x, y, p, _ = problem
  settings = likelihood.Settings(num_probes=4, num_lanczos=20)
  with testing.fake_devices_required(8):
    mesh = mesh_lib.make_mesh("data")
    f = lambda op: jax.jit(jax.value_and_grad(
        lambda q: likelihood.bbmm_mll(jax.random.key(0), op, q, x, y, settings)[0]))(p)
    serial = f(operators.ExactOperator("rbf", block_size=64))
    sharded = f(operators.ExactOperator("rbf", block_size=64, mesh=mesh))
  # CG amplifies the round-off of a different summation order a little.
  testing.assert_trees_allclose(sharded, serial, rtol=1e-5, atol=1e-5)
  dense_op = operators.ExactOperator("rbf", materialize=True)
  v = jax.random.normal(jax.random.key(1), (200, 3))
  np.testing.assert_allclose(dense_op.matmul(dense_op.prepare(p, x), v),
                             operators.ExactOperator("rbf", block_size=64).matmul(
                                 dense_op.prepare(p, x)._replace(dense_k=None), v), rtol=1e-10)


def test_sgpr_matmul_and_bound_equal_dense_definition():
  x, y = _data(120)
  z = x[:15] + 0.01
  p = _params(noise=0.1)._replace(inducing=z)
  op = operators.SGPROperator("rbf", jitter=0.0)
  v = jax.random.normal(jax.random.key(0), (120, 2))

  @jax.jit
  def run(p):
    state = op.prepare(p, x)
    kxz = kernels.matrix("rbf", p.kernel, x, z)
    kzz = kernels.matrix("rbf", p.kernel, z, z)
    return op.matmul(state, v), kxz @ jnp.linalg.solve(kzz, kxz.T)

  mv, q = map(np.asarray, run(p))
  np.testing.assert_allclose(mv, (q + 0.1 * np.eye(120)) @ v, rtol=1e-6, atol=1e-6)
  # Titsias bound: log N(y | c, Q + σ²I) − tr(K − Q) / (2σ²).
  r = np.asarray(y - p.mean)
  c = q + 0.1 * np.eye(120)
  ref = (-0.5 * r @ np.linalg.solve(c, r) - 0.5 * np.linalg.slogdet(c)[1]
         - 60 * np.log(2 * np.pi) - (120 * 1.0 - np.trace(q)) / 0.2)
  np.testing.assert_allclose(likelihood.cholesky_mll(op, p, x, y), ref, rtol=1e-6)
  settings = likelihood.Settings(num_probes=10, num_lanczos=30, cg_tol=1e-6)
  val, info = likelihood.bbmm_mll(jax.random.key(0), op, p, x, y, settings)
  assert bool(info.converged)
  np.testing.assert_allclose(float(val), ref, rtol=0.02)


def test_ski_matmul_equals_dense_definition_and_interpolates_quadratics():
  x, _ = _data(90)
  p = _params(ls=0.4, scale=1.5, noise=0.05)
  op = operators.SKIOperator("rbf", (12, 10))
  v = jax.random.normal(jax.random.key(0), (90, 2))
  x1 = x[:, :1]
  p1 = _params(d=1, ls=0.4, scale=1.5, noise=0.05)
  fine = operators.SKIOperator("rbf", (200,))

  @jax.jit
  def run(p, p1):
    state = op.prepare(p, x)
    return dict(mv=op.matmul(state, v), dense=op.dense(state), diag=op.kernel_diag(state),
                row=op.kernel_row(state, 7), w=op.interpolation_matrix(state),
                grid=op.grid_points(state),
                kfine=fine.dense(fine.prepare(p1, x1)) - 0.05 * jnp.eye(90),
                kexact=kernels.matrix("rbf", p1.kernel, x1, x1))

  o = jax.tree.map(np.asarray, run(p, p1))
  np.testing.assert_allclose(o["mv"], o["dense"] @ v, rtol=1e-9, atol=1e-9)
  np.testing.assert_allclose(o["diag"], np.diag(o["dense"]) - 0.05, rtol=1e-9)
  np.testing.assert_allclose(o["row"], o["dense"][7] - 0.05 * np.eye(90)[7], atol=1e-9)
  np.testing.assert_allclose(o["w"].sum(1), 1.0, rtol=1e-12)
  f = lambda u: 1 + 2 * u[:, 0] - u[:, 1] + 0.5 * u[:, 0] ** 2 + u[:, 0] * u[:, 1]
  np.testing.assert_allclose(o["w"] @ f(o["grid"]), f(np.asarray(x)), atol=1e-9)
  # A fine grid reproduces the exact RBF kernel (1-D).
  np.testing.assert_allclose(o["kfine"], o["kexact"], atol=1e-4)


def test_toeplitz_matmul_equals_dense():
  col = jnp.exp(-0.3 * jnp.arange(7.0))
  dense = col[jnp.abs(jnp.arange(7)[:, None] - jnp.arange(7)[None, :])]
  v = jax.random.normal(jax.random.key(0), (3, 7, 2))
  np.testing.assert_allclose(operators.toeplitz_matmul(col, v, axis=1),
                             jnp.einsum("ij,bjt->bit", dense, v), rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------- kernels


def test_kernel_values_by_hand():
  x1 = jnp.array([[0.0, 0.0]])
  x2 = jnp.array([[0.6, 0.8]])  # distance 1 with unit lengthscales, 0.5 with ℓ = 2
  kp = kernels.KernelParams(jnp.array([2.0, 2.0]), jnp.asarray(3.0))
  r = 0.5
  want = {"rbf": 3 * np.exp(-r**2 / 2), "matern12": 3 * np.exp(-r),
          "matern32": 3 * (1 + np.sqrt(3) * r) * np.exp(-np.sqrt(3) * r),
          "matern52": 3 * (1 + np.sqrt(5) * r + 5 * r**2 / 3) * np.exp(-np.sqrt(5) * r)}
  for name, val in want.items():
    np.testing.assert_allclose(kernels.kernel_matrix(name, kp, x1, x2)[0, 0], val, rtol=1e-12)
  spec = ("sum", "rbf", ("product", "matern12", "matern52"))
  params = (kp, (kp, kp))
  np.testing.assert_allclose(kernels.kernel_matrix(spec, params, x1, x2)[0, 0],
                             want["rbf"] + want["matern12"] * want["matern52"], rtol=1e-12)
  np.testing.assert_allclose(kernels.diag(spec, params, x1), [3 + 9.0])
  g = jax.grad(lambda ls: jnp.sum(kernels.matrix(
      "matern12", kernels.KernelParams(ls, jnp.asarray(1.0)), x2, jnp.concatenate([x1, x2]))))(
          jnp.array([1.0, 1.0]))
  assert np.all(np.isfinite(g))


# ----------------------------------------------------------------------------- bad input


def test_bad_inputs_raise_clear_errors(problem):
  x, y, p, op = problem
  key = jax.random.key(0)
  with pytest.raises(ValueError, match="params.noise"):
    likelihood.bbmm_mll(key, op, p._replace(noise=jnp.asarray(0.0)), x, y)
  bad_ls = p._replace(kernel=p.kernel._replace(lengthscale=jnp.array([0.3, -1.0])))
  with pytest.raises(ValueError, match="lengthscale"):
    likelihood.bbmm_mll(key, op, bad_ls, x, y)
  with pytest.raises(ValueError, match="y has 199 entries"):
    likelihood.bbmm_mll(key, op, p, x, y[:-1])
  with pytest.raises(ValueError, match="x contains NaN"):
    likelihood.bbmm_mll(key, op, p, x.at[0, 0].set(jnp.nan), y)
  with pytest.raises(ValueError, match="y contains NaN"):
    likelihood.mll(key, op, p, x, y.at[3].set(jnp.nan), method="cholesky")
  with pytest.raises(ValueError, match="lengthscale must have shape"):
    likelihood.bbmm_mll(key, op, p, jnp.ones((200, 3)), y)
  with pytest.raises(ValueError, match="kernel must be one of"):
    operators.ExactOperator("gaussian")
  with pytest.raises(ValueError, match="method"):
    likelihood.mll(key, op, p, x, y, method="lu")
  with pytest.raises(ValueError, match="b must have rank"):
    cg.mbcg(lambda v: v, jnp.ones((2, 2, 2)))
  with pytest.raises(ValueError, match="grid_size"):
    operators.SKIOperator("rbf", (4,))
  with pytest.raises(ValueError, match="settings.min_lanczos"):
    likelihood.bbmm_mll(key, op, p, x, y, likelihood.Settings(min_lanczos=-1))
  with pytest.raises(TypeError, match="params must be a GPParams"):
    likelihood.cholesky_mll(op, {"noise": 1.0}, x, y)


def test_orthogonal_preconditioner_form_equals_dense_and_woodbury():
  rng = np.random.default_rng(0)
  lmat = jnp.asarray(rng.normal(size=(120, 15)), jnp.float32)
  noise = 0.3
  dense = np.asarray(lmat, np.float64) @ np.asarray(lmat, np.float64).T + noise * np.eye(120)
  v = jnp.asarray(rng.normal(size=(120, 3)), jnp.float32)
  want = np.linalg.solve(dense, np.asarray(v, np.float64))
  for orthogonal in (False, True):
    pre = precond.make_preconditioner(lmat, noise, orthogonal=orthogonal)
    np.testing.assert_allclose(pre.solve(v), want, rtol=2e-3, atol=1e-5)
    np.testing.assert_allclose(pre.solve(v[:, 0]), want[:, 0], rtol=2e-3, atol=1e-5)
    assert float(pre.logdet()) == pytest.approx(np.linalg.slogdet(dense)[1], rel=1e-5)


def test_orthogonal_preconditioner_converges_where_float32_woodbury_breaks_down():
  # σ² = 1e-4 against kernel eigenvalues ~10³: v − R Rᵀ v cancels in float32 and the Woodbury
  # preconditioner stops being positive definite; the orthogonal form does not.
  x, y = data.synthetic(jax.random.key(0), 2000, 3, lengthscale=0.3, noise=0.1)
  p = operators.GPParams(kernels.init_params("rbf", 3, 0.69, 0.69, jnp.float32),
                         jnp.asarray(1e-4, jnp.float32), jnp.zeros((), jnp.float32))
  op = operators.ExactOperator("rbf", materialize=True)
  khat = np.asarray(op.dense(op.prepare(p, x)), np.float64)
  yy = np.asarray(y, np.float64)
  exact = (-0.5 * yy @ np.linalg.solve(khat, yy) - 0.5 * np.linalg.slogdet(khat)[1]
           - 0.5 * len(yy) * np.log(2 * np.pi))
  out = {}
  with pytest.warns(likelihood.ConvergenceWarning, match="did not converge"):
    out["woodbury"] = likelihood.bbmm_mll(jax.random.key(0), op, p, x, y,
                                          likelihood.Settings(precond_rank=300))
  with warnings.catch_warnings():
    warnings.simplefilter("error", likelihood.ConvergenceWarning)
    out["orthogonal"] = likelihood.bbmm_mll(jax.random.key(0), op, p, x, y, likelihood.Settings(
        precond_rank=300, precond_form="orthogonal"))
  assert not bool(out["woodbury"][1].converged)
  value, info = out["orthogonal"]
  assert bool(info.converged)
  assert abs(float(value) - exact) / abs(exact) < 5e-3
  with pytest.raises(ValueError, match="settings.precond_form"):
    likelihood.bbmm_mll(jax.random.key(0), op, p, x, y, likelihood.Settings(precond_form="lu"))

"""Core properties of RMFNL (Yao & Kwok, NeurIPS 2018): losses, surrogate, dual, APG, MM, layouts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers._src import testing
from jaxpapers.robust_mf import data, losses, rmfnl
from jaxpapers.robust_mf import observations as obs_lib

LOSS_NAMES = ("l1", "lsp", "geman", "laplace")


@pytest.fixture(autouse=True)
def _x64():
  with jax.enable_x64(True):
    yield


def _problem(seed=0, m=12, n=9, r=2, density=0.6, outliers=0.2):
  rng = np.random.default_rng(seed)
  u, v = rng.normal(size=(m, r)), rng.normal(size=(n, r))
  mask = rng.random((m, n)) < density
  mask[np.arange(m), rng.integers(0, n, m)] = True  # every row observed
  mask[rng.integers(0, m, n), np.arange(n)] = True  # every column observed
  rows, cols = np.nonzero(mask)
  vals = (u @ v.T)[rows, cols] + 0.05 * rng.normal(size=rows.size)
  bad = rng.random(rows.size) < outliers
  vals[bad] += rng.uniform(-5, 5, bad.sum())
  return obs_lib.sparse_observations(rows, cols, vals, (m, n), dtype=np.float64)


def test_loss_values_by_hand():
  np.testing.assert_allclose(losses.lsp(1.0, 1.0), np.log(2.0))
  np.testing.assert_allclose(losses.lsp(3.0, 0.5), np.log(7.0))
  np.testing.assert_allclose(losses.geman(1.0, 1.0), 0.5)
  np.testing.assert_allclose(losses.geman(3.0, 1.0), 0.75)
  np.testing.assert_allclose(losses.laplace(2.0, 2.0), 1.0 - np.exp(-1.0))
  np.testing.assert_allclose(losses.l1(2.5), 2.5)
  np.testing.assert_allclose(losses.lsp_derivative(1.0, 1.0), 0.5)
  np.testing.assert_allclose(losses.geman_derivative(1.0, 1.0), 0.25)
  np.testing.assert_allclose(losses.laplace_derivative(0.0, 0.5), 2.0)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_loss_derivative_matches_autodiff_and_concavity(name):
  loss = losses.get_loss(name)
  z = jnp.linspace(0.0, 6.0, 61)
  for theta in (0.3, 1.0, 2.5):
    auto = jax.vmap(jax.grad(lambda x: loss.value(x, theta)))(z)
    np.testing.assert_allclose(loss.derivative(z, theta), auto, rtol=1e-12, atol=1e-12)
    # concavity: φ(z) ≤ φ(z0) + φ'(z0)(z − z0) for all pairs (the MM linearisation).
    z0 = z[:, None]
    bound = loss.value(z0, theta) + loss.derivative(z0, theta) * (z[None, :] - z0)
    assert np.all(loss.value(z[None, :], theta) <= bound + 1e-12)
    assert float(loss.value(0.0, theta)) == 0.0


def test_get_loss_rejects_unknown():
  with pytest.raises(ValueError, match="loss must be one of"):
    losses.get_loss("huber")


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_surrogate_majorizes_and_touches(name):
  obs = _problem(1)
  m, n = obs.shape
  rng = np.random.default_rng(2)
  u0, v0 = rng.normal(size=(m, 2)), rng.normal(size=(n, 2))
  lam, theta = 0.3, 0.7
  sur = rmfnl.build_surrogate(obs, u0, v0, lam, name, theta)
  h0 = rmfnl.objective(obs, u0, v0, lam, name, theta)
  f0 = rmfnl.surrogate_value(obs, sur, jnp.zeros_like(u0), jnp.zeros_like(v0))
  np.testing.assert_allclose(f0, h0, rtol=1e-13)
  for scale in (1e-3, 0.1, 1.0, 5.0):
    for _ in range(5):
      du, dv = scale * rng.normal(size=(m, 2)), scale * rng.normal(size=(n, 2))
      f = rmfnl.surrogate_value(obs, sur, du, dv)
      h = rmfnl.objective(obs, u0 + du, v0 + dv, lam, name, theta)
      assert float(f) >= float(h) - 1e-10 * abs(float(h)), (scale, float(f), float(h))


def test_dual_gradient_matches_autodiff_and_weak_duality():
  obs = _problem(3)
  m, n = obs.shape
  rng = np.random.default_rng(4)
  u0, v0 = rng.normal(size=(m, 2)), rng.normal(size=(n, 2))
  sur = rmfnl.build_surrogate(obs, u0, v0, 0.2, "lsp", 0.5)
  s = jnp.asarray(rng.uniform(-1, 1, obs.nnz)) * sur.weights
  auto = jax.grad(lambda x: rmfnl.dual_value(obs, sur, x))(s)
  np.testing.assert_allclose(rmfnl.dual_grad(obs, sur, s), auto, rtol=1e-10, atol=1e-12)
  d = rmfnl.dual_value(obs, sur, s)
  du, dv = rmfnl.primal_from_dual(obs, sur, s)
  # The Lagrangian minimiser's primal value upper-bounds D(S) (weak duality), as does any point.
  assert float(rmfnl.surrogate_value(obs, sur, du, dv)) >= float(d)
  for _ in range(5):
    pu, pv = rng.normal(size=(m, 2)), rng.normal(size=(n, 2))
    assert float(rmfnl.surrogate_value(obs, sur, pu, pv)) >= float(d)


def test_lipschitz_bound_dominates_hessian():
  obs = _problem(5)
  m, n = obs.shape
  rng = np.random.default_rng(6)
  sur = rmfnl.build_surrogate(obs, rng.normal(size=(m, 2)), rng.normal(size=(n, 2)), 0.1, "l1")
  # ∇D is affine in S, so its Jacobian's columns are ∇D(e_k) − ∇D(0).
  eye = jnp.eye(obs.nnz)
  grad0 = rmfnl.dual_grad(obs, sur, jnp.zeros(obs.nnz))
  hess = jax.vmap(lambda e: rmfnl.dual_grad(obs, sur, e) - grad0)(eye)
  np.testing.assert_allclose(hess, hess.T, atol=1e-10)
  top = np.max(np.abs(np.linalg.eigvalsh(np.asarray(hess))))
  bound = float(rmfnl.lipschitz_constant(obs, sur))
  assert top <= bound * (1 + 1e-10)
  assert bound <= 2.0 * top + 1e-9  # the block bound is at most the sum of two block norms


@pytest.mark.parametrize("r", [1, 2, 5, 12])
def test_psd_top_eigenvalue_bound_is_a_tight_upper_bound(r):
  rng = np.random.default_rng(r)
  a = rng.normal(size=(300, r, 2 * r)) * rng.exponential(size=(300, 1, 1)) ** 3
  a[:, :, :r] *= rng.exponential(size=(300, 1, r))  # spread the spectra
  gram = a @ np.swapaxes(a, 1, 2)
  exact = np.linalg.eigvalsh(gram)[:, -1]
  bound = np.asarray(rmfnl._psd_top_eigenvalue_bound(jnp.asarray(gram)))
  assert np.all(bound >= exact * (1 - 1e-12))
  assert np.all(bound <= exact * r ** (1 / 64) * (1 + 1e-12))
  np.testing.assert_array_equal(rmfnl._psd_top_eigenvalue_bound(jnp.zeros((2, r, r))), 0.0)


def test_relaxed_rho_grows_only_without_progress():
  # RMF-MM's continuation: ρ is raised (× rho_growth) only after a step that lowers H by less
  # than progress_tol (a rejected step included) and kept after a step that makes progress.
  obs = _problem(17, m=20, n=15)
  m, n = obs.shape
  rng = np.random.default_rng(18)
  state = rmfnl.init_state(obs, jnp.asarray(3.0 * rng.normal(size=(m, 2))),
                           jnp.asarray(3.0 * rng.normal(size=(n, 2))), 0.1, "l1", rho=0.05)
  seen = set()
  for _ in range(25):
    new, info = rmfnl.mm_step(obs, state, 0.1, "l1", max_inner=200, rho_growth=2.0,
                              progress_tol=1e-3)
    decrease = (float(state.objective) - float(new.objective)) / float(state.objective)
    progressed = bool(info.accepted) and decrease >= 1e-3
    expected = float(state.rho) if progressed else min(2.0 * float(state.rho), 1.0)
    if float(state.rho) < 1.0:
      seen.add(progressed)
    np.testing.assert_allclose(float(new.rho), expected, rtol=1e-12)
    assert float(new.objective) <= float(state.objective) * (1 + 1e-12)  # monotone
    state = new
  assert seen == {True, False}  # both branches were exercised while ρ < 1


@pytest.mark.parametrize("restart", [True, False])
def test_apg_reaches_small_duality_gap(restart):
  obs = _problem(7)
  m, n = obs.shape
  rng = np.random.default_rng(8)
  sur = rmfnl.build_surrogate(obs, rng.normal(size=(m, 2)), rng.normal(size=(n, 2)), 0.1,
                              "laplace", 1.0)
  res = rmfnl.solve_dual(obs, sur, jnp.zeros(obs.nnz), tol=1e-5, max_iters=5000,
                         restart=restart)
  assert float(res.gap) >= -1e-10  # weak duality
  assert float(res.gap) <= 1e-3 * abs(float(res.primal))
  assert np.all(np.abs(res.s) <= sur.weights + 1e-15)
  np.testing.assert_allclose(res.primal - res.dual, res.gap)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_mm_objective_decreases_monotonically(name):
  obs = _problem(9, m=15, n=12)
  key = jax.random.key(0)
  rng = np.random.default_rng(0)
  init = (rng.normal(size=(15, 2)), rng.normal(size=(12, 2)))
  res = rmfnl.fit(key, obs, 2, name, theta=0.5, init=init, max_outer=12, inner_tol=1e-9,
                  outer_tol=-1.0, max_inner=3000)
  objs = np.asarray(res.objectives)[: int(res.num_steps) + 1]
  gaps = np.asarray(res.gaps)[: int(res.num_steps)]
  assert int(res.num_steps) == 12
  # Exact MM (ρ = 1): H_{t+1} ≤ F_t(Δ) ≤ min F_t + gap_t ≤ H_t + gap_t.
  assert np.all(np.diff(objs) <= gaps + 1e-12 * np.abs(objs[:-1]))
  assert np.all(np.diff(objs) <= 1e-7 * np.abs(objs[:-1]))
  assert objs[-1] < objs[0]


def test_mm_step_surrogate_bounds_new_objective_and_jit_matches_eager():
  obs = _problem(10)
  m, n = obs.shape
  rng = np.random.default_rng(11)
  state = rmfnl.init_state(obs, jnp.asarray(rng.normal(size=(m, 2))),
                           jnp.asarray(rng.normal(size=(n, 2))), 0.2, "geman", 0.8)
  step = lambda st: rmfnl.mm_step(obs, st, 0.2, "geman", 0.8, max_inner=5, check_every=5)
  new, info = testing.assert_jit_matches_eager(step, state, rtol=1e-9, atol=1e-9)
  assert bool(info.accepted)
  assert float(info.surrogate) >= float(new.objective) - 1e-10
  assert float(new.objective) <= float(state.objective) + float(info.gap) + 1e-10


def test_sparse_path_equals_dense_mask_path():
  obs = _problem(12, m=14, n=11, density=0.5)
  dense = obs_lib.to_dense(obs)
  key = jax.random.key(3)
  kw = dict(max_outer=4, max_inner=30, inner_tol=-1.0, outer_tol=-1.0, check_every=5)
  # ρ0 = 0.05 < 1 exercises the relaxed (accept/reject) steps as well as the exact ones.
  a = rmfnl.fit(key, obs, 2, "lsp", theta=0.5, rho0=0.05, rho_growth=3.0, **kw)
  b = rmfnl.fit(key, dense, 2, "lsp", theta=0.5, rho0=0.05, rho_growth=3.0, **kw)
  for x, y in ((a.u, b.u), (a.v, b.v), (a.objectives, b.objectives), (a.gaps, b.gaps)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-10, atol=1e-10)
  np.testing.assert_array_equal(a.apg_iterations, b.apg_iterations)


def test_sparse_ops_match_dense_reference():
  obs = _problem(13)
  dense = obs_lib.to_dense(obs)
  rng = np.random.default_rng(14)
  a, b = rng.normal(size=(obs.shape[0], 3)), rng.normal(size=(obs.shape[1], 3))
  s = rng.normal(size=obs.nnz)
  s_dense = np.zeros(obs.shape)
  s_dense[np.asarray(obs.rows), np.asarray(obs.cols)] = s
  np.testing.assert_allclose(obs_lib.left(obs, s, b), s_dense @ b, rtol=1e-12)
  np.testing.assert_allclose(obs_lib.right(obs, s, a), s_dense.T @ a, rtol=1e-12)
  np.testing.assert_allclose(obs_lib.sample(obs, a, b), (a @ b.T)[obs.rows, obs.cols])
  np.testing.assert_allclose(obs_lib.sample(dense, a, b), np.asarray(dense.mask) * (a @ b.T))
  np.testing.assert_allclose(obs_lib.row_sums(obs, s), s_dense.sum(1), atol=1e-12)


def test_rmfnl_l1_sparse_and_dense_layouts_reach_same_objective_fully_observed():
  m = n = 200
  rng = np.random.default_rng(15)
  x = rng.normal(size=(m, 3)) @ rng.normal(size=(3, n)) + 0.1 * rng.normal(size=(m, n))
  bad = rng.random((m, n)) < 0.1
  x[bad] += rng.uniform(-5, 5, bad.sum())
  dense = obs_lib.dense_observations(x, np.ones((m, n)))
  rows, cols = np.nonzero(np.ones((m, n)))
  sparse = obs_lib.sparse_observations(rows, cols, x[rows, cols], (m, n))
  key = jax.random.key(0)
  a = rmfnl.fit(key, sparse, 3, "l1", max_outer=200, max_inner=300)
  b = rmfnl.fit_dense_l1(key, dense, 3, max_outer=200, max_inner=300)
  ha = float(a.objectives[int(a.num_steps)])
  hb = float(b.objectives[int(b.num_steps)])
  assert abs(ha - hb) <= 0.01 * min(ha, hb), (ha, hb)
  assert bool(a.converged) and bool(b.converged)


def test_vmap_over_theta_and_seeds_matches_loop_and_no_retrace():
  obs = _problem(16)
  keys = jax.random.split(jax.random.key(1), 3)
  kw = dict(max_outer=3, max_inner=20, outer_tol=-1.0, inner_tol=-1.0)
  f = lambda k, th: rmfnl.fit(k, obs, 2, "lsp", theta=th, **kw)
  thetas = jnp.asarray([0.3, 1.0, 3.0])
  out = jax.vmap(f)(keys, thetas)
  for i in range(3):
    one = f(keys[i], thetas[i])
    np.testing.assert_allclose(out.u[i], one.u, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(out.objectives[i], one.objectives, rtol=1e-9)
  before = rmfnl._fit._cache_size()
  for name, th in (("lsp", 0.4), ("laplace", 0.9), ("geman", 2.0), ("l1", 1.0)):
    rmfnl.fit(keys[0], obs, 2, name, theta=th, lam=th / 3, **kw)
  assert rmfnl._fit._cache_size() == before  # loss, θ and λ are traced: no recompilation


def test_bad_inputs_raise_clear_errors():
  rows, cols, vals = np.array([0, 1, 2]), np.array([0, 1, 1]), np.array([1.0, 2.0, 3.0])
  with pytest.raises(ValueError, match="rows must lie in"):
    obs_lib.sparse_observations(rows, cols, vals, (2, 2))
  with pytest.raises(ValueError, match="cols must lie in"):
    obs_lib.sparse_observations(rows, cols + 5, vals, (3, 3))
  with pytest.raises(ValueError, match="rows must lie in"):
    obs_lib.sparse_observations(rows - 1, cols, vals, (3, 3))
  with pytest.raises(ValueError, match="NaN"):
    obs_lib.sparse_observations(rows, cols, np.array([1.0, np.nan, 3.0]), (3, 3))
  with pytest.raises(ValueError, match="empty"):
    obs_lib.sparse_observations(np.array([], int), np.array([], int), np.array([]), (3, 3))
  with pytest.raises(ValueError, match="same length"):
    obs_lib.sparse_observations(rows, cols[:2], vals, (3, 3))
  with pytest.raises(TypeError, match="rows must have dtype"):
    obs_lib.sparse_observations(rows.astype(float), cols, vals, (3, 3))
  with pytest.raises(TypeError, match="shape must be"):
    obs_lib.sparse_observations(rows, cols, vals, 3)
  with pytest.raises(ValueError, match="empty"):
    obs_lib.dense_observations(np.ones((3, 3)), np.zeros((3, 3)))
  with pytest.raises(ValueError, match="NaN"):
    obs_lib.dense_observations(np.full((2, 2), np.nan), np.ones((2, 2)))
  obs = obs_lib.sparse_observations(rows, cols, vals, (3, 3))
  key = jax.random.key(0)
  for rank in (0, -1, 4):
    with pytest.raises(ValueError, match="rank must be in"):
      rmfnl.fit(key, obs, rank)
  with pytest.raises(TypeError, match="rank must be an int"):
    rmfnl.fit(key, obs, 1.5)
  with pytest.raises(ValueError, match="loss must be one of"):
    rmfnl.fit(key, obs, 1, "l0")
  with pytest.raises(ValueError, match="lam must be a finite number > 0"):
    rmfnl.fit(key, obs, 1, lam=-1.0)
  with pytest.raises(ValueError, match="theta must be a finite number > 0"):
    rmfnl.fit(key, obs, 1, "lsp", theta=0.0)
  with pytest.raises(TypeError, match="observations must be"):
    rmfnl.fit(key, (rows, cols, vals), 1)
  with pytest.raises(ValueError, match=r"init\[0\] must have shape"):
    rmfnl.fit(key, obs, 1, init=(np.zeros((2, 1)), np.zeros((3, 1))))


def test_fit_under_an_outer_jit_equals_the_direct_call():
  p = data.synthetic(jax.random.key(0), 40, 40, 2, density=0.5)
  direct = rmfnl.fit(jax.random.key(1), p.train, 2, "l1", max_outer=3)
  jitted = jax.jit(lambda k, o: rmfnl.fit(k, o, 2, "l1", max_outer=3))(jax.random.key(1), p.train)
  np.testing.assert_array_equal(np.asarray(jitted.u), np.asarray(direct.u))
  np.testing.assert_array_equal(np.asarray(jitted.objectives), np.asarray(direct.objectives))

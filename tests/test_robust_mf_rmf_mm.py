"""RMF-MM with its authors' LADMPSAP inner solver (Lin, Xu & Zha, TPAMI 2018): properties."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers.robust_mf import data, rmfnl
from jaxpapers.robust_mf import ladmpsap as lad
from jaxpapers.robust_mf import observations as obs_lib


@pytest.fixture(autouse=True)
def _x64():
  with jax.enable_x64(True):
    yield


M, N, R = 40, 36, 2  # one shape for most tests, so they share compiled programs


def _problem(seed=0, m=M, n=N, r=R, density=0.5, outliers=0.1):
  return data.synthetic(jax.random.key(seed), m, n, r, density=density, outlier_ratio=outliers,
                        dtype=jnp.float64)


def _fit_random(obs, seed=2):
  return lad.rmf_mm_ladmpsap(jax.random.key(seed), obs, R, init="random", max_outer=15,
                             max_inner=1000)


_FIT_JIT = jax.jit(_fit_random)  # module level: one compiled program for the tests that use it


def _h(obs, u, v, lam):
  return float(rmfnl.objective(obs, u, v, lam, "l1"))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mm_steps_are_monotone_and_exact_surrogate_majorizes(seed):
  p = _problem(seed)
  res = _fit_random(p.train, seed + 10)
  t = int(res.num_outer)
  objs = np.asarray(res.objectives[: t + 1])
  acc = np.asarray(res.accepted[:t])
  assert t >= 2 and np.all(np.isfinite(objs))
  # every MM step (kept or rejected) leaves H non-increasing; kept steps strictly lower it.
  assert np.all(np.diff(objs) <= 0.0)
  assert np.all(np.diff(objs)[acc] < 0.0)
  np.testing.assert_allclose(objs[-1], _h(p.train, res.u, res.v, rmfnl.default_lambda((M, N))),
                             rtol=1e-12)
  # With ratio 1 the surrogate is a global majorizer touching H at 0: H(U+ΔU) ≤ F(ΔU) ≤ F(0) = H.
  dense = obs_lib.to_dense(p.train)
  lam = rmfnl.default_lambda(dense.shape)
  rng = np.random.default_rng(seed)
  u, v = jnp.asarray(rng.normal(size=(M, R))), jnp.asarray(rng.normal(size=(N, R)))
  for _ in range(3):
    state, info = lad.solve_surrogate(dense, u, v, lam, 1.0, lad.init_ladmpsap(dense, u, v),
                                      beta0=1.0, tol_in1=1e-8, tol_in2=1e-9, max_inner=100_000)
    f0 = lad.surrogate_value(dense, u, v, 0 * u, 0 * v, lam, 1.0)
    f = lad.surrogate_value(dense, u, v, state.du, state.dv, lam, 1.0)
    h_new = _h(dense, u + state.du, v + state.dv, lam)
    np.testing.assert_allclose(f0, _h(dense, u, v, lam), rtol=1e-12)
    assert h_new <= float(f) * (1 + 1e-12)
    assert float(f) <= float(f0)
    u, v = u + state.du, v + state.dv


@pytest.mark.parametrize("ratio", [0.3, 1.0])
def test_ladmpsap_agrees_with_dual_apg_on_the_same_surrogate(ratio):
  """LADMPSAP's surrogate minimiser vs RMFNL's dual APG (another method, sparse layout)."""
  p = _problem(3)
  dense = obs_lib.to_dense(p.train)
  lam = rmfnl.default_lambda(dense.shape)
  rng = np.random.default_rng(0)
  u, v = jnp.asarray(rng.normal(size=(M, R))), jnp.asarray(rng.normal(size=(N, R)))
  state, info = lad.solve_surrogate(dense, u, v, lam, ratio, lad.init_ladmpsap(dense, u, v),
                                    beta0=1.0, tol_in1=1e-8, tol_in2=1e-9, max_inner=100_000)
  assert bool(info.converged)
  sur = rmfnl.build_surrogate(p.train, u, v, lam, "l1", rho=ratio)
  apg = rmfnl.solve_dual(p.train, sur, jnp.zeros_like(p.train.values), tol=1e-12,
                         max_iters=200_000)
  f_lad = float(lad.surrogate_value(dense, u, v, state.du, state.dv, lam, ratio))
  f_apg = float(rmfnl.surrogate_value(p.train, sur, apg.du, apg.dv))
  dual = float(apg.dual)  # D(S) ≤ min F (weak duality): a certified lower bound
  # The two definitions of F agree at any point.
  np.testing.assert_allclose(rmfnl.surrogate_value(p.train, sur, state.du, state.dv), f_lad,
                             rtol=1e-12)
  assert f_lad >= dual - 1e-9 * abs(dual)
  # Stopped at a relative constraint violation < 1e-9: F is then within ~1e-9 · ‖Y‖ ‖R‖ of
  # its minimum; 1e-6 leaves three orders of margin for the multiplier's size.
  assert (f_lad - dual) <= 1e-6 * abs(dual)
  # F is μ-strongly convex with μ = λ + ρ min(row, column counts), so each solution lies within
  # sqrt(2 (F − D) / μ) of the unique minimiser.
  counts = np.concatenate([np.asarray(dense.mask).sum(1), np.asarray(dense.mask).sum(0)])
  mu = lam + ratio * counts.min()
  radius = np.sqrt(2 * (f_lad - dual) / mu) + np.sqrt(2 * max(f_apg - dual, 0.0) / mu)
  dist = np.sqrt(float(jnp.sum((state.du - apg.du) ** 2) + jnp.sum((state.dv - apg.dv) ** 2)))
  assert dist <= radius + 1e-9


def test_rmf_mm_and_rmfnl_reach_the_same_objective():
  """Both minimise the same ℓ1 objective from the same spectral start.

  Both stop when one MM step lowers H by less than tol_out = 1e-4 (relatively). If MM contracts
  the remaining gap by a factor q ≤ 0.9 per step (a slow linear rate; both runs converge much
  faster here), the gap left at stopping is ≤ tol_out q / (1 − q) ≤ 9e-4 of H, so two solvers
  converging to the same critical point agree within 2 × 9e-4 ≈ 2e-3.
  """
  p = _problem(5)
  key = jax.random.key(1)
  a = lad.rmf_mm_ladmpsap(key, p.train, R)
  b = rmfnl.fit(key, p.train, R, "l1", outer_tol=1e-4)
  assert bool(a.converged) and bool(b.converged)
  np.testing.assert_allclose(a.objectives[0], b.objectives[0], rtol=1e-10)  # same start
  ha = float(a.objectives[int(a.num_outer)])
  hb = float(b.objectives[int(b.num_steps)])
  assert abs(ha - hb) <= 2e-3 * min(ha, hb)
  # and both beat the objective of the ground truth (the fit absorbs part of the noise).
  truth = _h(p.train, p.u, p.v, rmfnl.default_lambda((M, N)))
  assert max(ha, hb) < truth


def test_jit_matches_eager():
  p = _problem(4, m=12, n=10)
  dense = obs_lib.to_dense(p.train)
  lam = rmfnl.default_lambda(dense.shape)
  rng = np.random.default_rng(1)
  u, v = jnp.asarray(rng.normal(size=(12, 2))), jnp.asarray(rng.normal(size=(10, 2)))
  st0 = lad.init_ladmpsap(dense, u, v)
  with jax.disable_jit():  # op-by-op: the while_loop runs as a Python loop
    eager = lad.solve_surrogate(dense, u, v, lam, 0.3, st0, beta0=0.01, max_inner=3)
  jitted = lad.solve_surrogate(dense, u, v, lam, 0.3, st0, beta0=0.01, max_inner=3)
  for x, y in zip(jax.tree.leaves(eager), jax.tree.leaves(jitted)):
    np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-12)
  # The whole fit, called directly and under an outer jit with traced observations.
  p = _problem(4)
  direct = _fit_random(p.train)
  traced = _FIT_JIT(p.train)
  assert int(direct.num_outer) >= 2
  for x, y in zip(jax.tree.leaves(direct), jax.tree.leaves(traced)):
    np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-12)


def test_input_errors_name_the_argument():
  p = _problem(0, m=10, n=8)
  key = jax.random.key(0)
  f = lad.rmf_mm_ladmpsap
  cases = [
      (dict(rank=0), ValueError, "rank"),
      (dict(rank=2.0), TypeError, "rank"),
      (dict(lam=-1.0), ValueError, "lam"),
      (dict(tol_in1=0.0), ValueError, "tol_in1"),
      (dict(tol_out=float("nan")), ValueError, "tol_out"),
      (dict(ratio0=2.0), ValueError, "ratio0"),
      (dict(ratio_growth=1.0), ValueError, "ratio_growth"),
      (dict(rho=0.5), ValueError, "rho"),
      (dict(beta_max=-1.0), ValueError, "beta_max"),
      (dict(beta0=1e6), ValueError, "beta0"),
      (dict(max_inner=0), ValueError, "max_inner"),
      (dict(max_outer=-3), ValueError, "max_outer"),
      (dict(warmup_steps=-1), ValueError, "warmup_steps"),
      (dict(init="svd"), ValueError, "init"),
      (dict(init=(np.zeros((10, 3)), np.zeros((8, 2)))), ValueError, r"init\[0\]"),
      (dict(init=(np.zeros((10, 2)), np.full((8, 2), np.nan))), ValueError, r"init\[1\]"),
      (dict(target_objective=float("nan")), ValueError, "target_objective"),
  ]
  for kw, err, name in cases:
    args = dict(rank=2)
    args.update(kw)
    rank = args.pop("rank")
    with pytest.raises(err, match=name):
      f(key, p.train, rank, **args)
  with pytest.raises(TypeError, match="key"):
    f(0, p.train, 2)
  with pytest.raises(TypeError, match="observations"):
    f(key, np.zeros((10, 8)), 2)
  dense = obs_lib.to_dense(p.train)
  bad = obs_lib.DenseObservations(dense.values.at[0, 0].set(jnp.nan), dense.mask)
  with pytest.raises(ValueError, match="observations.values"):
    f(key, bad, 2)


def test_nan_under_jit_gives_nan_not_a_finite_number():
  p = _problem(0)
  vals = p.train.values.at[0].set(jnp.nan)
  obs = obs_lib.SparseObservations(p.train.rows, p.train.cols, vals, p.train.shape)
  res = _FIT_JIT(obs)  # traced: the eager NaN check cannot run, the result must be NaN
  assert np.isnan(float(res.objectives[int(res.num_outer)]))
  assert int(res.num_outer) == 0

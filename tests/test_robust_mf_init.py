"""RMFNL starting points and monotone MM (issue 23): spectral default, ℓ1 warm start, monotonicity."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers.robust_mf import baselines, data, rmfnl
from jaxpapers.robust_mf import observations as obs_lib

SEEDS = (0, 1, 2)


@pytest.mark.slow
@pytest.mark.parametrize("m,density", [(120, 0.35), (200, 0.2)])
def test_default_fits_reach_ground_truth_objective_and_lsp_beats_l2(m, density):
  # ~40 observations per row, 20 % of them + U[−10, 10]; rank 5. From default arguments (the
  # spectral start) both ℓ1 and LSP must end at an objective no larger than the ground truth's
  # own objective H(U*, V*) (a solver that stalls at a poor critical point, as the random start
  # does here, ends far above it), and LSP must recover the clean entries far better than ℓ2.
  # The three seeds run as one vmapped fit (same |Ω|, so the problems stack).
  probs = [data.synthetic(jax.random.key(s), m, m, 5, density=density, outlier_ratio=0.2)
           for s in SEEDS]
  train = jax.tree.map(lambda *a: jnp.stack(a), *[p.train for p in probs])
  keys = jax.random.split(jax.random.key(100), len(SEEDS))
  lam = rmfnl.default_lambda((m, m))
  fits = {loss: jax.vmap(lambda k, o, loss=loss: rmfnl.fit(k, o, 5, loss))(keys, train)
          for loss in ("l1", "lsp")}
  for i, (seed, p) in enumerate(zip(SEEDS, probs)):
    l2 = baselines.fit_l2(keys[i], p.train, 5)
    rmse_l2 = float(obs_lib.rmse(p.test, l2.u, l2.v))
    for loss, res in fits.items():
      steps = int(res.num_steps[i])
      final = float(res.objectives[i, steps])
      truth = float(rmfnl.objective(p.train, p.u, p.v, lam, loss))
      assert final <= truth, (m, seed, loss, final, truth)
    rmse = float(obs_lib.rmse(p.test, fits["lsp"].u[i], fits["lsp"].v[i]))
    assert rmse < 0.5 * rmse_l2, (m, seed, rmse, rmse_l2)


def _dense_truncated_svd(obs, rank):
  m, n = obs.shape
  a = np.zeros((m, n))
  a[np.asarray(obs.rows), np.asarray(obs.cols)] = np.asarray(obs.values, np.float64)
  a *= m * n / obs.nnz
  u, s, vt = np.linalg.svd(a)
  return u[:, :rank] * s[:rank], s[:rank], vt[:rank].T


def test_spectral_init_matches_dense_truncated_svd():
  with jax.enable_x64(True):
    p = data.synthetic(jax.random.key(3), 60, 45, 3, density=0.3, dtype=jnp.float64)
    u, v = rmfnl.spectral_init(jax.random.key(0), p.train, 3, num_iters=30)
    _, s, _ = _dense_truncated_svd(p.train, 3)
    m, n = p.train.shape
    a = np.zeros((m, n))
    a[np.asarray(p.train.rows), np.asarray(p.train.cols)] = np.asarray(p.train.values)
    a *= m * n / p.train.nnz
    uu, ss, vvt = np.linalg.svd(a)
    best = (uu[:, :3] * ss[:3]) @ vvt[:3]
    np.testing.assert_allclose(np.asarray(u) @ np.asarray(v).T, best, rtol=1e-6, atol=1e-6)
    # balanced: UᵀU = VᵀV = Σ_r
    np.testing.assert_allclose(np.asarray(u.T @ u), np.diag(s), atol=1e-6 * s[0])
    np.testing.assert_allclose(np.asarray(v.T @ v), np.diag(s), atol=1e-6 * s[0])
    # the dense layout gives the same factors
    ud, vd = rmfnl.spectral_init(jax.random.key(0), obs_lib.to_dense(p.train), 3, num_iters=30)
    np.testing.assert_allclose(np.asarray(ud @ vd.T), best, rtol=1e-6, atol=1e-6)


def test_spectral_init_never_builds_an_m_by_n_array():
  p = data.synthetic(jax.random.key(0), 3000, 2000, 2, density=0.002)
  jaxpr = jax.make_jaxpr(lambda k, o: rmfnl._spectral(k, o, 2))(jax.random.key(0), p.train)
  sizes = [int(np.prod(v.aval.shape)) for eqn in jaxpr.jaxpr.eqns for v in eqn.outvars
           if hasattr(v.aval, "shape")]
  # the largest temporary is the |Ω| × (r + oversample) gather, far below m n
  assert max(sizes) <= p.train.nnz * (2 + 5) < 3000 * 2000 // 50, max(sizes)


def _mono_problem(seed):
  return data.synthetic(jax.random.key(10 + seed), 150, 150, 5, density=0.2, outlier_ratio=0.2)


def test_inexact_apg_step_can_raise_the_objective_without_refinement():
  # The premise of the monotonicity guard: at inner_tol = 1e-3 an APG solution can give
  # H(U₀ + ΔU, V₀ + ΔV) > H(U₀, V₀) although ρ = 1 (found on this problem, ℓ1, seed 1).
  p = _mono_problem(1)
  lam = rmfnl.default_lambda(p.train.shape)
  u, v = rmfnl.spectral_init(jax.random.key(1), p.train, 5)
  st = rmfnl.init_state(p.train, u, v, lam, "l1")
  step = jax.jit(lambda st: rmfnl.mm_step(p.train, st, lam, "l1", inner_tol=1e-3, max_inner=300,
                                          max_refine=0))
  rises = 0
  for _ in range(45):
    st, info = step(st)
    rises += int(not bool(info.accepted))  # ρ = 1: rejected ⇔ H rose
  assert rises > 0


@pytest.mark.parametrize("loss", ["l1", "lsp"])
def test_mm_objective_is_monotone_at_loose_inner_tolerance(loss):
  # inner_tol = 1e-3 is the experiments' setting; mm_step re-solves more accurately when H rises
  # (else rejects), so the recorded objective never increases.
  for seed in SEEDS:
    p = _mono_problem(seed)
    res = rmfnl.fit(jax.random.key(seed), p.train, 5, loss, inner_tol=1e-3, max_inner=300,
                    max_outer=45)
    h = np.asarray(res.objectives[: int(res.num_steps) + 1])
    assert np.all(np.diff(h) <= 0), (seed, np.diff(h).max())


def test_init_options_and_errors():
  p = data.synthetic(jax.random.key(0), 40, 30, 2, density=0.4, outlier_ratio=0.1)
  key = jax.random.key(0)
  kw = dict(max_outer=5, max_inner=50)
  warm = rmfnl.fit(key, p.train, 2, "lsp", init="l1", **kw)
  l1 = rmfnl.fit(key, p.train, 2, "l1", init="spectral", **kw)
  same = rmfnl.fit(key, p.train, 2, "lsp", init=(l1.u, l1.v), **kw)
  np.testing.assert_array_equal(np.asarray(warm.u), np.asarray(same.u))
  np.testing.assert_array_equal(np.asarray(rmfnl.fit(key, p.train, 2, init=None, **kw).u),
                                np.asarray(l1.u))
  with pytest.raises(ValueError, match="init must be one of"):
    rmfnl.fit(key, p.train, 2, init="svd")
  with pytest.raises(TypeError, match="init must be one of"):
    rmfnl.fit(key, p.train, 2, init=np.zeros((40, 2)))
  with pytest.raises(TypeError, match="key must be a jax.random.key"):
    rmfnl.fit(0, p.train, 2)
  with pytest.raises(TypeError, match="key must be a jax.random.key"):
    rmfnl.spectral_init(np.float32(0.0), p.train, 2)
  res = rmfnl.fit(key, p.train, np.int64(2), **kw)
  assert res.u.shape == (40, 2)

"""method="auto": Cholesky below cholesky_size, above it the fastest method measured on the data."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers.bbmm import kernels, likelihood, operators

pytestmark = pytest.mark.usefixtures("x64")  # float64 for this module only


def _gp(n, d=2, noise=0.05, dtype=jnp.float64, seed=0):
  rng = np.random.default_rng(seed)
  x = jnp.asarray(rng.uniform(size=(n, d)), dtype)
  y = jnp.asarray(np.sin(4 * np.asarray(x)).sum(1) + 0.2 * rng.standard_normal(n), dtype)
  p = operators.GPParams(kernels.init_params("rbf", d, 0.4, 1.0, dtype), jnp.asarray(noise, dtype),
                         jnp.zeros((), dtype))
  return operators.ExactOperator("rbf"), p, x, y


def _fastest(c):
  """The method a measured choice must have made from its own timings."""
  best = "cholesky" if c.cholesky_seconds <= c.bbmm_seconds else "bbmm"
  seconds = c.cholesky_seconds if best == "cholesky" else c.bbmm_seconds
  return "cholesky_hutchinson" if c.hutchinson_seconds < seconds else best


def _hutchinson_count(c, tol, probes, floor):
  """(rel / tol)² · probes, × 1.25, never below the floor: by hand."""
  need = int(np.ceil(probes * (c.hutchinson_grad_rel_std_error / tol) ** 2))
  return max(floor, int(np.ceil(1.25 * need)))


def test_rules_that_need_no_timing():
  op, p, x, y = _gp(120)
  key = jax.random.key(0)
  small = likelihood.choose_method(key, op, p, x, y, likelihood.Settings(cholesky_size=200))
  assert small == likelihood.MethodChoice("cholesky", "n <= cholesky_size")
  thr = likelihood.Settings(cholesky_size=50, auto_method="threshold")
  assert likelihood.choose_method(key, op, p, x, y, thr).method == "bbmm"
  big = likelihood.Settings(cholesky_size=50, measure_max=100)
  assert likelihood.choose_method(key, op, p, x, y, big).reason == "n > measure_max"
  assert likelihood.GPYTORCH_DEFAULTS.auto_method == "threshold"  # GPyTorch's fixed switch
  with pytest.raises(ValueError, match="settings.auto_method must be one of"):
    likelihood.choose_method(key, op, p, x, y, likelihood.Settings(auto_method="fastest"))


def test_measured_choice_is_the_faster_method_and_mll_runs_it():
  op, p, x, y = _gp(300)
  settings = likelihood.Settings(cholesky_size=100, precond_rank=40, num_probes=8,
                                 adaptive_probes=False)
  key = jax.random.key(3)
  choice = likelihood.choose_method(key, op, p, x, y, settings)
  assert choice.reason == "measured"
  assert choice.cholesky_seconds > 0 and choice.bbmm_seconds > 0
  assert choice.hutchinson_seconds > 0 and choice.hutchinson_probes == 8  # not adapted
  assert choice.method == _fastest(choice)
  # Cached per problem shape (not per value): no second measurement, even for other
  # hyperparameters; cache=False measures afresh and stores nothing.
  assert likelihood.choose_method(key, op, p, x, y, settings) is choice
  assert likelihood.choose_method(key, op, p._replace(noise=p.noise * 2), x, y, settings) is choice
  fresh = likelihood.choose_method(key, op, p, x, y, settings, cache=False)
  assert fresh is not choice and fresh.reason == "measured"
  assert likelihood.choose_method(key, op, p, x, y, settings) is choice
  value, _ = likelihood.mll(key, op, p, x, y, settings, method="auto")
  want, _ = likelihood.mll(key, op, p, x, y, settings, method=choice.method)
  np.testing.assert_array_equal(value, want)
  # Traced calls (jax.grad, jit) cannot time, but reuse the eager choice for this shape.
  g_auto = jax.grad(lambda q: likelihood.mll(key, op, q, x, y, settings, method="auto")[0])(p)
  g_want = jax.grad(lambda q: likelihood.mll(key, op, q, x, y, settings,
                                             method=choice.method)[0])(p)
  np.testing.assert_allclose(g_auto.noise, g_want.noise, rtol=1e-10)


def test_under_jit_auto_uses_the_size_rule():
  op, p, x, y = _gp(150)
  settings = likelihood.Settings(cholesky_size=100, precond_rank=40, num_probes=8)
  key = jax.random.key(1)
  jitted = jax.jit(lambda q: likelihood.mll(key, op, q, x, y, settings, method="auto")[0])(p)
  bbmm, _ = likelihood.bbmm_mll(key, op, p, x, y, settings)
  np.testing.assert_allclose(jitted, bbmm, rtol=1e-12)
  small = likelihood.Settings(cholesky_size=200)
  jitted = jax.jit(lambda q: likelihood.mll(key, op, q, x, y, small, method="auto")[0])(p)
  np.testing.assert_allclose(jitted, likelihood.cholesky_mll(op, p, x, y), rtol=1e-12)


def test_a_cholesky_that_is_not_finite_is_never_chosen():
  # float32, every point repeated and σ² = 1e-9: K̂ is numerically singular in float32, so its
  # Cholesky is NaN; "auto" must not pick it however fast it is.
  op, p, x, y = _gp(60, noise=1e-9, dtype=jnp.float32)
  x = jnp.concatenate([x, x, x])
  y = jnp.concatenate([y, y, y])
  assert not np.isfinite(float(likelihood.cholesky_mll(op, p, x, y)))
  settings = likelihood.Settings(cholesky_size=10, precond_rank=20, num_probes=4,
                                 max_cg_iters=50, adaptive_probes=False)
  choice = likelihood.choose_method(jax.random.key(0), op, p, x, y, settings)
  assert choice == likelihood.MethodChoice("bbmm", "cholesky not finite", choice.cholesky_seconds,
                                           choice.bbmm_seconds)


def _spread(rel_grad, rel_mll, t=30):
  z = jnp.zeros(())
  return likelihood.GradientSpread(z, z, jnp.asarray(rel_grad), t, z, z, jnp.asarray(rel_mll))


def test_adaptive_probe_count_by_hand():
  s = likelihood.Settings(num_probes=30, max_probes=1000)
  # 30 · (0.02 / 0.01)² = 120 probes for the gradient, 30 · (0.01 / 0.005)² = 120 for the MLL;
  # × PROBE_SAFETY 1.25 = 150.
  assert likelihood.adaptive_probe_count(_spread(0.02, 0.001), s) == 150
  assert likelihood.adaptive_probe_count(_spread(0.001, 0.01), s) == 150
  assert likelihood.adaptive_probe_count(_spread(0.02, 0.015), s) == 338  # 30·9 = 270 · 1.25
  # Beyond the targets the count stays at num_probes by default (min_probes=None)...
  assert likelihood.adaptive_probe_count(_spread(0.005, 0.002), s) == 30
  # ... and with a lower floor falls: 30·(0.5)² = 7.5 → 8 for the gradient, × 1.25 = 10; a
  # smaller need stops at the floor.
  assert likelihood.adaptive_probe_count(_spread(0.005, 0.002), s._replace(min_probes=3)) == 10
  assert likelihood.adaptive_probe_count(_spread(0.004, 0.001), s._replace(min_probes=3)) == 7
  assert likelihood.adaptive_probe_count(_spread(0.004, 0.001), s._replace(min_probes=9)) == 9
  assert likelihood.adaptive_probe_count(_spread(0.011, 0.001), s) == 47  # 37 · 1.25 → 47
  with pytest.raises(ValueError, match="settings.min_probes must be >= 1"):
    likelihood.check_settings(s._replace(min_probes=0))
  with pytest.raises(TypeError, match="settings.min_probes must be an int"):
    likelihood.check_settings(s._replace(min_probes=2.5))
  assert likelihood.adaptive_probe_count(_spread(0.2, 0.001), s) == 1001  # 15,000 > the cap
  assert likelihood.adaptive_probe_count(_spread(float("nan"), 0.001), s) == 1001
  with pytest.raises(ValueError, match="settings.max_probes must be >= 1"):
    likelihood.check_settings(s._replace(max_probes=0))
  with pytest.raises(ValueError, match="settings.mll_rel_tol"):
    likelihood.check_settings(s._replace(mll_rel_tol=0.0))
  with pytest.raises(TypeError, match="settings.adaptive_probes must be a bool"):
    likelihood.check_settings(s._replace(adaptive_probes=1))


def test_the_mll_spread_is_the_value_and_predicts_its_error():
  op, p, x, y = _gp(200, d=3, noise=0.02)
  s = likelihood.Settings(num_probes=16, precond_rank=5, cg_tol=1e-8)
  key = jax.random.key(4)
  spread = likelihood.gradient_spread(key, op, p, x, y, s)
  value, _ = likelihood.bbmm_mll(key, op, p, x, y, s)
  np.testing.assert_allclose(spread.value, value, rtol=1e-10)
  keys = jax.random.split(jax.random.key(11), 48)
  values = np.array([float(likelihood.bbmm_mll(k, op, p, x, y, s)[0]) for k in keys])
  ses = np.array([float(likelihood.gradient_spread(k, op, p, x, y, s).mll_std_error)
                  for k in keys[:12]])
  ratio = ses.mean() / values.std(ddof=1)
  assert 0.6 < ratio < 1.6, ratio  # 48 draws: the spread is known to ~10 %
  np.testing.assert_allclose(spread.mll_rel_std_error, spread.mll_std_error / abs(value),
                             rtol=1e-12)
  assert spread.probes_for_mll(float(spread.mll_rel_std_error) / 2) in (64, 65)  # 16 · 2²


def test_auto_meets_the_targets_at_the_adapted_count_or_runs_cholesky():
  op, p, x, y = _gp(300, d=3, noise=0.02)
  key = jax.random.key(5)
  base = likelihood.Settings(cholesky_size=100, precond_rank=10, num_probes=8, min_probes=3)
  spread = likelihood.gradient_spread(key, op, p, x, y, base)
  # Far beyond the targets: the count falls to min_probes and BBMM is timed there.
  loose = likelihood.choose_method(key, op, p, x, y, base._replace(mll_rel_tol=1.0,
                                                                  grad_rel_tol=1.0))
  assert loose.num_probes == 3 and loose.reason == "measured"
  assert loose.method == _fastest(loose)
  # The probed-gradient method's count is sized from its own spread, with the same floor.
  assert loose.hutchinson_probes == _hutchinson_count(loose, 1.0, 8, 3)
  h_spread = likelihood.hutchinson_spread(key, op, p, x, y, base)
  np.testing.assert_allclose(loose.hutchinson_grad_rel_std_error, h_spread.rel_std_error,
                             rtol=1e-10)
  np.testing.assert_allclose(loose.grad_rel_std_error, spread.rel_std_error, rtol=1e-10)
  # Half the gradient's standard error: 4× the probes, × 1.25.
  mid_s = base._replace(mll_rel_tol=1.0, grad_rel_tol=float(spread.rel_std_error) / 2)
  mid = likelihood.choose_method(key, op, p, x, y, mid_s)
  assert mid.num_probes in (40, 42) and mid.reason == "measured"
  assert mid.method == _fastest(mid)
  assert mid.hutchinson_probes == _hutchinson_count(mid, mid_s.grad_rel_tol, 8, 3)
  value, _ = likelihood.mll(key, op, p, x, y, mid_s, method="auto")
  want, _ = likelihood.mll(key, op, p, x, y, mid.settings_for(mid_s), method=mid.method)
  np.testing.assert_allclose(value, want, rtol=1e-12)
  # Out of reach within max_probes: the exact Cholesky.
  tight_s = base._replace(grad_rel_tol=1e-6)
  tight = likelihood.choose_method(key, op, p, x, y, tight_s)
  assert (tight.method, tight.reason) == ("cholesky", "targets need more than max_probes")
  # jax.grad traces (nothing to time) and reuses that eager choice: the exact gradient, not a
  # 8-probe BBMM one.
  g = jax.grad(lambda q: likelihood.mll(key, op, q, x, y, tight_s, method="auto")[0])(p)
  g_chol = jax.grad(lambda q: likelihood.cholesky_mll(op, q, x, y))(p)
  np.testing.assert_allclose(g.kernel.lengthscale, g_chol.kernel.lengthscale, rtol=1e-10)

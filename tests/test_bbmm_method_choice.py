"""method="auto": Cholesky below cholesky_size, above it the faster method measured on the data."""

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
  settings = likelihood.Settings(cholesky_size=100, precond_rank=40, num_probes=8)
  key = jax.random.key(3)
  choice = likelihood.choose_method(key, op, p, x, y, settings)
  assert choice.reason == "measured"
  assert choice.cholesky_seconds > 0 and choice.bbmm_seconds > 0
  assert choice.method == ("cholesky" if choice.cholesky_seconds <= choice.bbmm_seconds
                           else "bbmm")
  # Cached per problem shape: no second measurement.
  assert likelihood.choose_method(key, op, p, x, y, settings) is choice
  value, _ = likelihood.mll(key, op, p, x, y, settings, method="auto")
  want, _ = likelihood.mll(key, op, p, x, y, settings, method=choice.method)
  np.testing.assert_array_equal(value, want)


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
                                 max_cg_iters=50)
  choice = likelihood.choose_method(jax.random.key(0), op, p, x, y, settings)
  assert choice == likelihood.MethodChoice("bbmm", "cholesky not finite", choice.cholesky_seconds,
                                           choice.bbmm_seconds)

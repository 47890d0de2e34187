"""BBMM: input (deep-kernel) gradients, differentiable predictions, honest convergence reports."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers.bbmm import config as config_lib
from jaxpapers.bbmm import kernels, likelihood, operators, precond, predict, train

pytestmark = pytest.mark.usefixtures("x64")  # float64 for the whole module (conftest)


def _data(n, d=2, dtype=jnp.float64):
  kx, ky = jax.random.split(jax.random.key(0))
  x = jax.random.uniform(kx, (n, d), dtype)
  y = jnp.sin(6 * x[:, 0]) + jnp.cos(5 * x[:, -1]) + 0.1 * jax.random.normal(ky, (n,), dtype)
  return x, y


def _params(d=2, ls=0.3, scale=1.0, noise=0.05, mean=0.1, dtype=jnp.float64):
  return operators.GPParams(kernels.init_params("rbf", d, ls, scale, dtype),
                            jnp.asarray(noise, dtype), jnp.asarray(mean, dtype))


def _rel(a, b):
  flat = lambda t: np.concatenate([np.ravel(v) for v in jax.tree.leaves(t)])
  return np.linalg.norm(flat(a) - flat(b)) / np.linalg.norm(flat(b))


# ----------------------------------------------------------------------------- issue 24: gradients


def test_deep_kernel_gradient_through_inputs_matches_cholesky():
  # x = tanh(X W): the BBMM VJP must give a real cotangent for x (it used to be zero). With a
  # full-rank preconditioner the estimator's only noise is the Hutchinson trace term.
  x_raw, y = _data(30)
  p = _params()
  op = operators.ExactOperator("rbf", materialize=True)
  w0 = jnp.array([[1.0, 0.3], [-0.2, 0.8]])
  feats = lambda w: jnp.tanh(x_raw @ w)
  ref = jax.jit(jax.grad(lambda w: likelihood.cholesky_mll(op, p, feats(w), y)))(w0)
  settings = likelihood.Settings(num_probes=20000, num_lanczos=4, min_lanczos=0, precond_rank=30,
                                 cg_tol=1e-10)
  fn = lambda w: likelihood.bbmm_mll(jax.random.key(1), op, p, feats(w), y, settings)[0]
  got = jax.jit(jax.grad(fn))(w0)
  assert float(jnp.max(jnp.abs(got))) > 0.1
  assert _rel(got, ref) < 1e-2, (got, ref)


def test_predictions_are_differentiable_and_match_cholesky_gradients():
  x, y = _data(60)
  xs = jax.random.uniform(jax.random.key(5), (7, 2), jnp.float64)
  op = operators.ExactOperator("rbf")
  settings = likelihood.Settings(eval_cg_tol=1e-10, precond_rank=10)

  def bbmm_pred(q, xt):
    cache = predict.prediction_cache(op, q, xt, y, settings)
    mean = predict.predictive_mean(op, cache, xs)
    var = predict.exact_variance(op, cache, xs, settings, tol=1e-10)
    return jnp.stack([jnp.sum(jnp.sin(mean)), jnp.sum(var)])

  def chol_pred(q, xt):
    mean, var = predict.cholesky_predict(op, q, xt, y, xs)
    return jnp.stack([jnp.sum(jnp.sin(mean)), jnp.sum(var)])

  p = _params()
  got = jax.jit(jax.jacrev(bbmm_pred, argnums=(0, 1)))(p, x)
  ref = jax.jit(jax.jacrev(chol_pred, argnums=(0, 1)))(p, x)
  for i in range(2):  # predictive mean, then variance; w.r.t. hyperparameters, then inputs
    row = lambda t: jax.tree.map(lambda a: a[i], t)
    assert _rel(row(got[0]), row(ref[0])) < 1e-3, (i, got[0], ref[0])
    assert _rel(row(got[1]), row(ref[1])) < 1e-3, i
  assert float(jnp.abs(got[0].noise[0])) > 0


# ----------------------------------------------------------------------------- issue 22: reports


def _singular_float32():
  x = jnp.linspace(0, 1, 100, dtype=jnp.float32)[:, None]
  p = _params(1, 1.0, 1.0, 1e-9, 0.0, jnp.float32)
  return x, jnp.sin(3 * x[:, 0]), p


def test_cholesky_path_reports_nan_as_not_converged_and_warns():
  x, y, p = _singular_float32()
  op = operators.ExactOperator("rbf")
  with pytest.warns(likelihood.ConvergenceWarning, match="not positive definite"):
    value, info = likelihood.mll(jax.random.key(0), op, p, x, y, method="cholesky")
  assert np.isnan(float(value)) and not bool(info.converged)
  strict = likelihood.Settings(strict=True)
  with pytest.raises(likelihood.ConvergenceError, match="not finite"):
    likelihood.mll(jax.random.key(0), op, p, x, y, strict, method="cholesky")
  # Under jit no host check is possible: the flag is still honest.
  value, info = jax.jit(lambda q: likelihood.mll(jax.random.key(0), op, q, x, y,
                                                 method="cholesky"))(p)
  assert np.isnan(float(value)) and not bool(info.converged)


def test_infinite_kernel_scale_is_an_error_or_an_honest_nan():
  x, y, p, _ = _stalled()
  p = p._replace(noise=jnp.asarray(0.1))
  op = operators.ExactOperator("rbf")
  bad = p._replace(kernel=p.kernel._replace(scale=jnp.asarray(jnp.inf)))
  for method in ("bbmm", "cholesky"):
    with pytest.raises(ValueError, match="params.kernel.scale must be finite"):
      likelihood.mll(jax.random.key(0), op, bad, x, y, method=method)
  settings = likelihood.Settings(num_probes=4, precond_rank=5, num_lanczos=10)
  for method in ("bbmm", "cholesky"):
    fn = jax.jit(lambda s, method=method: likelihood.mll(
        jax.random.key(0), op, p._replace(kernel=p.kernel._replace(scale=s)), x, y, settings,
        method=method))
    value, info = fn(jnp.asarray(jnp.inf))
    assert np.isnan(float(value)), method
    assert not bool(info.converged), method


def _stalled():
  x = jnp.linspace(0, 1, 120)[:, None]
  p = _params(1, 2.0, 1.0, 1e-8, 0.0)
  settings = likelihood.Settings(cg_tol=1e-6, max_cg_iters=15, precond_rank=0, num_lanczos=10,
                                 num_probes=2)
  return x, jnp.sin(3 * x[:, 0]), p, settings


def test_bbmm_nonconvergence_warns_once_naming_residual_and_iterations_and_strict_raises():
  x, y, p, settings = _stalled()
  op = operators.ExactOperator("rbf")
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    value, info = likelihood.mll(jax.random.key(0), op, p, x, y, settings, method="bbmm")
  msgs = [str(w.message) for w in caught if issubclass(w.category, likelihood.ConvergenceWarning)]
  assert len(msgs) == 1, msgs
  assert "relative residual" in msgs[0] and "after 15 iterations" in msgs[0]
  assert not bool(info.converged) and int(info.num_iters) == 15
  with pytest.raises(likelihood.ConvergenceError, match="after 15 iterations"):
    likelihood.mll(jax.random.key(0), op, p, x, y, settings._replace(strict=True), method="bbmm")
  value, _ = jax.jit(lambda q: likelihood.bbmm_mll(jax.random.key(0), op, q, x, y,
                                                   settings._replace(strict=True)))(p)
  assert np.isnan(float(value))
  # A well-conditioned problem (same shapes and settings) converges silently.
  with warnings.catch_warnings():
    warnings.simplefilter("error", likelihood.ConvergenceWarning)
    value, info = likelihood.mll(jax.random.key(0), op, p._replace(noise=jnp.asarray(0.1)), x, y,
                                 settings, method="bbmm")
  assert bool(info.converged) and np.isfinite(float(value))


def test_fit_warns_once_when_cg_does_not_converge_and_strict_raises():
  x, y, p, settings = _stalled()
  op = operators.ExactOperator("rbf")
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    _, hist = train.fit(jax.random.key(0), op, p, x, y, num_steps=2, settings=settings,
                        method="bbmm", noise_floor=0.0, chunk_size=2)
  msgs = [str(w.message) for w in caught if issubclass(w.category, likelihood.ConvergenceWarning)]
  assert len(msgs) == 1, msgs
  assert "fit (" in msgs[0] and "relative residual" in msgs[0] and "iterations" in msgs[0]
  assert not np.all(hist["converged"]) and np.all(np.isfinite(hist["max_rel_residual"]))
  # strict: the Cholesky path on a float32 K̂ that is singular in float32 (NaN likelihood).
  x, y, p = _singular_float32()
  with pytest.raises(likelihood.ConvergenceError, match="not finite"):
    train.fit(jax.random.key(0), op, p, x, y, num_steps=2,
              settings=likelihood.Settings(strict=True), method="cholesky", noise_floor=0.0,
              chunk_size=2)


# ----------------------------------------------------------------------------- issue 22: ranges


@pytest.mark.parametrize("field,value,exc", [
    ("num_lanczos", 0, ValueError), ("num_probes", -2, ValueError),
    ("precond_rank", -1, ValueError), ("max_cg_iters", 0, ValueError),
    ("cg_tol", 0.0, ValueError), ("eval_cg_tol", float("inf"), ValueError),
    ("min_lanczos", -1, ValueError), ("cholesky_size", -5, ValueError),
    ("min_precond_size", -1, ValueError), ("num_probes", 2.5, TypeError),
    ("strict", "yes", TypeError), ("precond_form", "lu", ValueError),
    ("measure_max", -1, ValueError), ("auto_method", "fastest", ValueError)])
def test_settings_ranges_are_validated_with_the_field_name(field, value, exc):
  x, y = _data(20)
  bad = likelihood.Settings()._replace(**{field: value})
  op = operators.ExactOperator("rbf")
  with pytest.raises(exc, match=f"settings.{field}"):
    likelihood.mll(jax.random.key(0), op, _params(), x, y, bad)
  with pytest.raises(exc, match=f"settings.{field}"):
    predict.prediction_cache(op, _params(), x, y, bad)


def test_empty_data_nonpositive_preconditioner_noise_and_config_ranges_raise():
  op = operators.ExactOperator("rbf")
  with pytest.raises(ValueError, match="x must have at least one row"):
    likelihood.mll(jax.random.key(0), op, _params(), jnp.zeros((0, 2)), jnp.zeros((0,)))
  lmat = jnp.ones((5, 2))
  for noise in (0.0, -1.0, float("nan")):
    with pytest.raises(ValueError, match="noise must be finite and > 0"):
      precond.make_preconditioner(lmat, noise)
  for field, value in (("num_steps", -1), ("love_rank", 0), ("n_synthetic", 0),
                       ("learning_rate", 0.0), ("init_noise", -1.0), ("chunk_size", 0)):
    cfg = config_lib.get_config("smoke")
    cfg[field] = value
    with pytest.raises(ValueError, match=f"config.{field}"):
      config_lib.check_config(cfg)
  cfg = config_lib.get_config("smoke")
  cfg.settings.num_lanczos = 0
  with pytest.raises(ValueError, match="config.settings.num_lanczos"):
    train.train_and_evaluate(cfg, "/nonexistent/never/created")

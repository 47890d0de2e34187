"""BBMM public functions on bad input: a clear error naming the argument, or an honest NaN.

NaN / inf / empty / wrong-rank / out-of-range / wrong-dtype arguments must never produce a finite
(wrong) number. Checks run before any compilation, so this file is fast.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers import bbmm
from jaxpapers.bbmm import cg, data, kernels, likelihood, operators, precond, predict

NAN = float("nan")
INF = float("inf")


pytestmark = pytest.mark.usefixtures("x64")  # float64 for the whole module (conftest)


@pytest.fixture(scope="module")
def gp():
  x = jax.random.uniform(jax.random.key(0), (12, 2), jnp.float64)
  y = jnp.sin(4 * x[:, 0])
  p = operators.GPParams(kernels.init_params("rbf", 2, 0.5, 1.0, jnp.float64), jnp.asarray(0.1),
                         jnp.asarray(0.0))
  return x, y, p, operators.ExactOperator("rbf")


def _set(p, **kw):
  """GPParams with kernel fields (lengthscale, scale) and/or noise / mean replaced."""
  kern = {k: jnp.asarray(v) for k, v in kw.items() if k in ("lengthscale", "scale")}
  rest = {k: jnp.asarray(v) for k, v in kw.items() if k in ("noise", "mean")}
  return p._replace(kernel=p.kernel._replace(**kern), **rest)


def _likelihoods(gp):
  """The three public likelihoods as functions of (params, x, y)."""
  _, _, _, op = gp
  key = jax.random.key(0)
  return {
      "bbmm_mll": lambda p, x, y: bbmm.bbmm_mll(key, op, p, x, y),
      "cholesky_mll": lambda p, x, y: bbmm.cholesky_mll(op, p, x, y),
      "mll": lambda p, x, y: bbmm.mll(key, op, p, x, y),
      "prediction_cache": lambda p, x, y: bbmm.prediction_cache(op, p, x, y),
      "fit": lambda p, x, y: bbmm.fit(key, op, p, x, y, num_steps=1),
      "cholesky_predict": lambda p, x, y: bbmm.cholesky_predict(op, p, x, y, x[:2]),
  }


@pytest.mark.parametrize("name", ["bbmm_mll", "cholesky_mll", "mll", "prediction_cache", "fit",
                                  "cholesky_predict"])
def test_gp_entry_points_reject_bad_data_and_hyperparameters(gp, name):
  x, y, p, _ = gp
  fn = _likelihoods(gp)[name]
  cases = [
      (ValueError, "x contains NaN", (p, x.at[0, 1].set(NAN), y)),
      (ValueError, "x contains NaN or inf", (p, x.at[3, 0].set(INF), y)),
      (ValueError, "y contains NaN", (p, x, y.at[2].set(-INF))),
      (ValueError, "x must have rank 2", (p, x[:, 0], y)),
      (ValueError, "y must have rank 1", (p, x, y[:, None])),
      (ValueError, "x must have at least one row", (p, x[:0], y[:0])),
      (TypeError, "x must have dtype kind", (p, x.astype(jnp.int32), y)),
      (TypeError, "y must have dtype kind", (p, x, y.astype(jnp.int32))),
      (TypeError, "x must be an array", (p, x.tolist(), y)),
      (ValueError, "y has 11 entries but x has 12 rows", (p, x, y[:-1])),
      (ValueError, "params.noise must be finite and > 0", (_set(p, noise=0.0), x, y)),
      (ValueError, "params.noise must be finite and > 0", (_set(p, noise=NAN), x, y)),
      (ValueError, "params.noise must be finite and > 0", (_set(p, noise=INF), x, y)),
      (ValueError, "params.noise must have rank 0", (_set(p, noise=[0.1]), x, y)),
      (ValueError, "params.mean contains NaN", (_set(p, mean=NAN), x, y)),
      (ValueError, "params.kernel.scale must be finite", (_set(p, scale=INF), x, y)),
      (ValueError, "params.kernel.lengthscale must be finite and > 0",
       (_set(p, lengthscale=[0.5, -1.0]), x, y)),
      (ValueError, "params.kernel.lengthscale must be finite and > 0",
       (_set(p, lengthscale=[0.5, NAN]), x, y)),
      (ValueError, "params.kernel.lengthscale must have shape",
       (_set(p, lengthscale=[0.5, 0.5, 0.5]), x, y)),
      (TypeError, "params must be a GPParams", ({"noise": 0.1}, x, y)),
  ]
  for exc, match, args in cases:
    with pytest.raises(exc, match=match):
      fn(*args)


def test_settings_method_and_training_arguments(gp):
  x, y, p, op = gp
  key = jax.random.key(0)
  with pytest.raises(TypeError, match="settings must be a Settings"):
    bbmm.mll(key, op, p, x, y, {"cg_tol": 0.1})
  with pytest.raises(ValueError, match="method must be one of"):
    bbmm.mll(key, op, p, x, y, method="lu")
  with pytest.raises(ValueError, match="settings.cg_tol must be finite and > 0"):
    bbmm.bbmm_mll(key, op, p, x, y, likelihood.Settings(cg_tol=NAN))
  with pytest.raises(ValueError, match="settings.num_lanczos must be >= 1"):
    bbmm.mll(key, op, p, x, y, likelihood.Settings(num_lanczos=0), method="bbmm")
  with pytest.raises(ValueError, match="num_steps must be >= 0"):
    bbmm.fit(key, op, p, x, y, num_steps=-1)
  with pytest.raises(TypeError, match="num_steps must be an int"):
    bbmm.fit(key, op, p, x, y, num_steps=2.5)
  with pytest.raises(ValueError, match="learning_rate must be > 0"):
    bbmm.fit(key, op, p, x, y, num_steps=1, learning_rate=0.0)
  with pytest.raises(ValueError, match="learning_rate must be finite"):
    bbmm.fit(key, op, p, x, y, num_steps=1, learning_rate=INF)
  with pytest.raises(ValueError, match="noise_floor must be >= 0"):
    bbmm.fit(key, op, p, x, y, num_steps=1, noise_floor=-1e-4)
  with pytest.raises(ValueError, match="block_size must be >= 1"):
    operators.ExactOperator("rbf", block_size=0)
  with pytest.raises(ValueError, match="grid_size entries must be >= 6"):
    operators.SKIOperator("rbf", (5,))
  with pytest.raises(ValueError, match=r"kernel\[2\] must be one of"):
    operators.SGPROperator(("sum", "rbf", "cosine"))


def test_predictions_reject_bad_test_inputs(gp):
  x, y, p, op = gp
  cache = predict.prediction_cache(op, p, x, y, love_rank=4)
  for fn in (predict.predictive_mean, predict.love_variance, predict.exact_variance,
             predict.predictive_variance):
    with pytest.raises(ValueError, match="x_star contains NaN"):
      fn(op, cache, x.at[0, 0].set(NAN))
    with pytest.raises(ValueError, match="x_star must have 2 columns"):
      fn(op, cache, x[:, :1])
    with pytest.raises(ValueError, match="x_star must have at least one row"):
      fn(op, cache, x[:0])
    with pytest.raises(ValueError, match="x_star must have rank 2"):
      fn(op, cache, x[0])
    with pytest.raises(TypeError, match="cache must be a PredictionCache"):
      fn(op, (cache.state, cache.solve), x)
  with pytest.raises(ValueError, match="love_rank must be >= 0"):
    predict.prediction_cache(op, p, x, y, love_rank=-1)
  with pytest.raises(ValueError, match="cache.love is None"):
    predict.love_variance(op, predict.prediction_cache(op, p, x, y), x)
  with pytest.raises(ValueError, match="batch_size must be >= 1"):
    predict.exact_variance(op, cache, x, batch_size=0)
  with pytest.raises(ValueError, match="tol must be > 0"):
    predict.exact_variance(op, cache, x, tol=-1.0)
  with pytest.raises(ValueError, match="x_star must have 2 columns like x"):
    predict.cholesky_predict(op, p, x, y, x[:, :1])


def test_linear_algebra_building_blocks():
  a = jnp.eye(3) * 2.0
  mv = lambda v: a @ v
  with pytest.raises(ValueError, match="b must have rank"):
    cg.mbcg(mv, jnp.ones((3, 1, 1)))
  with pytest.raises(ValueError, match="b must have at least one row"):
    cg.mbcg(mv, jnp.ones((0, 2)))
  with pytest.raises(TypeError, match="b must have dtype kind"):
    cg.mbcg(mv, jnp.ones((3,), jnp.int32))
  with pytest.raises(ValueError, match="x0 must have shape"):
    cg.mbcg(mv, jnp.ones((3, 2)), x0=jnp.ones((3, 1)))
  for kw, match in (({"tol": 0.0}, "tol must be > 0"), ({"tol": NAN}, "tol must be > 0"),
                    ({"max_iters": 0}, "max_iters must be >= 1"),
                    ({"num_lanczos": -1}, "num_lanczos must be >= 0"),
                    ({"min_iters": -2}, "min_iters must be >= 0")):
    with pytest.raises(ValueError, match=match):
      cg.mbcg(mv, jnp.ones((3,)), **kw)
  with pytest.raises(ValueError, match="v0 must be nonzero"):
    cg.lanczos(mv, jnp.zeros(3), 2)
  with pytest.raises(ValueError, match="v0 contains NaN"):
    cg.lanczos(mv, jnp.array([1.0, NAN, 0.0]), 2)
  with pytest.raises(ValueError, match="num_steps must be >= 1"):
    cg.lanczos(mv, jnp.ones(3), 0)
  with pytest.raises(ValueError, match="beta must have shape"):
    cg.cg_tridiagonals(jnp.ones((4, 2)), jnp.ones((3, 2)), jnp.array([4, 4]))
  with pytest.raises(TypeError, match="steps must have dtype kind"):
    cg.cg_tridiagonals(jnp.ones((4, 2)), jnp.ones((4, 2)), jnp.array([4.0, 4.0]))
  with pytest.raises(ValueError, match="alpha must have at least one row"):
    cg.cg_tridiagonals(jnp.ones((0, 2)), jnp.ones((0, 2)), jnp.array([0, 0]))
  with pytest.raises(ValueError, match="weights must have shape"):
    likelihood.slq_logdet(jnp.ones((4, 2)), jnp.ones((4, 2)), jnp.array([4, 4]), jnp.ones(3))
  with pytest.raises(ValueError, match="diag contains NaN"):
    precond.pivoted_cholesky(jnp.array([1.0, NAN]), lambda i: jnp.ones(2), 1)
  with pytest.raises(ValueError, match="diag must be >= 0"):
    precond.pivoted_cholesky(jnp.array([1.0, -1.0]), lambda i: jnp.ones(2), 1)
  with pytest.raises(ValueError, match="rank must be >= 0"):
    precond.pivoted_cholesky(jnp.ones(2), lambda i: jnp.ones(2), -1)
  for noise in (0.0, -0.5, NAN, INF):
    with pytest.raises(ValueError, match="noise must be finite and > 0"):
      precond.make_preconditioner(jnp.ones((4, 1)), noise)
  with pytest.raises(ValueError, match="lmat contains NaN"):
    precond.make_preconditioner(jnp.full((4, 1), NAN), 0.1)
  with pytest.raises(ValueError, match="lmat must have rank 2"):
    precond.make_preconditioner(jnp.ones(4), 0.1)
  with pytest.raises(ValueError, match="v must have 4"):
    operators.toeplitz_matmul(jnp.ones(4), jnp.ones((3, 2)))
  with pytest.raises(ValueError, match="col must have rank 1"):
    operators.toeplitz_matmul(jnp.ones((4, 1)), jnp.ones((4, 2)))


def test_kernels_and_data_generators():
  p = kernels.init_params("rbf", 2)
  x = jnp.ones((3, 2))
  with pytest.raises(ValueError, match="x1 contains NaN"):
    kernels.kernel_matrix("rbf", p, x.at[0, 0].set(NAN))
  with pytest.raises(ValueError, match="x2 must have rank 2"):
    kernels.kernel_matrix("rbf", p, x, jnp.ones(2))
  with pytest.raises(TypeError, match="x1 must have dtype kind"):
    kernels.kernel_matrix("rbf", p, x.astype(jnp.int32))
  with pytest.raises(ValueError, match="same number of columns"):
    kernels.kernel_matrix("rbf", p, x, jnp.ones((3, 3)))
  with pytest.raises(ValueError, match="spec must be one of"):
    kernels.kernel_matrix("gauss", p, x)
  with pytest.raises(ValueError, match="dim must be >= 1"):
    kernels.init_params("rbf", 0)
  with pytest.raises(ValueError, match="scale must be finite"):
    kernels.init_params("rbf", 2, scale=INF)
  with pytest.raises(ValueError, match="lengthscale must be > 0"):
    kernels.init_params("rbf", 2, lengthscale=-1.0)
  with pytest.raises(ValueError, match="n, dim and num_features must be >= 1"):
    data.synthetic(jax.random.key(0), 0)
  with pytest.raises(ValueError, match="noise must be >= 0"):
    data.synthetic(jax.random.key(0), 4, noise=-1.0)
  with pytest.raises(ValueError, match="fractions must be 3 non-negative"):
    data.split(jax.random.key(0), np.ones((5, 2)), np.ones(5), (0.5, 0.6, -0.1))


def test_nonfinite_values_inside_jit_are_honest_nans(gp):
  # Traced arguments cannot be checked on the host: the result must then be NaN (and flagged),
  # never a finite number.
  x, y, p, op = gp
  settings = likelihood.Settings(num_probes=2, num_lanczos=5, precond_rank=2)

  @jax.jit
  def run(yy, noise):
    q = p._replace(noise=noise)
    out = [likelihood.mll(jax.random.key(0), op, q, x, yy, settings, method=m)
           for m in ("bbmm", "cholesky")]
    return [o[0] for o in out], [o[1].converged for o in out]

  for yy, noise in ((y.at[0].set(NAN), 0.1), (y, NAN), (y, -1.0)):
    values, converged = run(yy, jnp.asarray(noise))
    assert np.all(np.isnan(np.asarray(values))), (noise, values)
    assert not np.any(np.asarray(converged))
  res = cg.mbcg(lambda v: v, jnp.array([1.0, NAN]), tol=1e-6)
  assert np.isnan(float(res.rel_residual[0])) and not bool(res.converged[0])


def test_distribution_bad_arguments(gp):
  x, y, p, _ = gp
  with pytest.raises(ValueError, match="loc contains NaN"):
    bbmm.BBMMMultivariateNormal(jnp.full(12, NAN), p, x)
  with pytest.raises(ValueError, match="x contains NaN"):
    bbmm.BBMMMultivariateNormal(0.0, p, x.at[0, 0].set(NAN))
  d = bbmm.BBMMMultivariateNormal(0.0, p, x, method="cholesky")
  with pytest.raises(ValueError, match="value contains NaN"):
    d.log_prob(y.at[0].set(NAN))
  with pytest.raises(ValueError, match=r"value must have shape \(\.\.\., 12\)"):
    d.log_prob(y[:, None])

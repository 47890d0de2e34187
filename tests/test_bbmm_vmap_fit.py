"""BBMM: ``make_fit`` — the whole Adam loop in one ``lax.scan``, so ``vmap(fit_fn)`` trains many GPs.

Tolerances: a vmapped run computes the same arithmetic as separate runs. The batched mBCG
``while_loop`` runs until every member has stopped, but JAX's batching rule ``select``s the old
carry for members whose own ``cond`` is already false, so each member keeps its own iteration
counts, residuals and Lanczos coefficients. (Standalone, one ``jit(vmap)`` likelihood evaluation is
bit-identical to the unbatched one.) Inside the training programs XLA fuses and orders the batched
products differently, so rounding differs at the ulp level; but mBCG / SLQ results are only
determined by the program up to their stopping accuracy: rounding decides *which* cg_tol-accurate
iterate (and Lanczos tridiagonal) a run ends with, so two programs agree to ~cg_tol, not to ~1e-16
(measured: the parameter / loss differences scale linearly with cg_tol from 1e-6 to 1e-11, at about
0.3 / 3 × cg_tol). Residuals near the end of a solve are themselves ~cg_tol, so the two runs'
residuals there differ by O(1) of their size and a column may stop one iteration earlier or later:
``num_iters`` may differ by 1, and one more iteration changes the result by ~cg_tol again. The loss −MLL/n is a difference of ``log|K̂|`` and ``rᵀK̂⁻¹r`` terms about 70×
larger than itself here, so we use cg_tol = 1e-11 (reachable in float64 at this conditioning) and a
tolerance of 1e3 · cg_tol = 1e-8: an order above the worst case of that argument (70 · a few · tol),
and far below any real difference (a different probe draw moves the parameters by ~1e-3).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers.bbmm import kernels, likelihood, operators, train

pytestmark = pytest.mark.usefixtures("x64")

N = 80
STEPS = 6
# A weak preconditioner and a tight tolerance: CG really iterates (tens of steps) and stops on the
# residual, so per-member iteration counts differ and the batched while_loop is exercised.
SETTINGS = likelihood.Settings(cg_tol=1e-11, num_probes=8, num_lanczos=60, min_lanczos=5,
                               precond_rank=5)
TOL = 1e3 * SETTINGS.cg_tol


def _data(seed, n=N, d=2):
  kx, ky = jax.random.split(jax.random.key(seed))
  x = jax.random.uniform(kx, (n, d), jnp.float64)
  y = jnp.sin(6 * x[:, 0] + seed) + jnp.cos(5 * x[:, -1]) + 0.1 * jax.random.normal(ky, (n,),
                                                                                   jnp.float64)
  return x, y


def _params(ls=0.3, scale=1.0, noise=0.05, mean=0.1, d=2):
  return operators.GPParams(kernels.init_params("rbf", d, ls, scale, jnp.float64),
                            jnp.asarray(noise, jnp.float64), jnp.asarray(mean, jnp.float64))


def _flat(tree):
  return np.concatenate([np.ravel(np.asarray(v, np.float64)) for v in jax.tree.leaves(tree)])


def _rel(a, b):
  return float(np.max(np.abs(_flat(a) - _flat(b)) / np.maximum(np.abs(_flat(b)), 1e-12)))


def _member(tree, i):
  return jax.tree.map(lambda v: v[i], tree)


OP = operators.ExactOperator("rbf")
FIT = train.make_fit(OP, num_steps=STEPS, settings=SETTINGS, method="bbmm")


def _batch():
  data = [_data(s) for s in range(4)]
  xs = jnp.stack([d[0] for d in data])
  ys = jnp.stack([d[1] for d in data])
  keys = jax.random.split(jax.random.key(7), 4)
  return keys, xs, ys


def test_vmap_fit_over_four_datasets_equals_four_fits():
  keys, xs, ys = _batch()
  p0 = _params()
  pb, hb = jax.jit(jax.vmap(FIT, in_axes=(0, None, 0, 0)))(keys, p0, xs, ys)
  assert hb["loss"].shape == (4, STEPS)
  single = jax.jit(FIT)
  iters = []
  for i in range(4):
    p, h = single(keys[i], p0, xs[i], ys[i])
    assert _rel(_member(pb, i), p) < TOL
    np.testing.assert_allclose(hb["loss"][i], h["loss"], rtol=TOL)
    assert np.max(np.abs(np.asarray(hb["num_iters"][i]) - np.asarray(h["num_iters"]))) <= 1
    np.testing.assert_array_equal(hb["converged"][i], h["converged"])
    iters.append(np.asarray(h["num_iters"]))
    assert bool(np.all(h["converged"]))
  assert np.all(np.asarray(iters) > 5)  # CG iterated past min_lanczos (the loop did real work)
  assert len({tuple(v) for v in iters}) > 1  # members stopped at different iterations
  # the parameters moved, and differently per data set
  assert _rel(_member(pb, 0), p0) > 1e-2
  assert _rel(_member(pb, 0), _member(pb, 1)) > 1e-3


def test_fit_fn_equals_fit():
  x, y = _data(0)
  p0 = _params()
  key = jax.random.key(3)
  got, hist = FIT(key, p0, x, y)
  ref, ref_hist = train.fit(key, OP, p0, x, y, num_steps=STEPS, settings=SETTINGS,
                            method="bbmm", chunk_size=4)  # two chunks: 4 + 2 steps
  assert _rel(got, ref) < TOL
  for k in ("loss", "noise", "max_rel_residual"):
    np.testing.assert_allclose(hist[k], ref_hist[k], rtol=TOL, atol=1e-14)
  assert np.max(np.abs(np.asarray(hist["num_iters"]) - np.asarray(ref_hist["num_iters"]))) <= 1
  assert set(hist) == set(ref_hist)


def test_fit_fn_jit_equals_eager():
  x, y = _data(1)
  p0 = _params()
  key = jax.random.key(4)
  eager = FIT(key, p0, x, y)
  jitted = jax.jit(FIT)(key, p0, x, y)
  assert _rel(jitted[0], eager[0]) < TOL
  np.testing.assert_allclose(jitted[1]["loss"], eager[1]["loss"], rtol=TOL)


def test_vmap_over_initialisations_and_cholesky_path():
  # One data set, four hyperparameter initialisations; method="auto" takes Cholesky (n ≤ 800 is
  # static), which must vmap too. Exact loss, so all inits head for the same optimum.
  x, y = _data(2)
  inits = [_params(ls=ls, noise=nz) for ls, nz in ((0.1, 0.01), (0.3, 0.05), (0.6, 0.2),
                                                   (1.0, 0.5))]
  pb0 = jax.tree.map(lambda *v: jnp.stack(v), *inits)
  fit_fn = train.make_fit(OP, num_steps=STEPS, settings=SETTINGS)  # auto -> Cholesky at n = 80
  pb, hb = jax.jit(jax.vmap(fit_fn, in_axes=(None, 0, None, None)))(jax.random.key(0), pb0, x, y)
  for i, p0 in enumerate(inits):
    p, h = fit_fn(jax.random.key(0), p0, x, y)
    assert _rel(_member(pb, i), p) < TOL
    np.testing.assert_allclose(hb["loss"][i], h["loss"], rtol=TOL)
    np.testing.assert_array_equal(h["num_iters"], 0)
  # the BBMM path over initialisations as well
  pbb, _ = jax.jit(jax.vmap(FIT, in_axes=(None, 0, None, None)))(jax.random.key(0), pb0, x, y)
  for i, p0 in enumerate(inits):
    assert _rel(_member(pbb, i), jax.jit(FIT)(jax.random.key(0), p0, x, y)[0]) < TOL


def test_make_fit_validates_static_arguments():
  with pytest.raises(ValueError, match="num_steps"):
    train.make_fit(OP, num_steps=-1)
  with pytest.raises(TypeError, match="num_steps"):
    train.make_fit(OP, num_steps=2.5)
  with pytest.raises(ValueError, match="learning_rate"):
    train.make_fit(OP, num_steps=1, learning_rate=0.0)
  with pytest.raises(ValueError, match="method"):
    train.make_fit(OP, num_steps=1, method="lu")
  with pytest.raises(ValueError, match="y has"):
    FIT(jax.random.key(0), _params(), jnp.zeros((5, 2)), jnp.zeros(4))


def test_vmap_fit_with_the_probed_gradient_equals_separate_fits():
  # method="cholesky_hutchinson": no iterative solve, so a vmapped run equals separate runs to
  # rounding (a Cholesky and triangular solves per step).
  keys, xs, ys = _batch()
  p0 = _params()
  fit_h = train.make_fit(OP, num_steps=STEPS, settings=SETTINGS, method="cholesky_hutchinson")
  pb, hb = jax.jit(jax.vmap(fit_h, in_axes=(0, None, 0, 0)))(keys, p0, xs, ys)
  for i in range(4):
    p, h = jax.jit(fit_h)(keys[i], p0, xs[i], ys[i])
    assert _rel(_member(pb, i), p) < 1e-9
    np.testing.assert_allclose(hb["loss"][i], h["loss"], rtol=1e-9)
    np.testing.assert_array_equal(h["num_probes"], SETTINGS.num_probes)
  # the loss is the exact −MLL/n at each step's parameters: step 0 equals Cholesky's
  exact = -likelihood.cholesky_mll(OP, p0, xs[0], ys[0]) / N
  np.testing.assert_allclose(hb["loss"][0][0], exact, rtol=1e-12)
  assert _rel(_member(pb, 0), _member(pb, 1)) > 1e-3

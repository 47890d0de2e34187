"""Predictive variances: preconditioned LOVE, its self-measured error, the CG fallback.

For each (n, d, kernel, σ²) on synthetic data (inputs uniform on [0, 1]^d, lengthscale 0.5,
float64) this prints the mean and max relative error against dense Cholesky variances of

* ``love``: :func:`jaxpapers.bbmm.predict.love_variance` (``--love_rank`` Lanczos steps on the
  preconditioned operator, the preconditioner of ``Settings().precond_rank``);
* ``est``: the cache's own error estimate (LOVE against CG at ``love_checks`` training inputs);
* ``used``: :func:`~jaxpapers.bbmm.predict.predictive_variance` (LOVE when ``est`` ≤ 1 %, else CG)
  and which branch it took;

with the seconds (second call, compiled) of the cache and of 500 test variances by each path. Usage::

  python experiments/bbmm/love_accuracy.py --sizes=1500 --dim=4
  python experiments/bbmm/love_accuracy.py --sizes=2000 --dim=8 --kernels=rbf,matern52
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from jaxpapers.bbmm import kernels, likelihood, predict
from jaxpapers.bbmm import operators as ops

_SIZES = flags.DEFINE_list("sizes", ["1500"], "Training-set sizes n.")
_DIM = flags.DEFINE_integer("dim", 4, "Input dimension.")
_KERNELS = flags.DEFINE_list("kernels", ["rbf"], "Kernels (rbf, matern52, ...).")
_NOISES = flags.DEFINE_list("noises", ["0.1", "0.01", "0.001"], "Noise variances σ².")
_RANK = flags.DEFINE_integer("love_rank", 50, "Lanczos steps of the LOVE cache.")
_TEST = flags.DEFINE_integer("num_test", 500, "Test points.")


def _timed(fn):
  jax.block_until_ready(fn())  # compile
  t0 = time.perf_counter()
  out = jax.block_until_ready(fn())
  return out, time.perf_counter() - t0


def main(argv):
  del argv
  jax.config.update("jax_enable_x64", True)
  settings = likelihood.Settings()
  print(f"{'n':>6} {'d':>2} {'kernel':>9} {'σ²':>6} | {'love mean':>9} {'max':>8} | {'est':>8} | "
        f"{'used':>4} {'mean':>8} {'max':>8} | cache s  love s  cg s")
  for n in map(int, _SIZES.value):
    for kern in _KERNELS.value:
      for noise in map(float, _NOISES.value):
        rng = np.random.default_rng(0)
        xa = rng.uniform(size=(n + _TEST.value, _DIM.value))
        x, xs = jnp.asarray(xa[:n]), jnp.asarray(xa[n:])
        y = jnp.asarray(np.sin(3 * xa[:n]).sum(1) + np.sqrt(noise) * rng.standard_normal(n))
        p = ops.GPParams(kernels.init_params(kern, _DIM.value, 0.5, 1.0, jnp.float64),
                         jnp.asarray(noise), jnp.zeros(()))
        op = ops.ExactOperator(kern)
        _, ref = predict.cholesky_predict(op, p, x, y, xs, zero_mean=True)
        ref = np.asarray(ref)
        cache, t_cache = _timed(lambda: predict.prediction_cache(
            op, p, x, y, settings, love_rank=_RANK.value, zero_mean=True))
        love, t_love = _timed(lambda: predict.love_variance(op, cache, xs))
        cg, t_cg = _timed(lambda: predict.exact_variance(op, cache, xs, settings))
        used = predict.predictive_variance(op, cache, xs, settings)
        branch = "love" if float(cache.love.error) <= 0.01 else "cg"
        rel = lambda v: np.abs(np.asarray(v) - ref) / ref  # noqa: E731
        print(f"{n:>6} {_DIM.value:>2} {kern:>9} {noise:>6g} | {rel(love).mean():>9.2e} "
              f"{rel(love).max():>8.2e} | {float(cache.love.error):>8.2e} | {branch:>4} "
              f"{rel(used).mean():>8.2e} {rel(used).max():>8.2e} | {t_cache:7.1f} {t_love:7.2f} "
              f"{t_cg:5.2f}", flush=True)


if __name__ == "__main__":
  app.run(main)

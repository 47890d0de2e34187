"""What ``method="auto"`` picks, and the timings it measured, across training-set sizes.

Synthetic data as in ``benchmark.py`` (inputs uniform on [0, 1]^d, RBF ℓ = 0.5, σ² = 0.01).
For each n this calls :func:`jaxpapers.bbmm.likelihood.choose_method` with ``cholesky_size=0``
(so every size is measured) and prints both measured seconds per MLL + gradient. Usage::

  python experiments/bbmm/method_choice.py --sizes=1000,2000,3000,4000,6000
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from absl import app, flags

from jaxpapers.bbmm import data, kernels, likelihood
from jaxpapers.bbmm import operators as ops

_SIZES = flags.DEFINE_list("sizes", ["1000", "2000", "3000", "4000", "6000"], "Sizes n.")
_DIM = flags.DEFINE_integer("dim", 8, "Input dimension.")
_X64 = flags.DEFINE_bool("x64", False, "float64 instead of float32.")


def main(argv):
  del argv
  if _X64.value:
    jax.config.update("jax_enable_x64", True)
  dtype = jnp.float64 if _X64.value else jnp.float32
  settings = likelihood.Settings(cholesky_size=0)
  print(f"backend {jax.default_backend()}, {jnp.dtype(dtype).name}, d = {_DIM.value}, defaults "
        "except cholesky_size=0")
  print(f"{'n':>6} {'cholesky s':>11} {'bbmm s':>8} {'chosen':>9}")
  for n in map(int, _SIZES.value):
    x, y = data.synthetic(jax.random.key(n), n, _DIM.value, lengthscale=0.5, noise=0.01,
                          dtype=dtype)
    p = ops.GPParams(kernels.init_params("rbf", _DIM.value, 0.5, 1.0, dtype),
                     jnp.asarray(0.01, dtype), jnp.zeros((), dtype))
    c = likelihood.choose_method(jax.random.key(0), ops.ExactOperator("rbf"), p, x, y, settings)
    print(f"{n:>6} {c.cholesky_seconds:>11.3f} {c.bbmm_seconds:>8.3f} {c.method:>9}", flush=True)


if __name__ == "__main__":
  app.run(main)

"""Exact-GP training at sizes where the kernel matrix cannot be stored (Wang et al. 2019's regime).

Fits the hyperparameters of an exact RBF GP by Adam on the BBMM marginal likelihood with the
matrix-free operator (kernel rows formed in blocks of ``--block_size`` and recomputed in the
backward pass, so memory is O(n·(t + 1 + k) + block·n)), and prints each step's time, CG
iterations and convergence as it goes. The data are :func:`jaxpapers.bbmm.data.synthetic` (a
random-Fourier-feature GP draw on ``[0, 1]^d``), so no download is needed at any size.

  python experiments/bbmm/scale.py --sizes=100000,1000000 --steps=3,1   # on a GPU
  python experiments/bbmm/scale.py --sizes=2000 --steps=2 --precond_rank=100   # CPU smoke
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from jaxpapers.bbmm import data, kernels, likelihood, train
from jaxpapers.bbmm import operators as ops

_SIZES = flags.DEFINE_list("sizes", ["100000", "1000000"], "Training-set sizes n.")
_STEPS = flags.DEFINE_list("steps", ["3", "1"], "Adam steps per size.")
_DIM = flags.DEFINE_integer("dim", 3, "Input dimension.")
_LS = flags.DEFINE_float("lengthscale", 0.3, "Lengthscale of the generating GP.")
_NOISE = flags.DEFINE_float("noise", 0.1, "Noise variance of the data.")
_BLOCK = flags.DEFINE_integer("block_size", 1024, "Kernel rows formed at once.")
_RANK = flags.DEFINE_integer("precond_rank", likelihood.Settings().precond_rank,
                             "Pivoted-Cholesky preconditioner rank.")
_PROBES = flags.DEFINE_integer("num_probes", likelihood.Settings().num_probes, "SLQ probes.")
_X64 = flags.DEFINE_bool("x64", False, "Run in float64 (jax_enable_x64).")
_FORM = flags.DEFINE_enum("precond_form", "woodbury", ["woodbury", "orthogonal"],
                          "Preconditioner solve (orthogonal stays definite in float32 at 1M).")
_PRECISION = flags.DEFINE_string("matmul_precision", "highest",
                                 "jax_default_matmul_precision (GPUs default to TF32).")


def main(argv):
  del argv
  jax.config.update("jax_default_matmul_precision", _PRECISION.value)
  if _X64.value:
    jax.config.update("jax_enable_x64", True)
  dtype = jnp.float64 if _X64.value else jnp.float32
  print(f"device: {jax.devices()[0].device_kind}; d={_DIM.value}, ℓ={_LS.value}, "
        f"σ²={_NOISE.value}, block {_BLOCK.value}, rank {_RANK.value}, {_PROBES.value} probes, "
        f"{jnp.dtype(dtype).name}, {_FORM.value} preconditioner",
        flush=True)
  settings = likelihood.Settings(precond_rank=_RANK.value, num_probes=_PROBES.value,
                                 precond_form=_FORM.value)
  op = ops.ExactOperator("rbf", block_size=_BLOCK.value)
  for n, steps in zip(map(int, _SIZES.value), map(int, _STEPS.value)):
    x, y = data.synthetic(jax.random.key(n), n, _DIM.value, lengthscale=_LS.value,
                          noise=_NOISE.value, dtype=dtype)
    p0 = ops.GPParams(kernels.init_params("rbf", _DIM.value, 0.6931, 0.6931, dtype),
                      jnp.asarray(0.6931, dtype), jnp.zeros((), dtype))
    start = time.perf_counter()
    marks = [start]

    def on_chunk(state, step, metrics, marks=marks, n=n):
      now = time.perf_counter()
      print(f"n={n:>8} step {step:>3}: {now - marks[-1]:8.2f} s (first includes compile) "
            f"loss {float(np.asarray(metrics['loss'])):.4f} CG iters "
            f"{int(np.asarray(metrics['num_iters']))} converged "
            f"{bool(np.asarray(metrics['converged']))}", flush=True)
      marks.append(now)

    gp, _ = train.fit(jax.random.key(0), op, p0, x, y, num_steps=steps, settings=settings,
                             method="bbmm", chunk_size=1, on_chunk=on_chunk)
    jax.block_until_ready(gp)
    print(f"n={n:>8}: {steps} Adam steps in {time.perf_counter() - start:.1f} s; noise "
          f"{float(gp.noise):.4f}, lengthscale {np.asarray(gp.kernel.lengthscale).round(3)}",
          flush=True)


if __name__ == "__main__":
  app.run(main)

"""BBMM MLL + gradient speed and accuracy against dense Cholesky, measured in the same run.

For each ``n`` this times one ``jit(value_and_grad)`` evaluation of the exact-GP log likelihood

* ``bbmm-free``: matrix-free BBMM (row-blocked kernel products, recomputed in the backward pass);
* ``bbmm-dense``: BBMM with ``K̂`` formed once per evaluation (GPyTorch's default for exact GPs);
* ``chol-jax``: dense Cholesky in JAX (autodiff gradient);
* ``chol-scipy``: dense float64 Cholesky in SciPy with the analytic gradient (the baseline);
* ``gpytorch`` (only with ``--gpytorch`` and an installed torch + gpytorch): GPyTorch's
  ``ExactMarginalLogLikelihood`` with its defaults, on the same data;
* ``gpytorch-ours``: GPyTorch with our numerical settings (CG tolerance, probes, preconditioner
  rank, set through ``gpytorch.settings``), the equal-accuracy comparison. GPyTorch runs every
  column for at least its Lanczos step count, so that is set to our ``min_lanczos`` (the same
  iteration floor; with our rank-1000 preconditioner CG converges in about that many steps).

and reports seconds (best of ``--reps``), the speed ratio to the first row (``chol-scipy``, or
``bbmm-dense`` above ``--max_chol_n``) and the MLL's relative
error against the float64 Cholesky value, averaged over ``--reps`` probe draws for the stochastic
methods (a single draw's error is mostly probe noise). Usage::

  python experiments/bbmm/benchmark.py --sizes=1000,2000 --reps=2
  python experiments/bbmm/benchmark.py --sizes=10000,20000,40000 --gpytorch --exact=torch \
      --max_chol_n=0 --max_free_n=0          # on a GPU
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg
import scipy.spatial
from absl import app, flags

from jaxpapers.bbmm import data, kernels, likelihood
from jaxpapers.bbmm import operators as ops

_SIZES = flags.DEFINE_list("sizes", ["2000", "5000", "10000"], "Training-set sizes n.")
_DIM = flags.DEFINE_integer("dim", 8, "Input dimension of the synthetic data.")
_REPS = flags.DEFINE_integer("reps", 3, "Timed repetitions (best is reported).")
_NOISE = flags.DEFINE_float("noise", 0.01, "Noise variance σ².")
_LS = flags.DEFINE_float("lengthscale", 0.5, "RBF lengthscale (inputs uniform on [0, 1]^d).")
_GPYTORCH = flags.DEFINE_bool("gpytorch", False, "Also time GPyTorch (needs torch + gpytorch).")
_SKIP_FREE = flags.DEFINE_integer("max_free_n", 10000, "Largest n for the matrix-free variant.")
_MAX_CHOL = flags.DEFINE_integer("max_chol_n", 10000,
                                 "Largest n for the timed Cholesky rows (SciPy and JAX).")
_EXACT = flags.DEFINE_enum("exact", "scipy", ["scipy", "torch"],
                           "Float64 reference MLL: SciPy on the CPU, or torch (on the GPU when "
                           "there is one; n = 40k takes seconds there).")
_PRECISION = flags.DEFINE_string("matmul_precision", "highest",
                                 "jax_default_matmul_precision: on GPUs JAX's default runs float32 "
                                 "products in TF32, which CG cannot tolerate; torch's default is "
                                 "full float32, so 'highest' compares like with like.")


def _best(fn, reps):
  """Best wall time of ``fn(i)`` over ``i = 0 … reps−1`` (after a warm-up call) and the outputs."""
  fn(0)
  best, outs = float("inf"), []
  for i in range(reps):
    t = time.perf_counter()
    outs.append(fn(i))
    best = min(best, time.perf_counter() - t)
  return best, outs


def _mean_rel_err(values, exact):
  return float(np.mean([abs(v - exact) / abs(exact) for v in values]))


def _scipy_mll_grad(x, y, ls, noise):
  d2 = scipy.spatial.distance.cdist(x / ls, x / ls, "sqeuclidean")
  k = np.exp(-0.5 * d2)
  c = scipy.linalg.cho_factor(k + noise * np.eye(len(y)), lower=True)
  a = scipy.linalg.cho_solve(c, y)
  mll = -0.5 * y @ a - np.sum(np.log(np.diag(c[0]))) - 0.5 * len(y) * np.log(2 * np.pi)
  kinv = scipy.linalg.cho_solve(c, np.eye(len(y)))
  w = np.outer(a, a) - kinv
  g_noise = 0.5 * np.trace(w)
  g_ls = 0.5 * np.sum(w * k * d2) / ls  # isotropic lengthscale derivative
  return mll, (g_noise, g_ls)


def _torch_exact_mll(x, y, ls, noise):
  """Float64 Cholesky MLL in torch (GPU if available), for sizes SciPy cannot do in a run."""
  import torch

  dev = "cuda" if torch.cuda.is_available() else "cpu"
  tx = torch.tensor(x / ls, dtype=torch.float64, device=dev)
  ty = torch.tensor(y, dtype=torch.float64, device=dev)
  k = torch.cdist(tx, tx)  # in place from here on: n = 40k is 12.8 GB per n × n copy
  k.square_().mul_(-0.5).exp_()
  k.diagonal().add_(noise)
  torch.linalg.cholesky(k, out=k)
  a = torch.cholesky_solve(ty[:, None], k)[:, 0]
  mll = -0.5 * ty @ a - torch.log(torch.diagonal(k)).sum() - 0.5 * len(y) * np.log(2 * np.pi)
  mll = float(mll)
  del k, a
  if dev == "cuda":
    torch.cuda.empty_cache()
  return mll


def _gpytorch_mll(x, y, ls, noise, settings=None):
  """A GPyTorch MLL + backward step; ``settings`` (ours) overrides GPyTorch's numerical defaults."""
  import contextlib

  import gpytorch
  import torch

  dev = "cuda" if torch.cuda.is_available() else "cpu"
  tx = torch.tensor(x, dtype=torch.float32, device=dev)
  ty = torch.tensor(y, dtype=torch.float32, device=dev)

  class Model(gpytorch.models.ExactGP):
    def __init__(self):
      lik = gpytorch.likelihoods.GaussianLikelihood()
      super().__init__(tx, ty, lik)
      self.mean_module = gpytorch.means.ZeroMean()
      self.covar_module = gpytorch.kernels.ScaleKernel(gpytorch.kernels.RBFKernel())

    def forward(self, inp):
      return gpytorch.distributions.MultivariateNormal(self.mean_module(inp), self.covar_module(inp))

  model = Model().to(dev)
  model.covar_module.base_kernel.lengthscale = ls
  model.covar_module.outputscale = 1.0
  model.likelihood.noise = noise
  model.train()
  mll = gpytorch.mlls.ExactMarginalLogLikelihood(model.likelihood, model)

  def ctx():
    stack = contextlib.ExitStack()
    if settings is not None:
      gs = gpytorch.settings
      for c in (gs.cg_tolerance(settings.cg_tol), gs.num_trace_samples(settings.num_probes),
                gs.max_lanczos_quadrature_iterations(settings.min_lanczos),
                gs.max_preconditioner_size(settings.precond_rank),
                gs.min_preconditioning_size(settings.min_precond_size),
                gs.max_cg_iterations(settings.max_cg_iters)):
        stack.enter_context(c)
    return stack

  def step(seed=0):
    torch.manual_seed(seed)
    model.zero_grad()
    with ctx():
      out = mll(model(tx), ty) * len(y)
      out.backward()
    if dev == "cuda":
      torch.cuda.synchronize()
    return float(out.detach())

  return step


def main(argv):
  del argv
  ls, noise = _LS.value, _NOISE.value
  jax.config.update("jax_default_matmul_precision", _PRECISION.value)
  print(f"device: {jax.devices()[0].device_kind}; RBF ℓ={ls}, σ²={noise}, d={_DIM.value}; "
        f"reference: float64 Cholesky ({_EXACT.value})")
  header = f"{'n':>6} {'method':>13} {'seconds':>9} {'vs first':>9} {'MLL rel err':>12}"
  print(header)
  for n in map(int, _SIZES.value):
    x, y = data.synthetic(jax.random.key(n), n, _DIM.value, lengthscale=ls, noise=noise,
                          dtype=jnp.float32)
    xn, yn = np.asarray(x, np.float64), np.asarray(y, np.float64)
    rows = []
    if _EXACT.value == "torch":
      exact = _torch_exact_mll(xn, yn, ls, noise)
    if n <= _MAX_CHOL.value:
      t_ref, outs = _best(lambda i: _scipy_mll_grad(xn, yn, ls, noise), max(1, _REPS.value - 1))
      exact = outs[0][0] if _EXACT.value == "scipy" else exact
      rows.append(("chol-scipy", t_ref, _mean_rel_err([outs[0][0]], exact)))
    p = ops.GPParams(kernels.init_params("rbf", _DIM.value, ls, 1.0, jnp.float32),
                     jnp.asarray(noise, jnp.float32), jnp.zeros((), jnp.float32))
    settings = likelihood.Settings()
    variants = [("bbmm-dense", ops.ExactOperator("rbf", materialize=True))]
    if n <= _SKIP_FREE.value:
      variants.append(("bbmm-free", ops.ExactOperator("rbf", block_size=1024)))
    for name, op in variants:
      f = jax.jit(jax.value_and_grad(
          lambda q, k, op=op: likelihood.bbmm_mll(k, op, q, x, y, settings, zero_mean=True)[0]))
      t, outs = _best(lambda i, f=f: jax.block_until_ready(f(p, jax.random.key(i))), _REPS.value)
      rows.append((name, t, _mean_rel_err([float(v) for v, _ in outs], exact)))
    if n <= _MAX_CHOL.value:
      op = ops.ExactOperator("rbf")
      fc = jax.jit(jax.value_and_grad(lambda q: likelihood.cholesky_mll(op, q, x, y,
                                                                        zero_mean=True)))
      t, outs = _best(lambda i: jax.block_until_ready(fc(p)), _REPS.value)
      rows.append(("chol-jax", t, _mean_rel_err([float(v) for v, _ in outs], exact)))
    if _GPYTORCH.value:
      step = _gpytorch_mll(xn, yn, ls, noise)
      t, outs = _best(step, _REPS.value)
      rows.append(("gpytorch", t, _mean_rel_err(outs, exact)))
      step = _gpytorch_mll(xn, yn, ls, noise, settings)
      t, outs = _best(step, _REPS.value)
      rows.append(("gpytorch-ours", t, _mean_rel_err(outs, exact)))
    for name, t, err in rows:
      print(f"{n:>6} {name:>13} {t:>9.3f} {rows[0][1] / t:>8.2f}× {err:>12.2e}", flush=True)


if __name__ == "__main__":
  app.run(main)

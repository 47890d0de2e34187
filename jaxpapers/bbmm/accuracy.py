"""The BBMM accuracy suite: MLL and gradient errors against float64 Cholesky, case by case.

One case is a data set (synthetic or a z-scored UCI subset), a size ``n``, a kernel (RBF or
Matérn-5/2 with ARD lengthscales) and a noise variance σ². :func:`run_case` evaluates

* the reference: float64 dense Cholesky MLL, ``log|K̂|`` and the gradient w.r.t. the log
  hyperparameters (ARD lengthscales, output scale, σ²), by autodiff of
  :func:`~jaxpapers.bbmm.likelihood.cholesky_mll` under ``jax.enable_x64``;
* BBMM in float32 at the given :class:`~jaxpapers.bbmm.likelihood.Settings` (the defaults unless
  told otherwise) for ``draws`` independent probe keys: per draw the MLL's relative error, the
  log-det's relative error, the gradient's norm-wise relative error ``‖g − g*‖ / ‖g*‖`` (each
  draw is what one training step sees), CG iterations and seconds of one compiled MLL +
  gradient.

The MLL's relative error is fragile where |MLL| ≪ |log|K̂|| (the two terms cancel), so the log-det
error is reported beside it.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers._src import validation
from jaxpapers.bbmm import data as data_lib
from jaxpapers.bbmm import kernels, likelihood
from jaxpapers.bbmm import operators as ops

KERNELS = ("rbf", "matern52")


class Case(NamedTuple):
  """One accuracy case.

  Attributes:
    dataset: ``"synthetic"`` (inputs uniform on [0, 1]^8, targets an RBF-GP draw plus noise) or
      a UCI set of :data:`jaxpapers.bbmm.data.UCI_FILES` (a random subset, z-scored).
    n: training points.
    kernel: ``"rbf"`` or ``"matern52"``.
    noise: σ² of the evaluated model.
  """

  dataset: str
  n: int
  kernel: str
  noise: float


def case_data(case: Case, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """``(x, y, ard_lengthscales)`` in float64 for ``case`` (raises if a UCI file is absent).

  Lengthscales: synthetic, drawn from U[0.4, 0.8] per dimension (seeded); UCI (z-scored inputs),
  ``0.5·√d`` times a U[0.5, 1.5] factor per dimension, so no case is isotropic.
  """
  validation.check_in(case.kernel, "case.kernel", KERNELS)
  rng = np.random.default_rng(seed)
  if case.dataset == "synthetic":
    x, y = data_lib.synthetic(jax.random.key(seed), case.n, 8, lengthscale=0.5,
                              noise=case.noise, dtype=jnp.float32)
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    ls = rng.uniform(0.4, 0.8, x.shape[1])
  else:
    x, y = data_lib.load_uci(case.dataset)
    idx = rng.permutation(x.shape[0])[:case.n]
    x, y = x[idx], y[idx]
    sx = np.where(x.std(0) > 0, x.std(0), 1.0)
    x, y = (x - x.mean(0)) / sx, (y - y.mean()) / y.std()
    ls = 0.5 * np.sqrt(x.shape[1]) * rng.uniform(0.5, 1.5, x.shape[1])
  return x, y, ls


def case_params(case: Case, ls: np.ndarray, dtype) -> ops.GPParams:
  """The case's model: ARD lengthscales ``ls``, scale 1, σ² = ``case.noise``, zero mean."""
  kp = kernels.init_params(case.kernel, ls.shape[0], 1.0, 1.0, dtype)._replace(
      lengthscale=jnp.asarray(ls, dtype))
  return ops.GPParams(kp, jnp.asarray(case.noise, dtype), jnp.zeros((), dtype))


def log_gradient(g: ops.GPParams, p: ops.GPParams) -> np.ndarray:
  """Gradient w.r.t. (log ℓ, log s, log σ²) from the gradient w.r.t. (ℓ, s, σ²)."""
  return np.concatenate([np.asarray(g.kernel.lengthscale * p.kernel.lengthscale, np.float64),
                         np.atleast_1d(np.asarray(g.kernel.scale * p.kernel.scale, np.float64)),
                         np.atleast_1d(np.asarray(g.noise * p.noise, np.float64))])


def relative_errors(value: float, grad: np.ndarray, ref: dict) -> tuple[float, float]:
  """``(|MLL − MLL*| / |MLL*|, ‖g − g*‖ / ‖g*‖)`` against a :func:`reference` (log-parameter
  gradients); NaN in either input gives NaN."""
  return (abs(float(value) - ref["mll"]) / abs(ref["mll"]),
          float(np.linalg.norm(grad - ref["grad"]) / np.linalg.norm(ref["grad"])))


def reference(case: Case, x: np.ndarray, y: np.ndarray, ls: np.ndarray) -> dict:
  """Float64 Cholesky MLL, ``log|K̂|`` and log-hyperparameter gradient.

  Also the gradient's two terms, ``grad = grad_fit + grad_logdet``: ``grad_fit`` of the data
  term ``−½ yᵀK̂⁻¹y`` (``½ αᵀ ∂K̂ α``, ``α = K̂⁻¹y``: what BBMM gets from one CG solve) and
  ``grad_logdet`` of ``−½ log|K̂|`` (``−½ tr(K̂⁻¹ ∂K̂)``: what BBMM's probes estimate).
  ``cancellation = ‖grad_logdet‖ / ‖grad‖``: a relative error ``e`` in the trace term is an error
  of ``cancellation · e`` in the gradient.
  """
  op = ops.ExactOperator(case.kernel)
  with jax.enable_x64(True):
    p = case_params(case, ls, jnp.float64)
    xj, yj = jnp.asarray(x, jnp.float64), jnp.asarray(y, jnp.float64)
    value, grad = jax.jit(jax.value_and_grad(
        lambda q: likelihood.cholesky_mll(op, q, xj, yj, zero_mean=True)))(p)
    khat = op.dense(op.prepare(p, xj))
    chol = jnp.linalg.cholesky(khat)
    logdet = float(2.0 * jnp.sum(jnp.log(jnp.diag(chol))))
    alpha = jax.scipy.linalg.cho_solve((chol, True), yj)
    fit = jax.jit(jax.grad(lambda q: 0.5 * jnp.dot(alpha, op.matmul(op.prepare(q, xj),
                                                                     alpha[:, None])[:, 0])))(p)
    g, g_fit = log_gradient(grad, p), log_gradient(fit, p)
    g_logdet = g - g_fit
    return {"mll": float(value), "logdet": logdet, "grad": g, "grad_fit": g_fit,
            "grad_logdet": g_logdet,
            "cancellation": float(np.linalg.norm(g_logdet) / np.linalg.norm(g))}


def run_case(case: Case, seed: int = 0, *, draws: int = 8,
             settings: likelihood.Settings = likelihood.Settings(), ref: dict | None = None,
             method: str = "bbmm") -> dict:
  """Errors of float32 BBMM at ``settings`` against the float64 reference, over ``draws`` keys.

  ``method="auto"`` evaluates what :func:`~jaxpapers.bbmm.likelihood.mll` runs by default
  instead: :func:`~jaxpapers.bbmm.likelihood.choose_method` once (its solver, its adapted probe
  count and its timings are recorded, with the seconds the choice itself took), then that
  method (float32 Cholesky is deterministic: it is evaluated once, and its lists hold that one
  draw; ``"cholesky_hutchinson"``'s probed gradient gets ``draws`` keys like BBMM).

  Returns:
    A JSON-able dict: the case, ``mll_err`` / ``logdet_err`` / ``grad_err`` lists (one per
    draw), their means and maxima, ``cg_iters`` (per draw), ``seconds`` (median of the timed
    draws, compiled), ``mll`` and ``logdet`` (reference).
  """
  if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
    raise ValueError(f"draws must be a positive int, got {draws!r}")
  validation.check_in(method, "method", ("bbmm", "auto"))
  likelihood.check_settings(settings)
  x, y, ls = case_data(case, seed)
  ref = reference(case, x, y, ls) if ref is None else ref
  op = ops.ExactOperator(case.kernel, materialize=True)
  p = case_params(case, ls, jnp.float32)
  xj, yj = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
  extra = {}
  run = "bbmm"
  if method == "auto":
    t0 = time.perf_counter()
    choice = likelihood.choose_method(jax.random.key(20_000 + seed), op, p, xj, yj, settings,
                                      zero_mean=True, cache=False)  # σ² differs, shapes not
    extra = {"method": choice.method, "reason": choice.reason,
             "num_probes": choice.settings_for(settings).num_probes,
             "cholesky_seconds": choice.cholesky_seconds, "bbmm_seconds": choice.bbmm_seconds,
             "mll_rel_std_error": choice.mll_rel_std_error,
             "grad_rel_std_error": choice.grad_rel_std_error,
             "hutchinson_seconds": choice.hutchinson_seconds,
             "hutchinson_probes": choice.hutchinson_probes,
             "hutchinson_grad_rel_std_error": choice.hutchinson_grad_rel_std_error,
             "choose_seconds": time.perf_counter() - t0}
    run, settings = choice.method, choice.settings_for(settings)
  if run in ("cholesky", "cholesky_hutchinson"):
    # The float32 log-det, for the record, factorised once outside the timed program.
    logdet = 2.0 * jnp.sum(jnp.log(jnp.diag(jnp.linalg.cholesky(op.dense(op.prepare(p, xj))))))

    def evaluate(q, k):
      value = (likelihood.cholesky_mll(op, q, xj, yj, zero_mean=True) if run == "cholesky" else
               likelihood.cholesky_hutchinson_mll(k, op, q, xj, yj, settings, zero_mean=True))
      return value, likelihood.MLLInfo(jnp.isfinite(value), jnp.int32(0), jnp.zeros(()),
                                       logdet, jnp.zeros(()))
  else:
    def evaluate(q, k):
      return likelihood.bbmm_mll(k, op, q, xj, yj, settings, zero_mean=True)
  f = jax.jit(jax.value_and_grad(evaluate, has_aux=True))
  jax.block_until_ready(f(p, jax.random.key(10_000 + seed)))  # compile
  mll_err, ld_err, grad_err, iters, secs = [], [], [], [], []
  for draw in range(1 if run == "cholesky" else draws):  # Cholesky: one draw, deterministic
    key = jax.random.fold_in(jax.random.key(seed), draw)
    t0 = time.perf_counter()
    (value, info), grad = jax.block_until_ready(f(p, key))
    secs.append(time.perf_counter() - t0)
    m_err, g_err = relative_errors(value, log_gradient(grad, p), ref)
    mll_err.append(m_err)
    ld_err.append(abs(float(info.logdet) - ref["logdet"]) / abs(ref["logdet"]))
    grad_err.append(g_err)
    iters.append(int(info.num_iters))
  return {"dataset": case.dataset, "n": case.n, "kernel": case.kernel, "noise": case.noise,
          "seed": seed, "mll": ref["mll"], "logdet": ref["logdet"],
          "cancellation": ref.get("cancellation"),
          "mll_err": mll_err, "logdet_err": ld_err, "grad_err": grad_err,
          "mll_err_mean": float(np.mean(mll_err)), "mll_err_max": float(np.max(mll_err)),
          "logdet_err_mean": float(np.mean(ld_err)),
          "grad_err_mean": float(np.mean(grad_err)), "grad_err_max": float(np.max(grad_err)),
          "cg_iters": iters, "seconds": float(np.median(secs)), **extra}

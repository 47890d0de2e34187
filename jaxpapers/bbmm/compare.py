"""BBMM beside GPyTorch: the same exact-GP MLL + gradient, scored and timed in one run.

Every configuration evaluates ``log p(y)`` and its gradient with respect to the log
hyperparameters (ARD lengthscales, output scale, σ²) of one accuracy-suite case
(:class:`~jaxpapers.bbmm.accuracy.Case`) and is scored against the float64 Cholesky reference
(:func:`~jaxpapers.bbmm.accuracy.reference`):

* ``ours-bbmm``: float32 BBMM at :class:`~jaxpapers.bbmm.likelihood.Settings` defaults;
* ``ours-cholesky32``: float32 dense Cholesky in JAX (exact gradient from ``K̂⁻¹``, formed once);
* ``ours-auto``: what :func:`~jaxpapers.bbmm.likelihood.mll` runs by default: the method and
  probe count :func:`~jaxpapers.bbmm.likelihood.choose_method` picks for the case (measured
  afresh, in the same process and on the same core as the others) at the 0.5 % MLL / 1 %
  gradient targets;
* ``gpytorch-defaults``: GPyTorch's ``ExactMarginalLogLikelihood`` at its own defaults;
* ``gpytorch-tight``: GPyTorch with the knobs its users turn for accuracy (CG tolerance 0.01,
  preconditioner rank 100, 30 probes, 50 Lanczos steps);
* ``gpytorch-our-settings``: GPyTorch at our numerical settings (rank-1000 preconditioner,
  30 probes, our CG tolerance and Lanczos floor);
* ``gpytorch-cholesky32`` / ``gpytorch-cholesky64``: GPyTorch's Cholesky
  (``max_cholesky_size`` above ``n``) in float32 / float64 — exact.

Each stochastic configuration is scored over ``draws`` probe draws: the MLL's relative error
per draw, and the single-draw gradient's norm-wise relative error ``‖g − g*‖ / ‖g*‖`` (what one
training step sees). Calls are *interleaved* (draw 1 of every configuration, then draw 2, …) so
a load change on the machine hits every configuration alike, and each call records wall time and
process CPU time. :func:`equal_accuracy_speedups` then names, for our BBMM, the fastest other
configuration whose MLL error *and* gradient error are both no worse, and the speed ratio to it.

GPyTorch and torch are optional (the ``[compare]`` extra); :func:`gpytorch_step` raises a clear
error when they are absent.
"""

from __future__ import annotations

import contextlib
import time
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers.bbmm import accuracy, likelihood
from jaxpapers.bbmm import operators as ops

GPYTORCH_TIGHT = {"cg_tolerance": 0.01, "max_preconditioner_size": 100, "num_trace_samples": 30,
                  "max_lanczos_quadrature_iterations": 50}

CONFIGS = ("ours-bbmm", "ours-cholesky32", "ours-auto", "gpytorch-defaults", "gpytorch-tight",
           "gpytorch-our-settings", "gpytorch-cholesky32", "gpytorch-cholesky64")
# GPyTorch at our settings runs its rank-1000 pivoted Cholesky as a Python loop (22 s per call at
# n = 1,000 on one core): a setting nobody uses, so it runs only when asked for.
DEFAULT_CONFIGS = tuple(c for c in CONFIGS if c != "gpytorch-our-settings")
EXACT_CONFIGS = ("ours-cholesky32", "gpytorch-cholesky32", "gpytorch-cholesky64")
# ours-auto is exact where it chose Cholesky; :func:`run` caps its draws then.
# Errors at or below this count as exact: a float32 Cholesky's own relative MLL error is 1e-6 to
# 1e-5 at n = 1,000, and more at larger n, so smaller differences are rounding, not accuracy.
EXACT_FLOOR = 1e-4


def our_settings_for_gpytorch(settings: likelihood.Settings = likelihood.Settings()) -> dict:
  """Our numerical settings in GPyTorch's names (``gpytorch.settings.<name>(value)``)."""
  return {"cg_tolerance": settings.cg_tol, "num_trace_samples": settings.num_probes,
          "max_lanczos_quadrature_iterations": settings.min_lanczos,
          "max_preconditioner_size": settings.precond_rank,
          "min_preconditioning_size": settings.min_precond_size,
          "max_cg_iterations": settings.max_cg_iters}


def require_gpytorch():
  """``(gpytorch, torch)``, or an ImportError that says how to install them."""
  try:
    import gpytorch
    import torch
  except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("the GPyTorch comparison needs torch and gpytorch: pip install "
                      "'jaxpapers[compare]' (a CPU torch wheel is enough)") from e
  return gpytorch, torch


def gpytorch_step(case: accuracy.Case, x: np.ndarray, y: np.ndarray, ls: np.ndarray, *,
                  settings: dict | None = None, cholesky: bool = False,
                  dtype: str = "float32") -> Callable[[int], tuple[float, np.ndarray]]:
  """A GPyTorch MLL + backward pass on ``case``'s model: ``step(seed) -> (log p(y), grad)``.

  The model is ``ScaleKernel(RBF or Matérn-5/2, ARD)`` with a Gaussian likelihood and zero mean,
  every positive parameter constrained through ``exp`` so its raw parameter *is* its log: the
  returned gradient is w.r.t. (log ℓ_1 … log ℓ_d, log s, log σ²), the reference's order.

  Args:
    case, x, y, ls: the case, its float64 data and ARD lengthscales (``accuracy.case_data``).
    settings: ``gpytorch.settings`` values by name (e.g. :data:`GPYTORCH_TIGHT`); ``None``
      keeps GPyTorch's defaults.
    cholesky: force GPyTorch's Cholesky (``max_cholesky_size`` above ``n``).
    dtype: ``"float32"`` or ``"float64"``.
  """
  gpytorch, torch = require_gpytorch()
  if dtype not in ("float32", "float64"):
    raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
  if case.kernel not in accuracy.KERNELS:
    raise ValueError(f"case.kernel must be one of {accuracy.KERNELS}, got {case.kernel!r}")
  n, d = x.shape
  values = dict(settings or {})
  if cholesky:
    values["max_cholesky_size"] = n + 1
  unknown = [k for k in values if not hasattr(gpytorch.settings, k)]
  if unknown:
    raise ValueError(f"settings names unknown to gpytorch.settings: {unknown}")
  tdtype = getattr(torch, dtype)
  tx = torch.tensor(x, dtype=tdtype)
  ty = torch.tensor(y, dtype=tdtype)

  def positive():
    return gpytorch.constraints.Positive(transform=torch.exp, inv_transform=torch.log)

  if case.kernel == "rbf":
    base = gpytorch.kernels.RBFKernel(ard_num_dims=d, lengthscale_constraint=positive())
  else:
    base = gpytorch.kernels.MaternKernel(nu=2.5, ard_num_dims=d, lengthscale_constraint=positive())
  covar = gpytorch.kernels.ScaleKernel(base, outputscale_constraint=positive())
  lik = gpytorch.likelihoods.GaussianLikelihood(noise_constraint=positive())

  class Model(gpytorch.models.ExactGP):
    def __init__(self):
      super().__init__(tx, ty, lik)
      self.mean_module = gpytorch.means.ZeroMean()
      self.covar_module = covar

    def forward(self, inp):
      return gpytorch.distributions.MultivariateNormal(self.mean_module(inp),
                                                       self.covar_module(inp))

  model = Model().to(tdtype)
  base.lengthscale = torch.tensor(ls, dtype=tdtype)[None]
  covar.outputscale = torch.tensor(1.0, dtype=tdtype)
  lik.noise = torch.tensor([case.noise], dtype=tdtype)
  model.train()
  mll = gpytorch.mlls.ExactMarginalLogLikelihood(lik, model)

  def step(seed: int = 0):
    torch.manual_seed(seed)
    model.zero_grad()
    with contextlib.ExitStack() as stack:
      for name, value in values.items():
        stack.enter_context(getattr(gpytorch.settings, name)(value))
      out = mll(model(tx), ty) * n
      out.backward()
    grad = np.concatenate([base.raw_lengthscale.grad.detach().double().numpy().ravel(),
                           covar.raw_outputscale.grad.detach().double().numpy().ravel(),
                           lik.noise_covar.raw_noise.grad.detach().double().numpy().ravel()])
    return float(out.detach()), grad

  return step


def jax_step(case: accuracy.Case, x: np.ndarray, y: np.ndarray, ls: np.ndarray, *,
             method: str = "bbmm", settings: likelihood.Settings = likelihood.Settings()
             ) -> Callable[[int], tuple[float, np.ndarray]]:
  """Our float32 MLL + gradient on ``case``: ``step(seed) -> (log p(y), grad)`` (log params).

  ``method`` is ``"bbmm"`` (at ``settings``, forced even where ``auto`` would pick Cholesky; the
  probe key is ``jax.random.key(seed)``), ``"cholesky"``, ``"cholesky_hutchinson"`` (exact value,
  probed gradient, at ``settings.num_probes``), or ``"auto"``: the choice of
  :func:`~jaxpapers.bbmm.likelihood.choose_method` (made here, once, not cached; the function's
  ``choice`` attribute holds it), then that method at the chosen probe count. The returned
  function is compiled by its first call.
  """
  p = accuracy.case_params(case, ls, jnp.float32)
  xj, yj = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
  choice = None
  if method == "auto":
    likelihood.check_settings(settings)
    choice = likelihood.choose_method(jax.random.key(20_000), ops.ExactOperator(
        case.kernel, materialize=True), p, xj, yj, settings, zero_mean=True, cache=False)
    method, settings = choice.method, choice.settings_for(settings)
  if method == "bbmm":
    likelihood.check_settings(settings)
    op = ops.ExactOperator(case.kernel, materialize=True)
    f = jax.jit(jax.value_and_grad(
        lambda q, k: likelihood.bbmm_mll(k, op, q, xj, yj, settings, zero_mean=True)[0]))
  elif method == "cholesky":
    op = ops.ExactOperator(case.kernel)
    g = jax.jit(jax.value_and_grad(
        lambda q: likelihood.cholesky_mll(op, q, xj, yj, zero_mean=True)))
    f = lambda q, k: g(q)  # noqa: E731 - the key is unused by an exact method
  elif method == "cholesky_hutchinson":
    op = ops.ExactOperator(case.kernel, materialize=True)
    f = jax.jit(jax.value_and_grad(lambda q, k: likelihood.cholesky_hutchinson_mll(
        k, op, q, xj, yj, settings, zero_mean=True)))
  else:
    raise ValueError(f"method must be 'bbmm', 'cholesky', 'cholesky_hutchinson' or 'auto', "
                     f"got {method!r}")

  def step(seed: int = 0):
    value, grad = jax.block_until_ready(f(p, jax.random.key(seed)))
    return float(value), accuracy.log_gradient(grad, p)

  step.choice = choice
  return step


class Scores(NamedTuple):
  """One configuration's per-draw errors and times (lists of ``draws`` floats)."""

  mll_err: list
  grad_err: list
  wall: list
  cpu: list


def _check_count(value, name):
  if isinstance(value, bool) or not isinstance(value, int) or value < 1:
    raise ValueError(f"{name} must be a positive int, got {value!r}")


def interleaved(steps: dict[str, Callable[[int], tuple[float, np.ndarray]]], ref: dict,
                draws: int, exact_draws: dict[str, int] | None = None) -> dict[str, Scores]:
  """Score and time every step function over ``draws`` seeds, interleaved.

  Each function is called once first (compilation, caches), then draw ``i`` of every function
  runs before draw ``i + 1`` of any. ``exact_draws[name]`` caps the draws of a deterministic
  function (its error is the same every draw; the draws only time it). A non-finite value or
  gradient scores an infinite error, never a finite one.
  """
  _check_count(draws, "draws")
  caps = dict(exact_draws or {})
  for name, cap in caps.items():
    _check_count(cap, f"exact_draws[{name!r}]")
  for fn in steps.values():
    fn(10_000)
  out = {name: Scores([], [], [], []) for name in steps}
  for i in range(draws):
    for name, fn in steps.items():
      if i >= caps.get(name, draws):
        continue
      t0, c0 = time.perf_counter(), time.process_time()
      value, grad = fn(i)
      wall, cpu = time.perf_counter() - t0, time.process_time() - c0
      s = out[name]
      finite = np.isfinite(value) and bool(np.all(np.isfinite(grad)))
      mll_err, grad_err = (accuracy.relative_errors(value, grad, ref) if finite
                           else (float("inf"), float("inf")))
      s.mll_err.append(mll_err)
      s.grad_err.append(grad_err)
      s.wall.append(wall)
      s.cpu.append(cpu)
  return out


def summarise(scores: dict[str, Scores]) -> dict[str, dict]:
  """Per configuration: mean / max MLL and gradient errors, median wall and CPU seconds."""
  return {name: {"mll_err_mean": float(np.mean(s.mll_err)), "mll_err_max": float(np.max(s.mll_err)),
                 "grad_err_mean": float(np.mean(s.grad_err)),
                 "grad_err_max": float(np.max(s.grad_err)),
                 "wall_s": float(np.median(s.wall)), "cpu_s": float(np.median(s.cpu)),
                 "draws": len(s.wall)}
          for name, s in scores.items()}


def equal_accuracy_speedups(summary: dict[str, dict], ours: str = "ours-bbmm",
                            exclude_prefix: str = "ours-", floor: float = EXACT_FLOOR) -> dict:
  """The fastest configuration (by CPU time) at least as accurate as ``ours``, and the ratio.

  "At least as accurate" means a mean MLL error *and* a mean gradient error each no larger than
  ``max(ours's, floor)`` (below ``floor`` two errors are both float32 rounding). Configurations
  whose name starts with ``exclude_prefix`` (our own) are not competitors. Returns ``{"rival": name or None, "cpu_ratio", "wall_ratio"}`` (rival's seconds
  over ours; NaN without a rival) and ``"qualifying"``: every competitor that qualified.
  """
  if ours not in summary:
    raise ValueError(f"ours={ours!r} is not among the configurations {sorted(summary)}")
  mine = summary[ours]
  ok = [name for name, r in summary.items()
        if not name.startswith(exclude_prefix)
        and r["mll_err_mean"] <= max(mine["mll_err_mean"], floor)
        and r["grad_err_mean"] <= max(mine["grad_err_mean"], floor)]
  if not ok:
    return {"rival": None, "cpu_ratio": float("nan"), "wall_ratio": float("nan"),
            "qualifying": []}
  rival = min(ok, key=lambda name: summary[name]["cpu_s"])
  return {"rival": rival, "cpu_ratio": summary[rival]["cpu_s"] / mine["cpu_s"],
          "wall_ratio": summary[rival]["wall_s"] / mine["wall_s"], "qualifying": sorted(ok)}


def format_table(results: list[dict]) -> str:
  """Markdown table of :func:`run`'s results (one block of rows per case)."""
  lines = ["| case | configuration | CPU s | wall s | MLL err mean / max | grad err mean / max |",
           "|---|---|---|---|---|---|"]
  for res in results:
    c = res["case"]
    label = f"{c['dataset']} n={c['n']} {c['kernel']} σ²={c['noise']:g}"
    for name, r in res["summary"].items():
      lines.append(f"| {label} | {name} | {r['cpu_s']:.3f} | {r['wall_s']:.3f} | "
                   f"{100 * r['mll_err_mean']:.3g} / {100 * r['mll_err_max']:.3g} % | "
                   f"{100 * r['grad_err_mean']:.3g} / {100 * r['grad_err_max']:.3g} % |")
  return "\n".join(lines)


def run(case: accuracy.Case, *, seed: int = 0, draws: int = 8, exact_draws: int = 3,
        configs: tuple[str, ...] = DEFAULT_CONFIGS,
        settings: likelihood.Settings = likelihood.Settings()) -> dict:
  """Every configuration of ``configs`` on ``case``: ``draws`` interleaved draws each, and
  ``exact_draws`` (timing only) for the deterministic Cholesky configurations.

  Returns a JSON-able dict: the case, the reference MLL, per-configuration summaries
  (:func:`summarise`) and per-draw scores, and :func:`equal_accuracy_speedups` for ours.
  """
  unknown = [c for c in configs if c not in CONFIGS]
  if unknown:
    raise ValueError(f"configs must be among {CONFIGS}, got unknown {unknown}")
  x, y, ls = accuracy.case_data(case, seed)
  ref = accuracy.reference(case, x, y, ls)
  makers = {
      "ours-bbmm": lambda: jax_step(case, x, y, ls, method="bbmm", settings=settings),
      "ours-cholesky32": lambda: jax_step(case, x, y, ls, method="cholesky"),
      "ours-auto": lambda: jax_step(case, x, y, ls, method="auto", settings=settings),
      "gpytorch-defaults": lambda: gpytorch_step(case, x, y, ls),
      "gpytorch-tight": lambda: gpytorch_step(case, x, y, ls, settings=GPYTORCH_TIGHT),
      "gpytorch-our-settings": lambda: gpytorch_step(
          case, x, y, ls, settings=our_settings_for_gpytorch(settings)),
      "gpytorch-cholesky32": lambda: gpytorch_step(case, x, y, ls, cholesky=True),
      "gpytorch-cholesky64": lambda: gpytorch_step(case, x, y, ls, cholesky=True,
                                                   dtype="float64"),
  }
  _check_count(exact_draws, "exact_draws")
  steps = {c: makers[c]() for c in configs}
  choice = steps["ours-auto"].choice if "ours-auto" in steps else None
  exact = [c for c in configs if c in EXACT_CONFIGS
           or (c == "ours-auto" and choice.method == "cholesky")]
  scores = interleaved(steps, ref, draws, {c: min(exact_draws, draws) for c in exact})
  summary = summarise(scores)
  out = {"case": case._asdict(), "seed": seed, "draws": draws, "exact_draws": exact_draws,
         "mll": ref["mll"], "logdet": ref["logdet"],
         "summary": summary, "scores": {k: v._asdict() for k, v in scores.items()}}
  if "ours-bbmm" in summary:
    out["equal_accuracy"] = equal_accuracy_speedups(summary)
  if choice is not None:
    out["auto_choice"] = {k: (v if isinstance(v, (str, int)) else float(v))
                          for k, v in choice._asdict().items()}
    out["equal_accuracy_auto"] = equal_accuracy_speedups(summary, ours="ours-auto")
  return out

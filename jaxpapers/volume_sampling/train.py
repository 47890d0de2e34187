"""Loss ratio ``L(w_S)/L*`` versus sample size ``k`` for the four samplers (the paper's Figure 2).

Reference: Dereziński, Warmuth, Hsu. "Leveraged volume sampling for linear regression". NeurIPS 2018.
"""

from __future__ import annotations

import functools
import json
import math
import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from jaxpapers._src import metrics as metrics_lib
from jaxpapers._src import prng, validation
from jaxpapers._src import workdir as workdir_lib
from jaxpapers._src.data import DatasetNotFoundError
from jaxpapers.volume_sampling import data as data_lib
from jaxpapers.volume_sampling import estimators, exact, samplers

_METHOD_FNS = {
    "volume": samplers.dpp_volume_sample,
    "leveraged_volume": samplers.leveraged_volume_sample,
    "leverage": samplers.leverage_sample,
    "uniform": samplers.uniform_sample,
}


@functools.partial(jax.jit, static_argnames=("k", "method", "num_draws"))
def _ratios(key, X, y, opt_loss, *, k, method, num_draws):
  sampler = _METHOD_FNS[method]

  def one(key):
    smp = sampler(key, X, k)
    w = estimators.least_squares_estimate(X, y, smp.indices, smp.weights)
    return estimators.square_loss(X, y, w) / opt_loss

  return jax.vmap(one)(jax.random.split(key, num_draws))


def sample_loss_ratios(key: jax.Array, X: jax.Array, y: jax.Array, k: int, method: str,
                       num_draws: int) -> jax.Array:
  """``num_draws`` independent loss ratios ``L(w_S)/L*`` of ``method`` at sample size ``k``.

  Args:
    key: typed PRNG key.
    X: ``(n, d)`` design of full column rank.
    y: ``(n,)`` responses.
    k: sample size (static).
    method: ``volume`` (exact volume sampling by :func:`samplers.dpp_volume_sample`,
      estimator ``X_S^+ y_S``),
      ``leveraged_volume`` (weights ``1/q``), ``leverage`` (i.i.d., weights ``1/(k q)``) or
      ``uniform`` (without replacement, plain least squares).
    num_draws: number of independent samples (vmapped).

  Returns:
    ``(num_draws,)`` loss ratios (``>= 1``).
  """
  validation.check_in(method, "method", tuple(_METHOD_FNS))
  if not isinstance(num_draws, int) or num_draws < 1:
    raise ValueError(f"num_draws must be a positive int, got {num_draws!r}")
  samplers._check_key(key)
  n, d = samplers._check_design(X)
  samplers._check_k(k, n, d, replacement=method in ("leveraged_volume", "leverage"))
  opt = estimators.optimal_loss(X, y)
  tiny = 1e3 * float(jnp.finfo(X.dtype).eps) * float(jnp.sum(y * y))
  if not float(opt) > tiny:
    raise ValueError("y is fitted exactly by X (L* = 0 up to rounding): loss ratios are undefined")
  return _ratios(key, X, y, opt, k=k, method=method, num_draws=num_draws)


def summarize(ratios) -> dict:
  """Mean, standard error, median, quartiles and the number of draws of a set of loss ratios."""
  r = np.asarray(ratios, dtype=np.float64)
  return {"mean": float(r.mean()), "se": float(r.std(ddof=1) / math.sqrt(r.size)),
          "median": float(np.median(r)), "q25": float(np.quantile(r, 0.25)),
          "q75": float(np.quantile(r, 0.75)), "draws": int(r.size)}


def loss_ratio_curves(key: jax.Array, X, y, ks, methods, num_draws: int) -> dict:
  """``{method: {k: summarize(sample_loss_ratios(...))}}`` over ``ks`` (rows-without-replacement
  methods skip ``k > n``)."""
  X = jnp.asarray(X)
  y = jnp.asarray(y)
  out = {}
  for mi, method in enumerate(methods):
    out[method] = {}
    for ki, k in enumerate(ks):
      if method in ("volume", "uniform") and k > X.shape[0]:
        continue
      r = sample_loss_ratios(jax.random.fold_in(key, 1000 * mi + ki), X, y, int(k), method,
                             num_draws)
      out[method][int(k)] = summarize(r)
  return out


def _plot(results: dict, path: str):
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  panels = list(results["datasets"].items()) + [("lower bound", results["lower_bound"])]
  fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.4), squeeze=False)
  for ax, (name, res) in zip(axes[0], panels):
    for method, curve in res["curves"].items():
      ks = np.array(sorted(curve))
      mean = np.array([curve[k]["mean"] for k in ks])
      se = np.array([curve[k]["se"] for k in ks])
      med = np.array([curve[k]["median"] for k in ks])
      line = ax.errorbar(ks, mean, yerr=2 * se, marker="o", ms=3, capsize=2, label=method)
      ax.plot(ks, med, ls=":", color=line[0].get_color())
    if "formula" in res:
      ks = np.array(sorted(res["formula"]))
      ax.plot(ks, [res["formula"][k] for k in ks], "k--", label="1+(n-k)/(n-d)")
      ax.plot(ks, [res["exact_at_eps"][k] for k in ks], "k:", label="exact VS at eps")
      ax.legend(fontsize=7)
    ax.set_yscale("log")
    ax.set_xlabel("k")
    ax.set_title(f"{name} (n={res['n']}, d={res['d']})")
  axes[0][0].set_ylabel("L(w_S)/L*  (mean ± 2 SE; dotted: median)")
  axes[0][0].legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Runs the loss-ratio experiment of ``config`` and writes metrics, results and a plot.

  For each data set (intercept + standardised columns) and each ``k = round(f d)``, draws
  ``config.num_draws`` samples per method and records the mean/median loss ratio with error bars;
  then does the same on the lower-bound instance next to ``1 + (n - k)/(n - d)``.

  Args:
    config: from :func:`jaxpapers.volume_sampling.config.get_config`.
    workdir: output folder (``metrics.jsonl``, ``results.json``, ``loss_ratio.png``).

  Returns:
    ``{"datasets": {name: {"n", "d", "curves"}}, "lower_bound": {...}, "seconds": ...}``.
  """
  workdir_lib.prepare(workdir)  # a clear error naming the path before any work
  for m in config.methods:
    validation.check_in(m, "config.methods", tuple(_METHOD_FNS))
  start = time.perf_counter()
  key = prng.as_key(config.seed)
  results = {"datasets": {}, "scale": config.scale}
  step = 0
  with jax.enable_x64(bool(config.x64)), metrics_lib.MetricsWriter(
      os.path.join(workdir, "metrics.jsonl")) as writer:
    for di, name in enumerate(config.datasets):
      try:
        X, y = data_lib.load_dataset(name, config.data_dir or None)
      except DatasetNotFoundError as e:  # keep going with what is available, and say so
        logging.warning("skipping %s: %s", name, e)
        results.setdefault("missing_datasets", []).append(name)
        continue
      X = data_lib.prepare_design(X, intercept=config.intercept, standardize=config.standardize)
      n, d = X.shape
      ks = sorted({max(d, int(round(f * d))) for f in config.k_over_d})
      t0 = time.perf_counter()
      curves = loss_ratio_curves(jax.random.fold_in(key, di), X, y, ks, config.methods,
                                 config.num_draws)
      logging.info("%s: n=%d d=%d ks=%s in %.1f s", name, n, d, ks, time.perf_counter() - t0)
      results["datasets"][name] = {"n": n, "d": d, "curves": curves}
      for method, curve in curves.items():
        for k, summ in curve.items():
          writer.write(step, dataset=name, method=method, k=k, **summ)
          step += 1
    lb = config.lower_bound
    for m in lb.methods:
      validation.check_in(m, "config.lower_bound.methods", tuple(_METHOD_FNS))
    X, y = data_lib.lower_bound_instance(lb.n, lb.d, lb.eps)
    ks = sorted(int(k) for k in lb.ks)
    curves = loss_ratio_curves(jax.random.fold_in(key, 999), X, y, ks, lb.methods,
                               config.num_draws)
    formula = {k: exact.lower_bound_ratio(lb.n, lb.d, k) for k in ks}
    at_eps = {k: exact.lower_bound_expected_ratio(lb.n, lb.d, k, lb.eps) for k in ks}
    results["lower_bound"] = {"n": lb.n, "d": lb.d, "eps": lb.eps, "curves": curves,
                              "formula": formula, "exact_at_eps": at_eps}
    for method, curve in curves.items():
      for k, summ in curve.items():
        writer.write(step, dataset="lower_bound", method=method, k=k, formula=formula[k],
                     exact_at_eps=at_eps[k], **summ)
        step += 1
  results["seconds"] = time.perf_counter() - start
  with open(os.path.join(workdir, "results.json"), "w", encoding="utf-8") as f:
    json.dump(results, f, indent=1)
  if config.plot:
    _plot(results, os.path.join(workdir, "loss_ratio.png"))
  return results

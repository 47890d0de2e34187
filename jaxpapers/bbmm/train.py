"""Training exact and approximate GPs with BBMM, and the experiment driver.

Gardner et al., "GPyTorch: Blackbox Matrix-Matrix Gaussian Process Inference with GPU
Acceleration", NeurIPS 2018, §6: hyperparameters are fit by Adam on the (stochastic) marginal log
likelihood; positive hyperparameters are optimised through a softplus, the noise above a floor of
1e-4 (GPyTorch's ``GaussianLikelihood`` constraint).
"""

from __future__ import annotations

import functools
import json
import os
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxpapers._src import loop, metrics, prng, validation
from jaxpapers._src import workdir as workdir_lib
from jaxpapers.bbmm import config as config_lib
from jaxpapers.bbmm import data as data_lib
from jaxpapers.bbmm import kernels
from jaxpapers.bbmm import likelihood as mll_lib
from jaxpapers.bbmm import operators as ops
from jaxpapers.bbmm import predict as predict_lib


def _inv_softplus(v):
  return v + jnp.log(-jnp.expm1(-v))


def to_unconstrained(params: ops.GPParams, noise_floor: float = 1e-4) -> ops.GPParams:
  """Maps positive hyperparameters to the softplus-unconstrained space used by the optimiser."""
  return ops.GPParams(jax.tree.map(_inv_softplus, params.kernel),
                      _inv_softplus(params.noise - noise_floor), params.mean, params.inducing)


def from_unconstrained(raw: ops.GPParams, noise_floor: float = 1e-4) -> ops.GPParams:
  """Inverse of :func:`to_unconstrained`."""
  return ops.GPParams(jax.tree.map(jax.nn.softplus, raw.kernel),
                      noise_floor + jax.nn.softplus(raw.noise), raw.mean, raw.inducing)


class TrainState(NamedTuple):
  """Optimiser state of :func:`fit`: unconstrained parameters, Adam state, base key."""

  raw: ops.GPParams
  opt_state: Any
  key: jax.Array


_METHODS = mll_lib.METHODS


def _check_static(settings, num_steps, learning_rate, noise_floor, method):
  """Validates the static (Python) arguments shared by :func:`fit` and :func:`make_fit`."""
  mll_lib.check_settings(settings)
  if isinstance(num_steps, bool) or not isinstance(num_steps, (int, np.integer)):
    raise TypeError(f"num_steps must be an int, got {num_steps!r}")
  if num_steps < 0:
    raise ValueError(f"num_steps must be >= 0, got {num_steps}")
  validation.check_positive(learning_rate, "learning_rate")
  if not np.isfinite(learning_rate):
    raise ValueError(f"learning_rate must be finite, got {learning_rate}")
  validation.check_positive(noise_floor, "noise_floor", allow_zero=True)
  validation.check_in(method, "method", _METHODS)


def _check_operator(operator):
  """Operators whose parameters the softplus parameterisation cannot hold opt out of ``fit``."""
  if not getattr(operator, "supports_fit", True):
    raise ValueError(
        f"operator: {type(operator).__name__} has parameters without a sign constraint (fit "
        "optimises every kernel parameter through a softplus); optimise its likelihood "
        "(bbmm_mll / cholesky_mll) with your own optax loop")


def _check_data(operator, params, x, y, noise_floor=None):
  """Shape / rank / structure checks (values only where concrete, so it traces and vmaps)."""
  mll_lib.check_inputs(operator, params, x, y)
  if noise_floor is not None and validation.is_concrete(params.noise):
    noise = np.asarray(params.noise, np.float64)
    if noise.size and not np.all(noise > noise_floor):
      # fit optimises softplus⁻¹(noise − noise_floor): a noise at or below the floor would start
      # (and, for fixed per-point noise, stay) at NaN.
      raise ValueError(f"params.noise must exceed noise_floor={noise_floor:g} everywhere (fit "
                       f"optimises noise − noise_floor through a softplus), got min "
                       f"{float(noise.min()):g}; lower noise_floor (e.g. 0 for fixed noise)")


def _make_step(operator, settings, opt, method, zero_mean, noise_floor):
  """The one Adam step of :func:`fit` and :func:`make_fit`: ``step(state, i, x, y)``.

  Pure (no host callbacks), so it runs inside ``lax.scan``, ``jit`` and ``vmap``. Step ``i`` uses
  ``fold_in(state.key, i)`` for its probes.
  """

  def loss_fn(raw, k, x, y):
    p = from_unconstrained(raw, noise_floor)
    value, info = mll_lib.mll(k, operator, p, x, y, settings, method=method, zero_mean=zero_mean)
    return -value / y.shape[0], info

  def step_fn(st, step, x, y):
    k = prng.step_key(st.key, step)
    (loss, info), g = jax.value_and_grad(loss_fn, has_aux=True)(st.raw, k, x, y)
    if zero_mean:
      g = g._replace(mean=jnp.zeros_like(g.mean))
    updates, opt_state = opt.update(g, st.opt_state, st.raw)
    raw = optax.apply_updates(st.raw, updates)
    # under jit method="auto" is the size rule (nothing can be timed there)
    probed = method in ("bbmm", "cholesky_hutchinson") or (
        method == "auto" and y.shape[0] > settings.cholesky_size)
    m = {"loss": loss, "noise": from_unconstrained(raw, noise_floor).noise,
         "converged": info.converged, "num_iters": info.num_iters,
         "max_rel_residual": info.max_rel_residual,
         "num_probes": jnp.asarray(settings.num_probes if probed else 0, jnp.int32)}
    return TrainState(raw, opt_state, st.key), m

  return step_fn


def make_fit(operator, *, num_steps: int, settings: mll_lib.Settings = mll_lib.Settings(),
             learning_rate: float = 0.1, method: str = "auto", zero_mean: bool = False,
             noise_floor: float = 1e-4):
  """A pure, jittable, vmappable trainer: ``fit_fn(key, params, x, y) -> (params, history)``.

  The whole Adam loop of :func:`fit` (the same step function, so the two cannot drift) is one
  ``lax.scan``: no host callbacks, progress bars or convergence warnings, so
  ``jax.vmap(fit_fn)`` trains many GPs in one call, over data sets, keys or initial
  hyperparameters (``jax.vmap(fit_fn, in_axes=(None, 0, None, None))``). Static arguments are
  validated here; ``fit_fn`` checks shapes and ranks (and values only when called eagerly on
  concrete arrays). ``method="auto"`` picks Cholesky by the static ``n`` (``n ≤
  settings.cholesky_size``; nothing is timed under ``jit``), so it is the same for
  every member of a batch. Inspect ``history["converged"]`` yourself (or use
  :func:`~jaxpapers.bbmm.likelihood.report_convergence`): nothing is reported from inside.

  Args:
    operator: exact / SGPR / SKI operator.
    num_steps: Adam steps (the scan length).
    settings, learning_rate, method, zero_mean, noise_floor: as in :func:`fit`.

  Returns:
    ``fit_fn(key, params, x, y) -> (params, history)``: ``key`` a PRNG key (step ``s`` uses
    ``fold_in(key, s)``), ``params`` the initial :class:`~jaxpapers.bbmm.operators.GPParams`,
    ``x`` ``(n, d)``, ``y`` ``(n,)``; history holds per-step ``loss`` (−MLL/n), ``noise``,
    ``converged``, ``num_iters``, ``max_rel_residual`` and ``num_probes`` (0 where Cholesky ran)
    as ``(num_steps,)`` arrays. Given the
    same key, it returns what :func:`fit` returns (up to floating-point reassociation).
  """
  _check_static(settings, num_steps, learning_rate, noise_floor, method)
  _check_operator(operator)
  num_steps = int(num_steps)
  opt = optax.adam(learning_rate)
  step_fn = _make_step(operator, settings, opt, method, zero_mean, noise_floor)

  def fit_fn(key, params, x, y):
    _check_data(operator, params, x, y, noise_floor)
    raw0 = to_unconstrained(params, noise_floor)
    state = TrainState(raw0, opt.init(raw0), prng.as_key(key))
    steps = jnp.arange(num_steps, dtype=jnp.int32)
    state, hist = jax.lax.scan(lambda s, i: step_fn(s, i, x, y), state, steps)
    return from_unconstrained(state.raw, noise_floor), hist

  return fit_fn


def fit(key: jax.Array, operator, params: ops.GPParams, x, y, *, num_steps: int,
        settings: mll_lib.Settings = mll_lib.Settings(), learning_rate: float = 0.1,
        method: str = "auto", zero_mean: bool = False, noise_floor: float = 1e-4,
        chunk_size: int = 25, progress: bool = False, on_chunk=None,
        probe_rel_tol: float | None = None, max_probes: int = 1024
        ) -> tuple[ops.GPParams, dict]:
  """Fits GP hyperparameters with Adam on ``−log p(y) / n``.

  The host-side driver (chunks, progress, callbacks, one convergence warning) around the same
  step as :func:`make_fit`, whose ``fit_fn`` is the pure version for ``jit`` / ``vmap``.

  Args:
    key: PRNG key; step ``s`` uses ``fold_in(key, s)`` for its probes.
    operator: exact / SGPR / SKI operator.
    params: initial hyperparameters.
    x: ``(n, d)`` inputs; y: ``(n,)`` targets.
    num_steps: Adam steps.
    settings: BBMM settings.
    learning_rate: Adam step size (GPyTorch examples: 0.1).
    method: ``"auto"`` (resolved once, before training, by
      :func:`~jaxpapers.bbmm.likelihood.choose_method`: Cholesky for ``n ≤
      settings.cholesky_size``, above it the fastest method measured on this data at the probe
      count that meets ``settings.mll_rel_tol`` / ``grad_rel_tol`` at the initial
      hyperparameters, ``settings.adaptive_probes``), ``"bbmm"``, ``"cholesky"``,
      ``"cholesky_hutchinson"`` (exact value, probed gradient).
    zero_mean: fix the mean at 0.
    noise_floor: lower bound of the noise variance.
    chunk_size: steps per jitted ``lax.scan`` chunk.
    progress: show a progress bar.
    on_chunk: callback ``(state, step, last_metrics)`` after each chunk.
    probe_rel_tol: adaptive probe count: before training, the gradient's relative standard
      error at the initial hyperparameters is estimated from its own probes
      (:func:`~jaxpapers.bbmm.likelihood.gradient_spread`) and ``settings.num_probes`` is raised
      to the count that brings it to ``probe_rel_tol`` (never lowered; at most ``max_probes``);
      then ``method="auto"`` times BBMM at that count. ``None``: ``settings.num_probes`` as is
      (forced ``"bbmm"``), or what ``method="auto"`` adapts it to.
    max_probes: cap of the adaptive count.

  Returns:
    ``(params, history)``; history holds per-step ``loss`` (−MLL/n), ``noise``, ``converged``,
    ``num_iters``, ``max_rel_residual`` and ``num_probes`` (the count used, per step). If any
    step did not converge (or its likelihood was
    not finite), one :class:`~jaxpapers.bbmm.likelihood.ConvergenceWarning` names the worst
    residual and iteration count; with ``settings.strict`` a
    :class:`~jaxpapers.bbmm.likelihood.ConvergenceError` is raised instead.
  """
  _check_operator(operator)
  _check_static(settings, num_steps, learning_rate, noise_floor, method)
  _check_data(operator, params, x, y, noise_floor)
  opt = optax.adam(learning_rate)
  raw0 = to_unconstrained(params, noise_floor)
  state = TrainState(raw0, opt.init(raw0), prng.as_key(key))
  if probe_rel_tol is not None:
    validation.check_positive(probe_rel_tol, "probe_rel_tol")
    if isinstance(max_probes, bool) or not isinstance(max_probes, (int, np.integer)) \
        or max_probes < settings.num_probes:
      raise ValueError(f"max_probes must be an int >= settings.num_probes "
                       f"({settings.num_probes}), got {max_probes!r}")
    if method != "cholesky":
      spread = mll_lib.gradient_spread(state.key, operator, params, x, y, settings,
                                       zero_mean=zero_mean)
      wanted = spread.probes_for(probe_rel_tol) if np.isfinite(spread.rel_std_error) else max_probes
      settings = settings._replace(num_probes=int(min(max(settings.num_probes, wanted),
                                                      max_probes)))
  if method == "auto":
    choice = mll_lib.choose_method(state.key, operator, params, x, y, settings,
                                   zero_mean=zero_mean)
    method, settings = choice.method, choice.settings_for(settings)
  step_fn = _make_step(operator, settings, opt, method, zero_mean, noise_floor)
  state, hist = loop.run_chunked(step_fn, state, num_steps, chunk_size=chunk_size,
                                 progress=progress, on_chunk=on_chunk, desc="fit", args=(x, y))
  if num_steps:
    bad = int(np.sum(~np.asarray(hist["converged"], bool)))
    nan = np.full_like(hist["max_rel_residual"], np.nan)
    info = mll_lib.MLLInfo(hist["converged"], hist["num_iters"], hist["max_rel_residual"], nan, nan)
    chol = method in ("cholesky", "cholesky_hutchinson")
    mll_lib.report_convergence(info, strict=settings.strict,
                               context=f"fit ({bad} of {num_steps} steps)", cholesky=chol)
  return from_unconstrained(state.raw, noise_floor), hist


def init_params(config, x_train: np.ndarray, kernel_spec, dtype, key=None, num_inducing: int = 0
                ) -> ops.GPParams:
  """Initial hyperparameters from ``config`` (and inducing points drawn from the training set)."""
  d = x_train.shape[1]
  kp = kernels.init_params(kernel_spec, d, config.init_lengthscale, config.init_scale, dtype)
  inducing = None
  if num_inducing:
    idx = np.asarray(jax.random.choice(key, x_train.shape[0], (num_inducing,), replace=False))
    inducing = jnp.asarray(x_train[idx], dtype)
  return ops.GPParams(kp, jnp.asarray(config.init_noise, dtype), jnp.zeros((), dtype), inducing)


def _settings(config) -> mll_lib.Settings:
  unknown = sorted(set(config.settings.keys()) - set(mll_lib.Settings._fields))
  if unknown:
    raise ValueError(f"config.settings has unknown fields {unknown}; known: "
                     f"{list(mll_lib.Settings._fields)}")
  fields = {k: config.settings[k] for k in mll_lib.Settings._fields if k in config.settings}
  return mll_lib.check_settings(mll_lib.Settings(**fields), "config.settings")


def _dataset(config, key):
  if config.dataset == "synthetic":
    x, y = data_lib.synthetic(key, config.n_synthetic, config.dim,
                              lengthscale=config.synthetic_lengthscale,
                              noise=config.synthetic_noise, dtype=jnp.float64
                              if jax.config.jax_enable_x64 else jnp.float32)
    return np.asarray(x, np.float64), np.asarray(y, np.float64)
  return data_lib.load_uci(config.dataset, config.data_dir or None)


@functools.partial(jax.jit, static_argnums=(0, 5, 6, 7, 8))
def _predict(op, params, xtr, ytr, xte, settings, love_rank, cholesky, variance):
  if cholesky:
    mean, var = predict_lib.cholesky_predict(op, params, xtr, ytr, xte)
    return mean, var, jnp.bool_(True)
  cache = predict_lib.prediction_cache(op, params, xtr, ytr, settings,
                                       love_rank=love_rank if variance == "love" else 0)
  mean = predict_lib.predictive_mean(op, cache, xte)
  if variance == "love":  # LOVE where its measured error is ≤ 1 %, else CG (see predict)
    var = predict_lib.predictive_variance(op, cache, xte, settings, tol=1e-3)
  else:
    var = predict_lib.exact_variance(op, cache, xte, settings, tol=1e-3)
  return mean, var, cache.converged


def train_and_evaluate(config, workdir: str) -> dict:
  """Trains the configured GP models on one dataset split and evaluates them on its test part.

  Models (``config.models``): ``"bbmm"`` (exact GP, BBMM likelihood), ``"cholesky"`` (exact GP,
  Cholesky likelihood and predictions), ``"sgpr"`` (Titsias SGPR through BBMM) and ``"ski"``
  (KISS-GP through BBMM; only when the input dimension is ≤ ``config.ski_max_dim``). RMSE and NLL
  are on z-scored targets; NLL adds the learned noise to the latent variance, which is computed
  by CG solves (``config.variance = "cg"``) or LOVE with rank ``config.love_rank`` (``"love"``).

  Returns:
    ``{"dataset", "n_train", "n_test", "dim", "<model>": {rmse, nll, train_time_s, noise,
    final_loss, all_converged, ...}}``; also written to ``<workdir>/results.json`` and, per step
    chunk and per model, to ``<workdir>/metrics.jsonl``.
  """
  config_lib.check_config(config)
  settings = _settings(config)
  workdir_lib.prepare(workdir)  # a clear error naming the path before any work
  key = jax.random.key(config.seed)
  k_data, k_split, k_ind, k_fit = jax.random.split(key, 4)
  x, y = _dataset(config, k_data)
  sp = data_lib.split(k_split, x, y, tuple(config.split), config.max_train or None)
  sp, _ = data_lib.normalize(sp)
  dtype = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
  xtr, ytr = jnp.asarray(sp.x_train, dtype), jnp.asarray(sp.y_train, dtype)
  xte, yte = jnp.asarray(sp.x_test, dtype), jnp.asarray(sp.y_test, dtype)
  out: dict[str, Any] = {"dataset": config.dataset, "n_train": int(xtr.shape[0]),
                         "n_test": int(xte.shape[0]), "dim": int(xtr.shape[1])}
  writer = metrics.MetricsWriter(os.path.join(workdir, "metrics.jsonl"), log=False)
  for model in config.models:
    if model == "ski" and xtr.shape[1] > config.ski_max_dim:
      out[model] = {"skipped": f"d = {xtr.shape[1]} > ski_max_dim = {config.ski_max_dim}"}
      continue
    if model in ("bbmm", "cholesky"):
      op = ops.ExactOperator(config.kernel, block_size=config.block_size,
                             materialize=config.materialize)
      num_ind = 0
    elif model == "sgpr":
      op = ops.SGPROperator(config.kernel)
      num_ind = min(config.num_inducing, xtr.shape[0])
    elif model == "ski":
      op = ops.SKIOperator(config.kernel, (config.ski_grid_size,) * xtr.shape[1])
      num_ind = 0
    else:
      raise ValueError(f"config.models: unknown model {model!r}; choose bbmm, cholesky, sgpr, ski")
    params0 = init_params(config, sp.x_train, config.kernel, dtype, k_ind, num_ind)
    method = "cholesky" if model == "cholesky" else "bbmm"

    def on_chunk(state, step, last, model=model):
      writer.write(step, model=model, **{k: np.asarray(v).item() for k, v in last.items()})

    start = time.perf_counter()
    params, hist = fit(k_fit, op, params0, xtr, ytr, num_steps=config.num_steps,
                       settings=settings, learning_rate=config.learning_rate, method=method,
                       chunk_size=config.chunk_size, on_chunk=on_chunk)
    jax.block_until_ready(params)
    train_time = time.perf_counter() - start
    mean, var, pred_conv = _predict(op, params, xtr, ytr, xte, settings, config.love_rank,
                                    model == "cholesky", config.variance)
    pred_conv = bool(pred_conv)
    rmse = float(jnp.sqrt(jnp.mean((mean - yte) ** 2)))
    nll = float(predict_lib.gaussian_nll(yte, mean, var + params.noise))
    res = {"rmse": rmse, "nll": nll, "train_time_s": train_time, "noise": float(params.noise),
           "final_loss": float(hist["loss"][-1]) if len(hist) else float("nan"),
           "all_converged": bool(np.all(hist["converged"])) and pred_conv if len(hist) else pred_conv,
           "max_cg_iters_used": int(np.max(hist["num_iters"])) if len(hist) else 0}
    out[model] = res
    writer.write(config.num_steps, model=model, **{k: v for k, v in res.items()})
  writer.close()
  with open(os.path.join(workdir, "results.json"), "w", encoding="utf-8") as f:
    json.dump(out, f, indent=1, default=float)
  return out

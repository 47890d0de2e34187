"""Training and evaluation of RETAIN-DA / RETAIN-SA / UA / UA+ (Heo et al., NeurIPS 2018).

Training minimises the binary cross-entropy of one stochastic forward pass (attention noise,
UA+'s output noise and dropout all sampled) plus the L2 term ``λ Σ ½‖θ‖²`` that stands in for the
KL divergence to the N(0, I) prior, with Adam; an epoch is one jitted ``lax.scan`` over shuffled
mini-batches. Early stopping (default) keeps the parameters of the epoch with the lowest
validation loss (mean-noise, dropout-off forward pass). Evaluation uses S = 30 MC samples (dropout
kept on by default, as in the paper's model) and reports AUROC, ECE (10 bins), the reliability
diagram and the abstention curve. ``config.protocol = "reference"`` (see
:func:`jaxpapers.ua_attention.config.get_config`) follows the reference implementation instead:
LSTM cells, a fixed number of epochs without early stopping, dropout off at evaluation.
"""

from __future__ import annotations

import functools
import os
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import tqdm

from jaxpapers._src import validation
from jaxpapers._src import workdir as workdir_lib
from jaxpapers._src.checkpoint import Checkpointer
from jaxpapers._src.metrics import MetricsWriter
from jaxpapers._src.prng import as_key
from jaxpapers._src.validation import check_in
from jaxpapers.ua_attention import _compile
from jaxpapers.ua_attention import data as data_lib
from jaxpapers.ua_attention import metrics as metrics_lib
from jaxpapers.ua_attention.config import DEFAULT_WEIGHT_DECAY
from jaxpapers.ua_attention.model import (
  VARIANTS,
  RetainModel,
  apply_model,
  contributions,
  init_params,
  l2_regularizer,
  mc_predict,
)


class TrainState(NamedTuple):
  """Parameters, Adam state and the global step."""

  params: Any
  opt_state: Any
  step: jax.Array


def make_model(config: ml_collections.ConfigDict, variant: str) -> RetainModel:
  """The :class:`RetainModel` of ``variant`` with ``config.model``'s sizes and keep rates."""
  check_in(variant, "variant", VARIANTS)
  m = config.model
  return RetainModel(variant=variant, embed_dim=m.embed_dim, hidden_dim=m.hidden_dim,
                     keep_embed=m.keep_embed, keep_rnn=m.keep_rnn, keep_context=m.keep_context,
                     cell=m.get("cell", "gru"))


def loss_fn(params, key, model: RetainModel, x, mask, y, weight_decay: float):
  """Mean BCE of one stochastic pass plus ``weight_decay · Σ ½‖θ‖²``; returns ``(loss, bce)``."""
  out = apply_model(key, model, params, x, mask, dropout=True, sample=True)
  bce = jnp.mean(optax.sigmoid_binary_cross_entropy(out.logit, y.astype(out.logit.dtype)))
  return bce + l2_regularizer(params, weight_decay), bce


@_compile.jit(static_argnums=0)
def eval_loss(model: RetainModel, params, x, mask, y) -> jax.Array:
  """Validation BCE of the mean forward pass (no dropout, every Gaussian at its mean)."""
  out = model.apply({"params": params}, x, mask, dropout=False, sample=False)
  return jnp.mean(optax.sigmoid_binary_cross_entropy(out.logit, y.astype(out.logit.dtype)))


@_compile.jit(static_argnames=("model", "optimizer", "batch_size", "weight_decay"))
def train_epoch(key: jax.Array, state: TrainState, x, mask, y, *, model: RetainModel,
                optimizer: optax.GradientTransformation, batch_size: int, weight_decay: float):
  """One epoch: shuffle with ``key``, then ``len(x) // batch_size`` Adam steps in a ``lax.scan``.

  Returns:
    ``(state, losses)`` with ``losses`` the per-step ``(loss, bce)`` arrays.
  """
  n = x.shape[0]
  steps = max(n // batch_size, 1)
  bs = min(batch_size, n)
  k_perm, k_steps = jax.random.split(key)
  perm = jax.random.permutation(k_perm, n)[: steps * bs].reshape(steps, bs)

  def step(state, inputs):
    idx, k = inputs
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
    (loss, bce), grads = grad_fn(state.params, k, model, x[idx], mask[idx], y[idx], weight_decay)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    return TrainState(params, opt_state, state.step + 1), (loss, bce)

  return jax.lax.scan(step, state, (perm, jax.random.split(k_steps, steps)))


@functools.lru_cache(maxsize=None)
def _adam(learning_rate: float) -> optax.GradientTransformation:
  # One optimizer object per step size, so repeated fits reuse train_epoch's compilation.
  return optax.adam(learning_rate)


class FitResult(NamedTuple):
  """Output of :func:`fit`: the early-stopped (or last) parameters and the per-epoch history."""

  params: Any
  best_epoch: int
  train_loss: np.ndarray
  val_loss: np.ndarray
  seconds: float


def fit(key: jax.Array, model: RetainModel, train: data_lib.EHRArrays, val: data_lib.EHRArrays, *,
        learning_rate: float = 1e-4, batch_size: int = 100, num_epochs: int = 100,
        patience: int = 10, weight_decay: float = 0.002, writer: MetricsWriter | None = None,
        progress: bool = False, early_stopping: bool = True) -> FitResult:
  """Trains ``model`` with Adam and (by default) early stopping on the validation loss.

  Args:
    key: a ``jax.random.key`` (initialisation, shuffling, noise and dropout).
    model: the model.
    train: training split.
    val: validation split (early stopping).
    learning_rate: Adam step size (1e-4 in the reference implementation).
    batch_size: mini-batch size (100).
    num_epochs: maximum number of epochs.
    patience: stop after this many epochs without a lower validation loss.
    weight_decay: λ of the L2 / KL term.
    writer: optional metrics writer (one line per epoch).
    progress: show a tqdm bar over epochs.
    early_stopping: keep the parameters of the best validation epoch and stop after
      ``patience`` epochs without improvement; ``False`` (the reference implementation's
      protocol) trains all ``num_epochs`` and returns the last parameters.
  """
  for name, val_ in (("num_epochs", num_epochs), ("patience", patience),
                     ("batch_size", batch_size)):
    if not isinstance(val_, int) or val_ < 1:
      raise ValueError(f"{name} must be a positive int, got {val_!r}")
  if len(train.y) < 1 or len(val.y) < 1:
    raise ValueError("train and val splits must be non-empty")
  start = time.perf_counter()
  k_init, k_train = jax.random.split(key)
  x, mask, y = jnp.asarray(train.x), jnp.asarray(train.mask), jnp.asarray(train.y)
  vx, vmask, vy = jnp.asarray(val.x), jnp.asarray(val.mask), jnp.asarray(val.y)
  params = init_params(k_init, model, x[:2], mask[:2])
  # Start the output bias at the training prevalence's log-odds (our choice; speeds up
  # convergence of every variant alike on imbalanced tasks such as mortality).
  prevalence = float(np.clip(np.mean(train.y), 1e-3, 1 - 1e-3))
  params = {**params, "output": {**params["output"],
                                 "bias": jnp.full_like(params["output"]["bias"],
                                                       np.log(prevalence / (1 - prevalence)))}}
  optimizer = _adam(float(learning_rate))
  state = TrainState(params, optimizer.init(params), jnp.zeros((), jnp.int32))
  best, best_params, best_epoch, bad = np.inf, params, 0, 0
  train_hist, val_hist = [], []
  for epoch in tqdm.trange(num_epochs, disable=not progress, leave=False, desc=model.variant):
    state, (losses, _) = train_epoch(jax.random.fold_in(k_train, epoch), state, x, mask, y,
                                     model=model, optimizer=optimizer, batch_size=batch_size,
                                     weight_decay=float(weight_decay))
    vloss = float(eval_loss(model, state.params, vx, vmask, vy))
    tloss = float(jnp.mean(losses))
    train_hist.append(tloss)
    val_hist.append(vloss)
    if writer is not None:
      writer.write(epoch + 1, variant=model.variant, train_loss=tloss, val_loss=vloss)
    if not early_stopping:
      best_params, best_epoch = state.params, epoch + 1
    elif vloss < best:
      best, best_params, best_epoch, bad = vloss, state.params, epoch + 1, 0
    else:
      bad += 1
      if bad >= patience:
        break
  return FitResult(params=best_params, best_epoch=best_epoch, train_loss=np.asarray(train_hist),
                   val_loss=np.asarray(val_hist), seconds=time.perf_counter() - start)


def predictive_uncertainty(pred, kind: str = "variance") -> jax.Array:
  """Uncertainty used for abstention: MC predictive variance, or the entropy of the mean."""
  check_in(kind, "kind", ("variance", "entropy"))
  if kind == "variance":
    return pred.variance
  p = jnp.clip(pred.prob, 1e-7, 1 - 1e-7)
  return -(p * jnp.log(p) + (1 - p) * jnp.log1p(-p))


def evaluate(key: jax.Array, model: RetainModel, params, split: data_lib.EHRArrays, *,
             num_samples: int = 30, mc_dropout: bool = True, num_bins: int = 10,
             uncertainty: str = "variance") -> dict:
  """MC evaluation on ``split``: AUROC, ECE (%), reliability diagram and abstention curve.

  Returns:
    A dict with ``auroc``, ``ece`` (in %), ``ece_floor`` (in %: the ECE a perfectly calibrated
    model with these predictions would score on ``split``, see
    :func:`~jaxpapers.ua_attention.metrics.ece_noise_floor`), ``error``, ``abstention_area``, ``error_at_80`` /
    ``error_at_50`` (error when keeping the 80% / 50% most certain), and arrays
    ``reliability`` (a :class:`~jaxpapers.ua_attention.metrics.ReliabilityDiagram`), ``curve``
    (an :class:`~jaxpapers.ua_attention.metrics.AbstentionCurve`) and ``prediction``.
  """
  check_in(uncertainty, "uncertainty", ("variance", "entropy"))
  pred, rel, curve, auc, errors, floor = _evaluate_jit(
      key, model, params, jnp.asarray(split.x), jnp.asarray(split.mask), jnp.asarray(split.y),
      num_samples=num_samples, mc_dropout=mc_dropout, num_bins=num_bins,
      uncertainty=uncertainty)
  return {
      "auroc": float(auc),
      "ece": 100.0 * float(rel.ece),
      "ece_floor": 100.0 * float(floor),
      "error": float(jnp.mean(errors)),
      "abstention_area": float(curve.area),
      "error_at_80": float(metrics_lib.error_at_coverage(curve, 0.8)),
      "error_at_50": float(metrics_lib.error_at_coverage(curve, 0.5)),
      "reliability": rel, "curve": curve, "prediction": pred,
  }


@_compile.jit(static_argnames=("model", "num_samples", "mc_dropout", "num_bins",
                                             "uncertainty"))
def _evaluate_jit(key, model, params, x, mask, y, *, num_samples, mc_dropout, num_bins,
                  uncertainty):
  k_pred, k_floor = jax.random.split(key)
  pred = mc_predict(k_pred, model, params, x, mask, num_samples=num_samples, mc_dropout=mc_dropout)
  rel = metrics_lib.reliability_diagram(pred.prob, y, num_bins)
  floor = metrics_lib.ece_noise_floor(k_floor, pred.prob, num_bins)
  errors = ((pred.prob > 0.5).astype(jnp.int32) != y).astype(jnp.int32)
  curve = metrics_lib.abstention_curve(predictive_uncertainty(pred, uncertainty), errors)
  return pred, rel, curve, metrics_lib.auroc(pred.prob, y), errors, floor


def attention_recovery(pred, data: data_lib.SyntheticEHR, params, x) -> dict:
  """How often attention finds the synthetic set's causal visit and variable.

  Returns:
    ``visit_accuracy``: fraction of patients whose largest ``α_t`` is the causal visit;
    ``feature_accuracy``: fraction whose largest ``|Σ_t ω_{t,k}|`` contribution is the causal
    variable; ``chance_visit``: the visit accuracy of picking a visit uniformly.
  """
  visit, feature = _recovery_jit(params, x, pred.alpha, pred.beta, data.causal_visit,
                                 int(data.causal_feature))
  return {"visit_accuracy": float(visit), "feature_accuracy": float(feature),
          "chance_visit": float(np.mean(1.0 / np.asarray(data.lengths)))}


@_compile.jit(static_argnums=5)
def _recovery_jit(params, x, alpha, beta, causal_visit, causal_feature):
  visit_hit = jnp.argmax(alpha, axis=1) == causal_visit
  contrib = contributions(params, x, alpha, beta)
  feature_hit = jnp.argmax(jnp.abs(jnp.sum(contrib, axis=1)), axis=1) == causal_feature
  return jnp.mean(visit_hit), jnp.mean(feature_hit)


class PreparedData(NamedTuple):
  """Splits for one run plus, for the synthetic set, the test patients' ground truth."""

  train: data_lib.EHRArrays
  val: data_lib.EHRArrays
  test: data_lib.EHRArrays
  synthetic_test: data_lib.SyntheticEHR | None
  summary: Any


def prepare_data(key: jax.Array, config: ml_collections.ConfigDict) -> PreparedData:
  """Builds train/val/test splits of ``config.dataset`` (``synthetic`` or ``physionet``)."""
  check_in(config.dataset, "config.dataset", ("synthetic", "physionet"))
  k_data, k_split = jax.random.split(key)
  if config.dataset == "physionet":
    records, outcomes, summary_csv = data_lib.find_physionet(config.data_dir)
    ds = data_lib.load_physionet_cached(
        records, outcomes, summary_csv=summary_csv,
        cache_dir=(data_lib.default_cache_dir() if config.cache_dir == "" else config.cache_dir),
        resolution_hours=config.resolution_hours, max_records=config.max_records)
    train, val, test, _ = data_lib.prepare_physionet_task(k_split, ds, config.task,
                                                          tuple(config.split))
    return PreparedData(train, val, test, None, ds.summary._asdict())
  s = config.synthetic
  ds = data_lib.make_synthetic_ehr(
      k_data, s.num_patients, s.max_visits, s.num_features, min_visits=s.min_visits,
      causal_feature=s.causal_feature, causal_offset=s.causal_offset,
      signal_scale=s.signal_scale)
  parts = data_lib.split_indices(k_split, s.num_patients, tuple(config.split))
  ds = jax.tree.map(np.asarray, ds)
  arrays = [data_lib.EHRArrays(ds.x[p], ds.mask[p], ds.y[p]) for p in parts]
  test_truth = ds._replace(**{f: getattr(ds, f)[parts[2]] for f in ds._fields
                              if f != "causal_feature"})
  return PreparedData(arrays[0], arrays[1], arrays[2], test_truth,
                      {"num_patients": s.num_patients, "positives": float(np.mean(ds.y))})


def run_variant(key: jax.Array, config: ml_collections.ConfigDict, variant: str,
                prepared: PreparedData, *, writer: MetricsWriter | None = None,
                progress: bool = False) -> dict:
  """Trains and evaluates one variant on ``prepared``; returns scalar metrics plus arrays."""
  model = make_model(config, variant)
  wd = config.train.weight_decay
  wd = DEFAULT_WEIGHT_DECAY[variant] if wd is None else wd
  k_fit, k_eval = jax.random.split(key)
  fitted = fit(k_fit, model, prepared.train, prepared.val,
               learning_rate=config.train.learning_rate, batch_size=config.train.batch_size,
               num_epochs=config.train.num_epochs, patience=config.train.patience,
               weight_decay=wd, writer=writer, progress=progress,
               early_stopping=config.train.get("early_stopping", True))
  ev = evaluate(k_eval, model, fitted.params, prepared.test, num_samples=config.eval.num_samples,
                mc_dropout=config.eval.mc_dropout, num_bins=config.eval.num_bins,
                uncertainty=config.eval.uncertainty)
  ev.update(best_epoch=fitted.best_epoch, epochs=len(fitted.val_loss),
            final_val_loss=float(fitted.val_loss[-1]),
            best_val_loss=float(np.min(fitted.val_loss)),
            train_seconds=fitted.seconds, params=fitted.params, model=model)
  if prepared.synthetic_test is not None:
    ev.update(attention_recovery(ev["prediction"], prepared.synthetic_test, fitted.params,
                                 jnp.asarray(prepared.test.x)))
  return ev


SCALAR_KEYS = ("auroc", "ece", "ece_floor", "error", "abstention_area", "error_at_80",
               "error_at_50", "best_epoch", "epochs", "final_val_loss", "best_val_loss",
               "train_seconds", "visit_accuracy", "feature_accuracy", "chance_visit")


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains every variant in ``config.variants`` on one split and evaluates it.

  Metrics go to ``<workdir>/metrics.jsonl`` (one line per epoch and one summary line per variant);
  at ``config.train.checkpoint`` the early-stopped parameters of each variant are saved under
  ``<workdir>/ckpt_<variant>``.

  Returns:
    ``{variant: {metric: float}}`` with the keys of ``SCALAR_KEYS`` that apply.
  """
  workdir_lib.prepare(workdir)  # a clear error naming the path before any work
  validation.check_hyperparameters(config)
  key = as_key(int(config.seed))
  k_data, k_runs = jax.random.split(key)
  prepared = prepare_data(k_data, config)
  results = {}
  with MetricsWriter(os.path.join(workdir, "metrics.jsonl")) as writer:
    for i, variant in enumerate(config.variants):
      ev = run_variant(jax.random.fold_in(k_runs, i), config, variant, prepared, writer=writer)
      scalars = {k: ev[k] for k in SCALAR_KEYS if k in ev}
      writer.write(ev["epochs"], variant=variant, final=True, **scalars)
      if config.train.checkpoint:
        with Checkpointer(os.path.join(workdir, f"ckpt_{variant}"), config=config) as ckpt:
          ckpt.save(ev["epochs"], ev["params"])
      results[variant] = scalars
  return results

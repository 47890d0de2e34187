"""Train → extract representations → score → remove → retrain → evaluate (Tran et al., §4).

:func:`run_pipeline` is one row of the paper's Table 1 for one (source, target, ε, trigger,
seed): natural accuracy and attack success of the network trained on the poisoned set, how many
poisons the per-class spectral score removes at ``1.5·ε·n_y``, and natural accuracy and attack
success after retraining from scratch on what is left. Peer detectors (the reference code's |R_i·v| score,
activation clustering, SPECTRE-style) are scored on the same representations.
:func:`train_and_evaluate` runs the configured grid and writes ``metrics.jsonl`` and a table.
"""

from __future__ import annotations

import functools
import json
import os
import time
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import tqdm

from jaxpapers._src import checkpoint, stats, validation
from jaxpapers._src import workdir as workdir_lib
from jaxpapers._src.loop import make_chunk
from jaxpapers._src.metrics import MetricsWriter, read_metrics
from jaxpapers._src.prng import as_key
from jaxpapers._src.validation import check_array, check_in
from jaxpapers.spectral_signatures import attacks, defense, models
from jaxpapers.spectral_signatures import data as data_lib

# "spectral_uncentered" is the authors' reference-code score |R_i·v| (v from the centred SVD,
# uncentred representations projected), see defense.spectral_signature(centered=False).
DETECTORS = ("spectral", "spectral_uncentered", "activation_clustering", "spectre")


class TrainState(NamedTuple):
  """Parameters, BatchNorm statistics (``{}`` for models without), optimizer state."""

  params: dict
  batch_stats: dict
  opt_state: optax.OptState


def make_optimizer(num_steps: int, learning_rate: float = 0.1,
                   lr_boundaries: tuple[float, ...] = (0.5, 0.75), lr_decay: float = 0.1,
                   momentum: float = 0.9, weight_decay: float = 2e-4):
  """SGD with momentum 0.9, lr 0.1 → 0.01 → 0.001 at the given fractions of training, and
  weight decay 2e-4 on kernels (the reference ResNet setup)."""
  schedule = optax.piecewise_constant_schedule(
      learning_rate, {max(1, int(b * num_steps)): lr_decay for b in lr_boundaries})
  decay_mask = lambda params: jax.tree.map(lambda p: p.ndim > 1, params)
  return optax.chain(optax.add_decayed_weights(weight_decay, mask=decay_mask),
                     optax.sgd(schedule, momentum=momentum))


def augment_batch(key: jax.Array, images: jax.Array, pad: int = 4) -> jax.Array:
  """Random ``pad``-pixel-padded crops and horizontal flips (the reference's augmentation)."""
  n, h, w, _ = images.shape
  k_crop, k_flip = jax.random.split(key)
  padded = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
  offs = jax.random.randint(k_crop, (n, 2), 0, 2 * pad + 1)
  crop = jax.vmap(lambda im, o: jax.lax.dynamic_slice(im, (o[0], o[1], 0),
                                                      (h, w, im.shape[-1])))(padded, offs)
  flip = jax.random.bernoulli(k_flip, 0.5, (n,))
  return jnp.where(flip[:, None, None, None], crop[:, :, ::-1], crop)


def _pad_rows(x, n_total):
  pad = n_total - x.shape[0]
  return x if pad == 0 else jnp.concatenate([x, jnp.zeros((pad, *x.shape[1:]), x.dtype)])


@functools.lru_cache(maxsize=32)
def _trainer(model, num_steps, batch_size, learning_rate, lr_boundaries, momentum, weight_decay,
             augment, chunk_size, has_bn):
  """A jitted ``lax.scan`` chunk of SGD steps, built once per model and hyper-parameters.

  The data (padded images, labels, 0/1 weights) and the key travel in the scanned carry, so
  retraining on a cleaned set or another ε reuses the compiled chunk.
  """
  tx = make_optimizer(num_steps, learning_rate, lr_boundaries, momentum=momentum,
                      weight_decay=weight_decay)

  def loss_fn(params, batch_stats, x, y):
    if has_bn:
      (logits, _), upd = model.apply({"params": params, "batch_stats": batch_stats}, x,
                                     train=True, mutable=["batch_stats"])
      new_stats = upd["batch_stats"]
    else:
      logits, _ = model.apply({"params": params}, x, train=True)
      new_stats = batch_stats
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return loss, (new_stats, jnp.mean(jnp.argmax(logits, -1) == y))

  def step_fn(carry, step):
    state, (images, labels, weights, key) = carry
    k_idx, k_aug = jax.random.split(jax.random.fold_in(key, step))
    # batch_size distinct kept rows, uniformly: the largest uniform keys among kept rows.
    _, idx = jax.lax.top_k(jnp.where(weights > 0, jax.random.uniform(k_idx, weights.shape), -1.0),
                           batch_size)
    x, y = images[idx], labels[idx]
    if augment:
      x = augment_batch(k_aug, x)
    grads, (stats, acc) = jax.grad(loss_fn, has_aux=True)(state.params, state.batch_stats, x, y)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    state = TrainState(optax.apply_updates(state.params, updates), stats, opt_state)
    return (state, (images, labels, weights, key)), {"acc": acc}

  if chunk_size == 1:
    # One jitted step per call: XLA:CPU runs convolutions inside a while loop (lax.scan) ~16×
    # slower than at top level (measured with SmallCNN), so conv models step from the host.
    return tx, jax.jit(step_fn)
  return tx, make_chunk(step_fn, chunk_size)


def train_classifier(key: jax.Array, model: nn.Module, images: jax.Array, labels: jax.Array, *,
                     num_steps: int, batch_size: int = 128, learning_rate: float = 0.1,
                     lr_boundaries: tuple[float, ...] = (0.5, 0.75), momentum: float = 0.9,
                     weight_decay: float = 2e-4, augment: bool = False,
                     weights: jax.Array | None = None, chunk_size: int | None = None,
                     pad_multiple: int = 512, progress: bool = False) -> dict:
  """Trains ``model`` with softmax cross-entropy on minibatches; returns its variables.

  Each step draws ``batch_size`` distinct examples among those with ``weights > 0`` (all by
  default) using ``fold_in(key, step)``, so a run is a pure function of its arguments. Steps run
  as jitted ``lax.scan`` chunks (``jaxpapers._src.loop.make_chunk``) compiled once per model and
  hyper-parameters: the data are padded to a multiple of ``pad_multiple`` rows with zero weight,
  so training on a cleaned subset (``weights`` = keep mask) reuses the same program.

  Args:
    key: PRNG key (initialisation and batches).
    model: a Flax module returning ``(logits, features)``.
    images: ``(n, H, W, C)`` float images.
    labels: ``(n,)`` integer labels.
    num_steps: SGD steps.
    batch_size: examples per step (at most the number of kept examples).
    learning_rate: initial rate (0.1), multiplied by 0.1 at each of ``lr_boundaries``
      (fractions of ``num_steps``).
    momentum: SGD momentum (0.9).
    weight_decay: L2 decay on kernels (2e-4).
    augment: random crops (4-pixel padding) and horizontal flips.
    weights: optional ``(n,)`` 0/1 mask of examples to train on.
    chunk_size: steps per compiled chunk; default 1000, or 1 (a jitted step per call) for
      convolutional models on CPU, where XLA runs convolutions inside loops far slower.
    pad_multiple: row padding granularity (fewer recompiles across set sizes).
    progress: show a progress bar.

  Returns:
    ``{"params": ..., ["batch_stats": ...]}``.
  """
  check_array(images, "images", ndim=4, dtype_kind="f")
  n = images.shape[0]
  check_array(labels, "labels", ndim=1, dtype_kind="iu", shape=(n,))
  if weights is not None:
    check_array(weights, "weights", ndim=1, shape=(n,))
  if not isinstance(num_steps, int) or num_steps < 1:
    raise ValueError(f"num_steps must be a positive int, got {num_steps!r}")
  if not isinstance(batch_size, int) or batch_size < 1:
    raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
  w = jnp.ones((n,), jnp.float32) if weights is None else jnp.asarray(weights, jnp.float32)
  n_keep = int(jnp.sum(w > 0))
  if n_keep < 1:
    raise ValueError("weights must keep at least one example")
  batch_size = min(batch_size, n_keep)
  n_total = -(-n // pad_multiple) * pad_multiple
  data = (_pad_rows(jnp.asarray(images, jnp.float32), n_total),
          _pad_rows(jnp.asarray(labels, jnp.int32), n_total),
          _pad_rows((w > 0).astype(jnp.float32), n_total))
  k_init, k_data = jax.random.split(key)
  variables = models.init_variables(k_init, model, images.shape[1:])
  has_bn = "batch_stats" in variables
  if chunk_size is None:
    has_conv = any(p.ndim == 4 for p in jax.tree.leaves(variables["params"]))
    chunk_size = 1 if (has_conv and jax.default_backend() == "cpu") else 1000
  chunk_size = min(chunk_size, num_steps)
  tx, chunk = _trainer(model, num_steps, batch_size, float(learning_rate),
                       tuple(float(b) for b in lr_boundaries), float(momentum),
                       float(weight_decay), bool(augment), chunk_size, has_bn)
  params = variables["params"]
  carry = (TrainState(params, variables.get("batch_stats", {}), tx.init(params)),
           (*data, k_data))
  tail = None
  step = 0
  with tqdm.tqdm(total=num_steps, disable=not progress, desc="train", leave=False) as bar:
    while step < num_steps:
      size = min(chunk_size, num_steps - step)
      if size != chunk_size and tail is None:
        tail = _trainer(model, num_steps, batch_size, float(learning_rate),
                        tuple(float(b) for b in lr_boundaries), float(momentum),
                        float(weight_decay), bool(augment), size, has_bn)[1]
      fn = chunk if size == chunk_size else tail
      carry, _ = fn(carry, jnp.int32(step))
      step += size
      bar.update(size)
  state = carry[0]
  return {"params": state.params, **({"batch_stats": state.batch_stats} if has_bn else {})}


def apply_model(model: nn.Module, variables: dict, images, layer: str | None = None,
                batch_size: int = 1024):
  """Eval-mode logits (and the ``layer`` representations if named) in fixed-size jitted chunks."""
  check_array(images, "images", ndim=4)
  images = np.asarray(images, np.float32)
  n = images.shape[0]
  fwd = _forward(model, layer)
  bs = min(batch_size, max(n, 1))
  logits, reps = [], []
  for start in range(0, n, bs):
    chunk = images[start:start + bs]
    pad = bs - chunk.shape[0]
    if pad:
      chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]), np.float32)])
    lg, rp = fwd(variables, jnp.asarray(chunk))
    logits.append(np.asarray(lg)[:bs - pad])
    if layer is not None:
      reps.append(np.asarray(rp)[:bs - pad])
  logits = np.concatenate(logits)
  return (logits, np.concatenate(reps)) if layer is not None else logits


@functools.lru_cache(maxsize=32)
def _forward(model, layer):
  def f(variables, x):
    logits, feats = model.apply(variables, x, train=False)
    if layer is None:
      return logits, jnp.zeros(())
    if layer not in feats:
      raise ValueError(f"layer must be one of {sorted(feats)}, got {layer!r}")
    return logits, feats[layer]

  return jax.jit(f)


def accuracy(model, variables, images, labels) -> float:
  return float(np.mean(np.argmax(apply_model(model, variables, images), -1) == np.asarray(labels)))


def attack_success(model, variables, test: data_lib.Split, *, source, target, trigger, position,
                   colour) -> float:
  """Fraction of triggered source-class test images classified as ``target``."""
  x = attacks.triggered_test_set(test.images, test.labels, source=source, trigger=trigger,
                                 position=position, colour=colour)
  return float(np.mean(np.argmax(apply_model(model, variables, x), -1) == target))


def detector_scores(name: str, reps, labels, num_classes: int):
  """Scores of detector ``name`` (one of :data:`DETECTORS`) on representations ``reps``."""
  check_in(name, "detector", DETECTORS)
  if name == "spectral":
    return defense.spectral_scores(reps, labels, num_classes)
  if name == "spectral_uncentered":
    return defense.spectral_scores(reps, labels, num_classes, centered=False)
  if name == "activation_clustering":
    return defense.activation_clustering_scores(reps, labels, num_classes).scores
  return defense.spectre_scores(reps, labels, num_classes)


def train_kwargs(cfg: ml_collections.ConfigDict) -> dict:
  """Keyword arguments of :func:`train_classifier` from ``cfg.train``."""
  t = cfg.train
  return dict(num_steps=t.num_steps, batch_size=t.batch_size, learning_rate=t.learning_rate,
              lr_boundaries=tuple(t.lr_boundaries), momentum=t.momentum,
              weight_decay=t.weight_decay, augment=t.augment)


def run_pipeline(key: jax.Array, dataset: data_lib.Dataset, cfg: ml_collections.ConfigDict, *,
                 source: int, target: int, epsilon: float, trigger: str) -> dict:
  """One Table-1 row: poison, train, score, remove, retrain, evaluate.

  Args:
    key: PRNG key (poison choice, both trainings).
    dataset: train/test splits.
    cfg: the experiment config (``model``, ``layer``, ``position``, ``colour``, ``train``,
      ``detectors``, ``retrain_peers``).
    source, target, epsilon, trigger: the attack.

  Returns:
    A dict of JSON-able numbers: ``nat1``, ``pois1`` (attack success), ``num_poisons``,
    ``removed``, ``caught``, ``poisons_left``, ``nat2``, ``pois2`` and per-detector catches.
  """
  k_pois, k_train1, k_train2 = jax.random.split(key, 3)
  position, colour = tuple(cfg.position), cfg.colour
  t0 = time.perf_counter()
  poisoned = attacks.poison_dataset(k_pois, dataset.train.images, dataset.train.labels,
                                    source=source, target=target, epsilon=epsilon,
                                    trigger=trigger, position=position, colour=colour)
  model = models.make_model(cfg.model, dataset.num_classes, cfg.get("filters", None))
  layer = cfg.layer or models.DEFAULT_LAYER[cfg.model]
  tcfg = train_kwargs(cfg)
  evaluate = lambda v: (accuracy(model, v, dataset.test.images, dataset.test.labels),
                        attack_success(model, v, dataset.test, source=source, target=target,
                                       trigger=trigger, position=position, colour=colour))
  v1 = train_classifier(k_train1, model, poisoned.images, poisoned.labels, **tcfg)
  nat1, pois1 = evaluate(v1)
  _, reps = apply_model(model, v1, poisoned.images, layer=layer)
  labels = np.asarray(poisoned.labels)
  poison_mask = np.asarray(poisoned.poison_mask)
  out = {"source": source, "target": target, "epsilon": epsilon, "trigger": trigger,
         "layer": layer, "num_train": int(labels.size), "nat1": nat1, "pois1": pois1}
  removed_by = {}
  for name in cfg.detectors:
    scores = detector_scores(name, reps, labels, dataset.num_classes)
    removed = defense.removal_mask(scores, labels, dataset.num_classes, epsilon)
    stats = defense.detection_stats(removed, poison_mask)
    removed_by[name] = np.asarray(removed)
    out[f"{name}_caught"] = stats.caught
    if name == "spectral":
      out.update(num_poisons=stats.num_poisons, removed=stats.removed, caught=stats.caught,
                 poisons_left=stats.num_poisons - stats.caught)
      out["target_class_removed"] = int(np.sum(np.asarray(removed) & (labels == target)))
  if cfg.get("raw_control", False):
    # Control: the same centred spectral score on the raw (flattened) pixels of the poisoned
    # set. If it catches the poisons as well as the learned representation does, the row does
    # not test a *learned* signature.
    raw = np.asarray(poisoned.images, np.float32).reshape(labels.size, -1)
    removed = defense.removal_mask(defense.spectral_scores(raw, labels, dataset.num_classes),
                                   labels, dataset.num_classes, epsilon)
    out["raw_pixels_caught"] = defense.detection_stats(removed, poison_mask).caught
  to_retrain = [d for d in cfg.detectors if d == "spectral" or cfg.retrain_peers]
  for name in to_retrain:
    keep = ~removed_by[name]
    v2 = train_classifier(k_train2, model, poisoned.images, poisoned.labels, weights=keep, **tcfg)
    nat2, pois2 = evaluate(v2)
    prefix = "" if name == "spectral" else f"{name}_"
    out[f"{prefix}nat2"], out[f"{prefix}pois2"] = nat2, pois2
  if cfg.get("clean_control", False):
    out.update(clean_control(key, dataset, cfg, source=source, target=target, trigger=trigger))
  out["seconds"] = time.perf_counter() - t0
  return out


def clean_control(key: jax.Array, dataset: data_lib.Dataset, cfg: ml_collections.ConfigDict, *,
                  source: int, target: int, trigger: str) -> dict:
  """The base rate: a never-poisoned model's "attack success" on the same triggered test set.

  Trains on the clean training set with the first training's key of :func:`run_pipeline` (same
  initialisation and batch order), so ``pois2 − pois_clean`` is a paired difference: how much of
  the attack success left after removal and retraining a model that never saw a poison shows too
  (its own source→target confusion on marked images).

  Returns:
    ``{"nat_clean", "pois_clean"}``: that model's clean test accuracy and attack success.
  """
  _, k_train1, _ = jax.random.split(key, 3)
  model = models.make_model(cfg.model, dataset.num_classes, cfg.get("filters", None))
  v = train_classifier(k_train1, model, dataset.train.images, dataset.train.labels,
                       **train_kwargs(cfg))
  return {"nat_clean": accuracy(model, v, dataset.test.images, dataset.test.labels),
          "pois_clean": attack_success(model, v, dataset.test, source=source, target=target,
                                       trigger=trigger, position=tuple(cfg.position),
                                       colour=cfg.colour)}


# Fields that name runs (each row's run id holds them) or add work to a finished run (the clean
# control) rather than change what a finished run computed.
_RUN_FIELDS = ("seeds", "pairs", "epsilons", "triggers", "clean_control", "data_dir")


def run_config_hash(cfg: ml_collections.ConfigDict) -> str:
  """Hash of everything that decides a run's numbers; rows resumed from disk must carry it."""
  return checkpoint.config_hash(checkpoint.flatten_config(cfg, ignore=_RUN_FIELDS))


def load_dataset(cfg: ml_collections.ConfigDict) -> data_lib.Dataset:
  """The configured dataset: ``digits`` or ``cifar10`` (a per-class subset if configured)."""
  check_in(cfg.dataset, "config.dataset", ("digits", "cifar10"))
  if cfg.dataset == "digits":
    return data_lib.load_digits(cfg.test_fraction, seed=0)
  return data_lib.load_cifar10(cfg.data_dir or None, limit_per_class=cfg.train_per_class or None,
                               test_limit_per_class=cfg.test_per_class or None)


def run_grid(cfg: ml_collections.ConfigDict, dataset: data_lib.Dataset | None = None, *,
             writer: MetricsWriter | None = None, done: dict | None = None) -> list[dict]:
  """Runs every (pair, ε, trigger, seed) of the config; ``done`` maps finished run ids to rows."""
  dataset = load_dataset(cfg) if dataset is None else dataset
  rows, step = [], 0
  done = done or {}
  for source, target in cfg.pairs:
    for epsilon in cfg.epsilons:
      for trigger in cfg.triggers:
        for seed in cfg.seeds:
          run_id = f"{source}->{target}/eps={epsilon}/{trigger}/seed={seed}"
          key = jax.random.fold_in(as_key(int(seed)), 0)
          row, new = done.get(run_id), True
          if row is None:
            row = run_pipeline(key, dataset, cfg, source=int(source), target=int(target),
                               epsilon=float(epsilon), trigger=trigger)
            row.update(run_id=run_id, seed=int(seed), config_hash=run_config_hash(cfg))
          elif cfg.get("clean_control", False) and "pois_clean" not in row:
            # A finished run of the same configuration only lacks its control: add it.
            row = {**row, **clean_control(key, dataset, cfg, source=int(source),
                                          target=int(target), trigger=trigger)}
          else:
            new = False
          if new and writer is not None:
            writer.write(step, **{k: v for k, v in row.items() if k != "step"})
          rows.append(row)
          step += 1
  return rows


def format_table(rows: list[dict]) -> str:
  """Markdown table in the layout of the paper's Table 1 (plus peers' catches)."""
  peers = [d for d in (*DETECTORS[1:], "raw_pixels") if rows and f"{d}_caught" in rows[0]]
  head = ("| pair | ε | trigger | seed | nat 1 | pois 1 | # poisons | removed | caught | left "
          "| nat 2 | pois 2 |" + "".join(f" {p} caught |" for p in peers))
  lines = [head, "|" + "---|" * (head.count("|") - 1)]
  for r in rows:
    lines.append(
        f"| {r['source']}→{r['target']} | {r['epsilon']:.0%} | {r['trigger']} | {r['seed']} "
        f"| {r['nat1']:.1%} | {r['pois1']:.1%} | {r['num_poisons']} | {r['removed']} "
        f"| {r['caught']} | {r['poisons_left']} | {r['nat2']:.1%} | {r['pois2']:.1%} |"
        + "".join(f" {r[p + '_caught']} |" for p in peers))
  return "\n".join(lines)


def summarize(rows: list[dict]) -> dict:
  """Aggregates over runs: mean accuracies, attack success, fraction of poisons caught."""
  if not rows:
    raise ValueError("rows must be non-empty")
  mean = lambda k: float(np.mean([r[k] for r in rows]))
  caught = sum(r["caught"] for r in rows)
  total = sum(r["num_poisons"] for r in rows)
  out = {"runs": len(rows), "nat1": mean("nat1"), "pois1": mean("pois1"), "nat2": mean("nat2"),
         "pois2": mean("pois2"), "caught_fraction": caught / max(total, 1),
         "runs_all_caught": int(sum(r["poisons_left"] == 0 for r in rows))}
  if all("pois_clean" in r for r in rows):
    out["nat_clean"], out["pois_clean"] = mean("nat_clean"), mean("pois_clean")
    # paired over runs: attack success after retraining minus the never-poisoned model's
    out["pois2_minus_clean"] = stats.mean_interval([r["pois2"] - r["pois_clean"] for r in rows])
  for d in (*DETECTORS[1:], "raw_pixels"):
    if f"{d}_caught" in rows[0]:
      out[f"{d}_caught_fraction"] = sum(r[f"{d}_caught"] for r in rows) / max(total, 1)
  return out


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Runs the configured Table-1 grid, resuming finished runs from ``<workdir>/metrics.jsonl``.

  Writes ``metrics.jsonl`` (one line per run), ``table.md`` and ``results.json``; returns
  ``{"rows": [...], "summary": {...}, "table": str}``.
  """
  workdir_lib.prepare(workdir)  # a clear error naming the path before any work
  validation.check_hyperparameters(config)
  path = os.path.join(workdir, "metrics.jsonl")
  done = {r["run_id"]: r for r in read_metrics(path)} if os.path.exists(path) else {}
  want = run_config_hash(config)
  for run_id, r in done.items():
    if r.get("config_hash") != want:
      raise ValueError(
          f"{path}: run {run_id} was written by another configuration (config_hash "
          f"{r.get('config_hash')!r}, this one {want!r}); use a fresh workdir")
  with MetricsWriter(path) as writer:
    rows = run_grid(config, writer=writer, done=done)
  result = {"rows": rows, "summary": summarize(rows), "table": format_table(rows)}
  with open(os.path.join(workdir, "table.md"), "w", encoding="utf-8") as f:
    f.write(result["table"] + "\n")
  with open(os.path.join(workdir, "results.json"), "w", encoding="utf-8") as f:
    json.dump({"rows": rows, "summary": result["summary"]}, f, indent=1, default=float)
  return result

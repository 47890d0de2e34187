"""Training and evaluation: ``make_train(config)(keys)`` runs a whole seed-vmapped run."""

from __future__ import annotations

import json
import os
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import tqdm

from jaxpapers._src import checkpoint, loop, metrics, prng, validation
from jaxpapers._src import workdir as workdir_lib
from jaxpapers.convlstm_attention import data, model, motion, paper_network, streaming


class TrainState(NamedTuple):
  params: Any
  opt_state: Any
  key: jax.Array
  bn_state: Any = None  # BatchNorm running statistics (config.network="paper"); None otherwise


def init_params(key: jax.Array, config: ml_collections.ConfigDict):
  """``(params, bn_state)`` of ``config.network``; ``bn_state`` is ``None`` for the reduced one."""
  if model.check_network(config) == "paper":
    return paper_network.init_paper_network(key, config.variant, config.num_classes,
                                            width=config.get("paper_width", 1.0),
                                            recurrent_kernel=config.recurrent_kernel)
  return model.init_network(key, config), None


def network_logits(params, bn_state, clips: jax.Array, config: ml_collections.ConfigDict, *,
                   train: bool = False):
  """``(logits, new_bn_state)`` of ``config.network`` (BatchNorm in train mode iff ``train``)."""
  if model.check_network(config) == "paper":
    model._check_clips(clips)
    x = ((clips - config.input_mean) / config.input_std).astype(jnp.dtype(config.dtype))
    return paper_network.apply_paper_network(params, bn_state, x, variant=config.variant,
                                             train=train, padding=config.padding,
                                             unroll=config.unroll)
  return model.apply_network(params, clips, config), bn_state


def make_optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """The reference's SGD (momentum 0.9, polynomial decay 0.9, weight decay) or Adam."""
  schedule = optax.polynomial_schedule(config.learning_rate, config.end_learning_rate, 0.9,
                                       max(config.num_steps, 1))
  parts = []
  if config.grad_clip:
    parts.append(optax.clip_by_global_norm(config.grad_clip))
  parts.append(optax.add_decayed_weights(config.weight_decay))
  if config.optimizer == "sgd":
    parts.append(optax.sgd(schedule, momentum=config.momentum))
  elif config.optimizer == "adam":
    parts.append(optax.adam(schedule))
  else:
    raise ValueError(f"config.optimizer must be 'sgd' or 'adam', got {config.optimizer!r}")
  return optax.chain(*parts)


def batch_fn(config: ml_collections.ConfigDict, arrays: data.Clips | None = None,
             split: str = "train"):
  """``get_batch(key) -> Clips``: synthetic clips, clips rendered from the ``split`` recordings
  of the recorded-motion set (:mod:`motion`), or random draws from loaded ``arrays``."""
  if arrays is None and config.dataset == "recorded_motion":
    rec = motion.load("TRAIN" if split == "train" else "TEST", config.data_dir or None)
    if config.num_classes != len(rec.classes):
      raise ValueError(f"config.num_classes must be {len(rec.classes)} for recorded_motion "
                       f"({', '.join(rec.classes)}), got {config.num_classes}")
    return lambda key: motion.motion_batch(key, rec, config.batch_size,
                                           num_frames=config.num_frames, size=config.size,
                                           clutter=config.clutter,
                                           normalize=config.motion_normalize)
  if arrays is None and config.dataset == "synthetic_cued":
    return lambda key: data.cued_batch(
        key, config.batch_size, num_frames=config.num_frames, size=config.size,
        num_classes=config.num_classes, cue_frames=config.get("cue_frames", 2),
        clutter=config.clutter)
  if arrays is None:
    return lambda key: data.synthetic_batch(
        key, config.batch_size, num_frames=config.num_frames, size=config.size,
        num_classes=config.num_classes, clutter=config.clutter, distractor=config.distractor)

  def get(key):
    idx = jax.random.randint(key, (config.batch_size,), 0, arrays.labels.shape[0])
    return data.Clips(arrays.clips[idx], arrays.labels[idx])

  return get


def loss_fn(params, batch: data.Clips, config, bn_state=None):
  """``(loss, (accuracy, new_bn_state))`` on a training batch (BatchNorm in train mode)."""
  logits, new_bn_state = network_logits(params, bn_state, batch.clips, config, train=True)
  loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch.labels).mean()
  acc = jnp.mean(jnp.argmax(logits, -1) == batch.labels)
  return loss, (acc, new_bn_state)


class FullPassEval(NamedTuple):
  """Result of a deterministic pass over an evaluation set.

  Attributes:
    correct: number of clips classified correctly.
    count: number of clips evaluated (each real clip exactly once; padding excluded).
  """

  correct: jax.Array
  count: jax.Array


def full_pass_eval(params, clips: jax.Array, labels: jax.Array,
                   config: ml_collections.ConfigDict, *, batch_size: int | None = None,
                   bn_state=None) -> FullPassEval:
  """Evaluates every clip of ``(clips, labels)`` exactly once, in order, in fixed-size batches.

  The ``n`` clips are zero-padded to a multiple of ``batch_size`` (default
  ``config.batch_size``) and run batch after batch (``lax.map``); padded rows are masked out of
  both counts, so ``correct / count`` is the accuracy over exactly the ``n`` clips, independent
  of the batch size (the network has no cross-example operations). Deterministic: no key. Pure
  and jittable; ``vmap`` over stacked ``params`` evaluates several seeds.

  Args:
    params: network parameters.
    clips: ``(n, T, H, W, 3)`` clips, ``n >= 1``.
    labels: ``(n,)`` integer labels in ``[0, config.num_classes)``.
    config: the model config.
    batch_size: clips per batch.
    bn_state: BatchNorm running statistics (``config.network="paper"``; eval mode).

  Returns:
    A :class:`FullPassEval`.
  """
  model._check_clips(clips)
  if not hasattr(labels, "ndim") or labels.ndim != 1 or labels.shape[0] != clips.shape[0]:
    raise ValueError(f"labels must have shape ({clips.shape[0]},) to match clips, got "
                     f"{getattr(labels, 'shape', None)}")
  if np.dtype(labels.dtype).kind not in "iu":
    raise TypeError(f"labels must be integers, got dtype {labels.dtype}")
  if not isinstance(labels, jax.core.Tracer) and labels.shape[0]:
    lo, hi = int(np.min(np.asarray(labels))), int(np.max(np.asarray(labels)))
    if lo < 0 or hi >= config.num_classes:
      raise ValueError(f"labels must lie in [0, {config.num_classes}), got range [{lo}, {hi}]")
  n = int(clips.shape[0])
  if n < 1:
    raise ValueError("clips must hold at least one clip to evaluate, got 0")
  bs = int(config.batch_size if batch_size is None else batch_size)
  if bs < 1:
    raise ValueError(f"batch_size must be a positive int, got {bs}")
  bs = min(bs, n)
  num_batches = -(-n // bs)
  pad = num_batches * bs - n
  clips = jnp.pad(jnp.asarray(clips), [(0, pad)] + [(0, 0)] * (clips.ndim - 1))
  labels = jnp.pad(jnp.asarray(labels), (0, pad))
  valid = jnp.arange(num_batches * bs) < n

  def one(batch):
    c, y, v = batch
    hit = (jnp.argmax(network_logits(params, bn_state, c, config)[0], -1) == y) & v
    return jnp.sum(hit, dtype=jnp.int32), jnp.sum(v, dtype=jnp.int32)

  correct, count = jax.lax.map(one, (clips.reshape((num_batches, bs) + clips.shape[1:]),
                                     labels.reshape(num_batches, bs),
                                     valid.reshape(num_batches, bs)))
  return FullPassEval(jnp.sum(correct), jnp.sum(count))


def apply_batch(state: TrainState, batch: data.Clips, config: ml_collections.ConfigDict,
                optimizer: optax.GradientTransformation) -> tuple[TrainState, dict]:
  """One optimizer step on ``batch``: ``(state, {"loss", "accuracy"})``."""
  (loss, (acc, bn_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state.params, batch, config, state.bn_state)
  updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  return TrainState(params, opt_state, state.key, bn_state), {"loss": loss, "accuracy": acc}


def make_train(config: ml_collections.ConfigDict, arrays: data.Clips | None = None):
  """Returns ``(init, step, evaluate)`` for one seed; callers vmap them over seeds.

  * ``init(key) -> TrainState``
  * ``step(state, step_index) -> (state, {"loss", "accuracy"})``
  * ``evaluate(params, key, bn_state=None) -> accuracy``: on synthetic data, ``config.eval_size``
    fresh clips drawn from ``key``; on loaded ``arrays``, a deterministic full pass over every clip
    exactly once (:func:`full_pass_eval`; ``key`` is unused). ``bn_state``: the paper network's
    BatchNorm statistics (eval mode).

  ``config.network="paper"`` trains :mod:`paper_network` (``TrainState.bn_state`` carries its
  BatchNorm statistics, updated by every step); ``"reduced"`` the network of :mod:`model`.
  With ``config.dataset="recorded_motion"`` training clips come from the train recordings and
  evaluation clips from the test recordings (:mod:`motion`).
  """
  model.check_network(config)
  optimizer = make_optimizer(config)
  get_batch = batch_fn(config, arrays)
  get_eval_batch = (batch_fn(config, arrays, split="test")
                    if arrays is None and config.dataset == "recorded_motion" else get_batch)

  def init(key):
    k_params, k_data = jax.random.split(key)
    params, bn_state = init_params(k_params, config)
    return TrainState(params, optimizer.init(params), k_data, bn_state)

  def step(state, i):
    return apply_batch(state, get_batch(prng.step_key(state.key, i)), config, optimizer)

  def evaluate(params, key, bn_state=None):
    if arrays is not None:
      del key
      res = full_pass_eval(params, arrays.clips, arrays.labels, config, bn_state=bn_state)
      return res.correct / res.count
    n_batches = max(config.eval_size // config.batch_size, 1)
    keys = jax.random.split(key, n_batches)

    def one(k):
      batch = get_eval_batch(k)
      logits, _ = network_logits(params, bn_state, batch.clips, config)
      return jnp.mean(jnp.argmax(logits, -1) == batch.labels)

    return jnp.mean(jax.lax.map(one, keys))

  return init, step, evaluate


def _init_or_restore(config, workdir, init):
  """``(seed_keys, state, start_step, checkpointer or None)``: every seed initialised (vmap),
  then replaced by ``<workdir>/ckpt``'s latest checkpoint when there is one."""
  seed_keys = jnp.stack([jax.random.key(s) for s in config.seeds])
  state = jax.vmap(init)(seed_keys)
  start, ckpt = 0, None
  if workdir is not None:
    # The learning-rate schedule depends on num_steps: only these fields may change on resume.
    ckpt = checkpoint.Checkpointer(os.path.join(workdir, "ckpt"), config=config,
                                   ignore=("chunk_size", "variants", "controls", "eval_size"))
    restored = ckpt.restore(state)
    if restored is not None:
      state, start = restored
  return seed_keys, state, start, ckpt


def _result(config, acc, params, loss, train_seconds, eval_clips) -> dict:
  """The per-model result record (``params`` stacked over seeds; ``loss`` the step history)."""
  params0 = jax.tree.map(lambda p: p[0], params)
  loss = np.asarray(loss if loss is not None else [], np.float64)
  return {
      "model": config.model, "network": model.check_network(config),
      "variant": config.variant if config.model == "convlstm_net" else config.model,
      "seeds": list(config.seeds),
      "test_accuracy": np.asarray(acc).tolist(), "mean_accuracy": float(np.mean(acc)),
      "cell_params": model.cell_param_count(params0),
      "total_params": int(sum(np.prod(p.shape) for p in jax.tree.leaves(params0))),
      "final_train_loss": float(np.mean(loss[-min(20, len(loss)):])) if loss.size else None,
      "train_seconds": train_seconds, "steps": config.num_steps, "eval_clips": eval_clips,
  }


def train_model(config: ml_collections.ConfigDict, workdir: str | None = None, *,
                arrays: data.Clips | None = None, eval_arrays: data.Clips | None = None,
                progress: bool = True, return_params: bool = False):
  """Trains ``config.model``/``config.variant`` for every seed in ``config.seeds`` at once (vmap).

  Checkpoints after every chunk under ``workdir`` so a killed run resumes; returns per-seed test
  accuracy, parameter counts, final training loss and the wall time (and, with
  ``return_params``, the trained parameters stacked over seeds). With ``eval_arrays`` the test
  accuracy is a deterministic full pass over every evaluation clip exactly once
  (:func:`full_pass_eval`, ``eval_clips`` in the result); otherwise ``config.eval_size`` fresh
  synthetic clips from a seed-derived stream.
  """
  init, step, evaluate = make_train(config, arrays)
  seed_keys, state, start, ckpt = _init_or_restore(config, workdir, init)
  writer = metrics.MetricsWriter(None if workdir is None else os.path.join(workdir, "metrics.jsonl"),
                                 log=False)

  def on_chunk(st, s, last):  # run_chunked has written the chunk's steps (one value per seed)
    if ckpt is not None:
      ckpt.save(s, st)

  t0 = time.perf_counter()
  name = config.variant if config.model == "convlstm_net" else config.model
  # XLA:CPU runs the cells' convolutions inside lax.scan 3.5x slower than in a plain jitted step.
  state, hist = loop.run_chunked(jax.vmap(step, in_axes=(0, None)), state, config.num_steps,
                                 chunk_size=config.chunk_size, start_step=start, desc=name,
                                 progress=progress, on_chunk=on_chunk, writer=writer,
                                 scan=jax.default_backend() != "cpu")
  if workdir is not None:  # the whole run's history, also when it was killed and resumed
    hist = metrics.read_history(os.path.join(workdir, "metrics.jsonl"), ("loss", "accuracy"),
                                first_step=1, last_step=config.num_steps)
  train_seconds = time.perf_counter() - t0
  eval_clips = None
  if eval_arrays is not None:
    full = jax.jit(jax.vmap(lambda p, s, c, y: full_pass_eval(p, c, y, config, bn_state=s),
                            in_axes=(0, 0, None, None)))
    res = full(state.params, state.bn_state, jnp.asarray(eval_arrays.clips),
               jnp.asarray(eval_arrays.labels))
    acc = np.asarray(res.correct) / np.asarray(res.count)
    eval_clips = int(np.asarray(res.count)[0])
  else:
    test_keys = jax.vmap(lambda k: jax.random.fold_in(k, 1_000_003))(seed_keys)
    # The same held-out stream for every model: derived from the seed, not the model.
    acc = np.asarray(jax.jit(jax.vmap(evaluate))(state.params, test_keys, state.bn_state))
  result = _result(config, acc, state.params, hist.get("loss"), train_seconds, eval_clips)
  writer.write(config.num_steps, test_accuracy=result["mean_accuracy"])
  writer.close()
  if ckpt is not None:
    ckpt.close()
  if return_params:
    return result, state.params
  return result


def stream_eval(params, bn_state, stream: streaming.ClipStream,
                config: ml_collections.ConfigDict) -> tuple[np.ndarray, int]:
  """Correct counts per seed (``params`` stacked over seeds) and the clip count, over one full
  pass of an evaluation ``stream`` (``train=False``: every clip once, padded rows masked) — the
  streaming form of :func:`full_pass_eval`."""
  if stream.train:
    raise ValueError("stream must be an evaluation stream (train=False): a training stream "
                     "shuffles, crops and drops clips")

  @jax.jit
  def hits(p, s, clips, labels, mask):
    def one(p_, s_):
      pred = jnp.argmax(network_logits(p_, s_, clips, config)[0], -1)
      return jnp.sum((pred == labels) & mask, dtype=jnp.int32)
    return jax.vmap(one)(p, s)

  correct, count = 0, 0
  for batch in stream.epoch(0):
    correct = correct + np.asarray(hits(params, bn_state, jnp.asarray(batch.clips, jnp.float32),
                                        jnp.asarray(batch.labels), jnp.asarray(batch.mask)))
    count += int(batch.mask.sum())
  return np.asarray(correct), count


def train_model_stream(config: ml_collections.ConfigDict, workdir: str | None,
                       train_stream: streaming.ClipStream, eval_stream: streaming.ClipStream, *,
                       progress: bool = True, return_params: bool = False):
  """:func:`train_model` for data sets read from disk batch by batch (Jester, IsoGD).

  Every seed of ``config.seeds`` trains at once (``vmap``) on the same batch sequence of
  ``train_stream`` (its own seed fixes the order and augmentation; the network seeds differ);
  ``config.num_steps`` steps run over as many epochs as that takes. A checkpoint is written every
  ``config.chunk_size`` steps; a resumed run restarts the stream at the batch after the
  checkpoint, so it sees exactly the batches an uninterrupted run would. Test accuracy is one
  full pass over ``eval_stream`` (:func:`stream_eval`). Memory holds only the stream's bounded
  buffer, never a whole split. With ``return_params``: ``(result, params stacked over seeds)``.
  """
  if not train_stream.train:
    raise ValueError("train_stream must be a training stream (train=True)")
  if len(train_stream) < 1:
    raise ValueError(f"train_stream has {train_stream.num_clips} clips, fewer than one batch "
                     f"of {train_stream.batch_size}")
  if train_stream.batch_size != config.batch_size:
    raise ValueError(f"train_stream.batch_size ({train_stream.batch_size}) must equal "
                     f"config.batch_size ({config.batch_size})")
  optimizer = make_optimizer(config)
  _, state, start, ckpt = _init_or_restore(config, workdir, make_train(config)[0])
  path = None if workdir is None else os.path.join(workdir, "metrics.jsonl")
  writer = metrics.MetricsWriter(path, log=False)
  step_fn = jax.jit(jax.vmap(lambda st, c, y: apply_batch(st, data.Clips(c, y), config, optimizer),
                             in_axes=(0, None, None)))
  per_epoch = len(train_stream)
  t0 = time.perf_counter()
  step = start
  with tqdm.tqdm(total=config.num_steps, initial=start, disable=not progress,
                 desc=config.variant if config.model == "convlstm_net" else config.model) as bar:
    while step < config.num_steps:
      epoch, first = divmod(step, per_epoch)
      for batch in train_stream.epoch(epoch, start=first):
        state, m = step_fn(state, jnp.asarray(batch.clips, jnp.float32),
                           jnp.asarray(batch.labels))
        step += 1
        writer.write(step, loss=np.asarray(m["loss"]).tolist(),
                     accuracy=np.asarray(m["accuracy"]).tolist())
        bar.update(1)
        if ckpt is not None and (step % config.chunk_size == 0 or step == config.num_steps):
          ckpt.save(step, state)
        if step >= config.num_steps:
          break
  train_seconds = time.perf_counter() - t0
  writer.close()
  hist = (metrics.read_history(path, ("loss",), first_step=1, last_step=config.num_steps)
          if path is not None else {})
  correct, count = stream_eval(state.params, state.bn_state, eval_stream, config)
  result = _result(config, correct / count, state.params, hist.get("loss"), train_seconds, count)
  if ckpt is not None:
    ckpt.close()
  return (result, state.params) if return_params else result


def _streams(config):
  """Training and evaluation streams of ``config.dataset`` (Jester or IsoGD) from disk."""
  common = dict(batch_size=config.batch_size, num_frames=config.num_frames, size=config.size,
                dtype="float32", seed=int(config.seeds[0]),
                num_workers=int(config.get("stream_workers", 4)),
                prefetch=int(config.get("stream_prefetch", 4)))
  if config.dataset == "jester":
    return (streaming.jester_stream(config.data_dir, "train", train=True, **common),
            streaming.jester_stream(config.data_dir, "validation", train=False, **common))
  return (streaming.isogd_stream(config.data_dir, "train_list.txt", train=True, **common),
          streaming.isogd_stream(config.data_dir, "valid_list.txt", train=False, **common))


def _variant_config(config, model_name, variant):
  c = config.copy_and_resolve_references()
  c.model = model_name
  c.variant = variant
  return c


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains every variant and control of ``config`` and writes ``<workdir>/results.json``.

  Results are written after each model, so a killed run keeps what finished (and its
  checkpoints let the interrupted model resume).
  """
  workdir_lib.prepare(workdir)  # a clear error naming the path before any work
  validation.check_hyperparameters(config)
  model.check_network(config)
  for name in config.controls:  # controls exist for the reduced network only: fail before work
    model.check_network(_variant_config(config, name, name))
  out_path = os.path.join(workdir, "results.json")
  results = {}
  if os.path.exists(out_path):
    with open(out_path, encoding="utf-8") as f:
      results = json.load(f)
  if config.dataset not in ("synthetic", "synthetic_cued", "recorded_motion", "jester", "isogd"):
    raise ValueError("config.dataset must be synthetic, synthetic_cued, recorded_motion, jester "
                     f"or isogd, got {config.dataset!r}")
  # Real data sets are read batch by batch from disk (streaming.ClipStream), never whole.
  streams = _streams(config) if config.dataset in ("jester", "isogd") else None
  try:
    todo = [("convlstm_net", v) for v in config.variants] + [(m, m) for m in config.controls]
    for model_name, variant in todo:
      if variant in results:
        continue
      c = _variant_config(config, model_name, variant)
      wd = os.path.join(workdir, variant)
      results[variant] = (train_model(c, wd) if streams is None
                          else train_model_stream(c, wd, *streams))
      with open(out_path, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1)
  finally:
    if streams is not None:
      for s in streams:
        s.close()
  return results


def format_table(results: dict) -> str:
  """Markdown table: model | cell params | test accuracy (mean ± std over seeds)."""
  lines = ["| model | cell params | test accuracy |", "|---|---|---|"]
  for name, r in results.items():
    acc = np.asarray(r["test_accuracy"])
    lines.append(f"| {name} | {r['cell_params']:,} | {100 * acc.mean():.1f} ± {100 * acc.std():.1f}% |")
  return "\n".join(lines)

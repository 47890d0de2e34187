"""Datasets of fogged games, training of the forward models, and evaluation against baselines."""

from __future__ import annotations

import functools
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

from jaxpapers._src import checkpoint, prng
from jaxpapers._src import metrics as metrics_io
from jaxpapers.defogger import features, metrics, model, world

N = world.NUM_TYPES


class Dataset(NamedTuple):
  """Sequences (games × perspectives) of model inputs and targets."""

  x: jax.Array  # [B, T, G, G, C]
  enemy_in: jax.Array  # [B, T, G, G, N]
  enemy_truth: jax.Array  # [B, T, G, G, N]
  visible: jax.Array  # [B, T, G, G]
  buildings: jax.Array  # [B, T, 5]


def game_config(config) -> world.GameConfig:
  return world.GameConfig(map_size=config.map_size, max_units=config.max_units,
                          num_frames=config.num_frames)


def feature_config(config) -> features.FeatureConfig:
  return features.FeatureConfig(kernel=config.kernel, stride=config.stride, skip=config.skip,
                                divide_by=config.divide_by)


def sequence_features(game: world.Game, perspective: int, config) -> Dataset:
  """Model inputs and targets of one (unbatched) game seen by ``perspective`` (one sequence).

  ``x`` always holds the memory channels (see :func:`model_inputs`): own counts (N), fogged enemy
  counts (N), the memory channels of :func:`features.memory_channels` (3N + 2), the map (4) and
  the time (1).
  """
  f = features.featurize(game, perspective, feature_config(config))
  enemy_in = f.inputs[..., N:]
  t = enemy_in.shape[0]
  parts = [f.inputs, features.memory_channels(enemy_in, f.visible),
           jnp.broadcast_to(f.game_map, (t,) + f.game_map.shape)]
  time_feat = jnp.broadcast_to(jnp.linspace(0, 1, t)[:, None, None, None], f.inputs.shape[:3] + (1,))
  parts.append(time_feat)
  return Dataset(jnp.concatenate(parts, -1), enemy_in, f.truth[..., N:], f.visible, f.buildings)


def model_inputs(x, config):
  """The model's input channels: all of ``x``, or without the memory channels when
  ``config.memory_channels`` is false (the reference's plain input)."""
  if config.memory_channels:
    return x
  return jnp.concatenate([x[..., :2 * N], x[..., 5 * N + 2:]], -1)


def delta_base(batch: Dataset, config):
  """What a delta count head adds its output to: the current enemy input (``delta_from =
  "input"``, the reference) or the last-seen memory of it (``"last_seen"``)."""
  if config.delta_from == "input":
    return batch.enemy_in
  if config.delta_from == "last_seen":
    return batch.x[..., 2 * N:3 * N]
  raise ValueError(f"delta_from must be 'input' or 'last_seen', got {config.delta_from!r}")


@functools.lru_cache(maxsize=8)
def _dataset_fn(num_games: int, gcfg: world.GameConfig, fcfg: features.FeatureConfig):
  cfg = ml_collections.ConfigDict({"kernel": fcfg.kernel, "stride": fcfg.stride, "skip": fcfg.skip,
                                   "divide_by": fcfg.divide_by})

  @jax.jit
  def make(k):
    games = world.generate_games(k, num_games, gcfg)

    def both(game):
      out = [sequence_features(game, p, cfg) for p in (0, 1)]
      return jax.tree.map(lambda a, b: jnp.stack([a, b]), *out)

    per_game = jax.vmap(both)(games)
    return jax.tree.map(lambda a: a.reshape((-1,) + a.shape[2:]), per_game)

  return make


def build_dataset(key: jax.Array, num_games: int, config) -> Dataset:
  """Generates ``num_games`` games and featurizes both player perspectives of each
  (sequences ``2i`` and ``2i + 1`` are game ``i``); compiled once per size and setting."""
  return _dataset_fn(int(num_games), game_config(config), feature_config(config))(key)


def split_dataset(data: Dataset, *num_games: int) -> list[Dataset]:
  """Splits a dataset into consecutive parts of ``num_games`` games each (2 sequences a game)."""
  out, i = [], 0
  for n in num_games:
    out.append(jax.tree.map(lambda a, i=i, n=n: a[2 * i:2 * (i + n)], data))
    i += n
  return out


def make_module(config) -> model.DefoggerStep:
  return model.DefoggerStep(encoder=config.encoder, hidden=config.hidden, levels=config.levels,
                            horizons=tuple(config.horizons), predict_delta=config.predict_delta,
                            gated=config.gated)


def _shift(a, s):
  """``a[:, t + s]`` aligned to ``t`` (the tail is padded and masked out by the caller)."""
  if s == 0:
    return a
  return jnp.concatenate([a[:, s:], jnp.zeros_like(a[:, :s])], axis=1)


def loss_fn(params, module, batch: Dataset, config):
  """Mean over horizons of: Huber count loss (``huber_delta``) + existence BCE (positives weighted
  by ``pos_weight``), both averaged over valid cells, + build-tree BCE + Huber loss (scale 1) of
  the enemy's total counts per type; the count, existence and total terms are weighted by
  ``count_weight``, ``exist_weight`` and ``army_weight``."""
  counts, exist, bt, army = unroll(module, params, batch, config)
  t = batch.x.shape[1]
  total = 0.0
  for k, s in enumerate(config.horizons):
    valid = (jnp.arange(t) < t - s).astype(jnp.float32)[None, :]
    tc = _shift(batch.enemy_truth, s)
    tb = _shift(batch.buildings, s)
    cell_mask = valid[..., None, None, None]
    huber = optax.huber_loss(counts[:, :, :, :, k], tc, delta=config.huber_delta)
    w = jnp.where(tc > 0, config.pos_weight, 1.0)
    bce = optax.sigmoid_binary_cross_entropy(exist[:, :, :, :, k], (tc > 0).astype(jnp.float32)) * w
    bt_loss = optax.sigmoid_binary_cross_entropy(bt[:, :, k], tb)
    denom = jnp.sum(valid) * np.prod(tc.shape[2:])
    total = total + config.count_weight * jnp.sum(huber * cell_mask) / denom
    total = total + config.exist_weight * jnp.sum(bce * cell_mask) / denom
    total = total + jnp.sum(bt_loss * valid[..., None]) / (jnp.sum(valid) * bt.shape[-1])
    army_loss = optax.huber_loss(army[:, :, k], tc.sum(axis=(2, 3)))
    total = total + config.army_weight * jnp.sum(army_loss * valid[..., None]) / (jnp.sum(valid) * N)
  return total / len(config.horizons)


def unroll(module, params, batch: Dataset, config):
  """Model outputs over time; ``config.recurrent = False`` resets the state every step (the
  ablation)."""
  return model.unroll(module, params, model_inputs(batch.x, config), delta_base(batch, config),
                      recurrent=config.recurrent)


class TrainState(NamedTuple):
  params: Any
  opt_state: Any
  key: jax.Array


def make_optimizer(config):
  return optax.chain(optax.clip_by_global_norm(config.grad_clip), optax.adam(config.learning_rate))


def train(config, train_set: Dataset, workdir: str | None = None, *, progress: bool = True):
  """Trains one model; ``config.games_per_update`` sequences per update, full BPTT."""
  module = make_module(config)
  optimizer = make_optimizer(config)
  key = jax.random.key(config.seed)
  channels = model_inputs(train_set.x[:1, :1], config).shape[-1]
  params = model.init(key, module, 1, train_set.x.shape[2], channels)
  state = TrainState(params, optimizer.init(params), jax.random.fold_in(key, 1))

  @jax.jit
  def update(st, i, data):
    idx = jax.random.randint(prng.step_key(st.key, i), (config.games_per_update,), 0, data.x.shape[0])
    batch = jax.tree.map(lambda a: a[idx], data)
    loss, grads = jax.value_and_grad(loss_fn)(st.params, module, batch, config)
    updates, opt_state = optimizer.update(grads, st.opt_state, st.params)
    return TrainState(optax.apply_updates(st.params, updates), opt_state, st.key), loss

  start = 0
  ckpt = writer = None
  if workdir is not None:
    ckpt = checkpoint.Checkpointer(os.path.join(workdir, "ckpt"))
    restored = ckpt.restore(state)
    if restored is not None:
      state, start = restored
    writer = metrics_io.MetricsWriter(os.path.join(workdir, "metrics.jsonl"), log=False)
  # One jitted update per Python iteration, not ``lax.scan`` chunks of updates: on XLA:CPU the
  # convolution gradients run ~30× slower inside a loop body than as a top-level computation
  # (measured: 0.16 s per update at top level vs 8.8 s as a length-1 scan).
  losses = []
  with tqdm.tqdm(total=config.num_steps, initial=start, desc=f"defogger {config.encoder}",
                 disable=not progress, leave=False) as bar:
    for i in range(start, config.num_steps):
      state, loss = update(state, jnp.int32(i), train_set)
      losses.append(loss)
      bar.update(1)
      if (i + 1) % config.chunk_size == 0 or i + 1 == config.num_steps:
        last = float(loss)
        if writer is not None:
          writer.write(i + 1, loss=last)
        if ckpt is not None:
          ckpt.save(i + 1, state)
  hist = {"loss": np.asarray(jax.device_get(losses), np.float32)}
  if ckpt is not None:
    ckpt.close()
  if writer is not None:
    writer.close()
  return module, state.params, hist


def predict(module, params, data: Dataset, config, batch_size: int = 16):
  """Model outputs on every sequence of ``data``: counts (clipped at 0), existence probabilities,
  build-tree probabilities and total counts per type (clipped at 0), as NumPy arrays. Runs in batches of ``batch_size`` sequences (the
  last one padded, so that the function compiles once)."""
  fn = _predict_fn(module, _predict_config(config))
  n = data.x.shape[0]
  outs = []
  for i in range(0, n, batch_size):
    batch = jax.tree.map(lambda a: a[i:i + batch_size], data)
    pad = batch_size - batch.x.shape[0]
    if pad:
      batch = jax.tree.map(lambda a: jnp.concatenate([a, jnp.zeros((pad,) + a.shape[1:], a.dtype)]),
                           batch)
    outs.append(jax.tree.map(np.asarray, fn(params, batch)))
  return tuple(np.concatenate(x)[:n] for x in zip(*outs))


def _predict_config(config):
  return tuple((k, config[k]) for k in ("memory_channels", "delta_from", "recurrent"))


@functools.lru_cache(maxsize=16)
def _predict_fn(module, cfg_items):
  cfg = dict(cfg_items)
  cfg = ml_collections.ConfigDict(cfg)

  @jax.jit
  def fn(params, batch):
    c, e, b, a = unroll(module, params, batch, cfg)
    return jnp.maximum(c, 0.0), jax.nn.sigmoid(e), jax.nn.sigmoid(b), jnp.maximum(a, 0.0)

  return fn


def _valid(a, s):
  return a[:, : a.shape[1] - s] if s else a


def evaluate_predictions(pred_counts, pred_exist, pred_bt, data: Dataset, s: int):
  """Metrics at horizon ``s`` (inputs up to ``T − s``; targets shifted by ``s``)."""
  tc = _valid(np.asarray(_shift(data.enemy_truth, s)), s)
  tb = _valid(np.asarray(_shift(data.buildings, s)), s)
  out = metrics.defogger_metrics(_valid(pred_counts, s), _valid(pred_exist, s), _valid(pred_bt, s), tc,
                                 tb, _valid(np.asarray(data.visible), s))
  return {k: float(v) for k, v in out.items()}


def gate_counts(counts, exist, thresholds):
  """The model's count prediction: the count regression ``[..., H, N]`` where the existence head
  says the type is present (probability above ``thresholds[h]`` of horizon ``h``), else 0.

  The count head is trained with a Huber loss whose optimum in a cell that is usually empty is a
  small positive value; the existence head decides whether a type is there at all, which is what
  an error summed over mostly empty cells rewards.
  """
  thr = np.asarray(thresholds, np.float32)[:, None]
  return np.where(np.asarray(exist) > thr, np.asarray(counts), 0.0)


def baseline_predictions(data: Dataset, map_stats=None, map_threshold: float = 0.5):
  """``{name: (counts, exist, bt)}`` for the rule-based baselines on every sequence.

  ``map_stats = (mean counts, existence frequency, building frequency)`` per step and cell over
  training games gives the per-map statistics baseline (existence where the frequency exceeds
  ``map_threshold``).
  """
  ei = data.enemy_in
  seen_bt = lambda c: (c.sum(axis=(2, 3)) > 0)[..., jnp.asarray(world.BUILDING_TYPES)]
  mem = jax.vmap(features.perfect_memory)(ei)
  prev = jax.vmap(features.previously_seen)(ei, data.visible)
  out = {
      "input_only": (ei, ei > 0, seen_bt(ei)),
      "memory": (mem, mem > 0, seen_bt(mem)),
      "memory_tech": (mem, mem > 0, jax.vmap(features.memory_tech_buildings)(ei) > 0),
      "previously_seen": (prev, prev > 0, seen_bt(prev)),
  }
  if map_stats is not None:
    counts, prob, bt_prob = map_stats
    b = ei.shape[0]
    rep = lambda a: jnp.broadcast_to(a, (b,) + a.shape)
    out["map_statistics"] = (rep(counts), rep(prob > map_threshold), rep(bt_prob > map_threshold))
  return {k: tuple(np.asarray(a) for a in v) for k, v in out.items()}


THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def _tune_threshold(probs, data, s, key):
  """Existence threshold maximising ``key`` F1 on validation data."""
  best, best_t = -1.0, 0.5
  for thr in THRESHOLDS:
    p = probs[0], probs[1] > thr, probs[2] > thr
    m = evaluate_predictions(*p, data, s)
    if m[key] > best:
      best, best_t = m[key], thr
  return best_t


def model_config(config, name: str):
  """``config`` with the overrides of model ``name`` (``config.models[name]``) applied."""
  c = config.copy_and_resolve_references()
  for k, v in config.models[name].items():
    setattr(c, k, v)
  return c


def evaluate_model(module, params, config, val_set: Dataset, test_set: Dataset):
  """Held-out metrics of a trained model at every horizon of ``config.horizons``.

  Existence thresholds (for ``hid_u`` and for ``op_bt``) are tuned on ``val_set``; returns
  ``({s: metrics on test_set}, [hid_u threshold per horizon])``.
  """
  val_pred = predict(module, params, val_set, config)
  test_pred = predict(module, params, test_set, config)
  out, thresholds = {}, []
  for k, s in enumerate(config.horizons):
    vp = (val_pred[0][..., k, :], val_pred[1][..., k, :], val_pred[2][:, :, k])
    thresholds.append(_tune_threshold(vp, val_set, s, "hid_u"))
    thr_bt = _tune_threshold(vp, val_set, s, "op_bt")
    exist = test_pred[1][..., k, :] > thresholds[-1]
    out[s] = evaluate_predictions(test_pred[0][..., k, :] * exist, exist,
                                  test_pred[2][:, :, k] > thr_bt, test_set, s)
  return out, thresholds


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       models: dict | None = None, progress: bool = True) -> dict:
  """Generates train/validation/test games, trains the model(s), evaluates them and the
  baselines on the held-out test games, and runs the downstream bot experiment.

  Writes a results table per horizon to ``<workdir>/results.json`` (updated as each model
  finishes). Existence thresholds (model and per-map statistics) are tuned on the validation
  games. When ``models`` is a dict it receives ``{name: (module, params, config, thresholds)}``.
  """
  os.makedirs(workdir, exist_ok=True)
  key = jax.random.key(config.seed)
  t0 = time.perf_counter()
  data = build_dataset(jax.random.fold_in(key, 0),
                       config.train_games + config.val_games + config.test_games, config)
  train_set, val_set, test_set = split_dataset(data, config.train_games, config.val_games,
                                               config.test_games)
  jax.block_until_ready(test_set)
  results: dict[str, Any] = {"data_seconds": time.perf_counter() - t0, "horizons": {}}
  et = train_set.enemy_truth
  map_stats = (et.mean(0), (et > 0).mean(0), train_set.buildings.mean(0))
  map_thr, best = 0.5, -1.0
  for thr in THRESHOLDS:
    m = evaluate_predictions(*baseline_predictions(val_set, map_stats, thr)["map_statistics"],
                             val_set, 0)["hid_u"]
    if m > best:
      map_thr, best = thr, m
  base = baseline_predictions(test_set, map_stats, map_thr)
  for s in config.horizons:
    results["horizons"][str(s)] = {name: evaluate_predictions(*p, test_set, s) for name, p in base.items()}
  results["thresholds"] = {"map_statistics": map_thr}
  out_path = os.path.join(workdir, "results.json")

  def save():
    with open(out_path, "w", encoding="utf-8") as f:
      json.dump(results, f, indent=1)

  save()
  bot_model = None
  for name in config.models:
    c = model_config(config, name)
    t1 = time.perf_counter()
    module, params, hist = train(c, train_set, os.path.join(workdir, name), progress=progress)
    results.setdefault("train_seconds", {})[name] = time.perf_counter() - t1
    metrics_by_horizon, thresholds = evaluate_model(module, params, c, val_set, test_set)
    for s, m in metrics_by_horizon.items():
      results["horizons"][str(s)][name] = m
    results["thresholds"][name] = thresholds
    results.setdefault("final_loss", {})[name] = float(np.mean(hist["loss"][-10:]))
    if models is not None:
      models[name] = (module, params, c, thresholds)
    if name == "ml":
      bot_model = (module, params, c, thresholds)
    save()
  # the downstream bot experiment (win rates with / without the defogger) on fresh games
  from jaxpapers.defogger import bot  # noqa: PLC0415  (bot imports this module)

  module, params, c, thresholds = bot_model if bot_model is not None else (None, None, config, None)
  t2 = time.perf_counter()
  results["bot"] = bot.evaluate_bots(jax.random.fold_in(key, 7), int(config.bot_games), c, module,
                                     params)
  results["bot_seconds"] = time.perf_counter() - t2
  results["total_seconds"] = time.perf_counter() - t0
  save()
  return results


def format_tables(results: dict) -> str:
  """One markdown table per horizon: method | op_bt F1 | hid_u F1 | nmy_u F1 | L1 | L1 hidden."""
  lines = []
  for s, rows in results["horizons"].items():
    lines += [f"\nhorizon s = {s}", "| method | op_bt F1 | hid_u F1 | nmy_u F1 | L1 | L1 hidden |",
              "|---|---|---|---|---|---|"]
    for name, m in rows.items():
      lines.append(f"| {name} | {m['op_bt']:.3f} | {m['hid_u']:.3f} | {m['nmy_u']:.3f} | "
                   f"{m['l1']:.4f} | {m['l1_hidden']:.4f} |")
  if "bot" in results:
    b = results["bot"]
    lines += [f"\ndownstream bot ({b['num_games']} games, decisions at frame {b['decision_frame']})",
              "| bot | win rate | switch to keep/inf/heavy/air | composition L1 | target error |",
              "|---|---|---|---|---|"]
    for name, w in b["win_rate"].items():
      if name == "scripted":
        lines.append(f"| scripted | {w:.3f} | — | — | — |")
        continue
      comp = b["composition_error"].get(name)
      lines.append(f"| {name} | {w:.3f} | {'/'.join(map(str, b['choice'][name]))} | "
                   f"{'—' if comp is None else f'{comp:.1f}'} | {b['target_error'][name]:.1f} |")
  return "\n".join(lines)

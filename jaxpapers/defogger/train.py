"""Datasets of fogged games, training of the forward models, and evaluation against baselines."""

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

from jaxpapers._src import checkpoint, loop, prng
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
  """Model inputs and targets of one (unbatched) game seen by ``perspective`` (one sequence)."""
  f = features.featurize(game, perspective, feature_config(config))
  enemy_in = f.inputs[..., N:]
  t = enemy_in.shape[0]
  parts = [f.inputs]
  if config.memory_channels:
    parts.append(features.memory_channels(enemy_in, f.visible))
  parts.append(jnp.broadcast_to(f.game_map, (t,) + f.game_map.shape))
  time_feat = jnp.broadcast_to(jnp.linspace(0, 1, t)[:, None, None, None], f.inputs.shape[:3] + (1,))
  parts.append(time_feat)
  return Dataset(jnp.concatenate(parts, -1), enemy_in, f.truth[..., N:], f.visible, f.buildings)


def build_dataset(key: jax.Array, num_games: int, config) -> Dataset:
  """Generates ``num_games`` games and featurizes both player perspectives of each."""
  gcfg = game_config(config)

  @jax.jit
  def make(k):
    games = world.generate_games(k, num_games, gcfg)

    def both(game):
      out = [sequence_features(game, p, config) for p in (0, 1)]
      return jax.tree.map(lambda a, b: jnp.stack([a, b]), *out)

    per_game = jax.vmap(both)(games)
    return jax.tree.map(lambda a: a.reshape((-1,) + a.shape[2:]), per_game)

  return make(key)


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
  counts, exist, bt = unroll(module, params, batch, config.recurrent)
  t = batch.x.shape[1]
  total = 0.0
  for k, s in enumerate(config.horizons):
    valid = (jnp.arange(t) < t - s).astype(jnp.float32)[None, :]
    tc = _shift(batch.enemy_truth, s)
    tb = _shift(batch.buildings, s)
    cell_mask = valid[..., None, None, None]
    huber = optax.huber_loss(counts[:, :, :, :, k], tc)
    w = jnp.where(tc > 0, config.pos_weight, 1.0)
    bce = optax.sigmoid_binary_cross_entropy(exist[:, :, :, :, k], (tc > 0).astype(jnp.float32)) * w
    bt_loss = optax.sigmoid_binary_cross_entropy(bt[:, :, k], tb)
    denom = jnp.sum(valid) * np.prod(tc.shape[2:])
    total = total + jnp.sum(huber * cell_mask) / denom + jnp.sum(bce * cell_mask) / denom
    total = total + jnp.sum(bt_loss * valid[..., None]) / (jnp.sum(valid) * bt.shape[-1])
  return total / len(config.horizons)


def unroll(module, params, batch: Dataset, recurrent: bool = True):
  """Model outputs over time; ``recurrent=False`` resets the state every step (the ablation)."""
  if recurrent:
    return model.unroll(module, params, batch.x, batch.enemy_in)
  b, t, g = batch.x.shape[:3]
  state = module.initial_state(b * t, g)
  flat = lambda a: a.reshape((b * t,) + a.shape[2:])
  _, outs = module.apply(params, state, flat(batch.x), flat(batch.enemy_in))
  return jax.tree.map(lambda a: a.reshape((b, t) + a.shape[1:]), outs)


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
  params = model.init(key, module, 1, train_set.x.shape[2], train_set.x.shape[-1])
  state = TrainState(params, optimizer.init(params), jax.random.fold_in(key, 1))

  def step(st, i, data):
    idx = jax.random.randint(prng.step_key(st.key, i), (config.games_per_update,), 0, data.x.shape[0])
    batch = jax.tree.map(lambda a: a[idx], data)
    loss, grads = jax.value_and_grad(loss_fn)(st.params, module, batch, config)
    updates, opt_state = optimizer.update(grads, st.opt_state, st.params)
    return TrainState(optax.apply_updates(st.params, updates), opt_state, st.key), {"loss": loss}

  start = 0
  ckpt = writer = None
  if workdir is not None:
    ckpt = checkpoint.Checkpointer(os.path.join(workdir, "ckpt"))
    restored = ckpt.restore(state)
    if restored is not None:
      state, start = restored
    writer = metrics_io.MetricsWriter(os.path.join(workdir, "metrics.jsonl"), log=False)

  def on_chunk(st, s, last):
    if writer is not None:
      writer.write(s, loss=last["loss"])
    if ckpt is not None:
      ckpt.save(s, st)

  state, hist = loop.run_chunked(step, state, config.num_steps, chunk_size=config.chunk_size,
                                 start_step=start, desc=f"defogger {config.encoder}",
                                 progress=progress, on_chunk=on_chunk, args=(train_set,))
  if ckpt is not None:
    ckpt.close()
  if writer is not None:
    writer.close()
  return module, state.params, hist


def predict(module, params, data: Dataset, config, batch_size: int = 16):
  """Model outputs on every sequence of ``data`` (in batches): counts, existence probs, bt probs."""
  fn = jax.jit(lambda p, b: unroll(module, p, b, config.recurrent))
  outs = []
  for i in range(0, data.x.shape[0], batch_size):
    c, e, b = fn(params, jax.tree.map(lambda a: a[i:i + batch_size], data))
    outs.append((np.asarray(c), np.asarray(jax.nn.sigmoid(e)), np.asarray(jax.nn.sigmoid(b))))
  return tuple(np.concatenate(x) for x in zip(*outs))


def _valid(a, s):
  return a[:, : a.shape[1] - s] if s else a


def evaluate_predictions(pred_counts, pred_exist, pred_bt, data: Dataset, s: int):
  """Metrics at horizon ``s`` (inputs up to ``T − s``; targets shifted by ``s``)."""
  tc = _valid(np.asarray(_shift(data.enemy_truth, s)), s)
  tb = _valid(np.asarray(_shift(data.buildings, s)), s)
  out = metrics.defogger_metrics(_valid(pred_counts, s), _valid(pred_exist, s), _valid(pred_bt, s), tc,
                                 tb, _valid(np.asarray(data.visible), s))
  return {k: float(v) for k, v in out.items()}


def baseline_predictions(data: Dataset, map_stats=None):
  """``{name: (counts, exist, bt)}`` for the rule-based baselines on every sequence."""
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
    out["map_statistics"] = (rep(counts), rep(prob > 0.5), rep(bt_prob > 0.5))
  return {k: tuple(np.asarray(a) for a in v) for k, v in out.items()}


def _tune_threshold(probs, data, s, key):
  """Existence threshold maximising ``key`` F1 on validation data."""
  best, best_t = -1.0, 0.5
  for thr in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
    p = probs[0], probs[1] > thr, probs[2] > thr
    m = evaluate_predictions(*p, data, s)
    if m[key] > best:
      best, best_t = m[key], thr
  return best_t


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Generates train/validation/test games, trains the model(s), and writes a results table per
  horizon (``<workdir>/results.json``, updated as each model finishes)."""
  os.makedirs(workdir, exist_ok=True)
  key = jax.random.key(config.seed)
  k_train, k_val, k_test = jax.random.split(key, 3)
  t0 = time.perf_counter()
  train_set = build_dataset(k_train, config.train_games, config)
  val_set = build_dataset(k_val, config.val_games, config)
  test_set = build_dataset(k_test, config.test_games, config)
  data_seconds = time.perf_counter() - t0
  et = train_set.enemy_truth
  map_stats = (et.mean(0), (et > 0).mean(0), train_set.buildings.mean(0))
  base = baseline_predictions(test_set, map_stats)
  results: dict[str, Any] = {"data_seconds": data_seconds, "horizons": {}}
  for s in config.horizons:
    results["horizons"][str(s)] = {name: evaluate_predictions(*p, test_set, s) for name, p in base.items()}
  out_path = os.path.join(workdir, "results.json")

  def save():
    with open(out_path, "w", encoding="utf-8") as f:
      json.dump(results, f, indent=1)

  save()
  bot_model = None
  for name, overrides in config.models.items():
    c = config.copy_and_resolve_references()
    for k, v in overrides.items():
      setattr(c, k, v)
    t1 = time.perf_counter()
    module, params, hist = train(c, train_set, os.path.join(workdir, name))
    results.setdefault("train_seconds", {})[name] = time.perf_counter() - t1
    val_pred = predict(module, params, val_set, c)
    test_pred = predict(module, params, test_set, c)
    for k, s in enumerate(config.horizons):
      vp = (val_pred[0][:, :, :, :, k], val_pred[1][:, :, :, :, k], val_pred[2][:, :, k])
      thr = _tune_threshold(vp, val_set, s, "hid_u")
      thr_bt = _tune_threshold(vp, val_set, s, "op_bt")
      tp = (test_pred[0][:, :, :, :, k], test_pred[1][:, :, :, :, k] > thr, test_pred[2][:, :, k] > thr_bt)
      results["horizons"][str(s)][name] = evaluate_predictions(*tp, test_set, s)
    results.setdefault("final_loss", {})[name] = float(np.mean(hist["loss"][-10:]))
    if name == "ml":
      bot_model = (module, params, c)
    save()
  # the downstream bot experiment (win rates with / without the defogger) on fresh games
  from jaxpapers.defogger import bot  # noqa: PLC0415  (bot imports this module)

  module, params, c = bot_model if bot_model is not None else (None, None, config)
  t2 = time.perf_counter()
  results["bot"] = bot.evaluate_bots(jax.random.fold_in(key, 7),
                                     int(config.get("bot_games", 4 * config.test_games)), c, module, params)
  results["bot_seconds"] = time.perf_counter() - t2
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
    lines += [f"\ndownstream bot ({b['num_games']} games, {b['num_rush']} where the bot rushes)",
              "| bot | win rate | win rate (rush) | target error |", "|---|---|---|---|"]
    for name, w in b["win_rate"].items():
      lines.append(f"| {name} | {w:.3f} | {b['win_rate_rush'][name]:.3f} | {b['target_error'][name]:.1f} |")
  return "\n".join(lines)

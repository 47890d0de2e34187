"""The Pipe-SGD comparison: PS-sync, PS-async, AllReduce-sync, Pipe-SGD, Pipe-SGD + compression.

Li et al. (NeurIPS 2018, Sec. 5) compare wall-clock time to a target accuracy. Here each method's
*optimisation* is run for real on a data-parallel mesh of ``num_workers`` devices (so the number
of iterations to the target, including the effect of stale or compressed gradients, is
measured), and each method's *iteration time* on the configured cluster comes from the timing
model of :mod:`~jaxpapers.pipe_sgd.timing` with the compute and update times measured on this
machine. The wall-clock prediction is their product. (Measured wall-clock under a shaped network
is in ``experiments/pipe_sgd/benchmark.py``.)

How each method's numerics are run:

* ``allreduce_sync`` and ``ps_sync``: width ``K = 1`` (both apply the exact average gradient;
  they differ only in time per iteration),
* ``pipe``: width ``K = 2`` (``w_{t+1} = w_t − η g_{t−1}``),
* ``pipe_compressed``: width 2, ring AllReduce compressing every hop,
* ``ps_async``: the ``p`` workers' gradients are applied one at a time by the server, each
  computed ``p − 1`` updates earlier (round-robin staleness), with step ``η/p`` per worker
  gradient so that ``p`` updates carry the same step size as one synchronous iteration; its
  "iteration" is ``p`` server updates.
"""

from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxpapers._src import workdir as workdir_lib
from jaxpapers._src.loop import run_chunked
from jaxpapers._src.metrics import MetricsWriter
from jaxpapers._src.prng import as_key
from jaxpapers.pipe_sgd import allreduce, data, models, pipeline, timing
from jaxpapers.pipe_sgd import config as pipe_config
from jaxpapers.pipe_sgd.compression import get_compressor
from jaxpapers.pipe_sgd.config import METHODS


def _method_numerics(method: str, cfg) -> tuple[int, str, bool]:
  """(width, compressor, async) of ``method``."""
  if method in ("ps_sync", "allreduce_sync"):
    return 1, "none", False
  if method == "pipe":
    return int(cfg.width), "none", False
  if method == "pipe_compressed":
    return int(cfg.width), cfg.compressor, False
  if method == "ps_async":
    return int(cfg.num_workers), "none", True
  raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")


def median_seconds(fn, *args, repeats: int = 20) -> float:
  """Median wall-clock seconds of ``fn(*args)`` over ``repeats`` calls, after one warm-up call."""
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t0)
  return float(np.median(times))


def mesh_size(p: int) -> int:
  """Devices to run ``p`` workers' numerics on: the largest divisor of ``p`` that is available.

  The averaged gradient of ``p`` equal shards is the gradient of the whole batch, so the
  iterates do not depend on how many devices share the work (tested on 1, 2, 4 and 8 devices);
  only the timing model uses ``p``.
  """
  return max(d for d in range(1, p + 1) if p % d == 0 and d <= jax.device_count())


def train_numerics(cfg, ds: data.Dataset, params, apply_fn, *, width: int, compressor: str,
                   is_async: bool, writer: MetricsWriter | None = None, tag: str = "") -> dict:
  """Runs one method's optimisation; returns its accuracy curve and iterations to the target."""
  p = int(cfg.num_workers)
  loss_fn = lambda w, b: models.cross_entropy_loss(apply_fn, w, b)
  steps, every, bs, lr = int(cfg.num_steps), int(cfg.eval_every), int(cfg.batch_size), cfg.learning_rate
  stream = data.stacked_batches(ds.x_train, ds.y_train, bs, steps, seed=int(cfg.seed))
  if is_async:  # one worker's shard per server update, p updates per iteration
    mesh = allreduce.default_mesh(1)
    stream = jax.tree.map(lambda a: a.reshape(steps * p, bs // p, *a.shape[2:]), stream)
    steps, every, lr = steps * p, every * p, lr / p
  else:
    mesh = allreduce.default_mesh(mesh_size(p))
  step = pipeline.make_train_step(loss_fn, mesh, width=width, learning_rate=lr,
                                  compressor=compressor)
  stream = jax.tree.map(jnp.asarray, stream)
  x_test, y_test = jnp.asarray(ds.x_test), jnp.asarray(ds.y_test)
  acc_fn = jax.jit(lambda w: models.accuracy(apply_fn, w, x_test, y_test))
  per_iter = p if is_async else 1

  def step_fn(carry, t):
    # the batches travel in the carry (an argument of the jitted chunk, not a baked-in constant)
    state, batches = carry
    state, metrics = step(state, jax.tree.map(lambda a: a[t], batches))
    return (state, batches), metrics

  curve = []

  def on_chunk(carry, t, last):
    acc = float(acc_fn(carry[0].params))
    it = t // per_iter
    curve.append((it, acc))
    if writer is not None:
      writer.write(it, **{f"{tag}/test_accuracy": acc, f"{tag}/loss": last["loss"]})

  carry = (pipeline.init_pipe_state(params, width), stream)
  _, hist = run_chunked(step_fn, carry, steps, chunk_size=every, progress=False,
                        on_chunk=on_chunk)
  target = float(cfg.target_accuracy)
  hit = next((it for it, acc in curve if acc >= target), None)
  return {"curve": curve, "final_accuracy": curve[-1][1], "iterations_to_target": hit,
          "final_loss": float(np.mean(hist["loss"][-every:]))}  # mean over the last eval period


def measure_costs(cfg, ds: data.Dataset, params, apply_fn) -> dict:
  """Measured local-gradient and update times of one worker (seconds) and the model size."""
  p = int(cfg.num_workers)
  loss_fn = lambda w, b: models.cross_entropy_loss(apply_fn, w, b)
  local_bs = int(cfg.batch_size) // p
  batch = {"x": jnp.asarray(ds.x_train[:local_bs]), "y": jnp.asarray(ds.y_train[:local_bs])}
  grad = jax.jit(jax.grad(loss_fn))
  update = jax.jit(lambda w, g: jax.tree.map(lambda a, b: a - 0.1 * b, w, g))
  g = grad(params, batch)
  n = int(sum(x.size for x in jax.tree.leaves(params)))
  t_comp = cfg.timing.t_comp if cfg.timing.t_comp >= 0 else median_seconds(grad, params, batch)
  t_up = cfg.timing.t_up if cfg.timing.t_up >= 0 else median_seconds(update, params, g)
  n_model = int(cfg.timing.model_size) if cfg.timing.model_size >= 0 else n
  return {"t_comp": float(t_comp), "t_up": float(t_up), "model_size": n_model}


def predicted_iteration_times(cfg, costs: dict) -> dict:
  """Per-iteration time of every method on the configured cluster (timing model, Sec. 3)."""
  tc = cfg.timing
  net = timing.network_from_bandwidth(tc.latency_s, tc.bandwidth_bytes_per_s, tc.gamma)
  p, n = int(cfg.num_workers), costs["model_size"]
  t_comp, t_up = costs["t_comp"], costs["t_up"]
  bits = get_compressor(cfg.compressor).bits
  return {
      "ps_sync": float(timing.ps_sync_time(net, p, n, t_comp, t_up)),
      "ps_async": float(timing.ps_async_time(net, p, n, t_comp, t_up)),
      "allreduce_sync": float(timing.allreduce_sync_time(net, p, n, t_comp, t_up)),
      "pipe": float(timing.pipe_sgd_time(net, p, n, t_comp, t_up, width=int(cfg.width))),
      "pipe_compressed": float(timing.pipe_sgd_time(net, p, n, t_comp, t_up, width=int(cfg.width),
                                                    bits=bits, zeta=tc.zeta)),
  }


def load_config_dataset(cfg) -> data.Dataset:
  """The dataset named by ``cfg.dataset`` (``cfg.data_dir`` or the default locations)."""
  if cfg.dataset == "digits":
    return data.load_digits(seed=int(cfg.seed))
  return data.load_dataset(cfg.dataset, cfg.data_dir or None)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Runs the comparison table of the paper at ``config``'s scale; returns the measured numbers.

  Writes ``<workdir>/metrics.jsonl`` (accuracy curves) and returns, per method, the measured
  iterations to ``target_accuracy``, the final accuracy, the predicted time per iteration and
  the predicted wall-clock to the target, plus the speedups of Pipe-SGD.
  """
  cfg = pipe_config.validate_config(config)
  for m in cfg.methods:
    _method_numerics(m, cfg)
  p = int(cfg.num_workers)
  if p < 1:
    raise ValueError(f"num_workers must be >= 1, got {p}")
  if int(cfg.batch_size) % p:
    raise ValueError(f"batch_size {cfg.batch_size} is not divisible by the device count {p}")
  workdir_lib.prepare(workdir)  # a clear error naming the path before any work
  ds = load_config_dataset(cfg)
  key = as_key(int(cfg.seed))
  params, apply_fn = models.init_model(key, cfg.model, ds.x_train.shape[1:], ds.num_classes,
                                       hidden=tuple(cfg.hidden), channels=tuple(cfg.channels))
  costs = measure_costs(cfg, ds, params, apply_fn)
  times = predicted_iteration_times(cfg, costs)
  results: dict = {"methods": {}, **costs, "num_workers": p, "devices_used": mesh_size(p)}
  cache: dict = {}
  with MetricsWriter(os.path.join(workdir, "metrics.jsonl"), log=False) as writer:
    for m in cfg.methods:
      numerics = _method_numerics(m, cfg)
      if numerics not in cache:
        width, comp, is_async = numerics
        cache[numerics] = train_numerics(cfg, ds, params, apply_fn, width=width, compressor=comp,
                                         is_async=is_async, writer=writer, tag=m)
      r = dict(cache[numerics])
      its = r["iterations_to_target"]
      r["iteration_time_s"] = times[m]
      r["time_to_target_s"] = None if its is None else its * times[m]
      results["methods"][m] = r
  ms = results["methods"]

  def ratio(a, b):
    if a not in ms or b not in ms or ms[a]["time_to_target_s"] in (None, 0):
      return None
    if ms[b]["time_to_target_s"] is None:
      return None
    return ms[a]["time_to_target_s"] / ms[b]["time_to_target_s"]

  results["speedup_pipe_vs_allreduce_sync"] = ratio("allreduce_sync", "pipe")
  results["speedup_pipe_compressed_vs_allreduce_sync"] = ratio("allreduce_sync", "pipe_compressed")
  results["speedup_pipe_compressed_vs_ps_sync"] = ratio("ps_sync", "pipe_compressed")
  results["speedup_pipe_compressed_vs_ps_async"] = ratio("ps_async", "pipe_compressed")
  return results


def format_table(results: dict) -> str:
  """The comparison table as Markdown (method, iterations, accuracy, model times)."""
  lines = ["| method | iterations to target | final acc | predicted s/iter | predicted s to target |",
           "|---|---|---|---|---|"]
  for m, r in results["methods"].items():
    its = "—" if r["iterations_to_target"] is None else str(r["iterations_to_target"])
    tt = "—" if r["time_to_target_s"] is None else f"{r['time_to_target_s']:.4g}"
    lines.append(f"| {m} | {its} | {r['final_accuracy']:.3f} | {r['iteration_time_s']:.4g} | {tt} |")
  return "\n".join(lines)

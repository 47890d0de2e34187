"""Measured wall-clock time to a target accuracy: the five methods of Li et al. as real processes.

Sec. 5 of the paper races PS-sync, PS-async, AllReduce-sync, Pipe-SGD and Pipe-SGD + compression
to a target accuracy on a 4-node cluster. Here every node is a process on an emulated cluster
(:mod:`~jaxpapers.pipe_sgd.cluster`: one shaped full-duplex NIC per node) and every method runs
for real — real gradients of the model on real data, real messages over the links:

* ``allreduce_sync`` / ``pipe`` / ``pipe_compressed``: ``p`` worker processes on one JAX mesh
  (gloo collectives over the shaped links); :func:`~jaxpapers.pipe_sgd.pipeline.run_overlapped`
  with width 1, width ``K`` (the AllReduce of step ``t`` on a second thread, overlapping the
  compute of ``t + 1``), and width ``K`` with the compressed ring AllReduce.
* ``ps_sync`` / ``ps_async``: a server process on node 0 and ``p`` workers on nodes 1..p, each
  worker with its own TCP connection to the server (as in ps-lite; the server's address is
  published in the runtime's key-value store), so every push and pull crosses the server's NIC.
  Sync: the server waits for all ``p`` gradients of step ``t``, applies their mean and sends
  ``w_{t+1}`` to every worker. Async: the server applies each gradient as it arrives with step
  ``η/p`` (``p`` updates carry one synchronous step) and answers that worker's push with the
  parameters after it (its next pull); the workers never wait for each other, and a gradient is
  as stale as the updates other workers made while it was computed (≈ ``p − 1``). (The
  coordination service's key-value store itself is no transport for parameters: a 338 KB value
  took 16.8 ms to set while a peer waited on it — 20 MB/s, below a 1 Gbit/s link.)

Every method uses the same data: at iteration ``t`` worker ``k`` takes shard ``k`` of the same
global minibatch. The clock starts after compilation, at a barrier; process 0 copies the
parameters every ``snapshot_every`` iterations (``p`` server updates are one PS-async
iteration) and evaluates the copies only after the race, so evaluation costs no race time.
"""

from __future__ import annotations

import argparse
import json
import selectors
import socket
import struct
import sys
import time
from collections.abc import Sequence

import numpy as np

from jaxpapers.pipe_sgd.config import METHODS
from jaxpapers.pipe_sgd.train import median_seconds

AR_METHODS = ("allreduce_sync", "pipe", "pipe_compressed")
PS_METHODS = ("ps_sync", "ps_async")
_TIMEOUT_MS = 600_000


def num_processes(method: str, num_workers: int) -> int:
  """Processes (= nodes) ``method`` runs on: the workers, plus a server for the PS methods."""
  if method not in METHODS:
    raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
  return num_workers + (1 if method in PS_METHODS else 0)


def check_settings(s: dict) -> dict:
  """Validates the race settings; raises ``ValueError`` naming the first bad one."""
  need = {"seed": int, "hidden": list, "num_workers": int, "batch_size": int,
          "learning_rate": float, "num_steps": int, "snapshot_every": int,
          "target_accuracy": float, "width": int, "compressor": str}
  for k, typ in need.items():
    if k not in s:
      raise ValueError(f"race settings lack {k!r}")
    v = s[k]
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) if typ is float else (
        isinstance(v, typ) and not isinstance(v, bool))
    if not ok:
      raise ValueError(f"race setting {k!r} must be {typ.__name__}, got {v!r}")
  for k in ("num_workers", "batch_size", "num_steps", "snapshot_every", "width"):
    if s[k] < 1:
      raise ValueError(f"race setting {k!r} must be >= 1, got {s[k]}")
  if s["batch_size"] % s["num_workers"]:
    raise ValueError(f"race setting batch_size={s['batch_size']} is not divisible by "
                     f"num_workers={s['num_workers']}")
  if not (s["learning_rate"] > 0 and np.isfinite(s["learning_rate"])):
    raise ValueError(f"race setting learning_rate must be finite and > 0, got {s['learning_rate']}")
  if not 0 <= s["target_accuracy"] <= 1:
    raise ValueError(f"race setting target_accuracy must be in [0, 1], got {s['target_accuracy']}")
  if s.get("model", "mlp") not in ("mlp", "cnn"):
    raise ValueError(f"race setting model must be 'mlp' or 'cnn', got {s.get('model')!r}")
  if not isinstance(s.get("data_file", ""), str):
    raise ValueError(f"race setting data_file must be a path string, got {s.get('data_file')!r}")
  return s


def prepare_data(dataset: str, folder: str, *, max_per_class: int = 1000,
                 archive: str | None = None) -> str:
  """Loads ``dataset`` once and saves it as ``folder/race_<dataset>_<max>.npz`` for the processes.

  ``"digits"`` needs no file (returns ``""``); ``"cifar10_jpeg"`` reads the JPEG archive
  ``archive`` (default: ``cifar10-jpeg`` in ``../shared/data``) — ``max_per_class`` training and
  ``max_per_class // 5`` test images per class.
  """
  import os

  from jaxpapers.pipe_sgd import data

  if dataset == "digits":
    return ""
  if dataset != "cifar10_jpeg":
    raise ValueError(f"dataset must be 'digits' or 'cifar10_jpeg', got {dataset!r}")
  path = os.path.join(folder, f"race_{dataset}_{max_per_class}.npz")
  if not os.path.exists(path):
    ds = data.load_cifar10_jpeg_tar(archive, max_per_class=max_per_class,
                                    max_test_per_class=max(1, max_per_class // 5))
    os.makedirs(folder, exist_ok=True)
    np.savez(path + ".tmp.npz", x_train=ds.x_train, y_train=ds.y_train, x_test=ds.x_test,
             y_test=ds.y_test)
    os.replace(path + ".tmp.npz", path)
  return path


def _problem(s: dict):
  """(dataset, initial flat params, unravel, apply_fn, host batch stream) — identical everywhere."""
  import jax
  from jax.flatten_util import ravel_pytree

  from jaxpapers.pipe_sgd import data, models

  if s.get("data_file"):
    try:
      with np.load(s["data_file"]) as z:
        ds = data.Dataset(z["x_train"], z["y_train"], z["x_test"], z["y_test"], 10)
    except (OSError, KeyError, ValueError) as e:
      raise ValueError(f"{s['data_file']}: not a race data file ({e})") from e
  else:
    ds = data.load_digits(seed=s["seed"])
  params, apply_fn = models.init_model(jax.random.key(s["seed"]), s.get("model", "mlp"),
                                       ds.x_train.shape[1:], ds.num_classes,
                                       hidden=tuple(s["hidden"]),
                                       channels=tuple(s.get("channels", (8, 16))))
  flat, unravel = ravel_pytree(params)
  stream = data.stacked_batches(ds.x_train, ds.y_train, s["batch_size"], s["num_steps"],
                                seed=s["seed"])
  return ds, np.asarray(flat, np.float32), unravel, apply_fn, stream


def _shard(stream: dict, t: int, k: int, p: int) -> dict:
  b = stream["x"].shape[1] // p
  return {"x": stream["x"][t, k * b:(k + 1) * b], "y": stream["y"][t, k * b:(k + 1) * b]}


def _grad_fn(unravel, apply_fn):
  """Jitted ``(flat params, batch) -> (flat gradient, loss)``."""
  import jax

  from jaxpapers.pipe_sgd import models

  def g(flat, batch):
    loss, grads = jax.value_and_grad(
        lambda w: models.cross_entropy_loss(apply_fn, unravel(w), batch))(flat)
    return grads, loss

  return jax.jit(g)


def _client():
  from jax._src import distributed as jdist

  return jdist.global_state.client


def _run_allreduce(s: dict, method: str) -> dict | None:
  """One AllReduce-family worker; process 0 returns its snapshots."""
  import jax

  from jaxpapers._src.mesh import P, make_mesh
  from jaxpapers.pipe_sgd import models, pipeline
  from jaxpapers.pipe_sgd.distributed import _global, _local_value

  ds, flat0, unravel, apply_fn, stream = _problem(s)
  mesh = make_mesh("data")
  p = mesh.shape["data"]
  if p != s["num_workers"]:
    raise ValueError(f"{method} needs num_workers={s['num_workers']} processes, got {p}")
  width, comp = {"allreduce_sync": (1, "none"), "pipe": (s["width"], "none"),
                 "pipe_compressed": (s["width"], s["compressor"])}[method]
  loss_fn = lambda w, b: models.cross_entropy_loss(apply_fn, unravel(w), b)
  compute_fn, reduce_fn = pipeline.make_overlap_fns(loss_fn, mesh, compressor=comp)
  params = _global(flat0, mesh, P())

  def batch(t):
    return {k: _global(stream[k][t], mesh, P("data")) for k in ("x", "y")}

  g, _ = compute_fn(params, batch(0))  # compile and warm the connections, outside the clock
  jax.block_until_ready(reduce_fn(g))
  t_comp = median_seconds(compute_fn, params, batch(0))
  snaps, every, clock = [], s["snapshot_every"], {}

  def start_clock():  # after run_overlapped has compiled its update step: no compile is timed
    _client().wait_at_barrier(f"race_start_{method}", _TIMEOUT_MS)
    clock["start"] = time.perf_counter()

  def snap(t, w):
    if (t + 1) % every == 0 and jax.process_index() == 0:
      snaps.append((t + 1, time.perf_counter() - clock["start"], _local_value(w).copy()))

  res = pipeline.run_overlapped(compute_fn, reduce_fn, params,
                                (batch(t) for t in range(s["num_steps"])), width=width,
                                learning_rate=s["learning_rate"], callback=snap,
                                before_start=start_clock)
  total = time.perf_counter() - clock["start"]
  if jax.process_index() != 0:
    return None
  return {"snapshots": snaps, "total_s": total, "t_comp_s": t_comp,
          "final_params": _local_value(res.params),
          "iteration_s": float(np.median(res.iteration_seconds[1:])),
          "model_size": int(flat0.size), "ds": ds, "apply_fn": apply_fn, "unravel": unravel}


_HEADER = struct.Struct("<qq")  # (version or step, payload bytes)


def _recv_exact(sock: socket.socket, n: int) -> bytearray:
  buf = bytearray(n)
  view, got = memoryview(buf), 0
  while got < n:
    k = sock.recv_into(view[got:], n - got)
    if k == 0:
      raise ConnectionError(f"peer closed the connection after {got} of {n} bytes")
    got += k
  return buf


def _send(sock: socket.socket, tag: int, x: np.ndarray):
  payload = np.ascontiguousarray(x, np.float32)
  sock.sendall(_HEADER.pack(tag, payload.nbytes))
  sock.sendall(memoryview(payload).cast("B"))


def _recv(sock: socket.socket) -> tuple[int, np.ndarray]:
  tag, size = _HEADER.unpack(_recv_exact(sock, _HEADER.size))
  return tag, np.frombuffer(_recv_exact(sock, size), np.float32)


def _connect_ps(host: str, p: int, pid: int):
  """The server listens on ``host`` and publishes its port in the runtime's key-value store;
  worker ``pid − 1`` connects and says who it is. Returns the server's sockets (by worker) or
  the worker's socket."""
  client = _client()
  if pid == 0:
    lst = socket.create_server((host, 0), backlog=p)
    client.key_value_set("race/ps_address", f"{host}:{lst.getsockname()[1]}")
    socks = [None] * p
    for _ in range(p):
      conn, _ = lst.accept()
      conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
      (k,) = struct.unpack("<q", _recv_exact(conn, 8))
      socks[k] = conn
    lst.close()
    return socks
  addr = client.blocking_key_value_get("race/ps_address", _TIMEOUT_MS)
  h, _, port = addr.rpartition(":")
  conn = socket.create_connection((h, int(port)))
  conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
  conn.sendall(struct.pack("<q", pid - 1))
  return conn


def _run_ps(s: dict, method: str, host: str) -> dict | None:
  """The server (process 0) or one worker (processes 1..p) of a parameter-server race."""
  import jax

  client, pid = _client(), jax.process_index()
  p = jax.process_count() - 1
  if p != s["num_workers"]:
    raise ValueError(f"{method} needs num_workers + 1 = {s['num_workers'] + 1} processes, "
                     f"got {p + 1}")
  ds, w, unravel, apply_fn, stream = _problem(s)
  grad = _grad_fn(unravel, apply_fn)
  lr, steps = float(s["learning_rate"]), s["num_steps"]
  conn = _connect_ps(host, p, pid)
  if pid == 0:
    t_comp = median_seconds(grad, w, _shard(stream, 0, 0, p))
  else:
    k = pid - 1
    jax.block_until_ready(grad(w, _shard(stream, 0, k, p)))
  client.wait_at_barrier(f"race_start_{method}", _TIMEOUT_MS)
  start = time.perf_counter()
  if pid != 0:  # worker k: pull, compute, push
    for t in range(steps):
      version, wt = _recv(conn)
      g, _ = grad(wt, _shard(stream, t, k, p))
      _send(conn, version, np.asarray(g, np.float32))
    conn.close()
    client.wait_at_barrier(f"race_end_{method}", _TIMEOUT_MS)
    return None
  socks, snaps, log, every = conn, [], [], s["snapshot_every"]
  for sock in socks:  # everyone's first pull
    _send(sock, 0, w)
  if method == "ps_sync":
    for t in range(steps):
      gs = [_recv(sock)[1] for sock in socks]
      w = w - lr * (np.sum(gs, axis=0) / p)
      if t + 1 < steps:
        for sock in socks:
          _send(sock, t + 1, w)
      if (t + 1) % every == 0:
        snaps.append((t + 1, time.perf_counter() - start, w.copy()))
  else:
    sel = selectors.DefaultSelector()
    for k, sock in enumerate(socks):
      sel.register(sock, selectors.EVENT_READ, k)
    pushed, version = [0] * p, 0
    while version < steps * p:
      for key, _ in sel.select():
        k = key.data
        used, g = _recv(socks[k])
        w = w - (lr / p) * g
        log.append((k, pushed[k], used))
        version += 1
        pushed[k] += 1
        if pushed[k] < steps:  # the reply to worker k's push: its next pull
          _send(socks[k], version, w)
        else:
          sel.unregister(socks[k])
        if version % (p * every) == 0:
          snaps.append((version // p, time.perf_counter() - start, w.copy()))
    sel.close()
  total = time.perf_counter() - start
  for sock in socks:
    sock.close()
  client.wait_at_barrier(f"race_end_{method}", _TIMEOUT_MS)
  return {"snapshots": snaps, "total_s": total, "t_comp_s": t_comp, "log": log, "final_params": w,
          "model_size": int(w.size), "ds": ds, "apply_fn": apply_fn, "unravel": unravel}


def _summarise(s: dict, method: str, out: dict) -> dict:
  """Accuracy of every snapshot (after the race) and the time to the target."""
  import jax

  from jaxpapers.pipe_sgd import models

  ds, apply_fn, unravel = out.pop("ds"), out.pop("apply_fn"), out.pop("unravel")
  acc = jax.jit(lambda f: models.accuracy(apply_fn, unravel(f), ds.x_test, ds.y_test))
  curve = [(int(it), float(sec), float(acc(w))) for it, sec, w in out.pop("snapshots")]
  hit = next(((it, sec) for it, sec, a in curve if a >= s["target_accuracy"]), None)
  res = {"method": method, "curve": curve, "final_accuracy": curve[-1][2] if curve else None,
         "iterations_to_target": hit[0] if hit else None,
         "time_to_target_s": hit[1] if hit else None, **out}
  if "log" in res:  # staleness of each applied gradient, in server updates
    log = res["log"]
    stale = [i - ver for i, (_, _, ver) in enumerate(log)]
    res["staleness_mean"] = float(np.mean(stale)) if stale else None
    res["staleness_max"] = int(np.max(stale)) if stale else None
  return res


def run_worker(s: dict, method: str, host: str = "127.0.0.1") -> tuple[dict, np.ndarray] | None:
  """Runs this process's part of ``method``'s race; process 0 returns (summary, final params).

  ``host``: process 0's address (where the parameter server listens).
  """
  check_settings(s)
  out = _run_allreduce(s, method) if method in AR_METHODS else _run_ps(s, method, host)
  if out is None:
    return None
  final = np.asarray(out.pop("final_params"), np.float32)
  return _summarise(s, method, out), final


def settings_from_config(rc, data_file: str = "") -> dict:
  """The race settings (JSON-able) from a config's ``race`` block (``data_file``: from
  :func:`prepare_data`)."""
  return check_settings({
      "model": str(rc.get("model", "mlp")), "channels": [int(c) for c in rc.get("channels", (8, 16))],
      "data_file": data_file,
      "seed": int(rc.seed), "hidden": [int(h) for h in rc.hidden],
      "num_workers": int(rc.num_workers), "batch_size": int(rc.batch_size),
      "learning_rate": float(rc.learning_rate), "num_steps": int(rc.num_steps),
      "snapshot_every": int(rc.snapshot_every), "target_accuracy": float(rc.target_accuracy),
      "width": int(rc.width), "compressor": str(rc.compressor)})


def run_method(s: dict, method: str, *, rate_bytes_per_s: float | None,
               timeout: float = 600.0, params_out: str | None = None) -> dict:
  """Races one method on a fresh cluster; returns process 0's summary.

  ``params_out``: a ``.npy`` path where process 0 saves the final flat parameters.
  """
  from jaxpapers.pipe_sgd import cluster

  check_settings(s)
  extra = [f"--params_out={params_out}"] if params_out else []
  outs = cluster.run(num_processes(method, s["num_workers"]), "jaxpapers.pipe_sgd.race",
                     [f"--method={method}", "--settings=" + json.dumps(s), *extra],
                     rate_bytes_per_s=rate_bytes_per_s, timeout=timeout)
  for line in outs[0].splitlines():
    if line.startswith("RESULT "):
      return json.loads(line[len("RESULT "):])
  raise RuntimeError(f"{method}: process 0 printed no RESULT line:\n{outs[0][-2000:]}")


def model_times(s: dict, runs: dict, rate_bytes_per_s: float, latency_s: float) -> dict:
  """The timing model's seconds per iteration of each method on the same links (Sec. 3).

  Each node has its own link of ``rate`` bytes/s (less the TCP/IP headers of 1500-byte
  packets); the compute time is each method's measured local gradient time.
  """
  from jaxpapers.pipe_sgd import timing
  from jaxpapers.pipe_sgd.compression import get_compressor
  from jaxpapers.pipe_sgd.netshape import TCP_IP_HEADER_BYTES

  net = timing.network_from_bandwidth(latency_s, rate_bytes_per_s * (1500 - TCP_IP_HEADER_BYTES)
                                      / 1500)
  p, out = s["num_workers"], {}
  for m, rs in runs.items():
    tc, n = float(np.median([r["t_comp_s"] for r in rs])), rs[0]["model_size"]
    out[m] = float({
        "allreduce_sync": lambda: timing.allreduce_sync_time(net, p, n, tc),
        "pipe": lambda: timing.pipe_sgd_time(net, p, n, tc, width=s["width"]),
        "pipe_compressed": lambda: timing.pipe_sgd_time(
            net, p, n, tc, width=s["width"], bits=get_compressor(s["compressor"]).bits),
        "ps_sync": lambda: timing.ps_sync_time(net, p, n, tc),
        "ps_async": lambda: timing.ps_async_time(net, p, n, tc)}[m]())
  return out


SPEEDUPS = tuple((a, b) for a in ("pipe", "pipe_compressed")
                 for b in ("allreduce_sync", "ps_sync", "ps_async"))


def summarise_race(s: dict, runs: dict, rate_bytes_per_s: float | None,
                   latency_s: float = 50e-6) -> dict:
  """Time to target per method and rerun, the speed-ups, their rerun spread and the model's."""
  reruns = len(next(iter(runs.values())))
  res = {"num_workers": s["num_workers"], "reruns": reruns,
         "rate_bytes_per_s": rate_bytes_per_s, "target_accuracy": s["target_accuracy"],
         "model_size": next(iter(runs.values()))[0]["model_size"]}
  model = model_times(s, runs, rate_bytes_per_s, latency_s) if rate_bytes_per_s else {}
  for m, rs in runs.items():
    res[f"{m}_time_to_target_s"] = [r["time_to_target_s"] for r in rs]
    res[f"{m}_iterations_to_target"] = [r["iterations_to_target"] for r in rs]
    res[f"{m}_final_accuracy"] = [r["final_accuracy"] for r in rs]
    res[f"{m}_t_comp_s"] = float(np.median([r["t_comp_s"] for r in rs]))
    its = [r["iterations_to_target"] for r in rs if r["iterations_to_target"] is not None]
    if m in model:
      res[f"{m}_model_iteration_s"] = model[m]
      res[f"{m}_model_time_to_target_s"] = model[m] * float(np.median(its)) if its else None
  for a, b in SPEEDUPS:
    if a not in runs or b not in runs:
      continue
    ta, tb = res[f"{a}_time_to_target_s"], res[f"{b}_time_to_target_s"]
    per = [y / x if x and y else None for x, y in zip(ta, tb)]
    key = f"speedup_{a}_vs_{b}"
    res[key] = per
    ok = [v for v in per if v is not None]
    res[key + "_median"] = float(np.median(ok)) if len(ok) == len(per) else None
    res[key + "_spread"] = float(max(ok) / min(ok) - 1.0) if len(ok) == len(per) else None
    ma, mb = res.get(f"{a}_model_time_to_target_s"), res.get(f"{b}_model_time_to_target_s")
    res[key + "_model"] = mb / ma if ma and mb else None
  meds = [res[f"speedup_{a}_vs_{b}_median"] for a, b in SPEEDUPS if f"speedup_{a}_vs_{b}" in res]
  res["max_speedup"] = max((v for v in meds if v is not None), default=None)
  fastest = []
  for i in range(reruns):
    t = {m: res[f"{m}_time_to_target_s"][i] for m in runs}
    reached = {m: v for m, v in t.items() if v is not None}
    fastest.append(min(reached, key=reached.get) if reached else None)
  res["fastest"] = fastest
  return res


def race(s: dict, methods: Sequence[str] = METHODS, *, rate_bytes_per_s: float | None,
         reruns: int = 3, timeout: float = 600.0, latency_s: float = 50e-6,
         on_run=None) -> dict:
  """Races ``methods`` ``reruns`` times (every method once per rerun, in turn).

  Args:
    s: race settings (:func:`settings_from_config`).
    methods: which of the five methods to race.
    rate_bytes_per_s: each node's link rate; ``None`` runs unshaped on the loopback.
    reruns: complete reruns of the whole race (their spread is reported).
    timeout: seconds allowed for one method's run.
    latency_s: the model's per-message latency α.
    on_run: optional ``on_run(rerun, method, result)`` after each run (to save progress).

  Returns:
    :func:`summarise_race`'s dict, plus ``runs`` (every method's per-rerun summaries).
  """
  check_settings(s)
  if not methods:
    raise ValueError("methods must name at least one method")
  for m in methods:
    if m not in METHODS:
      raise ValueError(f"methods must be among {list(METHODS)}, got {m!r}")
  if isinstance(reruns, bool) or not isinstance(reruns, int) or reruns < 1:
    raise ValueError(f"reruns must be an integer >= 1, got {reruns!r}")
  runs = {m: [] for m in methods}
  for i in range(reruns):
    for m in methods:
      r = run_method(s, m, rate_bytes_per_s=rate_bytes_per_s, timeout=timeout)
      r.pop("log", None)
      runs[m].append(r)
      if on_run is not None:
        on_run(i, m, r)
  return {**summarise_race(s, runs, rate_bytes_per_s, latency_s), "runs": runs}


def format_table(res: dict) -> str:
  """A text table of :func:`race`'s result: time to target per method and rerun, the model's."""
  methods = [m for m in METHODS if f"{m}_time_to_target_s" in res]
  fmt = lambda v, u="s": "—" if v is None else (f"{v:.3f} {u}" if u else f"{v}")
  lines = [f"{'method':<16} {'time to target (measured, per rerun)':<40} {'iterations':<16} "
           f"{'model':>10}"]
  for m in methods:
    t = ", ".join(fmt(v) for v in res[f"{m}_time_to_target_s"])
    its = ", ".join(fmt(v, "") for v in res[f"{m}_iterations_to_target"])
    lines.append(f"{m:<16} {t:<40} {its:<16} {fmt(res.get(f'{m}_model_time_to_target_s')):>10}")
  for k in sorted(res):
    if k.startswith("speedup_") and k.endswith("_median"):
      base = k[:-len("_median")]
      lines.append(f"{base[len('speedup_'):]:<36} measured {fmt(res[k], 'x')} "
                   f"(reruns {', '.join(fmt(v, 'x') for v in res[base])}; spread "
                   f"{fmt(res[base + '_spread'], '')}) model {fmt(res.get(base + '_model'), 'x')}")
  return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
  """Worker entry point (``python -m jaxpapers.pipe_sgd.race``, started by ``cluster.run``)."""
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--coordinator", required=True)
  ap.add_argument("--num_processes", type=int, required=True)
  ap.add_argument("--process_id", type=int, required=True)
  ap.add_argument("--method", required=True, choices=METHODS)
  ap.add_argument("--settings", required=True, help="JSON of the race settings")
  ap.add_argument("--params_out", default=None, help="process 0 saves the final flat params here")
  a = ap.parse_args(argv)
  s = check_settings(json.loads(a.settings))
  if a.num_processes != num_processes(a.method, s["num_workers"]):
    ap.error(f"--method={a.method} with num_workers={s['num_workers']} runs on "
             f"{num_processes(a.method, s['num_workers'])} processes, got {a.num_processes}")
  from jaxpapers.pipe_sgd import distributed

  distributed.initialize(a.coordinator, a.num_processes, a.process_id)
  import jax

  res = run_worker(s, a.method, a.coordinator.rpartition(":")[0])
  if res is not None:
    if a.params_out:
      np.save(a.params_out, res[1])
    print("RESULT " + json.dumps(res[0]), flush=True)
  jax.distributed.shutdown()
  return 0


if __name__ == "__main__":
  sys.exit(main())

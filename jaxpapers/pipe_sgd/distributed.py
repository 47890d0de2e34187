"""Multi-process Pipe-SGD on JAX's distributed runtime (Li et al., NeurIPS 2018).

Each worker of the paper's cluster is one process. ``jax.distributed.initialize`` connects the
processes through a coordinator; on CPU the collectives go through gloo (TCP), on GPU through
NCCL. The same :func:`~jaxpapers.pipe_sgd.pipeline.make_train_step` then runs unchanged on a
mesh that spans every process's devices.

Local runs (tests, the network-shaped benchmark)::

  results = launch_local(2, ["--mode=train", "--steps=20"], timeout=120)

A real multi-host cluster: start one process per host (or per GPU) with the same coordinator
address, e.g. on host ``i`` of ``p``::

  python -m jaxpapers.pipe_sgd.distributed --coordinator=HOST0:12355 --num_processes=p \\
      --process_id=i --mode=train --steps=1000 --width=2 --compressor=truncate16 --out=/tmp/w

(``--collectives=nccl`` is implied on GPU; ``gloo`` is used for CPU devices.)

Trust model. Everything here assumes a private network of mutually trusted hosts, as in the
paper's cluster. Process 0 runs JAX's coordination service (gRPC) on the ``--coordinator`` port;
it has no authentication or encryption, so any host that can reach the port can join as a worker,
read the run's key-value store or stall/kill the job, and the gloo collectives exchange gradients
as plain TCP. The coordinator therefore binds only to the address named in ``--coordinator``
(``coordinator_bind_address``; JAX's default is every interface, ``[::]``) — override with
``--coordinator_bind_address`` only deliberately. Run it behind a firewall or on an isolated
VLAN/VPN, never on an address reachable from the internet; local runs (:func:`launch_local`)
use ``127.0.0.1``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

MODES = ("train", "allreduce", "overlap", "suite")


def free_port() -> int:
  """A currently free TCP port on localhost (bound and released by the OS)."""
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind(("127.0.0.1", 0))
    return int(s.getsockname()[1])


def coordinator_bind_address(coordinator: str, bind: str | None = None) -> str:
  """The ``host:port`` process 0's coordination service listens on.

  Defaults to the coordinator address itself (its host's interface only), rather than JAX's
  default of every interface (see the trust model in the module docstring).

  Raises:
    ValueError: if ``coordinator`` (or ``bind``) is not ``host:port`` with a port in [1, 65535].
  """
  for name, addr in (("coordinator", coordinator), ("coordinator_bind_address", bind)):
    if addr is None:
      continue
    host, sep, port = str(addr).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
      raise ValueError(f"{name} must be 'host:port', got {addr!r}")
  return coordinator if bind is None else bind


def initialize(coordinator: str, num_processes: int, process_id: int,
               collectives: str = "gloo", timeout_s: int = 60, bind_address: str | None = None):
  """Connects this process to the others (call before any other JAX work).

  Args:
    coordinator: ``host:port`` of process 0.
    num_processes: number of processes ``p``.
    process_id: this process's index in ``[0, p)``.
    collectives: CPU collectives backend, ``"gloo"`` (or ``"mpi"``); ignored on GPU (NCCL).
    timeout_s: how long to wait for the other processes.
    bind_address: where process 0's coordinator listens (default: ``coordinator``'s address,
      see :func:`coordinator_bind_address`).

  Raises:
    ValueError: bad ``num_processes``/``process_id``/addresses/``collectives``.
  """
  import jax

  if isinstance(num_processes, bool) or not isinstance(num_processes, int) or num_processes < 1:
    raise ValueError(f"num_processes must be an integer >= 1, got {num_processes!r}")
  if isinstance(process_id, bool) or not isinstance(process_id, int) or not (
      0 <= process_id < num_processes):
    raise ValueError(f"process_id must be in [0, {num_processes}), got {process_id!r}")
  if collectives not in ("gloo", "mpi"):
    raise ValueError(f"collectives must be 'gloo' or 'mpi', got {collectives!r}")
  bind = coordinator_bind_address(coordinator, bind_address)
  jax.config.update("jax_cpu_collectives_implementation", collectives)
  jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                             process_id=process_id, initialization_timeout=timeout_s,
                             coordinator_bind_address=bind)


def _global(x, mesh, spec):
  """A global array from the same host value on every process (each takes its own slices)."""
  import jax
  from jax.sharding import NamedSharding

  x = np.asarray(x)
  return jax.make_array_from_callback(x.shape, NamedSharding(mesh, spec), lambda idx: x[idx])


def _local_value(x) -> np.ndarray:
  """The value of a replicated global array, read from this process's first shard."""
  return np.asarray(x.addressable_shards[0].data)


def tiny_problem(seed: int = 0, n: int = 64, d: int = 10, k: int = 3):
  """A small softmax-regression problem ``(params, loss_fn, x, y)`` used by the 2-process test."""
  import jax

  from jaxpapers.pipe_sgd import models

  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, d)).astype(np.float32)
  w_true = rng.normal(size=(d, k)).astype(np.float32)
  y = np.argmax(x @ w_true, axis=1).astype(np.int32)
  params = jax.tree.map(np.asarray, models.init_mlp(jax.random.key(seed), d, (8,), k))
  loss = lambda w, b: models.cross_entropy_loss(models.mlp_apply, w, b)
  return params, loss, x, y


def run_tiny(mesh, *, seed: int = 0, steps: int = 20, width: int = 2, learning_rate: float = 0.2,
             compressor: str = "none", batch_size: int = 16) -> dict:
  """Trains :func:`tiny_problem` with Pipe-SGD on ``mesh``; returns the final params (NumPy).

  Works the same on a single-process mesh and on a mesh spanning several processes: every
  process builds the same host data and contributes its slices of each global array.

  Raises:
    ValueError: ``steps`` < 1, or ``batch_size`` outside [1, 64] (the problem's size) or not
      divisible by the mesh's device count.
  """
  import jax

  from jaxpapers._src.mesh import P
  from jaxpapers.pipe_sgd import pipeline

  params, loss, x, y = tiny_problem(seed)
  if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
    raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
  if (isinstance(batch_size, bool) or not isinstance(batch_size, int)
      or not 1 <= batch_size <= len(y)):
    raise ValueError(f"batch_size must be an integer in [1, {len(y)}], got {batch_size!r}")
  if batch_size % mesh.shape["data"]:
    raise ValueError(f"batch_size {batch_size} is not divisible by the device count "
                     f"{mesh.shape['data']}")
  rng = np.random.default_rng(seed + 1)
  idx = np.stack([rng.choice(len(y), batch_size, replace=False) for _ in range(steps)])
  stream = {"x": _global(x[idx], mesh, P(None, "data")), "y": _global(y[idx], mesh, P(None, "data"))}
  state = pipeline.init_pipe_state(params, width)
  state = jax.tree.map(lambda a: _global(a, mesh, P()), state)
  step = pipeline.make_train_step(loss, mesh, width=width, learning_rate=learning_rate,
                                  compressor=compressor)
  state, metrics = jax.jit(lambda s, b: jax.lax.scan(step, s, b))(state, stream)
  return {"params": jax.tree.map(_local_value, state.params),
          "loss": _local_value(metrics["loss"])}


def time_allreduce(mesh, n: int, repeats: int = 5, method: str = "psum",
                   compressor: str = "none", stat: str = "median") -> float:
  """Median (or ``stat="min"``) wall-clock seconds of one AllReduce of ``n`` float32 per device.

  ``method="psum"`` is the backend's collective (gloo/NCCL); ``"ring"`` is this package's
  ``ppermute`` ring, which can compress its messages with ``compressor``.
  """
  import jax

  from jaxpapers._src.mesh import P
  from jaxpapers.pipe_sgd.allreduce import make_allreduce

  p = mesh.shape["data"]
  fn = make_allreduce(mesh, method=method, compressor=compressor)
  x = _global(np.ones((p, n), np.float32), mesh, P("data"))
  jax.block_until_ready(fn(x))  # compile and warm the connections
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(x))
    times.append(time.perf_counter() - t0)
  return float(np.min(times) if stat == "min" else np.median(times))


def time_overlap(mesh, n: int, compute_seconds: float, steps: int = 8,
                 comm_seconds: float | None = None) -> dict:
  """Wall-clock of synchronous (K = 1) vs pipelined (K = 2) SGD with real communication.

  The "model" is a vector of ``n`` float32 whose gradient takes ``compute_seconds`` to compute
  (a host-side sleep standing in for the GPU's forward/backward, so compute does not compete
  with the communication for the CPU cores); the AllReduce of the gradient is a real
  ``lax.pmean`` over ``mesh`` (across processes in a distributed run). With ``mesh=None`` and
  ``comm_seconds`` the reduction is a host-side wait of that length instead (one device has
  nothing to communicate; this checks the two-thread schedule alone).
  """
  import jax

  from jaxpapers._src.mesh import P, shard_map
  from jaxpapers.pipe_sgd import pipeline

  if mesh is None:
    if comm_seconds is None:
      raise ValueError("comm_seconds is required when mesh is None")
    grads, w0 = np.zeros(1, np.float32), np.zeros(1, np.float32)

    def reduce(g):
      time.sleep(comm_seconds)
      return g
  else:
    p = mesh.shape["data"]
    reduce = jax.jit(shard_map(lambda g: jax.lax.pmean(g[0], "data"), mesh, in_specs=P("data"),
                               out_specs=P()))
    grads = _global(np.ones((p, n), np.float32) * 1e-3, mesh, P("data"))
    w0 = _global(np.zeros(n, np.float32), mesh, P())
    jax.block_until_ready(reduce(grads))

  def compute(params, batch):
    time.sleep(compute_seconds)
    return grads, 0.0

  out = {}
  for width in (1, 2):
    res = pipeline.run_overlapped(compute, reduce, w0, range(steps), width=width,
                                  learning_rate=0.1)
    out[f"iter_s_width{width}"] = float(np.median(res.iteration_seconds[1:]))
    out[f"total_s_width{width}"] = res.total_seconds
  out["allreduce_s"] = comm_seconds if mesh is None else time_allreduce(mesh, n, repeats=3)
  return out


def measure_zeta(compressor: str, m: int, repeats: int = 5) -> float:
  """Seconds per element to encode + decode a message of ``m`` float32 here (the model's ζ)."""
  import jax

  from jaxpapers.pipe_sgd.compression import roundtrip

  fn = jax.jit(lambda v: roundtrip(v, compressor))
  x = jax.numpy.asarray(np.random.default_rng(0).normal(size=m).astype(np.float32))
  jax.block_until_ready(fn(x))
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(x))
    times.append(time.perf_counter() - t0)
  return float(np.median(times)) / m


def time_suite(mesh, n: int, steps: int = 8) -> dict:
  """Everything the benchmark compares with the timing model, in one launch.

  AllReduce times of the backend ``psum`` and of the ``ppermute`` ring uncompressed, with
  truncation and with 8-bit quantization; the model's parameters measured here (latency α from a
  one-element ring, reduction cost γ and (de)compression cost ζ per element); and the synchronous vs pipelined iteration times with compute set equal to
  the measured ``psum`` time (compute ≈ communication).
  """
  import jax

  p = mesh.shape["data"]
  out = {"allreduce_psum_s": time_allreduce(mesh, n, repeats=3)}
  # α: a ring AllReduce of one element per rank is 2(p - 1) latency-bound hops
  # (the minimum over repeats: latency is what remains without scheduling noise)
  out["alpha"] = time_allreduce(mesh, p, repeats=10, method="ring", stat="min") / (2 * (p - 1))
  # γ: seconds per element of the reduction (one add of two chunks) on this CPU
  m = -(-n // p)
  add = jax.jit(lambda a, b: a + b)
  a = jax.numpy.ones(m, jax.numpy.float32)
  jax.block_until_ready(add(a, a))
  t0 = time.perf_counter()
  for _ in range(5):
    jax.block_until_ready(add(a, a))
  out["gamma"] = (time.perf_counter() - t0) / 5 / m
  for comp in ("none", "truncate16", "quantize8"):
    out[f"allreduce_ring_{comp}_s"] = time_allreduce(mesh, n, repeats=3, method="ring",
                                                     compressor=comp)
    if comp != "none":
      out[f"zeta_{comp}"] = measure_zeta(comp, -(-n // p))
  out.update(time_overlap(mesh, n, out["allreduce_psum_s"], steps=steps))
  out["compute_s"] = out["allreduce_psum_s"]
  return out


class LaunchResult(NamedTuple):
  """One local process of :func:`launch_local`: return code, stdout, stderr."""

  returncode: int
  stdout: str
  stderr: str


def worker_command(coordinator: str, num_processes: int, process_id: int,
                   args: Sequence[str], module: str = "jaxpapers.pipe_sgd.distributed"
                   ) -> list[str]:
  """The command line of one worker process (``python -m module`` with the runtime's flags)."""
  return [sys.executable, "-m", module, f"--coordinator={coordinator}",
          f"--num_processes={num_processes}", f"--process_id={process_id}", *args]


def launch_local(num_processes: int, args: Sequence[str] = (), *, timeout: float = 120.0,
                 prefix: Sequence[str] = (), env: dict | None = None) -> list[LaunchResult]:
  """Starts ``num_processes`` local workers on a fresh port and waits for all of them.

  Args:
    num_processes: ``p`` (>= 1).
    args: extra worker flags (``--mode``, ``--steps``, ``--out``, …).
    timeout: hard wall-clock limit in seconds; every worker still running is killed after it.
    prefix: a command prefix for each worker (e.g. a network-namespace wrapper).
    env: extra environment variables.

  Raises:
    RuntimeError: a worker failed or the run timed out (with the tail of its stderr).
  """
  if num_processes < 1:
    raise ValueError(f"num_processes must be >= 1, got {num_processes}")
  coordinator = f"127.0.0.1:{free_port()}"
  full_env = dict(os.environ)
  full_env.update({"JAX_PLATFORMS": "cpu", "XLA_FLAGS": "", "PYTHONUNBUFFERED": "1"})
  full_env.update(env or {})
  return run_all([[*prefix, *worker_command(coordinator, num_processes, i, args)]
                  for i in range(num_processes)], timeout=timeout, env=full_env)


def die_with_parent():
  """``preexec_fn``: the child gets SIGTERM when the process that started it dies (Linux), so a
  killed run leaves no workers or namespaces behind."""
  import ctypes
  import signal

  try:
    ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
  except (OSError, AttributeError):
    pass


def run_all(cmds: Sequence[Sequence[str]], *, timeout: float, env: dict | None = None
            ) -> list[LaunchResult]:
  """Starts every command at once, waits for all and returns their results in order.

  Each process dies with the one that started it (``PR_SET_PDEATHSIG``), and a SIGTERM that
  arrives while they start waits until all of them are known to the clean-up, so a killed run
  leaves none behind.

  Raises:
    RuntimeError: a process failed (with the tail of its stderr) or the run timed out (every
      process still running is killed).
  """
  import signal

  procs, results = [], []
  deadline = time.monotonic() + timeout
  try:
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
      for c in cmds:
        procs.append(subprocess.Popen(list(c), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, env=env, preexec_fn=die_with_parent))
    finally:
      signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
    for proc in procs:
      out, err = proc.communicate(timeout=max(0.1, deadline - time.monotonic()))
      results.append(LaunchResult(proc.returncode, out, err))
  except subprocess.TimeoutExpired as e:
    raise RuntimeError(f"distributed run timed out after {timeout} s") from e
  finally:
    for proc in procs:
      if proc.poll() is None:
        proc.kill()
        proc.wait()
  for i, r in enumerate(results):
    if r.returncode != 0:
      raise RuntimeError(f"worker {i} exited with {r.returncode}:\n{r.stderr[-3000:]}")
  return results


def main(argv: Sequence[str] | None = None) -> int:
  """Worker entry point (``python -m jaxpapers.pipe_sgd.distributed``)."""
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--coordinator", required=True)
  ap.add_argument("--num_processes", type=int, required=True)
  ap.add_argument("--process_id", type=int, required=True)
  ap.add_argument("--coordinator_bind_address", default=None,
                  help="where process 0's coordinator listens (default: --coordinator's address)")
  ap.add_argument("--collectives", default="gloo", choices=("gloo", "mpi"))
  ap.add_argument("--mode", choices=MODES, default="train")
  ap.add_argument("--steps", type=int, default=20)
  ap.add_argument("--width", type=int, default=2)
  ap.add_argument("--learning_rate", type=float, default=0.2)
  ap.add_argument("--batch_size", type=int, default=16,
                  help="global batch per step in --mode=train (divisible by the device count)")
  ap.add_argument("--compressor", default="none")
  ap.add_argument("--method", default="psum", choices=("psum", "ring"),
                  help="AllReduce implementation timed in --mode=allreduce")
  ap.add_argument("--seed", type=int, default=0)
  ap.add_argument("--n", type=int, default=1 << 20, help="elements per AllReduce (timing modes)")
  ap.add_argument("--compute_seconds", type=float, default=0.1)
  ap.add_argument("--out", default=None, help="folder for process 0's result")
  a = ap.parse_args(argv)
  if a.batch_size < 1:
    ap.error(f"--batch_size must be >= 1, got {a.batch_size}")
  initialize(a.coordinator, a.num_processes, a.process_id, a.collectives,
             bind_address=a.coordinator_bind_address)
  import jax

  from jaxpapers._src.mesh import make_mesh

  mesh = make_mesh("data")
  if a.mode == "train":
    res = run_tiny(mesh, seed=a.seed, steps=a.steps, width=a.width,
                   learning_rate=a.learning_rate, compressor=a.compressor,
                   batch_size=a.batch_size)
    if a.out and jax.process_index() == 0:
      os.makedirs(a.out, exist_ok=True)
      flat = {"/".join(str(getattr(k, "key", k)) for k in path): v
              for path, v in jax.tree_util.tree_flatten_with_path(res["params"])[0]}
      np.savez(os.path.join(a.out, "params.npz"), loss=res["loss"], **flat)
  else:
    if a.mode == "allreduce":
      res = {"allreduce_s": time_allreduce(mesh, a.n, method=a.method, compressor=a.compressor)}
    elif a.mode == "overlap":
      res = time_overlap(mesh, a.n, a.compute_seconds, steps=a.steps)
    else:
      res = time_suite(mesh, a.n, steps=a.steps)
    res.update(p=a.num_processes, n=a.n)
    if jax.process_index() == 0:
      print("RESULT " + json.dumps(res), flush=True)
  jax.distributed.shutdown()
  return 0


if __name__ == "__main__":
  sys.exit(main())

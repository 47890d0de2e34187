"""Pipe-SGD training step: data-parallel SGD with a width-K gradient pipeline (Li et al., 2018).

With pipeline width ``K`` the AllReduce of iteration ``t`` runs while iterations
``t + 1, …, t + K − 1`` compute, so the update applied after iteration ``t`` uses the averaged
gradient of iteration ``t − K + 1``::

    g_t = mean_i ∇f_i(w_t; batch_t^i)                 (AllReduce / p)
    w_{t+1} = w_t − η · g_{t−K+1},                    g_s := 0 for s < 0 (pipeline fill)

``K = 1`` is synchronous data-parallel SGD and ``K = 2`` is the paper's Pipe-SGD,
``w_{t+1} = w_t − η · g_{t−1}``. The state keeps the ``K − 1`` reduced gradients still "in
flight" as a queue.

Any optax ``GradientTransformation`` can take the place of ``w − η·g`` (momentum, Adam, learning
rate schedules): ``(u, s') = opt.update(g_{t−K+1}, s, w_t)``, ``w_{t+1} = w_t + u``. The
optimizer is stepped only when a gradient arrives, so the ``K − 1`` pipeline-fill iterations leave
both ``w`` and the optimizer state (momentum, schedule count) unchanged. ``warmup_steps = W``
runs the first ``W`` iterations synchronously (``w_{t+1} = w_t + u(g_t)``); the pipeline then
refills, applying ``g_{t−K+1}`` from iteration ``t = W + K − 1`` on (a warm-up gradient is never
applied twice).

:func:`make_train_step` builds the step as one ``shard_map`` program (the numerics; XLA:CPU does
not overlap a collective with compute inside one program). :func:`run_overlapped` runs the same
recursion with the AllReduce issued from a second host thread, which does overlap it with the
next iterations' compute (the paper's two-thread worker design), and returns wall-clock times.
"""

from __future__ import annotations

import collections
import concurrent.futures
import itertools
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxpapers._src.mesh import P, shard_map
from jaxpapers.pipe_sgd.allreduce import tree_ring_allreduce
from jaxpapers.pipe_sgd.compression import get_compressor

REDUCTIONS = ("pmean", "ring")


class PipeState(NamedTuple):
  """State of Pipe-SGD.

  Attributes:
    params: model parameters ``w_t`` (replicated on every worker).
    pending: the ``K − 1`` averaged gradients whose AllReduce is in flight, oldest first
      (``()`` for ``K = 1``).
    step: iteration counter ``t`` (int32 scalar).
    opt_state: the optax optimizer's state (``optax.sgd(η)``'s by default).
  """

  params: Any
  pending: tuple
  step: jax.Array
  opt_state: Any = ()


def check_width(width) -> int:
  """Validates the pipeline width ``K`` (an integer >= 1) and returns it."""
  if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 1:
    raise ValueError(f"width (pipeline width K) must be an integer >= 1, got {width!r}")
  return int(width)


def init_pipe_state(params, width: int = 2, optimizer=None) -> PipeState:
  """Initial state: ``w_0 = params``, ``K − 1`` zero gradients filling the pipeline and
  ``optimizer.init(params)`` (default: plain SGD, which has no state to speak of).

  Raises:
    ValueError: bad ``width``.
    TypeError: ``optimizer`` is not an optax ``GradientTransformation``.
  """
  width = check_width(width)
  optimizer = _resolve_optimizer(optimizer, None)
  zeros = jax.tree.map(jnp.zeros_like, params)
  return PipeState(params, tuple(zeros for _ in range(width - 1)), jnp.zeros((), jnp.int32),
                   optimizer.init(params))


def _check_learning_rate(learning_rate):
  if callable(learning_rate):  # an optax schedule step -> rate
    return learning_rate
  if (isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float, np.number))
      or not np.isfinite(learning_rate) or not learning_rate > 0):
    raise ValueError("learning_rate must be a finite number > 0 or an optax schedule, got "
                     f"{learning_rate!r}")
  return float(learning_rate)


def _resolve_optimizer(optimizer, learning_rate) -> optax.GradientTransformation:
  """``optimizer``, or ``optax.sgd(learning_rate)`` (default 0.1) when it is ``None``."""
  if optimizer is None:
    return optax.sgd(_check_learning_rate(0.1 if learning_rate is None else learning_rate))
  if learning_rate is not None:
    raise ValueError("pass either optimizer or learning_rate, not both (put the learning rate "
                     "or schedule into the optax optimizer)")
  if not isinstance(optimizer, optax.GradientTransformation):
    raise TypeError("optimizer must be an optax.GradientTransformation, got "
                    f"{type(optimizer).__name__}")
  return optimizer


def check_warmup(warmup_steps) -> int:
  """Validates the number of synchronous warm-up iterations (an integer >= 0)."""
  if (isinstance(warmup_steps, bool) or not isinstance(warmup_steps, (int, np.integer))
      or warmup_steps < 0):
    raise ValueError(f"warmup_steps must be an integer >= 0, got {warmup_steps!r}")
  return int(warmup_steps)


def _resolve_reduction(reduction, compressor):
  if reduction is None:
    reduction = "pmean" if compressor.name == "none" else "ring"
  if reduction not in REDUCTIONS:
    raise ValueError(f"reduction must be one of {list(REDUCTIONS)}, got {reduction!r}")
  if reduction == "pmean" and compressor.name != "none":
    raise ValueError(f"compressor {compressor.name!r} needs reduction='ring' "
                     "(lax.pmean cannot compress its messages)")
  return reduction


def check_batch(batch, num_devices: int, name: str = "batch"):
  """Raises ``ValueError`` unless every leaf's leading dimension divides by ``num_devices``."""
  leaves = jax.tree.leaves(batch)
  if not leaves:
    raise ValueError(f"{name} is empty")
  for leaf in leaves:
    if not hasattr(leaf, "shape") or leaf.ndim < 1:
      raise ValueError(f"{name} leaves need a leading batch dimension, got {leaf!r}")
    if leaf.shape[0] % num_devices:
      raise ValueError(f"{name} size {leaf.shape[0]} is not divisible by the device count "
                       f"{num_devices}")


def make_train_step(loss_fn: Callable[[Any, Any], jax.Array], mesh: jax.sharding.Mesh, *,
                    width: int = 2, learning_rate: float | Callable | None = None,
                    optimizer: optax.GradientTransformation | None = None,
                    warmup_steps: int = 0, compressor: str = "none",
                    reduction: str | None = None, axis_name: str = "data"):
  """Returns the pure step ``step(state, batch) -> (state, metrics)`` of Pipe-SGD.

  Each device computes ``∇ loss_fn(w_t, batch shard)``, the gradients are averaged over
  ``axis_name`` (``lax.pmean``, or the ring of :mod:`~jaxpapers.pipe_sgd.allreduce` compressing
  each hop), pushed into the pipeline queue, and the oldest queued average is applied:
  ``w_{t+1} = w_t − η·g_{t−K+1}``.

  Args:
    loss_fn: ``loss_fn(params, batch) -> scalar`` mean loss on a batch (a pytree whose leaves
      have a leading batch axis).
    mesh: device mesh with a data axis ``axis_name``.
    width: pipeline width ``K`` (1 = synchronous SGD; the paper uses 2).
    learning_rate: SGD step size ``η`` (> 0) or an optax schedule ``t -> η_t`` (default 0.1);
      only without ``optimizer``.
    optimizer: any optax ``GradientTransformation`` (momentum, Adam, schedules, chains); the
      state must then come from ``init_pipe_state(params, width, optimizer)``.
    warmup_steps: synchronous (``K = 1``) iterations before the pipeline starts.
    compressor: ``"none"``, ``"truncate16"`` or ``"quantize8"`` (needs the ring reduction).
    reduction: ``"pmean"`` or ``"ring"`` (default: pmean without compression, ring with it).
    axis_name: the mesh axis the batch is split over.

  Returns:
    A jittable function. ``metrics`` holds ``loss`` (the mean loss at ``w_t``) and
    ``grad_norm`` (the norm of the freshly averaged gradient).

  Raises:
    ValueError: bad width, warm-up, learning rate, compressor or reduction, or both
      ``learning_rate`` and ``optimizer`` (here); a batch whose size does not divide by the number
      of devices or a state built for another width/optimizer (when the step is called).
    TypeError: ``loss_fn`` not callable, ``optimizer`` not an optax transformation.
  """
  width = check_width(width)
  warmup = check_warmup(warmup_steps)
  if not callable(loss_fn):
    raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
  opt = _resolve_optimizer(optimizer, learning_rate)
  c = get_compressor(compressor)
  reduction = _resolve_reduction(reduction, c)
  if axis_name not in mesh.shape:
    raise ValueError(f"axis_name {axis_name!r} is not an axis of the mesh {dict(mesh.shape)}")
  p = mesh.shape[axis_name]

  def local(params, pending, opt_state, t, batch):
    loss, grads = jax.value_and_grad(loss_fn)(params, batch)
    if reduction == "pmean":
      avg = jax.lax.pmean(grads, axis_name)
    else:
      avg = jax.tree.map(lambda g: g / p, tree_ring_allreduce(grads, axis_name, p, c))
    loss = jax.lax.pmean(loss, axis_name)
    if width == 1:
      applied, new_pending, arrived = avg, (), jnp.asarray(True)
    else:
      # Warm-up iterations apply their own gradient; afterwards g_{t-K+1} arrives if it was
      # computed after the warm-up (earlier ones were applied already or are pipeline fill).
      sync = t < warmup
      arrived = jnp.logical_or(sync, t - (width - 1) >= warmup)
      applied = jax.tree.map(lambda a, b: jnp.where(sync, a, b), avg, pending[0])
      new_pending = tuple(pending[1:]) + (avg,)
    updates, stepped_state = opt.update(applied, opt_state, params)
    stepped = optax.apply_updates(params, updates)
    new_params, new_opt_state = jax.tree.map(lambda a, b: jnp.where(arrived, a, b),
                                             (stepped, stepped_state), (params, opt_state))
    gnorm = jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in jax.tree.leaves(avg)))
    return new_params, new_pending, new_opt_state, {"loss": loss, "grad_norm": gnorm}

  sharded = shard_map(local, mesh, in_specs=(P(), P(), P(), P(), P(axis_name)),
                      out_specs=(P(), P(), P(), P()))

  def step(state: PipeState, batch):
    if not isinstance(state, PipeState):
      raise TypeError(f"state must be a PipeState, got {type(state).__name__}")
    if len(state.pending) != width - 1:
      raise ValueError(f"state holds {len(state.pending)} pending gradients but width={width} "
                       f"needs {width - 1}; build it with init_pipe_state(params, {width})")
    want = jax.tree.structure(jax.eval_shape(opt.init, state.params))
    if jax.tree.structure(state.opt_state) != want:
      raise ValueError("state.opt_state does not match the optimizer's state; build the state "
                       f"with init_pipe_state(params, {width}, optimizer)")
    check_batch(batch, p)
    params, pending, opt_state, metrics = sharded(state.params, state.pending, state.opt_state,
                                                  state.step, batch)
    return PipeState(params, pending, state.step + 1, opt_state), metrics

  return step


class OverlapResult(NamedTuple):
  """Result of :func:`run_overlapped`.

  Attributes:
    params: final parameters ``w_T``.
    losses: per-iteration mean loss at ``w_t`` (NumPy array).
    iteration_seconds: wall-clock seconds of each iteration (NumPy array).
    total_seconds: wall-clock seconds of the whole run (waiting for in-flight reductions).
    opt_state: the optimizer's final state.
  """

  params: Any
  losses: np.ndarray
  iteration_seconds: np.ndarray
  total_seconds: float
  opt_state: Any = ()


def run_overlapped(compute_fn: Callable, reduce_fn: Callable, params, batches: Iterable, *,
                   width: int = 2, learning_rate: float | Callable | None = None,
                   optimizer: optax.GradientTransformation | None = None,
                   warmup_steps: int = 0,
                   callback: Callable[[int, Any], None] | None = None,
                   before_start: Callable[[], None] | None = None) -> OverlapResult:
  """Runs Pipe-SGD with the AllReduce on a second host thread (real compute/comm overlap).

  The main ("compute") thread computes local gradients at ``w_t``; the communication thread
  (one worker, so reductions run one at a time like messages on one network link) averages
  them. After computing iteration ``t`` the compute thread waits only for the reduction of
  iteration ``t − K + 1``, applies it, then hands gradient ``t`` to the communication thread, so
  with ``K = 2`` the AllReduce of ``t`` overlaps the compute of ``t + 1``. ``K = 1`` reduces and
  applies its own gradient before moving on (synchronous SGD), and so do the first
  ``warmup_steps`` iterations; the queue then starts empty. The parameters (and the optimizer
  state) follow the same recursion as :func:`make_train_step`.

  Args:
    compute_fn: ``compute_fn(params, batch) -> (local_grads, loss)`` (e.g. a jitted
      ``shard_map`` returning per-device gradients).
    reduce_fn: ``reduce_fn(local_grads) -> averaged_grads`` (e.g. a jitted collective).
    params: initial parameters ``w_0``.
    batches: iterable of batches, one per iteration.
    width: pipeline width ``K`` >= 1.
    learning_rate: SGD step size ``η`` > 0 or an optax schedule (default 0.1); only without
      ``optimizer``.
    optimizer: any optax ``GradientTransformation`` (initialised here on ``params``).
    warmup_steps: synchronous iterations before the pipeline starts.
    callback: called as ``callback(t, params)`` at the end of iteration ``t`` with the parameters
      the next iteration computes at (its time counts in ``iteration_seconds``).
    before_start: if given, every step is compiled first — two local gradients, reductions
      and updates on the first batch, for the first parameters' layout and the updated ones';
      their results discarded (every process of a multi-process run makes the same calls) —
      and ``before_start()`` is then called before iteration 0, e.g. a barrier that starts the
      caller's clock, so no compilation falls inside its timing. Without it the update compiles
      during the first iteration that applies one.

  Returns:
    An :class:`OverlapResult`; ``opt_state`` holds the optimizer's final state.
  """
  width = check_width(width)
  warmup = check_warmup(warmup_steps)
  if not callable(compute_fn) or not callable(reduce_fn):
    raise TypeError("compute_fn and reduce_fn must be callable")
  if callback is not None and not callable(callback):
    raise TypeError(f"callback must be callable or None, got {type(callback).__name__}")
  if before_start is not None and not callable(before_start):
    raise TypeError(f"before_start must be callable or None, got {type(before_start).__name__}")
  opt = _resolve_optimizer(optimizer, learning_rate)
  opt_state = opt.init(params)

  @jax.jit
  def apply(w, s, g):
    updates, s = opt.update(g, s, w)
    return optax.apply_updates(w, updates), s

  def reduce_blocking(grads):
    return jax.block_until_ready(reduce_fn(grads))

  if before_start is not None:
    batches = iter(batches)
    first = next(batches, None)
    if first is not None:
      w, s = params, opt_state
      for _ in range(2):  # the first call's argument layouts, then those of the updated ones
        w, s = jax.block_until_ready(apply(w, s, reduce_blocking(compute_fn(w, first)[0])))
      batches = itertools.chain([first], batches)
    before_start()
  losses, times = [], []
  inflight: collections.deque = collections.deque()
  start = time.perf_counter()
  with concurrent.futures.ThreadPoolExecutor(max_workers=1) as comm:
    for t, batch in enumerate(batches):
      t0 = time.perf_counter()
      grads, loss = jax.block_until_ready(compute_fn(params, batch))
      if width == 1 or t < warmup:  # synchronous: wait for this iteration's own reduction
        params, opt_state = jax.block_until_ready(apply(params, opt_state,
                                                        reduce_blocking(grads)))
      else:
        # Apply the oldest in-flight reduction (iteration t - K + 1) *before* issuing this one,
        # so the update is not queued behind the new collective on the devices.
        if len(inflight) == width - 1:
          params, opt_state = jax.block_until_ready(apply(params, opt_state,
                                                          inflight.popleft().result()))
        inflight.append(comm.submit(reduce_blocking, grads))
      losses.append(float(loss))
      if callback is not None:
        callback(t, params)
      times.append(time.perf_counter() - t0)
    for fut in inflight:  # drain: these gradients would only update w_{T+1}, ...
      fut.result()
  total = time.perf_counter() - start
  return OverlapResult(params, np.asarray(losses), np.asarray(times), total, opt_state)


def make_overlap_fns(loss_fn: Callable, mesh: jax.sharding.Mesh, *, compressor: str = "none",
                     reduction: str | None = None, axis_name: str = "data"):
  """``(compute_fn, reduce_fn)`` for :func:`run_overlapped` on ``mesh`` (both jitted).

  ``compute_fn(params, batch)`` returns per-device gradients stacked on a leading device axis
  (sharded over ``axis_name``) and the mean loss over this process's devices (the whole batch's
  mean on one process); ``reduce_fn`` averages the gradients over the mesh with ``lax.pmean`` or
  the compressed ring. The compute holds no collective: across processes, gloo would interleave
  its messages with those of the AllReduce running on the communication thread.
  """
  c = get_compressor(compressor)
  reduction = _resolve_reduction(reduction, c)
  p = mesh.shape[axis_name]

  def local_grad(params, batch):
    loss, grads = jax.value_and_grad(loss_fn)(params, batch)
    return jax.tree.map(lambda g: g[None], grads), loss[None]

  def local_reduce(grads):
    grads = jax.tree.map(lambda g: g[0], grads)
    if reduction == "pmean":
      return jax.lax.pmean(grads, axis_name)
    return jax.tree.map(lambda g: g / p, tree_ring_allreduce(grads, axis_name, p, c))

  compute = jax.jit(shard_map(local_grad, mesh, in_specs=(P(), P(axis_name)),
                              out_specs=(P(axis_name), P(axis_name))))
  reduce = jax.jit(shard_map(local_reduce, mesh, in_specs=P(axis_name), out_specs=P()))

  def compute_fn(params, batch):
    check_batch(batch, p)
    grads, losses = compute(params, batch)
    return grads, float(np.mean([np.asarray(s.data) for s in losses.addressable_shards]))

  return compute_fn, reduce

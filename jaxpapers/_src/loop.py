"""Training loops as jitted chunks (one ``lax.scan``, or one jitted step per call) with a progress bar outside jit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import tqdm

from jaxpapers._src.metrics import MetricsWriter

StepFn = Callable[[Any, jax.Array], tuple[Any, Any]]


def make_chunk(step_fn: StepFn, chunk_size: int, *, scan: bool = True):
  """Returns ``chunk(state, start, *args) -> (state, stacked_metrics)`` of ``chunk_size`` steps.

  ``step_fn(state, step, *args)`` receives the global step index (an int32 scalar) so it can fold
  it into its key, and ``args`` (e.g. a dataset, passed as jit arguments rather than baked-in
  constants); it returns ``(new_state, metrics)`` where metrics is a pytree of scalars.

  ``scan=True`` jits the whole chunk as one ``lax.scan``. ``scan=False`` jits one step and calls
  it ``chunk_size`` times from Python (the same steps, the metrics stacked the same way): XLA:CPU
  runs convolutions inside ``lax.scan`` several times slower than in a plain jitted step (3.5×
  measured on convlstm_attention's cpu network), so convolutional trainers pass ``scan=False``
  on CPU.
  """
  if scan:
    def chunk(state, start, *args):
      steps = start + jnp.arange(chunk_size, dtype=jnp.int32)
      return jax.lax.scan(lambda s, i: step_fn(s, i, *args), state, steps)

    return jax.jit(chunk, donate_argnums=())

  one = jax.jit(step_fn)

  def chunk_loop(state, start, *args):
    ms = []
    for j in range(chunk_size):
      state, m = one(state, jnp.asarray(start + j, jnp.int32), *args)
      ms.append(m)
    return state, jax.tree.map(lambda *xs: jnp.stack(xs), *ms)

  return chunk_loop


def run_chunked(step_fn: StepFn, state, num_steps: int, *, chunk_size: int = 100,
                start_step: int = 0, desc: str | None = None, progress: bool = True,
                on_chunk: Callable[[Any, int, dict], None] | None = None, args: tuple = (),
                writer: MetricsWriter | None = None, scan: bool = True):
  """Runs ``num_steps`` steps of ``step_fn`` from ``start_step`` in chunks (``lax.scan`` or stepped).

  Args:
    step_fn: pure ``(state, step) -> (state, metrics)``.
    state: initial state pytree (a NamedTuple or registered dataclass).
    num_steps: total number of steps of the run (including those before ``start_step``).
    chunk_size: steps per jitted chunk; the last chunk may be shorter (one extra compile).
    start_step: the step to resume from (e.g. a restored checkpoint's step).
    desc: progress bar label.
    progress: whether to show a tqdm bar.
    on_chunk: called after each chunk as ``on_chunk(state, step_after_chunk, last_metrics)`` on
      the host, e.g. to write metrics and a checkpoint so a killed run loses no finished work.
    args: extra arguments of ``step_fn`` (passed to the jitted chunk as arguments).
    writer: if given, every step's metrics are written to it as one line (step numbers count
      finished steps: ``start_step + 1``, ...) after each chunk and before ``on_chunk``, so a
      checkpoint saved in ``on_chunk`` never gets ahead of the metrics file and the whole run's
      history can be read back with :func:`jaxpapers._src.metrics.read_history`.
    scan: run each chunk as one jitted ``lax.scan`` (default) or as a Python loop of one jitted
      step (:func:`make_chunk`; faster for convolutional steps on CPU). Same steps either way.

  Returns:
    ``(final_state, history)`` where history is a dict of NumPy arrays, one entry per step run.
  """
  if num_steps < 0 or start_step < 0 or start_step > num_steps:
    raise ValueError(f"need 0 <= start_step <= num_steps, got start_step={start_step}, num_steps={num_steps}")
  if chunk_size < 1:
    raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
  chunks: dict[int, Callable] = {}
  history: list[Any] = []
  step = start_step
  with tqdm.tqdm(total=num_steps, initial=start_step, desc=desc, disable=not progress,
                 leave=False) as bar:
    while step < num_steps:
      size = min(chunk_size, num_steps - step)
      if size not in chunks:
        chunks[size] = make_chunk(step_fn, size, scan=scan)
      state, metrics = chunks[size](state, jnp.int32(step), *args)
      metrics = jax.device_get(metrics)
      history.append(metrics)
      if writer is not None:
        writer.write_history(step + 1, metrics)
      step += size
      bar.update(size)
      if on_chunk is not None:
        last = jax.tree.map(lambda m: np.asarray(m)[-1], metrics)
        on_chunk(state, step, last)
  if history:
    hist = jax.tree.map(lambda *xs: np.concatenate([np.asarray(x) for x in xs]), *history)
  else:
    hist = {}
  return state, hist

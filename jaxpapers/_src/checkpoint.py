"""Orbax checkpoints of NamedTuple/dataclass states, so a killed run resumes where it stopped."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp


def _is_key(x) -> bool:
  return hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def _encode(state):
  # Typed PRNG keys are stored as their raw data and re-wrapped on restore.
  return jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, state)


def _decode(raw, template):
  def dec(r, t):
    if _is_key(t):
      return jax.random.wrap_key_data(jnp.asarray(r), impl=jax.random.key_impl(t))
    if hasattr(t, "dtype"):
      return jnp.asarray(r, dtype=t.dtype)
    return type(t)(np.asarray(r).item()) if isinstance(t, (int, float, bool)) else r

  return jax.tree.map(dec, raw, template)


class Checkpointer:
  """Saves and restores a state pytree every few steps under ``directory``.

  Example::

    ckpt = Checkpointer(workdir / "ckpt")
    restored = ckpt.restore(init_state)        # None when no checkpoint exists
    state, step = restored if restored else (init_state, 0)
    ...
    ckpt.save(step, state)
  """

  def __init__(self, directory: str | os.PathLike, *, max_to_keep: int = 2):
    self.directory = os.path.abspath(os.fspath(directory))
    os.makedirs(self.directory, exist_ok=True)
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True),
    )

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, state, *, wait: bool = True):
    """Saves ``state`` at ``step`` (overwrites nothing older than ``max_to_keep``)."""
    self._manager.save(int(step), args=ocp.args.StandardSave(_encode(state)), force=True)
    if wait:
      self._manager.wait_until_finished()

  def restore(self, template, step: int | None = None):
    """Returns ``(state, step)`` restored into ``template``'s structure, or ``None`` if absent."""
    step = self.latest_step() if step is None else step
    if step is None:
      return None
    target = jax.tree.map(np.asarray, _encode(template))
    raw = self._manager.restore(step, args=ocp.args.StandardRestore(target))
    leaves = jax.tree.leaves(raw)
    raw = jax.tree.unflatten(jax.tree.structure(_encode(template)), leaves)
    return _decode(raw, template), int(step)

  def close(self):
    self._manager.wait_until_finished()
    self._manager.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()

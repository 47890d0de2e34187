"""Orbax checkpoints of NamedTuple/dataclass states, so a killed run resumes where it stopped.

Every checkpoint also stores what wrote it: the run's configuration (flattened, with a stable
hash), the package and code versions, and the path, shape and dtype of every leaf of the state.
:meth:`Checkpointer.restore` refuses, with an error naming what differs, a checkpoint written by
another configuration or package version, or one whose leaves do not match the template, instead
of silently continuing another run.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
from collections.abc import Iterable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

from jaxpapers._src import workdir as workdir_lib

FORMAT = 1
# Config fields that do not change the state a step produces: a run may be extended
# (``num_steps``), re-chunked or re-checkpointed and still resume. Matched against the full
# dotted name and its last component.
DEFAULT_IGNORED = ("num_steps", "checkpoint_every", "chunk_size", "progress", "save_png")


class CheckpointMismatchError(ValueError):
  """The checkpoint on disk was written by another configuration, version or state layout."""


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


def _jsonable(value: Any):
  if isinstance(value, Mapping):
    return {str(k): _jsonable(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_jsonable(v) for v in value]
  if isinstance(value, (np.generic, np.ndarray)):
    return _jsonable(np.asarray(value).tolist())
  if isinstance(value, float) and not math.isfinite(value):
    return str(value)
  if value is None or isinstance(value, (bool, int, float, str)):
    return value
  return repr(value)


def flatten_config(config, ignore: Iterable[str] = ()) -> dict[str, Any]:
  """``config`` (a ConfigDict, dict or ``None``) as ``{"dotted.name": json_value}``.

  Args:
    config: the run's configuration.
    ignore: field names left out, matched against the dotted name and its last component.

  Raises:
    TypeError: if ``config`` is neither a mapping, a ConfigDict nor ``None``.
  """
  if config is None:
    return {}
  if hasattr(config, "to_dict"):
    config = config.to_dict()
  if not isinstance(config, Mapping):
    raise TypeError(f"config must be a ConfigDict, a mapping or None, got {type(config).__name__}")
  ignore = set(ignore)
  flat = {}

  def walk(prefix, node):
    for k, v in node.items():
      name = f"{prefix}{k}"
      if name in ignore or str(k) in ignore:
        continue
      if isinstance(v, Mapping):
        walk(f"{name}.", v)
      else:
        flat[name] = _jsonable(v)

  walk("", config)
  return dict(sorted(flat.items()))


def config_hash(flat: Mapping[str, Any]) -> str:
  """A stable SHA-256 of a flattened config (independent of field order and process)."""
  return hashlib.sha256(json.dumps(flat, sort_keys=True).encode()).hexdigest()


def package_version() -> str:
  import jaxpapers  # noqa: PLC0415  (the package imports this module's siblings lazily)

  return jaxpapers.__version__


@functools.lru_cache(maxsize=1)
def code_version() -> str | None:
  """The git commit of the checkout the package runs from, or ``None`` outside a git checkout."""
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  git = os.path.join(root, ".git")
  try:
    with open(os.path.join(git, "HEAD"), encoding="utf-8") as f:
      head = f.read().strip()
    if not head.startswith("ref: "):
      return head
    ref = head[5:]
    ref_path = os.path.join(git, ref)
    if os.path.exists(ref_path):
      with open(ref_path, encoding="utf-8") as f:
        return f.read().strip()
    with open(os.path.join(git, "packed-refs"), encoding="utf-8") as f:
      for line in f:
        if line.rstrip().endswith(" " + ref):
          return line.split()[0]
  except OSError:
    return None
  return None


def _leaf_specs(encoded) -> dict[str, tuple[tuple[int, ...], str]]:
  leaves = jax.tree_util.tree_flatten_with_path(encoded)[0]
  specs = {}
  for path, leaf in leaves:
    arr = leaf if hasattr(leaf, "shape") and hasattr(leaf, "dtype") else np.asarray(leaf)
    specs[jax.tree_util.keystr(path)] = (tuple(int(d) for d in arr.shape), str(np.dtype(arr.dtype)))
  return specs


class Checkpointer:
  """Saves and restores a state pytree every few steps under ``directory``.

  Example::

    ckpt = Checkpointer(workdir / "ckpt", config=config)
    restored = ckpt.restore(init_state)        # None when no checkpoint exists
    state, step = restored if restored else (init_state, 0)
    ...
    ckpt.save(step, state)

  The directory is locked (:class:`jaxpapers._src.workdir.WorkdirLock`) from construction to
  :meth:`close`, so a second run using it fails at once with an error naming the holder.

  Args:
    directory: where the checkpoints go (created if needed; must be a writable folder).
    config: the run's configuration, stored with every checkpoint; :meth:`restore` refuses a
      checkpoint written under another one (``None``: no configuration check).
    ignore: config fields that may differ between the run that saved and the one that restores.
    max_to_keep: how many recent checkpoints to keep.
  """

  def __init__(self, directory: str | os.PathLike, *, config=None,
               ignore: Iterable[str] = DEFAULT_IGNORED, max_to_keep: int = 2):
    if not isinstance(max_to_keep, int) or max_to_keep < 1:
      raise ValueError(f"max_to_keep must be a positive int, got {max_to_keep!r}")
    self._check_config = config is not None
    self._config = flatten_config(config, ignore)
    self._config_hash = config_hash(self._config)
    self._manager = None
    self._lock = workdir_lib.WorkdirLock(directory).acquire()
    self.directory = self._lock.workdir
    try:
      self._manager = ocp.CheckpointManager(
          self.directory,
          options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True),
      )
    except BaseException:
      self._lock.release()
      raise

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def _run_record(self, encoded) -> dict:
    return {"format": FORMAT, "package_version": package_version(), "code_version": code_version(),
            "config": self._config if self._check_config else None,
            "config_hash": self._config_hash if self._check_config else None,
            "leaves": [[p, list(s), d] for p, (s, d) in _leaf_specs(encoded).items()]}

  def save(self, step: int, state, *, wait: bool = True):
    """Saves ``state`` at ``step`` with the run's fingerprint (overwrites nothing recent)."""
    encoded = _encode(state)
    self._manager.save(int(step), args=ocp.args.Composite(
        state=ocp.args.StandardSave(encoded), run=ocp.args.JsonSave(self._run_record(encoded))),
        force=True)
    if wait:
      self._manager.wait_until_finished()

  def read_run_record(self, step: int) -> dict:
    """The fingerprint stored with the checkpoint at ``step`` (config, versions, leaf specs)."""
    where = os.path.join(self.directory, str(step))
    if not os.path.isdir(os.path.join(where, "run")):
      raise CheckpointMismatchError(
          f"checkpoint {where!r} has no run record (written by an older jaxpapers, or not by "
          f"jaxpapers): its configuration cannot be checked; delete {self.directory!r} or use "
          f"another workdir")
    return self._manager.restore(step, args=ocp.args.Composite(run=ocp.args.JsonRestore()))["run"]

  def _verify(self, record: dict, encoded_template, step: int):
    where = f"checkpoint {os.path.join(self.directory, str(step))!r}"
    advice = f"; use another workdir, or delete {self.directory!r} to start over"
    if record.get("package_version") != package_version():
      raise CheckpointMismatchError(
          f"{where} was written by jaxpapers {record.get('package_version')}, this is "
          f"{package_version()}{advice}")
    if record.get("code_version") != code_version():
      logging.warning("%s was written by code version %s, this is %s", where,
                      record.get("code_version"), code_version())
    if self._check_config:
      saved = record.get("config")
      if saved is None:
        raise CheckpointMismatchError(f"{where} was saved without a configuration, so it cannot "
                                      f"be checked against this run's{advice}")
      if record.get("config_hash") != self._config_hash:
        missing = object()
        diffs = []
        for name in sorted(set(saved) | set(self._config)):
          old, new = saved.get(name, missing), self._config.get(name, missing)
          if old != new:
            fmt = lambda v: "<absent>" if v is missing else repr(v)  # noqa: E731
            diffs.append(f"{name}: {fmt(old)} in the checkpoint, {fmt(new)} in this run")
        raise CheckpointMismatchError(
            f"{where} was written by another configuration ({'; '.join(diffs) or 'hash differs'})"
            f"{advice}")
    found = {p: (tuple(s), d) for p, s, d in record.get("leaves", [])}
    expected = _leaf_specs(encoded_template)
    problems = []
    for path in sorted(set(found) | set(expected)):
      if path not in found:
        problems.append(f"{path or '<root>'}: missing from the checkpoint")
      elif path not in expected:
        problems.append(f"{path or '<root>'}: in the checkpoint but not in the template")
      elif found[path] != expected[path]:
        (es, ed), (fs, fd) = expected[path], found[path]
        problems.append(f"{path or '<root>'}: expected shape {es} {ed}, found {fs} {fd}")
    if problems:
      raise CheckpointMismatchError(f"{where} does not match the state template: "
                                    f"{'; '.join(problems)}{advice}")

  def restore(self, template, step: int | None = None):
    """Returns ``(state, step)`` restored into ``template``'s structure, or ``None`` if absent.

    Raises:
      CheckpointMismatchError: naming the fields, versions or leaves that differ, if the
        checkpoint was written by another configuration or package version or does not match
        ``template``'s structure, shapes and dtypes.
    """
    step = self.latest_step() if step is None else int(step)
    if step is None:
      return None
    encoded = _encode(template)
    self._verify(self.read_run_record(step), encoded, step)
    target = jax.tree.map(np.asarray, encoded)
    raw = self._manager.restore(
        step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target)))["state"]
    leaves = jax.tree.leaves(raw)
    raw = jax.tree.unflatten(jax.tree.structure(encoded), leaves)
    return _decode(raw, template), int(step)

  def close(self):
    """Waits for pending saves and releases the directory's lock."""
    if self._manager is None:
      return
    try:
      self._manager.wait_until_finished()
      self._manager.close()
    finally:
      self._manager = None
      self._lock.release()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()

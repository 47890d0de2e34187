"""Metrics writer: absl logging plus a JSON-lines file, one line per step or evaluation.

The file is the run's history: a run killed and restarted from a checkpoint continues it, so
summaries over the whole run (e.g. the mean of the last 10% of steps) are computed from it with
:func:`read_history`, not from the restarted process's own memory.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from absl import logging

from jaxpapers._src import workdir as workdir_lib


def _to_json(value: Any):
  if isinstance(value, dict):
    return {str(k): _to_json(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_to_json(v) for v in value]
  if hasattr(value, "shape") or isinstance(value, (np.generic,)):
    arr = np.asarray(value)
    return _to_json(arr.item()) if arr.ndim == 0 else _to_json(arr.tolist())
  if isinstance(value, float) and not math.isfinite(value):
    return str(value)  # JSON has no NaN/inf; keep it readable and valid.
  return value


def _drop_partial_last_line(path: str):
  """Truncates a last line left unfinished by a killed writer (it has no newline)."""
  with open(path, "rb+") as f:
    size = f.seek(0, os.SEEK_END)
    if size == 0:
      return
    f.seek(size - 1)
    if f.read(1) == b"\n":
      return
    pos, block = size, 4096
    while pos > 0:
      start = max(0, pos - block)
      f.seek(start)
      chunk = f.read(pos - start)
      nl = chunk.rfind(b"\n")
      if nl >= 0:
        f.truncate(start + nl + 1)
        break
      pos = start
    else:
      f.truncate(0)
  logging.warning("%s: dropped an unfinished last line (a killed run's)", path)


class MetricsWriter:
  """Appends ``{"step": s, **scalars}`` lines to ``path`` and logs them.

  Lines are flushed as they are written, so a killed run keeps every finished line; opening an
  existing file appends (a resumed run continues the same file; an unfinished last line left by
  a killed run is dropped first). The file's folder is locked
  (:class:`jaxpapers._src.workdir.WorkdirLock`) until :meth:`close`, so a second run writing to
  it fails at once with an error naming the holder instead of interleaving lines.
  """

  def __init__(self, path: str | os.PathLike | None, *, log: bool = True):
    if path is not None and not isinstance(path, (str, os.PathLike)):
      raise TypeError(f"path must be a str, os.PathLike or None, got {type(path).__name__}")
    self.path = None if path is None else os.fspath(path)
    self._log = log
    self._file = None
    self._lock = None
    if self.path is not None:
      if os.path.isdir(self.path):
        raise ValueError(f"metrics path {os.path.abspath(self.path)!r} is a directory")
      self._lock = workdir_lib.WorkdirLock(os.path.dirname(os.path.abspath(self.path))).acquire()
      try:
        if os.path.exists(self.path):
          _drop_partial_last_line(self.path)
        self._file = open(self.path, "a", encoding="utf-8")
      except BaseException:
        self._lock.release()
        raise

  def write(self, step: int, **scalars) -> dict:
    record = {"step": int(step), **_to_json(scalars)}
    if self._log:
      logging.info("step %d: %s", step, ", ".join(f"{k}={v}" for k, v in record.items() if k != "step"))
    if self._file is not None:
      self._file.write(json.dumps(record) + "\n")
      self._file.flush()
    return record

  def write_history(self, first_step: int, history: Mapping[str, Any]):
    """Writes one line per step of ``history`` (arrays of equal length, one entry per step).

    Line ``i`` gets step ``first_step + i``; nothing is logged (there may be thousands of lines),
    and the file is flushed once at the end.
    """
    cols = {k: np.asarray(v) for k, v in history.items()}
    lengths = {int(v.shape[0]) if v.ndim else -1 for v in cols.values()}
    if len(lengths) > 1 or -1 in lengths:
      raise ValueError(f"history must map names to arrays of one common length, got shapes "
                       f"{ {k: v.shape for k, v in cols.items()} }")
    if self._file is None:
      return
    n = lengths.pop() if lengths else 0
    lines = [json.dumps({"step": int(first_step) + i, **_to_json({k: v[i] for k, v in cols.items()})})
             for i in range(n)]
    self._file.write("".join(line + "\n" for line in lines))
    self._file.flush()

  def close(self):
    if self._file is not None:
      self._file.close()
      self._file = None
    if self._lock is not None:
      self._lock.release()
      self._lock = None

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


def read_metrics(path: str | os.PathLike) -> list[dict]:
  """Reads a JSON-lines metrics file back into a list of dicts.

  An unfinished last line (a killed writer's) is skipped; a malformed line elsewhere raises a
  ``ValueError`` naming the file and line.
  """
  with open(path, encoding="utf-8") as f:
    lines = f.read().split("\n")
  out = []
  for i, line in enumerate(lines):
    if not line.strip():
      continue
    try:
      out.append(json.loads(line))
    except json.JSONDecodeError as e:
      if i == len(lines) - 1:  # no newline after it: the writer died mid-line
        break
      raise ValueError(f"{os.fspath(path)!r} line {i + 1} is not valid JSON: {e}") from e
  return out


def read_history(path: str | os.PathLike, keys: Iterable[str], *, first_step: int | None = None,
                 last_step: int | None = None) -> dict[str, np.ndarray]:
  """Per-step histories of ``keys`` from a metrics file, over the whole run.

  Lines holding every one of ``keys`` are the run's steps; where a step appears more than once (a
  killed run's steps after its last checkpoint, run again after the restart) the last line wins.
  The steps must run without gaps from ``first_step`` to ``last_step`` (default: the lowest and
  the highest step found).

  Args:
    path: the metrics file.
    keys: the per-step metric names (e.g. ``history.keys()`` of ``run_chunked``).
    first_step: the run's first step (e.g. 1: the history must not miss the run's beginning);
      lines before it are ignored.
    last_step: the run's last step; lines after it are ignored (the file may hold a longer,
      older run).

  Returns:
    ``{key: float64 array}``, one entry (a scalar, or an array such as one value per seed) per
    step in step order (empty arrays when no line has every key).

  Raises:
    ValueError: naming the file and the missing steps, if the history has gaps.
  """
  keys = list(keys)
  if not keys:
    raise ValueError("keys must name at least one metric")
  by_step = {}
  if os.path.exists(path):
    for rec in read_metrics(path):
      if "step" in rec and all(k in rec for k in keys):
        if (last_step is None or rec["step"] <= last_step) and (
            first_step is None or rec["step"] >= first_step):
          by_step[int(rec["step"])] = rec
  steps = sorted(by_step)
  if steps or first_step is not None:
    begin = steps[0] if first_step is None else first_step
    end = (steps[-1] if steps else begin - 1) if last_step is None else last_step
    missing = sorted(set(range(begin, end + 1)) - set(steps))
    if missing:
      shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
      raise ValueError(f"{os.fspath(path)!r} has no lines for steps {shown} of {keys}: the run's "
                       f"history is incomplete")
  out = {}
  for k in keys:  # NumPy also parses the "nan" / "inf" strings written for non-finite values.
    rows = [np.asarray(by_step[s][k], np.float64) for s in steps]
    out[k] = np.stack(rows) if rows else np.zeros((0,))
  return out


def tail_means(history: Mapping[str, np.ndarray], fraction: float = 0.1) -> dict[str, float]:
  """The mean of each history over its last ``max(1, int(fraction * len))`` entries."""
  if not 0 < fraction <= 1:
    raise ValueError(f"fraction must be in (0, 1], got {fraction}")
  out = {}
  for k, v in history.items():
    v = np.asarray(v)
    if len(v):
      out[k] = float(np.mean(v[-max(1, int(len(v) * fraction + 1e-9)):]))
  return out

"""Metrics writer: absl logging plus a JSON-lines file, one line per step or evaluation."""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np
from absl import logging


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


class MetricsWriter:
  """Appends ``{"step": s, **scalars}`` lines to ``path`` and logs them.

  Lines are flushed as they are written, so a killed run keeps every finished line; opening an
  existing file appends (a resumed run continues the same file).
  """

  def __init__(self, path: str | os.PathLike | None, *, log: bool = True):
    self.path = None if path is None else os.fspath(path)
    self._log = log
    self._file = None
    if self.path is not None:
      os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
      self._file = open(self.path, "a", encoding="utf-8")

  def write(self, step: int, **scalars) -> dict:
    record = {"step": int(step), **_to_json(scalars)}
    if self._log:
      logging.info("step %d: %s", step, ", ".join(f"{k}={v}" for k, v in record.items() if k != "step"))
    if self._file is not None:
      self._file.write(json.dumps(record) + "\n")
      self._file.flush()
    return record

  def close(self):
    if self._file is not None:
      self._file.close()
      self._file = None

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


def read_metrics(path: str | os.PathLike) -> list[dict]:
  """Reads a JSON-lines metrics file back into a list of dicts."""
  with open(path, encoding="utf-8") as f:
    return [json.loads(line) for line in f if line.strip()]

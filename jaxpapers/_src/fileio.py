"""Atomic file writes shared by the result records and the long runs (no flags, no JAX)."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import tempfile


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
  """Writes ``text`` to ``path`` through a synced temporary file and ``os.replace`` (a reader
  sees the old file or the new one, never a partial one)."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
  try:
    with os.fdopen(fd, "w", encoding="utf-8") as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(OSError):
      os.unlink(tmp)
    raise


def write_json_atomic(path: str | os.PathLike, obj) -> None:
  """Writes ``obj`` as JSON to ``path`` through a temporary file and ``os.replace``."""
  write_text_atomic(path, json.dumps(obj, indent=1, default=str))

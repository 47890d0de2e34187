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


def read_json_for_config(path: str | os.PathLike, config_hash: str) -> dict | None:
  """The JSON record a long run cached at ``path`` for the configuration ``config_hash``.

  Returns ``None`` when there is no file. A record holds its ``"config_hash"``; one written for
  another configuration is refused, never reused.

  Raises:
    ValueError: the record at ``path`` is unreadable or belongs to another configuration.
  """
  path = pathlib.Path(path)
  if not path.exists():
    return None
  try:
    record = json.loads(path.read_text(encoding="utf-8"))
  except (OSError, json.JSONDecodeError) as e:
    raise ValueError(f"{path}: not a readable record ({e}); move it away to start afresh") from e
  if not isinstance(record, dict) or record.get("config_hash") != config_hash:
    found = record.get("config_hash") if isinstance(record, dict) else None
    raise ValueError(f"{path} holds results of another configuration (hash {found} != "
                     f"{config_hash}); use another workdir")
  return record

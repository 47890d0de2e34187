"""Work directories: checked before any work, and locked so that two runs never share one.

:func:`prepare` turns a workdir that is a file, cannot be created or is not writable into a
``ValueError`` naming the path. :class:`WorkdirLock` holds an exclusive ``fcntl.flock`` on
``<workdir>/.jaxpapers.lock`` (which records the holder's pid, host and start time): a second
process that tries to take it gets a :class:`WorkdirLockedError` naming the holder. The OS drops
the lock when its holder dies (even by ``kill -9``), so a stale lock file never blocks a restart.
Within one process the lock is re-entrant (the metrics writer and the checkpointer of one run
share it).
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import json
import os
import socket
import tempfile
import threading

LOCK_NAME = ".jaxpapers.lock"


class WorkdirLockedError(RuntimeError):
  """Another live process holds the workdir's lock."""


def prepare(workdir: str | os.PathLike) -> str:
  """Creates ``workdir`` if needed and checks that it is a writable directory.

  Args:
    workdir: the run's output folder.

  Returns:
    The absolute path of ``workdir``.

  Raises:
    TypeError: if ``workdir`` is not a string or path.
    ValueError: naming the path, if it is a file, cannot be created or is not writable.
  """
  if not isinstance(workdir, (str, os.PathLike)):
    raise TypeError(f"workdir must be a str or os.PathLike, got {type(workdir).__name__}")
  if not os.fspath(workdir):
    raise ValueError("workdir must be a non-empty path")
  path = os.path.abspath(os.fspath(workdir))
  if os.path.exists(path) and not os.path.isdir(path):
    raise ValueError(f"workdir {path!r} exists and is not a directory")
  try:
    os.makedirs(path, exist_ok=True)
  except OSError as e:
    raise ValueError(f"workdir {path!r} cannot be created: {e.strerror or e}") from e
  try:  # os.access is not enough (it says yes to root, and knows nothing of read-only mounts).
    fd, probe = tempfile.mkstemp(prefix=".write_test_", dir=path)
    os.close(fd)
    os.remove(probe)
  except OSError as e:
    raise ValueError(f"workdir {path!r} is not writable: {e.strerror or e}") from e
  return path


def read_holder(workdir: str | os.PathLike) -> dict | None:
  """The ``{"pid", "host", "started"}`` record in ``workdir``'s lock file, or ``None``."""
  try:
    with open(os.path.join(os.fspath(workdir), LOCK_NAME), encoding="utf-8") as f:
      return json.loads(f.read() or "null")
  except (OSError, ValueError):
    return None


_held: dict[str, list] = {}  # realpath -> [fd, count], the locks this process holds
_held_mutex = threading.Lock()


class WorkdirLock:
  """An exclusive, re-entrant (within one process) lock on a workdir.

  Example::

    with WorkdirLock(workdir):
      ...  # no other process can run in workdir here

  Args:
    workdir: the folder to lock (created and checked with :func:`prepare`).
  """

  def __init__(self, workdir: str | os.PathLike):
    self.workdir = prepare(workdir)
    self._key = os.path.realpath(self.workdir)
    self._acquired = False

  def acquire(self) -> WorkdirLock:
    """Takes the lock, or raises :class:`WorkdirLockedError` naming the process holding it."""
    if self._acquired:
      return self
    with _held_mutex:
      if self._key in _held:
        _held[self._key][1] += 1
        self._acquired = True
        return self
      path = os.path.join(self.workdir, LOCK_NAME)
      fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
      try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
      except OSError as e:
        os.close(fd)
        if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
          raise
        holder = read_holder(self.workdir) or {}
        raise WorkdirLockedError(
            f"workdir {self.workdir!r} is in use by another run (pid {holder.get('pid', '?')} on "
            f"host {holder.get('host', '?')}, started {holder.get('started', '?')}); wait for it "
            f"to finish or choose another workdir") from None
      record = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
      os.ftruncate(fd, 0)
      os.pwrite(fd, json.dumps(record).encode(), 0)
      os.fsync(fd)
      _held[self._key] = [fd, 1]
      self._acquired = True
    return self

  def release(self):
    """Releases this holder's share of the lock (the file lock goes with the last one)."""
    if not self._acquired:
      return
    with _held_mutex:
      self._acquired = False
      entry = _held[self._key]
      entry[1] -= 1
      if entry[1] == 0:
        del _held[self._key]
        os.ftruncate(entry[0], 0)
        fcntl.flock(entry[0], fcntl.LOCK_UN)
        os.close(entry[0])

  def __enter__(self) -> WorkdirLock:
    return self.acquire()

  def __exit__(self, *exc):
    self.release()

  def __del__(self):
    try:
      self.release()
    except Exception:  # noqa: BLE001  (interpreter shutdown)
      pass

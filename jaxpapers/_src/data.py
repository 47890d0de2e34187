"""Locating dataset folders: an explicit flag/argument, ``JAXPAPERS_DATA``, or ``../shared/data``."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Sequence

ENV_VAR = "JAXPAPERS_DATA"


class DatasetNotFoundError(FileNotFoundError):
  """A dataset folder (or a file expected in it) is missing."""


def default_roots() -> list[pathlib.Path]:
  """Folders searched for ``<root>/<name>``: ``$JAXPAPERS_DATA`` then ``shared/data`` beside the repo."""
  roots = []
  if os.environ.get(ENV_VAR):
    roots.append(pathlib.Path(os.environ[ENV_VAR]))
  repo = pathlib.Path(__file__).resolve().parents[2]
  roots.append(repo.parent / "shared" / "data")
  roots.append(pathlib.Path.cwd().parent / "shared" / "data")
  return roots


def find_dataset(name: str, expected_files: Sequence[str] = (), data_dir: str | os.PathLike | None = None
                 ) -> pathlib.Path:
  """Returns the folder of dataset ``name`` that holds every file in ``expected_files``.

  Args:
    name: dataset folder name, e.g. ``"movielens-100k"``.
    expected_files: relative paths that must exist inside the folder.
    data_dir: an explicit folder (from a flag or argument). It may be the dataset folder itself or
      a root that contains ``name``. When given, no other place is searched.

  Raises:
    DatasetNotFoundError: naming the folders searched and the files expected.
  """
  if data_dir is not None:
    base = pathlib.Path(data_dir)
    candidates = [base, base / name]
  else:
    candidates = [root / name for root in default_roots()]
  for folder in candidates:
    if folder.is_dir() and all((folder / f).exists() for f in expected_files):
      return folder
  searched = ", ".join(str(c) for c in candidates)
  files = ", ".join(expected_files) if expected_files else "(any files)"
  hint = f"pass the folder explicitly or set {ENV_VAR} to a folder containing '{name}/'"
  raise DatasetNotFoundError(
      f"dataset '{name}' not found: searched {searched}; expected files: {files}; {hint}"
  )


def has_dataset(name: str, expected_files: Sequence[str] = ()) -> bool:
  """True if ``find_dataset(name, expected_files)`` would succeed (for test skips)."""
  try:
    find_dataset(name, expected_files)
    return True
  except DatasetNotFoundError:
    return False

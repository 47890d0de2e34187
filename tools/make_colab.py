"""Builds a paper's Colab notebook (no outputs) from a list of code/markdown cells.

Usage from a paper's notebook script or a one-off command::

  from tools.make_colab import write_notebook
  write_notebook("bbmm", "BBMM: exact GPs by batched CG", [
      ("md", "## Fit a GP"),
      ("code", "cfg = bbmm.config.get_config(SCALE)\\n..."),
  ])

Every notebook starts with the same two cells: install the package when missing, and a
``SCALE`` parameter (``smoke``/``cpu``/``full``) read from ``JAXPAPERS_SCALE`` so the test suite
can execute it at smoke scale.
"""

from __future__ import annotations

import pathlib

import nbformat

REPO = pathlib.Path(__file__).resolve().parents[1]

INSTALL_CELL = """\
# Install jaxpapers when it is missing (e.g. on a fresh Colab runtime).
try:
  import jaxpapers  # noqa: F401
except ImportError:
  import subprocess, sys
  subprocess.check_call([sys.executable, "-m", "pip", "install", "-q",
                         "jaxpapers[colab] @ git+https://github.com/jaxpapers/jaxpapers"])
"""

SCALE_CELL = """\
# Parameters: SCALE is one of "smoke" (seconds), "cpu" (minutes on 2 cores), "full" (paper scale, GPU/TPU).
import os
SCALE = os.environ.get("JAXPAPERS_SCALE", "cpu")
"""


def write_notebook(paper: str, title: str, cells: list[tuple[str, str]]) -> pathlib.Path:
  nb = nbformat.v4.new_notebook()
  nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
  nb.metadata["colab"] = {"name": f"{paper}.ipynb"}
  nb.cells.append(nbformat.v4.new_markdown_cell(f"# {title}"))
  nb.cells.append(nbformat.v4.new_code_cell(INSTALL_CELL))
  nb.cells.append(nbformat.v4.new_code_cell(SCALE_CELL, metadata={"tags": ["parameters"]}))
  for kind, source in cells:
    if kind == "md":
      nb.cells.append(nbformat.v4.new_markdown_cell(source))
    elif kind == "code":
      nb.cells.append(nbformat.v4.new_code_cell(source))
    else:
      raise ValueError(f"cell kind must be 'md' or 'code', got {kind!r}")
  path = REPO / "colabs" / f"{paper}.ipynb"
  nbformat.write(nb, path)
  return path

"""Builds a paper's Colab notebook (no outputs) from a list of code/markdown cells.

Usage from a paper's notebook script or a one-off command::

  from tools.make_colab import write_notebook
  write_notebook("bbmm", "BBMM: exact GPs by batched CG", [
      ("md", "## Fit a GP"),
      ("code", "cfg = bbmm.config.get_config(SCALE)\\n..."),
  ])

Every notebook starts with the same three cells: install the package when missing (from the
checkout it sits in, else from a ``REPO_URL`` form field pinned to ``REF``), a Colab form field
``SCALE = "smoke"  # @param [...]`` (the test suite runs every notebook at smoke), and a cell that
prints the devices JAX sees. ``python tools/make_colab.py --refresh`` rewrites those cells in every
notebook.
"""

from __future__ import annotations

import pathlib

import nbformat

REPO = pathlib.Path(__file__).resolve().parents[1]

INSTALL_CELL = """\
# Install jaxpapers when it is missing: from this checkout when the notebook runs inside one,
# else from REPO_URL at REF (a release tag or commit you have reviewed: pip runs its code here).
REPO_URL = ""  # @param {type:"string"}
REF = ""  # @param {type:"string"}
import importlib.util, pathlib, subprocess, sys
if importlib.util.find_spec("jaxpapers") is None:
  here = pathlib.Path.cwd().resolve()
  checkout = next((p for p in (here, *here.parents)
                   if (p / "pyproject.toml").is_file() and (p / "jaxpapers").is_dir()), None)
  if checkout is not None:
    target = str(checkout)
  elif REPO_URL and REF:
    target = f"jaxpapers[colab] @ git+{REPO_URL}@{REF}"
  else:
    raise RuntimeError("jaxpapers is not installed and this notebook is not inside a checkout: "
                       "set REPO_URL to the repository you trust and REF to a tag or commit")
  subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", target])
import jaxpapers  # noqa: E402
"""

SCALE_CELL = """\
SCALE = "smoke"  # @param ["smoke", "quick", "cpu", "full"]
# smoke: under a minute (a pipeline check, numbers not meaningful) · quick: a few minutes on a
# 2-core CPU runtime · cpu: the cpu setting, minutes to an hour on 2 cores (some papers longer:
# see the README's time column) · full: the paper's scale, needs a GPU/TPU runtime.
"""

DEVICES_CELL = """\
import jax
print("JAX", jax.__version__, "sees", jax.devices())
# On a GPU or TPU runtime (Runtime > Change runtime type, then pip install "jax[cuda12]" or use
# the TPU image) the same cells run there unchanged; the "full" scale expects one.
"""

PREAMBLE = (INSTALL_CELL, SCALE_CELL, DEVICES_CELL)


def refresh_preamble(path: pathlib.Path) -> None:
  """Rewrites a notebook's install, SCALE and devices cells (cells 1-3) to the current text."""
  nb = nbformat.read(path, as_version=4)
  code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
  first = code[0]
  has_devices = len(code) > 2 and nb.cells[code[2]].source.startswith("import jax\n")
  nb.cells[first].source = INSTALL_CELL
  nb.cells[code[1]].source = SCALE_CELL
  nb.cells[code[1]].metadata["tags"] = ["parameters"]
  if has_devices:
    # keep a notebook's own jax.config.update lines: they must run before the backends start
    keep = [line for line in nb.cells[code[2]].source.splitlines()
            if line.startswith("jax.config.update(")]
    head, tail = DEVICES_CELL.split("\n", 1)
    nb.cells[code[2]].source = "\n".join([head, *keep, tail])
  else:
    nb.cells.insert(code[1] + 1, nbformat.v4.new_code_cell(DEVICES_CELL))
  nbformat.write(nb, path)


def write_notebook(paper: str, title: str, cells: list[tuple[str, str]]) -> pathlib.Path:
  nb = nbformat.v4.new_notebook()
  nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
  nb.metadata["colab"] = {"name": f"{paper}.ipynb"}
  nb.cells.append(nbformat.v4.new_markdown_cell(f"# {title}"))
  nb.cells.append(nbformat.v4.new_code_cell(INSTALL_CELL))
  nb.cells.append(nbformat.v4.new_code_cell(SCALE_CELL, metadata={"tags": ["parameters"]}))
  nb.cells.append(nbformat.v4.new_code_cell(DEVICES_CELL))
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


if __name__ == "__main__":
  import sys

  if sys.argv[1:] != ["--refresh"]:
    raise SystemExit("usage: python tools/make_colab.py --refresh")
  for nb_path in sorted((REPO / "colabs").glob("*.ipynb")):
    refresh_preamble(nb_path)
    print("refreshed", nb_path.relative_to(REPO))

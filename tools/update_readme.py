"""Writes the results table into README.md (between the results markers) from results/<paper>.json.

  python tools/update_readme.py [results_dir]

Every ``<paper>.json`` in the folder contributes its rows, so papers may be run separately
(``jaxpapers-reproduce --papers=bbmm``) and collected here; REPORT.md is rewritten too.
"""

from __future__ import annotations

import json
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from jaxpapers._src import registry, reproduce  # noqa: E402

START, END = "<!-- results:start -->", "<!-- results:end -->"


def load_results(results_dir: pathlib.Path) -> list[dict]:
  out = []
  for paper in registry.PAPERS:
    path = results_dir / f"{paper}.json"
    if path.exists():
      out.append(json.loads(path.read_text()))
  return out


def update(readme: str, table: str) -> str:
  if START not in readme or END not in readme:
    raise ValueError(f"README.md must contain {START} and {END}")
  head, rest = readme.split(START, 1)
  _, tail = rest.split(END, 1)
  return f"{head}{START}\n{table}\n{END}{tail}"


def main(argv: list[str]) -> int:
  results_dir = pathlib.Path(argv[0]) if argv else REPO / "results"
  results = load_results(results_dir)
  text = reproduce.write_report(results, str(results_dir / "REPORT.md"))
  table = "\n".join(line for line in text.splitlines() if line.startswith("|"))
  readme = REPO / "README.md"
  readme.write_text(update(readme.read_text(), table))
  return 0


if __name__ == "__main__":
  raise SystemExit(main(sys.argv[1:]))

"""Writes the results table into README.md (between the results markers) from results/<paper>.json.

  python tools/update_readme.py [results_dir]

Every ``<paper>.json`` in the folder replaces that paper's rows; papers without a JSON keep the rows
already in README.md, so papers may be run separately (``jaxpapers-reproduce --papers=bbmm``) and
merged here one at a time; REPORT.md is rewritten from the JSONs found.
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


def existing_rows(readme: str) -> dict[str, list[str]]:
  """Table rows already in the README, grouped by paper (the first cell)."""
  if START not in readme or END not in readme:
    return {}
  block = readme.split(START, 1)[1].split(END, 1)[0]
  rows: dict[str, list[str]] = {}
  for line in block.splitlines()[2:]:  # skip header and rule
    if line.startswith("|"):
      rows.setdefault(line.split("|")[1].strip(), []).append(line)
  return rows


def merge(readme: str, results: list[dict]) -> str:
  """The table: fresh rows for papers in ``results``, the README's old rows for the others."""
  fresh = {}
  for result in results:
    fresh[result["paper"]] = reproduce.report_rows(result)
  old = existing_rows(readme)
  lines = [reproduce.HEADER, "|---" * (reproduce.HEADER.count("|") - 1) + "|"]
  for paper in registry.PAPERS:
    lines.extend(fresh.get(paper, old.get(paper, [])))
  return "\n".join(lines)


def main(argv: list[str]) -> int:
  results_dir = pathlib.Path(argv[0]) if argv else REPO / "results"
  results = load_results(results_dir)
  reproduce.write_report(results, str(results_dir / "REPORT.md"))
  readme = REPO / "README.md"
  table = merge(readme.read_text(), results)
  readme.write_text(update(readme.read_text(), table))
  return 0


if __name__ == "__main__":
  raise SystemExit(main(sys.argv[1:]))

"""Copies the table of results/REPORT.md into README.md between the results markers."""

from __future__ import annotations

import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
START, END = "<!-- results:start -->", "<!-- results:end -->"


def update(readme: str, report: str) -> str:
  if START not in readme or END not in readme:
    raise ValueError(f"README.md must contain {START} and {END}")
  table = "\n".join(line for line in report.splitlines() if line.startswith("|"))
  head, rest = readme.split(START, 1)
  _, tail = rest.split(END, 1)
  return f"{head}{START}\n{table}\n{END}{tail}"


def main(argv: list[str]) -> int:
  report = pathlib.Path(argv[0]) if argv else REPO / "results" / "REPORT.md"
  readme = REPO / "README.md"
  readme.write_text(update(readme.read_text(), report.read_text()))
  return 0


if __name__ == "__main__":
  raise SystemExit(main(sys.argv[1:]))

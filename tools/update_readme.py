"""Writes the README's results tables from the committed records ``results/<scale>/<paper>.json``.

  python tools/update_readme.py [results_dir]

For every scale with a block ``<!-- results:<scale>:start -->`` … ``<!-- results:<scale>:end -->``
in README.md, the block becomes the table rendered from ``<results_dir>/<scale>/*.json`` (papers in
the registry's order). tests/test_foundation.py checks that the README equals this rendering, so a
row in the README can always be traced to its raw record (seeds, per-seed values, timings, machine,
commit).
"""

from __future__ import annotations

import json
import pathlib
import re
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from jaxpapers._src import registry, reproduce  # noqa: E402

BLOCK = re.compile(r"<!-- results:(\w+):start -->\n(.*?)<!-- results:\1:end -->", re.S)


def start(scale: str) -> str:
  return f"<!-- results:{scale}:start -->"


def end(scale: str) -> str:
  return f"<!-- results:{scale}:end -->"


def load_results(folder: pathlib.Path) -> list[dict]:
  """The records in ``folder`` (one ``<paper>.json`` per paper), in the registry's paper order."""
  out = []
  for paper in registry.PAPERS:
    path = folder / f"{paper}.json"
    if path.exists():
      try:
        out.append(json.loads(path.read_text(encoding="utf-8")))
      except json.JSONDecodeError as e:
        raise ValueError(f"{path}: invalid JSON ({e})") from e
  return out


def render(results_dir: pathlib.Path, scale: str) -> str:
  results = load_results(results_dir / scale)
  if not results:
    raise FileNotFoundError(f"no records in {results_dir / scale}; run jaxpapers-reproduce "
                            f"--scale={scale} --results_dir={results_dir}")
  return reproduce.render_report(results)


def update(readme: str, results_dir: pathlib.Path) -> str:
  """``readme`` with each results block re-rendered from ``results_dir``."""
  scales = [m.group(1) for m in BLOCK.finditer(readme)]
  if not scales:
    raise ValueError("README.md has no '<!-- results:<scale>:start -->' block")
  for scale in scales:
    table = render(results_dir, scale)
    readme = BLOCK.sub(lambda m, s=scale, t=table: (f"{start(s)}\n{t}{end(s)}"
                                                   if m.group(1) == s else m.group(0)), readme)
  return readme


def blocks(readme: str) -> dict[str, str]:
  """Scale -> the table text currently in the README's block."""
  return {m.group(1): m.group(2) for m in BLOCK.finditer(readme)}


def main(argv: list[str]) -> int:
  results_dir = pathlib.Path(argv[0]) if argv else REPO / "results"
  readme = REPO / "README.md"
  readme.write_text(update(readme.read_text(encoding="utf-8"), results_dir), encoding="utf-8")
  return 0


if __name__ == "__main__":
  raise SystemExit(main(sys.argv[1:]))

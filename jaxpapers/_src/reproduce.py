"""The project's main job: run the chosen papers' reproductions and write results/REPORT.md.

Usage::

  jaxpapers-reproduce --papers=all --scale=cpu --results_dir=results
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback

from absl import app, flags, logging

from jaxpapers._src import registry

FLAGS = flags.FLAGS

_PAPERS = flags.DEFINE_string("papers", "all", "'all' or a comma-separated list of paper names.")
_SCALE = flags.DEFINE_enum("scale", "cpu", list(registry.SCALES), "Scale to run at.")
_RESULTS = flags.DEFINE_string("results_dir", "results", "Where <paper>.json and REPORT.md go.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Scratch folder for checkpoints/metrics "
                               "(default: <results_dir>/work).")
_ONLY = flags.DEFINE_string("only", None, "Comma-separated reproduction names to run (default all).")

HEADER = "| paper | reproduction | claim | paper | ours | scale | seeds | time (s) | result |"


def _fmt(value) -> str:
  if value is None:
    return "—"
  if isinstance(value, float):
    return f"{value:.4g}"
  return str(value).replace("|", "/").replace("\n", " ")


def run_paper(paper: str, scale: str, workdir: str, only=None) -> dict:
  """Runs every reproduction of ``paper``; a failure is recorded, never raised."""
  out = {"paper": paper, "scale": scale, "reproductions": []}
  try:
    reps = registry.reproductions(paper)
  except Exception as e:  # noqa: BLE001 - reported in the paper's row
    out["error"] = f"{type(e).__name__}: {e}"
    logging.error("paper %s failed to import:\n%s", paper, traceback.format_exc())
    return out
  for rep in reps:
    if only and rep.name not in only:
      continue
    seeds = list(rep.seeds[scale])
    row = {"name": rep.name, "claim": rep.claim, "paper_value": rep.paper_value,
           "ours": None, "seeds": seeds, "seconds": None, "passed": False,
           "scale_note": rep.scale_note.get(scale, "")}
    start = time.perf_counter()
    print(f"[{paper}] {rep.name} @ {scale} seeds={seeds} ...", flush=True)
    try:
      rep_dir = os.path.join(workdir, paper, rep.name)
      os.makedirs(rep_dir, exist_ok=True)
      measured = dict(rep.run(scale, seeds, rep_dir))
      row["measured"] = json.loads(json.dumps(measured, default=float))
      row["ours"] = rep.summary(measured)
      row["passed"] = bool(rep.check(measured, scale))
    except Exception as e:  # noqa: BLE001 - one failure must not stop the others
      row["error"] = f"{type(e).__name__}: {e}"
      logging.error("%s/%s failed:\n%s", paper, rep.name, traceback.format_exc())
    row["seconds"] = round(time.perf_counter() - start, 2)
    status = "PASS" if row["passed"] else ("ERROR" if "error" in row else "FAIL")
    print(f"[{paper}] {rep.name}: {status} ours={row['ours']} ({row['seconds']} s)", flush=True)
    out["reproductions"].append(row)
  return out


def report_rows(result: dict) -> list[str]:
  paper, scale = result["paper"], result["scale"]
  if "error" in result:
    return [f"| {paper} | — | — | — | — | {scale} | — | — | ERROR: {_fmt(result['error'])} |"]
  if not result["reproductions"]:
    return [f"| {paper} | — | no reproductions registered | — | — | {scale} | — | — | — |"]
  rows = []
  for r in result["reproductions"]:
    verdict = "pass" if r["passed"] else ("ERROR: " + _fmt(r["error"]) if "error" in r else "fail")
    scale_cell = scale + (f" ({_fmt(r['scale_note'])})" if r.get("scale_note") else "")
    rows.append(
        f"| {paper} | {r['name']} | {_fmt(r['claim'])} | {_fmt(r['paper_value'])} | {_fmt(r['ours'])} "
        f"| {scale_cell} | {','.join(map(str, r['seeds']))} | {_fmt(r['seconds'])} | {verdict} |")
  return rows


def write_report(results: list[dict], path: str) -> str:
  lines = ["# jaxpapers reproduction report", "",
           HEADER, "|---" * (HEADER.count("|") - 1) + "|"]
  for result in results:
    lines.extend(report_rows(result))
  text = "\n".join(lines) + "\n"
  with open(path, "w", encoding="utf-8") as f:
    f.write(text)
  return text


def parse_papers(spec: str) -> list[str]:
  if spec.strip() == "all":
    return registry.available_papers()
  papers = [p.strip() for p in spec.split(",") if p.strip()]
  for p in papers:
    if p not in registry.PAPERS:
      raise app.UsageError(f"--papers: unknown paper {p!r}; choose from {', '.join(registry.PAPERS)}")
  return papers


def main(argv):
  del argv
  if FLAGS["verbosity"].using_default_value:
    logging.set_verbosity(logging.WARNING)  # libraries' INFO logs (orbax, XLA) drown the progress lines
  papers = parse_papers(_PAPERS.value)
  scale = _SCALE.value
  os.makedirs(_RESULTS.value, exist_ok=True)
  workdir = _WORKDIR.value or os.path.join(_RESULTS.value, "work")
  only = set(_ONLY.value.split(",")) if _ONLY.value else None
  results = []
  report_path = os.path.join(_RESULTS.value, "REPORT.md")
  for paper in papers:
    result = run_paper(paper, scale, workdir, only)
    with open(os.path.join(_RESULTS.value, f"{paper}.json"), "w", encoding="utf-8") as f:
      json.dump(result, f, indent=1, default=str)
    results.append(result)
    write_report(results, report_path)  # rewritten as each paper finishes
  text = write_report(results, report_path)
  print(text, flush=True)
  return 0


def run():
  """Console-script entry point (``jaxpapers-reproduce``)."""
  app.run(main, argv=sys.argv)

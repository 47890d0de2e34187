"""jaxpapers-reproduce: run the papers' registered reproductions and report a verdict for each.

Tiers (``--scale``), timed on 2 idle CPU cores:

  smoke  pipeline check only: every row runs tiny; its verdict is ``ran``, never pass/fail (~3 min)
  quick  the headline claims that can be tested honestly in ~2 min per paper (default, <= 20 min)
  cpu    every registered claim at CPU scale, several seeds (hours)
  full   the papers' own scale (an accelerator; days on a CPU)

Verdicts: ``pass`` / ``fail`` / ``inconclusive`` (a difference inside the noise, or everything at the
ceiling or at chance) from the row's check; ``skipped`` when a row's real data set is absent;
``ran`` at smoke; ``error`` when the row raised; ``interrupted`` when the run was stopped mid-row;
``cpu only`` for a claim the quick tier does not check. A NaN in a row's figures is never a pass.

Results go to ``<results_dir>/<scale>/<paper>.json`` after every row (atomically, merged into what
is there), the full table to ``<results_dir>/REPORT.md``; ``--resume`` skips rows already recorded
for the same scale and code version.

Usage::

  jaxpapers-reproduce                               # quick tier, every paper
  jaxpapers-reproduce --papers=bbmm,dmgan --scale=cpu
  jaxpapers-reproduce --scale=cpu --resume          # after an interruption
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging as std_logging
import math
import os
import pathlib
import platform
import signal
import subprocess
import sys
import threading
import time
import traceback

import tqdm
from absl import app, flags, logging

from jaxpapers._src import data as data_lib
from jaxpapers._src import registry
from jaxpapers._src.fileio import write_json_atomic as write_json_atomic
from jaxpapers._src.fileio import write_text_atomic as write_text_atomic

FLAGS = flags.FLAGS

_PAPERS = flags.DEFINE_string(
    "papers", "all", "'all' or a comma-separated list of papers: " + ", ".join(registry.PAPERS))
_SCALE = flags.DEFINE_enum(
    "scale", "quick", list(registry.SCALES),
    "Tier to run: smoke (pipeline check, ~3 min), quick (~20 min), cpu (hours), full (accelerator).")
_ONLY = flags.DEFINE_string(
    "only", None, "Comma-separated row names to run (default: every row of the tier); an unknown "
    "name is an error.")
_RESUME = flags.DEFINE_bool(
    "resume", False, "Skip rows already in --results_dir for the same scale and code version.")
_RESULTS = flags.DEFINE_string(
    "results_dir", "results", "Where <scale>/<paper>.json (written after every row) and REPORT.md go.")
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Scratch folder for checkpoints and metrics (default <results_dir>/work).")
_PROGRESS = flags.DEFINE_bool(
    "progress", True, "Show a progress bar with an ETA for each row.")

OWN_FLAGS = ("papers", "scale", "only", "resume", "results_dir", "workdir", "progress", "verbosity")

HEADER = "| paper | reproduction | claim | paper | ours | scale | seeds | time (s) | result |"

OURS_WIDTH = 60
REPO = pathlib.Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- formatting


def cell(value) -> str:
  """A Markdown table cell: ``|`` escaped (rendered as ``|``), newlines folded, floats shortened."""
  if value is None:
    return "—"
  if isinstance(value, float):
    return f"{value:.4g}"
  return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _clip(text: str, width: int) -> str:
  text = " ".join(str(text).split())
  return text if len(text) <= width else text[: width - 1] + "…"


# ---------------------------------------------------------------- versions and machine


def code_version(paper: str) -> str:
  """A content hash of the paper's package and the shared ``_src`` helpers (the code that ran)."""
  h = hashlib.sha256()
  root = REPO / "jaxpapers"
  files = sorted((root / paper).rglob("*.py")) + sorted((root / "_src").rglob("*.py"))
  for path in files:
    h.update(str(path.relative_to(root)).encode())
    h.update(path.read_bytes())
  return h.hexdigest()[:16]


def git_commit() -> str | None:
  """The checkout's commit (with ``-dirty`` when files differ), or None outside a git checkout."""
  try:
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                          timeout=10)
    if head.returncode != 0:
      return None
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                           capture_output=True, text=True, timeout=10).stdout.strip()
    return head.stdout.strip() + ("-dirty" if dirty else "")
  except (OSError, subprocess.SubprocessError):
    return None


def machine() -> dict:
  import jax

  try:
    load = os.getloadavg()[0]
  except OSError:
    load = None
  return {"platform": platform.platform(), "python": platform.python_version(),
          "cpus": os.cpu_count(), "jax": jax.__version__,
          "devices": [str(d) for d in jax.devices()], "load_1min_at_start": load}


# ---------------------------------------------------------------- verdicts


def has_nan(value) -> bool:
  """True if any float in a (nested) measured record is NaN."""
  if isinstance(value, float):
    return math.isnan(value)
  if isinstance(value, dict):
    return any(has_nan(v) for v in value.values())
  if isinstance(value, (list, tuple)):
    return any(has_nan(v) for v in value)
  return False


def verdict_of(check_result, scale: str, measured: dict) -> str:
  """The row's verdict from its check, the tier and the figures (NaN is never a pass)."""
  if scale == "smoke":
    return "ran"
  if isinstance(check_result, str):
    if check_result not in ("pass", "fail", "inconclusive"):
      raise ValueError(f"check returned {check_result!r}; expected a bool or 'pass'/'fail'/"
                       "'inconclusive'")
    v = check_result
  else:
    v = "pass" if bool(check_result) else "fail"
  if v == "pass" and has_nan(measured):
    return "fail"
  return v


def _skip_message(err: data_lib.DatasetNotFoundError, rep: registry.Reproduction) -> str:
  sources = "; ".join(f"{d}: {registry.DATA_SOURCES[d]}" for d in rep.datasets)
  return f"{err}" + (f" (data from {sources})" if sources else "")


# ---------------------------------------------------------------- progress


class _RowProgress:
  """A bar that fills over the row's registered budget (ETA = budget − elapsed, labelled est.).

  On a terminal it redraws every second; in a log (stderr not a terminal) it writes one line a
  minute instead of a stream of carriage returns.
  """

  def __init__(self, label: str, budget: float | None, enabled: bool):
    self._stop = threading.Event()
    self._thread = None
    self._bar = None
    self._label = label
    self._budget = float(budget) if budget else None
    self._tty = sys.stderr.isatty()
    self._start = time.perf_counter()
    if not enabled:
      return
    if self._tty:
      self._bar = tqdm.tqdm(
          total=self._budget, desc=label, leave=False, unit="s", dynamic_ncols=True,
          bar_format=("{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s (est. {remaining} "
                      "left)") if self._budget else "{desc}: {n:.0f} s elapsed")
    self._thread = threading.Thread(target=self._tick, daemon=True)
    self._thread.start()

  def _tick(self):
    period = 1.0 if self._tty else 60.0
    while not self._stop.wait(period):
      elapsed = time.perf_counter() - self._start
      if self._budget and elapsed > self._budget:
        self._budget = elapsed * 1.25  # over budget: keep an honest, growing estimate
      if self._bar is not None:
        self._bar.total = self._budget
        self._bar.n = elapsed
        self._bar.refresh()
      else:
        left = f", est. {self._budget - elapsed:.0f} s left" if self._budget else ""
        print(f"  {self._label}: {elapsed:.0f} s{left}", file=sys.stderr, flush=True)

  def close(self):
    self._stop.set()
    if self._thread is not None:
      self._thread.join()
    if self._bar is not None:
      self._bar.close()


# ---------------------------------------------------------------- running rows


def rows_for(paper: str, scale: str, only=None):
  """(rows to run, rows not in this tier) of ``paper`` at ``scale``."""
  reps = registry.reproductions(paper)
  run = [r for r in reps if r.in_tier(scale) and (not only or r.name in only)]
  outside = [r for r in reps if not r.in_tier(scale) and (not only or r.name in only)]
  return run, outside


def run_row(rep: registry.Reproduction, scale: str, workdir: str, *, progress: bool = False) -> dict:
  """Runs one reproduction and returns its row (a failure is recorded, never raised)."""
  seeds = list(rep.seeds[scale])
  run_scale = rep.run_scale(scale)
  row = {"name": rep.name, "claim": rep.claim, "paper_value": rep.paper_value, "ours": None,
         "seeds": seeds, "seconds": None, "verdict": None, "passed": False,
         "scale_note": rep.scale_note.get(scale) or rep.scale_note.get(run_scale, ""),
         "run_as": run_scale,
         "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
  start = time.perf_counter()
  bar = _RowProgress(f"{rep.paper}/{rep.name}", rep.budget_s.get(scale), progress)
  try:
    rep_dir = os.path.join(workdir, scale, rep.paper, rep.name)
    os.makedirs(rep_dir, exist_ok=True)
    measured = _run_in_worker(lambda: dict(rep.run(run_scale, seeds, rep_dir)),
                              f"{rep.paper}/{rep.name}")
    row["measured"] = json.loads(json.dumps(measured, default=float))
    row["ours"] = rep.summary(measured)
    row["verdict"] = verdict_of(rep.check(measured, run_scale), scale, row["measured"])
  except data_lib.DatasetNotFoundError as e:
    row["verdict"] = "skipped"
    row["ours"] = "skipped: " + _skip_message(e, rep)
  except KeyboardInterrupt:
    row["verdict"] = "interrupted"
    row["seconds"] = round(time.perf_counter() - start, 2)
    raise _Interrupted(row) from None
  except Exception as e:  # noqa: BLE001 - one failure must not stop the others
    row["verdict"] = "error"
    row["error"] = f"{type(e).__name__}: {e}"
    logging.error("%s/%s failed:\n%s", rep.paper, rep.name, traceback.format_exc())
  finally:
    bar.close()
  row["passed"] = row["verdict"] == "pass"
  row["seconds"] = round(time.perf_counter() - start, 2)
  return row


def _run_in_worker(fn, name: str):
  """Runs ``fn`` in a worker thread while the main thread waits, so that Ctrl-C (SIGINT/SIGTERM)
  always reaches the main thread as a KeyboardInterrupt (raised inside the row's own code it can
  land in a callback that swallows it); the worker's exception, if any, is re-raised here."""
  box = {}

  def target():
    try:
      box["value"] = fn()
    except BaseException as e:  # noqa: BLE001 - re-raised in the main thread
      box["error"] = e

  thread = threading.Thread(target=target, name=name, daemon=True)
  thread.start()
  while thread.is_alive():
    thread.join(0.25)
  if "error" in box:
    raise box["error"]
  return box["value"]


class _Interrupted(Exception):
  def __init__(self, row):
    super().__init__("interrupted")
    self.row = row


def load_result(path: str | os.PathLike, paper: str, scale: str) -> dict | None:
  """A paper's earlier record at ``path`` (None when absent); refuses another paper/scale."""
  path = pathlib.Path(path)
  if not path.exists():
    return None
  try:
    data = json.loads(path.read_text(encoding="utf-8"))
  except (OSError, json.JSONDecodeError) as e:
    raise ValueError(f"{path}: not a readable results file ({e}); move it away to start afresh") from e
  if data.get("paper") != paper or data.get("scale") != scale:
    raise ValueError(f"{path}: holds paper={data.get('paper')!r} scale={data.get('scale')!r}, "
                     f"expected {paper!r} at {scale!r}")
  return data


def _order_rows(rows: list[dict], paper: str) -> list[dict]:
  order = {r.name: i for i, r in enumerate(registry.reproductions(paper))}
  return sorted(rows, key=lambda r: order.get(r["name"], len(order)))


def run_paper(paper: str, scale: str, workdir: str, only=None, *, results_path=None,
              resume: bool = False, progress: bool = False, on_row=None) -> dict:
  """Runs ``paper``'s rows of tier ``scale``; writes ``results_path`` after every row.

  Rows merge into the record already at ``results_path`` (same paper and scale): rows run now
  replace theirs, others stay. With ``resume``, rows already recorded with the same code version
  and a final verdict are not run again. A KeyboardInterrupt is recorded (the row in progress
  as ``interrupted``, the file marked ``interrupted``) and re-raised.
  """
  version = code_version(paper)
  previous = load_result(results_path, paper, scale) if results_path else None
  out = {"paper": paper, "scale": scale, "code_version": version, "commit": git_commit(),
         "machine": machine(), "reproductions": list(previous["reproductions"]) if previous else []}
  by_name = {r["name"]: i for i, r in enumerate(out["reproductions"])}

  def put(row):
    if row["name"] in by_name:
      out["reproductions"][by_name[row["name"]]] = row
    else:
      by_name[row["name"]] = len(out["reproductions"])
      out["reproductions"].append(row)
    out["reproductions"] = _order_rows(out["reproductions"], paper)
    by_name.clear()
    by_name.update({r["name"]: i for i, r in enumerate(out["reproductions"])})
    if results_path:
      write_json_atomic(results_path, out)

  try:
    reps, outside = rows_for(paper, scale, only)
  except Exception as e:  # noqa: BLE001 - reported in the paper's row
    out["error"] = f"{type(e).__name__}: {e}"
    logging.error("paper %s failed to import:\n%s", paper, traceback.format_exc())
    if results_path:
      write_json_atomic(results_path, out)
    return out
  for rep in outside:
    tiers = [s for s in registry.SCALES if rep.in_tier(s) and s != "smoke"]
    put({"name": rep.name, "claim": rep.claim, "paper_value": rep.paper_value,
         "ours": f"not checked at {scale}: only the {'/'.join(tiers)} tier checks this claim",
         "seeds": [], "seconds": 0.0, "verdict": "cpu only", "passed": False, "scale_note": ""})
  out.pop("interrupted", None)
  for rep in reps:
    old = previous and next((r for r in previous["reproductions"] if r["name"] == rep.name), None)
    if (resume and old and old.get("code_version") == version
        and old.get("verdict") not in (None, "interrupted", "error", "cpu only")):
      if on_row:
        on_row(paper, old, resumed=True)
      continue
    try:
      row = run_row(rep, scale, workdir, progress=progress)
    except _Interrupted as e:
      e.row["code_version"] = version
      out["interrupted"] = True
      put(e.row)
      raise KeyboardInterrupt from None
    row["code_version"] = version
    put(row)
    if on_row:
      on_row(paper, row, resumed=False)
  if results_path:
    write_json_atomic(results_path, out)
  return out


# ---------------------------------------------------------------- reports


def report_rows(result: dict) -> list[str]:
  """Full-text Markdown rows of one paper's record (REPORT.md and the README)."""
  paper, scale = result["paper"], result["scale"]
  if "error" in result:
    return [f"| {paper} | — | — | — | — | {scale} | — | — | error: {cell(result['error'])} |"]
  if not result["reproductions"]:
    return [f"| {paper} | — | no reproductions registered | — | — | {scale} | — | — | — |"]
  rows = []
  for r in result["reproductions"]:
    verdict = r.get("verdict") or ("pass" if r.get("passed") else "fail")
    if verdict == "error":
      verdict = "error: " + cell(r.get("error", ""))
    run_as = r.get("run_as", scale)
    note = r.get("scale_note")
    scale_cell = scale + (f" (runs the {run_as} setting)" if run_as != scale else "")
    scale_cell += f" ({cell(note)})" if note else ""
    rows.append(
        f"| {paper} | {r['name']} | {cell(r['claim'])} | {cell(r['paper_value'])} | {cell(r['ours'])} "
        f"| {scale_cell} | {','.join(map(str, r['seeds'])) or '—'} | {cell(r['seconds'])} | {verdict} |")
  return rows


def render_report(results: list[dict]) -> str:
  lines = [HEADER, "|---" * (HEADER.count("|") - 1) + "|"]
  for result in results:
    lines.extend(report_rows(result))
  return "\n".join(lines) + "\n"


def write_report(results: list[dict], path: str) -> str:
  scales = sorted({r["scale"] for r in results})
  text = (f"# jaxpapers reproduction report ({', '.join(scales)})\n\n" + render_report(results))
  write_text_atomic(path, text)
  return text


def terminal_table(results: list[dict]) -> str:
  """The compact verdict table printed at the end (full text is in REPORT.md)."""
  head = ("paper", "row", "ours", "paper value", "verdict", "min")
  body, cpu_only = [], {}
  for result in results:
    if "error" in result:
      body.append((result["paper"], "—", _clip(result["error"], OURS_WIDTH), "—", "error", "—"))
      continue
    for r in result["reproductions"]:
      if r.get("verdict") == "cpu only":
        cpu_only.setdefault(result["paper"], []).append(r["name"])
        continue
      minutes = "—" if r.get("seconds") is None else f"{r['seconds'] / 60:.1f}"
      ours = r.get("ours") if r.get("verdict") != "error" else r.get("error")
      body.append((result["paper"], r["name"], _clip(ours or "—", OURS_WIDTH),
                   _clip(r.get("paper_value") if r.get("paper_value") is not None else "—", 24),
                   r.get("verdict") or "—", minutes))
  widths = [max(len(str(x[i])) for x in [head, *body]) for i in range(len(head))]
  fmt = "  ".join(f"{{:<{w}}}" for w in widths)
  lines = [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
  lines += [fmt.format(*map(str, row)) for row in body]
  for paper, names in cpu_only.items():
    lines.append(f"{paper}: checked only by the cpu tier: {', '.join(names)}")
  return "\n".join(lines)


# ---------------------------------------------------------------- command line


def parse_papers(spec: str) -> list[str]:
  if spec.strip() == "all":
    return registry.available_papers()
  papers = [p.strip() for p in spec.split(",") if p.strip()]
  if not papers:
    raise app.UsageError("--papers: empty; give 'all' or paper names")
  for p in papers:
    if p not in registry.PAPERS:
      raise app.UsageError(f"--papers: unknown paper {p!r}; choose from {', '.join(registry.PAPERS)}")
  return papers


def parse_only(spec: str | None, papers: list[str], scale: str) -> set[str] | None:
  """Row names of ``--only``; each must be a row of the chosen papers in the chosen tier."""
  if not spec:
    return None
  names = {n.strip() for n in spec.split(",") if n.strip()}
  if not names:
    raise app.UsageError("--only: empty; give row names or leave it out")
  known, in_tier = set(), set()
  for paper in papers:
    for rep in registry.reproductions(paper):
      known.add(rep.name)
      if rep.in_tier(scale):
        in_tier.add(rep.name)
  unknown = sorted(names - known)
  if unknown:
    raise app.UsageError(f"--only: unknown row(s) {unknown} for papers {papers}; "
                         f"rows: {', '.join(sorted(known))}")
  outside = sorted(names - in_tier)
  if outside:
    raise app.UsageError(f"--only: row(s) {outside} are not in the {scale} tier; run them with "
                         "--scale=cpu")
  return names


def plan(papers: list[str], scale: str, only) -> tuple[str, float]:
  lines, total, unknown = [], 0.0, 0
  for paper in papers:
    try:
      reps, outside = rows_for(paper, scale, only)
    except Exception as e:  # noqa: BLE001 - the run reports it in the paper's row
      lines.append(f"  {paper}: cannot import ({type(e).__name__}: {e})")
      continue
    parts = []
    for rep in reps:
      b = rep.budget_s.get(scale)
      total += b or 0.0
      unknown += b is None
      parts.append(f"{rep.name} (~{b / 60:.1f} min)" if b else f"{rep.name} (no estimate)")
    if outside and scale == "quick":
      parts.append(f"cpu tier only: {', '.join(r.name for r in outside)}")
    lines.append(f"  {paper}: " + ("; ".join(parts) if parts else "no rows in this tier"))
  head = (f"Plan: {len(papers)} paper(s) at scale={scale} — estimated {total / 60:.0f} min on 2 idle "
          f"CPU cores" + (f" plus {unknown} row(s) without an estimate" if unknown else ""))
  return head + "\n" + "\n".join(lines), total


def usage_text() -> str:
  lines = [__doc__.strip(), "", "Flags:"]
  for name in OWN_FLAGS:
    flag = FLAGS[name]
    default = flag.default if name != "verbosity" else "-1 (warnings only; 0 = INFO)"
    help_text = flag.help if name != "verbosity" else (
        "Logging level; library INFO logs (orbax, XLA) stay out of the terminal unless >= 0.")
    lines.append(f"  --{name}: {help_text} (default: {default})")
  lines += ["", "Tiers and their durations on 2 idle CPU cores:"]
  lines += [f"  {k}: {v}" for k, v in registry.TIERS.items()]
  return "\n".join(lines)


def _quiet_libraries():
  """Library INFO logs (orbax's per-checkpoint lines, XLA's backend probing) stay out of the
  terminal; ``--verbosity=0`` brings them back."""
  import jax  # noqa: F401 - imported first so its logging set-up does not undo ours

  logging.set_verbosity(logging.WARNING)
  std_logging.getLogger().setLevel(std_logging.WARNING)
  for name in ("absl", "orbax", "jax", "etils", "jax._src.xla_bridge"):
    std_logging.getLogger(name).setLevel(std_logging.WARNING)


def main(argv):
  del argv
  if not _VERBOSITY_GIVEN[0]:
    _quiet_libraries()
  papers = parse_papers(_PAPERS.value)
  scale = _SCALE.value
  only = parse_only(_ONLY.value, papers, scale)
  results_dir = pathlib.Path(_RESULTS.value)
  if results_dir.exists() and not results_dir.is_dir():
    raise app.UsageError(f"--results_dir: {results_dir} exists and is not a folder")
  (results_dir / scale).mkdir(parents=True, exist_ok=True)
  if not os.access(results_dir / scale, os.W_OK):
    raise app.UsageError(f"--results_dir: {results_dir / scale} is not writable")
  workdir = _WORKDIR.value or str(results_dir / "work")
  text, _ = plan(papers, scale, only)
  print(text, flush=True)

  def on_row(paper, row, resumed):
    note = " (resumed: recorded earlier)" if resumed else ""
    ours = row.get("ours") if row.get("verdict") != "error" else row.get("error")
    print(f"[{paper}] {row['name']}: {row['verdict']}{note} — {_clip(ours or '', 100)} "
          f"({row.get('seconds')} s)", flush=True)

  # SIGTERM is an interruption too: finished rows stay, the row in progress is marked.
  signal.signal(signal.SIGTERM, signal.default_int_handler)
  # A process started from a non-interactive shell's background job inherits SIGINT ignored,
  # and Python then installs no handler: Ctrl-C / kill -INT would be lost. Install it always.
  signal.signal(signal.SIGINT, signal.default_int_handler)
  results = []
  report_path = results_dir / "REPORT.md"
  try:
    for paper in papers:
      print(f"== {paper}", flush=True)
      results.append(run_paper(paper, scale, workdir, only,
                               results_path=results_dir / scale / f"{paper}.json",
                               resume=_RESUME.value, progress=_PROGRESS.value, on_row=on_row))
      write_report(results, report_path)
  except KeyboardInterrupt:
    print(f"\nInterrupted: finished rows are in {results_dir / scale}; rerun with --resume to "
          "continue.", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(130)  # the interrupted row's worker thread may still be inside XLA: do not wait
  write_report(results, report_path)
  print("\n" + terminal_table(results), flush=True)
  print(f"\nFull table: {report_path}", flush=True)
  return 0


_VERBOSITY_GIVEN = [False]  # absl reports --verbosity as set even when it is not: we look at argv


def run(argv=None):
  """Console-script entry point (``jaxpapers-reproduce``)."""
  argv = list(sys.argv if argv is None else argv)
  _VERBOSITY_GIVEN[0] = any(a.split("=")[0] in ("--verbosity", "-v", "--v") for a in argv[1:])
  if any(a in ("-h", "--help", "-?", "--helpshort") for a in argv[1:]):
    print(usage_text())
    return 0
  app.run(main, argv=argv)

"""The main job (jaxpapers-reproduce): verdicts, per-row atomic records, resume, interruption,
flags and the reports; and the README's results tables against the committed records."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest
from absl import app

from jaxpapers._src import data as data_lib
from jaxpapers._src import registry, reproduce

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tools import update_readme  # noqa: E402


def _rep(name, run, check=lambda m, s: m["x"] > 0, **kw):
  kw.setdefault("scale_note", {"smoke": "n=10"})
  return registry.Reproduction(paper="bbmm", name=name, claim="claim | with bar", paper_value=2.0,
                               run=run, check=check, summary=lambda m: f"x={m['x']:.2f}", **kw)


def _fake(monkeypatch, reps):
  monkeypatch.setattr(registry, "reproductions", lambda paper: reps)


def _env():
  env = dict(os.environ)
  env.pop("XLA_FLAGS", None)
  env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
  return env


# ---------------------------------------------------------------- verdicts


def test_verdicts_follow_the_check_the_tier_and_nan(monkeypatch, tmp_path):
  def boom(scale, seeds, wd):
    raise RuntimeError("diverged")

  def absent(scale, seeds, wd):
    data_lib.find_dataset("no-such-set", data_dir=tmp_path / "nowhere")

  reps = [_rep("ok", lambda s, seeds, wd: {"x": float(len(seeds))}),
          _rep("bad", boom),
          _rep("fails", lambda s, seeds, wd: {"x": -1.0}),
          _rep("nan", lambda s, seeds, wd: {"x": 1.0, "other": float("nan")}),
          _rep("tie", lambda s, seeds, wd: {"x": 1.0}, check=lambda m, s: "inconclusive"),
          _rep("absent", absent, check=lambda m, s: True, datasets=("movielens-100k",))]
  _fake(monkeypatch, reps)
  result = reproduce.run_paper("bbmm", "cpu", str(tmp_path))
  rows = {r["name"]: r for r in result["reproductions"]}
  assert rows["ok"]["verdict"] == "pass" and rows["ok"]["ours"] == "x=3.00"
  assert rows["bad"]["verdict"] == "error" and "diverged" in rows["bad"]["error"]
  assert rows["fails"]["verdict"] == "fail"
  assert rows["nan"]["verdict"] == "fail"  # a NaN in the figures is never a pass
  assert rows["tie"]["verdict"] == "inconclusive"
  assert rows["absent"]["verdict"] == "skipped"
  assert "no-such-set" in rows["absent"]["ours"] and "GroupLens" in rows["absent"]["ours"]
  smoke = reproduce.run_paper("bbmm", "smoke", str(tmp_path))
  verdicts = {r["name"]: r["verdict"] for r in smoke["reproductions"]}
  assert verdicts["ok"] == verdicts["fails"] == verdicts["nan"] == "ran"  # smoke never passes
  assert verdicts["bad"] == "error" and verdicts["absent"] == "skipped"
  text = reproduce.write_report([result], str(tmp_path / "REPORT.md"))
  lines = text.splitlines()
  assert lines[2] == reproduce.HEADER
  assert "claim \\| with bar" in text
  body = lines[4:]
  assert len(body) == len(reps)
  assert all(line.replace("\\|", "").count("|") == reproduce.HEADER.count("|") for line in body)


def test_check_returning_an_unknown_word_is_an_error(monkeypatch, tmp_path):
  _fake(monkeypatch, [_rep("odd", lambda s, seeds, wd: {"x": 1.0}, check=lambda m, s: "maybe")])
  row = reproduce.run_paper("bbmm", "cpu", str(tmp_path))["reproductions"][0]
  assert row["verdict"] == "error" and "maybe" in row["error"]


def test_import_failure_is_reported_in_its_row(monkeypatch, tmp_path):
  def broken(paper):
    raise ImportError("no module named foo")

  monkeypatch.setattr(registry, "reproductions", broken)
  result = reproduce.run_paper("dmgan", "smoke", str(tmp_path))
  assert "ImportError" in result["error"]
  assert "error: ImportError" in reproduce.report_rows(result)[0]


# ---------------------------------------------------------------- tiers, records, resume


def test_quick_tier_runs_its_rows_and_names_the_cpu_only_ones(monkeypatch, tmp_path):
  calls = []

  def run(scale, seeds, wd):
    calls.append((scale, tuple(seeds)))
    return {"x": 1.0}

  reps = [_rep("fast", run, run_as={"quick": "cpu"}), _rep("slow", run)]
  _fake(monkeypatch, reps)
  result = reproduce.run_paper("bbmm", "quick", str(tmp_path))
  rows = {r["name"]: r for r in result["reproductions"]}
  assert calls == [("cpu", (0, 1, 2))]  # quick ran the cpu setting with its seeds
  assert rows["fast"]["verdict"] == "pass" and rows["slow"]["verdict"] == "cpu only"
  table = reproduce.terminal_table([result])
  assert "checked only by the cpu tier: slow" in table
  assert all(len(line) < 160 for line in table.splitlines())


def test_records_merge_per_row_and_resume_skips_finished_rows(monkeypatch, tmp_path):
  counts = {"a": 0, "b": 0}

  def runner(name):
    def run(scale, seeds, wd):
      counts[name] += 1
      return {"x": 1.0}
    return run

  reps = [_rep("a", runner("a")), _rep("b", runner("b"))]
  _fake(monkeypatch, reps)
  path = tmp_path / "cpu" / "bbmm.json"
  reproduce.run_paper("bbmm", "cpu", str(tmp_path / "w"), {"a"}, results_path=path)
  reproduce.run_paper("bbmm", "cpu", str(tmp_path / "w"), {"b"}, results_path=path)
  rows = json.loads(path.read_text())["reproductions"]
  assert [r["name"] for r in rows] == ["a", "b"]  # --only=b kept a's row
  reproduce.run_paper("bbmm", "cpu", str(tmp_path / "w"), results_path=path, resume=True)
  assert counts == {"a": 1, "b": 1}
  monkeypatch.setattr(reproduce, "code_version", lambda paper: "changed")
  reproduce.run_paper("bbmm", "cpu", str(tmp_path / "w"), results_path=path, resume=True)
  assert counts == {"a": 2, "b": 2}  # another code version is run again
  with pytest.raises(ValueError, match="scale"):
    reproduce.run_paper("bbmm", "smoke", str(tmp_path / "w"), results_path=path)


def test_interruption_keeps_finished_rows_and_marks_the_run(monkeypatch, tmp_path):
  def interrupt(scale, seeds, wd):
    raise KeyboardInterrupt

  _fake(monkeypatch, [_rep("done", lambda s, seeds, wd: {"x": 1.0}), _rep("cut", interrupt)])
  path = tmp_path / "bbmm.json"
  with pytest.raises(KeyboardInterrupt):
    reproduce.run_paper("bbmm", "cpu", str(tmp_path), results_path=path)
  data = json.loads(path.read_text())
  assert data["interrupted"] is True
  assert {r["name"]: r["verdict"] for r in data["reproductions"]} == {"done": "pass",
                                                                      "cut": "interrupted"}


def test_only_names_must_exist_and_be_in_the_tier():
  with pytest.raises(app.UsageError, match="unknown row"):
    reproduce.parse_only("no_such_row", ["bbmm"], "quick")
  with pytest.raises(app.UsageError, match="not in the quick tier"):
    reproduce.parse_only("speedup_vs_cholesky", ["bbmm"], "quick")
  assert reproduce.parse_only("mll_accuracy", ["bbmm"], "quick") == {"mll_accuracy"}
  with pytest.raises(app.UsageError, match="unknown paper 'nope'"):
    reproduce.parse_papers("bbmm,nope")


def test_every_paper_has_a_quick_row_with_a_budget_and_the_tier_fits_20_minutes():
  total = 0.0
  for paper in registry.available_papers():
    rows, _ = reproduce.rows_for(paper, "quick")
    assert rows, f"{paper} has no row in the quick tier"
    for rep in rows:
      assert rep.budget_s.get("quick"), f"{paper}/{rep.name}: no quick budget"
      total += rep.budget_s["quick"]
  assert total <= 20 * 60, total


# ---------------------------------------------------------------- the command


def test_help_lists_the_flags_and_tiers():
  proc = subprocess.run([sys.executable, str(REPO / "experiments" / "reproduce.py"), "--help"],
                        env=_env(), capture_output=True, text=True, timeout=120)
  assert proc.returncode == 0, proc.stderr
  for flag in ("--papers", "--scale", "--only", "--resume", "--results_dir"):
    assert flag in proc.stdout
  for tier in registry.TIERS:
    assert f"  {tier}:" in proc.stdout


def test_unknown_only_exits_nonzero_and_writes_nothing(tmp_path):
  proc = subprocess.run(
      [sys.executable, str(REPO / "experiments" / "reproduce.py"), "--papers=bbmm",
       "--only=nope", f"--results_dir={tmp_path}"], env=_env(), capture_output=True, text=True,
      timeout=120)
  assert proc.returncode != 0 and "unknown row" in proc.stderr
  assert not list(tmp_path.rglob("*.json"))


def test_sigint_mid_row_leaves_valid_json(tmp_path):
  args = [sys.executable, str(REPO / "experiments" / "reproduce.py"), "--papers=volume_sampling",
          "--scale=quick", "--only=k_equals_d", f"--results_dir={tmp_path}", "--noprogress"]
  proc = subprocess.Popen(args, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
  # Wait until the row is running (its folder is made after the SIGINT handler is installed).
  # On a heavily loaded machine start-up alone can take minutes: a signal sent before the handler
  # exists is lost when the test runner itself ignores SIGINT (a background job), so never send
  # it early -- wait for the row, however long.
  # The row may also be short (~1-6 s here, mostly its compile): interrupt it right after it
  # starts, not after a fixed delay, or the signal can land in interpreter shutdown (exit -2).
  row_dir = tmp_path / "work" / "quick" / "volume_sampling" / "k_equals_d"
  deadline = time.time() + 600
  while time.time() < deadline and not row_dir.exists() and proc.poll() is None:
    time.sleep(0.01)
  assert row_dir.exists(), "the row never started"
  time.sleep(0.2)
  proc.send_signal(signal.SIGINT)
  out, err = proc.communicate(timeout=120)
  assert proc.returncode == 130, err[-3000:]
  data = json.loads((tmp_path / "quick" / "volume_sampling.json").read_text())
  verdicts = {r["name"]: r["verdict"] for r in data["reproductions"]}
  assert data["interrupted"] is True and verdicts == {"k_equals_d": "interrupted"}


def test_resume_after_a_finished_run_skips_everything(tmp_path):
  args = [sys.executable, str(REPO / "experiments" / "reproduce.py"), "--papers=convlstm_attention",
          "--scale=quick", f"--results_dir={tmp_path}", "--noprogress"]
  first = subprocess.run(args, env=_env(), capture_output=True, text=True, timeout=300)
  assert first.returncode == 0, first.stderr[-3000:]
  assert "gate_parameters" in first.stdout and "checked only by the cpu tier" in first.stdout
  second = subprocess.run(args + ["--resume"], env=_env(), capture_output=True, text=True,
                          timeout=300)
  assert second.returncode == 0 and "resumed" in second.stdout
  assert json.loads((tmp_path / "quick" / "convlstm_attention.json").read_text())["reproductions"]


# ---------------------------------------------------------------- README and committed records


def test_readme_tables_equal_the_committed_records():
  readme = (REPO / "README.md").read_text(encoding="utf-8")
  blocks = update_readme.blocks(readme)
  assert "quick" in blocks, "README needs a <!-- results:quick:start --> block"
  for scale, text in blocks.items():
    assert text == update_readme.render(REPO / "results", scale), (
        f"README's {scale} table is not what results/{scale}/*.json render to: run "
        "python tools/update_readme.py")
  for scale in blocks:
    for path in (REPO / "results" / scale).glob("*.json"):
      record = json.loads(path.read_text())
      assert record["scale"] == scale and record.get("commit") and record.get("machine")
      assert not record.get("interrupted"), f"{path} is an interrupted run"
      for row in record["reproductions"]:
        if row["verdict"] not in ("cpu only", "skipped", "error"):
          assert row["seeds"] and row["seconds"] is not None and "measured" in row


def test_update_readme_rewrites_only_the_blocks(tmp_path):
  (tmp_path / "cpu").mkdir()
  rec = {"paper": "bbmm", "scale": "cpu", "reproductions": [
      {"name": "new_b", "claim": "c", "paper_value": "p", "ours": "o", "seeds": [0, 1],
       "seconds": 2.0, "verdict": "pass"}]}
  (tmp_path / "cpu" / "bbmm.json").write_text(json.dumps(rec))
  readme = (f"intro\n{update_readme.start('cpu')}\nold table\n{update_readme.end('cpu')}\noutro\n")
  out = update_readme.update(readme, tmp_path)
  assert out.startswith("intro\n") and out.endswith("outro\n") and "old table" not in out
  assert "| bbmm | new_b |" in out and reproduce.HEADER in out

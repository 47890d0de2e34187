"""Project-level tests: the main job, every experiment binary and notebook at smoke scale, the
public API, BUILD kept in step with the tree, declared dependencies, and lint."""

import importlib
import inspect
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tomllib

import pytest

from jaxpapers._src import data as data_lib
from jaxpapers._src import registry, reproduce

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tools import gen_build  # noqa: E402

PAPERS = registry.available_papers()
MAINS = sorted(REPO.glob("experiments/*/main.py"))
NOTEBOOKS = sorted(REPO.glob("colabs/*.ipynb"))


def has_shared_data() -> bool:
  return any((root / "libsvm-regression").is_dir() for root in data_lib.default_roots())


def _env():
  env = dict(os.environ)
  env.pop("XLA_FLAGS", None)
  env["JAXPAPERS_SCALE"] = "smoke"
  env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
  return env


# ---------------------------------------------------------------- the main job


def _rep(name, run, check=lambda m, s: m["x"] > 0):
  return registry.Reproduction(paper="bbmm", name=name, claim="claim | with bar", paper_value=2.0,
                               run=run, check=check, summary=lambda m: f"x={m['x']:.2f}",
                               scale_note={"smoke": "n=10"})


def test_run_paper_records_failures_and_keeps_going(monkeypatch, tmp_path):
  def boom(scale, seeds, wd):
    raise RuntimeError("diverged")

  reps = [_rep("ok", lambda s, seeds, wd: {"x": float(len(seeds))}), _rep("bad", boom),
          _rep("fails", lambda s, seeds, wd: {"x": -1.0})]
  monkeypatch.setattr(registry, "reproductions", lambda paper: reps)
  result = reproduce.run_paper("bbmm", "smoke", str(tmp_path))
  rows = {r["name"]: r for r in result["reproductions"]}
  assert rows["ok"]["passed"] and rows["ok"]["ours"] == "x=1.00" and rows["ok"]["seeds"] == [0]
  assert not rows["bad"]["passed"] and "diverged" in rows["bad"]["error"]
  assert not rows["fails"]["passed"] and "error" not in rows["fails"]
  for r in rows.values():
    assert set(r) >= {"name", "claim", "paper_value", "ours", "seeds", "seconds", "passed"}
  text = reproduce.write_report([result], str(tmp_path / "REPORT.md"))
  lines = text.splitlines()
  assert lines[2] == reproduce.HEADER
  assert len(lines) == 4 + 3
  assert "| pass |" in lines[4] and "ERROR: RuntimeError: diverged" in lines[5] and "| fail |" in lines[6]
  assert all(line.count("|") == reproduce.HEADER.count("|") for line in lines[4:])
  json.dumps(result)


def test_import_failure_is_reported_in_its_row(monkeypatch, tmp_path):
  def broken(paper):
    raise ImportError("no module named foo")

  monkeypatch.setattr(registry, "reproductions", broken)
  result = reproduce.run_paper("dmgan", "smoke", str(tmp_path))
  assert "ImportError" in result["error"]
  assert "ERROR: ImportError" in reproduce.report_rows(result)[0]


def test_unknown_paper_is_a_usage_error():
  from absl import app

  with pytest.raises(app.UsageError, match="unknown paper 'nope'"):
    reproduce.parse_papers("bbmm,nope")
  assert reproduce.parse_papers("all") == PAPERS


def test_reproduce_binary_at_smoke_writes_json_and_report(tmp_path):
  out = tmp_path / "results"
  proc = subprocess.run(
      [sys.executable, str(REPO / "experiments" / "reproduce.py"), "--papers=all", "--scale=smoke",
       f"--results_dir={out}"], cwd=tmp_path, env=_env(), capture_output=True, text=True,
      timeout=600)
  assert proc.returncode == 0, proc.stderr[-4000:]
  report = (out / "REPORT.md").read_text()
  assert reproduce.HEADER in report
  for paper in PAPERS:
    data = json.loads((out / f"{paper}.json").read_text())
    assert data["paper"] == paper and data["scale"] == "smoke"
    assert "error" not in data, data.get("error")
    assert data["reproductions"], f"{paper} registered no reproductions"
    for r in data["reproductions"]:
      if r.get("error", "").startswith("DatasetNotFoundError") and not has_shared_data():
        continue  # a real-data row without ../shared/data is reported as such, not crashed
      assert "error" not in r, f"{paper}/{r['name']}: {r.get('error')}"
      assert f"| {paper} | {r['name']} |" in report


# ---------------------------------------------------------------- experiment binaries


@pytest.mark.parametrize("main", MAINS, ids=[m.parent.name for m in MAINS])
def test_experiment_main_runs_at_smoke(main, tmp_path):
  cfg = main.parent / "configs" / "default.py"
  assert cfg.exists(), f"{cfg} is missing"
  proc = subprocess.run(
      [sys.executable, str(main), f"--config={cfg}:smoke", f"--workdir={tmp_path / 'wd'}"],
      cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-4000:]


def test_every_paper_has_an_experiment_and_a_notebook():
  for paper in PAPERS:
    assert (REPO / "experiments" / paper / "main.py").exists(), paper
    assert (REPO / "colabs" / f"{paper}.ipynb").exists(), paper


# ---------------------------------------------------------------- notebooks


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=[n.stem for n in NOTEBOOKS])
def test_notebook_runs_at_smoke(nb_path, tmp_path, monkeypatch):
  import nbclient
  import nbformat

  nb = nbformat.read(nb_path, as_version=4)
  assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit without outputs"
  assert "import jaxpapers" in nb.cells[1].source and "pip" in nb.cells[1].source
  assert "SCALE" in nb.cells[2].source
  for k, v in _env().items():
    monkeypatch.setenv(k, v)
  client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                   resources={"metadata": {"path": str(tmp_path)}})
  client.execute()


# ---------------------------------------------------------------- public API


@pytest.mark.parametrize("paper", PAPERS)
def test_public_api_is_documented(paper):
  mod = importlib.import_module(f"jaxpapers.{paper}")
  assert mod.__doc__ and len(mod.__doc__) > 40, f"jaxpapers.{paper} needs a docstring citing the paper"
  public = [n for n in dir(mod) if not n.startswith("_")]
  assert public
  for name in public:
    obj = getattr(mod, name)
    if inspect.ismodule(obj):
      continue
    if inspect.isfunction(obj) or inspect.isclass(obj):
      assert inspect.getdoc(obj), f"jaxpapers.{paper}.{name} has no docstring"
  import jaxpapers

  assert getattr(jaxpapers, paper) is mod
  assert importlib.import_module(f"jaxpapers.{paper}.config").get_config("smoke") is not None


def test_top_level_package():
  import jaxpapers

  assert jaxpapers.PAPERS == registry.PAPERS
  with pytest.raises(AttributeError):
    jaxpapers.not_a_paper  # noqa: B018


# ---------------------------------------------------------------- BUILD, deps, lint


def test_build_file_is_in_step_with_tree_and_imports():
  assert gen_build.generate() == (REPO / "BUILD").read_text(), "run: python tools/gen_build.py"
  text = (REPO / "BUILD").read_text()
  for paper in gen_build.papers_present():
    assert f'name = "{paper}"' in text
  for t in REPO.glob("tests/test_*.py"):
    assert f'name = "{t.stem}"' in text


def test_every_third_party_import_is_a_declared_dependency():
  meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
  declared = {d.split(">")[0].split("=")[0].split("[")[0].strip().lower()
              for d in meta["dependencies"]}
  test_extra = {d.split(">")[0].split("=")[0].strip().lower()
                for d in meta["optional-dependencies"]["test"]}
  papers = gen_build.papers_present()
  for path in REPO.glob("jaxpapers/**/*.py"):
    _, pip = gen_build.classify(gen_build.module_imports(path), papers)
    missing = {p for p in pip if p.lower() not in declared | {"pytest"}}
    assert not missing, f"{path.relative_to(REPO)} imports undeclared {missing}"
  for path in list(REPO.glob("tests/*.py")) + list(REPO.glob("experiments/**/*.py")):
    _, pip = gen_build.classify(gen_build.module_imports(path), papers)
    missing = {p for p in pip if p.lower() not in declared | test_extra}
    assert not missing, f"{path.relative_to(REPO)} imports undeclared {missing}"


def test_ruff_is_clean():
  ruff = shutil.which("ruff") or str(pathlib.Path(sys.executable).parent / "ruff")
  proc = subprocess.run([ruff, "check", "--no-cache", str(REPO)], cwd=REPO, capture_output=True,
                        text=True, timeout=120)
  assert proc.returncode == 0, proc.stdout[-4000:]


def test_ci_runs_the_readme_test_command():
  readme = (REPO / "README.md").read_text()
  ci = (REPO / ".ci" / "run").read_text()
  command = 'pip install -e ".[test]" && python -m pytest -n 2 tests'
  assert command in readme and command in ci.splitlines()[-1]
  assert 'pip install -e . && jaxpapers-reproduce --papers=all --scale=cpu' in readme


def test_update_readme_replaces_only_the_papers_with_fresh_results():
  from tools import update_readme
  head = reproduce.HEADER + "\n|---|---|---|---|---|---|---|---|---|\n"
  readme = (f"intro\n{update_readme.START}\n{head}"
            "| pipe_sgd | old_a | c | p | o | cpu | 0 | 1 | pass |\n"
            "| bbmm | old_b | c | p | o | cpu | 0 | 1 | fail |\n"
            f"{update_readme.END}\noutro\n")
  fresh = {"paper": "bbmm", "scale": "cpu", "reproductions": [
      {"name": "new_b", "claim": "c", "paper_value": "p", "ours": "o", "seeds": [0, 1],
       "seconds": 2.0, "passed": True}]}
  out = update_readme.update(readme, update_readme.merge(readme, [fresh]))
  assert "| pipe_sgd | old_a |" in out and "old_b" not in out
  assert "| bbmm | new_b |" in out and out.startswith("intro\n") and out.endswith("outro\n")
  rows = out.split(update_readme.START)[1].split(update_readme.END)[0].strip().splitlines()
  assert rows[0] == reproduce.HEADER and len(rows) == 4

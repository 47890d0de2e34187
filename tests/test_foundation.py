"""Project-level tests: the main job, every experiment binary and notebook at smoke scale, the
public API, BUILD kept in step with the tree, declared dependencies, and lint."""

import importlib
import inspect
import json
import os
import pathlib
import re
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


OUTSIDE_SHARED_DATA = ("exact_gp_rmse", "motion_gates_without_convolutions",
                       "motion_attention_does_not_help")


def has_shared_data() -> bool:
  return any((root / "libsvm-regression").is_dir() for root in data_lib.default_roots())


def _env():
  env = dict(os.environ)
  env.pop("XLA_FLAGS", None)
  env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
  return env


# ---------------------------------------------------------------- the main job


def test_reproduce_binary_at_smoke_writes_json_and_report(tmp_path):
  out = tmp_path / "results"
  proc = subprocess.run(
      [sys.executable, str(REPO / "experiments" / "reproduce.py"), "--papers=all", "--scale=smoke",
       f"--results_dir={out}", "--noprogress"], cwd=tmp_path, env=_env(), capture_output=True,
      text=True, timeout=1800)  # ~3 min idle; the margin is for a loaded machine
  assert proc.returncode == 0, proc.stderr[-4000:]
  report = (out / "REPORT.md").read_text()
  assert reproduce.HEADER in report
  for paper in PAPERS:
    data = json.loads((out / "smoke" / f"{paper}.json").read_text())
    assert data["paper"] == paper and data["scale"] == "smoke"
    assert "error" not in data, data.get("error")
    assert data["reproductions"], f"{paper} registered no reproductions"
    for r in data["reproductions"]:
      if r["verdict"] == "skipped":
        # With ../shared/data present only rows whose data lives elsewhere may skip: the motion
        # rows read BasicMotions from the optional `motion` extra (aeon), which tests do not install.
        assert not has_shared_data() or r["name"] in OUTSIDE_SHARED_DATA, r
        continue
      assert r["verdict"] == "ran", f"{paper}/{r['name']}: {r['verdict']} {r.get('error')}"
      assert f"| {paper} | {r['name']} |" in report
  assert "PASS" not in proc.stdout and "| pass |" not in report  # smoke checks the pipeline only


# ---------------------------------------------------------------- experiment binaries


@pytest.mark.parametrize("main", MAINS, ids=[m.parent.name for m in MAINS])
def test_experiment_main_runs_at_smoke(main, tmp_path):
  cfg = main.parent / "configs" / "default.py"
  assert cfg.exists(), f"{cfg} is missing"
  proc = subprocess.run(
      [sys.executable, str(main), f"--config={cfg}:smoke", f"--workdir={tmp_path / 'wd'}"],
      cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=1200)  # margin for load
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
  code = [c.source for c in nb.cells if c.cell_type == "code"]
  assert "import jaxpapers" in code[0] and "pip" in code[0] and "REPO_URL" in code[0]
  assert "git+https://github.com/jaxpapers" not in code[0]  # no unpinned URL of a repo nobody owns
  assert 'SCALE = "smoke"  # @param ["smoke", "quick", "cpu", "full"]' in code[1]
  assert "jax.devices()" in code[2]
  for source in code:
    assert not re.search(r"jaxpapers\._src|\b\w+\._[a-z]\w*", source), source  # public API only
    assert "os.environ" not in source and "JAXPAPERS_SCALE" not in source
  for k, v in _env().items():
    monkeypatch.setenv(k, v)
  client = nbclient.NotebookClient(nb, timeout=1200, kernel_name="python3",
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
  deps, extras = _declared()
  declared = {_name(d) for d in deps}
  atari = {_name(d) for d in extras["atari"]}  # imported lazily, only on the Atari path
  test_extra = {_name(d) for d in extras["test"]}
  papers = gen_build.papers_present()
  for path in REPO.glob("jaxpapers/**/*.py"):
    _, pip = gen_build.classify(gen_build.module_imports(path), papers)
    missing = {p for p in pip if _name(p) not in declared | atari | {"pytest"}}
    assert not missing, f"{path.relative_to(REPO)} imports undeclared {missing}"
  for path in list(REPO.glob("tests/*.py")) + list(REPO.glob("experiments/**/*.py")):
    _, pip = gen_build.classify(gen_build.module_imports(path), papers)
    missing = {p for p in pip if _name(p) not in declared | test_extra}
    assert not missing, f"{path.relative_to(REPO)} imports undeclared {missing}"


def test_core_import_needs_no_optional_package():
  code = ("import sys, importlib, importlib.abc\n"
          "class Hide(importlib.abc.MetaPathFinder):\n"
          "  def find_spec(self, name, path=None, target=None):\n"
          "    if name.split('.')[0] in ('ale_py', 'torch', 'gpytorch'):\n"
          "      raise ModuleNotFoundError(name)\n"
          "sys.meta_path.insert(0, Hide())\n"
          "import jaxpapers\n"
          "for p in jaxpapers.PAPERS:\n"
          "  importlib.import_module('jaxpapers.' + p)\n")
  proc = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True,
                        timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]


def test_ruff_is_clean():
  ruff = shutil.which("ruff") or str(pathlib.Path(sys.executable).parent / "ruff")
  proc = subprocess.run([ruff, "check", "--no-cache", str(REPO)], cwd=REPO, capture_output=True,
                        text=True, timeout=120)
  assert proc.returncode == 0, proc.stdout[-4000:]


def test_ci_runs_the_readme_test_command():
  readme = (REPO / "README.md").read_text()
  ci = (REPO / ".ci" / "run").read_text()
  command = 'pip install -c requirements_lock.txt -e ".[test]" && python -m pytest -n 2 tests'
  assert command in readme and command in ci.splitlines()[-1]
  assert "pip install -c requirements_lock.txt -e . && jaxpapers-reproduce\n" in readme


def _declared():
  meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
  return meta["dependencies"], meta["optional-dependencies"]


def _name(req: str) -> str:
  return re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0].strip().lower().replace("_", "-")


def test_every_declared_dependency_is_imported_by_the_library():
  deps, _ = _declared()
  used = set()
  papers = gen_build.papers_present()
  for path in REPO.glob("jaxpapers/**/*.py"):
    _, pip = gen_build.classify(gen_build.module_imports(path), papers)
    used |= {p.lower().replace("_", "-") for p in pip}
  unused = {_name(d) for d in deps} - used
  assert not unused, f"declared in [project.dependencies] but imported nowhere in jaxpapers/: {unused}"
  for d in deps:
    assert re.search(r">=\s*[0-9]", d), f"dependency {d!r} needs a lower bound"


def test_lock_file_pins_every_dependency_and_agrees_with_pyproject():
  from packaging.requirements import Requirement
  from packaging.version import Version

  deps, extras = _declared()
  lock = {}
  for line in (REPO / "requirements_lock.txt").read_text().splitlines():
    line = line.split("#", 1)[0].strip()
    if line:
      name, _, version = line.partition("==")
      assert version, f"requirements_lock.txt: {line!r} is not pinned with =="
      lock[_name(name)] = Version(version)
  for req in [*deps, *extras["test"]]:
    r = Requirement(req)
    key = _name(r.name)
    assert key in lock, f"{key} is in pyproject.toml but not in requirements_lock.txt"
    assert r.specifier.contains(lock[key], prereleases=True), (
        f"requirements_lock.txt pins {key}=={lock[key]}, outside pyproject.toml's {r.specifier}")


def test_readme_python_example_runs():
  readme = (REPO / "README.md").read_text()
  section = readme.split("## Use it from Python", 1)[1]
  code = section.split("```python\n", 1)[1].split("```", 1)[0]
  assert len(code.strip().splitlines()) <= 12
  proc = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True,
                        timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  w = [float(v) for v in proc.stdout.replace("[", " ").replace("]", " ").split()]
  assert len(w) == 5 and all(abs(a - b) < 0.2 for a, b in zip(w, range(1, 6))), proc.stdout

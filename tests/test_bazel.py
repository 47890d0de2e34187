"""Static checks of the Bazel build (no bazel run here; .ci/bazel.sh runs bazel): BUILD is
generated and in step, lists each dependency once and nothing fetched, every py_test runs its
test file through the pytest runner, and the runner's exit status follows pytest's."""

import ast
import os
import pathlib
import re
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tools import gen_build  # noqa: E402

RULES = ("jp_py_library", "jp_py_binary", "jp_py_test")
FAIL_TEST = "tests/bazel_fail/deliberate_failure.py"


def _calls(path: pathlib.Path) -> list[tuple[str, dict]]:
  """(rule, {attr: value}) for each top-level rule call of a BUILD file (Starlark parses as Python)."""
  out = []
  for node in ast.parse(path.read_text(), filename=str(path)).body:
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
      call = node.value
      kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
      out.append((call.func.id, kwargs))
  return out


BUILD_CALLS = _calls(REPO / "BUILD")


def test_build_is_generated_from_the_tree():
  assert gen_build.generate() == (REPO / "BUILD").read_text(), "run: python tools/gen_build.py"


def test_each_dependency_is_listed_once_and_nothing_is_external():
  for rule, kw in BUILD_CALLS + _calls(REPO / "tests" / "bazel_fail" / "BUILD"):
    if rule not in RULES:
      continue
    for attr in ("srcs", "deps", "pip", "data"):
      values = kw.get(attr, [])
      assert len(values) == len(set(values)), f"{kw['name']}: duplicated {attr}: {values}"
    assert all(d.startswith(":") for d in kw.get("deps", [])), kw["name"]
    assert all(re.fullmatch(r"[a-z0-9][a-z0-9._-]*", p, re.I) for p in kw.get("pip", [])), kw
  with pytest.raises(ValueError, match="duplicated"):
    gen_build._rule("jp_py_test", "t", ["a.py"], [":_src", ":_src"], [])


def test_every_test_file_is_a_py_test_run_by_the_pytest_runner():
  tests = {kw["name"]: kw for rule, kw in BUILD_CALLS if rule == "jp_py_test"}
  files = sorted(REPO.glob("tests/test_*.py"))
  assert sorted(tests) == [f.stem for f in files]
  for f in files:
    # jp_py_test runs pytest on its first source; the runner is added by the macro.
    assert tests[f.stem]["srcs"][0] == f"tests/{f.name}"
    assert not any(s.endswith("pytest_main.py") for s in tests[f.stem]["srcs"])
  defs = (REPO / "build_defs.bzl").read_text()
  assert '_PYTEST_MAIN = "//:tools/pytest_main.py"' in defs
  assert "main = _PYTEST_MAIN" in defs
  assert 'args = ["$(rootpath %s)" % srcs[0]]' in defs
  assert "@rules_python" not in defs and "@pip" not in defs


def test_workspace_fetches_nothing():
  workspace = (REPO / "WORKSPACE").read_text()
  code = "\n".join(line for line in workspace.splitlines() if not line.lstrip().startswith("#"))
  for word in ("http_archive", "git_repository", "url", "pip_parse", "rules_python"):
    assert word not in code, word
  bazelrc = (REPO / ".bazelrc").read_text()
  assert "build --experimental_repository_disable_download" in bazelrc
  assert "build --spawn_strategy=local" in bazelrc


def test_the_deliberately_failing_target_is_manual_and_hidden_from_pytest():
  (rule, kw), = _calls(REPO / "tests" / "bazel_fail" / "BUILD")[-1:]
  assert rule == "jp_py_test" and kw["srcs"] == [pathlib.Path(FAIL_TEST).name]
  assert "manual" in kw["tags"]  # bazel test //... skips it; .ci/bazel.sh checks it fails
  assert not pathlib.Path(FAIL_TEST).name.startswith("test_")  # `pytest tests` never collects it
  ci = (REPO / ".ci" / "bazel.sh").read_text()
  assert "//tests/bazel_fail:deliberate_failure" in ci
  assert os.access(REPO / ".ci" / "bazel.sh", os.X_OK)


@pytest.mark.parametrize("extra, code", [([], 1), (["-k", "test_passes"], 0)])
def test_runner_exits_with_pytests_status(extra, code):
  env = dict(os.environ, PYTHONPATH=str(REPO))
  env.pop("XML_OUTPUT_FILE", None)
  env.pop("TESTBRIDGE_TEST_ONLY", None)
  proc = subprocess.run([sys.executable, str(REPO / "tools" / "pytest_main.py"), FAIL_TEST,
                         "--noconftest", *extra],
                        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  assert proc.returncode == code, proc.stdout[-2000:] + proc.stderr[-2000:]

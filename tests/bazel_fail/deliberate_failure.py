"""A test that always fails, run only by `bazel test //tests/bazel_fail:deliberate_failure`
(tagged manual, so `bazel test //...` skips it): .ci/bazel.sh checks that this target fails,
proving a failing assertion fails its Bazel target. The file name does not match test_*.py,
so a plain `pytest tests` never collects it."""


def test_passes():
  assert 1 + 1 == 2


def test_fails_on_purpose():
  assert 1 + 1 == 3, "deliberate failure: bazel test must report this target as FAILED"

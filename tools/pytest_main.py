"""Bazel's main for every py_test (see build_defs.bzl): runs the test file named by the first
argument through pytest and exits with pytest's status, so a failing assertion fails the target.

  python tools/pytest_main.py tests/test_src_helpers.py [extra pytest args]
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> int:
  if not argv:
    print("usage: pytest_main.py TEST_FILE [PYTEST_ARGS...]", file=sys.stderr)
    return 2
  import pytest

  args = [argv[0], "-q", "-p", "no:cacheprovider", *argv[1:]]
  # Bazel names a per-test XML report path; pytest writes it so failures show per test case.
  xml = os.environ.get("XML_OUTPUT_FILE")
  if xml:
    args.append(f"--junitxml={xml}")
  # Bazel's --test_filter selects test cases by pytest -k expression.
  test_filter = os.environ.get("TESTBRIDGE_TEST_ONLY")
  if test_filter:
    args += ["-k", test_filter]
  return int(pytest.main(args))


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))

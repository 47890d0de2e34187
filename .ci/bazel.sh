#!/usr/bin/env bash
# CI for the Bazel build: with the Bazel of Debian's bazel-bootstrap package (installed here if
# missing) and nothing fetched from the network, check that BUILD is in step with the tree,
# build every target, run a few cheap test targets through pytest, and check that a target
# whose test fails on purpose makes `bazel test` fail.
#
# Run from an activated virtualenv that has `pip install -e ".[test]"` (as .ci/run makes): its
# python3 is the interpreter Bazel's Python targets run under (see .bazelrc, build_defs.bzl).
#   source .venv-ci/bin/activate && .ci/bazel.sh
# BAZEL names another bazel binary; BAZEL_TESTS replaces the list of test targets.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${VIRTUAL_ENV:-}" ]]; then
  echo "bazel.sh: activate the virtualenv first (source .venv-ci/bin/activate)" >&2
  exit 2
fi
if [[ "$(command -v python3)" != "$VIRTUAL_ENV/bin/python3" ]]; then
  echo "bazel.sh: python3 on PATH is $(command -v python3), not $VIRTUAL_ENV/bin/python3" >&2
  exit 2
fi

BAZEL="${BAZEL:-bazel}"
if ! command -v "$BAZEL" >/dev/null; then
  SUDO=""
  if [[ "$(id -u)" != 0 ]]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq bazel-bootstrap >/dev/null
fi
trap '"$BAZEL" shutdown >/dev/null 2>&1 || true' EXIT

python tools/gen_build.py --check

# Every target (libraries, experiment binaries, tests) analyses and builds offline.
"$BAZEL" build //...

# A few cheap test targets: each runs its test file through pytest.
read -r -a TESTS <<< "${BAZEL_TESTS:-//:test_src_helpers //:test_volume_sampling_exact //:test_pipe_sgd_data}"
"$BAZEL" test "${TESTS[@]}"

# A failing assertion fails its target: the deliberately failing test must fail...
FAIL=//tests/bazel_fail:deliberate_failure
if "$BAZEL" test "$FAIL" >/dev/null 2>&1; then
  echo "bazel.sh: $FAIL passed, but its test fails on purpose: bazel test does not run pytest" >&2
  exit 1
fi
# ...for that reason (it fails nothing else), and --test_filter reaches pytest's -k.
grep -q "1 failed, 1 passed" "$("$BAZEL" info bazel-testlogs)/tests/bazel_fail/deliberate_failure/test.log"
"$BAZEL" test "$FAIL" --test_filter=test_passes
echo "bazel.sh: OK"

#!/usr/bin/env bash
# Regenerates BUILD from the committed tree (ignoring untracked work in progress) and commits it.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
wt=$(mktemp -d)
git worktree add -q --detach "$wt" HEAD
(cd "$wt" && python tools/gen_build.py)
cp "$wt/BUILD" BUILD
git worktree remove --force "$wt"
if ! git diff --quiet -- BUILD; then
  git add BUILD && git commit -qm "BUILD: regenerate from the tree"
fi

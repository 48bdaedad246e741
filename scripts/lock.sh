#!/usr/bin/env bash
# Upgrade the tested versions: resolve every dependency afresh (today's releases) in a new virtual environment,
# write them to requirements.lock, then run CI (.ci/run) against the new lock. Commit the lock only if CI is green.
#   bash scripts/lock.sh            re-resolve, write requirements.lock, run .ci/run
#   bash scripts/lock.sh --no-test  re-resolve and write only
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
# shellcheck disable=SC1091
. "$work/venv/bin/activate"
ALGOCIRCUITS_LOCK=0 bash scripts/install.sh
{
  echo "# The versions CI tested (CPython $(python -c 'import platform; print(platform.python_version())'), $(uname -m), resolved $(date -u +%Y-%m-%d))."
  echo "# scripts/install.sh installs through this file; scripts/lock.sh re-resolves and re-tests it. torch: the CPU build."
  pip freeze --exclude-editable --all | grep -v -E '^(algocircuits|pip|setuptools|wheel)( |=|@)' | sed -E 's/^(torch==[0-9.]+)\+cpu$/\1/' | LC_ALL=C sort -f
} > requirements.lock
deactivate
echo "requirements.lock: $(grep -vc '^#' requirements.lock) pinned packages"
if [ "${1:-}" != "--no-test" ]; then bash .ci/run; fi

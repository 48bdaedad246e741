#!/usr/bin/env bash
# Install algocircuits and its dependencies into the current Python (3.10+) at the versions CI tested
# (requirements.lock: CPython 3.11 on x86-64 Linux), then headless Chromium for the browser tests.
# Idempotent: a second run installs nothing new.
#   ALGOCIRCUITS_LOCK=0 bash scripts/install.sh   resolve today's versions instead of the tested ones
#                                                (scripts/lock.sh does this in a fresh venv and re-tests)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
use_lock=${ALGOCIRCUITS_LOCK:-1}
if [ "$use_lock" = 1 ] && ! $PY -c 'import sys, platform; sys.exit(0 if sys.version_info[:2] == (3, 11) and platform.machine() in ("x86_64", "AMD64") else 1)'; then
  echo "install.sh: requirements.lock holds the versions tested on CPython 3.11 / x86-64; this is $($PY -V 2>&1) on $(uname -m): resolving today's versions" >&2
  use_lock=0
fi
# PyTorch first: a machine that already has a torch in the supported range (a GPU box with 2.11) keeps its own;
# elsewhere the CPU build 2.13.0 (a plain `torch` would fetch a multi-GB CUDA build).
if ! $PY -c "import torch, sys; v=tuple(int(x) for x in torch.__version__.split('+')[0].split('.')[:2]); sys.exit(0 if (2,4)<=v<(2,14) else 1)" 2>/dev/null; then
  $PY -m pip install -q "torch==2.13.0"
fi
cons=()
if [ "$use_lock" = 1 ]; then
  tmp=$(mktemp); trap 'rm -f "$tmp"' EXIT
  grep -v -E '^(torch|triton|nvidia-[a-z0-9-]+)==' requirements.lock > "$tmp"   # torch is settled above
  cons=(-c "$tmp")
fi
$PY -m pip install -q "${cons[@]}" -e ".[dev]"
# Headless Chromium for the browser tests of the served pages (nbs/09_viz): Debian's package, where it is missing.
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 && ! command -v google-chrome >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null; }
  else
    echo "install.sh: Chromium not found and cannot be installed here (not root / no apt): install it for the browser tests" >&2
  fi
fi

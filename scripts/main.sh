#!/usr/bin/env bash
# The main job: install, then run the end-to-end pipeline at small size on CPU
# (embedded defaults: local execution, SQLite, W&B offline). Outputs go to reports/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export WANDB_MODE=${WANDB_MODE:-offline}
algocircuits pipeline --size small --device cpu "$@"

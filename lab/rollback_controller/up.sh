#!/usr/bin/env bash
# Starts the lab's rollback controller (controller.py) as a background process. Idempotent.
# Decisions go to $LAB_DIR/logs/rollback-controller.jsonl; extra arguments go to controller.py
# (e.g. --interval 1 --namespace veritas-lab). Pause it with `touch $LAB_DIR/run/rollback-controller.paused`.
set -euo pipefail
source "$(dirname "$0")/../dataplane/common.sh"
RC="$REPO_ROOT/lab/rollback_controller"
start_bg rollback-controller "$RC/controller.py" "$LOG_DIR/rollback-controller.log" \
  env PYTHONUNBUFFERED=1 "$LAB_PY" "$RC/controller.py" \
  --kubeconfig "$KUBECONFIG" --log "$LOG_DIR/rollback-controller.jsonl" \
  --pause-file "$RUN_DIR/rollback-controller.paused" "$@"

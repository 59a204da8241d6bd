#!/usr/bin/env bash
# Prints whether the rollback controller runs, whether it is paused, and its last decisions.
# Exit 0 if it runs, 3 otherwise.
set -uo pipefail
source "$(dirname "$0")/../dataplane/common.sh"
rc=0
if pid_alive rollback-controller; then
  echo "rollback-controller running (pid $(cat "$RUN_DIR/rollback-controller.pid"))"
else
  echo "rollback-controller not running"; rc=3
fi
[ -f "$RUN_DIR/rollback-controller.paused" ] && echo "paused: $RUN_DIR/rollback-controller.paused exists"
[ -f "$LOG_DIR/rollback-controller.jsonl" ] && tail -n "${1:-5}" "$LOG_DIR/rollback-controller.jsonl"
exit $rc

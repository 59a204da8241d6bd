#!/usr/bin/env bash
# Prints the supervisor's state: its pid and one line per runtime pod process.
set -uo pipefail
. "$(dirname "$0")/common.sh"
if ! pid=$(sup_pid); then
  echo "supervisor: not running"
  exit 1
fi
echo "supervisor: running (pid $pid), log $SUP_LOG"
echo "runtime targets (file_sd): $TARGETS"
"$LAB_PY" - "$LAB_DIR/run/supervisor-state.json" <<'PY'
import json, sys
try:
    pods = json.load(open(sys.argv[1]))["pods"]
except (OSError, ValueError, KeyError):
    pods = []
print(f"runtime processes: {sum(1 for p in pods if p['alive'])}")
for p in pods:
    state = "up" if p["alive"] else "down"
    ready = {True: "ready", False: "not-ready", None: "-"}[p["ready"]]
    print(f"  {p['namespace']}/{p['pod']:<40} {p['addr']:<16} pid={p['pid']} {state} "
          f"health={p['health']} {ready} restarts={p['process_restarts']}")
PY

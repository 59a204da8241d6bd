#!/usr/bin/env bash
# Starts the lab's data plane: HAProxy (Debian package) and its controller. Idempotent.
set -euo pipefail
source "$(dirname "$0")/common.sh"
DP="$REPO_ROOT/lab/dataplane"
DP_RUN="$RUN_DIR/dataplane"
CONFIG="${DATAPLANE_CONFIG:-$DP/config.yml}"
ensure_apt haproxy curl

mkdir -p "$DP_RUN"
# Render into a scratch dir; (re)start HAProxy only if it is down or its config changed.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$LAB_PY" "$DP/dataplane.py" render --config "$CONFIG" --run-dir "$DP_RUN" >/dev/null 2>"$tmp/err" \
  || { cat "$tmp/err" >&2; exit 1; }
haproxy -c -q -f "$DP_RUN/haproxy.cfg"
sum="$(sha256sum "$DP_RUN/haproxy.cfg" | cut -d' ' -f1)"
if pid_alive haproxy && [ "$(cat "$DP_RUN/haproxy.cfg.sum" 2>/dev/null)" != "$sum" ]; then
  echo "haproxy config changed: restarting"
  stop_pid haproxy
  stop_pid dataplane-ctl
fi
echo "$sum" >"$DP_RUN/haproxy.cfg.sum"
# stdout = the access log (one JSON object a line) and HAProxy's own events.
start_bg haproxy "$DP_RUN/haproxy.cfg" "$LOG_DIR/haproxy.log" haproxy -db -f "$DP_RUN/haproxy.cfg"
for _ in $(seq 50); do [ -S "$DP_RUN/haproxy.sock" ] && break; sleep 0.1; done
pid_alive haproxy || { echo "haproxy failed to start, see $LOG_DIR/haproxy.log" >&2; exit 1; }

start_bg dataplane-ctl "dataplane.py controller" "$LOG_DIR/dataplane-controller.log" \
  env PYTHONUNBUFFERED=1 KUBECONFIG="$KUBECONFIG" "$LAB_PY" "$DP/dataplane.py" controller \
  --config "$CONFIG" --run-dir "$DP_RUN"
sleep 0.3
pid_alive dataplane-ctl || { echo "controller failed, see $LOG_DIR/dataplane-controller.log" >&2; exit 1; }
"$LAB_PY" "$DP/dataplane.py" addresses --config "$CONFIG"

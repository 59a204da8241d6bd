#!/usr/bin/env bash
# Stops the lab's data plane (the processes up.sh started, by their pid files). Idempotent.
set -euo pipefail
source "$(dirname "$0")/common.sh"
stop_pid dataplane-ctl
stop_pid haproxy
rm -f "$RUN_DIR/dataplane/haproxy.sock"

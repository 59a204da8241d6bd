#!/usr/bin/env bash
# Stops Prometheus, Alertmanager and the webhook receiver started by up.sh. Idempotent.
# Data (TSDB, alert log) stays under $LAB_DIR until the lab directory is removed.
set -euo pipefail
source "$(dirname "$0")/../dataplane/common.sh"
stop_pid prometheus
stop_pid alertmanager
stop_pid alert-webhook

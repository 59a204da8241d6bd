#!/usr/bin/env bash
# Stops the lab's rollback controller (TERM, then KILL after 5 s).
set -euo pipefail
source "$(dirname "$0")/../dataplane/common.sh"
stop_pid rollback-controller

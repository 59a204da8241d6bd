#!/usr/bin/env bash
# `make test`: brings the lab up (building or reusing the binaries), runs every test suite,
# and tears the lab down even when a test fails. Exit code: non-zero if anything failed.
set -uo pipefail
. "$(dirname "$0")/common.sh"
cd "$REPO_ROOT"
export PYTHONPATH="$REPO_ROOT/.collections${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$LAB_DIR/logs"
trap '"$REPO_ROOT/lab/bin/lab-down.sh"' EXIT
failed=()
run() { local name=$1; shift; log "== $name: $*"; "$@" || failed+=("$name"); }

if [ -f galaxy.yml ]; then
  run sanity "$REPO_ROOT/lab/bin/sanity.sh"
  run lint "$REPO_ROOT/.venv/bin/ansible-lint" --profile production
  run galaxy "$REPO_ROOT/tests/galaxy/run.sh"
fi
# The shipped Prometheus rules: promtool check and unit tests (no lab needed).
if [ -x tests/prometheus/run.sh ]; then run prometheus-rules "$REPO_ROOT/tests/prometheus/run.sh"; fi
run lab-up "$REPO_ROOT/lab/bin/lab-up.sh"
if [[ " ${failed[*]} " == *" lab-up "* ]]; then
  log "lab did not come up; logs in $LAB_DIR/logs and $KWOK_WORKDIR/clusters/$LAB_CLUSTER/logs"
  exit 1
fi
# Two runs: each suite has its own conftest.py, and one process would import only one of them.
run unit "$LAB_PY" -m pytest -q -p no:cacheprovider tests/unit
run lab-tests "$LAB_PY" -m pytest -q -p no:cacheprovider tests/lab
if [ -x tests/integration/run.sh ]; then run integration tests/integration/run.sh; fi
# The game days themselves: each one, then a negative run that must fail (about 30 minutes).
if [ -x molecule/run.sh ] && [ "${VERITAS_SKIP_GAMEDAYS:-0}" != 1 ]; then run molecule molecule/run.sh; fi
# A release by hand (green, 80/20), game days killed (SIGKILL) at random points, the restore
# playbook: back to green and 80/20 every time (make restore-soak runs 30).
if [ "${VERITAS_SKIP_GAMEDAYS:-0}" != 1 ]; then
  run kill-restore "$LAB_PY" tests/restore/kill_restore.py --runs "${VERITAS_KILL_RESTORE_RUNS:-10}"
fi

if [ ${#failed[@]} -gt 0 ]; then log "FAILED: ${failed[*]}"; exit 1; fi
log "all suites passed"

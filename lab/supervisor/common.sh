# Settings shared by the supervisor's scripts. Sourced, not run. The lab's scripts export
# REPO_ROOT, LAB_DIR, KUBECONFIG and LAB_PY; these defaults make the scripts usable alone.
REPO_ROOT=${REPO_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
LAB_DIR=${LAB_DIR:-$REPO_ROOT/.lab}
KUBECONFIG=${KUBECONFIG:-$LAB_DIR/kubeconfig}
LAB_PY=${LAB_PY:-$REPO_ROOT/.venv/bin/python}
export REPO_ROOT LAB_DIR KUBECONFIG LAB_PY
SUP_PY="$REPO_ROOT/lab/supervisor/supervisor.py"
RUNTIME_PY="$REPO_ROOT/lab/runtime/veritas_runtime.py"
SUP_PIDFILE="$LAB_DIR/run/supervisor.pid"
SUP_LOG="$LAB_DIR/logs/supervisor.log"
POD_PID_DIR="$LAB_DIR/run/runtime-pods"
TARGETS="$LAB_DIR/run/targets/runtime.json"

# pid of the running supervisor, or nothing.
sup_pid() {
  local pid
  [ -s "$SUP_PIDFILE" ] || return 1
  pid=$(cat "$SUP_PIDFILE")
  { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF "$SUP_PY" || return 1
  echo "$pid"
}

# pids of runtime processes that this lab's supervisor started (their environment names a
# ready file under $LAB_DIR/run/pods), whether or not the supervisor is still alive.
lab_runtime_pids() {
  local f d
  for f in $(grep -lsF "$RUNTIME_PY" /proc/[0-9]*/cmdline); do
    d=${f%/cmdline}
    { tr '\0' '\n' <"$d/environ"; } 2>/dev/null | grep -q "^VERITAS_READY_FILE=$LAB_DIR/run/pods/" || continue
    echo "${d#/proc/}"
  done
}

# Shared by lab/dataplane/*.sh and lab/observability/*.sh (sourced, not executed).
# Env: REPO_ROOT, LAB_DIR (=$REPO_ROOT/.lab), KUBECONFIG (=$LAB_DIR/kubeconfig), LAB_PY.
_here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="${REPO_ROOT:-$(cd "$_here/../.." && pwd)}"
LAB_DIR="${LAB_DIR:-$REPO_ROOT/.lab}"
KUBECONFIG="${KUBECONFIG:-$LAB_DIR/kubeconfig}"
LAB_PY="${LAB_PY:-$REPO_ROOT/.venv/bin/python}"
export REPO_ROOT LAB_DIR KUBECONFIG LAB_PY
RUN_DIR="$LAB_DIR/run"
LOG_DIR="$LAB_DIR/logs"
mkdir -p "$RUN_DIR" "$LOG_DIR"

# ensure_apt PKG... : install Debian packages that are missing.
ensure_apt() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing ${missing[*]} (apt)"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y --no-install-recommends "${missing[@]}" >"$LOG_DIR/apt.log" 2>&1; then
    apt-get update >>"$LOG_DIR/apt.log" 2>&1
    apt-get install -y --no-install-recommends "${missing[@]}" >>"$LOG_DIR/apt.log" 2>&1 \
      || { echo "apt-get install ${missing[*]} failed, see $LOG_DIR/apt.log" >&2; return 1; }
  fi
}

# pid_alive NAME : true if $RUN_DIR/NAME.pid names a live process whose command line contains
# the pattern stored next to it.
pid_alive() {
  local pidf="$RUN_DIR/$1.pid" pid
  [ -f "$pidf" ] || return 1
  pid="$(cat "$pidf" 2>/dev/null)"
  [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
  if [ -f "$RUN_DIR/$1.cmd" ]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$(cat "$RUN_DIR/$1.cmd")" || return 1
  fi
  return 0
}

# start_bg NAME MATCH LOGFILE CMD... : start CMD detached, record its pid.
start_bg() {
  local name="$1" match="$2" logf="$3"
  shift 3
  if pid_alive "$name"; then
    echo "$name already running (pid $(cat "$RUN_DIR/$name.pid"))"
    return 0
  fi
  printf '%s' "$match" >"$RUN_DIR/$name.cmd"
  setsid "$@" </dev/null >>"$logf" 2>&1 &
  echo $! >"$RUN_DIR/$name.pid"
  echo "$name started (pid $!)"
}

# stop_pid NAME : TERM the recorded process, KILL after 5 s; remove the pid file.
stop_pid() {
  local name="$1" pid i
  if pid_alive "$name"; then
    pid="$(cat "$RUN_DIR/$name.pid")"
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 50); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
    if [ -d "/proc/$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
    echo "$name stopped (pid $pid)"
  else
    echo "$name not running"
  fi
  rm -f "$RUN_DIR/$name.pid" "$RUN_DIR/$name.cmd"
}

# wait_http URL SECONDS : wait until URL answers 2xx.
wait_http() {
  local url="$1" secs="${2:-10}" i
  for i in $(seq $((secs * 10))); do
    curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

proc_status() {  # proc_status NAME
  if pid_alive "$1"; then
    local pid rss
    pid="$(cat "$RUN_DIR/$1.pid")"
    rss="$(awk '/VmRSS/{print $2}' "/proc/$pid/status" 2>/dev/null)"
    printf '%-13s running  pid %-7s rss %s MiB\n' "$1" "$pid" "$(( ${rss:-0} / 1024 ))"
    return 0
  fi
  printf '%-13s stopped\n' "$1"
  return 1
}

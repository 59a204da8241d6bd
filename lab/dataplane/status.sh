#!/usr/bin/env bash
# Prints the data plane's processes and addresses. Exit 0 if all run, 3 otherwise.
set -uo pipefail
source "$(dirname "$0")/common.sh"
CONFIG="${DATAPLANE_CONFIG:-$REPO_ROOT/lab/dataplane/config.yml}"
rc=0
proc_status haproxy || rc=3
proc_status dataplane-ctl || rc=3
"$LAB_PY" "$REPO_ROOT/lab/dataplane/dataplane.py" addresses --config "$CONFIG" | sed 's/^/proxy-/'
st="$RUN_DIR/dataplane/controller-status.json"
if [ -f "$st" ] && pid_alive dataplane-ctl; then
  "$LAB_PY" - "$st" <<'PY'
import json, sys, time
s = json.load(open(sys.argv[1]))
ready = sum(1 for p in s["pods"].values() if p["ready"])
print(f"controller    ns={s['namespace']} pods={len(s['pods'])} ready={ready} weights={s['weights']} "
      f"selector={s['selector']} last_apply_ms={s['last_apply_ms'] and round(s['last_apply_ms'], 1)} "
      f"age={time.time() - s['time']:.0f}s")
for name, f in (s.get("frontends") or {}).items():
    src = f"{f['weights_from']} {f['namespace']}/{f['source']}" + ("" if f["source_present"] else " (absent: defaults)")
    print(f"frontend      {name} :{f['port']} weights={f['weights']} from {src}"
          + (f" notes={f['notes']}" if f["notes"] else ""))
PY
fi
exit $rc

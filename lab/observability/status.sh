#!/usr/bin/env bash
# Prints the observability processes and addresses. Exit 0 if all run, 3 otherwise.
set -uo pipefail
source "$(dirname "$0")/../dataplane/common.sh"
OBS="$REPO_ROOT/lab/observability"
rc=0
for p in prometheus alertmanager alert-webhook; do proc_status "$p" || rc=3; done
"$LAB_PY" "$OBS/obs.py" addresses
PROM="$("$LAB_PY" "$OBS/obs.py" get prometheus.listen)"
if t="$(curl -fsS --max-time 2 "http://$PROM/api/v1/targets?state=active" 2>/dev/null)"; then
  printf '%s' "$t" | "$LAB_PY" -c '
import collections, json, sys
c = collections.Counter((t["labels"]["job"], t["health"]) for t in json.load(sys.stdin)["data"]["activeTargets"])
print("targets      ", " ".join(f"{j}:{h}={n}" for (j, h), n in sorted(c.items())))'
fi
exit $rc

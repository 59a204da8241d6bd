#!/usr/bin/env bash
# Runs every game day of the registry in sequence on the running lab (make lab-up first): each
# game day, then its negative run, as runs of the one molecule scenario molecule/gameday, then
# the other scenarios (restore_after_interrupt). One line per run with its result and wall time;
# exits non-zero when any run failed.
#   molecule/run.sh                                               # all of them
#   molecule/run.sh metrics_outage metrics_outage_negative ...    # some of them
# Logs: reports/molecule/logs/<scenario>.log
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO" || exit 2
export ANSIBLE_CONFIG="$REPO/ansible.cfg"
export ANSIBLE_COLLECTIONS_PATH="$REPO/.collections"
export PATH="$REPO/.venv/bin:$PATH"

# The list comes from the scenario registry (scenarios/registry.yml): each game day, then its
# negative run, then restore_after_interrupt. A broken registry stops here instead of running none.
# A run of molecule/gameday gets its vars from `registry.py molecule-vars RUN`.
mapfile -t SCENARIOS < <("$REPO/.venv/bin/python" "$REPO/scenarios/registry.py" molecule)
[ "${#SCENARIOS[@]}" -gt 0 ] || { echo "molecule/run.sh: scenarios/registry.py molecule gave no scenarios" >&2; exit 2; }
if [ "$#" -gt 0 ]; then SCENARIOS=("$@"); fi

if [ ! -e .collections/ansible_collections/veritas/chaos ]; then
  make -s collection-link || exit 2
fi
LOGS="$REPO/reports/molecule/logs"
mkdir -p "$LOGS"

failed=0
total_start=$(date +%s%N)
for s in "${SCENARIOS[@]}"; do
  start=$(date +%s%N)
  if [ -f "molecule/$s/molecule.yml" ]; then
    cmd=("$REPO/.venv/bin/molecule" test -s "$s")
  else
    "$REPO/.venv/bin/python" "$REPO/scenarios/registry.py" molecule-vars "$s" >"$LOGS/$s.vars.yml" || { echo "$s: not a run of the registry" >&2; failed=$((failed + 1)); continue; }
    cmd=(env VERITAS_MOLECULE_RUN="$s" VERITAS_MOLECULE_VARS="$LOGS/$s.vars.yml" "$REPO/.venv/bin/molecule" test -s gameday)
  fi
  if "${cmd[@]}" >"$LOGS/$s.log" 2>&1; then
    result=PASS
  else
    result=FAIL
    failed=$((failed + 1))
  fi
  ms=$((($(date +%s%N) - start) / 1000000))
  line=$(printf '%-40s %-4s %4d.%01d s   %s' "$s" "$result" $((ms / 1000)) $((ms % 1000 / 100)) "reports/molecule/logs/$s.log")
  echo "$line"
  if [ "$result" = FAIL ]; then
    # CI keeps only this output: show why, not just that.
    echo "---- last lines of $s.log"
    grep -E 'fatal:|FAILED!|failed=[1-9]|"msg":|fail_msg|assert' "$LOGS/$s.log" | tail -n 15 | cut -c1-400
    tail -n 25 "$LOGS/$s.log" | cut -c1-400
    echo "----"
  fi
done
total=$((($(date +%s%N) - total_start) / 1000000000))
echo
printf 'molecule: %d scenario(s), %d failed, %d s in total\n' "${#SCENARIOS[@]}" "$failed" "$total"
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# Runs every game day of the registry in sequence on the running lab (make lab-up first): each
# game day, then its negative run, as runs of the one molecule scenario molecule/gameday, then
# the other scenarios (restore_after_interrupt). One line per run with its result and wall time;
# exits non-zero when any run failed.
#   molecule/run.sh                                               # all of them
#   molecule/run.sh metrics_outage metrics_outage_negative ...    # some of them
#   VERITAS_MOLECULE_FROM=repo molecule/run.sh ...                # the working tree, see below
# Logs: reports/molecule/logs/<scenario>.log
#
# The game days run from the collection as a team installs it: first the tarball of this working
# tree is built and installed into an empty folder outside the repository (tests/galaxy/build-install.sh,
# fresh on every call, never reused), and every ansible-playbook of the runs finds veritas.chaos
# only there (ANSIBLE_COLLECTIONS_PATH; molecule/shared/prepare.yml checks it on every run). The
# playbooks that run as their own ansible-playbook (a negative run's game day, the game day and
# the restore of restore_after_interrupt) run the installed playbooks, from a folder outside the
# repository. The first line printed names the tarball, its version and the install.
# VERITAS_MOLECULE_FROM=repo runs the working tree instead (make collection-link's
# .collections), to iterate on roles without a build; CI never sets it.
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO" || exit 2
export ANSIBLE_CONFIG="$REPO/ansible.cfg"
export PATH="$REPO/.venv/bin:$PATH"

# The list comes from the scenario registry (scenarios/registry.yml): each game day, then its
# negative run, then restore_after_interrupt. A broken registry stops here instead of running none.
# A run of molecule/gameday gets its vars from `registry.py molecule-vars RUN`.
mapfile -t SCENARIOS < <("$REPO/.venv/bin/python" "$REPO/scenarios/registry.py" molecule)
[ "${#SCENARIOS[@]}" -gt 0 ] || { echo "molecule/run.sh: scenarios/registry.py molecule gave no scenarios" >&2; exit 2; }
if [ "$#" -gt 0 ]; then SCENARIOS=("$@"); fi

LOGS="$REPO/reports/molecule/logs"
mkdir -p "$LOGS"

# The work folder, outside the repository: the tarball (build/), its install (collections/),
# molecule's ephemeral folder of each run (molecule/<run>/, the working folder of the playbooks
# that run as their own ansible-playbook). Removed at the end unless a run failed.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/veritas-molecule.XXXXXX") || exit 2
failed=0
trap 'if [ "$failed" -eq 0 ]; then rm -rf "$WORK"; else echo "molecule: kept $WORK (tarball, install, ephemeral folders)"; fi' EXIT
export VERITAS_MOLECULE_FROM="${VERITAS_MOLECULE_FROM:-install}"
case "$VERITAS_MOLECULE_FROM" in
  install)
    # make test's PYTHONPATH holds .collections (the working tree as veritas.chaos, for pytest):
    # Ansible scans sys.path for collections too, so it would find the repository beside the install.
    unset PYTHONPATH ANSIBLE_COLLECTIONS_PATHS
    # shellcheck source=tests/galaxy/build-install.sh
    . "$REPO/tests/galaxy/build-install.sh"
    start=$(date +%s%N)
    collection_build "$WORK/build" || { failed=1; echo "molecule/run.sh: could not build the collection" >&2; exit 2; }
    collection_install "$COLLECTION_TARBALL" "$WORK/collections" || { failed=1; echo "molecule/run.sh: could not install $COLLECTION_TARBALL" >&2; exit 2; }
    export ANSIBLE_COLLECTIONS_PATH="$WORK/collections"
    collection_check "$WORK/collections" || { failed=1; echo "molecule/run.sh: veritas.chaos does not resolve to the install only" >&2; exit 2; }
    ms=$((($(date +%s%N) - start) / 1000000))
    echo "molecule: veritas.chaos $COLLECTION_VERSION from $COLLECTION_TARBALL, installed in $ANSIBLE_COLLECTIONS_PATH (built, installed and checked in $((ms / 1000)).$((ms % 1000 / 100)) s)"
    ;;
  repo)
    if [ ! -e .collections/ansible_collections/veritas/chaos ]; then
      make -s collection-link || exit 2
    fi
    export ANSIBLE_COLLECTIONS_PATH="$REPO/.collections"
    echo "molecule: VERITAS_MOLECULE_FROM=repo: veritas.chaos is the working tree ($REPO, through .collections), no tarball"
    ;;
  *)
    echo "molecule/run.sh: VERITAS_MOLECULE_FROM is install (the default) or repo, not '$VERITAS_MOLECULE_FROM'" >&2
    exit 2
    ;;
esac

total_start=$(date +%s%N)
for s in "${SCENARIOS[@]}"; do
  start=$(date +%s%N)
  # A fresh ephemeral folder per run: molecule keeps its state there (prepared: true would skip
  # the next run's prepare), and prepare's, converge's and verify's markers.
  ephemeral="$WORK/molecule/$s"
  mkdir -p "$ephemeral"
  if [ -f "molecule/$s/molecule.yml" ]; then
    cmd=(env MOLECULE_EPHEMERAL_DIRECTORY="$ephemeral" "$REPO/.venv/bin/molecule" test -s "$s")
  else
    "$REPO/.venv/bin/python" "$REPO/scenarios/registry.py" molecule-vars "$s" >"$LOGS/$s.vars.yml" || { echo "$s: not a run of the registry" >&2; failed=$((failed + 1)); continue; }
    cmd=(env MOLECULE_EPHEMERAL_DIRECTORY="$ephemeral" VERITAS_MOLECULE_RUN="$s" VERITAS_MOLECULE_VARS="$LOGS/$s.vars.yml"
         "$REPO/.venv/bin/molecule" test -s gameday)
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

#!/usr/bin/env bash
# The collection as a team installs it: `ansible-galaxy collection build` of this working tree
# (galaxy.yml's build_ignore applies), `ansible-galaxy collection install <tarball> -p <empty
# folder>`, then a check that veritas.chaos resolves to that install and nowhere else. No network:
# the install runs --offline, so its dependency (kubernetes.core) must already be there, and is:
# the venv's `ansible` package ships it (found on sys.path). Used by tests/galaxy/run.sh and
# molecule/run.sh (the game days run from such an install).
#
#   tests/galaxy/build-install.sh WORK   # WORK/build/veritas-chaos-<version>.tar.gz, installed
#                                        # into WORK/collections; prints one line naming both
#
# Sourced, it defines the steps (each returns non-zero and says why on stderr when it fails):
#   collection_build OUTDIR          -> COLLECTION_TARBALL, COLLECTION_VERSION
#   collection_install TARBALL DEST  DEST must be missing or empty (never reused: no stale install)
#   collection_check DEST            with ANSIBLE_COLLECTIONS_PATH=DEST and the rest of the caller's
#                                    environment (ANSIBLE_CONFIG, PYTHONPATH, ...): exactly one
#                                    veritas.chaos is found (ansible-galaxy collection list), it is
#                                    DEST's, not the repository's, and ansible-doc reads its modules
#                                    from DEST

COLLECTION_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

collection_build() {
  local out=$1 tarballs
  mkdir -p "$out" || return 1
  # The repo's ansible.cfg and make test's PYTHONPATH are about running from the working tree;
  # a build needs neither.
  if ! (cd "$COLLECTION_REPO" && env -u ANSIBLE_CONFIG -u ANSIBLE_COLLECTIONS_PATH -u PYTHONPATH \
          ansible-galaxy collection build --output-path "$out") >"$out/build.log" 2>&1; then
    cat "$out/build.log" >&2
    echo "ansible-galaxy collection build failed" >&2
    return 1
  fi
  tarballs=("$out"/veritas-chaos-*.tar.gz)
  if [ "${#tarballs[@]}" -ne 1 ] || [ ! -f "${tarballs[0]}" ]; then
    echo "expected one veritas-chaos-*.tar.gz in $out, found: ${tarballs[*]}" >&2
    return 1
  fi
  COLLECTION_TARBALL=${tarballs[0]}
  COLLECTION_VERSION=${COLLECTION_TARBALL##*/veritas-chaos-}
  COLLECTION_VERSION=${COLLECTION_VERSION%.tar.gz}
}

collection_install() {
  local tarball=$1 dest=$2
  if [ -e "$dest" ] && [ -n "$(ls -A "$dest")" ]; then
    echo "$dest is not empty: the collection is installed fresh into an empty folder, never over an older install" >&2
    return 1
  fi
  mkdir -p "$dest" || return 1
  # From the (empty) destination, so no ansible.cfg of a working folder applies; --offline: the
  # dependencies are resolved from what is installed (the venv's ansible package), never downloaded.
  if ! (cd "$dest" && env -u ANSIBLE_CONFIG -u PYTHONPATH ANSIBLE_COLLECTIONS_PATH="$dest" \
          ansible-galaxy collection install --offline "$tarball" -p "$dest") >"$dest.install.log" 2>&1; then
    cat "$dest.install.log" >&2
    echo "ansible-galaxy collection install $tarball -p $dest failed" >&2
    return 1
  fi
  [ -f "$dest/ansible_collections/veritas/chaos/MANIFEST.json" ] || {
    echo "no veritas.chaos in $dest after the install:" >&2; cat "$dest.install.log" >&2; return 1; }
}

collection_check() {
  local dest=$1 listed doc
  listed=$(cd "$dest" && ANSIBLE_COLLECTIONS_PATH="$dest" ansible-galaxy collection list veritas.chaos --format json 2>&1) || {
    echo "ansible-galaxy collection list veritas.chaos failed: $listed" >&2; return 1; }
  doc=$(cd "$dest" && ANSIBLE_COLLECTIONS_PATH="$dest" ansible-doc -t module --json veritas.chaos.gameday_ledger 2>&1) || {
    echo "ansible-doc veritas.chaos.gameday_ledger failed: $doc" >&2; return 1; }
  python3 - "$dest" "$COLLECTION_REPO" "$listed" "$doc" <<'EOF'
import json, os, sys
dest, repo, listed, doc = sys.argv[1:]
real = os.path.realpath
want = real(os.path.join(dest, "ansible_collections"))
found = [path for path, colls in json.loads(listed).items() if "veritas.chaos" in colls]
problems = []
if [real(p) for p in found] != [want]:
    problems.append(f"ansible-galaxy collection list veritas.chaos finds it in {found or 'no path'}, not only in {want}")
for path in found:
    where = real(os.path.join(path, "veritas", "chaos"))
    if where == real(repo) or where.startswith(real(repo) + os.sep):
        problems.append(f"veritas.chaos in {path} is the repository ({where}), not an installed tarball")
module = json.loads(doc).get("veritas.chaos.gameday_ledger", {}).get("doc", {}).get("filename", "")
if not real(module).startswith(want + os.sep):
    problems.append(f"ansible-doc reads veritas.chaos.gameday_ledger from {module or '?'}, not from {want}")
for p in problems:
    print(p, file=sys.stderr)
sys.exit(1 if problems else 0)
EOF
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -uo pipefail
  export PATH="${VENV:-$COLLECTION_REPO/.venv}/bin:$PATH"
  [ $# -eq 1 ] || { echo "usage: $0 WORK   (builds into WORK/build, installs into WORK/collections)" >&2; exit 2; }
  work=$(mkdir -p "$1" && cd "$1" && pwd) || exit 2
  collection_build "$work/build" || exit 1
  collection_install "$COLLECTION_TARBALL" "$work/collections" || exit 1
  collection_check "$work/collections" || exit 1
  echo "veritas.chaos $COLLECTION_VERSION: $COLLECTION_TARBALL installed in $work/collections"
fi

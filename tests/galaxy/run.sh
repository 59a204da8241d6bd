#!/usr/bin/env bash
# Galaxy checks for veritas.chaos: what a user of the published collection gets. No lab needed.
#
#   1. every role has a README.md whose variables match its meta/argument_specs.yml
#   2. the changelog: fragments and changelogs/changelog.yaml lint clean, and CHANGELOG.md is what
#      antsibull-changelog generates from them (so nobody edits it by hand)
#   3. the collection as built (ansible-galaxy collection build): no lab, tests, molecule or
#      local state in the tarball; it installs (ansible-galaxy collection install -p), and
#      ansible-doc reads a module from that install
#   4. antsibull-docs lint-collection-docs on that install (ansible_collections/veritas/chaos)
#   5. galaxy-importer on the tarball, as Galaxy imports it: ansible-doc and ansible-lint, but
#      not ansible-test (it needs a container; lab/bin/sanity.sh runs it), with
#      tests/galaxy/galaxy-importer.cfg; its output is kept in tests/output/galaxy/ (git-ignored), and
#      any ERROR in it fails the check. galaxy-importer runs from a venv of its own (see
#      tests/galaxy/requirements.txt), cached in $VERITAS_LAB_CACHE like ansible-test's.
#
# Usage: tests/galaxy/run.sh   (make galaxy; part of make test)
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VENV=${VENV:-$REPO/.venv}
HERE=$REPO/tests/galaxy
CACHE=${VERITAS_LAB_CACHE:-$HOME/.cache/veritas-lab}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/veritas-galaxy.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
OUT=${GALAXY_CHECK_OUT:-$REPO/tests/output/galaxy}
mkdir -p "$OUT"

# The repo's ansible.cfg (collections_path = .collections) and make test's PYTHONPATH expose the
# working tree as veritas.chaos; these checks must see the built collection only.
unset ANSIBLE_CONFIG ANSIBLE_COLLECTIONS_PATH ANSIBLE_COLLECTIONS_PATHS PYTHONPATH
export PATH="$VENV/bin:$PATH"

# The build, install and check of the collection are shared with molecule/run.sh.
# shellcheck source=tests/galaxy/build-install.sh
. "$HERE/build-install.sh"

failed=()
step() {
  local name=$1 start=$SECONDS; shift
  echo "galaxy: == $name"
  "$@" || { failed+=("$name"); echo "galaxy: FAILED $name"; }
  echo "galaxy: $name took $((SECONDS - start)) s"
}

cd "$REPO" || exit 1
step role-readmes "$VENV/bin/python" "$HERE/role_readmes.py" check

changelog() {
  antsibull-changelog lint || return 1
  antsibull-changelog lint-changelog-yaml --strict changelogs/changelog.yaml || return 1
  antsibull-changelog generate --output "$WORK/CHANGELOG.md" --output-format md || return 1
  if ! diff -u CHANGELOG.md "$WORK/CHANGELOG.md" >"$WORK/changelog.diff"; then
    head -40 "$WORK/changelog.diff"
    echo "CHANGELOG.md differs from changelogs/changelog.yaml: it is generated (antsibull-changelog" \
         "generate); a change goes into a fragment in changelogs/fragments/" >&2
    return 1
  fi
  echo "changelog: fragments and changelog.yaml lint clean, CHANGELOG.md is generated from them"
}
step changelog changelog

build() {
  collection_build "$WORK/build" || return 1
  TARBALL=$COLLECTION_TARBALL
  # What must not ship: the lab, the tests (but ansible-test's tests/config.yml), molecule,
  # benchmarks, and local state and caches (every hidden top-level file or folder: .lab, .venv,
  # .collections, .ansible, .pytest_cache, .hypothesis, ...).
  tar -tzf "$TARBALL" >"$WORK/contents.txt" || return 1
  local shipped
  shipped=$(grep -E '^\.|^(lab|molecule|bench|reports|inventories/lab)(/|$)|^tests/.|(^|/)__pycache__/|\.pyc$|^changelogs/\.plugin-cache' "$WORK/contents.txt" \
    | grep -vx 'tests/config.yml')
  if [ -n "$shipped" ]; then
    echo "the tarball ships what galaxy.yml's build_ignore should leave out:" >&2
    echo "$shipped" | head -20 >&2
    return 1
  fi
  local required
  for required in COPYING README.md CHANGELOG.md changelogs/changelog.yaml meta/runtime.yml; do
    grep -qx "$required" "$WORK/contents.txt" || { echo "the tarball lacks $required" >&2; return 1; }
  done
  echo "built $(basename "$TARBALL"): $(grep -vc '/$' "$WORK/contents.txt") files, no lab, tests or local state"
}
install_and_doc() {
  # tests/galaxy/build-install.sh: into an empty folder, --offline (kubernetes.core, the
  # dependency, is found in the venv's ansible package, so nothing is downloaded); then
  # ansible-galaxy collection list finds veritas.chaos there only, and ansible-doc reads
  # veritas.chaos.gameday_ledger from there.
  collection_install "$TARBALL" "$WORK/installed" || return 1
  collection_check "$WORK/installed" || return 1
  echo "installed into $WORK/installed; ansible-galaxy collection list and ansible-doc veritas.chaos.gameday_ledger find it there only"
}
docs_lint() {
  # References to this collection and its dependencies (kubernetes.core, ansible.builtin) are
  # validated (the default, dependent). --validate-collection-refs all is clean too but loads
  # every collection of the ansible package (3-4 minutes).
  (cd "$WORK" && antsibull-docs lint-collection-docs --plugin-docs \
     "$WORK/installed/ansible_collections/veritas/chaos") || return 1
  echo "antsibull-docs lint-collection-docs --plugin-docs: clean"
}

galaxy_importer_venv() {
  local key
  key=$(cat "$HERE/requirements.txt" requirements.txt | sha256sum | cut -c1-12)
  GI_VENV=$CACHE/galaxy-importer-venv-$key
  if [ ! -f "$GI_VENV/.complete" ]; then
    rm -rf "$GI_VENV"
    python3.11 -m venv "$GI_VENV" || return 1
    "$GI_VENV/bin/pip" install -q --upgrade pip || return 1
    (cd "$HERE" && "$GI_VENV/bin/pip" install -q -r requirements.txt) || return 1
    touch "$GI_VENV/.complete"
  fi
}
importer() {
  galaxy_importer_venv || { echo "could not install galaxy-importer into $GI_VENV" >&2; return 1; }
  # galaxy-importer runs ansible-doc and ansible-lint from PATH: its venv's. A HOME of its own:
  # ansible-lint installs the collection it lints into ~/.ansible/collections, where it would
  # shadow nothing here but outlive the check.
  mkdir -p "$WORK/home"
  (cd "$WORK" && HOME="$WORK/home" PATH="$GI_VENV/bin:$PATH" GALAXY_IMPORTER_CONFIG="$HERE/galaxy-importer.cfg" \
     "$GI_VENV/bin/python" -m galaxy_importer.main "$TARBALL" >"$OUT/galaxy-importer.log" 2>&1)
  local rc=$?
  tail -15 "$OUT/galaxy-importer.log"
  if [ $rc -ne 0 ] || grep -q '^ERROR' "$OUT/galaxy-importer.log"; then
    echo "galaxy-importer failed (exit $rc); its output: $OUT/galaxy-importer.log" >&2
    return 1
  fi
  local warnings
  warnings=$(grep -c '^WARNING' "$OUT/galaxy-importer.log")
  grep '^WARNING' "$OUT/galaxy-importer.log"
  echo "galaxy-importer: imported, no error, $warnings warning(s)"
}

TARBALL=
step build build
if [ -n "$TARBALL" ]; then
  step install install_and_doc
  step antsibull-docs docs_lint
  step galaxy-importer importer
else
  failed+=(install antsibull-docs galaxy-importer)
fi

if [ ${#failed[@]} -gt 0 ]; then echo "galaxy: FAILED: ${failed[*]}"; exit 1; fi
echo "galaxy: all checks passed in $SECONDS s"

#!/usr/bin/env bash
# Runs the integration targets of veritas.chaos against a live cluster (by default the lab's,
# .lab/kubeconfig). Each target is a role under tests/integration/targets/ (the layout of
# ansible-test integration); this runs each one in its own play with ansible-playbook so no
# ansible-test container or network is needed. Targets make their own namespaces with a random
# prefix and delete them (and anything cluster-wide, like the Route CRD) in an always: section.
#
# Usage: tests/integration/run.sh [target ...]     (default: every target)
# Env:   K8S_AUTH_KUBECONFIG (default .lab/kubeconfig), ANSIBLE_VERBOSITY, VENV
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VENV=${VENV:-$REPO/.venv}
TARGETS_DIR=$REPO/tests/integration/targets
export ANSIBLE_CONFIG=$REPO/ansible.cfg
export K8S_AUTH_KUBECONFIG=${K8S_AUTH_KUBECONFIG:-$REPO/.lab/kubeconfig}
export PATH=$VENV/bin:$PATH

if [ ! -f "$K8S_AUTH_KUBECONFIG" ]; then
  echo "integration: no kubeconfig at $K8S_AUTH_KUBECONFIG (run make lab-up first)" >&2
  exit 2
fi
if [ ! -e "$REPO/.collections/ansible_collections/veritas/chaos" ]; then
  make -C "$REPO" --no-print-directory collection-link
fi

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(find "$TARGETS_DIR" -mindepth 1 -maxdepth 1 -type d ! -name 'setup_*' -printf '%f\n' | sort)
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/veritas-integration.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$REPO"

failed=()
summary=()
for target in "${targets[@]}"; do
  if [ ! -f "$TARGETS_DIR/$target/tasks/main.yml" ]; then
    echo "integration: unknown target $target" >&2
    failed+=("$target")
    continue
  fi
  playbook=$WORK/$target.yml
  cat > "$playbook" <<PLAY
- name: Integration target $target
  hosts: localhost
  gather_facts: false
  roles:
    - role: $TARGETS_DIR/$target
PLAY
  echo "=== integration target: $target"
  start=$(date +%s)
  if ansible-playbook -i "$REPO/inventories/lab" "$playbook"; then
    summary+=("PASS $target $(( $(date +%s) - start ))s")
  else
    summary+=("FAIL $target $(( $(date +%s) - start ))s")
    failed+=("$target")
  fi
done

echo "=== integration summary"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "integration: failed: ${failed[*]}" >&2
  exit 1
fi

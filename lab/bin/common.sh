# Shared settings of the lab scripts. Sourced, not run.
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LAB_DIR="$REPO_ROOT/.lab"
# shellcheck source=../versions.env
. "$REPO_ROOT/lab/versions.env"
VERITAS_LAB_CACHE=${VERITAS_LAB_CACHE:-$HOME/.cache/veritas-lab}
KUBE_BIN="$VERITAS_LAB_CACHE/kubernetes-$KUBE_VERSION"
ETCD_BIN="$VERITAS_LAB_CACHE/etcd-$ETCD_VERSION"
KWOK_BIN="$VERITAS_LAB_CACHE/kwok-$KWOK_VERSION"
LAB_CLUSTER=veritas-lab
KUBECONFIG="$LAB_DIR/kubeconfig"
LAB_PY="$REPO_ROOT/.venv/bin/python"
# kwokctl keeps its clusters, pids and logs under the repo's .lab, not in $HOME.
KWOK_WORKDIR="$LAB_DIR/kwok"
# lab/runtime/bin first: kwok resolves `kubectl exec POD -- cli ...` with its own PATH.
PATH="$REPO_ROOT/lab/runtime/bin:$KUBE_BIN:$ETCD_BIN:$KWOK_BIN:$PATH"
export REPO_ROOT LAB_DIR KUBECONFIG LAB_PY KWOK_WORKDIR PATH VERITAS_LAB_CACHE
# Lab components started after the control plane, in order; stopped in reverse.
LAB_COMPONENTS=(supervisor observability dataplane)
log() { printf '[lab %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
api_ready() { [ -s "$KUBECONFIG" ] && kubectl get --raw=/readyz >/dev/null 2>&1; }

#!/usr/bin/env bash
# Prints what the lab is running and where to reach it.
set -uo pipefail
. "$(dirname "$0")/common.sh"
if ! api_ready; then
  echo "lab: down (make lab-up starts it)"
  exit 1
fi
echo "lab: up"
echo "kubeconfig:     $KUBECONFIG"
echo "api server:     $(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')"
echo "versions:       kubernetes $KUBE_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION"
echo "nodes:"
kubectl get nodes -L node.veritas.io/pool -L nvidia.com/gpu.present --no-headers | sed 's/^/  /'
# The HTTPRoutes the data plane's canary_httproute frontend follows (lab/dataplane/config.yml).
echo "httproutes:"
kubectl get httproutes.gateway.networking.k8s.io -A --no-headers \
  -o custom-columns='NS:.metadata.namespace,NAME:.metadata.name,BACKENDS:.spec.rules[0].backendRefs[*].name,WEIGHTS:.spec.rules[0].backendRefs[*].weight' \
  2>/dev/null | sed 's/^/  /' || echo "  (no HTTPRoute API)"
for c in "${LAB_COMPONENTS[@]}"; do
  if [ -x "$REPO_ROOT/lab/$c/status.sh" ]; then "$REPO_ROOT/lab/$c/status.sh" || true; fi
done

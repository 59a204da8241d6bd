#!/usr/bin/env bash
# Starts the lab: the control plane (kwokctl, binary runtime), fake nodes, kwok stages and
# exec mapping, then each lab component that exists. Idempotent: a running lab is reused.
set -euo pipefail
. "$(dirname "$0")/common.sh"
start=$(date +%s)
mkdir -p "$LAB_DIR/logs" "$LAB_DIR/run"
for b in "$KUBE_BIN/kube-apiserver" "$KUBE_BIN/kubectl" "$ETCD_BIN/etcd" "$KWOK_BIN/kwokctl" "$KWOK_BIN/stages/pod-ready.yaml"; do
  [ -e "$b" ] || "$REPO_ROOT/lab/bin/build-binaries.sh"
done

# The components listen on fixed ports. One held by a process this lab did not start means
# another lab (another checkout) is up: its Prometheus or proxy would answer our readiness
# checks and the tests would run against the wrong cluster. Refuse instead, and say whose it is.
ours=" $(cat "$LAB_DIR"/run/*.pid 2>/dev/null | tr '\n' ' ' || true) "
for port in $(grep -hoE '(127\.0\.0\.1:[0-9]+|_port: *[0-9]+)' \
                "$REPO_ROOT/lab/observability/config.yml" "$REPO_ROOT/lab/dataplane/config.yml" | grep -oE '[0-9]+$'); do
  holder=$(ss -ltnpH "( sport = :$port )" 2>/dev/null | grep -oE 'pid=[0-9]+' | head -n1 | cut -d= -f2 || true)
  if [ -n "$holder" ] && [[ "$ours" != *" $holder "* ]]; then
    echo "lab-up: port $port is held by pid $holder ($(tr '\0' ' ' <"/proc/$holder/cmdline" 2>/dev/null | cut -c1-120))," >&2
    echo "  started from $(readlink "/proc/$holder/cwd" 2>/dev/null || echo '?'), not by this lab ($LAB_DIR)." >&2
    echo "  Another lab is running: stop it with 'make lab-down' in its checkout, then retry." >&2
    exit 1
  fi
done

if api_ready; then
  log "control plane already running ($KUBECONFIG)"
else
  log "starting control plane: kubernetes $KUBE_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION"
  kwokctl delete cluster --name "$LAB_CLUSTER" >/dev/null 2>&1 || true
  rm -f "$KUBECONFIG"
  kwokctl --config "$REPO_ROOT/lab/kwok/kwokctl.yaml" create cluster \
    --name "$LAB_CLUSTER" --runtime binary \
    --kube-apiserver-binary "$KUBE_BIN/kube-apiserver" \
    --kube-controller-manager-binary "$KUBE_BIN/kube-controller-manager" \
    --kube-scheduler-binary "$KUBE_BIN/kube-scheduler" \
    --kwok-controller-binary "$KWOK_BIN/kwok" \
    --etcd-binary "$ETCD_BIN/etcd" \
    --enable-crds=Stage,Exec,ClusterExec,Logs \
    --kube-authorization --kube-admission \
    --kubeconfig "$KUBECONFIG" \
    --wait 3m >"$LAB_DIR/logs/kwokctl-create.log" 2>&1 \
    || { cat "$LAB_DIR/logs/kwokctl-create.log" >&2; exit 1; }
  chmod 600 "$KUBECONFIG"
fi

kubectl apply -f "$REPO_ROOT/lab/kwok/nodes.yaml" >/dev/null
kubectl apply -f "$KWOK_BIN/stages/" -f "$REPO_ROOT/lab/kwok/stages/" >/dev/null
# exec in a lab pod runs a local command; the supervisor adds per-pod Exec objects on top.
sed "s#@REPO_ROOT@#$REPO_ROOT#g" "$REPO_ROOT/lab/kwok/cluster-exec.yaml" | kubectl apply -f - >/dev/null

# Usable means: API ready, every node Ready, and the controller-manager has made the
# default ServiceAccount (without it no pod can be created).
kubectl wait --for=condition=Ready node --all --timeout=120s >/dev/null
for _ in $(seq 1 120); do
  kubectl get serviceaccount default -n default >/dev/null 2>&1 && break
  sleep 0.5
done
kubectl get serviceaccount default -n default >/dev/null
log "control plane usable after $(( $(date +%s) - start ))s"

# The lab's own CRDs (the Gateway API HTTPRoute): Established before the data plane's controller
# lists HTTPRoutes and before lab/manifests (which has an HTTPRoute) is applied.
if [ -d "$REPO_ROOT/lab/manifests/crds" ]; then
  kubectl apply -f "$REPO_ROOT/lab/manifests/crds" >/dev/null
  kubectl wait --for=condition=Established -f "$REPO_ROOT/lab/manifests/crds" --timeout=60s >/dev/null
fi

for c in "${LAB_COMPONENTS[@]}"; do
  if [ -x "$REPO_ROOT/lab/$c/up.sh" ]; then
    log "starting $c"
    "$REPO_ROOT/lab/$c/up.sh"
  fi
done
if [ -d "$REPO_ROOT/lab/manifests" ]; then
  kubectl apply -R -f "$REPO_ROOT/lab/manifests" >/dev/null
fi
log "lab up in $(( $(date +%s) - start ))s; kubeconfig: $KUBECONFIG"

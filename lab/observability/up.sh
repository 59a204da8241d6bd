#!/usr/bin/env bash
# Starts Prometheus, Alertmanager (Debian packages, run as our own processes, not the system
# services) and the alert webhook receiver, all on 127.0.0.1. Idempotent.
set -euo pipefail
source "$(dirname "$0")/../dataplane/common.sh"
OBS="$REPO_ROOT/lab/observability"
OUT="$LAB_DIR/observability"
ensure_apt prometheus prometheus-alertmanager curl
mkdir -p "$OUT" "$LAB_DIR/data/prometheus" "$LAB_DIR/data/alertmanager" "$LAB_DIR/alerts" "$RUN_DIR/targets"

get() { "$LAB_PY" "$OBS/obs.py" get "$1"; }
"$LAB_PY" "$OBS/obs.py" render --out "$OUT" --lab-dir "$LAB_DIR"
promtool check config "$OUT/prometheus.yml" >"$LOG_DIR/promtool.log" 2>&1 \
  || { cat "$LOG_DIR/promtool.log" >&2; exit 1; }
amtool check-config "$OUT/alertmanager.yml" >/dev/null
PROM="$(get prometheus.listen)"; AM="$(get alertmanager.listen)"; WH="$(get webhook.listen)"

# A Prometheus that starts afresh starts with an empty TSDB: the last lab's runtime pods were
# stopped with Prometheus, so no staleness marker ended their series, and for 5 minutes they would
# look as live as the new pods' (a count of the pods' series would be off).
if ! curl -fsS "http://$PROM/-/ready" >/dev/null 2>&1; then
  rm -rf "$LAB_DIR/data/prometheus" && mkdir -p "$LAB_DIR/data/prometheus"
fi
start_bg alert-webhook "webhook.py" "$LOG_DIR/alert-webhook.log" \
  env PYTHONUNBUFFERED=1 "$LAB_PY" "$OBS/webhook.py" --listen "$WH" --store "$LAB_DIR/alerts/alerts.jsonl"
start_bg alertmanager "prometheus-alertmanager" "$LOG_DIR/alertmanager.log" \
  prometheus-alertmanager --config.file="$OUT/alertmanager.yml" \
  --storage.path="$LAB_DIR/data/alertmanager" --web.listen-address="$AM" \
  --cluster.listen-address= --log.level=info
start_bg prometheus "$OUT/prometheus.yml" "$LOG_DIR/prometheus.log" \
  prometheus --config.file="$OUT/prometheus.yml" --storage.tsdb.path="$LAB_DIR/data/prometheus" \
  --storage.tsdb.retention.time="$(get prometheus.retention)" --web.listen-address="$PROM" \
  --web.enable-lifecycle --rules.alert.resend-delay=2s --log.level=info

wait_http "http://$WH/health" 15 || { echo "webhook not answering, see $LOG_DIR/alert-webhook.log" >&2; exit 1; }
wait_http "http://$AM/-/ready" 30 || { echo "alertmanager not ready, see $LOG_DIR/alertmanager.log" >&2; exit 1; }
wait_http "http://$PROM/-/ready" 30 || { echo "prometheus not ready, see $LOG_DIR/prometheus.log" >&2; exit 1; }
# an already running instance picks up a re-rendered configuration
curl -fsS -X POST "http://$PROM/-/reload" >/dev/null || true
curl -fsS -X POST "http://$AM/-/reload" >/dev/null || true
"$LAB_PY" "$OBS/obs.py" addresses

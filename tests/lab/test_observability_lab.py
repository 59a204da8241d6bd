"""Observability against the running lab: the lab's Prometheus scrapes the runtime pods and the
proxy, its rules see injected errors within two scrape intervals, and alerts travel through
Alertmanager to the webhook receiver. Faults set on the lab's pods are cleared afterwards."""

from __future__ import annotations

import http.server
import json
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
from conftest import wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "lab" / "observability"))
sys.path.insert(0, str(REPO_ROOT / "lab" / "dataplane"))

import dataplane
import obs
from harness import paced_load

CFG = obs.load_config()
ADDR = obs.addresses(CFG)
PROM, WEBHOOK = ADDR["prometheus"], ADDR["webhook"]
S = obs.suffix(CFG)
LAB_DIR = REPO_ROOT / ".lab"
DP = dataplane.load_config()
NS = DP["namespace"]
ANN = DP["controller"]["address_annotation"]


def seconds(v: str) -> float:
    return float(v[:-2]) / 1000 if v.endswith("ms") else float(v.rstrip("s"))


SCRAPE = seconds(CFG["scrape_interval"])
EVAL = seconds(CFG["evaluation_interval"])


def query(q: str) -> list[dict]:
    r = requests.get(f"{PROM}/api/v1/query", params={"query": q}, timeout=5)
    r.raise_for_status()
    return r.json()["data"]["result"]


def value(q: str) -> float | None:
    res = query(q)
    return float(res[0]["value"][1]) if res else None


def alerts(**q) -> list[dict]:
    r = requests.get(WEBHOOK, params=q, timeout=5)
    r.raise_for_status()
    return r.json()["alerts"]


@pytest.fixture(scope="module")
def stack():
    for url in (f"{PROM}/-/ready", f"{ADDR['alertmanager']}/-/ready", WEBHOOK.replace("/alerts", "/health")):
        try:
            requests.get(url, timeout=2).raise_for_status()
        except requests.RequestException as e:
            pytest.fail(f"observability is not running ({url}: {e}); lab/observability/up.sh")


def test_prometheus_scrapes_proxy_and_runtime_and_has_the_rules(stack):
    targets = requests.get(f"{PROM}/api/v1/targets", params={"state": "active"}, timeout=5).json()
    active = targets["data"]["activeTargets"]
    assert any(t["labels"]["job"] == "haproxy" and t["health"] == "up" for t in active)
    lab = [t["labels"] for t in active if t["labels"]["job"] == "veritas-runtime" and t["labels"].get("namespace") == NS]
    assert {lbl.get("variant") for lbl in lab} >= {"control", "canary", "blue", "green"}, lab
    assert {lbl.get("colour") for lbl in lab if lbl.get("variant") in ("blue", "green")} == {"blue", "green"}
    groups = requests.get(f"{PROM}/api/v1/rules", timeout=5).json()["data"]["groups"]
    names = {r["name"] for g in groups for r in g["rules"]}
    assert {f"veritas:error_ratio:{S}", f"veritas:latency_p99_seconds:{S}", "VeritasErrorRateHigh",
            "VeritasLatencyP99High", "VeritasMetricsOutage", "VeritasGPUUnavailable"} <= names
    wait_for(lambda: value(f'sum(rate(haproxy_backend_http_responses_total{{proxy="control"}}[{CFG["rate_window"]}]))'
                           ) is not None, timeout=10, what="proxy series")


class FakeRuntimeMetrics:
    """A /metrics endpoint shaped like the runtime's whose counters advance at 20 requests/s,
    with a settable error share; `down` makes it answer 503."""

    def __init__(self):
        self.ok = self.err = 0.0
        self.error_share = 0.0
        self.down = False
        self.t = time.monotonic()
        me = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                body = me.render().encode()
                self.send_response(503 if me.down else 200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.address = f"127.0.0.1:{self.srv.server_address[1]}"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def render(self) -> str:
        now = time.monotonic()
        n = (now - self.t) * 20
        self.t = now
        self.err += n * self.error_share
        self.ok += n * (1 - self.error_share)
        return (
            f'veritas_http_requests_total{{handler="completions",code="200"}} {int(self.ok)}\n'
            f'veritas_http_requests_total{{handler="completions",code="500"}} {int(self.err)}\n'
            f"vllm:num_requests_running 0\nveritas_gpu_available 1\n"
        )

    def close(self):
        self.srv.shutdown()


def test_alert_chain_on_a_scraped_endpoint(stack):
    """The rules and the alert path on a target of our own (its own namespace label)."""
    ns = f"t-obs-{uuid.uuid4().hex[:6]}"
    fake = FakeRuntimeMetrics()
    tfile = LAB_DIR / "run" / "targets" / f"{ns}.json"
    tfile.write_text(json.dumps([{"targets": [fake.address],
                                  "labels": {"namespace": ns, "pod": f"{ns}-canary", "variant": "canary"}}]))
    sel = f'namespace="{ns}",variant="canary"'
    try:
        wait_for(lambda: value(f"veritas:error_ratio:{S}{{{sel}}}") == 0.0, timeout=30, interval=0.25,
                 what="an error ratio of 0 for the new target")
        since = time.time()
        t0 = time.monotonic()
        fake.error_share = 0.2
        wait_for(lambda: (value(f"veritas:error_ratio:{S}{{{sel}}}") or 0) > 0, timeout=10, interval=0.1,
                 what="errors in the error ratio")
        seen = time.monotonic() - t0
        print(f"errors visible in veritas:error_ratio:{S} after {seen:.2f} s (scrape {SCRAPE}s, eval {EVAL}s)")
        assert seen <= 2 * SCRAPE + EVAL + 0.5
        got = wait_for(lambda: alerts(alertname="VeritasErrorRateHigh", namespace=ns, status="firing",
                                      since=since), timeout=60, interval=0.5, what="error alert at the webhook")
        print(f"error alert at the webhook after {got[0]['received'] - since:.1f} s")
        assert got[0]["labels"]["variant"] == "canary"
        fake.down = True
        since = time.time()
        got = wait_for(lambda: alerts(alertname="VeritasMetricsOutage", namespace=ns, reason="target_down",
                                      since=since), timeout=60, interval=0.5, what="outage alert at the webhook")
        print(f"outage alert at the webhook after {got[0]['received'] - since:.1f} s")
    finally:
        tfile.unlink(missing_ok=True)
        fake.close()


# ----------------------------------------------------------------------------- the lab's runtime


def runtime_pods(core, selector):
    return [p for p in core.list_namespaced_pod(NS, label_selector=selector).items
            if (p.metadata.annotations or {}).get(ANN) and not p.metadata.deletion_timestamp]


def set_fault(pods, name, body):
    for p in pods:
        requests.post(f"http://{p.metadata.annotations[ANN]}/admin/faults/{name}", json=body,
                      timeout=5).raise_for_status()


def clear_faults(pods):
    for p in pods:
        try:
            requests.delete(f"http://{p.metadata.annotations[ANN]}/admin/faults", timeout=5)
        except requests.RequestException:
            pass


@pytest.fixture
def canary_load():
    """100 requests/s through the lab's canary proxy in the background, 50/50 so the canary
    gets enough requests for a visible ratio."""
    from kubernetes import client, config

    core = client.CoreV1Api(config.new_client_from_config(config_file=str(LAB_DIR / "kubeconfig")))
    cm = DP["canary"]["configmap"]
    old = core.read_namespaced_config_map(cm, NS).data
    core.patch_namespaced_config_map(cm, NS, {"data": {"control": "50", "canary": "50"}})
    stop = threading.Event()

    def loop():
        url = dataplane.addresses(DP)["canary"] + "/v1/completions"
        while not stop.is_set():
            paced_load(url, 100, 2)

    th = threading.Thread(target=loop, daemon=True)
    th.start()
    yield core
    stop.set()
    th.join(15)
    core.patch_namespaced_config_map(cm, NS, {"data": old})


def test_injected_canary_errors_show_in_error_ratio_and_alert(stack, canary_load):
    core = canary_load
    pods = runtime_pods(core, "variant=canary")
    assert pods, "no canary pods in the lab"
    sel = f'namespace="{NS}",variant="canary"'
    wait_for(lambda: (v := value(f"veritas:requests:{S}{{{sel}}}")) and v > 5, timeout=40, interval=0.5,
             what="canary traffic in Prometheus")
    wait_for(lambda: value(f"veritas:error_ratio:{S}{{{sel}}}") == 0.0, timeout=40, interval=0.5,
             what="no canary errors before the injection")
    since = time.time()
    t0 = time.monotonic()
    set_fault(pods, "error-rate", {"percent": 20})
    try:
        wait_for(lambda: (value(f"veritas:error_ratio:{S}{{{sel}}}") or 0) > 0, timeout=10, interval=0.1,
                 what="canary errors in the error ratio")
        seen = time.monotonic() - t0
        print(f"canary errors visible after {seen:.2f} s (scrape {SCRAPE}s, eval {EVAL}s)")
        assert seen <= 2 * SCRAPE + EVAL + 0.5
        # the 30 s window fills up to ~20 %
        wait_for(lambda: 0.12 < (value(f"veritas:error_ratio:{S}{{{sel}}}") or 0) < 0.3, timeout=45,
                 interval=1, what="canary error ratio near 20%")
        got = wait_for(lambda: alerts(alertname="VeritasErrorRateHigh", namespace=NS, variant="canary",
                                      status="firing", since=since), timeout=60, interval=0.5,
                       what="the error-rate alert at the webhook")
        print(f"error-rate alert at the webhook {got[0]['received'] - since:.1f} s after the injection")
        assert value(f'veritas:error_ratio:{S}{{namespace="{NS}",variant="control"}}') == 0.0
    finally:
        clear_faults(pods)


def test_metrics_off_on_all_runtime_pods_fires_outage(stack, core):
    pods = runtime_pods(core, DP["controller"]["pod_label_selector"])
    assert len(pods) >= 4
    since = time.time()
    set_fault(pods, "metrics-off", {"mode": "503"})
    try:
        got = wait_for(lambda: alerts(alertname="VeritasMetricsOutage", namespace=NS, since=since),
                       timeout=60, interval=0.5, what="the metrics outage alert at the webhook")
        print(f"outage alert at the webhook {got[0]['received'] - since:.1f} s after metrics-off "
              f"({got[0]['labels'].get('reason')}, {got[0]['labels'].get('pod')})")
        assert value(f'count(up{{job="veritas-runtime",namespace="{NS}"}} == 1)') is None
    finally:
        clear_faults(pods)
    wait_for(lambda: value(f'count(up{{job="veritas-runtime",namespace="{NS}"}} == 0)') is None, timeout=30,
             what="metrics back")


def test_gpu_unavailable_alert(stack, core):
    pods = runtime_pods(core, "deployment=green")
    assert pods
    since = time.time()
    set_fault(pods[:1], "gpu-unavailable", {})
    try:
        got = wait_for(lambda: alerts(alertname="VeritasGPUUnavailable", namespace=NS,
                                      pod=pods[0].metadata.name, since=since),
                       timeout=60, interval=0.5, what="the GPU alert at the webhook")
        assert got[0]["labels"]["variant"] == "green"
    finally:
        clear_faults(pods[:1])

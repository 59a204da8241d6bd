"""Data plane against the running lab (make lab-up): the lab's HAProxy and controller, the
runtime stand-in's pods in the lab namespace, real load at 100 requests per second.

These tests change the lab's ConfigMap / Service / faults and put them back afterwards."""

from __future__ import annotations

import collections
import sys
import time
from pathlib import Path

import pytest
import requests
from conftest import wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "lab" / "dataplane"))

import dataplane
from harness import paced_load

CFG = dataplane.load_config()
NS = CFG["namespace"]
CM = CFG["canary"]["configmap"]
SVC = CFG["bluegreen"]["service"]
ADDR = dataplane.addresses(CFG)
ANN = CFG["controller"]["address_annotation"]
RATE = 100


@pytest.fixture(scope="module")
def lab(core):
    """The lab's data plane answers and the runtime pods of both topologies serve through it."""
    for name in ("canary", "bluegreen", "metrics"):
        try:
            requests.get(ADDR[name], timeout=2)
        except requests.ConnectionError:
            pytest.fail(f"the lab's proxy is not listening on {ADDR[name]} (lab/dataplane/up.sh)")

    def serving():
        seen = collections.Counter()
        for url in (ADDR["canary"], ADDR["bluegreen"]):
            for _ in range(30):
                r = requests.post(url + "/v1/completions", json={"prompt": "hi", "max_tokens": 2}, timeout=5)
                seen[(r.status_code, r.headers.get("X-Veritas-Variant"))] += 1
        ok = {v for (c, v) in seen if c == 200}
        return "control" in ok and ok & {"blue", "green"} and seen

    wait_for(serving, timeout=120, interval=1, what="the lab serving through the proxy")
    return core


@pytest.fixture
def configmap(lab):
    old = lab.read_namespaced_config_map(CM, NS).data
    yield lambda data: lab.patch_namespaced_config_map(CM, NS, {"data": data})
    lab.patch_namespaced_config_map(CM, NS, {"data": old})


@pytest.fixture
def selector(lab):
    old = lab.read_namespaced_service(SVC, NS).spec.selector
    yield lambda sel: lab.patch_namespaced_service(SVC, NS, {"spec": {"selector": sel}})
    lab.patch_namespaced_service(SVC, NS, {"spec": {"selector": old}})


def share(records, variant, t_from, t_to, key="due"):
    sel = [r for r in records if t_from <= r[key] < t_to]
    ok = [r for r in sel if r["status"] == 200]
    return sum(r["variant"] == variant for r in ok) / max(1, len(ok)), len(ok), len(sel)


def test_canary_split_follows_the_configmap(configmap):
    import threading

    configmap({"control": "90", "canary": "10"})
    time.sleep(1)
    records: list = []
    t_patch = {}

    def later():
        time.sleep(30.05)
        t_patch["t"] = time.monotonic()
        configmap({"control": "50", "canary": "50"})

    th = threading.Thread(target=later)
    t0 = time.monotonic()
    th.start()
    records = paced_load(ADDR["canary"] + "/v1/completions", RATE, 40)
    th.join()
    patch_at = t_patch["t"] - t0 - 0.05  # paced_load starts 50 ms after it is called

    s90, n90, all90 = share(records, "canary", 0, 30)
    s50, n50, all50 = share(records, "canary", patch_at + 2.0, 40, key="sent")
    codes = collections.Counter(r["status"] for r in records)
    print(f"90/10 phase: canary {s90:.3f} of {n90}; 50/50 phase (from +2 s): canary {s50:.3f} of {n50}; "
          f"codes {dict(codes)}")
    assert all90 >= 0.97 * 30 * RATE and n90 >= 0.99 * all90, codes
    assert abs(s90 - 0.10) <= 0.03
    assert n50 >= 0.99 * all50 and n50 >= 500
    assert abs(s50 - 0.50) <= 0.07  # ~4 standard deviations for ~750 draws
    # every response says where it came from
    pods = {r["pod"] for r in records if r["status"] == 200}
    assert all(p and p.startswith(("veritas-control", "veritas-canary")) for p in pods), pods


def test_selector_switch_sends_new_requests_to_green_within_one_second(selector, lab):
    import threading

    selector({"app": "veritas-runtime", "deployment": "blue"})
    time.sleep(1)
    t_patch = {}

    def later():
        time.sleep(3.05)
        t_patch["t"] = time.monotonic()
        selector({"app": "veritas-runtime", "deployment": "green"})

    th = threading.Thread(target=later)
    t0 = time.monotonic()
    th.start()
    records = paced_load(ADDR["bluegreen"] + "/v1/completions", RATE, 7)
    th.join()
    patch_at = t_patch["t"] - t0 - 0.05
    before = {r["variant"] for r in records if r["sent"] < patch_at}
    after = [r for r in records if r["sent"] >= patch_at + 1.0]
    first_green = min(r["sent"] for r in records if r["variant"] == "green")
    print(f"first green response {1000 * (first_green - patch_at):.0f} ms after the patch was sent")
    assert before == {"blue"}
    assert after and all(r["status"] == 200 and r["variant"] == "green" for r in after)
    green_pods = {p.metadata.name for p in lab.list_namespaced_pod(NS, label_selector="deployment=green").items}
    assert {r["pod"] for r in after} <= green_pods


def pod_address(p):
    return (p.metadata.annotations or {}).get(ANN)


def test_unready_pod_leaves_the_proxy_and_comes_back(lab, selector):
    selector({"app": "veritas-runtime", "deployment": "blue"})
    pods = [p for p in lab.list_namespaced_pod(NS, label_selector="deployment=blue").items
            if pod_address(p) and not p.metadata.deletion_timestamp]
    assert len(pods) >= 2, "the blue Deployment needs at least 2 pods"
    victim = pods[0].metadata.name
    url = f"http://{pod_address(pods[0])}/admin/faults/gpu-unavailable"
    s = requests.Session()

    def pods_served(n=40):
        return {s.post(ADDR["bluegreen"] + "/v1/completions", json={"prompt": "x", "max_tokens": 1},
                       timeout=5).headers.get("X-Veritas-Pod") for _ in range(n)}

    assert victim in pods_served()
    t0 = time.monotonic()
    requests.post(url, json={}, timeout=5).raise_for_status()
    try:
        wait_for(lambda: victim not in pods_served(), timeout=10, interval=0.1, what="unready pod out of the proxy")
        print(f"pod out of the proxy {time.monotonic() - t0:.2f} s after its /health turned 503")
    finally:
        requests.delete(url, timeout=5)
    wait_for(lambda: victim in pods_served(), timeout=10, interval=0.2, what="pod back in the proxy")


def test_replacement_canary_pod_gets_traffic(lab, configmap):
    configmap({"control": "0", "canary": "100"})
    old = {p.metadata.name for p in lab.list_namespaced_pod(NS, label_selector="variant=canary").items}
    victim = min(old)
    lab.delete_namespaced_pod(victim, NS)
    s = requests.Session()

    def new_pod_serving():
        r = s.post(ADDR["canary"] + "/v1/completions", json={"prompt": "x", "max_tokens": 1}, timeout=5)
        pod = r.headers.get("X-Veritas-Pod")
        fresh = r.headers.get("X-Veritas-Variant") == "canary" and pod not in old
        return r.status_code == 200 and fresh and pod

    pod = wait_for(new_pod_serving, timeout=60, interval=0.2, what="the replacement pod serving")
    assert pod.startswith("veritas-canary")

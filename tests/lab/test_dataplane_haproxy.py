"""Data plane: the controller's reconcile against a real HAProxy (Debian's), without the cluster.

The cluster view is given directly (what the watches would have seen); HAProxy, its runtime API
and the backends are real processes on 127.0.0.1."""

from __future__ import annotations

import collections
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "lab" / "dataplane"))

import dataplane
from harness import Backend


@pytest.fixture
def backends():
    made = {}

    def make(name, status=200):
        made[name] = Backend(name, status)
        return made[name]

    yield make
    for b in made.values():
        b.close()


def pod(name, backend, ready=True, **labels):
    host, port = backend.address.split(":")
    return dataplane.PodView(name, labels, (host, int(port)), ready)


def controller(proxy, pods, configmap=None, selector=None):
    ctl = dataplane.Controller(proxy.cfg, proxy.run_dir)
    ctl.view.pods = {p.name: p for p in pods}
    ctl.view.configmap = configmap
    ctl.view.selector = selector
    ctl.synced = dict.fromkeys(ctl.synced, True)
    return ctl


def hit(url, n, session=None):
    s = session or requests.Session()
    seen = collections.Counter()
    for _ in range(n):
        r = s.get(url + "/v1/completions", timeout=5)
        seen[(r.status_code, r.headers.get("X-Veritas-Variant"), r.headers.get("X-Veritas-Pod"))] += 1
    return seen


def canary_topology(backends):
    c1, c2, k1 = backends("c1"), backends("c2"), backends("k1")
    return [
        pod("control-1", c1, app="veritas", variant="control"),
        pod("control-2", c2, app="veritas", variant="control"),
        pod("canary-1", k1, app="veritas", variant="canary"),
    ], (c1, c2, k1)


def test_rendered_configuration_is_valid_for_haproxy(tmp_path):
    cfg = dataplane.load_config()
    path = dataplane.render(cfg, tmp_path)
    res = subprocess.run(["haproxy", "-c", "-f", str(path)], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    text = path.read_text()
    assert f"bind 127.0.0.1:{cfg['haproxy']['canary_port']}" in text
    assert f"bind 127.0.0.1:{cfg['haproxy']['bluegreen_port']}" in text
    assert "prometheus-exporter" in text


def test_weights_split_headers_and_pods(proxy, backends):
    pods, (c1, c2, k1) = canary_topology(backends)
    ctl = controller(proxy, pods, {"control": "90", "canary": "10"}, None)
    assert ctl.reconcile() > 0
    state = proxy.api.servers_state()
    assert set(state["control"]) == {"control-1", "control-2"}
    assert set(state["canary"]) == {"canary-1"}
    assert all(s["ready"] for b in ("control", "canary") for s in state[b].values())

    seen = hit(proxy.addr["canary"], 2000)
    by_variant = collections.Counter()
    for (code, variant, podname), n in seen.items():
        assert code == 200
        assert (variant, podname) in {("control", "control-1"), ("control", "control-2"), ("canary", "canary-1")}
        by_variant[variant] += n
    share = by_variant["canary"] / 2000
    assert 0.07 < share < 0.13, by_variant
    # the backends really served them, balanced within the variant
    assert k1.hits == by_variant["canary"]
    assert abs(c1.hits - c2.hits) <= 2
    # nothing left to do: reconcile is idempotent
    assert ctl.reconcile() == 0


def test_weight_zero_sends_nothing_and_full_weight_everything(proxy, backends):
    pods, (c1, c2, k1) = canary_topology(backends)
    ctl = controller(proxy, pods, {"control": "100", "canary": "0"})
    ctl.reconcile()
    assert {v for (_, v, _) in hit(proxy.addr["canary"], 400)} == {"control"}
    assert k1.hits == 0
    ctl.view.configmap = {"control": "0", "canary": "100"}
    ctl.reconcile()
    assert {v for (_, v, _) in hit(proxy.addr["canary"], 200)} == {"canary"}
    ctl.view.configmap = {"control": "0", "canary": "0"}
    ctl.reconcile()
    before = c1.hits + c2.hits + k1.hits
    codes = {c for (c, _, _) in hit(proxy.addr["canary"], 20)}
    assert codes == {503} and c1.hits + c2.hits + k1.hits == before


def test_missing_configmap_uses_default_weights(proxy, backends):
    pods, _ = canary_topology(backends)
    ctl = controller(proxy, pods, None)
    ctl.reconcile()
    assert {v for (_, v, _) in hit(proxy.addr["canary"], 100)} == {"control"}


def test_unready_pod_gets_no_traffic_and_empty_variant_falls_back(proxy, backends):
    pods, _ = canary_topology(backends)
    ctl = controller(proxy, pods, {"control": "50", "canary": "50"})
    ctl.reconcile()
    ctl.view.pods["control-1"].ready = False
    ctl.reconcile()
    assert proxy.api.servers_state()["control"]["control-1"]["ready"] is False
    seen = hit(proxy.addr["canary"], 200)
    assert all(p != "control-1" for (_, _, p) in seen)
    # the canary's only pod not Ready: its share goes to control (runbook containment) ...
    ctl.view.pods["control-1"].ready = True
    ctl.view.pods["canary-1"].ready = False
    ctl.reconcile()
    seen = hit(proxy.addr["canary"], 200)
    assert {(c, v) for (c, v, _) in seen} == {(200, "control")}
    # ... unless the ConfigMap turns fallback off: then its share fails
    ctl.view.configmap = {"control": "50", "canary": "50", "fallback": "false"}
    ctl.reconcile()
    codes = collections.Counter()
    for (c, _, _), n in hit(proxy.addr["canary"], 200).items():
        codes[c] += n
    assert 60 < codes[503] < 140, codes


def test_deleted_pod_is_removed_and_moved_pod_gets_new_address(proxy, backends):
    pods, _ = canary_topology(backends)
    ctl = controller(proxy, pods, {"control": "100", "canary": "0"})
    ctl.reconcile()
    del ctl.view.pods["control-2"]
    ctl.reconcile()
    assert set(proxy.api.servers_state()["control"]) == {"control-1"}
    other = backends("c1-moved")
    ctl.view.pods["control-1"] = pod("control-1", other, app="veritas", variant="control")
    ctl.reconcile()
    hit(proxy.addr["canary"], 20)
    assert other.hits == 20


def test_bluegreen_follows_selector_and_readiness(proxy, backends):
    b1, b2, g1 = backends("b1"), backends("b2"), backends("g1")
    pods = [
        pod("blue-1", b1, app="veritas-runtime", deployment="blue"),
        pod("blue-2", b2, app="veritas-runtime", deployment="blue"),
        pod("green-1", g1, app="veritas-runtime", deployment="green"),
    ]
    sel = {"app": "veritas-runtime", "deployment": "blue"}
    ctl = controller(proxy, pods, {"control": "100", "canary": "0"}, sel)
    ctl.reconcile()
    seen = hit(proxy.addr["bluegreen"], 100)
    assert {(c, v) for (c, v, _) in seen} == {(200, "blue")}
    assert {p for (_, _, p) in seen} == {"blue-1", "blue-2"}
    # pods of the other colour are not even servers while the selector does not match them
    assert not proxy.api.servers_state().get("green")
    ctl.view.selector = {"app": "veritas-runtime", "deployment": "green"}
    ctl.reconcile()
    seen = hit(proxy.addr["bluegreen"], 50)
    assert set(seen) == {(200, "green", "green-1")}
    ctl.view.pods["green-1"].ready = False
    ctl.reconcile()
    assert {c for (c, _, _) in hit(proxy.addr["bluegreen"], 10)} == {503}
    ctl.view.selector = None  # Service deleted
    ctl.reconcile()
    assert {c for (c, _, _) in hit(proxy.addr["bluegreen"], 10)} == {503}


def test_counts_per_variant_and_status_and_access_log(proxy, backends):
    ok, bad = backends("ok"), backends("bad", status=500)
    pods = [pod("control-1", ok, app="veritas", variant="control"),
            pod("canary-1", bad, app="veritas", variant="canary")]
    ctl = controller(proxy, pods, {"control": "50", "canary": "50"})
    ctl.reconcile()
    seen = hit(proxy.addr["canary"], 200)
    n_canary = sum(n for (_, v, _), n in seen.items() if v == "canary")
    assert all(c == 500 for (c, v, _) in seen if v == "canary")
    metrics = requests.get(proxy.addr["metrics"], timeout=5).text

    def metric(backend, code):
        m = re.search(
            rf'^haproxy_backend_http_responses_total{{proxy="{backend}",code="{code}"}} (\d+)', metrics, re.MULTILINE
        )
        return int(m.group(1))

    assert metric("canary", "5xx") == n_canary
    assert metric("control", "2xx") == 200 - n_canary
    import time

    time.sleep(0.3)
    log = [e for e in proxy.access_log() if e["frontend"] == "fe_canary"]
    assert len(log) == 200
    assert collections.Counter((e["variant"], e["status"]) for e in log) == {
        ("canary", 500): n_canary, ("control", 200): 200 - n_canary}
    assert {e["pod"] for e in log} == {"control-1", "canary-1"}


def test_restarted_haproxy_is_brought_back_to_the_cluster_state(proxy, backends):
    pods, _ = canary_topology(backends)
    ctl = controller(proxy, pods, {"control": "0", "canary": "100"})
    ctl.reconcile()
    proxy.stop()
    proxy.start()  # a fresh process: no servers, initial maps (503 for everything)
    assert {c for (c, _, _) in hit(proxy.addr["canary"], 5)} == {503}
    assert ctl.reconcile() > 0
    assert {(c, v, p) for (c, v, p) in hit(proxy.addr["canary"], 20)} == {(200, "canary", "canary-1")}

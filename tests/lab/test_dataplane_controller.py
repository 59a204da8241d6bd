"""Data plane: the controller follows the lab's Kubernetes API (watches) and a change reaches
HAProxy within 1 second. Runs a private HAProxy and controller on a test namespace; the pods
are real pods of the lab (kwok), annotated with the addresses of small local backends."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import requests
from conftest import DATAPLANE_TEST_LABEL as TEST_LABEL
from conftest import wait_for
from kubernetes import client

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "lab" / "dataplane"))

import dataplane

PY = str(REPO_ROOT / ".venv" / "bin" / "python")
MAX_PROPAGATION_S = 1.0


def make_pod(core, ns, name, backend, labels):
    body = client.V1Pod(
        metadata=client.V1ObjectMeta(
            name=name, labels={TEST_LABEL: "true", **labels},
            annotations={"lab.veritas.io/address": backend.address},
        ),
        spec=client.V1PodSpec(containers=[client.V1Container(name="runtime", image="veritas/spark-runtime:lab")],
                              termination_grace_period_seconds=0),
    )
    core.create_namespaced_pod(ns, body)


def ready_servers(p, backend):
    return {n for n, s in p.api.servers_state().get(backend, {}).items() if s["ready"]}


def time_until(t0, predicate, timeout=5.0, interval=0.005):
    """Seconds from t0 (taken before the change was sent) until predicate() holds."""
    while time.monotonic() - t0 < timeout:
        if predicate():
            return time.monotonic() - t0
        time.sleep(interval)
    return None


def test_controller_follows_configmap_service_and_pods_within_one_second(core, namespace, lab_proxy, backends):
    p = lab_proxy
    cmap = str(p.run_dir / "canary.map")
    bmap = str(p.run_dir / "bluegreen.map")
    core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="veritas-traffic-config"), data={"control": "90", "canary": "10"}))
    core.create_namespaced_service(namespace, client.V1Service(
        metadata=client.V1ObjectMeta(name="veritas-runtime"),
        spec=client.V1ServiceSpec(selector={"app": "veritas-runtime", "deployment": "blue"},
                                  ports=[client.V1ServicePort(port=80, target_port=8080)])))
    for name, labels in {
        "control-0": {"app": "veritas", "variant": "control"},
        "canary-0": {"app": "veritas", "variant": "canary"},
        "blue-0": {"app": "veritas-runtime", "deployment": "blue"},
        "green-0": {"app": "veritas-runtime", "deployment": "green"},
    }.items():
        make_pod(core, namespace, name, backends(name), labels)

    wait_for(lambda: ready_servers(p, "control") == {"control-0"} and ready_servers(p, "canary") == {"canary-0"}
             and ready_servers(p, "blue") == {"blue-0"}, timeout=60, what="pods Ready in HAProxy")
    assert p.api.show_map(cmap)["threshold"] == "1000"
    assert p.api.show_map(bmap)["active"] == "blue"
    assert not ready_servers(p, "green"), "green is not selected by the Service"
    r = requests.get(p.addr["bluegreen"], timeout=5)
    assert (r.status_code, r.headers["X-Veritas-Variant"], r.headers["X-Veritas-Pod"]) == (200, "blue", "blue-0")

    delays = {}
    # weights 50/50
    t0 = time.monotonic()
    core.patch_namespaced_config_map("veritas-traffic-config", namespace, {"data": {"control": "50", "canary": "50"}})
    delays["configmap"] = time_until(t0, lambda: p.api.show_map(cmap)["threshold"] == "5000")
    # selector switch: the next requests go to green
    s = requests.Session()
    t0 = time.monotonic()
    core.patch_namespaced_service("veritas-runtime", namespace, {"spec": {"selector": {"deployment": "green"}}})
    delays["selector"] = time_until(
        t0, lambda: s.get(p.addr["bluegreen"], timeout=2).headers.get("X-Veritas-Variant") == "green")
    assert all(s.get(p.addr["bluegreen"], timeout=2).headers["X-Veritas-Pod"] == "green-0" for _ in range(20))
    # a deleted pod stops getting traffic
    t0 = time.monotonic()
    core.delete_namespaced_pod("canary-0", namespace, grace_period_seconds=0)
    delays["pod_delete"] = time_until(t0, lambda: not ready_servers(p, "canary"))
    # a new pod gets traffic
    make_pod(core, namespace, "canary-1", backends("canary-1"), {"app": "veritas", "variant": "canary"})
    wait_for(lambda: ready_servers(p, "canary") == {"canary-1"}, timeout=60, what="new canary pod in HAProxy")
    # an address change (process restarted elsewhere) is followed
    moved = backends("canary-1-moved")
    t0 = time.monotonic()
    core.patch_namespaced_pod("canary-1", namespace,
                              {"metadata": {"annotations": {"lab.veritas.io/address": moved.address}}})
    delays["address"] = time_until(
        t0, lambda: p.api.servers_state()["canary"]["canary-1"]["port"] == moved.port)
    print("change-to-proxy delays (s):", {k: v and round(v, 3) for k, v in delays.items()})
    for what, d in delays.items():
        assert d is not None and d < MAX_PROPAGATION_S, f"{what}: {d}"
    log = p.controller_log.read_text()
    assert "applied" in log and "ms after event" in log


def test_parse_weights_rejects_garbage_and_keeps_previous():
    cfg = dataplane.load_config()
    w, fb = dataplane.parse_weights({"control": "90%", "canary": "10"}, cfg, None)
    assert w == {"control": 90.0, "canary": 10.0} and fb is True
    w2, _ = dataplane.parse_weights({"control": "lots", "canary": "10"}, cfg, w)
    assert w2 == w
    _, fb = dataplane.parse_weights({"control": "1", "canary": "1", "fallback": "false"}, cfg, None)
    assert fb is False

"""Data plane against the running lab (make lab-up): the HTTPRoute canary topology
(lab/manifests/30-canary-httproute.yaml) through the lab's HAProxy frontend canary_httproute,
whose weights follow the Gateway API HTTPRoute veritas-hr-route, next to the first canary
frontend, whose weights follow the ConfigMap veritas-traffic-config.

These tests change the lab's HTTPRoute and ConfigMap and put them back afterwards."""

from __future__ import annotations

import collections
import copy
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from conftest import DATAPLANE_TEST_LABEL as TEST_LABEL
from conftest import wait_for
from kubernetes import client
from kubernetes.client.exceptions import ApiException

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "lab" / "dataplane"))
sys.path.insert(0, str(REPO_ROOT / "lab" / "observability"))

import dataplane
import obs
from harness import Backend, paced_load

CFG = dataplane.load_config()
FRONTS = {f["name"]: f for f in dataplane.canary_frontends(CFG)}
HR = FRONTS["canary_httproute"]
HR_NS = HR["namespace"]
ROUTE = HR["httproute"]["name"]
RULE = HR["httproute"]["rule"]
SERVICES = HR["httproute"]["backends"]  # Service name -> variant
NS = CFG["namespace"]
CM = CFG["canary"]["configmap"]
ADDR = dataplane.addresses(CFG)
PROM = obs.addresses(obs.load_config())["prometheus"]
GROUP, VERSION, PLURAL = dataplane.HTTPROUTE_GROUP, dataplane.HTTPROUTE_VERSION, dataplane.HTTPROUTE_PLURAL
HR_APP = HR["pod_selector"]["app"]
PY = str(REPO_ROOT / ".venv" / "bin" / "python")
RATE = 100


@pytest.fixture(scope="module")
def custom(api_client):
    return client.CustomObjectsApi(api_client)


@pytest.fixture(scope="module")
def lab(core, custom):
    """The lab's data plane answers on both canary frontends, the route exists, and the HTTPRoute
    topology has a Ready pod of each variant and serves through 127.0.0.1:18082."""
    for name in ("canary", "canary_httproute", "metrics"):
        try:
            requests.get(ADDR[name], timeout=2)
        except requests.ConnectionError:
            pytest.fail(f"the lab's proxy is not listening on {ADDR[name]} (make lab-up restarts the data "
                        "plane when its configuration changed)")
    try:
        custom.get_namespaced_custom_object(GROUP, VERSION, HR_NS, PLURAL, ROUTE)
    except ApiException as e:
        pytest.fail(f"HTTPRoute {HR_NS}/{ROUTE}: {e.status} {e.reason} (make lab-up applies "
                    "lab/manifests/crds, then lab/manifests)")

    def ready_variants():
        pods = core.list_namespaced_pod(HR_NS, label_selector=f"app={HR_APP}").items
        return {p.metadata.labels.get("variant") for p in pods
                if p.status.phase == "Running" and not p.metadata.deletion_timestamp
                and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])}

    wait_for(lambda: ready_variants() >= {"control", "canary"}, timeout=120, interval=1,
             what=f"a Ready control and canary pod in {HR_NS}")

    def serving():
        r = requests.post(ADDR["canary_httproute"] + "/v1/completions", json={"prompt": "hi", "max_tokens": 2},
                          timeout=5)
        return r.status_code == 200 and r.headers.get("X-Veritas-Pod", "").startswith("veritas-hr-")

    wait_for(serving, timeout=60, interval=0.5, what="the HTTPRoute topology serving through the proxy")
    return core


@pytest.fixture
def route(lab, custom):
    """set(control, canary): the weights of the route's backendRefs (by the Service each names),
    through a merge patch of spec.rules, as Flagger and the collection's modules write them."""
    old = custom.get_namespaced_custom_object(GROUP, VERSION, HR_NS, PLURAL, ROUTE)["spec"]["rules"]

    def set_weights(control, canary):
        want = {"control": control, "canary": canary}
        rules = copy.deepcopy(old)
        for ref in rules[RULE]["backendRefs"]:
            if ref.get("name") in SERVICES:
                ref["weight"] = want[SERVICES[ref["name"]]]
        custom.patch_namespaced_custom_object(GROUP, VERSION, HR_NS, PLURAL, ROUTE, {"spec": {"rules": rules}})

    yield set_weights
    custom.patch_namespaced_custom_object(GROUP, VERSION, HR_NS, PLURAL, ROUTE, {"spec": {"rules": old}})


@pytest.fixture
def configmap(lab):
    old = lab.read_namespaced_config_map(CM, NS).data
    yield lambda data: lab.patch_namespaced_config_map(CM, NS, {"data": data})
    lab.patch_namespaced_config_map(CM, NS, {"data": old})


def share(records, variant, t_from=0.0, t_to=1e9, key="due"):
    sel = [r for r in records if t_from <= r[key] < t_to]
    ok = [r for r in sel if r["status"] == 200]
    return sum(r["variant"] == variant for r in ok) / max(1, len(ok)), len(ok), len(sel)


def pods_of(records):
    return {r["pod"] for r in records if r["status"] == 200}


def test_httproute_frontend_splits_90_10_by_the_route(route):
    route(90, 10)
    time.sleep(1)
    records = paced_load(ADDR["canary_httproute"] + "/v1/completions", RATE, 20)
    s, n_ok, n = share(records, "canary")
    codes = collections.Counter(r["status"] for r in records)
    print(f"HTTPRoute 90/10: canary {s:.3f} of {n_ok}; codes {dict(codes)}")
    assert n >= 0.97 * 20 * RATE and n_ok >= 0.99 * n, codes
    assert abs(s - 0.10) <= 0.03
    # each response from a pod of the variant it names, all of the HTTPRoute topology
    for r in records:
        if r["status"] == 200:
            assert r["variant"] in ("control", "canary") and r["pod"].startswith(f"veritas-hr-{r['variant']}-"), r


def test_patching_the_route_to_100_0_moves_all_traffic_to_control(route):
    route(90, 10)
    time.sleep(1)
    t_patch = {}

    def later():
        time.sleep(4.05)
        t_patch["t"] = time.monotonic()
        route(100, 0)

    th = threading.Thread(target=later)
    t0 = time.monotonic()
    th.start()
    records = paced_load(ADDR["canary_httproute"] + "/v1/completions", RATE, 10)
    th.join()
    patch_at = t_patch["t"] - t0 - 0.05  # paced_load starts 50 ms after it is called
    before = [r for r in records if r["sent"] < patch_at]
    after = [r for r in records if r["sent"] >= patch_at + 2.0]
    canary_sent = [r["sent"] for r in records if r["variant"] == "canary"]
    last_canary = max(canary_sent) - patch_at if canary_sent else None
    print(f"last canary response sent {last_canary and round(1000 * last_canary)} ms after the patch; "
          f"{sum(r['variant'] == 'canary' for r in before)} canary of {len(before)} before it")
    assert any(r["variant"] == "canary" for r in before), "90/10 before the patch"
    assert len(after) >= 0.97 * 4 * RATE
    assert all(r["status"] == 200 and r["variant"] == "control" for r in after), collections.Counter(
        (r["status"], r["variant"]) for r in after)
    assert last_canary is None or last_canary < 2.0
    assert all(p.startswith("veritas-hr-control-") for p in {r["pod"] for r in after})


def test_the_configmap_frontend_is_unaffected_by_the_route_and_the_other_way_round(route, configmap):
    configmap({"control": "50", "canary": "50"})
    route(0, 100)
    time.sleep(1)
    out: dict = {}

    def load(name, url):
        out[name] = paced_load(url + "/v1/completions", RATE, 10)

    ths = [threading.Thread(target=load, args=(n, ADDR[n])) for n in ("canary", "canary_httproute")]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    s_cm, n_cm, all_cm = share(out["canary"], "canary")
    s_hr, n_hr, all_hr = share(out["canary_httproute"], "canary")
    print(f"ConfigMap 50/50 -> 18080 canary {s_cm:.3f} of {n_cm}; route 0/100 -> 18082 canary {s_hr:.3f} of {n_hr}")
    assert n_cm >= 0.99 * all_cm and abs(s_cm - 0.50) <= 0.07
    assert n_hr >= 0.99 * all_hr and s_hr == 1.0
    assert all(p.startswith(("veritas-control-", "veritas-canary-")) for p in pods_of(out["canary"]))
    assert all(p.startswith("veritas-hr-canary-") for p in pods_of(out["canary_httproute"]))

    # the ConfigMap to 100/0 leaves the route's frontend alone
    configmap({"control": "100", "canary": "0"})
    time.sleep(1)
    s = requests.Session()
    cm = collections.Counter(s.post(ADDR["canary"] + "/v1/completions", json={"prompt": "x", "max_tokens": 1},
                                    timeout=5).headers.get("X-Veritas-Variant") for _ in range(100))
    hr = collections.Counter(s.post(ADDR["canary_httproute"] + "/v1/completions",
                                    json={"prompt": "x", "max_tokens": 1},
                                    timeout=5).headers.get("X-Veritas-Variant") for _ in range(100))
    assert cm == {"control": 100} and hr == {"canary": 100}, (cm, hr)


def prom(query):
    r = requests.get(f"{PROM}/api/v1/query", params={"query": query}, timeout=5).json()
    return r["data"]["result"]


def test_prometheus_scrapes_the_httproute_topology_and_haproxy_tells_the_frontends_apart(lab):
    pods = {p.metadata.name for p in lab.list_namespaced_pod(HR_NS, label_selector=f"app={HR_APP}").items
            if p.status.phase == "Running" and not p.metadata.deletion_timestamp}

    def scraped():
        targets = requests.get(f"{PROM}/api/v1/targets", params={"state": "active"}, timeout=5).json()
        return [t for t in targets["data"]["activeTargets"]
                if t["labels"]["job"] == "veritas-runtime" and t["labels"].get("namespace") == HR_NS
                and t["health"] == "up"]

    found = wait_for(lambda: (t := scraped()) and {x["labels"]["pod"] for x in t} >= pods and t, timeout=30,
                     interval=1, what=f"Prometheus scraping the runtime pods of {HR_NS}")
    assert {x["labels"]["variant"] for x in found} == {"control", "canary"}
    assert {x["labels"]["app"] for x in found} == {HR_APP}
    # the rules' records have the topology under its own namespace
    requests.post(ADDR["canary_httproute"] + "/v1/completions", json={"prompt": "x", "max_tokens": 1}, timeout=5)
    wait_for(lambda: prom(f'veritas:requests:rate30s{{namespace="{HR_NS}",variant="control"}}'), timeout=30,
             interval=1, what="veritas:requests:rate30s of the HTTPRoute topology")
    # HAProxy: frontend fe_canary_httproute and backends hr-control / hr-canary, apart from the
    # first topology's control / canary (the collection's rules read proxy=~"control|canary|blue|green")
    text = requests.get(ADDR["metrics"], timeout=5).text
    for needle in ('proxy="fe_canary_httproute"', 'proxy="hr-control"', 'proxy="hr-canary"', 'proxy="canary"'):
        assert needle in text, needle
    up = wait_for(lambda: prom('haproxy_backend_active_servers{job="haproxy",proxy="hr-control"}'), timeout=15,
                  interval=1, what="HAProxy's hr-control backend in Prometheus")
    assert float(up[0]["value"][1]) >= 1


# --------------------------------------------------------------------------- private controller


def test_private_controller_follows_an_httproute_within_one_second(core, custom, namespace, lab_proxy):
    p = lab_proxy
    hmap = str(p.run_dir / "canary_httproute.map")
    made = []
    try:
        for name, variant in (("hr-control-0", "control"), ("hr-canary-0", "canary")):
            b = Backend(name)
            made.append(b)
            core.create_namespaced_pod(namespace, client.V1Pod(
                metadata=client.V1ObjectMeta(
                    name=name, labels={TEST_LABEL: "true", "app": HR_APP, "variant": variant},
                    annotations={CFG["controller"]["address_annotation"]: b.address}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="runtime", image="veritas/spark-runtime:lab")],
                                      termination_grace_period_seconds=0)))

        def ready(backend):
            return {n for n, s in p.api.servers_state().get(backend, {}).items() if s["ready"]}

        wait_for(lambda: ready("hr-control") == {"hr-control-0"} and ready("hr-canary") == {"hr-canary-0"},
                 timeout=60, what="pods Ready in HAProxy")
        assert p.api.show_map(hmap)["canary_on"] == "0", "no route yet: default weights (100/0)"
        body = {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "HTTPRoute", "metadata": {"name": ROUTE},
            "spec": {"rules": [{"backendRefs": [
                {"name": svc, "port": 8080, "weight": 90 if v == "control" else 10} for svc, v in SERVICES.items()]}]},
        }
        delays = {}

        def time_until(t0, pred, timeout=5.0):
            while time.monotonic() - t0 < timeout:
                if pred():
                    return time.monotonic() - t0
                time.sleep(0.005)
            return None

        t0 = time.monotonic()
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
        delays["create"] = time_until(t0, lambda: p.api.show_map(hmap)["threshold"] == "1000")
        rules = copy.deepcopy(body["spec"]["rules"])
        for ref in rules[0]["backendRefs"]:
            ref["weight"] = 50
        t0 = time.monotonic()
        custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, ROUTE, {"spec": {"rules": rules}})
        delays["patch"] = time_until(t0, lambda: p.api.show_map(hmap)["threshold"] == "5000")
        got = collections.Counter(requests.get(p.addr["canary_httproute"], timeout=5).headers["X-Veritas-Variant"]
                                  for _ in range(200))
        assert set(got) == {"control", "canary"} and 60 < got["canary"] < 140, got
        t0 = time.monotonic()
        custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, ROUTE)
        delays["delete"] = time_until(t0, lambda: p.api.show_map(hmap)["canary_on"] == "0")
        print("change-to-proxy delays (s):", {k: v and round(v, 3) for k, v in delays.items()})
        for what, d in delays.items():
            assert d is not None and d < 1.0, f"{what}: {d}"
        # the ConfigMap frontend never saw any of it: no ConfigMap in the namespace, its defaults
        assert p.api.show_map(str(p.run_dir / "canary.map"))["canary_on"] == "0"
    finally:
        for b in made:
            b.close()

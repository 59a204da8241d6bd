"""Data plane, HTTPRoute canary frontend: the decisions (weights from a route, which pods go to
which backend, what the controller watches) as pure functions, the lab's manifests and CRD
against config.yml, and the frontend on a private HAProxy (Debian's) with local backends.
No lab needed."""

from __future__ import annotations

import collections
import copy
import re
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "lab" / "dataplane"))

import dataplane

CFG = dataplane.load_config()
FRONTS = {f["name"]: f for f in dataplane.canary_frontends(CFG)}
HR = FRONTS["canary_httproute"]
HR_NS = HR["namespace"]
MANIFEST = REPO_ROOT / "lab" / "manifests" / "30-canary-httproute.yaml"
CRD = REPO_ROOT / "lab" / "manifests" / "crds" / "gateway-httproute.yaml"


def route(*refs, rules=None, annotations=None, namespace=HR_NS):
    """An HTTPRoute as the API returns it; refs: (service, weight or None) of rule 0."""
    backend_refs = []
    for name, weight in refs:
        ref = {"group": "", "kind": "Service", "name": name, "port": 8080}
        if weight is not None:
            ref["weight"] = weight
        backend_refs.append(ref)
    meta = {"name": HR["httproute"]["name"], "namespace": namespace}
    if annotations:
        meta["annotations"] = annotations
    return {"metadata": meta, "spec": {"rules": rules if rules is not None else [{"backendRefs": backend_refs}]}}


CONTROL, CANARY = "veritas-hr-control", "veritas-hr-canary"


# --------------------------------------------------------------------------- config


def test_config_has_both_canary_frontends_on_their_fixed_ports():
    assert list(FRONTS) == ["canary", "canary_httproute"]
    first = FRONTS["canary"]
    # the first frontend is as it was: port 18080, the ConfigMap, plain backend names
    assert (first["port"], first["weights_from"], first["configmap"]) == (18080, "configmap", "veritas-traffic-config")
    assert first["namespace"] == CFG["namespace"] == "veritas-lab"
    assert first["backends"] == {"control": "control", "canary": "canary"}
    assert (HR["port"], HR["weights_from"], HR["httproute"]["name"], HR["httproute"]["rule"]) == (
        18082, "httproute", "veritas-hr-route", 0)
    assert HR["backends"] == {"control": "hr-control", "canary": "hr-canary"}
    assert HR["httproute"]["backends"] == {CONTROL: "control", CANARY: "canary"}
    assert dataplane.addresses(CFG)["canary_httproute"] == "http://127.0.0.1:18082"
    assert dataplane.addresses(CFG)["canary"] == "http://127.0.0.1:18080"
    # lab-up.sh finds every fixed port by `_port: NNNN` in config.yml (another lab's check)
    text = (REPO_ROOT / "lab" / "dataplane" / "config.yml").read_text()
    assert "18082" in re.findall(r"_port: *([0-9]+)", text)


def test_backend_names_must_not_collide():
    cfg = copy.deepcopy(CFG)
    cfg["canary_httproute"]["backend_prefix"] = ""
    with pytest.raises(ValueError, match="collide"):
        dataplane.canary_frontends(cfg)


def test_a_config_without_canary_frontends_has_the_one_configmap_frontend():
    cfg = copy.deepcopy(CFG)
    del cfg["canary_frontends"], cfg["canary_httproute"], cfg["haproxy"]["canary_httproute_port"]
    fronts = dataplane.canary_frontends(cfg)
    assert [(f["name"], f["port"], f["weights_from"]) for f in fronts] == [("canary", 18080, "configmap")]


# --------------------------------------------------------------------------- weights from a route


def test_route_weights_per_variant():
    w, fb, notes = dataplane.route_weights(route((CONTROL, 90), (CANARY, 10)), HR)
    assert (w, fb, notes) == ({"control": 90, "canary": 10}, True, [])
    assert dataplane.draw_map(w, fb, HR["variants"]) == {
        "threshold": "1000", "control_on": "1", "canary_on": "1", "fallback": "1"}


def test_route_absent_gives_the_default_weights():
    w, fb, _ = dataplane.route_weights(None, HR)
    assert (w, fb) == ({"control": 100, "canary": 0}, True)
    assert dataplane.draw_map(w, fb, HR["variants"])["canary_on"] == "0"


def test_backendref_without_weight_counts_one_and_zero_sends_nothing():
    w, _, _ = dataplane.route_weights(route((CONTROL, None), (CANARY, None)), HR)
    assert w == {"control": 1, "canary": 1}
    w, fb, _ = dataplane.route_weights(route((CONTROL, 100), (CANARY, 0)), HR)
    assert w == {"control": 100, "canary": 0}
    assert dataplane.draw_map(w, fb, HR["variants"]) == {
        "threshold": "0", "control_on": "1", "canary_on": "0", "fallback": "1"}
    w, fb, _ = dataplane.route_weights(route((CONTROL, 0), (CANARY, 0)), HR)
    m = dataplane.draw_map(w, fb, HR["variants"])
    assert (m["control_on"], m["canary_on"]) == ("0", "0")  # 503: nothing selected


def test_weights_of_one_service_add_up_and_foreign_refs_are_left_out():
    r = route((CONTROL, 60), (CANARY, 10), (CONTROL, 20), ("someone-else", 500))
    r["spec"]["rules"][0]["backendRefs"] += [
        {"group": "example.io", "kind": "Bucket", "name": CANARY, "weight": 50},
        {"kind": "Service", "name": CANARY, "namespace": "other", "weight": 50},
        {"kind": "Service", "name": CANARY, "namespace": HR_NS, "weight": 5},  # own namespace: counts
    ]
    w, _, notes = dataplane.route_weights(r, HR)
    assert w == {"control": 80, "canary": 15}
    assert len(notes) == 3
    assert any("someone-else" in n and "not mapped" in n for n in notes)
    assert any("Bucket" in n for n in notes) and any("other" in n for n in notes)


def test_missing_rule_or_empty_rule_sends_nothing():
    f = copy.deepcopy(HR)
    f["httproute"]["rule"] = 1
    w, _, notes = dataplane.route_weights(route((CONTROL, 90), (CANARY, 10)), f)
    assert w == {"control": 0, "canary": 0} and "does not exist" in notes[0]
    w, _, notes = dataplane.route_weights(route(rules=[{"matches": []}]), HR)
    assert w == {"control": 0, "canary": 0} and "no backendRef" in notes[0]
    # the second rule when told so
    two = route(rules=[{"backendRefs": [{"name": CONTROL, "weight": 1}]},
                       {"backendRefs": [{"name": CONTROL, "weight": 3}, {"name": CANARY, "weight": 1}]}])
    assert dataplane.route_weights(two, f)[0] == {"control": 3, "canary": 1}


def test_fallback_annotation_and_bad_weight_keeps_previous():
    _, fb, _ = dataplane.route_weights(
        route((CONTROL, 50), (CANARY, 50), annotations={"lab.veritas.io/fallback": "false"}), HR)
    assert fb is False
    prev = {"control": 90, "canary": 10}
    w, _, notes = dataplane.route_weights(route((CONTROL, "lots"), (CANARY, 10)), HR, prev)
    assert w == prev and "bad weight" in notes[0]
    w, _, _ = dataplane.route_weights(route((CONTROL, -1), (CANARY, 10)), HR, None)
    assert w == {"control": 0, "canary": 0}


# --------------------------------------------------------------------------- desired state


def pv(name, ns=None, ready=True, port=9000, **labels):
    return dataplane.PodView(name, labels, ("127.0.0.1", port), ready, ns)


def view(pods, configmap=None, hr_route=None, selector=None):
    v = dataplane.ClusterView()
    v.pods = {(p.namespace or "") + "/" + p.name: p for p in pods}
    v.configmap = configmap
    v.sources["canary_httproute"] = hr_route
    v.selector = selector
    return v


def test_pods_go_to_their_own_topology_backends():
    pods = [
        pv("veritas-control-1", app="veritas", variant="control"),
        pv("veritas-canary-1", "veritas-lab", app="veritas", variant="canary"),
        pv("veritas-hr-control-1", HR_NS, app="veritas", variant="control"),
        pv("veritas-hr-canary-1", HR_NS, ready=False, app="veritas", variant="canary"),
        # the same labels in a third namespace (another copy): neither frontend's
        pv("stray-1", "veritas-lab-other", app="veritas", variant="canary"),
        pv("blue-1", app="veritas-runtime", deployment="blue"),
    ]
    backends, maps, weights, notes = dataplane.desired_state(
        view(pods, {"control": "50", "canary": "50"}, route((CONTROL, 90), (CANARY, 10)),
             {"app": "veritas-runtime", "deployment": "blue"}), CFG)
    assert {b: set(s) for b, s in backends.items()} == {
        "control": {"veritas-control-1"}, "canary": {"veritas-canary-1"},
        "hr-control": {"veritas-hr-control-1"}, "hr-canary": {"veritas-hr-canary-1"},
        "blue": {"blue-1"}, "green": set()}
    assert backends["hr-canary"]["veritas-hr-canary-1"]["ready"] is False
    assert weights == {"canary": {"control": 50.0, "canary": 50.0}, "canary_httproute": {"control": 90, "canary": 10}}
    assert maps["canary.map"]["threshold"] == "5000"
    assert maps["canary_httproute.map"]["threshold"] == "1000"
    assert maps["bluegreen.map"] == {"active": "blue"}
    assert notes == {"canary": [], "canary_httproute": []}


def test_the_configmap_frontend_ignores_the_route_and_the_route_frontend_the_configmap():
    a = dataplane.desired_state(view([], {"control": "90", "canary": "10"}, route((CONTROL, 0), (CANARY, 100))), CFG)[1]
    b = dataplane.desired_state(view([], {"control": "90", "canary": "10"}, None), CFG)[1]
    c = dataplane.desired_state(view([], None, route((CONTROL, 0), (CANARY, 100))), CFG)[1]
    assert a["canary.map"] == b["canary.map"] != c["canary.map"]
    assert c["canary.map"]["canary_on"] == "0"  # ConfigMap missing: its defaults, 100/0
    assert a["canary_httproute.map"] == c["canary_httproute.map"] != b["canary_httproute.map"]
    assert a["canary_httproute.map"]["threshold"] == "10000"


def test_the_controller_watches_pods_of_both_namespaces_and_the_route():
    specs = dataplane.watch_specs(CFG)
    assert {(s.kind, s.namespace, s.name, s.frontend) for s in specs} == {
        ("pods", "veritas-lab", None, None),
        ("pods", HR_NS, None, None),
        ("configmap", "veritas-lab", "veritas-traffic-config", "canary"),
        ("httproute", HR_NS, "veritas-hr-route", "canary_httproute"),
        ("service", "veritas-lab", "veritas-runtime", None),
    }
    assert len({s.key for s in specs}) == len(specs)


def test_watch_events_update_the_view(tmp_path):
    from kubernetes import client

    ctl = dataplane.Controller(CFG, tmp_path)
    spec_pods = next(s for s in ctl.specs if s.kind == "pods" and s.namespace == HR_NS)
    spec_main = next(s for s in ctl.specs if s.kind == "pods" and s.namespace == "veritas-lab")
    spec_route = next(s for s in ctl.specs if s.kind == "httproute")

    def pod(name, ns, **labels):
        return client.V1Pod(
            metadata=client.V1ObjectMeta(name=name, namespace=ns, labels=labels,
                                         annotations={"lab.veritas.io/address": "127.0.0.1:9001"}),
            status=client.V1PodStatus(phase="Running", conditions=[client.V1PodCondition(type="Ready", status="True")]))

    # same pod name in both namespaces: two pods
    ctl._replace(spec_main, [pod("p-1", "veritas-lab", app="veritas", variant="control")])
    ctl._replace(spec_pods, [pod("p-1", HR_NS, app="veritas", variant="control")])
    assert set(ctl.view.pods) == {"p-1", f"{HR_NS}/p-1"}
    ctl._replace(spec_pods, [])  # a relist of one namespace leaves the other alone
    assert set(ctl.view.pods) == {"p-1"}
    ctl._apply_event(spec_pods, "ADDED", pod("p-2", HR_NS, app="veritas", variant="canary"))
    assert ctl.view.pods[f"{HR_NS}/p-2"].namespace == HR_NS
    ctl._apply_event(spec_pods, "DELETED", pod("p-2", HR_NS))
    assert set(ctl.view.pods) == {"p-1"}
    # the route, as the CustomObjectsApi gives it (a dict)
    r = route((CONTROL, 70), (CANARY, 30))
    r["metadata"]["resourceVersion"] = "42"
    ctl._replace(spec_route, [r])
    assert ctl.view.sources["canary_httproute"]["spec"] == r["spec"]
    assert dataplane._meta(r) == ("veritas-hr-route", "42")
    ctl._apply_event(spec_route, "DELETED", r)
    assert ctl.view.sources["canary_httproute"] is None
    ctl._apply_event(spec_route, "MODIFIED", r)
    assert ctl.view.sources["canary_httproute"]["metadata"]["name"] == "veritas-hr-route"


def test_a_missing_httproute_api_does_not_hold_up_the_data_plane(tmp_path):
    """Without the CRD, listing HTTPRoutes is a 404: the route counts as absent (default
    weights) and the controller keeps trying, instead of never reconciling anything."""
    from kubernetes.client.exceptions import ApiException

    ctl = dataplane.Controller(CFG, tmp_path)
    ctl.crd_missing_retry = 0.05
    spec = next(s for s in ctl.specs if s.kind == "httproute")
    calls = []

    def list_fn(*a, **kw):
        calls.append(a)
        raise ApiException(status=404, reason="Not Found")

    ctl._list_fn = lambda s: (list_fn, (dataplane.HTTPROUTE_GROUP, "v1", s.namespace, "httproutes"), {})
    ctl.view.sources["canary_httproute"] = route((CONTROL, 1), (CANARY, 1))  # was there before
    th = threading.Thread(target=ctl._watch_loop, args=(spec,), daemon=True)
    th.start()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(calls) < 3:
        time.sleep(0.02)
    ctl.stop.set()
    th.join(5)
    assert len(calls) >= 3, "lists again while the API is missing"
    assert ctl.synced[spec.key] is True
    assert ctl.view.sources["canary_httproute"] is None
    assert ctl.changed.is_set()


# --------------------------------------------------------------------------- manifests and CRD


def docs(path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_manifest_matches_the_data_plane_config():
    objs = {(d["kind"], d["metadata"]["name"]): d for d in docs(MANIFEST)}
    assert ("Namespace", HR_NS) in objs
    r = objs[("HTTPRoute", "veritas-hr-route")]
    assert r["apiVersion"] == "gateway.networking.k8s.io/v1" and r["metadata"]["namespace"] == HR_NS
    refs = r["spec"]["rules"][0]["backendRefs"]
    assert [(x["name"], x["port"], x["weight"]) for x in refs] == [(CONTROL, 8080, 90), (CANARY, 8080, 10)]
    assert dataplane.route_weights(r, HR)[:2] == ({"control": 90, "canary": 10}, True)
    runtime_label = CFG["controller"]["pod_label_selector"].split("=")
    nodes = {n["metadata"]["name"]: n for n in docs(REPO_ROOT / "lab" / "kwok" / "nodes.yaml")}
    for svc_name, variant in HR["httproute"]["backends"].items():
        svc = objs[("Service", svc_name)]
        assert svc["metadata"]["namespace"] == HR_NS
        assert svc["spec"]["selector"] == {**HR["pod_selector"], HR["variant_label"]: variant}
        assert svc["spec"]["ports"][0]["port"] == 8080
        dep = objs[("Deployment", svc_name)]  # Deployment and Service share the name
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert labels == {**svc["spec"]["selector"], runtime_label[0]: runtime_label[1]}
        # on a GPU node of its own: not the first canary topology's
        slot = dep["spec"]["template"]["spec"]["nodeSelector"]["node.veritas.io/slot"]
        hosts = [n for n in nodes.values() if n["metadata"]["labels"].get("node.veritas.io/slot") == slot]
        assert [h["metadata"]["name"] for h in hosts] == ["lab-gpu-4"]
        assert hosts[0]["status"]["allocatable"]["nvidia.com/gpu"] == "8"
        assert dep["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["nvidia.com/gpu"] == "1"
    assert objs[("Deployment", CONTROL)]["spec"]["replicas"] == 2
    assert objs[("Deployment", CANARY)]["spec"]["replicas"] == 1


def _structural(schema, path="root"):
    """Every node of the schema has a type (or keeps unknown fields), as the API server requires."""
    assert "type" in schema or schema.get("x-kubernetes-preserve-unknown-fields"), path
    for k, sub in (schema.get("properties") or {}).items():
        _structural(sub, f"{path}.{k}")
    if "items" in schema:
        _structural(schema["items"], f"{path}[]")


def test_crd_is_ours_small_and_structural():
    (crd,) = docs(CRD)
    assert crd["metadata"]["name"] == "httproutes.gateway.networking.k8s.io"
    spec = crd["spec"]
    assert (spec["group"], spec["scope"], spec["names"]["kind"], spec["names"]["plural"]) == (
        "gateway.networking.k8s.io", "Namespaced", "HTTPRoute", "httproutes")
    (v1,) = spec["versions"]
    assert (v1["name"], v1["served"], v1["storage"], v1["subresources"]) == ("v1", True, True, {"status": {}})
    root = v1["schema"]["openAPIV3Schema"]
    _structural(root)
    props = root["properties"]
    assert props["status"]["x-kubernetes-preserve-unknown-fields"] is True
    assert props["spec"]["properties"]["parentRefs"]["items"]["required"] == ["name"]
    ref = props["spec"]["properties"]["rules"]["items"]["properties"]["backendRefs"]["items"]
    w = ref["properties"]["weight"]
    assert (w["type"], w["minimum"], w["maximum"], w["default"]) == ("integer", 0, 1000000, 1)
    assert {"name", "namespace", "port", "weight", "group", "kind"} <= set(ref["properties"])
    assert ref["required"] == ["name"]
    assert len(CRD.read_text()) < 8000  # a small one of our own, not the upstream file


def test_lab_up_installs_the_crd_before_the_manifests_and_the_data_plane():
    text = (REPO_ROOT / "lab" / "bin" / "lab-up.sh").read_text()
    crd = text.index('kubectl apply -f "$REPO_ROOT/lab/manifests/crds"')
    assert crd < text.index("--for=condition=Established") < text.index('for c in "${LAB_COMPONENTS[@]}"')
    assert crd < text.index('kubectl apply -R -f "$REPO_ROOT/lab/manifests"')


# --------------------------------------------------------------------------- on a private HAProxy


def hit(url, n):
    s = requests.Session()
    seen = collections.Counter()
    for _ in range(n):
        r = s.post(url + "/v1/completions", json={"prompt": "hi"}, timeout=5)
        seen[(r.status_code, r.headers.get("X-Veritas-Variant"), r.headers.get("X-Veritas-Pod"))] += 1
    return seen


def by_variant(seen):
    out = collections.Counter()
    for (code, variant, _), n in seen.items():
        out[(code, variant)] += n
    return out


def test_httproute_frontend_splits_by_the_route_and_the_configmap_frontend_by_its_configmap(proxy, backends):
    def port_of(b):
        return int(b.address.split(":")[1])

    pods = [
        pv("veritas-control-1", port=port_of(backends("c")), app="veritas", variant="control"),
        pv("veritas-canary-1", port=port_of(backends("k")), app="veritas", variant="canary"),
        pv("veritas-hr-control-1", HR_NS, port=port_of(backends("hc1")), app="veritas", variant="control"),
        pv("veritas-hr-control-2", HR_NS, port=port_of(backends("hc2")), app="veritas", variant="control"),
        pv("veritas-hr-canary-1", HR_NS, port=port_of(backends("hk")), app="veritas", variant="canary"),
    ]
    ctl = dataplane.Controller(proxy.cfg, proxy.run_dir)
    ctl.view = view(pods, {"control": "0", "canary": "100"}, route((CONTROL, 90), (CANARY, 10)))
    ctl.synced = dict.fromkeys(ctl.synced, True)
    assert ctl.reconcile() > 0
    hr_url, cm_url = proxy.addr["canary_httproute"], proxy.addr["canary"]

    seen = hit(hr_url, 1000)
    counts = by_variant(seen)
    assert set(counts) <= {(200, "control"), (200, "canary")}, seen
    assert 0.06 < counts[(200, "canary")] / 1000 < 0.14, counts
    assert {p for (_, _, p) in seen} == {"veritas-hr-control-1", "veritas-hr-control-2", "veritas-hr-canary-1"}
    # the ConfigMap frontend: 0/100 by its ConfigMap, only the first topology's pods
    assert set(hit(cm_url, 50)) == {(200, "canary", "veritas-canary-1")}

    # the route to 100/0: all to control; the ConfigMap frontend unchanged
    ctl.view.sources["canary_httproute"] = route((CONTROL, 100), (CANARY, 0))
    assert ctl.reconcile() > 0
    assert by_variant(hit(hr_url, 300)) == {(200, "control"): 300}
    assert set(hit(cm_url, 30)) == {(200, "canary", "veritas-canary-1")}
    # the route deleted: default weights (100/0); both 0: 503
    ctl.view.sources["canary_httproute"] = None
    ctl.reconcile()
    assert by_variant(hit(hr_url, 50)) == {(200, "control"): 50}
    ctl.view.sources["canary_httproute"] = route((CONTROL, 0), (CANARY, 0))
    ctl.reconcile()
    assert by_variant(hit(hr_url, 10)) == {(503, "none"): 10}
    # canary drawn, no Ready canary pod: fallback to control unless the route's annotation says no
    ctl.view.sources["canary_httproute"] = route((CONTROL, 50), (CANARY, 50))
    ctl.view.pods[f"{HR_NS}/veritas-hr-canary-1"].ready = False
    ctl.reconcile()
    assert by_variant(hit(hr_url, 100)) == {(200, "control"): 100}
    ctl.view.sources["canary_httproute"] = route((CONTROL, 50), (CANARY, 50),
                                                 annotations={"lab.veritas.io/fallback": "false"})
    ctl.reconcile()
    codes = collections.Counter(c for (c, _, _), n in hit(hr_url, 200).items() for _ in range(n))
    assert 60 < codes[503] < 140, codes

    # HAProxy's metrics tell the frontends and their backends apart
    metrics = requests.get(proxy.addr["metrics"], timeout=5).text

    def metric(name, proxy_name, extra=""):
        m = re.search(rf'^{name}{{proxy="{re.escape(proxy_name)}"{extra}}} (\d+)', metrics, re.MULTILINE)
        return int(m.group(1)) if m else None

    assert metric("haproxy_backend_http_responses_total", "hr-canary", ',code="2xx"') > 0
    assert metric("haproxy_backend_http_responses_total", "canary", ',code="2xx"') == 80
    assert metric("haproxy_frontend_http_responses_total", "fe_canary_httproute", ',code="2xx"') > 1000
    assert metric("haproxy_backend_active_servers", "canary") == 1
    log = proxy.access_log()
    assert {e["frontend"] for e in log} == {"fe_canary", "fe_canary_httproute"}

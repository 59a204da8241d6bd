"""The supervisor's decisions as pure functions: no cluster needed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "lab" / "supervisor"))

import supervisor as sup


def pod(phase="Running", state="running", deleting=False, labels=None, annotations=None,
        env=None, ready=None, restarts=0):
    p = {"metadata": {"name": "veritas-canary-abc", "namespace": "veritas-lab", "uid": "u-1",
                      "labels": {"lab.veritas.io/runtime": "true", "app": "veritas",
                                 **(labels or {})},
                      "annotations": annotations or {}},
         "spec": {"containers": [{"name": "runtime", "env": env or []}]},
         "status": {"phase": phase,
                    "containerStatuses": [{"name": "runtime", "restartCount": restarts,
                                           "state": {state: {}}}]}}
    if deleting:
        p["metadata"]["deletionTimestamp"] = "2026-11-29T00:00:00Z"
    if ready is not None:
        p["status"]["conditions"] = [{"type": "Ready", "status": "True" if ready else "False"}]
    return p


@pytest.mark.parametrize(("kwargs", "want"), [
    ({}, True),
    ({"phase": "Pending"}, False),
    ({"phase": "Failed"}, False),
    ({"phase": "Succeeded"}, False),
    ({"deleting": True}, False),
    ({"state": "waiting"}, False),
    ({"state": "terminated"}, False),
])
def test_a_process_runs_only_for_a_running_container(kwargs, want):
    assert sup.wants_process(pod(**kwargs)) is want


def test_readiness_follows_health_except_in_a_crash_loop():
    assert sup.desired_ready(pod(), 200) is True
    assert sup.desired_ready(pod(), 503) is False
    assert sup.desired_ready(pod(), None) is False
    assert sup.desired_ready(pod(labels={"lab.veritas.io/crashloop": "true"}), 200) is False
    assert sup.ready_condition(pod(ready=True)) is True
    assert sup.ready_condition(pod()) is None
    assert sup.restart_count(pod(restarts=3)) == 3


def test_runtime_env_comes_from_the_pod(tmp_path):
    p = pod(labels={"variant": "canary", "deployment": "green"},
            annotations={"lab.veritas.io/faults": '{"latency": {"ms": 5}}'},
            env=[{"name": "VERITAS_PER_TOKEN_MS", "value": "2"},
                 {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "x", "key": "y"}}}])
    env = sup.runtime_env(p, "127.0.0.1:4000", tmp_path)
    assert env["VERITAS_RUNTIME_ADDR"] == "127.0.0.1:4000"
    assert env["VERITAS_PER_TOKEN_MS"] == "2"
    assert "FROM_SECRET" not in env
    assert (env["VARIANT"], env["DEPLOYMENT"]) == ("canary", "green")
    assert (env["POD_NAME"], env["POD_NAMESPACE"]) == ("veritas-canary-abc", "veritas-lab")
    assert env["VERITAS_FAULTS"] == '{"latency": {"ms": 5}}'
    assert env["SESSION_STORE_DIR"] == str(tmp_path / "state" / "sessions" / "veritas-lab")
    isolated = sup.runtime_env(pod(annotations={"lab.veritas.io/session-store": "isolated"}),
                               "127.0.0.1:1", tmp_path)
    assert isolated["SESSION_STORE_DIR"].endswith("veritas-lab.veritas-canary-abc")


def test_published_labels_and_exec_mapping(tmp_path):
    p = pod(labels={"variant": "canary"})
    assert sup.target_labels(p) == {"namespace": "veritas-lab", "pod": "veritas-canary-abc",
                                    "variant": "canary", "app": "veritas"}
    ex = sup.exec_object(p, "127.0.0.1:4000", tmp_path, "/usr/bin/python3")
    assert (ex["kind"], ex["apiVersion"]) == ("Exec", "kwok.x-k8s.io/v1alpha1")
    assert (ex["metadata"]["name"], ex["metadata"]["namespace"]) == ("veritas-canary-abc", "veritas-lab")
    assert ex["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    local = ex["spec"]["execs"][0]["local"]
    assert local["workDir"] == str(tmp_path)
    assert {"name": "VERITAS_RUNTIME_ADDR", "value": "127.0.0.1:4000"} in local["envs"]


def test_exec_object_maps_the_envoy_container_to_curl_through_the_pods_process(tmp_path):
    ex = sup.exec_object(pod(), "127.0.0.1:4000", tmp_path, "/usr/bin/python3")
    default, envoy = ex["spec"]["execs"]
    # The runtime's entry stays first and without containers: kwok's default for every container
    # without an entry of its own (`kubectl exec POD -- ./cli ...`).
    assert "containers" not in default
    assert default["local"]["workDir"] == str(tmp_path)
    assert envoy == {"containers": ["envoy"], "local": {
        "workDir": str(tmp_path / "envoy"),
        "envs": [{"name": "http_proxy", "value": "http://127.0.0.1:4000"},
                 {"name": "HTTP_PROXY", "value": "http://127.0.0.1:4000"},
                 {"name": "no_proxy", "value": ""},
                 {"name": "NO_PROXY", "value": ""},
                 {"name": "POD_NAME", "value": "veritas-canary-abc"},
                 {"name": "POD_NAMESPACE", "value": "veritas-lab"}]}}
    # The envoy container has no runtime CLI and no runtime address of its own.
    assert not any(e["name"] == "VERITAS_RUNTIME_ADDR" for e in envoy["local"]["envs"])


def test_the_runtime_container_and_its_status_are_found_by_name():
    p = pod(restarts=2)
    p["spec"]["containers"].insert(0, {"name": "envoy", "env": [{"name": "X", "value": "1"}]})
    p["status"]["containerStatuses"].insert(
        0, {"name": "envoy", "restartCount": 7, "state": {"waiting": {"reason": "CrashLoopBackOff"}}})
    assert sup.runtime_container(p)["name"] == "runtime"
    assert sup.runtime_status(p)["name"] == "runtime"
    assert sup.restart_count(p) == 2
    assert sup.wants_process(p) is True
    # A native sidecar's status is in initContainerStatuses: it never stands for the runtime.
    q = pod(state="waiting")
    q["status"]["initContainerStatuses"] = [{"name": "envoy", "state": {"running": {}}}]
    assert sup.wants_process(q) is False


def test_every_runtime_pod_of_the_manifests_has_an_envoy_native_sidecar():
    import yaml

    manifests = Path(__file__).resolve().parents[2] / "lab" / "manifests"
    deployments = [d for f in sorted(manifests.glob("*.yaml")) for d in yaml.safe_load_all(f.read_text())
                   if d and d.get("kind") == "Deployment"
                   and d["spec"]["template"]["metadata"]["labels"].get("lab.veritas.io/runtime") == "true"]
    assert len(deployments) == 6  # canary (2), blue-green (2), the HTTPRoute copy of the canary (2)
    for d in deployments:
        spec = d["spec"]["template"]["spec"]
        # One regular container: exec and logs without a container name default to it.
        assert [c["name"] for c in spec["containers"]] == ["runtime"], d["metadata"]["name"]
        (envoy,) = spec["initContainers"]
        assert envoy["name"] == "envoy"
        assert envoy["restartPolicy"] == "Always"
        assert envoy["ports"] == [{"name": "envoy-admin", "containerPort": 15000}]


def test_free_port_avoids_taken_ports():
    first = sup.free_port(set())
    assert sup.free_port({first}) != first


# ---- NetworkPolicy (Ingress) ------------------------------------------------------------------

PROMETHEUS = {"namespace": "monitoring", "labels": {"app.kubernetes.io/name": "prometheus"}}
HAPROXY = {"namespace": "ingress", "labels": {"app.kubernetes.io/name": "haproxy"}}
PEERS = {"prometheus": PROMETHEUS, "dataplane": HAPROXY}
NS_LABELS = {"monitoring": {"kubernetes.io/metadata.name": "monitoring", "team": "obs"},
             "ingress": {"kubernetes.io/metadata.name": "ingress"},
             "veritas-lab": {"kubernetes.io/metadata.name": "veritas-lab", "environment": "lab"}}


def served_pod(ports=None, labels=None):
    p = pod(labels=labels)
    p["spec"]["containers"][0]["ports"] = [{"name": "http", "containerPort": 8080}] if ports is None else ports
    return p


def policy(ingress, selector=None, types=("Ingress",), namespace="veritas-lab"):
    spec = {"podSelector": {"matchLabels": {"app": "veritas"}} if selector is None else selector,
            "ingress": ingress}
    if types is not None:
        spec["policyTypes"] = list(types)
    return {"metadata": {"name": "np", "namespace": namespace}, "spec": spec}


def other_tcp_ports(port):
    """The shape of the collection's metrics_network_policy (plugins/module_utils/_runtime_cli.py)."""
    return [{"protocol": "TCP", "port": 1, "endPort": port - 1},
            {"protocol": "TCP", "port": port + 1, "endPort": 65535},
            {"protocol": "UDP", "port": 1, "endPort": 65535}]


def metrics_outage_policy(port=8080, prometheus_pod_labels=None):
    peers = [{"namespaceSelector": {"matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["monitoring"]}]}}]
    for key, value in (prometheus_pod_labels or {}).items():
        peers.append({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                      "podSelector": {"matchExpressions": [{"key": key, "operator": "NotIn", "values": [value]}]}})
    return policy([{"ports": other_tcp_ports(port)},
                   {"from": peers, "ports": [{"protocol": "TCP", "port": port}]}])


def verdict(policies, p=None):
    return sup.network_verdict(p or served_pod(), policies, PEERS, NS_LABELS)


def test_no_policy_or_a_policy_selecting_other_pods_admits_everyone():
    assert verdict([]) == {"dataplane": True, "prometheus": True}
    assert verdict([policy([], selector={"matchLabels": {"app": "other"}})]) == {"dataplane": True, "prometheus": True}
    # A policy of another namespace never selects the pod.
    assert verdict([policy([], namespace="elsewhere")])["prometheus"] is True
    # An Egress-only policy leaves ingress alone.
    assert verdict([policy([], types=("Egress",))])["prometheus"] is True


def test_a_selecting_policy_is_an_allow_list():
    # Selected for Ingress with no rules: everything is denied.
    assert verdict([policy([])]) == {"dataplane": False, "prometheus": False}
    assert verdict([policy(None, types=None)]) == {"dataplane": False, "prometheus": False}
    # An empty rule (no from, no ports) admits everything; policies add up.
    assert verdict([policy([]), policy([{}])]) == {"dataplane": True, "prometheus": True}
    # The empty podSelector selects every pod of the namespace.
    assert verdict([policy([], selector={})])["dataplane"] is False


def test_the_collections_metrics_outage_policy_blocks_only_prometheus_on_the_metrics_port():
    assert verdict([metrics_outage_policy()]) == {"dataplane": True, "prometheus": False}
    # With Prometheus's pod labels it still blocks Prometheus, and not other pods of monitoring.
    assert verdict([metrics_outage_policy(prometheus_pod_labels={"app.kubernetes.io/name": "prometheus"})]) == \
        {"dataplane": True, "prometheus": False}
    other = {"namespace": "monitoring", "labels": {"app.kubernetes.io/name": "grafana"}}
    pol = [metrics_outage_policy(prometheus_pod_labels={"app.kubernetes.io/name": "prometheus"})]
    assert sup.network_verdict(served_pod(), pol, {"grafana": other}, NS_LABELS) == {"grafana": True}
    # A policy that blocks another port leaves the scrapes alone.
    assert verdict([metrics_outage_policy(port=9090)]) == {"dataplane": True, "prometheus": True}
    # The pod declares a different port: the policy for 8080 does not touch it.
    assert verdict([metrics_outage_policy()], served_pod(ports=[{"name": "http", "containerPort": 8000}])) == \
        {"dataplane": True, "prometheus": True}


@pytest.mark.parametrize(("rule_port", "want"), [
    ({}, True),
    ({"protocol": "TCP"}, True),
    ({"protocol": "UDP"}, False),
    ({"port": 8080}, True),
    ({"port": "8080"}, True),
    ({"port": 8081}, False),
    ({"port": 8000, "endPort": 8080}, True),
    ({"port": 8081, "endPort": 9000}, False),
    ({"port": "http"}, True),
    ({"port": "metrics"}, False),
    ({"port": "http", "protocol": "UDP"}, False),
])
def test_ports_numbers_ranges_names_and_protocols(rule_port, want):
    assert sup.port_matches(rule_port, 8080, "http") is want
    assert sup.port_matches({"port": "http"}, 8080, "") is False  # an unnamed port has no name to match


@pytest.mark.parametrize(("peer_rule", "want"), [
    ({"namespaceSelector": {}}, {"prometheus": True, "dataplane": True}),
    ({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}},
     {"prometheus": True, "dataplane": False}),
    ({"namespaceSelector": {"matchLabels": {"team": "obs"}}}, {"prometheus": True, "dataplane": False}),
    ({"namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "Exists"}]}},
     {"prometheus": True, "dataplane": False}),
    ({"namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "DoesNotExist"}]}},
     {"prometheus": False, "dataplane": True}),
    ({"namespaceSelector": {"matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["ingress", "x"]}]}},
     {"prometheus": False, "dataplane": True}),
    ({"namespaceSelector": {}, "podSelector": {"matchLabels": {"app.kubernetes.io/name": "haproxy"}}},
     {"prometheus": False, "dataplane": True}),
    # podSelector alone: pods of the policy's namespace only (neither peer is in veritas-lab).
    ({"podSelector": {}}, {"prometheus": False, "dataplane": False}),
    ({"ipBlock": {"cidr": "0.0.0.0/0"}}, {"prometheus": False, "dataplane": False}),
])
def test_from_peers_by_namespace_and_pod_labels(peer_rule, want):
    assert verdict([policy([{"from": [peer_rule]}])]) == want


def test_peers_come_from_the_observability_and_dataplane_configs():
    peers = sup.load_peers()
    assert peers["prometheus"] == PROMETHEUS
    assert peers["dataplane"] == HAPROXY
    # Their namespaces exist in the lab, so namespaceSelectors on their labels work as elsewhere.
    import yaml

    manifests = Path(__file__).resolve().parents[2] / "lab" / "manifests"
    names = {d["metadata"]["name"] for f in manifests.glob("*.yaml") for d in yaml.safe_load_all(f.read_text())
             if d and d.get("kind") == "Namespace"}
    assert {"monitoring", "ingress"} <= names


def test_serving_port_is_the_http_container_port():
    assert sup.serving_port(served_pod()) == (8080, "http")
    assert sup.serving_port(served_pod(ports=[{"name": "api", "containerPort": 9000}])) == (9000, "api")
    assert sup.serving_port(served_pod(ports=[])) == (8080, "")


def test_the_runtime_exec_entry_sends_curl_to_the_pods_process(tmp_path):
    default = sup.exec_object(pod(), "127.0.0.1:4000", tmp_path, "/usr/bin/python3")["spec"]["execs"][0]
    envs = {e["name"]: e["value"] for e in default["local"]["envs"]}
    assert envs["http_proxy"] == envs["HTTP_PROXY"] == "http://127.0.0.1:4000"
    assert envs["no_proxy"] == envs["NO_PROXY"] == ""


# ---- memory limits ------------------------------------------------------------------------------

@pytest.mark.parametrize(("q", "want"), [
    ("16Mi", 16 * 2**20), ("1Gi", 2**30), ("512Ki", 512 * 1024), ("128M", 128_000_000),
    ("1G", 10**9), ("100k", 100_000), ("1048576", 1048576), ("1.5Gi", 3 * 2**29), ("1e6", 10**6),
    ("", None), ("lots", None), (None, None),
])
def test_parse_quantity(q, want):
    assert sup.parse_quantity(q) == want


def limited(memory=None, requests=None):
    p = pod()
    res = {}
    if memory is not None:
        res["limits"] = {"memory": memory}
    if requests is not None:
        res["requests"] = requests
    p["spec"]["containers"][0]["resources"] = res
    return p


def test_memory_limit_of_the_runtime_container():
    assert sup.memory_limit(limited("16Mi")) == 16 * 2**20
    assert sup.memory_limit(limited()) is None
    assert sup.memory_limit(limited(requests={"memory": "256Mi"})) is None  # a request is no limit
    p = limited("16Mi")
    p["spec"]["containers"].insert(0, {"name": "envoy", "resources": {"limits": {"memory": "1Mi"}}})
    assert sup.memory_limit(p) == 16 * 2**20


def test_proc_parsing():
    assert sup.parse_vmrss("Name:\tpython\nVmRSS:\t   24252 kB\nVmHWM: 1 kB\n") == 24252 * 1024
    assert sup.parse_vmrss("Name:\tkthreadd\n") is None
    assert sup.parse_pgrp("123 (a) b) c) S 1 456 456 0 -1") == 456


def test_crash_backoff_doubles_from_2s_to_10s():
    assert [sup.crash_backoff(n) for n in range(1, 6)] == [2.0, 4.0, 8.0, 10.0, 10.0]


def test_oom_kill_shows_as_kubelet_does():
    p = pod(restarts=2, ready=True)
    p["metadata"]["uid"] = "u-9"
    p["status"]["containerStatuses"][0].update(image="veritas/spark-runtime:lab",
                                               state={"running": {"startedAt": "T0"}})
    p["status"]["conditions"].append({"type": "PodScheduled", "status": "True"})
    status = sup.oom_killed_status(p, "T0", "T1", 2.0)
    (st,) = status["containerStatuses"]
    assert st["restartCount"] == 3
    assert st["ready"] is False
    assert st["image"] == "veritas/spark-runtime:lab"
    assert st["lastState"] == {"terminated": {"exitCode": 137, "reason": "OOMKilled",
                                              "startedAt": "T0", "finishedAt": "T1"}}
    assert st["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert st["state"]["waiting"]["message"] == \
        "back-off 2s restarting failed container=runtime pod=veritas-canary-abc_veritas-lab(u-9)"
    conds = {c["type"]: c["status"] for c in status["conditions"]}
    assert conds == {"PodScheduled": "True", "Ready": "False", "ContainersReady": "False"}
    # The supervisor's back-off, not kwok's crash-loop stage: it keeps the slot and restarts it.
    p["status"].update(status)
    assert sup.wants_process(p) is False
    assert sup.in_oom_backoff(p) is True
    assert sup.in_oom_backoff(pod(state="waiting")) is False
    again = sup.restarted_status(p, "T2")
    (st,) = again["containerStatuses"]
    assert st["state"] == {"running": {"startedAt": "T2"}}
    assert (st["restartCount"], st["ready"], st["lastState"]["terminated"]["reason"]) == (3, False, "OOMKilled")
    p["status"].update(again)
    assert sup.wants_process(p) is True
    assert sup.in_oom_backoff(p) is False


def test_kwoks_crash_loop_restart_stage_leaves_oom_killed_containers_to_the_supervisor():
    import yaml

    stages = Path(__file__).resolve().parents[2] / "lab" / "kwok" / "stages" / "pod-crashloop.yaml"
    restart = next(d for d in yaml.safe_load_all(stages.read_text())
                   if d["metadata"]["name"] == "veritas-pod-crashloop-restart")
    assert {"key": ".status.containerStatuses.[0].lastState.terminated.reason", "operator": "NotIn",
            "values": ["OOMKilled"]} in restart["spec"]["selector"]["matchExpressions"]


# ---- GPUs -----------------------------------------------------------------------------------------

def gpu_node(capacity="8", allocatable="8"):
    status = {"capacity": {"cpu": "32"}, "allocatable": {"cpu": "32"}}
    if capacity is not None:
        status["capacity"]["nvidia.com/gpu"] = capacity
    if allocatable is not None:
        status["allocatable"]["nvidia.com/gpu"] = allocatable
    return {"metadata": {"name": "lab-gpu-1"}, "status": status}


def gpu_pod(n="1"):
    p = pod()
    p["spec"]["containers"][0]["resources"] = {"requests": {"nvidia.com/gpu": n}, "limits": {"nvidia.com/gpu": n}}
    return p


def test_gpus_are_lost_when_the_node_offers_fewer_than_the_pod_asked_for():
    assert sup.gpu_request(gpu_pod("2")) == 2
    assert sup.gpu_request(pod()) == 0
    assert sup.gpus_lost(gpu_pod(), gpu_node()) is False
    assert sup.gpus_lost(gpu_pod(), gpu_node(allocatable="0")) is True
    assert sup.gpus_lost(gpu_pod(), gpu_node(capacity="0", allocatable="0")) is True
    assert sup.gpus_lost(gpu_pod("2"), gpu_node(allocatable="1")) is True
    assert sup.gpus_lost(gpu_pod(), gpu_node(capacity=None, allocatable=None)) is True
    # A pod without GPUs does not care; an unknown node changes nothing.
    assert sup.gpus_lost(pod(), gpu_node(allocatable="0")) is False
    assert sup.gpus_lost(gpu_pod(), None) is False
    # Cordon and NoSchedule taints are spec, not capacity: running pods keep their GPUs.
    cordoned = {**gpu_node(), "spec": {"unschedulable": True,
                                       "taints": [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}]}}
    assert sup.gpus_lost(gpu_pod(), cordoned) is False


def test_lab_state_is_what_the_process_reads():
    assert sup.lab_state({"prometheus": False, "dataplane": True}, True) == {
        "network": {"prometheus": False, "dataplane": True}, "devices": {"gpu_lost": True}}

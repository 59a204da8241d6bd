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
    assert len(deployments) == 4
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

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


def test_free_port_avoids_taken_ports():
    first = sup.free_port(set())
    assert sup.free_port({first}) != first

# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_runtime_exec: the exec helpers shared by runtime_fault and cache_warmup."""

from __future__ import annotations

import pytest
from ansible_collections.veritas.chaos.plugins.module_utils import _runtime_exec
from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError
from ansible_collections.veritas.chaos.plugins.module_utils._exec import ExecResult
from fake_kube import FakeKube, pod

PARAMS = {"namespace": "lab", "container": "runtime", "exec_timeout": 7}


@pytest.fixture
def execs(monkeypatch):
    """exec_in_pod replaced by a script of (rc, stdout, stderr); records every call."""
    state = {"script": [(0, "ok\n", "")], "calls": []}

    def fake_exec(client, namespace, pod_name, command, container=None, timeout=30):
        state["calls"].append((namespace, pod_name, command, container, timeout))
        rc, out, err = state["script"].pop(0)
        return ExecResult(pod=pod_name, rc=rc, stdout=out, stderr=err)

    monkeypatch.setattr(_runtime_exec, "exec_in_pod", fake_exec)
    monkeypatch.setattr(_runtime_exec.time, "sleep", lambda seconds: None)
    return state


def test_run_in_pod_uses_the_module_parameters(execs):
    out = _runtime_exec.run_in_pod(None, PARAMS, "canary-0", ["./cli", "fault", "list"])
    assert out == "ok\n"
    assert execs["calls"] == [
        ("lab", "canary-0", ["./cli", "fault", "list"], "runtime", 7)
    ]


def test_run_in_pod_fails_on_a_non_zero_exit(execs):
    execs["script"] = [(3, "", "no such fault\n")]
    with pytest.raises(ChaosError) as caught:
        _runtime_exec.run_in_pod(None, PARAMS, "canary-0", ["./cli", "fault", "clear"])
    error = caught.value
    assert error.reason == "exec_failed"
    assert error.details == {"pod": "canary-0", "rc": 3}
    assert "lab/canary-0" in error.msg and "no such fault" in error.msg


def test_a_lost_exit_status_is_retried_only_when_idempotent(execs):
    lost = (_runtime_exec.NO_STATUS, "", "")
    execs["script"] = [lost, (0, "second\n", "")]
    assert _runtime_exec.run_in_pod(None, PARAMS, "p", ["read"]) == "second\n"
    assert len(execs["calls"]) == 2

    execs["script"], execs["calls"] = [lost, (0, "never\n", "")], []
    with pytest.raises(ChaosError) as caught:
        _runtime_exec.run_in_pod(None, PARAMS, "p", ["warm"], idempotent=False)
    assert len(execs["calls"]) == 1
    assert "without an exit status" in caught.value.msg


def test_running_pods_are_the_live_running_ones_by_name():
    kube = FakeKube()
    pods = "/api/v1/namespaces/lab/pods"
    canary = {"variant": "canary"}
    kube.put(pods + "/c-2", pod("c-2", canary))
    kube.put(pods + "/c-1", pod("c-1", canary, ready=False))
    kube.put(pods + "/c-pending", pod("c-pending", canary, phase="Pending"))
    kube.put(pods + "/c-done", pod("c-done", canary, phase="Succeeded"))
    leaving = pod("c-0", canary)
    leaving["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    kube.put(pods + "/c-0", leaving)
    kube.put(pods + "/control-0", pod("control-0", {"variant": "control"}))

    found = _runtime_exec.running_pods(kube, "lab", "variant=canary")
    assert [p["metadata"]["name"] for p in found] == ["c-1", "c-2"]
    assert _runtime_exec.running_pods(kube, "lab", "variant=none") == []

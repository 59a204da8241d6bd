from __future__ import annotations

import json

import pytest
from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError
from ansible_collections.veritas.chaos.plugins.module_utils._exec import ExecResult
from ansible_collections.veritas.chaos.plugins.module_utils._lock import LeaseLock
from ansible_collections.veritas.chaos.plugins.module_utils._selector import (
    PREVIOUS_SELECTOR_ANNOTATION,
)
from ansible_collections.veritas.chaos.plugins.modules import service_selector
from fake_kube import pod

SVC = "/api/v1/namespaces/lab/services/veritas-runtime"
LEASE = "/apis/coordination.k8s.io/v1/namespaces/lab/leases/veritas-runtime-switch"
BLUE = {"app": "veritas", "deployment": "blue"}
GREEN = {"app": "veritas", "deployment": "green"}
SWITCH = {
    "name": "veritas-runtime",
    "namespace": "lab",
    "selector": GREEN,
    "lock_holder": "run-a",
}


@pytest.fixture
def blue_green(kube):
    kube.put(
        SVC,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "veritas-runtime", "namespace": "lab"},
            "spec": {"selector": dict(BLUE)},
        },
    )
    for name, colour in (
        ("blue-1", "blue"),
        ("green-1", "green"),
        ("green-2", "green"),
    ):
        kube.put(
            "/api/v1/namespaces/lab/pods/" + name,
            pod(name, {"app": "veritas", "deployment": colour}),
        )
    return kube


def selector_of(kube):
    return kube.objects[SVC]["spec"]["selector"]


def test_switch_records_previous_releases_lock_and_is_idempotent(
    blue_green, run_module
):
    first = run_module(service_selector, SWITCH, blue_green)
    assert first["changed"] is True
    assert selector_of(blue_green) == GREEN
    assert (
        json.loads(
            blue_green.objects[SVC]["metadata"]["annotations"][
                PREVIOUS_SELECTOR_ANNOTATION
            ]
        )
        == BLUE
    )
    assert first["selector_diff"]["changed"] == {
        "deployment": {"from": "blue", "to": "green"}
    }
    assert first["health"]["healthy_pods"] == ["green-1", "green-2"]
    assert first["lock"] == {
        "name": "veritas-runtime-switch",
        "holder": "run-a",
        "decision": "acquire",
        "released": True,
    }
    assert LEASE not in blue_green.objects

    writes = len(blue_green.writes)
    second = run_module(service_selector, SWITCH, blue_green)
    assert second["changed"] is False
    assert len(blue_green.writes) == writes


def test_rollback_restores_without_memory_and_is_idempotent(blue_green, run_module):
    run_module(service_selector, SWITCH, blue_green)
    rollback = {"name": "veritas-runtime", "namespace": "lab", "state": "rolled_back"}
    first = run_module(service_selector, rollback, blue_green)
    assert first["changed"] and first["rolled_back"]
    assert selector_of(blue_green) == BLUE
    assert (
        PREVIOUS_SELECTOR_ANNOTATION
        not in blue_green.objects[SVC]["metadata"]["annotations"]
    )
    second = run_module(service_selector, rollback, blue_green)
    assert second["changed"] is False and second["rolled_back"] is False
    assert "nothing to roll back" in second["msg"]


def test_health_gate_refuses_and_changes_nothing(blue_green, run_module):
    result = run_module(service_selector, dict(SWITCH, min_ready_pods=3), blue_green)
    assert result["failed"] and result["reason"] == "unhealthy"
    assert "2 pod(s) Ready, 3 required" in result["msg"]
    assert selector_of(blue_green) == BLUE
    assert blue_green.writes == []


def test_not_ready_pods_do_not_count(blue_green, run_module):
    blue_green.put(
        "/api/v1/namespaces/lab/pods/green-2", pod("green-2", GREEN, ready=False)
    )
    result = run_module(service_selector, dict(SWITCH, min_ready_pods=2), blue_green)
    assert result["failed"] and result["health"]["ready_pods"] == ["green-1"]


def test_all_pods_ready_refuses_a_colour_with_a_crash_looping_pod(blue_green, run_module):
    # A rollout whose new pod is OOMKilled: the old pods are still Ready, enough for min_ready_pods.
    blue_green.put(
        "/api/v1/namespaces/lab/pods/green-3", pod("green-3", GREEN, ready=False)
    )
    result = run_module(
        service_selector, dict(SWITCH, min_ready_pods=2, all_pods_ready=True), blue_green
    )
    assert result["failed"] and result["reason"] == "unhealthy"
    assert "2 of its 3 pod(s) Ready" in result["msg"] and "green-3" in result["msg"]
    assert result["health"]["not_ready_pods"] == ["green-3"]
    assert selector_of(blue_green) == BLUE
    assert blue_green.writes == []
    # Counting Ready pods alone lets the same switch through.
    counted = run_module(service_selector, dict(SWITCH, min_ready_pods=2), blue_green)
    assert counted["changed"] is True and selector_of(blue_green) == GREEN


def test_all_pods_ready_passes_when_every_pod_is_ready(blue_green, run_module):
    result = run_module(
        service_selector, dict(SWITCH, min_ready_pods=1, all_pods_ready=True), blue_green
    )
    assert result["changed"] is True and result["health"]["not_ready_pods"] == []


def test_health_command_failures_count_against_the_gate(
    blue_green, run_module, monkeypatch
):
    outcomes = {"green-1": 0, "green-2": 7}
    monkeypatch.setattr(
        service_selector,
        "exec_in_pod",
        lambda client, ns, name, command, container, timeout: ExecResult(
            name, outcomes[name], "", "boom"
        ),
    )
    result = run_module(
        service_selector,
        dict(
            SWITCH,
            min_ready_pods=2,
            health_command=["curl", "-f", "localhost:8080/health"],
        ),
        blue_green,
    )
    assert result["failed"] and result["reason"] == "unhealthy"
    assert [check["rc"] for check in result["health"]["checks"]] == [0, 7]
    assert selector_of(blue_green) == BLUE
    ok = run_module(
        service_selector,
        dict(SWITCH, min_ready_pods=1, health_command=["true"]),
        blue_green,
    )
    assert ok["changed"] and ok["health"]["healthy_pods"] == ["green-1"]


def test_lock_held_by_another_run_refuses_even_in_check_mode(blue_green, run_module):
    LeaseLock(blue_green, "lab", "veritas-runtime-switch", "run-b", 600).acquire()
    for check_mode in (True, False):
        result = run_module(service_selector, SWITCH, blue_green, check_mode=check_mode)
        assert result["failed"] and result["reason"] == "locked"
        assert result["lock_holder"] == "run-b"
    assert selector_of(blue_green) == BLUE


def test_release_lock_false_keeps_it_for_the_same_holder(blue_green, run_module):
    run_module(service_selector, dict(SWITCH, release_lock=False), blue_green)
    assert blue_green.objects[LEASE]["spec"]["holderIdentity"] == "run-a"
    other = run_module(
        service_selector,
        {
            "name": "veritas-runtime",
            "namespace": "lab",
            "state": "rolled_back",
            "lock_holder": "run-b",
        },
        blue_green,
    )
    assert other["failed"] and other["reason"] == "locked"
    mine = run_module(
        service_selector,
        {
            "name": "veritas-runtime",
            "namespace": "lab",
            "state": "rolled_back",
            "lock_holder": "run-a",
        },
        blue_green,
    )
    assert mine["changed"] and mine["lock"]["decision"] == "renew"
    assert LEASE not in blue_green.objects


def test_check_mode_dry_runs_and_takes_no_lock(blue_green, run_module):
    result = run_module(
        service_selector, SWITCH, blue_green, check_mode=True, diff=True
    )
    assert result["changed"] is True
    assert blue_green.writes == [("PATCH", SVC, True)]
    assert selector_of(blue_green) == BLUE
    assert result["diff"]["after"]["spec"]["selector"] == GREEN


def test_failed_patch_releases_the_lock(blue_green, run_module):
    blue_green.fail_on[("PATCH", SVC)] = ChaosError("boom", reason="api_error")
    result = run_module(service_selector, dict(SWITCH, release_lock=False), blue_green)
    assert result["failed"] and result["msg"] == "boom"
    assert LEASE not in blue_green.objects


@pytest.mark.parametrize(
    "args, field",
    [
        ({"selector": {}}, "selector"),
        ({"selector": {"deployment": "gr een"}}, "selector"),
        ({"min_ready_pods": -1}, "min_ready_pods"),
        ({"lock_duration": 0}, "lock_duration"),
    ],
)
def test_bad_input_names_the_field_and_changes_nothing(
    blue_green, run_module, args, field
):
    result = run_module(service_selector, dict(SWITCH, **args), blue_green)
    assert (
        result["failed"]
        and result["reason"] == "invalid_input"
        and result["field"] == field
    )
    assert blue_green.calls == []


def test_selector_required_for_present(blue_green, run_module):
    result = run_module(
        service_selector, {"name": "veritas-runtime", "namespace": "lab"}, blue_green
    )
    assert result["failed"] and "selector" in result["msg"]

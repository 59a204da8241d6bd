from __future__ import annotations

import time

import pytest
from ansible_collections.veritas.chaos.plugins.module_utils import _runtime_exec
from ansible_collections.veritas.chaos.plugins.modules import runtime_fault
from fake_kube import pod
from fake_runtime import FakeRuntimes

PODS = "/api/v1/namespaces/lab/pods"
POLICIES = "/apis/networking.k8s.io/v1/namespaces/lab/networkpolicies"
CANARY = {"namespace": "lab", "label_selector": "variant=canary", "method": "runtime_cli"}


@pytest.fixture
def lab(kube, monkeypatch):
    for index in range(3):
        kube.put(
            f"{PODS}/canary-{index}",
            pod(f"canary-{index}", {"app": "veritas", "variant": "canary"}),
        )
    kube.put(
        PODS + "/control-0", pod("control-0", {"app": "veritas", "variant": "control"})
    )
    kube.put(
        PODS + "/canary-pending",
        pod("canary-pending", {"app": "veritas", "variant": "canary"}, phase="Pending"),
    )
    runtimes = FakeRuntimes("canary-0", "canary-1", "canary-2", "control-0")
    monkeypatch.setattr(_runtime_exec, "exec_in_pod", runtimes.exec)
    monkeypatch.setattr(runtime_fault.time, "sleep", lambda seconds: None)
    kube.runtimes = runtimes
    return kube


def faults(lab, name):
    return {
        pod_name: rt.faults.get(name, {}).get("params")
        for pod_name, rt in lab.runtimes.pods.items()
    }


def test_present_sets_confirms_and_is_idempotent(lab, run_module):
    args = dict(CANARY, fault="error_rate", percent=20)
    before = time.time()
    first = run_module(runtime_fault, args, lab)
    assert before <= first["confirmation"]["applied_at"] <= time.time() + 0.001
    assert first["changed"] and not first.get("failed")
    assert first["matched"] == 3
    assert [p["name"] for p in first["pods"]] == ["canary-0", "canary-1", "canary-2"]
    assert all(p["action"] == "set" and p["confirmed"] for p in first["pods"])
    assert first["pods"][0]["after"] == {"percent": 20.0, "status": 500}
    assert first["confirmation"]["confirmed"] is True
    assert first["confirmation"]["readback_seconds"] >= 0
    assert first["fault"] == {
        "name": "error_rate",
        "target": "error-rate",
        "method": "runtime_cli",
        "state": "present",
        "params": {"percent": 20.0, "status": 500},
    }
    assert first["commands"][0] == {
        "pod": "canary-0",
        "command": [
            "./cli",
            "fault",
            "set",
            "error-rate",
            "--percent",
            "20",
            "--status",
            "500",
        ],
    }
    assert faults(lab, "error-rate")["control-0"] is None
    assert faults(lab, "error-rate")["canary-1"] == {"percent": 20.0, "status": 500}

    lab.runtimes.commands.clear()
    second = run_module(runtime_fault, args, lab)
    assert not second["changed"]
    assert second["confirmation"]["applied_at"] is None
    assert lab.runtimes.writes() == []
    assert all(p["action"] == "none" for p in second["pods"])


def test_changed_parameters_update_the_fault(lab, run_module):
    run_module(runtime_fault, dict(CANARY, fault="error_rate", percent=20), lab)
    result = run_module(
        runtime_fault,
        dict(CANARY, fault="error_rate", percent=30, status_code=503),
        lab,
        diff=True,
    )
    assert result["changed"] and {p["action"] for p in result["pods"]} == {"update"}
    assert result["diff"]["before"]["pods"]["canary-0"] == {
        "percent": 20.0,
        "status": 500,
    }
    assert result["diff"]["after"]["pods"]["canary-0"] == {
        "percent": 30.0,
        "status": 503,
    }


def test_absent_removes_exactly_the_named_fault(lab, run_module):
    run_module(runtime_fault, dict(CANARY, fault="error_rate", percent=20), lab)
    run_module(runtime_fault, dict(CANARY, fault="latency", latency_ms=250), lab)
    result = run_module(
        runtime_fault, dict(CANARY, fault="error_rate", state="absent"), lab
    )
    assert result["changed"] and all(
        p["action"] == "clear" and p["after"] is None for p in result["pods"]
    )
    assert set(faults(lab, "error-rate").values()) == {None}
    assert faults(lab, "latency")["canary-0"] == {"ms": 250.0, "jitter_ms": 0.0}
    lab.runtimes.commands.clear()
    again = run_module(
        runtime_fault, dict(CANARY, fault="error_rate", state="absent"), lab
    )
    assert not again["changed"] and again["pods"] == [] and lab.runtimes.writes() == []


def test_check_mode_only_reads(lab, run_module):
    result = run_module(
        runtime_fault,
        dict(CANARY, fault="latency", latency_ms=1500),
        lab,
        check_mode=True,
        diff=True,
    )
    assert result["changed"]
    assert len(result["commands"]) == 3
    assert lab.runtimes.writes() == []
    assert set(faults(lab, "latency").values()) == {None}
    assert result["diff"]["after"]["pods"]["canary-2"] == {
        "ms": 1500.0,
        "jitter_ms": 0.0,
    }
    assert result["confirmation"]["confirmed"] is False
    assert all(p["confirmed"] is None for p in result["pods"])


def test_pod_count_prefers_pods_already_faulted_and_the_cap_refuses(lab, run_module):
    args = dict(CANARY, fault="metrics_outage", pod_count=1, seed=7)
    first = run_module(runtime_fault, args, lab)
    chosen = [p["name"] for p in first["pods"]]
    assert len(chosen) == 1 and first["changed"]
    again = run_module(runtime_fault, dict(args, seed=99), lab)
    assert not again["changed"] and [p["name"] for p in again["pods"]] == chosen

    changed_params = run_module(
        runtime_fault, dict(args, metrics_mode="empty", seed=3), lab
    )
    assert [p["name"] for p in changed_params["pods"]] == chosen
    assert changed_params["pods"][0]["action"] == "update"

    lab.runtimes.commands.clear()
    refused = run_module(
        runtime_fault,
        dict(CANARY, fault="latency", latency_ms=100, pod_percent=100, max_percent=50),
        lab,
    )
    assert refused["failed"] and refused["reason"] == "blast_radius"
    assert (
        "exceeds max_percent=50" in refused["msg"]
        and "Nothing was changed" in refused["msg"]
    )
    assert lab.runtimes.writes() == []
    capped = run_module(
        runtime_fault, dict(CANARY, fault="latency", latency_ms=100, max_count=2), lab
    )
    assert capped["failed"] and "exceeds max_count=2" in capped["msg"]


@pytest.mark.parametrize(
    ("extra", "field", "text"),
    [
        (
            {"fault": "error_rate"},
            "percent",
            "percent is required for fault error_rate",
        ),
        (
            {"fault": "latency", "latency_ms": 10, "percent": 5},
            "percent",
            "percent does not apply to fault latency; its options are latency_ms, jitter_ms",
        ),
        (
            {"fault": "error_rate", "percent": 120},
            "percent",
            "percent must be a number above 0 to 100, got 120",
        ),
        (
            {"fault": "error_rate", "percent": 20, "status_code": 99},
            "status_code",
            "from 100 to 599",
        ),
        (
            {"fault": "latency", "latency_ms": 10, "method": "network_policy"},
            "method",
            "method network_policy supports the faults metrics_outage, not latency",
        ),
        (
            {"fault": "kv_cache_corruption", "method": "envoy_runtime"},
            "method",
            "supports the faults error_rate, latency",
        ),
        (
            {"fault": "error_rate", "percent": 2.5, "method": "envoy_runtime"},
            "percent",
            "whole number",
        ),
        (
            {"fault": "error_rate", "percent": 5, "duration": 0},
            "duration",
            "at least 1",
        ),
        (
            {"fault": "metrics_outage", "method": "network_policy"},
            "metrics_port",
            "metrics_port is required",
        ),
        (
            {
                "fault": "metrics_outage",
                "method": "network_policy",
                "metrics_port": 8080,
                "prometheus_namespace": "mon",
                "pod_count": 1,
            },
            "pod_count",
            "selects pods by label only",
        ),
        (
            {"fault": "error_rate", "percent": 5, "memory_limit": "16Mi"},
            "memory_limit",
            "memory_limit applies to method memory_limit only",
        ),
        (
            {"fault": "latency", "latency_ms": 10, "method": "memory_limit"},
            "method",
            "method memory_limit supports the faults resource_exhaustion, not latency",
        ),
        (
            {
                "fault": "resource_exhaustion",
                "resource": "disk",
                "method": "memory_limit",
                "memory_limit": "16Mi",
            },
            "resource",
            "method memory_limit supports resource memory only, not disk",
        ),
        (
            {
                "fault": "error_rate",
                "percent": 5,
                "confirm_with": "prometheus",
                "prometheus": {"url": "http://p", "query": "up", "condition": "above"},
            },
            "prometheus.threshold",
            "threshold is required",
        ),
    ],
)
def test_bad_input_names_the_field_and_changes_nothing(
    lab, run_module, extra, field, text
):
    result = run_module(runtime_fault, dict(CANARY, **extra), lab)
    assert result["failed"] and result["reason"] == "invalid_input"
    assert result["field"] == field and text in result["msg"]
    assert lab.runtimes.commands == [] and lab.writes == []


def test_unknown_choice_is_refused_by_the_argument_spec(lab, run_module):
    result = run_module(runtime_fault, dict(CANARY, fault="gpu_melt"), lab)
    assert (
        result["failed"] and "fault" in result["msg"] and "error_rate" in result["msg"]
    )
    resource = run_module(runtime_fault, dict(CANARY, fault="resource_exhaustion"), lab)
    assert resource["failed"] and "resource" in resource["msg"]
    assert lab.runtimes.commands == []


def test_unconfirmed_fault_fails_and_says_it_stays(lab, run_module):
    lab.runtimes.pods["canary-1"].ignore_sets = True
    result = run_module(
        runtime_fault,
        dict(CANARY, fault="error_rate", percent=20, confirm_timeout=1),
        lab,
    )
    assert result["failed"] and result["reason"] == "not_confirmed"
    assert result["unconfirmed"] == ["canary-1"] and result["changed"] is True
    assert "run state=absent" in result["msg"]


def test_prometheus_confirmation_waits_for_the_metric(lab, run_module, monkeypatch):
    values = iter(
        [[], [{"labels": {}, "value": 0.02}], [{"labels": {}, "value": 0.19}]]
    )
    monkeypatch.setattr(runtime_fault, "instant_query", lambda *a, **k: next(values))
    prom = {
        "url": "http://prometheus:9090",
        "query": "error_ratio",
        "threshold": 0.1,
        "interval": 0.01,
        "timeout": 5,
    }
    result = run_module(
        runtime_fault,
        dict(
            CANARY,
            fault="error_rate",
            percent=20,
            confirm_with="prometheus",
            prometheus=prom,
        ),
        lab,
    )
    assert result["changed"] and not result.get("failed")
    outcome = result["confirmation"]["prometheus"]
    assert outcome["confirmed"] and outcome["checks"] == 3
    assert outcome["samples"] == [{"labels": {}, "value": 0.19}]
    assert outcome["condition"] == "above" and outcome["threshold"] == 0.1


def test_prometheus_that_never_confirms_fails(lab, run_module, monkeypatch):
    monkeypatch.setattr(
        runtime_fault, "instant_query", lambda *a, **k: [{"labels": {}, "value": 0.0}]
    )
    prom = {
        "url": "http://prometheus:9090",
        "query": "error_ratio",
        "threshold": 0.1,
        "interval": 0.01,
        "timeout": 0.05,
    }
    result = run_module(
        runtime_fault,
        dict(
            CANARY,
            fault="error_rate",
            percent=20,
            confirm_with="prometheus",
            prometheus=prom,
        ),
        lab,
    )
    assert (
        result["failed"] and result["reason"] == "not_confirmed" and result["changed"]
    )
    assert "Prometheus did not confirm" in result["msg"]


def test_kv_corruption_reports_corrupted_entries_and_disk_exhaustion_maps_names(
    lab, run_module
):
    for rt in lab.runtimes.pods.values():
        rt.entries = 64
    kv = run_module(
        runtime_fault, dict(CANARY, fault="kv_cache_corruption", percent=50), lab
    )
    assert kv["pods"][0]["corrupted_entries"] == 32
    assert kv["fault"]["params"] == {
        "percent": 50.0,
        "write_percent": 0.0,
        "mode": "payload",
    }
    disk = run_module(
        runtime_fault,
        dict(CANARY, fault="resource_exhaustion", resource="disk", pod_count=1),
        lab,
    )
    assert disk["fault"]["target"] == "disk-exhaustion" and len(disk["pods"]) == 1
    gone = run_module(
        runtime_fault,
        dict(CANARY, fault="resource_exhaustion", resource="disk", state="absent"),
        lab,
    )
    assert gone["changed"] and set(faults(lab, "disk-exhaustion").values()) == {None}


def test_duration_holds_then_restores_what_it_changed(lab, run_module):
    run_module(
        runtime_fault, dict(CANARY, fault="latency", latency_ms=100, pod_count=1), lab
    )
    before = faults(lab, "latency")
    result = run_module(
        runtime_fault, dict(CANARY, fault="latency", latency_ms=900, duration=5), lab
    )
    assert result["changed"] and result["restored"]
    assert faults(lab, "latency") == before


def test_no_running_pods(lab, run_module):
    missing = run_module(
        runtime_fault,
        {
            "namespace": "lab",
            "label_selector": "variant=ghost",
            "fault": "metrics_outage",
            "method": "runtime_cli",
        },
        lab,
    )
    assert missing["failed"] and missing["reason"] == "no_targets"
    absent = run_module(
        runtime_fault,
        {
            "namespace": "lab",
            "label_selector": "variant=ghost",
            "fault": "metrics_outage",
            "state": "absent",
        },
        lab,
    )
    assert not absent["changed"] and not absent.get("failed")


def test_production_namespace_is_refused(lab, run_module):
    result = run_module(
        runtime_fault,
        {
            "namespace": "prod",
            "label_selector": "variant=canary",
            "fault": "metrics_outage",
            "method": "runtime_cli",
        },
        lab,
    )
    assert result["failed"] and result["reason"] == "production_refused"
    assert lab.runtimes.commands == []


def test_exec_failure_names_the_pod_and_what_was_changed(lab, run_module, monkeypatch):
    original = lab.runtimes.exec

    def failing(client, namespace, pod_name, command, container=None, timeout=30):
        if pod_name == "canary-1" and "set" in command:
            from ansible_collections.veritas.chaos.plugins.module_utils._exec import (
                ExecResult,
            )

            return ExecResult(
                pod=pod_name,
                rc=1,
                stdout="",
                stderr="cli: runtime at 127.0.0.1:1 unreachable",
            )
        return original(client, namespace, pod_name, command, container, timeout)

    monkeypatch.setattr(_runtime_exec, "exec_in_pod", failing)
    result = run_module(runtime_fault, dict(CANARY, fault="metrics_outage"), lab)
    assert (
        result["failed"]
        and result["reason"] == "exec_failed"
        and result["pod"] == "canary-1"
    )
    assert (
        "unreachable" in result["msg"]
        and "Pods already changed: canary-0" in result["msg"]
    )
    assert result["changed"] is True


def test_envoy_runtime_sets_reads_back_and_clears(lab, run_module):
    args = dict(
        CANARY,
        fault="error_rate",
        percent=20,
        status_code=503,
        method="envoy_runtime",
        container="istio-proxy",
        envoy_admin_url="http://127.0.0.1:15000",
    )
    first = run_module(runtime_fault, args, lab)
    assert first["changed"] and all(p["confirmed"] for p in first["pods"])
    command = first["commands"][0]["command"]
    assert command[:5] == ["curl", "-sS", "--fail", "-X", "POST"]
    assert (
        command[5]
        == "http://127.0.0.1:15000/runtime_modify?fault.http.abort.abort_percent=20&fault.http.abort.http_status=503"
    )
    assert lab.runtimes.pods["canary-0"].envoy == {
        "fault.http.abort.abort_percent": "20",
        "fault.http.abort.http_status": "503",
    }
    assert not run_module(runtime_fault, args, lab)["changed"]
    gone = run_module(runtime_fault, dict(args, state="absent"), lab)
    assert gone["changed"] and lab.runtimes.pods["canary-0"].envoy == {}


POLICY_ARGS = dict(
    CANARY,
    fault="metrics_outage",
    method="network_policy",
    metrics_port=8080,
    prometheus_namespace="monitoring",
)


def test_network_policy_check_mode_create_idempotence_and_absent(lab, run_module):
    check = run_module(runtime_fault, POLICY_ARGS, lab, check_mode=True, diff=True)
    assert check["changed"] and all(
        dry for _method, path, dry in lab.writes if "networkpolicies" in path
    )
    assert not [p for p in lab.objects if "networkpolicies" in p]

    created = run_module(runtime_fault, POLICY_ARGS, lab, diff=True)
    assert created["changed"] and created["confirmation"]["confirmed"]
    policy = lab.objects[POLICIES + "/veritas-chaos-metrics-outage"]
    assert policy["spec"]["podSelector"] == {"matchLabels": {"variant": "canary"}}
    blocked = policy["spec"]["ingress"][1]
    assert blocked["ports"] == [{"protocol": "TCP", "port": 8080}]
    assert blocked["from"][0]["namespaceSelector"]["matchExpressions"][0]["values"] == [
        "monitoring"
    ]
    assert any(
        "not visible through the API" in w for w in created["confirmation"]["warnings"]
    )
    assert (
        created["diff"]["before"] == {}
        and created["diff"]["after"]["kind"] == "NetworkPolicy"
    )

    again = run_module(runtime_fault, POLICY_ARGS, lab)
    assert not again["changed"]
    gone = run_module(runtime_fault, dict(POLICY_ARGS, state="absent"), lab)
    assert (
        gone["changed"]
        and POLICIES + "/veritas-chaos-metrics-outage" not in lab.objects
    )
    assert not run_module(runtime_fault, dict(POLICY_ARGS, state="absent"), lab)[
        "changed"
    ]


def test_network_policy_refuses_a_policy_it_did_not_make_and_warns_about_others(
    lab, run_module
):
    lab.put(
        POLICIES + "/allow-all",
        {
            "kind": "NetworkPolicy",
            "metadata": {"name": "allow-all"},
            "spec": {"podSelector": {}, "ingress": [{}]},
        },
    )
    created = run_module(runtime_fault, POLICY_ARGS, lab)
    assert any("allow-all" in w for w in created["confirmation"]["warnings"])
    foreign = run_module(
        runtime_fault, dict(POLICY_ARGS, policy_name="allow-all", state="absent"), lab
    )
    assert foreign["failed"] and foreign["reason"] == "not_owned"
    assert POLICIES + "/allow-all" in lab.objects


def test_confirmation_warnings_are_module_warnings(lab, run_module, monkeypatch):
    # module.warn, not the result: once controller code is imported (other tests do),
    # ansible-core 2.19 sends module warnings to the Display instead of the result.
    emitted = []
    monkeypatch.setattr(
        runtime_fault.AnsibleModule, "warn", lambda self, w: emitted.append(w)
    )
    created = run_module(runtime_fault, POLICY_ARGS, lab)
    assert created["confirmation"]["warnings"]
    assert emitted == created["confirmation"]["warnings"]


ADMIN = {
    "set": ["./cli", "cache-corrupt", "--percent", "50"],
    "clear": ["./cli", "cache-corrupt", "--clear"],
    "expected_output": "entries corrupted",
}


def test_admin_command_sets_confirms_from_its_output_and_records_the_clear(lab, run_module):
    args = dict(CANARY, fault="kv_cache_corruption", method="admin_command", admin_command=ADMIN)
    first = run_module(runtime_fault, args, lab)
    assert first["changed"] and not first.get("failed")
    assert [p["action"] for p in first["pods"]] == ["set"] * 3
    assert all(p["confirmed"] and "entries corrupted" in p["output"] for p in first["pods"])
    assert faults(lab, "kv-corruption")["canary-0"]["percent"] == 50.0
    assert faults(lab, "kv-corruption")["control-0"] is None
    assert first["fault"]["target"] == "./cli cache-corrupt --percent 50"
    # No read side: the same call runs the command again and says so.
    assert run_module(runtime_fault, args, lab)["changed"] is True
    cleared = run_module(runtime_fault, dict(args, state="absent"), lab)
    assert cleared["changed"] and [p["action"] for p in cleared["pods"]] == ["clear"] * 3
    assert all(v is None for v in faults(lab, "kv-corruption").values())


def test_admin_command_whose_output_does_not_confirm_fails(lab, run_module):
    for rt in lab.runtimes.pods.values():
        rt.ignore_sets = True
    args = dict(CANARY, fault="kv_cache_corruption", method="admin_command", admin_command=ADMIN, confirm_timeout=1)
    result = run_module(runtime_fault, args, lab)
    assert result["failed"] and result["reason"] == "not_confirmed"
    assert result["unconfirmed"] == ["canary-0", "canary-1", "canary-2"]


@pytest.mark.parametrize(
    "extra, field",
    [
        ({"admin_command": None}, "admin_command"),
        ({"admin_command": dict(ADMIN, set=[" "])}, "admin_command.set"),
        ({"admin_command": dict(ADMIN, expected_output="(")}, "admin_command.expected_output"),
        ({"admin_command": ADMIN, "percent": 10}, "percent"),
        ({"admin_command": ADMIN, "fault": "error_rate"}, "method"),
        ({"admin_command": ADMIN, "method": "runtime_cli"}, "admin_command"),
    ],
)
def test_admin_command_bad_input_names_the_field_and_changes_nothing(lab, run_module, extra, field):
    args = dict(CANARY, fault="kv_cache_corruption", method="admin_command")
    args.update({k: v for k, v in extra.items() if v is not None})
    result = run_module(runtime_fault, args, lab)
    assert result["failed"] and result["field"] == field
    assert lab.runtimes.writes() == []

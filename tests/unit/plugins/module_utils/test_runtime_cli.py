from __future__ import annotations

import json

import pytest
from ansible_collections.veritas.chaos.plugins.module_utils import _runtime_cli as rc
from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError


def opts(**values):
    return {name: values.get(name) for name in rc.FAULT_OPTION_NAMES}


@pytest.mark.parametrize(
    ("fault", "resource", "name"),
    [
        ("error_rate", None, "error-rate"),
        ("latency", None, "latency"),
        ("kv_cache_corruption", None, "kv-corruption"),
        ("metrics_outage", None, "metrics-off"),
        ("resource_exhaustion", "memory", "memory-exhaustion"),
        ("resource_exhaustion", "disk", "disk-exhaustion"),
    ],
)
def test_runtime_fault_names(fault, resource, name):
    assert rc.runtime_fault_name(fault, resource) == name


def test_resource_exhaustion_needs_a_resource():
    with pytest.raises(ChaosError) as caught:
        rc.runtime_fault_name("resource_exhaustion", "gpu")
    assert (
        caught.value.details["field"] == "resource"
        and "memory, disk" in caught.value.msg
    )


def test_desired_params_are_what_the_runtime_stores():
    assert rc.desired_runtime_params("error_rate", opts(percent=20)) == {
        "percent": 20.0,
        "status": 500,
    }
    assert rc.desired_runtime_params(
        "latency", opts(latency_ms=1500, jitter_ms=10)
    ) == {"ms": 1500.0, "jitter_ms": 10.0}
    assert rc.desired_runtime_params("kv_cache_corruption", opts()) == {
        "percent": 100.0,
        "write_percent": 0.0,
        "mode": "payload",
    }
    assert rc.desired_runtime_params(
        "kv_cache_corruption", opts(percent=50, corruption_mode="silent")
    ) == {"percent": 50.0, "write_percent": 0.0, "mode": "silent"}
    assert rc.desired_runtime_params("metrics_outage", opts()) == {"mode": "503"}
    assert rc.desired_runtime_params(
        "resource_exhaustion", opts(resource="memory")
    ) == {"oom_kill": False}
    assert rc.desired_runtime_params("resource_exhaustion", opts(resource="disk")) == {}


def test_commands():
    cli = rc.cli_prefix("./cli")
    assert rc.fault_set_command(
        cli, "error-rate", {"percent": 20.0, "status": 503}
    ) == ["./cli", "fault", "set", "error-rate", "--percent", "20", "--status", "503"]
    assert rc.fault_set_command(cli, "latency", {"ms": 2.5, "jitter_ms": 0.0}) == [
        "./cli",
        "fault",
        "set",
        "latency",
        "--ms",
        "2.5",
        "--jitter-ms",
        "0",
    ]
    assert rc.fault_set_command(cli, "memory-exhaustion", {"oom_kill": False}) == [
        "./cli",
        "fault",
        "set",
        "memory-exhaustion",
    ]
    assert rc.fault_clear_command(cli, "latency") == [
        "./cli",
        "fault",
        "clear",
        "latency",
    ]
    assert rc.fault_list_command(rc.cli_prefix("python3 /app/cli.py")) == [
        "python3",
        "/app/cli.py",
        "fault",
        "list",
        "--json",
    ]
    assert rc.cache_warmup_command(cli, "llama-7b", 2, 16) == [
        "./cli",
        "cache-warmup",
        "--model",
        "llama-7b",
        "--no-wait",
        "--seconds",
        "2",
        "--prompts",
        "16",
    ]
    with pytest.raises(ChaosError):
        rc.cli_prefix("  ")


def test_parse_fault_list_json_and_text():
    records = [
        {
            "name": "error-rate",
            "since": 1.0,
            "params": {"percent": 20.0, "status": 500},
        },
        {
            "name": "kv-corruption",
            "since": 2.0,
            "params": {"percent": 50.0},
            "corrupted_entries": 3,
        },
    ]
    parsed = rc.parse_fault_list(json.dumps(records, indent=2))
    assert parsed["error-rate"]["params"] == {"percent": 20.0, "status": 500}
    assert parsed["kv-corruption"]["corrupted_entries"] == 3
    assert (
        rc.parse_fault_list("[]") == {} and rc.parse_fault_list("no faults set\n") == {}
    )
    assert (
        rc.parse_fault_list(json.dumps({"faults": records}))["error-rate"]["name"]
        == "error-rate"
    )
    text = rc.parse_fault_list(
        "error-rate percent=20.0 status=500\nmemory-exhaustion oom_kill=False\n"
    )
    assert text["error-rate"]["params"] == {"percent": 20.0, "status": 500.0}
    assert text["memory-exhaustion"]["params"] == {"oom_kill": False}
    assert rc.parse_fault_list("warning: slow\n[]") == {}
    with pytest.raises(ChaosError) as caught:
        rc.parse_fault_list("{not json")
    assert caught.value.reason == "bad_output"


def test_plan_action():
    desired = {"percent": 20.0, "status": 500}
    assert rc.plan_action("present", None, desired) == rc.SET
    assert (
        rc.plan_action("present", {"percent": 20, "status": 500.0}, desired) == rc.NONE
    )
    assert (
        rc.plan_action("present", {"percent": 30.0, "status": 500}, desired)
        == rc.UPDATE
    )
    assert rc.plan_action("present", {"percent": 20.0}, desired) == rc.UPDATE
    assert rc.plan_action("absent", {"percent": 20.0}, {}) == rc.CLEAR
    assert rc.plan_action("absent", None, {}) == rc.NONE
    assert rc.plan_action("present", {"mode": "503"}, {"mode": "empty"}) == rc.UPDATE
    assert (
        rc.plan_action("present", {"oom_kill": False}, {"oom_kill": False}) == rc.NONE
    )


def test_order_targets_keeps_faulted_pods_first():
    assert rc.order_targets(["a", "b", "c"], ["c", "a"], 1, ["b"]) == ["c"]
    assert rc.order_targets(["a", "b", "c"], ["c"], 2, ["a", "b"]) == ["a", "c"]
    assert rc.order_targets(["a", "b", "c"], ["b", "c"], 1, ["a"]) == ["b"]
    assert rc.order_targets(["a", "b", "c"], [], 2, ["b", "c"]) == ["b", "c"]


@pytest.mark.parametrize(
    ("fault", "method", "state", "values", "field"),
    [
        ("error_rate", "runtime_cli", "present", {}, "percent"),
        ("error_rate", "runtime_cli", "present", {"percent": 0}, "percent"),
        ("latency", "runtime_cli", "present", {"latency_ms": -1}, "latency_ms"),
        (
            "latency",
            "runtime_cli",
            "present",
            {"latency_ms": 5, "write_percent": 5},
            "write_percent",
        ),
        (
            "kv_cache_corruption",
            "runtime_cli",
            "present",
            {"write_percent": 101},
            "write_percent",
        ),
        (
            "metrics_outage",
            "runtime_cli",
            "present",
            {"metrics_mode": "404"},
            "metrics_mode",
        ),
        (
            "kv_cache_corruption",
            "runtime_cli",
            "present",
            {"corruption_mode": "bitrot"},
            "corruption_mode",
        ),
        ("error_rate", "runtime_cli", "present", {"percent": 5, "corruption_mode": "silent"}, "corruption_mode"),
        ("metrics_outage", "envoy_runtime", "present", {}, "method"),
        ("latency", "envoy_runtime", "present", {"latency_ms": 2.5}, "latency_ms"),
        (
            "latency",
            "envoy_runtime",
            "present",
            {"latency_ms": 5, "jitter_ms": 2},
            "jitter_ms",
        ),
        ("resource_exhaustion", "runtime_cli", "absent", {}, "resource"),
        ("nonsense", "runtime_cli", "present", {}, "fault"),
        ("latency", "ssh", "present", {}, "method"),
    ],
)
def test_validate_fault_options_errors(fault, method, state, values, field):
    with pytest.raises(ChaosError) as caught:
        rc.validate_fault_options(fault, method, state, opts(**values))
    assert (
        caught.value.reason == "invalid_input"
        and caught.value.details["field"] == field
    )


def test_validate_fault_options_accepts_absent_without_parameters():
    rc.validate_fault_options("error_rate", "runtime_cli", "absent", opts())
    rc.validate_fault_options("latency", "envoy_runtime", "absent", opts())
    rc.validate_fault_options(
        "error_rate", "envoy_runtime", "present", opts(percent=20.0)
    )


def test_warm_percent_and_summary():
    assert rc.warm_percent({"state": "warm"}) == 100
    assert rc.warm_percent({"state": "warming", "warmup": {"progress": 42}}) == 42
    assert rc.warm_percent({"state": "warming", "warmup": {"progress": "x"}}) == 0
    assert (
        rc.warm_percent({"state": "warming", "warmup": {"progress": 100}}) == 99
    )  # not done yet
    assert rc.warm_percent({"state": "degraded", "warmup": {"progress": 100}}) == 0
    assert rc.warm_percent({"state": "cold"}) == 0
    summary = rc.cache_summary(
        {
            "state": "warming",
            "entries": 5,
            "hit_rate": 0.5,
            "model": "m",
            "warmup": {"state": "running", "progress": 8, "id": "a"},
        }
    )
    assert summary == {
        "state": "warming",
        "percent": 8,
        "entries": 5,
        "hit_rate": 0.5,
        "model": "m",
        "warmup_state": "running",
        "warmup_id": "a",
    }
    with pytest.raises(ChaosError):
        rc.parse_cache_status("[1, 2]")


def test_envoy_values_commands_and_readback():
    values = rc.envoy_runtime_values("error_rate", opts(percent=20.0, status_code=503))
    assert values == {
        "fault.http.abort.abort_percent": "20",
        "fault.http.abort.http_status": "503",
    }
    delay = rc.envoy_runtime_values("latency", opts(latency_ms=1500), prefix="custom")
    assert delay == {
        "custom.delay.fixed_delay_percent": "100",
        "custom.delay.fixed_duration_ms": "1500",
    }
    command = rc.envoy_modify_command("http://127.0.0.1:9901/", {"b": "", "a": "1"})
    assert command[-1] == "http://127.0.0.1:9901/runtime_modify?a=1&b="
    keys = rc.envoy_runtime_keys("error_rate")
    body = {
        "layers": ["static", "admin"],
        "entries": {
            keys[0]: {"final_value": "20", "layer_values": ["5", "20"]},
            keys[1]: {"final_value": "500", "layer_values": ["500", ""]},
        },
    }
    read = rc.parse_envoy_runtime(json.dumps(body), keys)
    assert read == {keys[0]: "20", keys[1]: None}
    assert rc.envoy_current(read) == {keys[0]: "20"}
    assert rc.envoy_current({keys[0]: None}) is None


def test_parse_label_selector():
    assert rc.parse_label_selector("app=veritas, variant==canary") == {
        "matchLabels": {"app": "veritas", "variant": "canary"}
    }
    parsed = rc.parse_label_selector("app=veritas,tier!=db,env in (b, a),!legacy,gpu")
    assert parsed["matchLabels"] == {"app": "veritas"}
    assert parsed["matchExpressions"] == [
        {"key": "tier", "operator": "NotIn", "values": ["db"]},
        {"key": "env", "operator": "In", "values": ["a", "b"]},
        {"key": "legacy", "operator": "DoesNotExist"},
        {"key": "gpu", "operator": "Exists"},
    ]
    for bad in ("", " , ", "=x"):
        with pytest.raises(ChaosError):
            rc.parse_label_selector(bad)


def test_selector_matches():
    selector = rc.parse_label_selector("app=veritas,tier!=db,env in (a,b),!legacy")
    assert rc.selector_matches(selector, {"app": "veritas", "env": "a"})
    assert not rc.selector_matches(selector, {"app": "veritas", "env": "c"})
    assert not rc.selector_matches(
        selector, {"app": "veritas", "env": "a", "tier": "db"}
    )
    assert not rc.selector_matches(
        selector, {"app": "veritas", "env": "a", "legacy": "1"}
    )
    assert rc.selector_matches({}, {"anything": "x"})


def test_metrics_network_policy_blocks_only_prometheus_on_the_port():
    policy = rc.metrics_network_policy(
        "p",
        "ns",
        {"matchLabels": {"app": "veritas"}},
        8080,
        "monitoring",
        {"app": "prometheus", "x": "y"},
    )
    spec = policy["spec"]
    assert spec["policyTypes"] == ["Ingress"]
    other, metrics = spec["ingress"]
    assert other == {
        "ports": [
            {"protocol": "TCP", "port": 1, "endPort": 8079},
            {"protocol": "TCP", "port": 8081, "endPort": 65535},
            {"protocol": "UDP", "port": 1, "endPort": 65535},
        ]
    }
    assert metrics["ports"] == [{"protocol": "TCP", "port": 8080}]
    assert metrics["from"][0] == {
        "namespaceSelector": {
            "matchExpressions": [
                {
                    "key": "kubernetes.io/metadata.name",
                    "operator": "NotIn",
                    "values": ["monitoring"],
                }
            ]
        }
    }
    assert (
        len(metrics["from"]) == 3
    )  # one peer per Prometheus label: lacking any one lets a pod in
    assert rc.is_owned(policy)
    assert rc.policy_matches(policy, policy)
    served = json.loads(json.dumps(policy))
    served["spec"]["ingress"][1]["ports"][0].pop(
        "protocol"
    )  # as if defaulted by the server
    assert rc.policy_matches(served, policy)
    served["spec"]["ingress"][1]["ports"][0]["port"] = 9090
    assert not rc.policy_matches(served, policy)
    edge = rc.metrics_network_policy("p", "ns", {}, 1, "monitoring")["spec"]["ingress"][
        0
    ]["ports"]
    assert edge[0] == {"protocol": "TCP", "port": 2, "endPort": 65535}
    with pytest.raises(ChaosError):
        rc.metrics_network_policy("p", "ns", {}, 70000, "monitoring")


def test_overlapping_policies():
    policies = [
        {"metadata": {"name": "mine"}, "spec": {"podSelector": {}}},
        {
            "metadata": {"name": "egress-only"},
            "spec": {"podSelector": {}, "policyTypes": ["Egress"]},
        },
        {
            "metadata": {"name": "db"},
            "spec": {"podSelector": {"matchLabels": {"tier": "db"}}},
        },
        {
            "metadata": {"name": "all"},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        },
    ]
    assert rc.overlapping_policies(policies, "mine", [{"app": "veritas"}]) == ["all"]

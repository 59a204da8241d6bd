from __future__ import annotations

import pytest
from ansible_collections.veritas.chaos.plugins.module_utils import _prometheus
from ansible_collections.veritas.chaos.plugins.modules import traffic_split
from traffic_objects import backend_refs, httproute, httproute_path

CM = "/api/v1/namespaces/lab/configmaps/veritas-traffic-config"
ROUTE = "/apis/route.openshift.io/v1/namespaces/lab/routes/veritas"


@pytest.fixture
def kube_with_cm(kube):
    kube.put(
        CM,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "veritas-traffic-config", "namespace": "lab"},
            "data": {"control": "100", "canary": "0"},
        },
    )
    return kube


def test_sets_weights_then_is_idempotent(kube_with_cm, run_module):
    first = run_module(
        traffic_split, {"namespace": "lab", "control": 90, "canary": 10}, kube_with_cm
    )
    assert first["changed"] is True
    assert first["weights"] == {"control": 90, "canary": 10}
    assert first["previous_weights"] == {"control": 100, "canary": 0}
    assert kube_with_cm.objects[CM]["data"] == {"control": "90", "canary": "10"}

    writes_before = len(kube_with_cm.writes)
    second = run_module(
        traffic_split, {"namespace": "lab", "control": 90, "canary": 10}, kube_with_cm
    )
    assert second["changed"] is False
    assert len(kube_with_cm.writes) == writes_before


def test_check_mode_is_a_server_side_dry_run(kube_with_cm, run_module):
    result = run_module(
        traffic_split,
        {"namespace": "lab", "control": 50, "canary": 50},
        kube_with_cm,
        check_mode=True,
        diff=True,
    )
    assert result["changed"] is True
    assert kube_with_cm.writes == [("PATCH", CM, True)]
    assert kube_with_cm.objects[CM]["data"] == {"control": "100", "canary": "0"}
    assert result["diff"]["before"]["data"] == {"control": "100", "canary": "0"}
    assert result["diff"]["after"]["data"] == {"control": "50", "canary": "50"}
    assert "resourceVersion" not in result["diff"]["before"]["metadata"]
    assert "managedFields" not in result["diff"]["after"]["metadata"]


@pytest.mark.parametrize(
    "control, canary, fragment",
    [
        (90, 20, "must sum to 100, got 90 + 20 = 110"),
        (150, -50, "control must be an integer from 0 to 100, got 150"),
    ],
)
def test_bad_weights_fail_before_touching_the_api(
    kube_with_cm, run_module, control, canary, fragment
):
    result = run_module(
        traffic_split,
        {"namespace": "lab", "control": control, "canary": canary},
        kube_with_cm,
    )
    assert result["failed"] is True
    assert fragment in result["msg"]
    assert result["reason"] == "invalid_input"
    assert kube_with_cm.calls == []


def test_production_is_refused_unless_allowed(kube, run_module):
    kube.put(
        "/api/v1/namespaces/prod/configmaps/veritas-traffic-config",
        {
            "metadata": {"name": "veritas-traffic-config"},
            "data": {"control": "100", "canary": "0"},
        },
    )
    refused = run_module(
        traffic_split, {"namespace": "prod", "control": 90, "canary": 10}, kube
    )
    assert refused["failed"] and refused["reason"] == "production_refused"
    assert kube.writes == []
    allowed = run_module(
        traffic_split,
        {"namespace": "prod", "control": 90, "canary": 10, "allow_production": True},
        kube,
    )
    assert allowed["changed"] is True


def test_missing_configmap_is_a_clear_error(kube, run_module):
    result = run_module(
        traffic_split, {"namespace": "lab", "control": 90, "canary": 10}, kube
    )
    assert result["failed"] and result["reason"] == "not_found"
    assert (
        "ConfigMap veritas-traffic-config not found in namespace lab" in result["msg"]
    )


def test_custom_keys(kube, run_module):
    kube.put(
        "/api/v1/namespaces/lab/configmaps/weights",
        {"metadata": {"name": "weights"}, "data": {"other": "x"}},
    )
    result = run_module(
        traffic_split,
        {
            "namespace": "lab",
            "name": "weights",
            "control_key": "stable",
            "canary_key": "preview",
            "control": 70,
            "canary": 30,
        },
        kube,
    )
    assert result["changed"]
    assert kube.objects["/api/v1/namespaces/lab/configmaps/weights"]["data"] == {
        "other": "x",
        "stable": "70",
        "preview": "30",
    }


def test_route_backend(kube, run_module):
    kube.put(
        ROUTE,
        {
            "apiVersion": "route.openshift.io/v1",
            "kind": "Route",
            "metadata": {"name": "veritas"},
            "spec": {
                "to": {"kind": "Service", "name": "control", "weight": 100},
                "alternateBackends": [
                    {"kind": "Service", "name": "canary", "weight": 0}
                ],
            },
        },
    )
    args = {
        "namespace": "lab",
        "backend": "route",
        "name": "veritas",
        "control": 75,
        "canary": 25,
    }
    first = run_module(traffic_split, args, kube)
    assert first["changed"] and first["weights"] == {"control": 75, "canary": 25}
    assert kube.objects[ROUTE]["spec"]["alternateBackends"] == [
        {"kind": "Service", "name": "canary", "weight": 25}
    ]
    assert run_module(traffic_split, args, kube)["changed"] is False


class FakePrometheus:
    def __init__(self, readings):
        self.readings = list(readings)
        self.queries = []

    def __call__(self, url, **kwargs):
        self.url = url
        return self

    def query(self, promql):
        from ansible_collections.veritas.chaos.plugins.module_utils._analysis import (
            Reading,
        )

        self.queries.append(promql)
        value = self.readings.pop(0) if len(self.readings) > 1 else self.readings[0]
        return Reading(value, None if value is not None else "no_data")


OBSERVE = {
    "prometheus_url": "http://prom.test:9090",
    "tolerance": 2,
    "timeout": 30,
    "interval": 1,
}


def test_observe_waits_until_the_served_split_matches(
    kube_with_cm, run_module, monkeypatch
):
    prometheus = FakePrometheus([None, 2.0, 8.5, 10.4])
    monkeypatch.setattr(_prometheus, "PrometheusClient", prometheus)
    monkeypatch.setattr(traffic_split.time, "sleep", lambda seconds: None)
    result = run_module(
        traffic_split,
        {"namespace": "lab", "control": 90, "canary": 10, "observe": OBSERVE},
        kube_with_cm,
    )
    assert result["changed"] and result["observed"]["canary_percent"] == 8.5
    assert result["observed"]["samples"] == 3
    assert prometheus.url == "http://prom.test:9090"
    assert 'variant="canary"' in prometheus.queries[0]


def test_observe_timeout_fails_but_reports_the_change(
    kube_with_cm, run_module, monkeypatch
):
    monkeypatch.setattr(_prometheus, "PrometheusClient", FakePrometheus([None]))
    monkeypatch.setattr(traffic_split.time, "sleep", lambda seconds: None)
    result = run_module(
        traffic_split,
        {
            "namespace": "lab",
            "control": 90,
            "canary": 10,
            "observe": dict(OBSERVE, timeout=0),
        },
        kube_with_cm,
    )
    assert (
        result["failed"]
        and result["reason"] == "not_observed"
        and result["changed"] is True
    )
    assert "no data" in result["msg"]
    assert kube_with_cm.objects[CM]["data"] == {"control": "90", "canary": "10"}


def test_observe_is_skipped_in_check_mode(kube_with_cm, run_module, monkeypatch):
    prometheus = FakePrometheus([0.0])
    monkeypatch.setattr(_prometheus, "PrometheusClient", prometheus)
    result = run_module(
        traffic_split,
        {"namespace": "lab", "control": 90, "canary": 10, "observe": OBSERVE},
        kube_with_cm,
        check_mode=True,
    )
    assert result["changed"] and result["observed"] is None and prometheus.queries == []


def test_observe_bad_url_is_bad_input(kube_with_cm, run_module):
    result = run_module(
        traffic_split,
        {
            "namespace": "lab",
            "control": 90,
            "canary": 10,
            "observe": dict(OBSERVE, prometheus_url="prom:9090"),
        },
        kube_with_cm,
    )
    assert result["failed"] and result["field"] == "prometheus_url"
    assert kube_with_cm.calls == []


HTTPROUTE = httproute_path()
ADMIN_RULE = {
    "matches": [{"path": {"type": "PathPrefix", "value": "/admin"}}],
    "filters": [
        {
            "type": "RequestHeaderModifier",
            "requestHeaderModifier": {"set": [{"name": "x-admin", "value": "1"}]},
        }
    ],
    "backendRefs": backend_refs(("veritas-admin", None), port=8081),
}
API_MATCHES = [{"path": {"type": "PathPrefix", "value": "/v1"}}]


@pytest.fixture
def kube_with_httproute(kube):
    api_rule = {
        "matches": API_MATCHES,
        "backendRefs": backend_refs(("veritas-control", 100), ("veritas-canary", 0)),
    }
    kube.put(HTTPROUTE, httproute(ADMIN_RULE, api_rule))
    return kube


HTTPROUTE_ARGS = {
    "namespace": "lab",
    "backend": "httproute",
    "name": "veritas-runtime",
    "httproute_rule": 1,
    "httproute_control_service": "veritas-control",
    "httproute_canary_service": "veritas-canary",
    "control": 90,
    "canary": 10,
}


def test_httproute_backend_sets_the_backend_ref_weights_then_is_idempotent(
    kube_with_httproute, run_module
):
    kube = kube_with_httproute
    first = run_module(traffic_split, HTTPROUTE_ARGS, kube)
    assert first["changed"] is True and first["backend"] == "httproute"
    assert first["weights"] == {"control": 90, "canary": 10}
    assert first["previous_weights"] == {"control": 100, "canary": 0}
    assert kube.writes == [("PATCH", HTTPROUTE, False)]
    spec = kube.objects[HTTPROUTE]["spec"]
    assert spec["rules"][0] == ADMIN_RULE
    assert spec["rules"][1]["matches"] == API_MATCHES
    assert spec["rules"][1]["backendRefs"] == backend_refs(
        ("veritas-control", 90), ("veritas-canary", 10)
    )
    assert spec["parentRefs"] == [{"name": "veritas-gateway"}]
    assert first["object"]["spec"] == spec

    second = run_module(traffic_split, HTTPROUTE_ARGS, kube)
    assert second["changed"] is False
    assert second["previous_weights"] == second["weights"] == {"control": 90, "canary": 10}
    assert len(kube.writes) == 1


def test_httproute_check_mode_is_a_dry_run_with_a_diff(kube_with_httproute, run_module):
    kube = kube_with_httproute
    stored = kube.objects[HTTPROUTE]["spec"]
    result = run_module(
        traffic_split, HTTPROUTE_ARGS, kube, check_mode=True, diff=True
    )
    assert result["changed"] is True
    assert kube.writes == [("PATCH", HTTPROUTE, True)]
    assert kube.objects[HTTPROUTE]["spec"] == stored
    assert result["weights"] == {"control": 90, "canary": 10}
    before = result["diff"]["before"]["spec"]["rules"]
    after = result["diff"]["after"]["spec"]["rules"]
    assert before[1]["backendRefs"][1]["weight"] == 0
    assert after[1]["backendRefs"][1]["weight"] == 10
    assert after[0] == before[0] == ADMIN_RULE
    assert "resourceVersion" not in result["diff"]["after"]["metadata"]


def test_httproute_defaults_to_the_first_two_backend_refs_of_the_first_rule(
    kube, run_module
):
    rule = {"backendRefs": backend_refs(("a", 50), ("b", 50))}
    kube.put(HTTPROUTE, httproute(rule))
    args = {key: HTTPROUTE_ARGS[key] for key in ("namespace", "backend", "name")}
    args.update(control=100, canary=0)
    result = run_module(traffic_split, args, kube)
    assert result["changed"] and result["previous_weights"] == {"control": 50, "canary": 50}
    refs = kube.objects[HTTPROUTE]["spec"]["rules"][0]["backendRefs"]
    assert [ref["weight"] for ref in refs] == [100, 0]


@pytest.mark.parametrize(
    "override, field, fragment",
    [
        (
            {"httproute_canary_service": "veritas-preview"},
            "httproute_canary_service",
            "'veritas-preview' is not a Service among the backendRefs of spec.rules[1]",
        ),
        (
            {"httproute_control_service": "veritas-admin"},
            "httproute_control_service",
            "'veritas-admin' is not a Service among the backendRefs of spec.rules[1]",
        ),
        ({"httproute_rule": 5}, "httproute_rule", "(it has 2), got 5"),
        ({"httproute_rule": -1}, "httproute_rule", "(0 or more), got -1"),
        (
            {"httproute_canary_service": "Veritas_Canary"},
            "httproute_canary_service",
            "must be a DNS-1123 label",
        ),
    ],
)
def test_httproute_bad_input_names_the_option_and_changes_nothing(
    kube_with_httproute, run_module, override, field, fragment
):
    kube = kube_with_httproute
    stored = kube.objects[HTTPROUTE]
    result = run_module(traffic_split, dict(HTTPROUTE_ARGS, **override), kube)
    assert result["failed"] is True
    assert result["reason"] == "invalid_input"
    assert result["field"] == field
    assert fragment in result["msg"]
    assert kube.writes == []
    assert kube.objects[HTTPROUTE] == stored


def test_missing_httproute_is_a_clear_error(kube, run_module):
    result = run_module(traffic_split, HTTPROUTE_ARGS, kube)
    assert result["failed"] and result["reason"] == "not_found"
    assert "HTTPRoute veritas-runtime not found in namespace lab" in result["msg"]

from __future__ import annotations

import pytest
from ansible_collections.veritas.chaos.plugins.module_utils import _prometheus
from ansible_collections.veritas.chaos.plugins.modules import traffic_split

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

from __future__ import annotations

from ansible_collections.veritas.chaos.plugins.modules import gameday_info
from fake_kube import pod
from traffic_objects import backend_refs, httproute, httproute_path


def test_reads_weights_colour_pods_and_endpoints(kube, run_module):
    kube.put(
        "/api/v1/namespaces/lab/configmaps/veritas-traffic-config",
        {
            "metadata": {"name": "veritas-traffic-config"},
            "data": {"control": "90", "canary": "10"},
        },
    )
    kube.put(
        "/api/v1/namespaces/lab/services/veritas-runtime",
        {
            "metadata": {
                "name": "veritas-runtime",
                "annotations": {
                    "veritas.chaos/previous-selector": '{"deployment":"green"}'
                },
            },
            "spec": {"selector": {"app": "veritas", "deployment": "blue"}},
        },
    )
    kube.put(
        "/api/v1/namespaces/lab/pods/a",
        pod("a", {"app": "veritas", "variant": "control", "deployment": "blue"}),
    )
    kube.put(
        "/api/v1/namespaces/lab/pods/b",
        pod(
            "b",
            {"app": "veritas", "variant": "canary", "deployment": "blue"},
            ready=False,
        ),
    )
    kube.put("/api/v1/namespaces/lab/pods/x", pod("x", {"app": "other"}))
    kube.put(
        "/apis/discovery.k8s.io/v1/namespaces/lab/endpointslices/veritas-runtime-abc",
        {
            "metadata": {
                "name": "veritas-runtime-abc",
                "labels": {"kubernetes.io/service-name": "veritas-runtime"},
            },
            "endpoints": [
                {"addresses": ["10.0.0.1"], "conditions": {"ready": True}},
                {"addresses": ["10.0.0.2"], "conditions": {"ready": False}},
            ],
        },
    )
    result = run_module(gameday_info, {"namespace": "lab"}, kube)
    assert result["changed"] is False
    assert result["weights"] == {"control": 90, "canary": 10}
    assert result["active_colour"] == "blue"
    assert result["previous_selector"] == {"deployment": "green"}
    assert result["variants"] == {
        "control": {"total": 1, "ready": 1},
        "canary": {"total": 1, "ready": 0},
    }
    assert result["colours"] == {"blue": {"total": 2, "ready": 1}}
    assert [row["name"] for row in result["pods"]] == ["a", "b"]
    assert result["endpoints"] == {
        "ready": 1,
        "not_ready": 1,
        "addresses": ["10.0.0.1"],
    }
    assert kube.writes == []


def test_missing_objects_are_nulls(kube, run_module):
    result = run_module(gameday_info, {"namespace": "lab"}, kube)
    assert (
        result["weights"] is None
        and result["selector"] is None
        and result["active_colour"] is None
    )
    assert result["pods"] == [] and result["endpoints"]["ready"] == 0


def test_production_refused(kube, run_module):
    result = run_module(gameday_info, {"namespace": "prod"}, kube)
    assert result["failed"] and result["reason"] == "production_refused"


def test_reads_the_weights_of_an_httproute(kube, run_module):
    weighted = backend_refs(
        ("veritas-shadow", 0), ("veritas-canary", 25), ("veritas-control", 75)
    )
    kube.put(
        httproute_path(),
        httproute(
            {"backendRefs": backend_refs(("veritas-admin", None), port=8081)},
            {"backendRefs": weighted},
        ),
    )
    args = {
        "namespace": "lab",
        "backend": "httproute",
        "traffic_route": "veritas-runtime",
        "httproute_rule": 1,
        "httproute_control_service": "veritas-control",
        "httproute_canary_service": "veritas-canary",
    }
    result = run_module(gameday_info, args, kube)
    assert result["changed"] is False and result["backend"] == "httproute"
    assert result["weights"] == {"control": 75, "canary": 25}
    assert kube.writes == []

    missing = run_module(
        gameday_info, dict(args, httproute_canary_service="veritas-preview"), kube
    )
    assert missing["failed"] and missing["reason"] == "invalid_input"
    assert missing["field"] == "httproute_canary_service"

    absent = run_module(gameday_info, dict(args, traffic_route="other"), kube)
    assert absent["weights"] is None and not absent.get("failed")


def test_a_route_backend_needs_traffic_route(kube, run_module):
    result = run_module(gameday_info, {"namespace": "lab", "backend": "route"}, kube)
    assert result["failed"] and result["field"] == "traffic_route"
    assert kube.calls == []

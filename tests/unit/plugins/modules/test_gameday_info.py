from __future__ import annotations

from ansible_collections.veritas.chaos.plugins.modules import gameday_info
from fake_kube import pod


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

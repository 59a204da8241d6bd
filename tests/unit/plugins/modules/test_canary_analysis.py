# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import types

import pytest
from ansible_collections.veritas.chaos.plugins.module_utils import _runner
from ansible_collections.veritas.chaos.plugins.module_utils._analysis import Reading
from ansible_collections.veritas.chaos.plugins.modules import canary_analysis
from traffic_objects import backend_refs, httproute, httproute_path

CM = "/api/v1/namespaces/lab/configmaps/veritas-traffic-config"
PROD_CM = "/api/v1/namespaces/prod/configmaps/veritas-traffic-config"

GOOD = (0.01, 0.1)
BAD_ERRORS = (0.2, 0.1)
BAD_LATENCY = (0.0, 1.5)
NO_DATA = (None, None)
UNREACHABLE = "unreachable"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_771_408_800.0

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(
        canary_analysis, "time", types.SimpleNamespace(time=fake.time, sleep=fake.sleep)
    )
    return fake


@pytest.fixture
def prometheus(monkeypatch):
    """Patch the Prometheus client: a script of (error_rate, p99) per sample."""
    state = {"script": [GOOD], "queries": [], "urls": []}

    class FakeProm:
        def __init__(self, url, **kwargs):
            state["urls"].append(url)

        def query(self, promql, at=None):
            state["queries"].append((promql, at))
            index = (len(state["queries"]) - 1) // 2
            sample = state["script"][min(index, len(state["script"]) - 1)]
            if sample == UNREACHABLE:
                return Reading(None, "unreachable: http://prom: refused")
            value = sample[0] if "error" in promql else sample[1]
            return Reading(
                value, None if value is not None else "no_data: empty vector"
            )

    monkeypatch.setattr(canary_analysis, "PrometheusClient", FakeProm)
    return state


@pytest.fixture
def kube_cm(kube):
    for path, ns in ((CM, "lab"), (PROD_CM, "prod")):
        kube.put(
            path,
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "veritas-traffic-config", "namespace": ns},
                "data": {"control": "90", "canary": "10"},
            },
        )
    return kube


BASE = {
    "prometheus_url": "http://prom:9090",
    "interval": 1.0,
    "samples": 6,
    "error_rate_query": "error_ratio",
    "latency_query": "latency_p99",
}


def test_pass_reports_every_measurement(prometheus, clock, kube_cm, run_module):
    result = run_module(canary_analysis, dict(BASE), kube_cm)
    assert result["verdict"] == "pass"
    assert result["changed"] is False
    assert result["alert"] is False
    assert result["counts"] == {
        "samples": 6,
        "passed": 6,
        "failed": 0,
        "inconclusive": 0,
    }
    assert len(result["measurements"]) == 6
    first = result["measurements"][0]
    assert first["verdict"] == "pass"
    assert first["error_rate"] == 0.01
    assert first["time"].endswith("Z")
    assert result["measurements"][1]["timestamp"] - first["timestamp"] == pytest.approx(
        1.0
    )
    assert kube_cm.calls == []  # no rollback asked: the API is never touched


def test_default_queries_use_the_recording_rules(
    prometheus, clock, kube_cm, run_module
):
    args = {"prometheus_url": "http://prom:9090", "samples": 1, "namespace": "lab"}
    result = run_module(canary_analysis, args, kube_cm)
    assert result["queries"] == {
        "error_rate": 'max(veritas:error_ratio:rate30s{variant="canary",namespace="lab"})',
        "latency": 'max(veritas:latency_p99_seconds:rate30s{variant="canary",namespace="lab"})',
    }
    assert result["thresholds"]["error_rate"] == 0.05
    assert result["thresholds"]["latency_seconds"] == 0.5
    assert result["thresholds"]["consecutive_failures"] == 3


def test_fail_rolls_back_and_times_it(prometheus, clock, kube_cm, run_module):
    prometheus["script"] = [GOOD, BAD_ERRORS, BAD_LATENCY, BAD_ERRORS, GOOD]
    args = dict(BASE, samples=10, rollback=True, namespace="lab")
    result = run_module(canary_analysis, args, kube_cm, diff=True)
    assert result["verdict"] == "fail"
    assert result["counts"]["samples"] == 4  # stopped at the third consecutive failure
    assert result["changed"] is True
    assert kube_cm.objects[CM]["data"] == {"control": "100", "canary": "0"}
    rollback = result["rollback"]
    assert rollback["performed"] is True
    assert rollback["would_rollback"] is True
    assert rollback["weights"] == {"control": 100, "canary": 0}
    assert rollback["previous_weights"] == {"control": 90, "canary": 10}
    assert rollback["seconds_from_first_fail"] == pytest.approx(2.0)
    assert rollback["seconds_from_detection"] == pytest.approx(0.0)
    assert rollback["rollback_at"].endswith("Z")
    assert result["window"]["first_fail_at"] == result["measurements"][1]["time"]
    assert result["diff"]["before"]["data"]["canary"] == "10"
    assert result["diff"]["after"]["data"]["canary"] == "0"


def test_rollback_is_idempotent(prometheus, clock, kube_cm, run_module):
    prometheus["script"] = [BAD_ERRORS]
    args = dict(BASE, rollback=True, namespace="lab")
    assert run_module(canary_analysis, args, kube_cm)["changed"] is True
    writes = len(kube_cm.writes)
    prometheus["queries"].clear()
    again = run_module(canary_analysis, args, kube_cm)
    assert again["verdict"] == "fail"
    assert again["changed"] is False
    assert again["rollback"]["performed"] is True
    assert len(kube_cm.writes) == writes


def test_boundary_values_pass(prometheus, clock, kube_cm, run_module):
    prometheus["script"] = [(0.05, 0.5)]
    result = run_module(
        canary_analysis, dict(BASE, rollback=True, namespace="lab"), kube_cm
    )
    assert result["verdict"] == "pass"
    assert kube_cm.objects[CM]["data"]["canary"] == "10"


def test_pass_between_failures_resets_the_count(prometheus, clock, kube_cm, run_module):
    prometheus["script"] = [BAD_ERRORS, BAD_ERRORS, GOOD, BAD_ERRORS, BAD_ERRORS, GOOD]
    args = dict(BASE, rollback=True, namespace="lab", min_samples=2)
    result = run_module(canary_analysis, args, kube_cm)
    assert result["verdict"] == "pass"
    assert [m["consecutive_failures"] for m in result["measurements"]] == [
        1,
        2,
        0,
        1,
        2,
        0,
    ]
    assert result["rollback"]["performed"] is False
    assert kube_cm.writes == []


@pytest.mark.parametrize(
    ("script", "reason"),
    [
        ([NO_DATA], "no_data"),
        ([UNREACHABLE], "unreachable"),
    ],
)
def test_no_data_or_unreachable_is_inconclusive_alerts_and_never_rolls_back(
    prometheus, clock, kube_cm, run_module, script, reason
):
    prometheus["script"] = script
    result = run_module(
        canary_analysis, dict(BASE, rollback=True, namespace="lab"), kube_cm
    )
    assert result["verdict"] == "inconclusive"
    assert result["alert"] is True
    assert reason in result["inconclusive_reason"]
    assert result["counts"]["failed"] == 0
    assert result["counts"]["samples"] == 6
    assert result["rollback"]["would_rollback"] is False
    assert result["rollback"]["performed"] is False
    assert result["changed"] is False
    assert kube_cm.writes == []


def test_outage_between_failures_does_not_trigger(
    prometheus, clock, kube_cm, run_module
):
    # fail, fail, then metrics go away: two confirmed failures are not three
    prometheus["script"] = [BAD_ERRORS, BAD_ERRORS, NO_DATA]
    result = run_module(
        canary_analysis, dict(BASE, rollback=True, namespace="lab"), kube_cm
    )
    assert result["verdict"] == "inconclusive"
    assert result["alert"] is True
    assert kube_cm.writes == []


def test_query_error_for_one_metric_with_confirmed_breach_of_the_other(
    prometheus, clock, kube_cm, run_module
):
    prometheus["script"] = [(0.5, None)]
    result = run_module(
        canary_analysis, dict(BASE, rollback=True, namespace="lab"), kube_cm
    )
    assert result["verdict"] == "fail"
    assert result["rollback"]["performed"] is True


def test_check_mode_queries_but_never_rolls_back(
    prometheus, clock, kube_cm, run_module
):
    prometheus["script"] = [BAD_ERRORS]
    args = dict(BASE, rollback=True, namespace="lab")
    result = run_module(canary_analysis, args, kube_cm, check_mode=True, diff=True)
    assert result["verdict"] == "fail"
    assert result["rollback"]["would_rollback"] is True
    assert result["rollback"]["performed"] is False
    assert result["rollback"]["rollback_at"] is None
    assert result["changed"] is True
    assert ("PATCH", CM, True) in kube_cm.writes
    assert all(dry for _method, _path, dry in kube_cm.writes)
    assert kube_cm.objects[CM]["data"]["canary"] == "10"
    assert result["diff"]["after"]["data"]["canary"] == "0"


def test_production_refused_before_the_window(prometheus, clock, kube_cm, run_module):
    result = run_module(
        canary_analysis, dict(BASE, rollback=True, namespace="prod"), kube_cm
    )
    assert result["failed"] is True
    assert result["reason"] == "production_refused"
    assert prometheus["queries"] == []
    assert kube_cm.writes == []


def test_missing_configmap_fails_before_the_window(prometheus, clock, kube, run_module):
    result = run_module(
        canary_analysis, dict(BASE, rollback=True, namespace="lab"), kube
    )
    assert result["failed"] is True
    assert result["reason"] == "not_found"
    assert "veritas-traffic-config" in result["msg"]
    assert prometheus["queries"] == []


@pytest.mark.parametrize(
    ("args", "field", "fragment"),
    [
        ({"interval": 0}, "interval", "greater than 0"),
        ({"samples": 0}, "samples", "at least 1"),
        ({"consecutive_failures": 0}, "consecutive_failures", "at least 1"),
        ({"error_rate_threshold": 5.0}, "error_rate_threshold", "from 0 to 1"),
        ({"latency_threshold": -1.0}, "latency_threshold", "greater than 0"),
        ({"min_samples": 7}, "min_samples", "at most the 6 samples"),
        ({"prometheus_url": "prom:9090"}, "prometheus_url", "http:// or https://"),
        ({"query_timeout": 0.0}, "query_timeout", "greater than 0"),
    ],
)
def test_bad_input_names_the_field_and_changes_nothing(
    prometheus, clock, kube_cm, run_module, args, field, fragment
):
    result = run_module(
        canary_analysis, dict(BASE, rollback=True, namespace="lab", **args), kube_cm
    )
    assert result["failed"] is True
    assert result["reason"] == "invalid_input"
    assert result["field"] == field
    assert fragment in result["msg"]
    assert prometheus["queries"] == []
    assert kube_cm.calls == []


def test_window_needs_duration_or_samples(prometheus, clock, kube_cm, run_module):
    args = {"prometheus_url": "http://prom:9090"}
    result = run_module(canary_analysis, args, kube_cm)
    assert result["failed"] is True
    assert "duration" in result["msg"] and "samples" in result["msg"]


def test_rollback_needs_namespace(prometheus, clock, kube_cm, run_module):
    result = run_module(canary_analysis, dict(BASE, rollback=True), kube_cm)
    assert result["failed"] is True
    assert "namespace" in result["msg"]


def test_duration_with_fractional_interval(prometheus, clock, kube_cm, run_module):
    args = dict(BASE, samples=None, duration=2.0, interval=0.5)
    result = run_module(canary_analysis, args, kube_cm)
    assert result["counts"]["samples"] == 5
    assert result["thresholds"]["min_samples"] == 3


def test_without_kubernetes_only_a_rollback_fails(
    prometheus, clock, kube_cm, run_module, monkeypatch
):
    monkeypatch.setattr(_runner, "HAS_KUBERNETES", False)
    analysis = run_module(canary_analysis, dict(BASE), kube_cm)
    assert analysis["verdict"] == "pass" and not analysis.get("failed")
    rollback = run_module(
        canary_analysis, dict(BASE, rollback=True, namespace="lab"), kube_cm
    )
    assert rollback["failed"] and rollback["reason"] == "missing_library"
    assert kube_cm.calls == []


HTTPROUTE = httproute_path()
ROUTE = "/apis/route.openshift.io/v1/namespaces/lab/routes/veritas-runtime"
DOCS_RULE = {
    "matches": [{"path": {"type": "PathPrefix", "value": "/docs"}}],
    "filters": [
        {
            "type": "URLRewrite",
            "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}},
        }
    ],
    "backendRefs": backend_refs(("veritas-docs", None), port=80),
}


@pytest.fixture
def kube_routes(kube):
    api_rule = {
        "matches": [{"path": {"type": "PathPrefix", "value": "/v1"}}],
        "backendRefs": backend_refs(("veritas-control", 90), ("veritas-canary", 10)),
    }
    kube.put(HTTPROUTE, httproute(api_rule, DOCS_RULE))
    kube.put(
        ROUTE,
        {
            "apiVersion": "route.openshift.io/v1",
            "kind": "Route",
            "metadata": {"name": "veritas-runtime", "namespace": "lab"},
            "spec": {
                "to": {"kind": "Service", "name": "veritas-control", "weight": 90},
                "alternateBackends": [
                    {"kind": "Service", "name": "veritas-canary", "weight": 10}
                ],
            },
        },
    )
    return kube


HTTPROUTE_ROLLBACK = dict(
    BASE,
    rollback=True,
    namespace="lab",
    backend="httproute",
    traffic_route="veritas-runtime",
    httproute_control_service="veritas-control",
    httproute_canary_service="veritas-canary",
)


def test_fail_rolls_back_an_httproute_keeping_its_other_rules(
    prometheus, clock, kube_routes, run_module
):
    prometheus["script"] = [BAD_ERRORS]
    result = run_module(canary_analysis, HTTPROUTE_ROLLBACK, kube_routes, diff=True)
    assert result["verdict"] == "fail" and result["changed"] is True
    rollback = result["rollback"]
    assert rollback["backend"] == "httproute" and rollback["performed"] is True
    assert rollback["previous_weights"] == {"control": 90, "canary": 10}
    assert rollback["weights"] == {"control": 100, "canary": 0}
    rules = kube_routes.objects[HTTPROUTE]["spec"]["rules"]
    assert [ref["weight"] for ref in rules[0]["backendRefs"]] == [100, 0]
    assert rules[0]["matches"] == [{"path": {"type": "PathPrefix", "value": "/v1"}}]
    assert rules[1] == DOCS_RULE
    assert kube_routes.writes == [("PATCH", HTTPROUTE, False)]
    assert result["diff"]["before"]["spec"]["rules"][0]["backendRefs"][1]["weight"] == 10
    assert result["diff"]["after"]["spec"]["rules"][0]["backendRefs"][1]["weight"] == 0

    prometheus["queries"].clear()
    again = run_module(canary_analysis, HTTPROUTE_ROLLBACK, kube_routes)
    assert again["changed"] is False and again["rollback"]["performed"] is True
    assert len(kube_routes.writes) == 1


def test_fail_rolls_back_a_route(prometheus, clock, kube_routes, run_module):
    prometheus["script"] = [BAD_ERRORS]
    args = dict(BASE, rollback=True, namespace="lab", backend="route")
    args["traffic_route"] = "veritas-runtime"
    result = run_module(canary_analysis, args, kube_routes)
    assert result["rollback"]["weights"] == {"control": 100, "canary": 0}
    assert kube_routes.objects[ROUTE]["spec"]["alternateBackends"] == [
        {"kind": "Service", "name": "veritas-canary", "weight": 0}
    ]


def test_httproute_check_mode_rollback_is_a_dry_run(
    prometheus, clock, kube_routes, run_module
):
    prometheus["script"] = [BAD_ERRORS]
    result = run_module(
        canary_analysis, HTTPROUTE_ROLLBACK, kube_routes, check_mode=True
    )
    assert result["rollback"]["would_rollback"] is True
    assert result["rollback"]["performed"] is False
    assert result["rollback"]["weights"] == {"control": 100, "canary": 0}
    assert kube_routes.writes == [("PATCH", HTTPROUTE, True)]
    rules = kube_routes.objects[HTTPROUTE]["spec"]["rules"]
    assert [ref["weight"] for ref in rules[0]["backendRefs"]] == [90, 10]


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"httproute_canary_service": "veritas-preview"}, "httproute_canary_service"),
        ({"httproute_rule": 1}, "httproute_control_service"),
        ({"httproute_rule": 7}, "httproute_rule"),
        ({"traffic_route": None}, "traffic_route"),
    ],
)
def test_an_httproute_rollback_that_cannot_work_fails_before_the_window(
    prometheus, clock, kube_routes, run_module, args, field
):
    result = run_module(canary_analysis, dict(HTTPROUTE_ROLLBACK, **args), kube_routes)
    assert result["failed"] is True
    assert result["reason"] == "invalid_input"
    assert result["field"] == field
    assert prometheus["queries"] == []
    assert kube_routes.writes == []


def test_missing_httproute_fails_before_the_window(prometheus, clock, kube, run_module):
    result = run_module(canary_analysis, HTTPROUTE_ROLLBACK, kube)
    assert result["failed"] and result["reason"] == "not_found"
    assert "HTTPRoute veritas-runtime not found in namespace lab" in result["msg"]
    assert prometheus["queries"] == []

# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Alerts from the standard places: Prometheus's /api/v1/alerts (steady state), Alertmanager's /api/v2/alerts (pages)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.veritas.chaos.plugins.filter.alerts import (
    FilterModule,
    active_alerts,
    fired_alerts,
    rfc3339_epoch,
    silencing,
)


def alert(name, state="firing", active_at="2026-02-18T10:00:05.123Z", summary="", **labels):
    return {
        "labels": {"alertname": name, "severity": "warning", **labels},
        "annotations": {"summary": summary} if summary else {},
        "state": state,
        "activeAt": active_at,
        "value": "1e+00",
    }


def answer(*alerts):
    return {"status": "success", "data": {"alerts": list(alerts)}}


def test_filter_is_exposed():
    assert FilterModule().filters()["active_alerts"] is active_alerts


def test_a_firing_alert_of_the_scenario_is_named_with_its_start_and_place():
    found = active_alerts(
        answer(
            alert(
                "VeritasCanaryInstanceLost",
                namespace="veritas-lab",
                variant="canary",
                reason="instance_lost",
                summary="1 canary runtime pod(s) in veritas-lab disappeared in the last minute",
            )
        ),
        ["VeritasCanaryInstanceLost"],
        "veritas-lab",
    )
    assert found == [
        {
            "alertname": "VeritasCanaryInstanceLost",
            "state": "firing",
            "active_at": "2026-02-18T10:00:05.123Z",
            "labels": {
                "alertname": "VeritasCanaryInstanceLost",
                "severity": "warning",
                "namespace": "veritas-lab",
                "variant": "canary",
                "reason": "instance_lost",
            },
            "summary": "1 canary runtime pod(s) in veritas-lab disappeared in the last minute",
            "line": "VeritasCanaryInstanceLost is firing since 2026-02-18T10:00:05.123Z "
            "(namespace=veritas-lab, variant=canary, reason=instance_lost): "
            "1 canary runtime pod(s) in veritas-lab disappeared in the last minute",
        }
    ]


def test_other_alerts_namespaces_and_states_do_not_count():
    found = active_alerts(
        answer(
            alert("VeritasErrorRateHigh", namespace="veritas-lab"),
            alert("VeritasCanaryInstanceLost", namespace="other-team"),
            alert("VeritasCanaryInstanceLost", state="inactive", namespace="veritas-lab"),
        ),
        ["VeritasCanaryInstanceLost"],
        "veritas-lab",
    )
    assert found == []


def test_pending_counts_by_default_and_can_be_left_out():
    pending = answer(alert("VeritasMetricsOutage", state="pending", namespace="veritas-lab"))
    assert [a["state"] for a in active_alerts(pending, ["VeritasMetricsOutage"])] == ["pending"]
    assert active_alerts(pending, ["VeritasMetricsOutage"], states=["firing"]) == []


def test_an_alert_without_namespace_counts_everywhere_and_no_namespace_means_all():
    response = answer(
        alert("VeritasMetricsOutage", reason="no_runtime_metrics"),
        alert("VeritasMetricsOutage", namespace="elsewhere", active_at="2026-02-18T09:00:00Z"),
    )
    assert len(active_alerts(response, ["VeritasMetricsOutage"], "veritas-lab")) == 1
    everywhere = active_alerts(response, "VeritasMetricsOutage")
    assert [a["labels"].get("namespace") for a in everywhere] == ["elsewhere", None]  # oldest first


def test_a_plain_alert_list_and_an_empty_answer():
    assert active_alerts([alert("VeritasGPUUnavailable")], ["VeritasGPUUnavailable"])[0]["line"] == (
        "VeritasGPUUnavailable is firing since 2026-02-18T10:00:05.123Z"
    )
    assert active_alerts(answer(), ["VeritasGPUUnavailable"]) == []
    assert active_alerts(answer(alert("VeritasGPUUnavailable")), []) == []


def test_unknown_start_is_said():
    found = active_alerts([alert("A", active_at=None)], ["A"])
    assert found[0]["line"] == "A is firing since an unknown time"


@pytest.mark.parametrize(
    ("response", "message"),
    [
        ({"status": "error", "errorType": "unavailable", "error": "busy"}, "answered 'error': unavailable busy"),
        ({"status": "success", "data": {}}, "expects the answer of Prometheus"),
        ("firing", "expects a list of alerts"),
        ([["not", "a", "dict"]], "each alert must be a dict"),
        ([{"labels": ["x"]}], "labels must be a dict"),
    ],
)
def test_bad_answers_are_refused(response, message):
    with pytest.raises(AnsibleFilterError, match=message):
        active_alerts(response, ["A"])


def test_bad_names_are_refused():
    with pytest.raises(AnsibleFilterError, match="alertnames must be a list of strings"):
        active_alerts(answer(), [1])
    with pytest.raises(AnsibleFilterError, match="states must be a list of strings"):
        active_alerts(answer(), ["A"], states=None)


# ---- fired_alerts (Prometheus ALERTS range) and silencing (Alertmanager API v2) --------------

INJECTED = 1_780_000_000.0  # 2026-05-28T20:26:40Z


def series(name, times, **labels):
    return {
        "metric": {"__name__": "ALERTS", "alertname": name, "alertstate": "firing", **labels},
        "values": [[t, "1"] for t in times],
    }


def test_rfc3339_with_nanoseconds_and_offsets():
    assert rfc3339_epoch("2026-05-28T20:26:40Z") == INJECTED
    assert abs(rfc3339_epoch("2026-05-28T20:26:41.123456789Z") - (INJECTED + 1.123456789)) < 1e-6
    assert rfc3339_epoch("2026-05-28T22:26:40+02:00") == INJECTED
    with pytest.raises(AnsibleFilterError, match="not an RFC 3339 time"):
        rfc3339_epoch("yesterday")


def test_fired_alerts_first_sample_after_the_injection_first_first():
    answer = {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [
                series("VeritasErrorRateHigh", [INJECTED + 9, INJECTED + 10], variant="control"),
                # fired 2 s and resolved: still seen, which a poll of active alerts would miss
                series("VeritasErrorRateHigh", [INJECTED - 5, INJECTED + 4, INJECTED + 5], variant="canary"),
                series("VeritasLatencyP99High", [INJECTED - 30, INJECTED - 29]),  # before: not ours
            ],
        },
    }
    fired = fired_alerts(answer, INJECTED)
    assert [(a["labels"]["variant"], a["started"]) for a in fired] == [("canary", INJECTED + 4), ("control", INJECTED + 9)]
    assert "alertstate" not in fired[0]["labels"] and fired[0]["alertname"] == "VeritasErrorRateHigh"
    assert fired_alerts({"status": "success", "data": {"result": []}}, INJECTED) == []


def silence(matchers, starts, ends, sid="s1"):
    return {
        "id": sid,
        "matchers": matchers,
        "startsAt": starts,
        "endsAt": ends,
        "createdBy": "someone",
        "comment": "maintenance",
        "status": {"state": "active"},
    }


def test_silencing_in_force_and_every_matcher_matching():
    labels = {"alertname": "VeritasCanaryInstanceLost", "namespace": "veritas-lab", "variant": "canary"}
    at = INJECTED + 8
    by_name = silence([{"name": "alertname", "value": "VeritasCanaryInstanceLost", "isRegex": False, "isEqual": True}],
                      "2026-05-28T20:26:00Z", "2026-05-28T21:26:00Z")
    by_regex = silence([{"name": "alertname", "value": "Veritas.*", "isRegex": True, "isEqual": True},
                        {"name": "namespace", "value": "prod", "isRegex": False, "isEqual": False}],
                       "2026-05-28T20:26:00Z", "2026-05-28T21:26:00Z", sid="s2")
    other_ns = silence([{"name": "namespace", "value": "other", "isRegex": False, "isEqual": True}],
                       "2026-05-28T20:26:00Z", "2026-05-28T21:26:00Z", sid="s3")
    expired_before = silence(by_name["matchers"], "2026-05-28T20:00:00Z", "2026-05-28T20:26:45Z", sid="s4")
    later = silence(by_name["matchers"], "2026-05-28T20:27:00Z", "2026-05-28T21:00:00Z", sid="s5")
    found = silencing([by_name, by_regex, other_ns, expired_before, later], labels, at)
    assert [s["id"] for s in found] == ["s1", "s2"]
    assert found[0]["created_by"] == "someone"
    assert silencing([], labels, at) == []


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: fired_alerts({"status": "error", "error": "bad query"}, INJECTED), "query_range"),
        (lambda: fired_alerts({"status": "success", "data": {"result": []}}, "soon"), "since must be epoch seconds"),
        (lambda: silencing({"data": []}, {}, INJECTED), "expects the list"),
        (lambda: silencing([1], {}, INJECTED), "each silence must be a dict"),
        (lambda: silencing([silence([], "nope", "2026-05-28T21:26:00Z")], {}, INJECTED), "not an RFC 3339 time"),
    ],
)
def test_alert_filters_bad_input(call, message):
    with pytest.raises(AnsibleFilterError, match=message):
        call()

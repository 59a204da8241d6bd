# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Alerts from the standard places: Prometheus's /api/v1/alerts (steady state), Alertmanager's /api/v2/alerts (pages)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.veritas.chaos.plugins.filter.alerts import (
    FilterModule,
    active_alerts,
    paged_alerts,
    rfc3339_epoch,
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


# ---- paged_alerts: Alertmanager API v2 ------------------------------------------------------

INJECTED = 1_780_000_000.0  # 2026-05-28T20:26:40Z


def am_alert(name, starts_at, state="active", **labels):
    return {
        "labels": {"alertname": name, **labels},
        "annotations": {"summary": f"{name} summary"},
        "startsAt": starts_at,
        "status": {"state": state, "silencedBy": [], "inhibitedBy": []},
        "fingerprint": f"fp-{name}-{starts_at}",
    }


def test_rfc3339_with_nanoseconds_and_offsets():
    assert rfc3339_epoch("2026-05-28T20:26:40Z") == INJECTED
    assert abs(rfc3339_epoch("2026-05-28T20:26:41.123456789Z") - (INJECTED + 1.123456789)) < 1e-6
    assert rfc3339_epoch("2026-05-28T22:26:40+02:00") == INJECTED
    with pytest.raises(AnsibleFilterError, match="not an RFC 3339 time"):
        rfc3339_epoch("yesterday")


def test_paged_alerts_after_the_injection_unsilenced_with_labels_first_first():
    answer = [
        am_alert("VeritasErrorRateHigh", "2026-05-28T20:26:52.5Z", namespace="veritas-lab", variant="canary"),
        am_alert("VeritasErrorRateHigh", "2026-05-28T20:26:47Z", namespace="veritas-lab", variant="canary"),
        am_alert("VeritasErrorRateHigh", "2026-05-28T20:26:30Z", namespace="veritas-lab"),  # before: not ours
        am_alert("VeritasErrorRateHigh", "2026-05-28T20:26:45Z", state="suppressed", namespace="veritas-lab"),
        am_alert("VeritasErrorRateHigh", "2026-05-28T20:26:44Z", namespace="other-team"),
        am_alert("VeritasLatencyP99High", "2026-05-28T20:26:43Z", namespace="veritas-lab"),
    ]
    paged = paged_alerts(answer, ["VeritasErrorRateHigh"], INJECTED, {"namespace": "veritas-lab"})
    assert [a["started"] for a in paged] == [INJECTED + 7, INJECTED + 12.5]
    assert paged[0]["labels"]["variant"] == "canary" and paged[0]["summary"] == "VeritasErrorRateHigh summary"
    assert paged_alerts(answer, "VeritasLatencyP99High", INJECTED)[0]["alertname"] == "VeritasLatencyP99High"
    assert paged_alerts([], ["VeritasErrorRateHigh"], INJECTED) == []


@pytest.mark.parametrize(
    ("response", "since", "message"),
    [
        ({"data": []}, INJECTED, "expects the list"),
        ([1], INJECTED, "each alert must be a dict"),
        ([], "soon", "since must be epoch seconds"),
        ([am_alert("A", "not a time")], INJECTED, "not an RFC 3339 time"),
    ],
)
def test_paged_alerts_bad_input(response, since, message):
    with pytest.raises(AnsibleFilterError, match=message):
        paged_alerts(response, ["A"], since)

# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The steady state's "the scenario's alerts are not firing", from Prometheus's /api/v1/alerts."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.veritas.chaos.plugins.filter.alerts import (
    FilterModule,
    active_alerts,
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

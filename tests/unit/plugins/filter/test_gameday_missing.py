# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""evaluate_criteria's ``missing``: an alert that never fired is "not fired" and a fail, no sentinel number."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.veritas.chaos.plugins.filter.gameday import (
    evaluate_criteria,
    gameday_verdict,
)


def alert(measured, **extra):
    return {
        "id": extra.pop("id", "alert_within_1m"),
        "description": "Alert fires within 1 minute",
        "measured": measured,
        "bound": 60,
        "comparison": "<=",
        "unit": "s",
        **extra,
    }


def judge(criterion):
    return evaluate_criteria([criterion])[0]


@pytest.mark.parametrize("measured", [None, float("nan")])
def test_missing_fail_turns_no_measurement_into_a_fail(measured):
    result = judge(alert(measured, missing="fail", missing_text="not fired"))
    assert result["passed"] is False
    assert result["status"] == "FAIL"
    assert result["measured"] is None
    assert result["line"] == "Alert fires within 1 minute: not fired (needs <= 60 s) FAIL"
    assert gameday_verdict([alert(measured, missing="fail")]) == "fail"


def test_missing_inconclusive_is_the_default_and_never_a_pass():
    default = judge(alert(None))
    explicit = judge(alert(None, missing="inconclusive", missing_text="no alert rule loaded"))
    assert (default["passed"], default["status"], default["missing"]) == (None, "INCONCLUSIVE", "inconclusive")
    assert default["line"] == "Alert fires within 1 minute: not measured (needs <= 60 s) INCONCLUSIVE"
    assert explicit["passed"] is None
    assert explicit["line"] == "Alert fires within 1 minute: no alert rule loaded (needs <= 60 s) INCONCLUSIVE"
    assert gameday_verdict([alert(None, missing="inconclusive")]) == "inconclusive"


def test_a_measurement_is_judged_against_the_bound_whatever_missing_says():
    assert judge(alert(12.3, missing="fail"))["passed"] is True
    late = judge(alert(75, missing="fail", missing_text="not fired"))
    assert late["passed"] is False
    assert late["line"] == "Alert fires within 1 minute: 75 s <= 60 s FAIL"


def test_booleans_and_counts_can_be_missing_too():
    result = judge({"id": "no_5xx", "description": "No 5xx errors to users", "measured": None,
                    "bound": 0, "comparison": "==", "unit": "requests", "missing": "fail",
                    "missing_text": "no load recorded"})
    assert result["line"] == "No 5xx errors to users: no load recorded (needs == 0 requests) FAIL"


def test_evaluating_twice_keeps_missing():
    once = evaluate_criteria([alert(None, missing="fail", missing_text="not fired"), alert(None, id="b")])
    assert evaluate_criteria(once) == once
    assert [c["status"] for c in once] == ["FAIL", "INCONCLUSIVE"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"missing": "pass"}, r"'missing' is 'pass'; allowed values are inconclusive, fail"),
        ({"missing": True}, r"'missing' is True"),
        ({"missing_text": 5}, r"'missing_text' must be a string"),
        ({"mising": "fail"}, r"unknown key\(s\) mising; allowed keys are .*missing, missing_text"),
    ],
)
def test_bad_missing_is_rejected(extra, message):
    with pytest.raises(AnsibleFilterError, match=message):
        judge(alert(None, **extra))

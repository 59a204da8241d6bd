# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Game-day judging: criteria at their bounds, inconclusive never a pass, verdicts, escalation."""

from __future__ import annotations

import math

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.veritas.chaos.plugins.filter.gameday import (
    FilterModule,
    escalation_level,
    evaluate_criteria,
    gameday_verdict,
    percent_change,
    seconds_between,
    split_ratio,
)


def crit(measured, bound=10, comparison="<=", **extra):
    criterion = {
        "id": extra.pop("id", "c"),
        "description": extra.pop(
            "description", "Canary traffic drops to 0% within 10 seconds"
        ),
        "measured": measured,
        "bound": bound,
        "comparison": comparison,
    }
    criterion.update(extra)
    return criterion


def judge(measured, bound=10, comparison="<=", **extra):
    return evaluate_criteria([crit(measured, bound, comparison, **extra)])[0]


@pytest.mark.parametrize(
    ("comparison", "at_bound"),
    [("<=", True), ("<", False), (">=", True), (">", False), ("==", True)],
)
def test_measured_equal_to_bound(comparison, at_bound):
    assert judge(10, 10, comparison)["passed"] is at_bound
    assert judge(10.0, 10, comparison)["passed"] is at_bound


@pytest.mark.parametrize(
    ("comparison", "below", "above"),
    [
        ("<=", True, False),
        ("<", True, False),
        (">=", False, True),
        (">", False, True),
        ("==", False, False),
    ],
)
def test_either_side_of_bound(comparison, below, above):
    assert judge(9.999, 10, comparison)["passed"] is below
    assert judge(10.001, 10, comparison)["passed"] is above


def test_human_line_and_status():
    result = judge(
        4.1, 10, "<", description="Control group latency increases < 10%", unit="%"
    )
    assert result["line"] == "Control group latency increases < 10%: 4.1% < 10% PASS"
    assert result["status"] == "PASS"
    failed = judge(12.5, 10, "<=", unit="s")
    assert (
        failed["line"]
        == "Canary traffic drops to 0% within 10 seconds: 12.5 s <= 10 s FAIL"
    )
    assert failed["status"] == "FAIL"


def test_input_keys_kept_and_defaults_added():
    result = judge(
        3, 10, "<=", id="weight", evidence={"load": "reports/load.jsonl"}, note="kwok"
    )
    assert result["id"] == "weight"
    assert result["evidence"] == {"load": "reports/load.jsonl"}
    assert result["note"] == "kwok"
    assert judge(3)["unit"] == ""
    assert judge(3)["evidence"] == {}


@pytest.mark.parametrize("measured", [None, float("nan")])
def test_not_measured_is_inconclusive_never_pass(measured):
    result = judge(measured, 10, "<=", unit="s")
    assert result["passed"] is None
    assert result["measured"] is None
    assert result["status"] == "INCONCLUSIVE"
    assert result["line"].endswith("not measured (needs <= 10 s) INCONCLUSIVE")


def test_numbers_written_as_text_are_numbers():
    # -e measured=12.5 and text survey answers arrive as strings
    result = judge("12.5", "10", "<=")
    assert (result["measured"], result["bound"], result["passed"]) == (12.5, 10, False)
    assert judge(" 3 ", 10, "<")["measured"] == 3


def test_booleans_compare_with_equality():
    assert judge(True, True, "==")["passed"] is True
    assert judge(False, True, "==")["passed"] is False
    assert judge(None, True, "==")["passed"] is None
    assert judge(True, True, "==", description="Switch blocked by health check")[
        "line"
    ] == ("Switch blocked by health check: true == true PASS")


def test_evaluating_twice_gives_the_same_result():
    once = evaluate_criteria([crit(4), crit(None, id="d")])
    assert evaluate_criteria(once) == once


def test_unknown_comparison_names_field_and_allowed_values():
    with pytest.raises(
        AnsibleFilterError,
        match=r"'comparison' is '=<'; allowed values are <=, <, >=, >, ==",
    ):
        judge(1, 10, "=<")


@pytest.mark.parametrize(
    "missing", ["id", "description", "measured", "bound", "comparison"]
)
def test_missing_key_is_named(missing):
    criterion = crit(1)
    del criterion[missing]
    with pytest.raises(
        AnsibleFilterError, match=f"missing key\\(s\\) {missing}; required keys are"
    ):
        evaluate_criteria([criterion])


@pytest.mark.parametrize(
    ("criterion", "message"),
    [
        (crit("fast"), r"'measured' must be a number, a boolean or null"),
        (crit(""), r"'measured' must be a number, a boolean or null"),
        (crit("nan"), r"'measured' must be a number, a boolean or null"),
        (crit(1, bound=None), r"'bound' must be a number or a boolean"),
        (crit(1, bound="ten"), r"'bound' must be a number or a boolean"),
        (
            crit("true", bound=True, comparison="=="),
            r"'measured' must be a number, a boolean or null",
        ),
        (crit(True, bound=True, comparison="<="), r"needs 'comparison' '=='"),
        (
            crit(1, bound=True, comparison="=="),
            r"must both be booleans or both numbers",
        ),
        (crit(1, evidnce={}), r"unknown key\(s\) evidnce; allowed keys are"),
        (crit(1, evidence="x"), r"'evidence' must be a dict"),
        (crit(1, unit=5), r"'unit' must be a string"),
        (crit(1, id=""), r"'id' must be a non-empty string"),
    ],
)
def test_bad_criteria_are_rejected(criterion, message):
    with pytest.raises(AnsibleFilterError, match=message):
        evaluate_criteria([criterion])


def test_bad_list_and_duplicate_ids():
    with pytest.raises(AnsibleFilterError, match="expects a list"):
        evaluate_criteria(crit(1))
    with pytest.raises(AnsibleFilterError, match="each criterion must be a dict"):
        evaluate_criteria(["x"])
    with pytest.raises(AnsibleFilterError, match="appears more than once"):
        evaluate_criteria([crit(1), crit(2)])


@pytest.mark.parametrize(
    ("measurements", "verdict"),
    [
        ([1, 2], "pass"),
        ([1, 20], "fail"),
        ([1, None], "inconclusive"),
        ([20, None], "fail"),
        ([None, None], "inconclusive"),
        ([], "inconclusive"),
    ],
)
def test_verdict(measurements, verdict):
    criteria = [crit(value, id=f"c{index}") for index, value in enumerate(measurements)]
    assert gameday_verdict(criteria) == verdict
    assert gameday_verdict(evaluate_criteria(criteria)) == verdict


@pytest.mark.parametrize(
    ("facts", "level", "contact", "response_time"),
    [
        ({}, "none", None, None),
        ({"failed_components": 0}, "none", None, None),
        (
            {"failed_components": 1, "auto_recovered": True},
            "L1",
            "On-call engineer",
            "15 minutes",
        ),
        (
            {"failed_components": 1, "auto_recovered": False},
            "L2",
            "Platform team",
            "30 minutes",
        ),
        ({"failed_components": 1}, "L2", "Platform team", "30 minutes"),
        (
            {"failed_components": 2, "auto_recovered": True},
            "L2",
            "Platform team",
            "30 minutes",
        ),
        (
            {
                "failed_components": 1,
                "auto_recovered": False,
                "automatic_rollback_failed": True,
            },
            "L2",
            "Platform team",
            "30 minutes",
        ),
        (
            {
                "failed_components": 1,
                "auto_recovered": True,
                "manual_recovery_needed": True,
            },
            "L2",
            "Platform team",
            "30 minutes",
        ),
        ({"widespread": True}, "L3", "Engineering lead + Security", "Immediate"),
        (
            {"failed_components": 1, "data_loss_risk": True},
            "L3",
            "Engineering lead + Security",
            "Immediate",
        ),
        (
            {"environments_affected": 2},
            "L3",
            "Engineering lead + Security",
            "Immediate",
        ),
        (
            {"failed_components": 1, "auto_recovered": True, "sessions_lost": True},
            "L3",
            "Engineering lead + Security",
            "Immediate",
        ),
        ({"security_incident": True}, "L3", "Engineering lead + Security", "Immediate"),
        (
            {"data_corruption_detected": True},
            "L3",
            "Engineering lead + Security",
            "Immediate",
        ),
        (
            {
                "data_corruption_detected": True,
                "data_corruption_contained": True,
                "auto_recovered": True,
            },
            "L1",
            "On-call engineer",
            "15 minutes",
        ),
    ],
)
def test_escalation_levels(facts, level, contact, response_time):
    result = escalation_level(facts)
    assert (result["level"], result["contact"], result["response_time"]) == (
        level,
        contact,
        response_time,
    )
    assert result["reasons"]


def test_escalation_reasons_most_severe_first():
    result = escalation_level(
        {
            "failed_components": 2,
            "automatic_rollback_failed": True,
            "environments_affected": 2,
        }
    )
    assert result["level"] == "L3"
    assert result["reasons"][0] == "2 environments/variants affected simultaneously"
    assert "automatic rollback failed" in result["reasons"]
    assert result["response_minutes"] == 0


@pytest.mark.parametrize(
    ("facts", "message"),
    [
        (
            {"failed": 1},
            r"unknown fact\(s\) failed; allowed facts are failed_components",
        ),
        ({"failed_components": -1}, "non-negative integer"),
        ({"failed_components": True}, "non-negative integer"),
        ({"auto_recovered": "yes"}, "must be true, false or null"),
        (["x"], "expects a dict"),
    ],
)
def test_escalation_bad_facts(facts, message):
    with pytest.raises(AnsibleFilterError, match=message):
        escalation_level(facts)


def test_percent_change():
    assert percent_change(0.2, 0.2082, 1) == 4.1
    assert percent_change(100, 50) == -50.0
    assert percent_change(-10, -5) == 50.0
    assert percent_change(0, 0) == 0.0
    assert percent_change(0, 1) is None
    assert percent_change(None, 1) is None
    assert percent_change(1, float("nan")) is None
    with pytest.raises(AnsibleFilterError, match="'after' must be a number"):
        percent_change(1, "2")


def test_split_ratio():
    assert split_ratio({"control": 900, "canary": 100}) == {
        "control": 90.0,
        "canary": 10.0,
    }
    assert split_ratio({"blue": 2, "green": 1}, 1) == {"blue": 66.7, "green": 33.3}
    assert split_ratio({"blue": 0, "green": 0}) == {"blue": None, "green": None}
    with pytest.raises(AnsibleFilterError, match="non-negative number"):
        split_ratio({"blue": -1})
    with pytest.raises(AnsibleFilterError, match="expects a dict"):
        split_ratio([1, 2])


def test_seconds_between():
    assert seconds_between("2026-02-18T10:00:00Z", "2026-02-18T10:00:04.250Z") == 4.25
    assert seconds_between(1767225600.0, "2026-01-01T00:00:10+00:00") == 10.0
    assert seconds_between("2026-01-01T00:00:00", 1767225601.5) == 1.5
    assert seconds_between(None, "2026-01-01T00:00:00Z") is None
    assert seconds_between("2026-01-01T00:00:00Z", "") is None
    assert math.isclose(seconds_between(0, 1.23456, None), 1.23456)
    with pytest.raises(AnsibleFilterError, match="not an ISO 8601 time"):
        seconds_between("yesterday", "2026-01-01T00:00:00Z")


def test_filters_are_exposed():
    assert set(FilterModule().filters()) == {
        "evaluate_criteria",
        "gameday_verdict",
        "escalation_level",
        "percent_change",
        "split_ratio",
        "seconds_between",
        "scenario_criteria",
    }

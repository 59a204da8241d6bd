"""The join of a scenario's registry criteria with a run's measures (the engine's criteria step)."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.veritas.chaos.plugins.filter.gameday import (
    evaluate_criteria,
    scenario_criteria,
)

CRITERIA = [
    {"id": "alert_within_1m", "runbook": "Alert fires within 1 minute", "comparison": "<=", "unit": "s",
     "bound": "gameday_x_alert_deadline_seconds"},
    {"id": "no_5xx", "runbook": "No 5xx errors", "description": "No 5xx errors to users", "comparison": "==",
     "unit": "requests", "bound": 0},
    {"id": "retry_ok", "runbook": "Switch retried", "comparison": "==", "bound": True, "optional": True},
]


def test_joins_by_id_with_registry_words_and_resolved_bounds():
    joined = scenario_criteria(
        CRITERIA,
        {"no_5xx": {"measured": 3, "evidence": {"sent": 400}}, "alert_within_1m": {"measured": 12.5}},
        {"alert_within_1m": 60},
    )
    assert [c["id"] for c in joined] == ["alert_within_1m", "no_5xx"]
    assert joined[0] == {"id": "alert_within_1m", "description": "Alert fires within 1 minute", "comparison": "<=",
                         "unit": "s", "bound": 60, "measured": 12.5}
    assert joined[1]["description"] == "No 5xx errors to users"
    assert joined[1]["evidence"] == {"sent": 400}
    verdicts = [c["status"] for c in evaluate_criteria(joined)]
    assert verdicts == ["PASS", "FAIL"]


def test_optional_criterion_is_kept_when_measured():
    joined = scenario_criteria(CRITERIA, {"no_5xx": {"measured": 0}, "alert_within_1m": {"measured": None,
                               "missing": "fail", "missing_text": "not fired"}, "retry_ok": {"measured": False}},
                               {"alert_within_1m": 60})
    assert [c["id"] for c in joined] == ["alert_within_1m", "no_5xx", "retry_ok"]
    evaluated = evaluate_criteria(joined)
    assert evaluated[0]["line"].startswith("Alert fires within 1 minute: not fired")
    assert evaluated[0]["passed"] is False
    assert evaluated[2]["passed"] is False


def test_a_bound_the_run_computed_wins():
    joined = scenario_criteria(CRITERIA[1:2], {"no_5xx": {"measured": 2, "bound": 5}})
    assert joined[0]["bound"] == 5


@pytest.mark.parametrize("measures", [None, {}])
def test_no_measures_means_no_criteria(measures):
    assert scenario_criteria(CRITERIA, measures) == []


def test_a_measure_the_registry_does_not_list_is_an_error():
    with pytest.raises(AnsibleFilterError, match="measured typo_id, which the registry does not list"):
        scenario_criteria(CRITERIA, {"no_5xx": {"measured": 0}, "alert_within_1m": {"measured": 1}, "typo_id": {}})


def test_a_registry_criterion_left_unmeasured_is_an_error():
    with pytest.raises(AnsibleFilterError, match="'alert_within_1m' of the registry was not measured"):
        scenario_criteria(CRITERIA, {"no_5xx": {"measured": 0}})


def test_unknown_measure_keys_are_named():
    with pytest.raises(AnsibleFilterError, match="unknown key.*comparison.*allowed keys are measured"):
        scenario_criteria(CRITERIA[1:2], {"no_5xx": {"measured": 0, "comparison": "<"}})


def test_a_run_may_describe_a_criterion_in_its_own_words():
    joined = scenario_criteria(CRITERIA[1:2], {"no_5xx": {"measured": 0, "description": "No 5xx on green"}})
    assert joined[0]["description"] == "No 5xx on green"


def test_an_optional_criterion_measured_as_null_is_left_out():
    joined = scenario_criteria(CRITERIA, {"no_5xx": {"measured": 0}, "alert_within_1m": {"measured": 1}, "retry_ok": None},
                               {"alert_within_1m": 60})
    assert [c["id"] for c in joined] == ["alert_within_1m", "no_5xx"]

# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Escalation inputs measured from a run, and the level they lead to."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.veritas.chaos.plugins.filter.escalation import (
    FilterModule,
    escalation_inputs,
)
from ansible_collections.veritas.chaos.plugins.filter.gameday import escalation_level


def window(by_variant, unattributed=0, wrong=0, checked=None, measured=True):
    """A load_window result: by_variant maps a variant to (requests, errors)."""
    count = sum(requests for requests, _errors in by_variant.values()) + unattributed
    errors = sum(failed for _requests, failed in by_variant.values()) + unattributed
    return {
        "measured": measured,
        "count": count,
        "errors": errors,
        "ok": count - errors,
        "checked": count if checked is None else checked,
        "wrong_answers": wrong,
        "by_variant": {
            name: {"count": n, "errors": e, "ok": n - e} for name, (n, e) in by_variant.items()
        },
    }


def test_filter_is_exposed():
    assert FilterModule().filters()["escalation_inputs"] is escalation_inputs


def test_canary_killed_and_replaced_is_one_component_l1():
    facts = escalation_inputs(
        {
            "faulted": ["canary"],
            "load": window({"control": (2700, 0), "canary": (300, 3)}),
            "auto_recovered": True,
            "rollback_needed": False,
        }
    )
    assert facts == {
        "failed_components": 1,
        "environments_affected": 1,
        "widespread": False,
        "data_loss_risk": False,
        "data_corruption_detected": None,
        "data_corruption_contained": None,
        "sessions_lost": None,
        "auto_recovered": True,
        "automatic_rollback_failed": False,
        "manual_recovery_needed": None,
    }
    assert escalation_level(facts)["level"] == "L1"


def test_nothing_failed_is_none():
    facts = escalation_inputs({"faulted": [], "load": window({"blue": (3000, 0)}), "auto_recovered": True})
    assert facts["failed_components"] == 0 and facts["environments_affected"] == 0
    assert escalation_level(facts)["level"] == "none"


def test_the_same_component_counts_once():
    facts = escalation_inputs(
        {"faulted": ["canary", "canary", None, ""], "load": window({"canary": (10, 10), "control": (90, 0)})}
    )
    assert facts["failed_components"] == 1


def test_a_second_variant_serving_errors_is_two_environments_l3():
    facts = escalation_inputs(
        {
            "faulted": ["canary"],
            "load": window({"control": (2700, 5), "canary": (300, 40)}),
            "auto_recovered": True,
        }
    )
    assert facts["failed_components"] == 2
    assert facts["environments_affected"] == 2
    assert facts["widespread"] is False
    level = escalation_level(facts)
    assert level["level"] == "L3"
    assert "2 environments/variants affected simultaneously" in level["reasons"]


def test_unattributed_errors_are_one_environment_only_when_no_named_one_failed():
    alone = escalation_inputs({"load": window({"blue": (100, 0)}, unattributed=5)})
    assert alone["environments_affected"] == 1 and alone["failed_components"] == 1
    with_named = escalation_inputs({"load": window({"canary": (100, 7)}, unattributed=5)})
    assert with_named["environments_affected"] == 1 and with_named["failed_components"] == 1


@pytest.mark.parametrize("name", ["-", "none", ""])
def test_no_environment_names_are_not_environments(name):
    facts = escalation_inputs({"load": window({"blue": (90, 0), name: (10, 10)})})
    assert facts["environments_affected"] == 1  # the unattributed ones, as one


@pytest.mark.parametrize(
    ("errors", "expected"),
    [(0, False), (500, False), (501, True), (1000, True)],
)
def test_widespread_above_half_of_the_requests(errors, expected):
    facts = escalation_inputs({"load": window({"blue": (1000, errors)})})
    assert facts["widespread"] is expected
    assert (escalation_level(facts)["level"] == "L3") is expected


def test_widespread_threshold_is_a_parameter():
    load = window({"blue": (1000, 200)})
    assert escalation_inputs({"load": load})["widespread"] is False
    assert escalation_inputs({"load": load}, 0.1)["widespread"] is True


@pytest.mark.parametrize("threshold", [-0.1, 1, 1.5, True, "0.5", float("nan")])
def test_widespread_threshold_is_checked(threshold):
    with pytest.raises(AnsibleFilterError, match="widespread_error_ratio"):
        escalation_inputs({}, threshold)


def test_a_window_too_small_to_measure_is_not_judged_widespread():
    facts = escalation_inputs({"load": window({"blue": (5, 5)}, measured=False)})
    assert facts["widespread"] is None
    assert facts["environments_affected"] == 1  # the errors still happened


@pytest.mark.parametrize("load", [None, {}, {"count": 0, "errors": 0, "by_variant": {}}])
def test_no_load_leaves_user_facts_unknown(load):
    facts = escalation_inputs({"faulted": ["green"], "load": load})
    assert facts["environments_affected"] is None
    assert facts["widespread"] is None
    assert facts["data_loss_risk"] is None
    assert facts["failed_components"] == 1


def test_load_without_per_variant_errors_leaves_environments_unknown():
    facts = escalation_inputs({"load": {"count": 100, "errors": 60, "variants": {"blue": 40}}})
    assert facts["environments_affected"] is None
    assert facts["widespread"] is True


def test_the_load_generators_summary_is_read_too():
    summary = {
        "total": 100,
        "ok": 90,
        "wrong_answers": 0,
        "variants": {"blue": {"count": 80, "ok": 80}, "green": {"count": 20, "ok": 10}},
    }
    facts = escalation_inputs({"load": summary})
    assert facts["environments_affected"] == 1
    assert facts["failed_components"] == 1
    assert facts["widespread"] is False


def test_wrong_answers_are_data_loss_risk_and_uncontained_corruption_l3():
    facts = escalation_inputs(
        {
            "faulted": ["blue"],
            "load": window({"blue": (1000, 0)}, wrong=12),
            "corruption_detected": False,
            "auto_recovered": False,
        }
    )
    assert facts["data_loss_risk"] is True
    assert facts["data_corruption_detected"] is True
    assert facts["data_corruption_contained"] is False
    level = escalation_level(facts)
    assert level["level"] == "L3"
    assert "data loss potential" in level["reasons"]


def test_corruption_detected_and_no_wrong_answer_is_contained_l1():
    facts = escalation_inputs(
        {
            "faulted": ["blue"],
            "load": window({"blue": (1000, 0)}),
            "corruption_detected": True,
            "auto_recovered": True,
            "sessions_lost": 0,
        }
    )
    assert facts["data_loss_risk"] is False
    assert facts["data_corruption_contained"] is True
    assert facts["sessions_lost"] is False
    assert escalation_level(facts)["level"] == "L1"


def test_unchecked_answers_say_nothing_about_data_loss():
    facts = escalation_inputs(
        {"load": window({"blue": (1000, 0)}, checked=0), "corruption_detected": True}
    )
    assert facts["data_loss_risk"] is None
    assert facts["data_corruption_contained"] is None  # not confirmed: escalation_level says L3


def test_sessions_lost_count():
    assert escalation_inputs({"sessions_lost": 2})["sessions_lost"] is True
    assert escalation_level(escalation_inputs({"sessions_lost": 2}))["level"] == "L3"


@pytest.mark.parametrize(
    ("needed", "rolled_back", "failed", "manual"),
    [
        (None, None, None, None),
        (False, None, False, None),
        (False, False, False, None),
        (True, True, False, None),
        (True, False, True, True),
        (True, None, None, None),
    ],
)
def test_automatic_rollback_failed(needed, rolled_back, failed, manual):
    facts = escalation_inputs({"rollback_needed": needed, "rolled_back": rolled_back})
    assert facts["automatic_rollback_failed"] is failed
    assert facts["manual_recovery_needed"] is manual


def test_failed_rollback_is_l2():
    facts = escalation_inputs(
        {
            "faulted": ["canary"],
            "load": window({"control": (2700, 0), "canary": (300, 60)}),
            "auto_recovered": False,
            "rollback_needed": True,
            "rolled_back": False,
        }
    )
    level = escalation_level(facts)
    assert level["level"] == "L2"
    assert "automatic rollback failed" in level["reasons"]


def test_measured_manual_recovery_is_kept():
    facts = escalation_inputs({"rollback_needed": True, "rolled_back": False, "manual_recovery_needed": False})
    assert facts["manual_recovery_needed"] is False


def test_unknown_keys_and_types_are_refused():
    with pytest.raises(AnsibleFilterError, match="unknown key"):
        escalation_inputs({"failed_components": 1})
    with pytest.raises(AnsibleFilterError, match="expects a dict"):
        escalation_inputs(["canary"])
    with pytest.raises(AnsibleFilterError, match="'faulted' must be a list"):
        escalation_inputs({"faulted": "canary"})
    with pytest.raises(AnsibleFilterError, match="must be a string"):
        escalation_inputs({"faulted": [1]})
    with pytest.raises(AnsibleFilterError, match="'auto_recovered' must be true, false or null"):
        escalation_inputs({"auto_recovered": "yes"})
    with pytest.raises(AnsibleFilterError, match="'load' must be"):
        escalation_inputs({"load": [1, 2]})
    with pytest.raises(AnsibleFilterError, match="non-negative integer"):
        escalation_inputs({"load": {"count": -1}})
    with pytest.raises(AnsibleFilterError, match="non-negative integer"):
        escalation_inputs({"sessions_lost": -1})


def test_none_is_no_measurement():
    facts = escalation_inputs(None)
    assert facts["failed_components"] == 0
    assert escalation_level(facts)["level"] == "none"

from __future__ import annotations

import pytest
from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError
from ansible_collections.veritas.chaos.plugins.module_utils._selector import (
    PREVIOUS_SELECTOR_ANNOTATION,
    ROLLED_BACK_FROM_ANNOTATION,
    decode_selector,
    encode_selector,
    label_selector_string,
    rollback_patch,
    selector_diff,
    switch_patch,
    validate_selector,
)

BLUE = {"app": "veritas", "deployment": "blue"}
GREEN = {"app": "veritas", "deployment": "green"}


def test_selector_diff_reports_changed_added_removed():
    diff = selector_diff(
        {"app": "veritas", "deployment": "blue", "tier": "x"},
        {"app": "veritas", "deployment": "green", "zone": "a"},
    )
    assert diff == {
        "added": {"zone": "a"},
        "removed": {"tier": "x"},
        "changed": {"deployment": {"from": "blue", "to": "green"}},
    }


def test_selector_diff_of_equal_selectors_is_empty():
    assert selector_diff(BLUE, dict(BLUE)) == {
        "added": {},
        "removed": {},
        "changed": {},
    }


def test_switch_patch_records_previous_and_nulls_removed_keys():
    patch = switch_patch({"app": "veritas", "deployment": "blue", "old": "1"}, GREEN)
    assert patch["spec"]["selector"] == {
        "app": "veritas",
        "deployment": "green",
        "old": None,
    }
    assert decode_selector(
        patch["metadata"]["annotations"][PREVIOUS_SELECTOR_ANNOTATION]
    ) == {"app": "veritas", "deployment": "blue", "old": "1"}
    assert patch["metadata"]["annotations"][ROLLED_BACK_FROM_ANNOTATION] is None


def test_rollback_patch_consumes_the_record():
    patch = rollback_patch(GREEN, BLUE)
    assert patch["spec"]["selector"] == BLUE
    assert patch["metadata"]["annotations"][PREVIOUS_SELECTOR_ANNOTATION] is None
    assert (
        decode_selector(patch["metadata"]["annotations"][ROLLED_BACK_FROM_ANNOTATION])
        == GREEN
    )


def test_encode_decode_round_trip_is_stable():
    text = encode_selector({"b": "2", "a": "1"})
    assert text == '{"a":"1","b":"2"}'
    assert decode_selector(text) == {"a": "1", "b": "2"}
    assert decode_selector(None) is None
    assert decode_selector("") is None


@pytest.mark.parametrize("text", ["not json", "[1,2]"])
def test_decode_rejects_garbage(text):
    with pytest.raises(ChaosError) as caught:
        decode_selector(text)
    assert caught.value.reason == "invalid_state"


def test_label_selector_string_is_sorted():
    assert (
        label_selector_string({"deployment": "green", "app": "veritas"})
        == "app=veritas,deployment=green"
    )


@pytest.mark.parametrize(
    "selector",
    [
        {},
        None,
        "deployment=green",
        {"bad key!": "x"},
        {"app": "has space"},
        {"app": "x" * 64},
        {"app": {"nested": 1}},
    ],
)
def test_validate_selector_refuses_bad_input(selector):
    with pytest.raises(ChaosError) as caught:
        validate_selector(selector)
    assert caught.value.reason == "invalid_input"
    assert caught.value.details["field"] == "selector"


def test_validate_selector_accepts_prefixed_keys_and_empty_values():
    assert validate_selector({"app.kubernetes.io/name": "veritas", "flag": ""}) == {
        "app.kubernetes.io/name": "veritas",
        "flag": "",
    }

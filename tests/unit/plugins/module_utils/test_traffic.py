from __future__ import annotations

import pytest
from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError
from ansible_collections.veritas.chaos.plugins.module_utils._traffic import (
    configmap_patch,
    configmap_weights,
    route_patch,
    route_weights,
    split_observed,
    validate_weights,
)


@pytest.mark.parametrize("control, canary", [(100, 0), (0, 100), (90, 10), (50, 50)])
def test_valid_weights_pass_through(control, canary):
    assert validate_weights(control, canary) == (control, canary)


@pytest.mark.parametrize(
    "control, canary, field, fragment",
    [
        (101, -1, "control", "from 0 to 100, got 101"),
        (-5, 105, "control", "got -5"),
        (50, 150, "canary", "canary must be an integer from 0 to 100, got 150"),
        (90, 20, "control, canary", "must sum to 100, got 90 + 20 = 110"),
        (10, 10, "control, canary", "= 20"),
        (True, 99, "control", "got True"),
        ("90", 10, "control", "got '90'"),
    ],
)
def test_invalid_weights_name_the_field_and_the_allowed_values(
    control, canary, field, fragment
):
    with pytest.raises(ChaosError) as caught:
        validate_weights(control, canary)
    assert caught.value.reason == "invalid_input"
    assert caught.value.details["field"] == field
    assert fragment in caught.value.msg


def test_configmap_patch_writes_strings_as_the_runbook_does():
    assert configmap_patch(
        {"control": "100", "canary": "0"}, "control", "canary", 90, 10
    ) == {"data": {"control": "90", "canary": "10"}}


def test_configmap_patch_is_none_when_already_set():
    assert (
        configmap_patch(
            {"control": "90", "canary": "10", "other": "x"}, "control", "canary", 90, 10
        )
        is None
    )


def test_configmap_patch_rewrites_integers_stored_differently():
    # "090" reads as 90 but is not what we write; the patch normalises it.
    assert configmap_patch(
        {"control": "090", "canary": "10"}, "control", "canary", 90, 10
    ) == {"data": {"control": "90", "canary": "10"}}


def test_configmap_patch_uses_custom_keys():
    assert configmap_patch(None, "stable", "preview", 60, 40) == {
        "data": {"stable": "60", "preview": "40"}
    }


def test_configmap_weights_reads_numbers_and_nulls():
    assert configmap_weights(
        {"control": " 70 ", "canary": "x"}, "control", "canary"
    ) == {"control": 70, "canary": None}


ROUTE_SPEC = {
    "host": "veritas.example.com",
    "to": {"kind": "Service", "name": "control-svc", "weight": 100},
    "alternateBackends": [{"kind": "Service", "name": "canary-svc", "weight": 0}],
}


def test_route_patch_keeps_services_and_sets_weights():
    patch = route_patch(ROUTE_SPEC, 80, 20)
    assert patch == {
        "spec": {
            "to": {"kind": "Service", "name": "control-svc", "weight": 80},
            "alternateBackends": [
                {"kind": "Service", "name": "canary-svc", "weight": 20}
            ],
        }
    }


def test_route_patch_is_none_when_already_set():
    assert route_patch(ROUTE_SPEC, 100, 0) is None


def test_route_patch_needs_a_canary_service():
    with pytest.raises(ChaosError) as caught:
        route_patch({"to": {"kind": "Service", "name": "a", "weight": 100}}, 90, 10)
    assert caught.value.details["field"] == "route_canary_service"


def test_route_patch_replaces_extra_alternate_backends():
    spec = dict(
        ROUTE_SPEC,
        alternateBackends=[
            {"kind": "Service", "name": "c", "weight": 5},
            {"kind": "Service", "name": "d", "weight": 5},
        ],
    )
    patch = route_patch(spec, 90, 10, canary_service="c")
    assert patch["spec"]["alternateBackends"] == [
        {"kind": "Service", "name": "c", "weight": 10}
    ]


def test_route_weights():
    assert route_weights(ROUTE_SPEC) == {
        "control": 100,
        "canary": 0,
        "control_service": "control-svc",
        "canary_service": "canary-svc",
    }


@pytest.mark.parametrize(
    "observed, canary, tolerance, expected",
    [
        (24.0, 25, 1, True),
        (20.0, 25, 5, True),
        (19.9, 25, 5, False),
        (None, 0, 100, False),
        (0.0, 0, 0, True),
    ],
)
def test_split_observed(observed, canary, tolerance, expected):
    assert split_observed(observed, canary, tolerance) is expected

from __future__ import annotations

import copy

import pytest
from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError
from ansible_collections.veritas.chaos.plugins.module_utils._traffic import (
    ConfigMapBackend,
    HTTPRouteBackend,
    RouteBackend,
    configmap_patch,
    configmap_weights,
    route_patch,
    route_weights,
    split_observed,
    traffic_backend,
    traffic_object_name,
    validate_backend_options,
    validate_weights,
)
from fake_kube import _merge as merge  # the API server's JSON merge patch
from traffic_objects import backend_refs, httproute


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


# ---------------------------------------------------------------- the backend interface


CONFIGMAP = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "veritas-traffic-config"},
    "data": {"control": "100", "canary": "0", "other": "x"},
}
ROUTE = {
    "apiVersion": "route.openshift.io/v1",
    "kind": "Route",
    "metadata": {"name": "veritas"},
    "spec": ROUTE_SPEC,
}
HEADER_FILTER = {
    "type": "RequestHeaderModifier",
    "requestHeaderModifier": {"add": [{"name": "x-route", "value": "v1"}]},
}
HTTPROUTE = httproute(
    {
        "matches": [{"path": {"type": "PathPrefix", "value": "/admin"}}],
        "backendRefs": backend_refs(("veritas-admin", None), port=8081),
    },
    {
        "matches": [
            {"path": {"type": "PathPrefix", "value": "/v1"}},
            {"headers": [{"name": "x-tenant", "value": "a"}]},
        ],
        "filters": [HEADER_FILTER],
        "backendRefs": backend_refs(("veritas-control", 100), ("veritas-canary", 0)),
    },
)
HTTPROUTE["spec"]["rules"][1]["backendRefs"][1]["filters"] = [HEADER_FILTER]


@pytest.mark.parametrize(
    "params, backend",
    [
        ({}, ConfigMapBackend("control", "canary")),
        (
            {"backend": "configmap", "control_key": "stable", "canary_key": "preview"},
            ConfigMapBackend("stable", "preview"),
        ),
        (
            {"backend": "route", "route_canary_service": "c"},
            RouteBackend(None, "c"),
        ),
        (
            {
                "backend": "httproute",
                "httproute_control_service": "a",
                "httproute_canary_service": "b",
                "httproute_rule": 2,
            },
            HTTPRouteBackend("a", "b", 2),
        ),
        ({"backend": "httproute"}, HTTPRouteBackend(None, None, 0)),
    ],
)
def test_the_factory_builds_the_backend_the_params_name(params, backend):
    assert traffic_backend(params) == backend


def test_the_factory_refuses_an_unknown_backend():
    with pytest.raises(ChaosError) as caught:
        traffic_backend({"backend": "istio"})
    assert caught.value.details["field"] == "backend"


@pytest.mark.parametrize(
    "backend, path",
    [
        (ConfigMapBackend(), "/api/v1/namespaces/lab/configmaps/x"),
        (RouteBackend(), "/apis/route.openshift.io/v1/namespaces/lab/routes/x"),
        (
            HTTPRouteBackend(),
            "/apis/gateway.networking.k8s.io/v1/namespaces/lab/httproutes/x",
        ),
    ],
)
def test_each_backend_knows_its_path(backend, path):
    assert backend.path("lab", "x") == path


@pytest.mark.parametrize(
    "backend, obj",
    [
        (ConfigMapBackend(), CONFIGMAP),
        (RouteBackend(), ROUTE),
        (HTTPRouteBackend(rule=1), HTTPROUTE),
    ],
    ids=["configmap", "route", "httproute"],
)
def test_every_backend_reads_plans_and_is_idempotent(backend, obj):
    assert backend.weights(obj) == {"control": 100, "canary": 0}
    assert backend.patch(obj, 100, 0) is None
    patch = backend.patch(obj, 75, 25)
    after = merge(obj, patch)
    assert backend.weights(after) == {"control": 75, "canary": 25}
    assert backend.patch(after, 75, 25) is None


def test_configmap_backend_keeps_other_keys():
    patch = ConfigMapBackend().patch(CONFIGMAP, 90, 10)
    assert patch == {"data": {"control": "90", "canary": "10"}}
    assert merge(CONFIGMAP, patch)["data"]["other"] == "x"


def test_route_backend_returns_only_the_two_weights():
    assert RouteBackend().weights(ROUTE) == {"control": 100, "canary": 0}


def test_httproute_patch_sends_every_rule_with_only_the_weights_changed():
    patch = HTTPRouteBackend(rule=1).patch(HTTPROUTE, 90, 10)
    assert list(patch) == ["spec"] and list(patch["spec"]) == ["rules"]
    expected = copy.deepcopy(HTTPROUTE["spec"]["rules"])
    expected[1]["backendRefs"][0]["weight"] = 90
    expected[1]["backendRefs"][1]["weight"] = 10
    assert patch["spec"]["rules"] == expected
    after = merge(HTTPROUTE, patch)
    # matches, filters (of the rule and of a backendRef), the other rule, parentRefs: all kept
    assert after["spec"]["rules"][0] == HTTPROUTE["spec"]["rules"][0]
    assert after["spec"]["rules"][1]["matches"] == HTTPROUTE["spec"]["rules"][1]["matches"]
    assert after["spec"]["rules"][1]["filters"] == [HEADER_FILTER]
    assert after["spec"]["rules"][1]["backendRefs"][1]["filters"] == [HEADER_FILTER]
    assert after["spec"]["parentRefs"] == HTTPROUTE["spec"]["parentRefs"]
    assert HTTPROUTE["spec"]["rules"][1]["backendRefs"][0]["weight"] == 100  # not mutated


def test_httproute_backend_picks_the_backend_refs_by_service_name():
    route = copy.deepcopy(HTTPROUTE)
    refs = route["spec"]["rules"][1]["backendRefs"]
    refs.insert(0, {"name": "veritas-shadow", "port": 8080, "weight": 0})
    backend = HTTPRouteBackend("veritas-control", "veritas-canary", rule=1)
    assert backend.weights(route) == {"control": 100, "canary": 0}
    after = merge(route, backend.patch(route, 80, 20))
    assert [ref["weight"] for ref in after["spec"]["rules"][1]["backendRefs"]] == [
        0,
        80,
        20,
    ]


def test_httproute_backend_swaps_roles_when_the_canary_is_first():
    backend = HTTPRouteBackend(canary_service="veritas-control", rule=1)
    # the control defaults to the first backendRef that is not the canary's
    assert backend.weights(HTTPROUTE) == {"control": 0, "canary": 100}


def test_httproute_backend_defaults_to_the_first_rule():
    route = copy.deepcopy(HTTPROUTE)
    route["spec"]["rules"].reverse()
    assert HTTPRouteBackend().weights(route) == {"control": 100, "canary": 0}


def test_httproute_weight_absent_is_the_api_default():
    route = copy.deepcopy(HTTPROUTE)
    del route["spec"]["rules"][1]["backendRefs"][0]["weight"]
    assert HTTPRouteBackend(rule=1).weights(route) == {"control": 1, "canary": 0}
    # absent is not "already set": the patch writes the weight explicitly
    assert HTTPRouteBackend(rule=1).patch(route, 100, 0) is not None


@pytest.mark.parametrize(
    "backend, field, fragment",
    [
        (
            HTTPRouteBackend(canary_service="veritas-missing", rule=1),
            "httproute_canary_service",
            (
                "'veritas-missing' is not a Service among the backendRefs of spec.rules[1] "
                "of HTTPRoute veritas-runtime: ['veritas-control', 'veritas-canary']"
            ),
        ),
        (
            HTTPRouteBackend(control_service="veritas-missing", rule=1),
            "httproute_control_service",
            "httproute_control_service 'veritas-missing' is not a Service",
        ),
        (
            HTTPRouteBackend("veritas-control", "veritas-control", rule=1),
            "httproute_canary_service",
            "must differ from httproute_control_service",
        ),
        (
            HTTPRouteBackend(rule=2),
            "httproute_rule",
            "index of a rule in spec.rules of HTTPRoute veritas-runtime (it has 2), got 2",
        ),
        (
            HTTPRouteBackend(rule=0),
            "httproute_canary_service",
            "spec.rules[0] of HTTPRoute veritas-runtime has 1 backendRefs",
        ),
    ],
)
def test_httproute_backend_refuses_naming_the_option(backend, field, fragment):
    for call in (
        lambda: backend.weights(HTTPROUTE),
        lambda: backend.patch(HTTPROUTE, 90, 10),
    ):
        with pytest.raises(ChaosError) as caught:
            call()
        assert caught.value.reason == "invalid_input"
        assert caught.value.details["field"] == field
        assert fragment in caught.value.msg


def test_httproute_backend_does_not_take_a_non_service_backend_ref_by_name():
    route = copy.deepcopy(HTTPROUTE)
    route["spec"]["rules"][1]["backendRefs"][1]["kind"] = "ServiceImport"
    route["spec"]["rules"][1]["backendRefs"][1]["group"] = "multicluster.x-k8s.io"
    with pytest.raises(ChaosError) as caught:
        HTTPRouteBackend(canary_service="veritas-canary", rule=1).patch(route, 90, 10)
    assert caught.value.details["field"] == "httproute_canary_service"


@pytest.mark.parametrize(
    "params, field",
    [
        ({"httproute_rule": -1}, "httproute_rule"),
        ({"httproute_canary_service": "Not_A_Service"}, "httproute_canary_service"),
        ({"route_control_service": "a b"}, "route_control_service"),
    ],
)
def test_backend_options_are_validated(params, field):
    with pytest.raises(ChaosError) as caught:
        validate_backend_options(params)
    assert caught.value.details["field"] == field


def test_traffic_object_name_by_backend():
    assert traffic_object_name({"traffic_configmap": "cm"}) == "cm"
    assert (
        traffic_object_name(
            {"backend": "httproute", "traffic_configmap": "cm", "traffic_route": "r"}
        )
        == "r"
    )
    with pytest.raises(ChaosError) as caught:
        traffic_object_name({"backend": "route", "traffic_configmap": "cm"})
    assert caught.value.details["field"] == "traffic_route"
    assert "the name of the Route" in caught.value.msg

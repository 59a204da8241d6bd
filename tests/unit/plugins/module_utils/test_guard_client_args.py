from __future__ import annotations

from unittest import mock

import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible_collections.veritas.chaos.plugins.module_utils import _client
from ansible_collections.veritas.chaos.plugins.module_utils._args import (
    AUTH_ARG_SPEC,
    GUARD_ARG_SPEC,
    build_argument_spec,
)
from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError
from ansible_collections.veritas.chaos.plugins.module_utils._guard import (
    guard_namespace,
    is_production,
    production_refusal,
)
from fake_kube import FakeKube, namespace

GUARD_DEFAULTS = {
    "allow_production": False,
    "production_label": "environment",
    "production_value": "production",
}


def test_is_production():
    assert is_production({"environment": "production"}, "environment", "production")
    assert not is_production({"environment": "staging"}, "environment", "production")
    assert not is_production(None, "environment", "production")


def test_production_refusal_message_names_the_way_out():
    message = production_refusal(
        "prod", {"environment": "production"}, "environment", "production", False
    )
    assert "allow_production=true" in message and "environment=production" in message
    assert (
        production_refusal(
            "prod", {"environment": "production"}, "environment", "production", True
        )
        is None
    )


def test_guard_namespace_refuses_production_and_custom_labels():
    kube = FakeKube()
    kube.put(
        "/api/v1/namespaces/prod", namespace("prod", {"environment": "production"})
    )
    kube.put("/api/v1/namespaces/live", namespace("live", {"tier": "live"}))
    with pytest.raises(ChaosError) as caught:
        guard_namespace(kube, "prod", GUARD_DEFAULTS)
    assert caught.value.reason == "production_refused"
    guard_namespace(kube, "prod", dict(GUARD_DEFAULTS, allow_production=True))
    guard_namespace(kube, "live", GUARD_DEFAULTS)
    with pytest.raises(ChaosError):
        guard_namespace(
            kube,
            "live",
            dict(GUARD_DEFAULTS, production_label="tier", production_value="live"),
        )


def test_guard_namespace_missing():
    with pytest.raises(ChaosError) as caught:
        guard_namespace(FakeKube(), "nope", GUARD_DEFAULTS)
    assert caught.value.reason == "not_found"


def test_auth_options_fall_back_to_k8s_auth_environment(monkeypatch):
    monkeypatch.setenv("K8S_AUTH_KUBECONFIG", "/tmp/kc")
    monkeypatch.setenv("K8S_AUTH_VERIFY_SSL", "no")
    monkeypatch.setenv("K8S_AUTH_API_KEY", "sekrit")
    monkeypatch.setenv("K8S_AUTH_IMPERSONATE_GROUPS", "a,b")
    result = ArgumentSpecValidator(
        build_argument_spec(AUTH_ARG_SPEC, GUARD_ARG_SPEC)
    ).validate({})
    assert result.error_messages == []
    assert result.validated_parameters["kubeconfig"] == "/tmp/kc"
    assert result.validated_parameters["validate_certs"] is False
    assert result.validated_parameters["impersonate_groups"] == ["a", "b"]
    assert "sekrit" in result._no_log_values


def test_explicit_option_wins_over_environment(monkeypatch):
    monkeypatch.setenv("K8S_AUTH_CONTEXT", "from-env")
    result = ArgumentSpecValidator(build_argument_spec(AUTH_ARG_SPEC)).validate(
        {"context": "explicit"}
    )
    assert result.validated_parameters["context"] == "explicit"


def test_build_argument_spec_does_not_share_state():
    spec = build_argument_spec(AUTH_ARG_SPEC, name={"type": "str"})
    spec["context"]["default"] = "mutated"
    assert "default" not in AUTH_ARG_SPEC["context"]


def test_one_cached_client_per_auth_configuration(monkeypatch):
    monkeypatch.setattr(_client, "_CLIENTS", {})
    with (
        mock.patch.object(
            _client,
            "build_configuration",
            side_effect=lambda auth: mock.Mock(name=str(auth)),
        ) as build,
        mock.patch.object(_client.k8s_client, "ApiClient"),
    ):
        first = _client.get_client({"kubeconfig": "/a", "context": "x"})
        again = _client.get_client(
            {"kubeconfig": "/a", "context": "x", "namespace": "ignored"}
        )
        other = _client.get_client({"kubeconfig": "/a", "context": "y"})
    assert first is again
    assert first is not other
    assert build.call_count == 2


def test_strip_volatile_and_objects_differ():
    before = {
        "metadata": {
            "name": "a",
            "resourceVersion": "1",
            "generation": 1,
            "managedFields": [1],
        },
        "data": {"x": "1"},
    }
    after = {
        "metadata": {
            "name": "a",
            "resourceVersion": "2",
            "generation": 2,
            "managedFields": [2],
        },
        "data": {"x": "1"},
    }
    assert not _client.objects_differ(before, after)
    assert _client.objects_differ(before, dict(after, data={"x": "2"}))
    assert _client.strip_volatile(before) == {
        "metadata": {"name": "a"},
        "data": {"x": "1"},
    }
    assert before["metadata"]["resourceVersion"] == "1"


def test_resource_path():
    assert (
        _client.resource_path("v1", "configmaps", "ns", "cm")
        == "/api/v1/namespaces/ns/configmaps/cm"
    )
    assert (
        _client.resource_path("route.openshift.io/v1", "routes", "ns")
        == "/apis/route.openshift.io/v1/namespaces/ns/routes"
    )
    assert (
        _client.resource_path("v1", "namespaces", name="ns") == "/api/v1/namespaces/ns"
    )


def test_api_errors_carry_status_reason_and_server_message():
    error = _client._api_error(
        "PATCH", "/api/v1/x", 422, b'{"message": "spec.weight: Invalid value"}'
    )
    assert error.reason == "invalid_input"
    assert error.details["status"] == 422
    assert "spec.weight: Invalid value" in error.msg


def test_build_configuration_explicit_host_and_token_skip_kubeconfig():
    with mock.patch.object(_client.k8s_config, "load_kube_config") as load:
        configuration = _client.build_configuration(
            {
                "host": "https://api.example:6443/",
                "api_key": "tok",
                "validate_certs": False,
                "kubeconfig": None,
                "context": None,
            }
        )
    load.assert_not_called()
    assert configuration.host == "https://api.example:6443"
    assert configuration.api_key == {"BearerToken": "Bearer tok"}
    assert configuration.verify_ssl is False


def test_build_configuration_bad_kubeconfig_is_a_chaos_error(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(ChaosError) as caught:
        _client.build_configuration({"kubeconfig": str(missing)})
    assert caught.value.reason == "auth"

# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A thin Kubernetes REST client: one cached client per auth configuration.

It speaks plain JSON over the kubernetes library's transport (auth, TLS, proxies,
kubeconfig loading) without API discovery or model deserialisation, which is where
a generic client spends its time.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from typing import Any

from ansible_collections.veritas.chaos.plugins.module_utils._args import auth_params
from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError

try:
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config

    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR: str | None = None
except ImportError as import_error:  # pragma: no cover - reported by the module
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR = str(import_error)

FIELD_MANAGER = "veritas.chaos"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"

# Fields that change on every write and say nothing about the desired state.
VOLATILE_METADATA = ("resourceVersion", "generation", "managedFields")

_CLIENTS: dict[str, KubeClient] = {}


def resource_path(
    api_version: str, plural: str, namespace: str | None = None, name: str | None = None
) -> str:
    """The REST path of a collection or object, e.g. ('v1', 'configmaps', 'ns', 'cm')."""
    prefix = "/api/v1" if api_version == "v1" else "/apis/" + api_version
    parts = [prefix]
    if namespace:
        parts.append("namespaces/" + namespace)
    parts.append(plural)
    if name:
        parts.append(name)
    return "/".join(parts)


def strip_volatile(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    """A copy of obj without the metadata that changes on every write (for diff and changed)."""
    if obj is None:
        return None
    clean = copy.deepcopy(obj)
    metadata = clean.get("metadata") or {}
    for key in VOLATILE_METADATA:
        metadata.pop(key, None)
    return clean


def objects_differ(before: dict[str, Any] | None, after: dict[str, Any] | None) -> bool:
    return strip_volatile(before) != strip_volatile(after)


def _auth_cache_key(auth: dict[str, Any]) -> str:
    text = json.dumps(auth, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _server_message(status: int | None, body: Any) -> str:
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    try:
        return str(json.loads(body).get("message") or body)
    except (TypeError, ValueError, AttributeError):
        return str(body or f"HTTP {status}")


def _api_error(method: str, path: str, status: int | None, body: Any) -> ChaosError:
    reasons = {
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        409: "conflict",
        422: "invalid_input",
    }
    message = _server_message(status, body)
    return ChaosError(
        f"Kubernetes API {method} {path} failed (HTTP {status}): {message}",
        reason=reasons.get(status or 0, "api_error"),
        status=status,
    )


def build_configuration(auth: dict[str, Any]) -> Any:
    """A kubernetes Configuration from auth options (kubeconfig, in-cluster, or explicit)."""
    if not HAS_KUBERNETES:
        raise ChaosError(
            f"The kubernetes Python library is required: {KUBERNETES_IMPORT_ERROR}",
            reason="missing_library",
        )
    configuration = k8s_client.Configuration()
    explicit = bool(auth.get("host")) and bool(
        auth.get("api_key") or (auth.get("client_cert") and auth.get("client_key"))
    )
    try:
        if not explicit:
            kubeconfig = auth.get("kubeconfig")
            context = auth.get("context")
            if isinstance(kubeconfig, dict):
                k8s_config.load_kube_config_from_dict(
                    config_dict=kubeconfig,
                    context=context,
                    client_configuration=configuration,
                    persist_config=False,
                )
            elif kubeconfig or context:
                config_file = (
                    os.path.expanduser(kubeconfig)
                    if isinstance(kubeconfig, str)
                    else None
                )
                k8s_config.load_kube_config(
                    config_file=config_file,
                    context=context,
                    client_configuration=configuration,
                    persist_config=False,
                )
            else:
                try:
                    k8s_config.load_incluster_config(client_configuration=configuration)
                except k8s_config.ConfigException:
                    k8s_config.load_kube_config(
                        client_configuration=configuration, persist_config=False
                    )
    except (k8s_config.ConfigException, OSError, ValueError, TypeError) as exc:
        raise ChaosError(
            f"Could not load the Kubernetes configuration: {exc}", reason="auth"
        ) from exc

    if auth.get("host"):
        configuration.host = auth["host"].rstrip("/")
    if auth.get("api_key"):
        configuration.api_key = {"BearerToken": "Bearer {}".format(auth["api_key"])}
    if auth.get("validate_certs") is not None:
        configuration.verify_ssl = auth["validate_certs"]
    if auth.get("ca_cert"):
        configuration.ssl_ca_cert = auth["ca_cert"]
    if auth.get("client_cert"):
        configuration.cert_file = auth["client_cert"]
    if auth.get("client_key"):
        configuration.key_file = auth["client_key"]
    if auth.get("proxy"):
        configuration.proxy = auth["proxy"]
    if auth.get("no_proxy"):
        configuration.no_proxy = auth["no_proxy"]
    return configuration


class KubeClient:
    """JSON in, JSON out; every failure is a ChaosError naming the call and the server's message."""

    def __init__(
        self,
        api_client: Any,
        impersonate_user: str | None = None,
        impersonate_groups: list[str] | None = None,
    ) -> None:
        self.api_client = api_client
        self.headers: dict[str, Any] = {}
        if impersonate_user:
            self.headers["Impersonate-User"] = impersonate_user
        if impersonate_groups:
            self.headers["Impersonate-Group"] = list(impersonate_groups)
        self._core_v1: Any = None

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: list[tuple[str, Any]] | None = None,
        content_type: str = "application/json",
        timeout: float | None = 30,
    ) -> dict[str, Any]:
        header_params = dict(self.headers)
        header_params["Accept"] = "application/json"
        header_params["Content-Type"] = content_type
        try:
            request = self.api_client.param_serialize(
                method,
                path,
                query_params=list(query or []),
                header_params=header_params,
                body=body,
                auth_settings=["BearerToken"],
            )
            response = self.api_client.call_api(*request, _request_timeout=timeout)
            data = response.read()
        except ChaosError:
            raise
        except Exception as exc:  # transport errors: connection refused, TLS, timeouts
            raise ChaosError(
                f"Kubernetes API {method} {path} failed: {exc}", reason="api_error"
            ) from exc
        if not 200 <= response.status <= 299:
            raise _api_error(method, path, response.status, data)
        if not data:
            return {}
        return json.loads(data)

    @staticmethod
    def _write_query(dry_run: bool) -> list[tuple[str, Any]]:
        query: list[tuple[str, Any]] = [("fieldManager", FIELD_MANAGER)]
        if dry_run:
            query.append(("dryRun", "All"))
        return query

    def get(self, path: str, missing_ok: bool = False) -> dict[str, Any] | None:
        try:
            return self.request("GET", path)
        except ChaosError as exc:
            if missing_ok and exc.reason == "not_found":
                return None
            raise

    def list(
        self,
        path: str,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        query: list[tuple[str, Any]] = []
        if label_selector:
            query.append(("labelSelector", label_selector))
        if field_selector:
            query.append(("fieldSelector", field_selector))
        return list(self.request("GET", path, query=query).get("items") or [])

    def create(
        self, path: str, body: dict[str, Any], dry_run: bool = False
    ) -> dict[str, Any]:
        return self.request("POST", path, body=body, query=self._write_query(dry_run))

    def replace(
        self, path: str, body: dict[str, Any], dry_run: bool = False
    ) -> dict[str, Any]:
        return self.request("PUT", path, body=body, query=self._write_query(dry_run))

    def patch(
        self,
        path: str,
        body: Any,
        dry_run: bool = False,
        content_type: str = MERGE_PATCH,
    ) -> dict[str, Any]:
        return self.request(
            "PATCH",
            path,
            body=body,
            query=self._write_query(dry_run),
            content_type=content_type,
        )

    def delete(
        self,
        path: str,
        dry_run: bool = False,
        grace_period_seconds: int | None = None,
        preconditions: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "propagationPolicy": "Background",
        }
        if dry_run:
            body["dryRun"] = ["All"]
        if grace_period_seconds is not None:
            body["gracePeriodSeconds"] = grace_period_seconds
        if preconditions:
            body["preconditions"] = preconditions
        query: list[tuple[str, Any]] = [("dryRun", "All")] if dry_run else []
        return self.request("DELETE", path, body=body, query=query)

    @property
    def core_v1(self) -> Any:
        """The generated CoreV1Api on the same connection (for the exec stream)."""
        if self._core_v1 is None:
            self._core_v1 = k8s_client.CoreV1Api(self.api_client)
        return self._core_v1


def get_client(params: dict[str, Any]) -> KubeClient:
    """The client for the auth options in params, created once per auth configuration."""
    auth = auth_params(params)
    key = _auth_cache_key(auth)
    if key not in _CLIENTS:
        configuration = build_configuration(auth)
        api_client = k8s_client.ApiClient(configuration)
        api_client.user_agent = "veritas.chaos/1.0.0"
        _CLIENTS[key] = KubeClient(
            api_client, auth.get("impersonate_user"), auth.get("impersonate_groups")
        )
    return _CLIENTS[key]

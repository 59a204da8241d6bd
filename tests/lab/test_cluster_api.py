"""Lab part 1: API semantics the modules rely on (patches, conflicts, exec, RBAC)."""

from __future__ import annotations

import pytest
from conftest import REPO_ROOT, wait_for
from kubernetes import client
from kubernetes.client.rest import ApiException
from test_cluster_workloads import deployment, running_pods


def test_strategic_merge_patch_of_a_service_selector_changes_only_the_named_key(core, namespace):
    core.create_namespaced_service(namespace, client.V1Service(
        metadata=client.V1ObjectMeta(name="veritas-runtime"),
        spec=client.V1ServiceSpec(selector={"app": "veritas", "deployment": "blue"},
                                  ports=[client.V1ServicePort(port=80, target_port=8080)]),
    ))
    # The runbook's `kubectl patch service ... {"spec":{"selector":{"deployment":"green"}}}`.
    patched = core.patch_namespaced_service(
        "veritas-runtime", namespace, {"spec": {"selector": {"deployment": "green"}}})
    assert patched.spec.selector == {"app": "veritas", "deployment": "green"}
    # A null value removes a key in a strategic-merge patch of a map.
    patched = core.patch_namespaced_service("veritas-runtime", namespace, {"spec": {"selector": {"app": None}}})
    assert patched.spec.selector == {"deployment": "green"}


def test_merge_patch_of_a_configmap_sets_and_removes_keys(core, api_client, namespace):
    core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="veritas-traffic-config"),
        data={"control": "90", "canary": "10", "note": "x"}))
    # Force application/merge-patch+json (RFC 7386) rather than the client's default.
    api_client.set_default_header("Content-Type", "application/merge-patch+json")
    try:
        patched = core.patch_namespaced_config_map(
            "veritas-traffic-config", namespace, {"data": {"control": "100", "canary": "0", "note": None}})
    finally:
        api_client.default_headers.pop("Content-Type", None)
    assert patched.data == {"control": "100", "canary": "0"}


def test_update_with_a_stale_resource_version_gets_409(core, namespace):
    cm = core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="rv"), data={"k": "1"}))
    stale = cm.metadata.resource_version
    core.patch_namespaced_config_map("rv", namespace, {"data": {"k": "2"}})
    cm.data = {"k": "3"}
    cm.metadata.resource_version = stale
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_config_map("rv", namespace, cm)
    assert err.value.status == 409
    assert core.read_namespaced_config_map("rv", namespace).data == {"k": "2"}


def test_kubectl_exec_runs_the_mapped_local_command(core, apps, namespace, kubectl):
    apps.create_namespaced_deployment(namespace, deployment("exec", 1, {"app": "exec"}))
    pod = wait_for(lambda: (p := running_pods(core, namespace, "app=exec")) and p[0], what="Running pod")
    out = kubectl("exec", "-n", namespace, pod.metadata.name, "--",
                  "sh", "-c", 'echo "$VERITAS_LAB_EXEC"; pwd; echo "$((6 * 7))"').stdout.split()
    assert out == ["kwok-local", str(REPO_ROOT / "lab" / "kwok" / "exec-root"), "42"]
    failed = kubectl("exec", "-n", namespace, pod.metadata.name, "--", "sh", "-c", "exit 3", check=False)
    # kwok reports the local command's exit status in the exec error; kubectl exits 1.
    assert failed.returncode != 0
    assert "exit status 3" in failed.stderr


def token_client(api_client, core, namespace: str, sa: str) -> client.ApiClient:
    token = core.create_namespaced_service_account_token(
        sa, namespace, client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=600))).status.token
    cfg = client.Configuration()
    base = api_client.configuration
    cfg.host, cfg.ssl_ca_cert, cfg.verify_ssl = base.host, base.ssl_ca_cert, base.verify_ssl
    cfg.api_key = {"authorization": f"Bearer {token}"}
    return client.ApiClient(cfg)


def test_a_serviceaccount_gets_what_its_role_grants_and_nothing_else(core, api_client, namespace):
    rbac = client.RbacAuthorizationV1Api(api_client)
    other = f"{namespace}-other"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=other)))
    try:
        core.create_namespaced_service_account(namespace, client.V1ServiceAccount(
            metadata=client.V1ObjectMeta(name="gameday")))
        rbac.create_namespaced_role(namespace, client.V1Role(
            metadata=client.V1ObjectMeta(name="traffic"),
            rules=[client.V1PolicyRule(api_groups=[""], resources=["configmaps"],
                                       verbs=["get", "list", "patch"])]))
        rbac.create_namespaced_role_binding(namespace, client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="traffic"),
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="traffic"),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name="gameday", namespace=namespace)]))
        core.create_namespaced_config_map(namespace, client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="veritas-traffic-config"), data={"control": "90"}))
        core.create_namespaced_config_map(other, client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="veritas-traffic-config"), data={"control": "90"}))

        as_sa = client.CoreV1Api(token_client(api_client, core, namespace, "gameday"))
        # RBAC caches refresh quickly but not instantly after the binding is created.
        wait_for(lambda: _allowed(lambda: as_sa.read_namespaced_config_map("veritas-traffic-config", namespace)),
                 what="the Role's grant to take effect")
        as_sa.patch_namespaced_config_map("veritas-traffic-config", namespace, {"data": {"control": "100"}})

        for denied in (
            lambda: as_sa.read_namespaced_config_map("veritas-traffic-config", other),
            lambda: as_sa.list_namespaced_secret(namespace),
            lambda: as_sa.delete_namespaced_config_map("veritas-traffic-config", namespace),
        ):
            with pytest.raises(ApiException) as err:
                denied()
            assert err.value.status == 403
        assert core.read_namespaced_config_map("veritas-traffic-config", other).data == {"control": "90"}
    finally:
        core.delete_namespace(other)


def _allowed(call) -> bool:
    try:
        call()
        return True
    except ApiException as err:
        if err.status == 403:
            return False
        raise

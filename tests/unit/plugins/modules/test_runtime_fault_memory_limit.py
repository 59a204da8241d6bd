"""runtime_fault method memory_limit: the Deployments' memory limit lowered, confirmed by OOMKills,
put back from the annotation. The fake cluster below plays the Deployment controller and the kubelet
(a container needs RUNTIME_NEEDS of memory; below that limit it is OOMKilled and crash-loops)."""

from __future__ import annotations

import copy
import hashlib
import json
import time
from typing import Any

import pytest
from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError
from ansible_collections.veritas.chaos.plugins.module_utils._ledger import (
    Ledger,
    ledger_name,
    restore_ledger,
)
from ansible_collections.veritas.chaos.plugins.module_utils._memory_limit import (
    ANNOTATION,
    check_memory_limit,
    desired_memory,
    is_below,
    parse_quantity,
    same_quantity,
)
from ansible_collections.veritas.chaos.plugins.modules import runtime_fault
from fake_kube import FakeKube, namespace, pod

NS = "lab"
PODS = f"/api/v1/namespaces/{NS}/pods"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NS}/deployments"
REPLICASETS = f"/apis/apps/v1/namespaces/{NS}/replicasets"
CANARY = f"{DEPLOYMENTS}/veritas-canary"
CONTROL = f"{DEPLOYMENTS}/veritas-control"
RUNTIME_NEEDS = 64 * 2**20  # bytes the fake runtime container uses
REAL_SLEEP = time.sleep

BASE = {
    "namespace": NS,
    "label_selector": "variant=canary",
    "fault": "resource_exhaustion",
    "resource": "memory",
    "method": "memory_limit",
    "confirm_timeout": 5,
}
LOWER = dict(BASE, memory_limit="16Mi")
RESTORE = dict(BASE, state="absent")


class ClusterKube(FakeKube):
    """FakeKube with a Deployment controller and a kubelet, one step per reconcile()."""

    def __init__(self) -> None:
        super().__init__()
        self.rollouts = True

    def patch(self, path, body, dry_run=False, content_type=""):
        before = copy.deepcopy(self.objects.get(path))
        result = super().patch(path, body, dry_run=dry_run, content_type=content_type)
        if (
            not dry_run
            and path.startswith(DEPLOYMENTS + "/")
            and before is not None
            and before.get("spec") != self.objects[path].get("spec")
        ):
            self.objects[path]["metadata"]["generation"] += 1
        return result

    def deployments(self) -> list[str]:
        return [p for p in sorted(self.objects) if p.startswith(DEPLOYMENTS + "/")]

    def pods_of(self, replicaset: str) -> list[str]:
        return [
            path
            for path in sorted(self.objects)
            if path.startswith(PODS + "/")
            and (self.objects[path]["metadata"].get("ownerReferences") or [{}])[0].get(
                "name"
            )
            == replicaset
        ]

    def reconcile(self) -> None:
        if not self.rollouts:
            return
        for path in self.deployments():
            deployment = self.objects[path]
            name = deployment["metadata"]["name"]
            template = deployment["spec"]["template"]
            digest = hashlib.sha256(
                json.dumps(template, sort_keys=True).encode()
            ).hexdigest()[:6]
            current = f"{name}-{digest}"
            if f"{REPLICASETS}/{current}" not in self.objects:
                self.put(
                    f"{REPLICASETS}/{current}",
                    {
                        "kind": "ReplicaSet",
                        "metadata": {
                            "name": current,
                            "namespace": NS,
                            "ownerReferences": [
                                {"kind": "Deployment", "name": name, "controller": True}
                            ],
                        },
                    },
                )
            replicas = deployment["spec"].get("replicas", 1)
            for index in range(replicas):
                pod_path = f"{PODS}/{current}-{index}"
                if pod_path not in self.objects:
                    self.put(
                        pod_path, self.new_pod(f"{current}-{index}", template, current)
                    )
            new_ready = all(
                self.objects[p]["status"]["conditions"][0]["status"] == "True"
                for p in self.pods_of(current)
            )
            others = [
                rs
                for rs in sorted(self.objects)
                if rs.startswith(REPLICASETS + "/")
                and rs != f"{REPLICASETS}/{current}"
                and self.objects[rs]["metadata"]["ownerReferences"][0]["name"] == name
            ]
            if (
                new_ready
            ):  # maxUnavailable 0: the old pods go once the new ones are ready
                for rs in others:
                    for p in self.pods_of(rs.rsplit("/", 1)[1]):
                        del self.objects[p]
            all_pods = [
                self.objects[p]
                for rs in [f"{REPLICASETS}/{current}", *others]
                for p in self.pods_of(rs.rsplit("/", 1)[1])
            ]
            deployment["status"] = {
                "observedGeneration": deployment["metadata"]["generation"],
                "replicas": len(all_pods),
                "updatedReplicas": len(self.pods_of(current)),
                "availableReplicas": sum(
                    p["status"]["conditions"][0]["status"] == "True" for p in all_pods
                ),
            }

    @staticmethod
    def new_pod(name: str, template: dict[str, Any], replicaset: str) -> dict[str, Any]:
        obj = pod(name, dict(template["metadata"]["labels"]))
        obj["metadata"]["namespace"] = NS
        obj["metadata"]["ownerReferences"] = [
            {"kind": "ReplicaSet", "name": replicaset, "controller": True}
        ]
        obj["spec"]["containers"] = copy.deepcopy(template["spec"]["containers"])
        statuses, ready = [], True
        for container in obj["spec"]["containers"]:
            limit = ((container.get("resources") or {}).get("limits") or {}).get(
                "memory"
            )
            if limit is not None and parse_quantity(limit) < RUNTIME_NEEDS:
                ready = False
                statuses.append(
                    {
                        "name": container["name"],
                        "restartCount": 3,
                        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                        "lastState": {
                            "terminated": {"reason": "OOMKilled", "exitCode": 137}
                        },
                    }
                )
            else:
                statuses.append(
                    {
                        "name": container["name"],
                        "restartCount": 0,
                        "state": {"running": {}},
                    }
                )
        obj["status"]["containerStatuses"] = statuses
        obj["status"]["conditions"] = [
            {"type": "Ready", "status": "True" if ready else "False"}
        ]
        return obj


def deployment(
    name: str, variant: str, replicas: int, containers: list[dict[str, Any]]
):
    labels = {"app": "veritas", "variant": variant}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": "uid-" + name,
            "generation": 1,
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "strategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": containers},
            },
        },
    }


CANARY_CONTAINERS = [
    {
        "name": "log-shipper",
        "image": "fluent-bit:3",
        "resources": {"limits": {"memory": "128Mi"}},
    },
    {
        "name": "runtime",
        "image": "veritas/spark-runtime:lab",
        "resources": {
            "requests": {"cpu": "100m", "memory": "256Mi", "nvidia.com/gpu": "1"},
            "limits": {"nvidia.com/gpu": "1"},
        },
    },
]
CONTROL_CONTAINERS = [
    {
        "name": "server",
        "image": "veritas/spark-runtime:lab",
        "resources": {"requests": {"memory": "8Mi"}, "limits": {"memory": "1Gi"}},
    }
]


@pytest.fixture
def cluster(monkeypatch):
    kube = ClusterKube()
    kube.put(f"/api/v1/namespaces/{NS}", namespace(NS, {"environment": "lab"}))
    kube.put(
        CANARY,
        deployment("veritas-canary", "canary", 2, copy.deepcopy(CANARY_CONTAINERS)),
    )
    kube.put(
        CONTROL,
        deployment("veritas-control", "control", 3, copy.deepcopy(CONTROL_CONTAINERS)),
    )
    kube.put(PODS + "/bare", pod("bare", {"app": "veritas", "variant": "bare"}))
    kube.reconcile()
    kube.calls.clear()

    def sleep(seconds: float) -> None:
        kube.reconcile()
        REAL_SLEEP(0.001)

    monkeypatch.setattr(runtime_fault.time, "sleep", sleep)
    return kube


def template_containers(kube: ClusterKube, path: str) -> list[dict[str, Any]]:
    return kube.objects[path]["spec"]["template"]["spec"]["containers"]


def record(kube: ClusterKube, path: str) -> dict[str, Any] | None:
    text = (kube.objects[path]["metadata"].get("annotations") or {}).get(ANNOTATION)
    return None if text is None else json.loads(text)


def deployment_writes(kube: ClusterKube) -> list[tuple[str, str, bool]]:
    return [call for call in kube.writes if call[1].startswith(DEPLOYMENTS)]


def test_present_lowers_the_runtime_container_records_the_annotation_and_confirms_oom(
    cluster, run_module
):
    before = time.time()
    result = run_module(runtime_fault, LOWER, cluster)
    assert result["changed"] and not result.get("failed"), result
    log_shipper, runtime = template_containers(cluster, CANARY)
    assert (
        log_shipper == CANARY_CONTAINERS[0]
    )  # not the first container: the one named runtime
    assert runtime["resources"] == {
        "requests": {"cpu": "100m", "memory": "16Mi", "nvidia.com/gpu": "1"},
        "limits": {"nvidia.com/gpu": "1", "memory": "16Mi"},
    }
    assert record(cluster, CANARY) == {
        "container": "runtime",
        "limits_memory": None,
        "requests_memory": "256Mi",
    }
    assert template_containers(cluster, CONTROL) == CONTROL_CONTAINERS
    assert deployment_writes(cluster) == [("PATCH", CANARY, False)]

    assert result["fault"] == {
        "name": "resource_exhaustion",
        "target": "resources.limits.memory",
        "method": "memory_limit",
        "state": "present",
        "params": {"memory_limit": "16Mi"},
    }
    assert result["matched"] == 2 and result["pods"] == [] and result["commands"] == []
    (entry,) = result["deployments"]
    assert entry["name"] == "veritas-canary" and entry["container"] == "runtime"
    assert entry["action"] == "set" and entry["confirmed"] is True
    assert entry["before"] == {"limits_memory": None, "requests_memory": "256Mi"}
    assert entry["after"] == {"limits_memory": "16Mi", "requests_memory": "16Mi"}
    assert entry["replicas"] == 2 and len(entry["selected_pods"]) == 2
    assert entry["oom_pods"] and all(
        item["reason"] in ("OOMKilled", "CrashLoopBackOff")
        for item in entry["oom_pods"]
    )
    confirmation = result["confirmation"]
    assert confirmation["confirmed"] is True
    assert before <= confirmation["applied_at"] <= time.time() + 0.001
    assert confirmation["readback_seconds"] >= 0 and confirmation["warnings"] == []

    cluster.calls.clear()
    again = run_module(runtime_fault, LOWER, cluster)
    assert not again["changed"] and not again.get("failed"), again
    assert cluster.writes == []
    assert again["deployments"][0]["action"] == "none"
    assert again["confirmation"]["applied_at"] is None


def test_request_is_lowered_only_when_larger_and_the_first_container_is_the_default(
    cluster, run_module
):
    result = run_module(
        runtime_fault,
        dict(LOWER, label_selector="variant=control", memory_limit="32Mi"),
        cluster,
    )
    assert result["changed"] and not result.get("failed"), result
    (server,) = template_containers(cluster, CONTROL)
    assert server["resources"] == {
        "requests": {"memory": "8Mi"},
        "limits": {"memory": "32Mi"},
    }
    assert record(cluster, CONTROL) == {
        "container": "server",
        "limits_memory": "1Gi",
        "requests_memory": "8Mi",
    }
    assert result["deployments"][0]["after"] == {
        "limits_memory": "32Mi",
        "requests_memory": "8Mi",
    }


def test_absent_restores_exactly_including_absent_fields(cluster, run_module):
    run_module(runtime_fault, LOWER, cluster)
    result = run_module(runtime_fault, RESTORE, cluster, diff=True)
    assert result["changed"] and not result.get("failed"), result
    assert template_containers(cluster, CANARY) == CANARY_CONTAINERS
    assert (
        "memory" not in template_containers(cluster, CANARY)[1]["resources"]["limits"]
    )
    assert ANNOTATION not in (
        cluster.objects[CANARY]["metadata"].get("annotations") or {}
    )
    (entry,) = result["deployments"]
    assert entry["action"] == "clear" and entry["confirmed"] is True
    assert entry["after"] == {"limits_memory": None, "requests_memory": "256Mi"}
    assert result["diff"]["before"]["deployments"]["veritas-canary"] == {
        "container": "runtime",
        "limits_memory": "16Mi",
        "requests_memory": "16Mi",
    }
    # The rollout was waited for: only the pods of the restored template are left.
    status = cluster.objects[CANARY]["status"]
    assert (
        status["updatedReplicas"]
        == status["replicas"]
        == status["availableReplicas"]
        == 2
    )

    cluster.calls.clear()
    again = run_module(runtime_fault, RESTORE, cluster)
    assert not again["changed"] and not again.get("failed") and cluster.writes == []


def test_a_second_limit_keeps_the_original_record_and_absent_puts_back_the_original(
    cluster, run_module
):
    run_module(runtime_fault, LOWER, cluster)
    update = run_module(runtime_fault, dict(LOWER, memory_limit="32Mi"), cluster)
    assert update["changed"] and update["deployments"][0]["action"] == "update"
    runtime = template_containers(cluster, CANARY)[1]
    assert runtime["resources"]["limits"]["memory"] == "32Mi"
    assert runtime["resources"]["requests"]["memory"] == "32Mi"
    assert record(cluster, CANARY)["requests_memory"] == "256Mi"
    run_module(runtime_fault, RESTORE, cluster)
    assert template_containers(cluster, CANARY) == CANARY_CONTAINERS


@pytest.mark.parametrize(
    ("extra", "field", "text"),
    [
        (
            {"memory_limit": "16MB"},
            "memory_limit",
            "must be a Kubernetes quantity such as 16Mi",
        ),
        ({"memory_limit": "lots"}, "memory_limit", "must be a Kubernetes quantity"),
        ({"memory_limit": "-16Mi"}, "memory_limit", "from 1 byte"),
        ({"memory_limit": "100m"}, "memory_limit", "from 1 byte"),
        (
            {"memory_limit": None},
            "memory_limit",
            "memory_limit is required with method memory_limit",
        ),
        (
            {"resource": "disk"},
            "resource",
            "method memory_limit supports resource memory only, not disk",
        ),
        (
            {"fault": "latency", "latency_ms": 100},
            "method",
            "method memory_limit supports the faults resource_exhaustion, not latency",
        ),
        ({"pod_count": 1}, "pod_count", "changes whole Deployments"),
        ({"pod_percent": 50}, "pod_percent", "changes whole Deployments"),
        (
            {"method": "runtime_cli"},
            "memory_limit",
            "memory_limit applies to method memory_limit only",
        ),
    ],
)
def test_bad_input_names_the_field_and_changes_nothing(
    cluster, run_module, extra, field, text
):
    result = run_module(runtime_fault, dict(LOWER, **extra), cluster)
    assert result["failed"] and result["reason"] == "invalid_input", result
    assert result["field"] == field and text in result["msg"], result
    assert cluster.writes == []


def test_pods_without_a_deployment_and_the_blast_radius_cap_are_refused(
    cluster, run_module
):
    bare = run_module(runtime_fault, dict(LOWER, label_selector="app=veritas"), cluster)
    assert bare["failed"] and bare["reason"] == "invalid_input"
    assert bare["field"] == "label_selector" and "bare" in bare["msg"]
    capped = run_module(runtime_fault, dict(LOWER, max_count=1), cluster)
    assert capped["failed"] and capped["reason"] == "blast_radius"
    assert (
        "exceeds max_count=1" in capped["msg"]
        and "Nothing was changed" in capped["msg"]
    )
    assert cluster.writes == []
    allowed = run_module(
        runtime_fault, dict(LOWER, max_count=2, max_percent=100), cluster
    )
    assert allowed["changed"] and not allowed.get("failed"), allowed


def test_a_limit_that_does_not_take_fails_not_confirmed_and_stays(cluster, run_module):
    result = run_module(
        runtime_fault, dict(LOWER, memory_limit="512Mi", confirm_timeout=1), cluster
    )
    assert result["failed"] and result["reason"] == "not_confirmed", result
    assert result["changed"] is True and result["unconfirmed"] == ["veritas-canary"]
    assert "run state=absent" in result["msg"] and "512Mi" in result["msg"]
    assert record(cluster, CANARY) is not None
    assert (
        template_containers(cluster, CANARY)[1]["resources"]["limits"]["memory"]
        == "512Mi"
    )


def test_check_mode_is_a_dry_run_with_a_diff(cluster, run_module):
    original = copy.deepcopy(cluster.objects[CANARY])
    result = run_module(runtime_fault, LOWER, cluster, check_mode=True, diff=True)
    assert result["changed"] and not result.get("failed"), result
    assert deployment_writes(cluster) == [("PATCH", CANARY, True)]
    assert cluster.objects[CANARY] == original
    assert result["confirmation"]["confirmed"] is False
    assert result["deployments"][0]["confirmed"] is None
    assert result["diff"] == {
        "before": {
            "deployments": {
                "veritas-canary": {
                    "container": "runtime",
                    "limits_memory": None,
                    "requests_memory": "256Mi",
                }
            }
        },
        "after": {
            "deployments": {
                "veritas-canary": {
                    "container": "runtime",
                    "limits_memory": "16Mi",
                    "requests_memory": "16Mi",
                }
            }
        },
    }
    run_module(runtime_fault, LOWER, cluster)
    cluster.calls.clear()
    lowered = copy.deepcopy(cluster.objects[CANARY])
    gone = run_module(runtime_fault, RESTORE, cluster, check_mode=True)
    assert gone["changed"] and cluster.objects[CANARY] == lowered
    assert all(dry for _method, _path, dry in cluster.writes)


def test_duration_holds_then_puts_the_limits_back(cluster, run_module):
    result = run_module(runtime_fault, dict(LOWER, duration=2), cluster)
    assert result["changed"] and result["restored"] and not result.get("failed"), result
    assert result["deployments"][0]["confirmed"] is True
    assert template_containers(cluster, CANARY) == CANARY_CONTAINERS
    assert record(cluster, CANARY) is None


def test_the_ledger_records_the_patch_and_restores_it(cluster, run_module):
    ledger = Ledger(cluster, NS, ledger_name("run-1"))
    ledger.open("run-1", holder="run-1", topology="canary", purpose="test", lock="lock")
    result = run_module(runtime_fault, dict(LOWER, ledger=ledger.ref), cluster)
    assert result["changed"] and not result.get("failed"), result
    (entry,) = [e for e in ledger.entries() if e["type"] == "patch"]
    assert entry["path"] == CANARY and entry["name"] == "veritas-canary"
    fields = {".".join(field["path"]): field for field in entry["fields"]}
    assert fields["spec.template.spec.containers"]["value"] == CANARY_CONTAINERS
    assert fields[f"metadata.annotations.{ANNOTATION}"]["present"] is False
    restore_ledger(ledger, lambda *args: None)
    assert template_containers(cluster, CANARY) == CANARY_CONTAINERS
    assert record(cluster, CANARY) is None


def test_quantities():
    assert parse_quantity("16Mi") == 16 * 2**20
    assert parse_quantity("64M") == 64 * 10**6
    assert parse_quantity("1.5Gi") == 1.5 * 2**30
    assert parse_quantity("128e6") == 128 * 10**6
    assert parse_quantity("16MB") is None and parse_quantity(" 16Mi") is None
    assert same_quantity("16384Ki", "16Mi") and not same_quantity("16Mi", None)
    assert is_below("16Mi", "1Gi") and not is_below("1Gi", "16Mi")
    assert not is_below("16Mi", "16384Ki")
    assert check_memory_limit("134217728") == "134217728"
    with pytest.raises(ChaosError) as caught:
        check_memory_limit("0")
    assert caught.value.details["field"] == "memory_limit"
    assert desired_memory(
        {"limits_memory": "1Gi", "requests_memory": None}, "16Mi"
    ) == {
        "limits_memory": "16Mi",
        "requests_memory": None,
    }
    assert desired_memory(
        {"limits_memory": None, "requests_memory": "16Mi"}, "16Mi"
    ) == {
        "limits_memory": "16Mi",
        "requests_memory": "16Mi",
    }


def test_prometheus_confirmation_works_as_for_the_other_methods(
    cluster, run_module, monkeypatch
):
    values = iter([[], [{"labels": {"pod": "veritas-canary-x"}, "value": 1.0}]])
    monkeypatch.setattr(runtime_fault, "instant_query", lambda *a, **k: next(values))
    prom = {
        "url": "http://prometheus:9090",
        "query": "increase(kube_pod_container_status_restarts_total[1m])",
        "threshold": 0,
        "interval": 0.01,
        "timeout": 5,
    }
    result = run_module(
        runtime_fault, dict(LOWER, confirm_with="prometheus", prometheus=prom), cluster
    )
    assert result["changed"] and not result.get("failed"), result
    outcome = result["confirmation"]["prometheus"]
    assert outcome["confirmed"] and outcome["checks"] == 2


def test_absent_finds_an_annotated_deployment_without_pods_by_its_template_labels(
    cluster, run_module
):
    run_module(runtime_fault, LOWER, cluster)
    for path in [p for p in cluster.objects if p.startswith(PODS + "/veritas-canary")]:
        del cluster.objects[path]
    cluster.rollouts = False
    cluster.objects[CANARY]["status"] = {
        "observedGeneration": 3,
        "replicas": 2,
        "updatedReplicas": 2,
        "availableReplicas": 2,
    }
    result = run_module(runtime_fault, RESTORE, cluster)
    assert result["changed"] and not result.get("failed"), result
    assert result["matched"] == 0
    assert [d["name"] for d in result["deployments"]] == ["veritas-canary"]
    assert template_containers(cluster, CANARY) == CANARY_CONTAINERS
    assert record(cluster, CANARY) is None

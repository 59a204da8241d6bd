# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""runtime_fault's object methods behind FaultBackend: network_policy and memory_limit."""

from __future__ import annotations

from typing import Any

from ansible_collections.veritas.chaos.plugins.module_utils._blast import (
    enforce_blast_radius,
    is_candidate,
)
from ansible_collections.veritas.chaos.plugins.module_utils._client import (
    KubeClient,
    resource_path,
    strip_volatile,
)
from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError
from ansible_collections.veritas.chaos.plugins.module_utils._fault_backends import (
    Change,
    FaultBackend,
    Run,
    already_changed,
)
from ansible_collections.veritas.chaos.plugins.module_utils._fault_pods import (
    fault_result,
)
from ansible_collections.veritas.chaos.plugins.module_utils._memory_limit import (
    ANNOTATION as MEMORY_ANNOTATION,
)
from ansible_collections.veritas.chaos.plugins.module_utils._memory_limit import (
    DEPLOYMENT_API,
    containers_with,
    controller_owner,
    is_below,
    memory_of,
    oom_evidence,
    plan_absent,
    plan_present,
    pod_limit_is,
    present_patch,
    replicas_of,
    restore_patch,
    rollout_state,
    selector_string,
)
from ansible_collections.veritas.chaos.plugins.module_utils._runtime_cli import (
    CLEAR,
    NONE,
    SET,
    UPDATE,
    is_owned,
    metrics_network_policy,
    overlapping_policies,
    parse_label_selector,
    policy_matches,
    selector_matches,
)
from ansible_collections.veritas.chaos.plugins.module_utils._runtime_exec import (
    running_pods,
)

NETWORK_POLICY_API = "networking.k8s.io/v1"
ROLLOUT_SLEEP = 1.0
MEMORY_LIMIT_TARGET = "resources.limits.memory"
ENFORCEMENT_WARNING = (
    "The NetworkPolicy is in place, but whether the cluster's network plugin enforces it is not visible "
    "through the API; use confirm_with=prometheus to confirm that the scrapes really fail."
)


class NetworkPolicyBackend(FaultBackend):
    """metrics_outage as a NetworkPolicy that keeps Prometheus from the metrics port."""

    confirm_restore = False

    def __init__(self, client: KubeClient, params: dict[str, Any]) -> None:
        self.client = client
        self.params = params
        self.timeout = params["confirm_timeout"]
        self.namespace, self.target = params["namespace"], params["policy_name"]
        self.path = resource_path(
            NETWORK_POLICY_API, "networkpolicies", self.namespace, self.target
        )
        self.present = params["state"] == "present"
        self.fault_params = (
            {
                "metrics_port": params["metrics_port"],
                "prometheus_namespace": params["prometheus_namespace"],
            }
            if self.present
            else {}
        )
        self.desired: dict[str, Any] | None = None
        self.after: dict[str, Any] | None = None
        self.matched = 0
        self.warnings: list[str] = []

    def read(self, target: Any = None) -> dict[str, Any]:
        pods = running_pods(self.client, self.namespace, self.params["label_selector"])
        self.matched = len(pods)
        current = self.client.get(self.path, missing_ok=True)
        if self.present and not pods:
            raise ChaosError(
                "No running pods match {} in namespace {}; nothing to block.".format(
                    self.params["label_selector"], self.namespace
                ),
                reason="no_targets",
            )
        if self.present:
            others = overlapping_policies(
                self.client.list(
                    resource_path(NETWORK_POLICY_API, "networkpolicies", self.namespace)
                ),
                self.target,
                [(pod["metadata"].get("labels") or {}) for pod in pods],
            )
            if others:
                self.warnings.append(
                    "Other Ingress NetworkPolicies select these pods ({}); policies add up, so if one "
                    "of them allows Prometheus in, the scrapes are not blocked.".format(
                        ", ".join(others)
                    )
                )
            if self.params["confirm_with"] != "prometheus":
                self.warnings.append(ENFORCEMENT_WARNING)
        return {self.target: current}

    def plan(self, current: dict[str, Any]) -> list[Change]:
        policy = current[self.target]
        if self.present:
            self.desired = metrics_network_policy(
                self.target,
                self.namespace,
                parse_label_selector(self.params["label_selector"]),
                self.params["metrics_port"],
                self.params["prometheus_namespace"],
                self.params["prometheus_pod_labels"],
            )
        if policy is not None and not is_owned(policy):
            raise ChaosError(
                f"NetworkPolicy {self.namespace}/{self.target} exists and was not made by "
                "veritas.chaos; refusing to change it. Choose another policy_name.",
                reason="not_owned",
            )
        self.after = policy
        if self.present and not policy_matches(policy, self.desired or {}):
            action = SET if policy is None else UPDATE
        else:
            action = CLEAR if not self.present and policy is not None else NONE
        return [Change(self.target, action, policy)]

    def apply(self, change: Change, check_mode: bool) -> list[dict[str, Any]]:
        if change.action == SET:
            self.after = self.client.create(
                resource_path(NETWORK_POLICY_API, "networkpolicies", self.namespace),
                self.desired,
                dry_run=check_mode,
            )
        elif change.action == UPDATE:
            body = dict(self.desired or {})
            body["metadata"] = dict(
                body["metadata"],
                resourceVersion=change.before["metadata"].get("resourceVersion"),
            )
            self.after = self.client.replace(self.path, body, dry_run=check_mode)
        else:
            self.client.delete(self.path, dry_run=check_mode)
            self.after = None
        return []

    def confirming(self, changes: list[Change]) -> list[Change]:
        return list(changes)

    def read_back(self, change: Change, restoring: bool = False) -> tuple[bool, Any]:
        live = self.client.get(self.path, missing_ok=True)
        self.after = live
        if self.present:
            return policy_matches(live, self.desired or {}), live
        return live is None, live

    def restore(self, change: Change) -> list[dict[str, Any]]:
        if change.before is None:
            self.client.delete(self.path)
        else:
            body = strip_volatile(change.before) or {}
            body["metadata"]["resourceVersion"] = (self.client.get(self.path) or {})[
                "metadata"
            ].get("resourceVersion")
            self.client.replace(self.path, body)
        return []

    def not_confirmed(
        self, pending: dict[str, Any], changed: bool, restoring: bool
    ) -> ChaosError:
        return ChaosError(
            f"NetworkPolicy {self.namespace}/{self.target} does not read back as requested after "
            f"{self.params['confirm_timeout']} seconds.",
            reason="not_confirmed",
            changed=changed,
        )

    def prometheus_failure(
        self, outcome: dict[str, Any], params: dict[str, Any], changed: bool
    ) -> ChaosError:
        return ChaosError(
            "Prometheus did not confirm the metrics outage within {} seconds ({} is not {}): the "
            "NetworkPolicy is in place but is apparently not enforced. It stays; run state=absent "
            "to remove it.".format(
                params["prometheus"]["timeout"], outcome["query"], outcome["condition"]
            ),
            reason="not_confirmed",
            changed=changed,
            confirmation=outcome,
        )

    def result(self, run: Run, want_diff: bool) -> dict[str, Any]:
        result = fault_result(
            self, self.params, run, network_policy=strip_volatile(self.after)
        )
        if want_diff:
            result["diff"] = {
                "before": strip_volatile(run.changes[0].before) or {},
                "after": strip_volatile(self.after) or {},
            }
        return result


def _deployment_path(namespace: str, name: str | None = None) -> str:
    return resource_path(DEPLOYMENT_API, "deployments", namespace, name)


def owning_deployments(
    client: KubeClient, namespace: str, pods: list[dict[str, Any]]
) -> tuple[dict[str, list[str]], list[str]]:
    """{Deployment: its selected pods} through pod -> ReplicaSet -> Deployment, and the pods
    no Deployment owns."""
    replicasets: dict[str, str | None] = {}
    owned: dict[str, list[str]] = {}
    orphans: list[str] = []
    for pod in pods:
        name = pod["metadata"]["name"]
        replicaset = controller_owner(pod, "ReplicaSet")
        deployment = None
        if replicaset is not None:
            if replicaset not in replicasets:
                obj = client.get(
                    resource_path(DEPLOYMENT_API, "replicasets", namespace, replicaset),
                    missing_ok=True,
                )
                replicasets[replicaset] = (
                    controller_owner(obj, "Deployment") if obj else None
                )
            deployment = replicasets[replicaset]
        if deployment is None:
            orphans.append(name)
        else:
            owned.setdefault(deployment, []).append(name)
    return owned, orphans


def _rollout_failure(what: str, pending: dict[str, Any], timeout: int) -> ChaosError:
    """pending: {Deployment: its last rollout state}."""
    return ChaosError(
        "{}: the rollout of Deployments {} is not complete after {} seconds ({}).".format(
            what,
            ", ".join(pending),
            timeout,
            "; ".join(
                "{}: {} of {} replicas updated, {} available".format(
                    name,
                    (state or {}).get("updated"),
                    (state or {}).get("wanted"),
                    (state or {}).get("available"),
                )
                for name, state in pending.items()
            ),
        ),
        reason="not_confirmed",
        changed=True,
        unconfirmed=list(pending),
        rollout=pending,
    )


class MemoryLimitBackend(FaultBackend):
    """resource_exhaustion (memory) as a lower memory limit in the pods' Deployments."""

    interval = ROLLOUT_SLEEP
    target = MEMORY_LIMIT_TARGET

    def __init__(self, client: KubeClient, params: dict[str, Any]) -> None:
        self.client = client
        self.params = params
        self.timeout = params["confirm_timeout"]
        self.namespace = params["namespace"]
        self.present = params["state"] == "present"
        self.limit = params["memory_limit"]
        self.fault_params = {"memory_limit": self.limit} if self.present else {}
        self.matched = 0
        self.owned: dict[str, list[str]] = {}
        self.orphans: list[str] = []
        self.deployments: dict[str, dict[str, Any]] = {}
        self.after_objects: dict[str, dict[str, Any]] = {}
        self.warnings: list[str] = []

    def read(self, target: Any = None) -> dict[str, Any]:
        namespace = self.namespace
        if self.present:
            pods = running_pods(self.client, namespace, self.params["label_selector"])
            if not pods:
                raise ChaosError(
                    "No running pods match {} in namespace {}; no Deployment to lower the memory "
                    "limit of.".format(self.params["label_selector"], namespace),
                    reason="no_targets",
                )
        else:
            pods = [
                pod
                for pod in self.client.list(
                    resource_path("v1", "pods", namespace),
                    label_selector=self.params["label_selector"],
                )
                if is_candidate(pod)
            ]
        self.matched = len(pods)
        self.owned, self.orphans = owning_deployments(self.client, namespace, pods)
        deployments: dict[str, dict[str, Any]] = {}
        for name in sorted(self.owned):
            obj = self.client.get(_deployment_path(namespace, name), missing_ok=True)
            if obj is None:
                self.orphans.extend(self.owned.pop(name))
            else:
                deployments[name] = obj
        if not self.present:
            selector = parse_label_selector(self.params["label_selector"])
            for obj in self.client.list(_deployment_path(namespace)):
                name = (obj.get("metadata") or {}).get("name")
                labels = (
                    ((obj.get("spec") or {}).get("template") or {}).get("metadata")
                    or {}
                ).get("labels")
                annotations = (obj.get("metadata") or {}).get("annotations") or {}
                if (
                    name not in deployments
                    and MEMORY_ANNOTATION in annotations
                    and selector_matches(selector, labels)
                ):
                    deployments[name] = obj
        self.deployments = deployments
        return deployments

    def plan(self, current: dict[str, Any]) -> list[Change]:
        if not self.present:
            plans = [plan_absent(current[name]) for name in sorted(current)]
            for plan in plans:
                if plan.get("missing"):
                    self.warnings.append(
                        "Deployment {} has no container {} any more; only its {} annotation is "
                        "removed.".format(
                            plan["name"], plan["container"], MEMORY_ANNOTATION
                        )
                    )
            return [self._change(plan) for plan in plans]
        if self.orphans:
            raise ChaosError(
                "method memory_limit changes Deployments, and the pods {} are not owned by one "
                "(pod -> ReplicaSet -> Deployment). Narrow label_selector to pods of Deployments. "
                "Nothing was changed.".format(", ".join(sorted(self.orphans))),
                reason="invalid_input",
                field="label_selector",
                pods=sorted(self.orphans),
            )
        limit = self.limit
        plans = [
            plan_present(current[name], self.params["container"], limit)
            for name in sorted(current)
        ]
        affected = sum(replicas_of(obj) for obj in current.values())
        enforce_blast_radius(
            affected,
            self.matched,
            self.params["max_count"],
            self.params["max_percent"],
            "Refusing to lower the memory limit: {{refusal}} (method memory_limit replaces every pod "
            "of Deployments {}). Nothing was changed.".format(", ".join(sorted(current))),
        )
        for plan in plans:
            original = plan["original"]["limits_memory"]
            if plan["action"] == NONE:
                continue
            if original is not None and not is_below(limit, original):
                self.warnings.append(
                    "memory_limit {} is not below the memory limit {} of Deployment {} (container {}): "
                    "its pods get no less memory than before.".format(
                        limit, original, plan["name"], plan["container"]
                    )
                )
            if (current[plan["name"]].get("spec") or {}).get("paused"):
                self.warnings.append(
                    f"Deployment {plan['name']} is paused: its pods are not replaced (and the fault "
                    "does not take) until it is resumed."
                )
        return [self._change(plan) for plan in plans]

    @staticmethod
    def _change(plan: dict[str, Any]) -> Change:
        return Change(plan["name"], plan["action"], plan["before"], {"plan": plan})

    def apply(self, change: Change, check_mode: bool) -> list[dict[str, Any]]:
        plan = change.data["plan"]
        obj = self.deployments[change.target]
        body = (
            present_patch(obj, plan)
            if self.present
            else restore_patch(obj, plan["container"], plan["desired"])
        )
        self.after_objects[change.target] = self.client.patch(
            _deployment_path(self.namespace, change.target), body, dry_run=check_mode
        )
        return []

    def partial_failure(
        self, exc: ChaosError, change: Change, done: list[str], restoring: bool
    ) -> ChaosError:
        if restoring:
            return exc
        return already_changed(exc, "Deployments", "deployment", change.target, done)

    def read_back(self, change: Change, restoring: bool = False) -> tuple[bool, Any]:
        if self.present and not restoring:
            return self._oom_reading(change)
        live = self.client.get(
            _deployment_path(self.namespace, change.target), missing_ok=True
        )
        if live is None:
            return True, None
        state = rollout_state(live)
        # After duration, a Deployment lowered before this call is only observed, not waited for.
        complete = not restoring or change.action == SET
        return state["complete" if complete else "observed"], state

    def _oom_reading(self, change: Change) -> tuple[bool, Any]:
        """A pod with the new limit whose container was OOMKilled or crash-loops."""
        deployment = self.deployments[change.target]
        container = change.data["plan"]["container"]
        selector = (deployment.get("spec") or {}).get("selector") or {}
        pods = [
            pod
            for pod in self.client.list(
                resource_path("v1", "pods", self.namespace),
                label_selector=selector_string(deployment),
            )
            if selector_matches(selector, (pod.get("metadata") or {}).get("labels"))
            and pod_limit_is(pod, container, self.limit)
        ]
        found = [
            item
            for item in (oom_evidence(pod, container) for pod in pods)
            if item is not None
        ]
        evidence = sorted(found, key=lambda item: str(item["pod"]))
        return bool(found), {"with_limit": len(pods), "oom_pods": evidence}

    def restore(self, change: Change) -> list[dict[str, Any]]:
        plan = change.data["plan"]
        path = _deployment_path(self.namespace, change.target)
        live = self.client.get(path)
        if change.action == SET:
            # Set by this call: the limits before it, and no record.
            body = restore_patch(live, plan["container"], plan["before"])
        else:
            # Updated by this call: the lowered limits before it; the record stays.
            body = {
                "spec": {
                    "template": {
                        "spec": {
                            "containers": containers_with(
                                live, plan["container"], plan["before"]
                            )
                        }
                    }
                }
            }
        self.client.patch(path, body)
        return []

    def not_confirmed(
        self, pending: dict[str, Any], changed: bool, restoring: bool
    ) -> ChaosError:
        timeout = self.params["confirm_timeout"]
        if restoring:
            return _rollout_failure(
                "After duration, the memory limits are put back",
                pending,
                timeout,
            )
        if not self.present:
            return _rollout_failure("The memory limits are put back", pending, timeout)
        return ChaosError(
            "The memory limit {} did not take in Deployments {} within {} seconds: no pod "
            "with the new limit shows its container OOMKilled or in CrashLoopBackOff ({}). "
            "Is the limit still above what the container uses? What was set stays set; "
            "run state=absent to put the limits back.".format(
                self.limit,
                ", ".join(pending),
                timeout,
                "; ".join(
                    f"{name}: {(reading or {}).get('with_limit', 0)} pods with the new limit"
                    for name, reading in pending.items()
                ),
            ),
            reason="not_confirmed",
            changed=changed,
            unconfirmed=list(pending),
        )

    def result(self, run: Run, want_diff: bool) -> dict[str, Any]:
        entries = []
        for change in run.changes:
            plan, name = change.data["plan"], change.target
            after = (
                memory_of(self.after_objects[name], plan["container"] or "")
                if name in self.after_objects
                else plan["before"]
            )
            reading = run.readings.get(name) if self.present else None
            entries.append(
                {
                    "name": name,
                    "container": plan["container"],
                    "action": plan["action"],
                    "before": plan["before"],
                    "after": after,
                    "replicas": replicas_of(self.deployments[name]),
                    "selected_pods": sorted(self.owned.get(name, [])),
                    "confirmed": None if run.check_mode else True,
                    "oom_pods": (reading or {}).get("oom_pods", []),
                }
            )
        result = fault_result(self, self.params, run, deployments=entries)
        if want_diff:
            result["diff"] = {
                side: {
                    "deployments": {
                        entry["name"]: dict(entry[side], container=entry["container"])
                        for entry in entries
                    }
                }
                for side in ("before", "after")
            }
        return result

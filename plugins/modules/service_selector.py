# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: service_selector
short_description: Switch a Service's selector (blue-green) behind a health gate and a lock
version_added: 1.0.0
description:
  - With O(state=present), makes O(selector) the Service's complete selector, for example
    C(deployment=blue) to C(deployment=green).
  - Before switching it checks the target, at least O(min_ready_pods) Ready pods match the new selector
    and, when O(health_command) is set, the command exits 0 in at least that many of them.
  - It refuses to start while another switch holds the lock, a C(coordination.k8s.io/v1) Lease with holder
    and expiry (a crashed run stops blocking after O(lock_duration) seconds).
  - It records the previous selector in the annotation C(veritas.chaos/previous-selector) so that
    O(state=rolled_back) restores it later without any memory of the earlier run.
  - O(state=rolled_back) restores the recorded selector, behind the same gate and lock, consumes the record and
    keeps the selector it left in C(veritas.chaos/rolled-back-from). With no record it changes nothing.
author:
  - Veritas SPARK team (@veritas-spark)
options:
  name:
    description:
      - Name of the Service.
    type: str
    required: true
  namespace:
    description:
      - Namespace of the Service.
    type: str
    required: true
  state:
    description:
      - V(present) switches to O(selector); V(rolled_back) restores the selector recorded by the last switch.
    type: str
    choices: [present, rolled_back]
    default: present
  selector:
    description:
      - The complete new selector, label keys to values. Required with O(state=present).
    type: dict
  min_ready_pods:
    description:
      - How many Ready (and, with O(health_command), healthy) pods the target selector must have. V(0) disables the gate.
    type: int
    default: 1
  all_pods_ready:
    description:
      - Also require every pod the target selector matches (not terminating) to be Ready and, with O(health_command),
        healthy. A colour in the middle of a rollout whose new pods crash-loop (an OOMKilled container) still has its
        old pods Ready; counting Ready pods alone would let that switch through.
      - Needs O(min_ready_pods) above 0 (V(0) disables the gate).
    type: bool
    default: false
  health_command:
    description:
      - A command run through the API's exec in each Ready target pod, for example C([curl, -fsS, localhost:8080/health]).
      - It must have no side effects, it also runs in check mode.
    type: list
    elements: str
  health_container:
    description:
      - Container for O(health_command); the pod's default container when not set.
    type: str
  health_timeout:
    description:
      - Seconds one O(health_command) may take.
    type: int
    default: 10
  lock_name:
    description:
      - Name of the Lease used as lock. Defaults to C(<name>-switch).
    type: str
  lock_holder:
    description:
      - Identity written into the Lease. The same holder may renew its own lock.
      - Defaults to C(veritas.chaos@<controller hostname>).
    type: str
  lock_duration:
    description:
      - Seconds after which an unreleased lock (a crashed run) may be taken over.
    type: int
    default: 120
  release_lock:
    description:
      - Release the lock when the switch is done. V(false) keeps it until O(lock_duration) passes or the same
        O(lock_holder) switches or rolls back, which blocks other switches for a whole game day.
    type: bool
    default: true
extends_documentation_fragment:
  - veritas.chaos.auth
  - veritas.chaos.ledger
  - veritas.chaos.auth.guard
  - veritas.chaos.attributes
  - veritas.chaos.attributes.actiongroup_k8s
attributes:
  check_mode:
    support: full
    details:
      - A server-side dry run (C(dryRun=All)). The lock and the health gate are still evaluated and refuse as they
        would for real; the lock is not taken.
  diff_mode:
    support: full
    details: The Service before and after, without C(resourceVersion), C(generation) and C(managedFields).
  idempotent:
    support: full
seealso:
  - module: veritas.chaos.gameday_info
"""

EXAMPLES = r"""
- name: Switch veritas-runtime to green once two green pods are Ready and healthy
  veritas.chaos.service_selector:
    name: veritas-runtime
    namespace: veritas
    selector:
      app: veritas
      deployment: green
    min_ready_pods: 2
    health_command: [curl, -fsS, "localhost:8080/health"]

- name: Blue-green rollback to whatever the last switch replaced
  veritas.chaos.service_selector:
    name: veritas-runtime
    namespace: veritas
    state: rolled_back

- name: Hold the lock for the whole game day
  veritas.chaos.service_selector:
    name: veritas-runtime
    namespace: veritas
    selector:
      app: veritas
      deployment: green
    lock_holder: "gameday-{{ awx_job_id | default('local') }}"
    lock_duration: 1800
    release_lock: false
"""

RETURN = r"""
selector:
  description: The Service's selector after the task.
  returned: success
  type: dict
  sample: {"app": "veritas", "deployment": "green"}
previous_selector:
  description: The Service's selector before the task.
  returned: success
  type: dict
  sample: {"app": "veritas", "deployment": "blue"}
selector_diff:
  description: How the selector changed.
  returned: success
  type: dict
  contains:
    added:
      description: Keys that were added, with their values.
      type: dict
      sample: {}
    removed:
      description: Keys that were removed, with their old values.
      type: dict
      sample: {}
    changed:
      description: Keys whose value changed, each with C(from) and C(to).
      type: dict
      sample: {"deployment": {"from": "blue", "to": "green"}}
rolled_back:
  description: Whether a recorded selector was restored (O(state=rolled_back)).
  returned: success
  type: bool
  sample: true
health:
  description: The result of the health gate; null when no switch was needed.
  returned: success
  type: dict
  contains:
    required:
      description: Healthy pods required (O(min_ready_pods)).
      type: int
      sample: 1
    not_ready_pods:
      description: Names of the pods that match the target selector and are not Ready (not terminating ones).
      type: list
      elements: str
      sample: []
    ready_pods:
      description: Names of the Ready pods that match the target selector.
      type: list
      elements: str
      sample: ["veritas-green-7d9f-abcde"]
    healthy_pods:
      description: Ready pods that also passed O(health_command) (all Ready pods without a command).
      type: list
      elements: str
      sample: ["veritas-green-7d9f-abcde"]
    checks:
      description: One entry per O(health_command) run.
      type: list
      elements: dict
      contains:
        pod:
          description: Pod name.
          type: str
        rc:
          description: Exit code.
          type: int
        stdout:
          description: Standard output.
          type: str
        stderr:
          description: Standard error.
          type: str
lock:
  description: The Lease used as lock; null when no switch was needed.
  returned: success
  type: dict
  contains:
    name:
      description: Lease name.
      type: str
      sample: veritas-runtime-switch
    holder:
      description: Holder identity used.
      type: str
      sample: veritas.chaos@runner-1
    decision:
      description: V(acquire), V(renew) or V(take_over) (an expired lock of another holder).
      type: str
      sample: acquire
    released:
      description: Whether the lock was released at the end.
      type: bool
      sample: true
"""

import socket
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.veritas.chaos.plugins.module_utils._args import (
    AUTH_ARG_SPEC,
    GUARD_ARG_SPEC,
    LEDGER_ARG_SPEC,
    build_argument_spec,
)
from ansible_collections.veritas.chaos.plugins.module_utils._blast import is_ready
from ansible_collections.veritas.chaos.plugins.module_utils._client import (
    KubeClient,
    get_client,
    objects_differ,
    resource_path,
    strip_volatile,
)
from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError
from ansible_collections.veritas.chaos.plugins.module_utils._exec import exec_in_pod
from ansible_collections.veritas.chaos.plugins.module_utils._guard import (
    guard_namespace,
)
from ansible_collections.veritas.chaos.plugins.module_utils._ledger import (
    recording_client,
)
from ansible_collections.veritas.chaos.plugins.module_utils._lock import LeaseLock
from ansible_collections.veritas.chaos.plugins.module_utils._runner import run_module
from ansible_collections.veritas.chaos.plugins.module_utils._selector import (
    PREVIOUS_SELECTOR_ANNOTATION,
    decode_selector,
    label_selector_string,
    rollback_patch,
    selector_diff,
    selectors_equal,
    switch_patch,
    validate_selector,
)
from ansible_collections.veritas.chaos.plugins.module_utils._validate import (
    validate_input,
)


def validate_params(params: dict[str, Any]) -> None:
    validate_input(
        params,
        namespaces=("namespace",),
        names=("name", "lock_name"),
        dns_labels=("health_container",),
    )
    if params["state"] == "present":
        validate_selector(params["selector"], "selector")
    if params["health_command"] and not str(params["health_command"][0]).strip():
        raise ChaosError(
            f"health_command must start with the program to run, got {params['health_command']!r}.",
            reason="invalid_input",
            field="health_command",
        )
    if params["lock_holder"] is not None and not params["lock_holder"].strip():
        raise ChaosError(
            "lock_holder must be a non-empty identity (or left unset).",
            reason="invalid_input",
            field="lock_holder",
        )
    for field, minimum in (
        ("min_ready_pods", 0),
        ("health_timeout", 1),
        ("lock_duration", 1),
    ):
        if params[field] < minimum:
            raise ChaosError(
                f"{field} must be an integer of at least {minimum}, got {params[field]}.",
                reason="invalid_input",
                field=field,
            )


def health_gate(
    client: KubeClient, namespace: str, selector: dict[str, str], params: dict[str, Any]
) -> dict[str, Any]:
    """Ready (and healthy) pods of the target selector; raises 'unhealthy' below min_ready_pods."""
    required = params["min_ready_pods"]
    report: dict[str, Any] = {
        "required": required,
        "not_ready_pods": [],
        "ready_pods": [],
        "healthy_pods": [],
        "checks": [],
    }
    if required == 0:
        return report
    pods = client.list(
        resource_path("v1", "pods", namespace),
        label_selector=label_selector_string(selector),
    )
    live = [pod for pod in pods if not pod["metadata"].get("deletionTimestamp")]
    ready = sorted(pod["metadata"]["name"] for pod in live if is_ready(pod))
    report["ready_pods"] = ready
    report["not_ready_pods"] = sorted(
        pod["metadata"]["name"] for pod in live if not is_ready(pod)
    )
    healthy = list(ready)
    if params["health_command"] and ready:
        healthy = []
        for pod in ready:
            outcome = exec_in_pod(
                client,
                namespace,
                pod,
                params["health_command"],
                params["health_container"],
                params["health_timeout"],
            )
            report["checks"].append(outcome.as_dict())
            if outcome.rc == 0:
                healthy.append(pod)
    report["healthy_pods"] = healthy
    if params["all_pods_ready"] and len(healthy) < len(live):
        raise ChaosError(
            f"Refusing to switch the selector to {label_selector_string(selector)}: "
            f"{len(healthy)} of its {len(live)} pod(s) Ready"
            + (" and passing the health command" if params["health_command"] else "")
            + ", all required (not Ready: {}).".format(
                ", ".join(report["not_ready_pods"]) or "none"
            ),
            reason="unhealthy",
            health=report,
        )
    if len(healthy) < required:
        what = (
            "Ready and passing the health command"
            if params["health_command"]
            else "Ready"
        )
        raise ChaosError(
            f"Refusing to switch the selector to {label_selector_string(selector)}: "
            f"{len(healthy)} pod(s) {what}, {required} required.",
            reason="unhealthy",
            health=report,
        )
    return report


def switch_selector(
    client: KubeClient, params: dict[str, Any], check_mode: bool, want_diff: bool
) -> dict[str, Any]:
    validate_params(params)
    namespace, name = params["namespace"], params["name"]
    guard_namespace(client, namespace, params)
    path = resource_path("v1", "services", namespace, name)
    before = client.get(path, missing_ok=True)
    if before is None:
        raise ChaosError(
            f"Service {name} not found in namespace {namespace}.",
            reason="not_found",
            name=name,
            namespace=namespace,
        )
    current = dict((before.get("spec") or {}).get("selector") or {})
    annotations = (before.get("metadata") or {}).get("annotations") or {}

    result: dict[str, Any] = {
        "changed": False,
        "rolled_back": False,
        "health": None,
        "lock": None,
    }
    if params["state"] == "present":
        target = validate_selector(params["selector"])
        patch = (
            None if selectors_equal(current, target) else switch_patch(current, target)
        )
    else:
        target = decode_selector(annotations.get(PREVIOUS_SELECTOR_ANNOTATION))
        patch = None if target is None else rollback_patch(current, target)
        if target is None:
            result["msg"] = (
                f"No previous selector recorded in {PREVIOUS_SELECTOR_ANNOTATION}; nothing to roll back."
            )

    after = before
    if patch is not None and target is not None:
        holder = params["lock_holder"] or f"veritas.chaos@{socket.gethostname()}"
        lock = LeaseLock(
            client,
            namespace,
            params["lock_name"] or f"{name}-switch",
            holder,
            params["lock_duration"],
        )
        lock_report = {
            "name": lock.name,
            "holder": holder,
            "decision": lock.check(),
            "released": False,
        }
        result["lock"] = lock_report
        result["health"] = health_gate(client, namespace, target, params)
        if check_mode:
            after = client.patch(path, patch, dry_run=True)
        else:
            lock_report["decision"] = lock.acquire()
            succeeded = False
            try:
                after = client.patch(path, patch)
                succeeded = True
            finally:
                if params["release_lock"] or not succeeded:
                    lock.release()
                    lock_report["released"] = True
        result["rolled_back"] = params["state"] == "rolled_back"

    selector_after = dict((after.get("spec") or {}).get("selector") or {})
    result.update(
        {
            "changed": objects_differ(before, after),
            "selector": selector_after,
            "previous_selector": current,
            "selector_diff": selector_diff(current, selector_after),
        }
    )
    if want_diff:
        result["diff"] = {
            "before": strip_volatile(before),
            "after": strip_volatile(after),
        }
    return result


def main() -> None:
    argument_spec = build_argument_spec(
        AUTH_ARG_SPEC,
        LEDGER_ARG_SPEC,
        GUARD_ARG_SPEC,
        name={"type": "str", "required": True},
        namespace={"type": "str", "required": True},
        state={
            "type": "str",
            "choices": ["present", "rolled_back"],
            "default": "present",
        },
        selector={"type": "dict"},
        min_ready_pods={"type": "int", "default": 1},
        all_pods_ready={"type": "bool", "default": False},
        health_command={"type": "list", "elements": "str"},
        health_container={"type": "str"},
        health_timeout={"type": "int", "default": 10},
        lock_name={"type": "str"},
        lock_holder={"type": "str"},
        lock_duration={"type": "int", "default": 120},
        release_lock={"type": "bool", "default": True},
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        required_if=[("state", "present", ["selector"])],
        supports_check_mode=True,
    )

    def action() -> dict[str, Any]:
        validate_params(module.params)
        return switch_selector(
            recording_client(get_client(module.params), module.params, "veritas.chaos.service_selector"),
            module.params, module.check_mode, module._diff
        )

    run_module(module, action)


if __name__ == "__main__":
    main()

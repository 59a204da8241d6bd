# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pod_chaos
short_description: Kill pods chosen by label selector, within a blast-radius cap
version_added: 1.0.0
description:
  - Deletes O(count) pods, or O(percent) of the pods, that match O(label_selector), gracefully or forced.
  - Only live pods (not terminating, not finished) count; the choice among them is random (repeatable with O(seed)).
  - Refuses, deleting nothing, when the selection would exceed O(max_count) or O(max_percent) of the matching pods.
  - Optionally waits until as many pods as were Ready before are Ready again, the killed ones excluded,
    and returns how long that took.
  - Killing pods is an action. With O(experiment_id) the module records the kill in a ConfigMap and the same call
    again reports the recorded kill without killing again.
author:
  - Veritas SPARK team (@veritas-spark)
options:
  namespace:
    description:
      - Namespace of the pods.
    type: str
    required: true
  label_selector:
    description:
      - Label selector of the pods, as for C(kubectl -l), for example C(variant=canary).
    type: str
    required: true
  count:
    description:
      - How many pods to kill (at least 1). Mutually exclusive with O(percent). Defaults to 1 when neither is set.
    type: int
  percent:
    description:
      - Percentage of the matching pods to kill, from 1 to 100, rounded up. Mutually exclusive with O(count).
    type: int
  max_count:
    description:
      - Blast-radius cap, the most pods one call may kill.
    type: int
  max_percent:
    description:
      - Blast-radius cap, the largest share of the matching pods one call may kill, from 1 to 100.
    type: int
    default: 50
  force:
    description:
      - Delete with a grace period of 0 (as C(kubectl delete --force)).
    type: bool
    default: false
  grace_period_seconds:
    description:
      - Grace period of the deletion; the pod's own when not set. Ignored with O(force=true).
    type: int
  seed:
    description:
      - Seed of the random choice, for a repeatable selection.
    type: int
  wait:
    description:
      - Wait until replacements are Ready (as many Ready pods as before, the killed ones excluded).
    type: bool
    default: false
  wait_timeout:
    description:
      - Seconds to wait for the replacements.
    type: int
    default: 120
  wait_sleep:
    description:
      - Seconds between two checks while waiting.
    type: float
    default: 0.5
  experiment_id:
    description:
      - Identifier of this kill. When set, the kill is recorded under this key in O(record_configmap), and a call
        with an identifier already recorded changes nothing and returns the recorded kill.
    type: str
  record_configmap:
    description:
      - ConfigMap in O(namespace) that records kills with an O(experiment_id).
    type: str
    default: veritas-chaos-experiments
extends_documentation_fragment:
  - veritas.chaos.auth
  - veritas.chaos.ledger
  - veritas.chaos.auth.guard
  - veritas.chaos.attributes
  - veritas.chaos.attributes.actiongroup_k8s
attributes:
  check_mode:
    support: full
    details: Each deletion is sent as a server-side dry run (C(dryRun=All)); nothing is deleted and nothing waits.
  diff_mode:
    support: full
    details: The live matching pods before and after.
  idempotent:
    support: partial
    details: Idempotent with O(experiment_id); without it every call kills again.
seealso:
  - module: veritas.chaos.gameday_info
"""

EXAMPLES = r"""
- name: Kill every canary pod, forced (game day 1), and time the recovery
  veritas.chaos.pod_chaos:
    namespace: veritas
    label_selector: variant=canary
    percent: 100
    max_percent: 100
    force: true
    wait: true
    wait_timeout: 120
    experiment_id: "gameday1-{{ ansible_date_time.epoch }}"
  register: kill

- name: Kill one control pod, never more than one
  veritas.chaos.pod_chaos:
    namespace: veritas
    label_selector: app=veritas,variant=control
    count: 1
    max_count: 1
"""

RETURN = r"""
killed:
  description: Names of the pods deleted (in check mode, those that would be deleted).
  returned: success
  type: list
  elements: str
  sample: ["veritas-canary-6f7c-x2k9d"]
matched:
  description: How many live pods matched O(label_selector).
  returned: success
  type: int
  sample: 4
blast_radius:
  description: The selection measured against the caps.
  returned: success
  type: dict
  contains:
    selected:
      description: Pods selected.
      type: int
      sample: 1
    percent:
      description: Selected share of the matching pods.
      type: float
      sample: 25.0
    max_count:
      description: The O(max_count) cap (null when not set).
      type: int
      sample: null
    max_percent:
      description: The O(max_percent) cap.
      type: int
      sample: 50
ready_before:
  description: Matching pods that were Ready before the kill.
  returned: success
  type: int
  sample: 4
recovery_seconds:
  description: Seconds from the deletion until as many pods were Ready as before; null without O(wait).
  returned: success
  type: float
  sample: 3.42
recorded:
  description: Whether the result comes from an earlier call with the same O(experiment_id) (nothing was killed now).
  returned: success
  type: bool
  sample: false
"""

import datetime
import json
import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.veritas.chaos.plugins.module_utils._args import (
    AUTH_ARG_SPEC,
    GUARD_ARG_SPEC,
    LEDGER_ARG_SPEC,
    build_argument_spec,
)
from ansible_collections.veritas.chaos.plugins.module_utils._blast import (
    choose,
    enforce_blast_radius,
    is_candidate,
    is_ready,
    pods_to_kill,
    validate_caps,
)
from ansible_collections.veritas.chaos.plugins.module_utils._client import (
    KubeClient,
    get_client,
    resource_path,
)
from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError
from ansible_collections.veritas.chaos.plugins.module_utils._guard import (
    guard_namespace,
)
from ansible_collections.veritas.chaos.plugins.module_utils._ledger import (
    recording_client,
    unrecorded,
)
from ansible_collections.veritas.chaos.plugins.module_utils._runner import run_module
from ansible_collections.veritas.chaos.plugins.module_utils._validate import (
    validate_input,
)


def validate_params(params: dict[str, Any]) -> None:
    validate_input(
        params,
        namespaces=("namespace",),
        names=("record_configmap",),
        selectors=("label_selector",),
        data_keys=("experiment_id",),
    )
    validate_caps(params["max_count"], params["max_percent"])
    pods_to_kill(1, params["count"], params["percent"])
    for field in ("wait_timeout", "grace_period_seconds"):
        if params[field] is not None and params[field] < 0:
            raise ChaosError(
                f"{field} must be an integer of at least 0, got {params[field]}.",
                reason="invalid_input",
                field=field,
            )
    if params["wait_sleep"] <= 0:
        raise ChaosError(
            "wait_sleep must be a number above 0, got {}.".format(params["wait_sleep"]),
            reason="invalid_input",
            field="wait_sleep",
        )


def _read_record(
    client: KubeClient, namespace: str, params: dict[str, Any]
) -> dict[str, Any] | None:
    configmap = client.get(
        resource_path("v1", "configmaps", namespace, params["record_configmap"]),
        missing_ok=True,
    )
    text = ((configmap or {}).get("data") or {}).get(params["experiment_id"])
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _write_record(
    client: KubeClient,
    namespace: str,
    params: dict[str, Any],
    record: dict[str, Any],
    dry_run: bool,
) -> None:
    data = {params["experiment_id"]: json.dumps(record, sort_keys=True)}
    path = resource_path("v1", "configmaps", namespace, params["record_configmap"])
    if client.get(path, missing_ok=True) is None:
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": params["record_configmap"],
                "namespace": namespace,
                "labels": {"app.kubernetes.io/managed-by": "veritas.chaos"},
            },
            "data": data,
        }
        client.create(
            resource_path("v1", "configmaps", namespace), body, dry_run=dry_run
        )
    else:
        client.patch(path, {"data": data}, dry_run=dry_run)


def wait_for_replacements(
    client: KubeClient,
    namespace: str,
    selector: str,
    killed_uids: set[str],
    target: int,
    timeout: int,
    sleep: float,
) -> float:
    """Seconds until target pods (none of the killed ones) are Ready; raises 'timeout'."""
    start = time.monotonic()
    while True:
        pods = client.list(
            resource_path("v1", "pods", namespace), label_selector=selector
        )
        ready = [
            pod
            for pod in pods
            if is_ready(pod) and pod["metadata"].get("uid") not in killed_uids
        ]
        elapsed = time.monotonic() - start
        if len(ready) >= target:
            return round(elapsed, 3)
        if elapsed >= timeout:
            raise ChaosError(
                f"Only {len(ready)} of {target} pods matching {selector} "
                f"were Ready again after {timeout} seconds.",
                reason="timeout",
                changed=True,
                ready=len(ready),
                target=target,
            )
        time.sleep(sleep)


def kill_pods(
    client: KubeClient, params: dict[str, Any], check_mode: bool, want_diff: bool
) -> dict[str, Any]:
    validate_params(params)
    namespace, selector = params["namespace"], params["label_selector"]
    guard_namespace(client, namespace, params)

    if params["experiment_id"]:
        record = _read_record(client, namespace, params)
        if record is not None:
            return {
                "changed": False,
                "recorded": True,
                "killed": record.get("killed", []),
                "matched": record.get("matched", 0),
                "blast_radius": record.get("blast_radius", {}),
                "ready_before": record.get("ready_before", 0),
                "recovery_seconds": record.get("recovery_seconds"),
            }

    pods = [
        pod
        for pod in client.list(
            resource_path("v1", "pods", namespace), label_selector=selector
        )
        if is_candidate(pod)
    ]
    if not pods:
        raise ChaosError(
            f"No live pods match {selector} in namespace {namespace}; nothing to kill.",
            reason="no_targets",
        )
    total = len(pods)
    how_many = pods_to_kill(total, params["count"], params["percent"])
    enforce_blast_radius(
        how_many,
        total,
        params["max_count"],
        params["max_percent"],
        "Refusing to kill pods: {refusal}. Nothing was deleted.",
    )

    by_name = {pod["metadata"]["name"]: pod for pod in pods}
    chosen = choose(list(by_name), how_many, params["seed"])
    ready_before = sum(1 for pod in pods if is_ready(pod))
    grace = 0 if params["force"] else params["grace_period_seconds"]

    killed: list[str] = []
    for name in chosen:
        try:
            client.delete(
                resource_path("v1", "pods", namespace, name),
                dry_run=check_mode,
                grace_period_seconds=grace,
            )
        except ChaosError as exc:
            if exc.reason != "not_found":
                raise ChaosError(
                    "Deleting pod {} failed after killing {}: {}".format(
                        name, killed or "none", exc.msg
                    ),
                    reason=exc.reason,
                    changed=bool(killed) and not check_mode,
                    killed=killed,
                ) from exc
        killed.append(name)

    result: dict[str, Any] = {
        "changed": True,
        "recorded": False,
        "killed": killed,
        "matched": total,
        "blast_radius": {
            "selected": how_many,
            "percent": round(how_many * 100.0 / total, 1),
            "max_count": params["max_count"],
            "max_percent": params["max_percent"],
        },
        "ready_before": ready_before,
        "recovery_seconds": None,
    }
    if params["wait"] and not check_mode:
        killed_uids = {by_name[name]["metadata"].get("uid") for name in killed}
        result["recovery_seconds"] = wait_for_replacements(
            client,
            namespace,
            selector,
            killed_uids,
            ready_before,
            params["wait_timeout"],
            params["wait_sleep"],
        )
    if params["experiment_id"]:
        record = {
            key: result[key]
            for key in (
                "killed",
                "matched",
                "blast_radius",
                "ready_before",
                "recovery_seconds",
            )
        }
        record["time"] = datetime.datetime.now(datetime.UTC).isoformat()
        # The experiment record is bookkeeping, not a change to undo.
        _write_record(unrecorded(client), namespace, params, record, check_mode)
    if want_diff:
        names = sorted(by_name)
        result["diff"] = {
            "before": {"pods": names},
            "after": {"pods": [name for name in names if name not in killed]},
        }
    return result


def main() -> None:
    argument_spec = build_argument_spec(
        AUTH_ARG_SPEC,
        LEDGER_ARG_SPEC,
        GUARD_ARG_SPEC,
        namespace={"type": "str", "required": True},
        label_selector={"type": "str", "required": True},
        count={"type": "int"},
        percent={"type": "int"},
        max_count={"type": "int"},
        max_percent={"type": "int", "default": 50},
        force={"type": "bool", "default": False},
        grace_period_seconds={"type": "int"},
        seed={"type": "int"},
        wait={"type": "bool", "default": False},
        wait_timeout={"type": "int", "default": 120},
        wait_sleep={"type": "float", "default": 0.5},
        experiment_id={"type": "str"},
        record_configmap={"type": "str", "default": "veritas-chaos-experiments"},
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=[("count", "percent")],
        supports_check_mode=True,
    )

    def action() -> dict[str, Any]:
        validate_params(module.params)
        return kill_pods(
            recording_client(get_client(module.params), module.params, "veritas.chaos.pod_chaos"),
            module.params, module.check_mode, module._diff
        )

    run_module(module, action)


if __name__ == "__main__":
    main()

# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: gameday_ledger
short_description: Open a game-day run's change ledger, record its processes, and restore exactly what was there
version_added: 1.0.0
description:
  - A game-day run records in the cluster what it changes before it changes it, so that a restore puts back the
    value that was there (not what an inventory says) from any controller, after any interruption.
  - The ledger is a ConfigMap in O(namespace) labelled C(veritas.chaos/ledger=true). The changing modules
    (M(veritas.chaos.traffic_split), M(veritas.chaos.service_selector), M(veritas.chaos.runtime_fault),
    M(veritas.chaos.gpu_fault), M(veritas.chaos.pod_chaos), M(veritas.chaos.canary_analysis)) append to it when
    their O(veritas.chaos.traffic_split#module:ledger) option (or E(VERITAS_LEDGER)) names it.
  - O(state=present) opens the ledger for O(run_id) (it is kept when it exists for the same run) and records the
    processes in O(processes) and, with O(controller=true), the C(ansible-playbook) process this task runs under
    (host, boot, pid, start time and process group), so that a restore stops them by identity, never by name.
  - O(state=restored) undoes every entry not yet undone. Recorded processes are stopped first (if they are still
    the same process on this host), with any process of the run that carries its E(VERITAS_LEDGER) (a killed
    run's module, in whatever process group, still about to make a change), then each object field, object and pod fault goes back to the value it had
    before the run's first change of it, latest first. Every step runs even when one fails; the ledger is labelled
    C(restored) (or C(failed)). Running it again changes nothing.
  - O(state=restored) without O(name) and O(run_id) restores every ledger in O(namespace) that is not restored and
    whose run is over, that is its C(ansible-playbook) was recorded on this host and is gone (killed, crashed, interrupted).
    A ledger whose run is still alive, or was recorded on another controller, is left alone and listed in
    RV(skipped) unless its run is named in O(run_ids) or O(force=true).
  - O(state=absent) deletes a restored ledger (any ledger with O(force=true)).
author:
  - Veritas SPARK team (@veritas-spark)
options:
  namespace:
    description:
      - Namespace of the ledger ConfigMap (the game day's namespace).
    type: str
    required: true
  name:
    description:
      - Name of the ledger ConfigMap. Defaults to one derived from O(run_id) and O(suffix).
      - Required for O(state=absent) unless O(run_id) is given. Without it, O(state=restored) restores the ledgers
        of interrupted runs (see O(run_ids)).
    type: str
  run_id:
    description:
      - The run's identity (the game-day lock's holder). Required for O(state=present).
    type: str
  suffix:
    description:
      - Distinguishes the ledgers of one run that plays several game days (for example the scenario id).
    type: str
    default: ""
  state:
    description:
      - V(present) opens the ledger and records processes; V(restored) undoes it; V(absent) deletes it.
    type: str
    choices: [present, restored, absent]
    default: present
  topology:
    description:
      - The topology the run plays on, kept as the label C(veritas.chaos/topology).
    type: str
  purpose:
    description:
      - Which game day and run, for people reading the ledger.
    type: str
  lock:
    description:
      - The game-day lock (Lease name) the run holds; the restore playbook releases it after a restore.
    type: str
  controller:
    description:
      - Record the C(ansible-playbook) process this task runs under, and its process group, so that a restore
        after a killed run also stops a worker left blocked.
    type: bool
    default: false
  processes:
    description:
      - Background processes the run started on this controller, recorded by identity.
    type: list
    elements: dict
    default: []
    suboptions:
      pid:
        description: The process id.
        type: int
        required: true
      what:
        description: What it is, for example V(load generator).
        type: str
        required: true
  run_ids:
    description:
      - With O(state=restored) and no O(name), restore only the ledgers of these runs, even when their controller
        is on another host or still running (for example a run whose controller was lost with its machine).
    type: list
    elements: str
    default: []
  release_locks:
    description:
      - With O(state=restored) and no O(name), also release the game-day lock (O(lock)) each ledger's run still holds
        once that ledger is restored, in this call or before (a run killed between its restore and its lock
        release). Only a Lease whose holder is that run is released; one another run has taken over since is left
        alone and listed in RV(locks) as V(held by another run).
    type: bool
    default: false
  force:
    description:
      - With O(state=absent), delete a ledger that is not restored.
      - With O(state=restored) and no O(name), also restore ledgers whose run is alive or on another controller.
    type: bool
    default: false
extends_documentation_fragment:
  - veritas.chaos.auth
  - veritas.chaos.attributes
attributes:
  check_mode:
    support: full
    details: Server-side dry runs; processes are not stopped.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: A second O(state=restored) finds nothing pending and changes nothing.
seealso:
  - module: veritas.chaos.gameday_lock
"""

EXAMPLES = r"""
- name: Open the run's ledger and record this controller
  veritas.chaos.gameday_ledger:
    namespace: veritas-lab
    run_id: "{{ gameday_run_id }}"
    suffix: canary_error_rate
    topology: canary
    lock: veritas-gameday-canary
    controller: true
  register: ledger

- name: Inject with the ledger recording (or set VERITAS_LEDGER for the play)
  veritas.chaos.traffic_split:
    namespace: veritas-lab
    control: 80
    canary: 20
    ledger: "{{ ledger.ledger.ref }}"

- name: Put back exactly what the run changed
  veritas.chaos.gameday_ledger:
    namespace: veritas-lab
    name: "{{ ledger.ledger.name }}"
    state: restored

- name: After a killed controller - restore every interrupted run's ledger in the namespace
  veritas.chaos.gameday_ledger:
    namespace: veritas-lab
    state: restored
  register: restored
"""

RETURN = r"""
ledger:
  description: The ledger after the call (null after O(state=absent)).
  returned: always
  type: dict
  contains:
    ref:
      description: C(namespace/name), the value for a module's O(veritas.chaos.traffic_split#module:ledger) option.
      type: str
    name:
      description: The ConfigMap's name.
      type: str
    namespace:
      description: Its namespace.
      type: str
    run_id:
      description: The run it belongs to.
      type: str
    state:
      description: V(open), V(restored) or V(failed).
      type: str
    entries:
      description: How many changes it holds.
      type: int
    restored_through:
      description: The last entry a completed restore undid.
      type: int
    changes:
      description: Each change (seq, at, type, what) in order.
      type: list
      elements: dict
restore:
  description: With O(state=restored), each undo step and its outcome.
  returned: when state is restored
  type: dict
  contains:
    steps:
      description: The steps in the order they ran, each with op, seq and outcome.
      type: list
      elements: dict
    failed:
      description: The steps that failed, each with its error.
      type: list
      elements: dict
    entries_undone:
      description: How many entries were pending.
      type: int
ledgers:
  description: With O(state=restored) and no O(name), each ledger restored, with its lock and restore steps.
  returned: when state is restored and no name is given
  type: list
  elements: dict
locks:
  description: With O(release_locks=true), each lock of a restored ledger and what became of it (V(released),
    V(not held), V(held by another run)).
  returned: when state is restored, no name is given and release_locks is true
  type: list
  elements: dict
  sample: [{"lock": "veritas-gameday-canary", "run_id": "gameday-20261130-1", "outcome": "released"}]
skipped:
  description: With O(state=restored) and no O(name), the ledgers left alone and why.
  returned: when state is restored and no name is given
  type: list
  elements: dict
recorded:
  description: The process entries recorded by O(state=present).
  returned: when state is present
  type: list
  elements: dict
"""

import json
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.veritas.chaos.plugins.module_utils._args import (
    AUTH_ARG_SPEC,
    build_argument_spec,
)
from ansible_collections.veritas.chaos.plugins.module_utils._client import (
    KubeClient,
    get_client,
    resource_path,
)
from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError
from ansible_collections.veritas.chaos.plugins.module_utils._ledger import (
    CONTROLLER_ANNOTATION,
    GROUP_ALL,
    GROUP_WORKERS,
    LEDGER_LABEL,
    RESTORED,
    STATE_LABEL,
    Ledger,
    RecordingClient,
    controller_pid,
    ledger_name,
    process_identity,
    restore_ledger,
    same_process,
    summary,
)
from ansible_collections.veritas.chaos.plugins.module_utils._lock import LeaseLock
from ansible_collections.veritas.chaos.plugins.module_utils._runner import run_module
from ansible_collections.veritas.chaos.plugins.module_utils._runtime_exec import (
    run_checked,
)
from ansible_collections.veritas.chaos.plugins.module_utils._validate import (
    validate_input,
)

# The largest process id Linux hands out (/proc/sys/kernel/pid_max at most 2**22).
PID_MAX = 4194304


def validate_params(params: dict[str, Any]) -> None:
    validate_input(
        params, namespaces=("namespace",), names=("name",), label_values=("topology",)
    )
    if params["state"] == "present" and not (params["run_id"] or "").strip():
        raise ChaosError(
            "run_id is required with state=present (the run's identity, e.g. the lock holder).",
            reason="invalid_input",
            field="run_id",
        )
    if params["release_locks"] and (params["state"] != "restored" or params["name"] or params["run_id"]):
        raise ChaosError(
            "release_locks applies to state=restored without name or run_id (the interrupted runs' restore).",
            reason="invalid_input",
            field="release_locks",
        )
    if params["state"] == "absent" and not (params["name"] or params["run_id"]):
        raise ChaosError(
            f"name (or run_id) is required with state={params['state']}.",
            reason="invalid_input",
            field="name",
        )
    for process in params["processes"]:
        if not 2 <= process["pid"] <= PID_MAX:
            raise ChaosError(
                f"processes[].pid must be a process id from 2 to {PID_MAX}, got {process['pid']}.",
                reason="invalid_input",
                field="processes.pid",
            )


def _ledger(client: KubeClient, params: dict[str, Any]) -> Ledger:
    name = params["name"] or ledger_name(params["run_id"], params["suffix"])
    return Ledger(client, params["namespace"], name)


def open_ledger(
    client: KubeClient, params: dict[str, Any], check_mode: bool
) -> dict[str, Any]:
    ledger = _ledger(client, params)
    obj, created = ledger.open(
        params["run_id"],
        holder=params["run_id"],
        topology=params["topology"],
        purpose=params["purpose"],
        lock=params["lock"],
        dry_run=check_mode,
    )
    recorded: list[dict[str, Any]] = []
    changed = created
    if check_mode:
        return {
            "changed": changed,
            "ledger": summary(obj, ledger),
            "recorded": recorded,
        }
    recorder = RecordingClient(client, ledger, "veritas.chaos.gameday_ledger")
    if params["controller"]:
        pid = controller_pid()
        if pid is None:
            raise ChaosError(
                "controller=true but no ansible-playbook process was found above this module.",
                reason="not_found",
                field="controller",
            )
        identity = process_identity(pid, group=GROUP_WORKERS)
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        if annotations.get(CONTROLLER_ANNOTATION) != json.dumps(
            identity, sort_keys=True
        ):
            recorded.append(
                ledger.append(
                    {
                        "type": "process",
                        "module": "veritas.chaos.gameday_ledger",
                        "what": "ansible-playbook run",
                        "process": identity,
                    },
                    set_annotations={
                        CONTROLLER_ANNOTATION: json.dumps(identity, sort_keys=True)
                    },
                )
            )
    for process in params["processes"]:
        recorded.append(
            recorder.record_process(process["pid"], process["what"], group=GROUP_ALL)
        )
    changed = changed or bool(recorded)
    return {
        "changed": changed,
        "ledger": summary(ledger.read_required(), ledger),
        "recorded": recorded,
    }


def restore(
    client: KubeClient, params: dict[str, Any], check_mode: bool
) -> dict[str, Any]:
    ledger = _ledger(client, params)

    def run_exec(
        namespace: str, pod: str, command: list[str], container: str | None
    ) -> None:
        run_checked(client, namespace, pod, command, container=container)

    outcome = restore_ledger(ledger, run_exec, dry_run=check_mode)
    obj = ledger.read_required()
    result = {
        "changed": outcome["changed"],
        "ledger": summary(obj, ledger),
        "restore": {k: outcome[k] for k in ("steps", "failed", "entries_undone")},
    }
    if outcome["failed"]:
        raise ChaosError(
            "Ledger {} NOT fully restored; failed steps: {}".format(
                ledger.ref,
                "; ".join(
                    f"{step['op']} {step.get('path') or step.get('pod') or step.get('pid')}: {step['error']}"
                    for step in outcome["failed"]
                ),
            ),
            reason="restore_failed",
            **result,
        )
    return result


def run_over(obj: dict[str, Any]) -> tuple[bool, str]:
    """Whether a ledger's run is over, as far as this controller can tell, and why."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    text = annotations.get(CONTROLLER_ANNOTATION)
    if not text:
        return False, "no controller recorded"
    controller = json.loads(text)
    state = same_process(controller)
    if state == "gone":
        return (
            True,
            f"its ansible-playbook (pid {controller['pid']} on {controller['host']}) is gone",
        )
    if state == "alive":
        return (
            False,
            f"its ansible-playbook (pid {controller['pid']}) is still running here",
        )
    return False, f"it ran on another controller ({controller['host']})"


def release_run_lock(
    client: KubeClient, namespace: str, info: dict[str, Any], check_mode: bool
) -> dict[str, Any]:
    """Release the game-day lock a restored run still holds (never another run's)."""
    lock = LeaseLock(client, namespace, info["lock"], info["run_id"], 1, activity="game day")
    outcome = {"lock": info["lock"], "run_id": info["run_id"]}
    try:
        released = lock.release_held(dry_run=check_mode)
    except ChaosError as exc:
        if exc.reason != "locked":
            raise
        return dict(outcome, outcome="held by another run")
    return dict(outcome, outcome="released" if released is not None else "not held")


def restore_interrupted(
    client: KubeClient, params: dict[str, Any], check_mode: bool
) -> dict[str, Any]:
    """Restore every ledger of the namespace whose run is over (or is named, or with force)."""
    items = client.list(
        resource_path("v1", "configmaps", params["namespace"]),
        label_selector=f"{LEDGER_LABEL}=true",
    )
    restored: list[dict[str, Any]] = []
    locks: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    failed: list[str] = []
    changed = False
    for obj in sorted(
        items, key=lambda o: o["metadata"].get("creationTimestamp") or ""
    ):
        ledger = Ledger(client, params["namespace"], obj["metadata"]["name"])
        info = summary(obj, ledger)
        if info["state"] == RESTORED and not ledger.pending(obj):
            if params["release_locks"] and info["lock"] and (
                not params["run_ids"] or info["run_id"] in params["run_ids"]
            ):
                locks.append(release_run_lock(client, params["namespace"], info, check_mode))
            continue
        if params["run_ids"] and info["run_id"] not in params["run_ids"]:
            continue
        over, why = run_over(obj)
        if not (over or params["force"] or info["run_id"] in params["run_ids"]):
            skipped.append({"ledger": ledger.ref, "run_id": info["run_id"], "why": why})
            continue
        try:
            outcome = restore(client, dict(params, name=ledger.name), check_mode)
        except ChaosError as exc:
            failed.append(exc.msg)
            outcome = {
                "changed": True,
                "ledger": info,
                "restore": exc.details.get("restore"),
            }
        changed = changed or outcome["changed"]
        fully_restored = not ((outcome.get("restore") or {"failed": ["?"]}).get("failed") or [])
        if params["release_locks"] and info["lock"] and fully_restored:
            locks.append(release_run_lock(client, params["namespace"], info, check_mode))
        restored.append(
            {
                "ledger": ledger.ref,
                "run_id": info["run_id"],
                "lock": info["lock"],
                "why": why,
                "changed": outcome["changed"],
                "restore": outcome.get("restore"),
            }
        )
    changed = changed or any(lock["outcome"] == "released" for lock in locks)
    result = {
        "changed": changed,
        "ledger": None,
        "ledgers": restored,
        "skipped": skipped,
    }
    if params["release_locks"]:
        result["locks"] = locks
    if failed:
        raise ChaosError(
            "NOT fully restored: " + " | ".join(failed),
            reason="restore_failed",
            **result,
        )
    return result


def delete(
    client: KubeClient, params: dict[str, Any], check_mode: bool
) -> dict[str, Any]:
    ledger = _ledger(client, params)
    obj = ledger.read()
    if obj is None:
        return {"changed": False, "ledger": None}
    state = ((obj.get("metadata") or {}).get("labels") or {}).get(STATE_LABEL)
    if state != RESTORED and not params["force"] and ledger.pending(obj):
        raise ChaosError(
            f"Ledger {ledger.ref} is {state} with changes not restored; restore it first (state=restored) "
            "or set force=true.",
            reason="not_restored",
            field="force",
        )
    client.delete(
        ledger.path,
        dry_run=check_mode,
    )
    return {"changed": True, "ledger": None}


def run_ledger(
    client: KubeClient, params: dict[str, Any], check_mode: bool
) -> dict[str, Any]:
    validate_params(params)
    if params["state"] == "present":
        return open_ledger(client, params, check_mode)
    if params["state"] == "restored":
        if not (params["name"] or params["run_id"]):
            return restore_interrupted(client, params, check_mode)
        return restore(client, params, check_mode)
    return delete(client, params, check_mode)


def main() -> None:
    argument_spec = build_argument_spec(
        AUTH_ARG_SPEC,
        namespace={"type": "str", "required": True},
        name={"type": "str"},
        run_id={"type": "str"},
        suffix={"type": "str", "default": ""},
        state={
            "type": "str",
            "choices": ["present", "restored", "absent"],
            "default": "present",
        },
        topology={"type": "str"},
        purpose={"type": "str"},
        lock={"type": "str"},
        controller={"type": "bool", "default": False},
        processes={
            "type": "list",
            "elements": "dict",
            "default": [],
            "options": {
                "pid": {"type": "int", "required": True},
                "what": {"type": "str", "required": True},
            },
        },
        run_ids={"type": "list", "elements": "str", "default": []},
        force={"type": "bool", "default": False},
        release_locks={"type": "bool", "default": False},
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)

    def action() -> dict[str, Any]:
        validate_params(module.params)
        return run_ledger(get_client(module.params), module.params, module.check_mode)

    run_module(module, action)


if __name__ == "__main__":
    main()

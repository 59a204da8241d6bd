# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""runtime_fault's per-pod exec methods behind FaultBackend: runtime_cli, envoy_runtime, admin_command."""

from __future__ import annotations

import re
from typing import Any

from ansible_collections.veritas.chaos.plugins.module_utils._blast import (
    choose,
    enforce_blast_radius,
    pods_to_kill,
)
from ansible_collections.veritas.chaos.plugins.module_utils._client import KubeClient
from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError
from ansible_collections.veritas.chaos.plugins.module_utils._fault_backends import (
    Change,
    FaultBackend,
    Run,
    already_changed,
)
from ansible_collections.veritas.chaos.plugins.module_utils._ledger import record_exec
from ansible_collections.veritas.chaos.plugins.module_utils._runtime_cli import (
    CLEAR,
    NONE,
    SET,
    UPDATE,
    cli_prefix,
    desired_runtime_params,
    envoy_current,
    envoy_modify_command,
    envoy_read_command,
    envoy_runtime_keys,
    envoy_runtime_values,
    fault_clear_command,
    fault_list_command,
    fault_set_command,
    order_targets,
    parse_envoy_runtime,
    parse_fault_list,
    plan_action,
    runtime_fault_name,
)
from ansible_collections.veritas.chaos.plugins.module_utils._runtime_exec import (
    run_in_pod,
    running_pods,
)


def choose_targets(
    pods: list[str],
    current: dict[str, dict[str, Any] | None],
    params: dict[str, Any],
    desired: dict[str, Any],
) -> list[str]:
    """The pods to act on; refuses (changing nothing) when they exceed the blast-radius cap."""
    if params["state"] == "absent":
        return [pod for pod in pods if current[pod] is not None]
    total = len(pods)
    how_many = total
    if params["pod_count"] is not None or params["pod_percent"] is not None:
        how_many = pods_to_kill(total, params["pod_count"], params["pod_percent"])
    enforce_blast_radius(
        how_many,
        total,
        params["max_count"],
        params["max_percent"],
        "Refusing to inject the fault: {refusal}. Nothing was changed.",
    )
    if how_many == total:
        return list(pods)
    # Pods that already carry the fault keep it (exact matches first), so that the same
    # call again, or one with other parameters, acts on the same pods.
    exact = [
        pod for pod in pods if plan_action("present", current[pod], desired) == NONE
    ]
    other = [pod for pod in pods if current[pod] is not None and pod not in exact]
    already = exact + other
    return order_targets(
        pods, already, how_many, choose(pods, how_many, params["seed"])
    )


def predicted_after(
    action: str, desired: dict[str, Any], before: dict[str, Any] | None
) -> dict[str, Any] | None:
    """What a pod will read back after the action (the check-mode answer)."""
    if action == CLEAR:
        return None
    if action in (SET, UPDATE):
        return dict(desired)
    return before


def fault_result(
    backend: Any, params: dict[str, Any], run: Run, **extra: Any
) -> dict[str, Any]:
    """runtime_fault's result: the fault, the confirmation and what the method adds (extra)."""
    result: dict[str, Any] = {
        "changed": run.changed,
        "fault": {
            "name": params["fault"],
            "target": backend.target,
            "method": params["method"],
            "state": params["state"],
            "params": backend.fault_params,
        },
        "matched": backend.matched,
        "pods": [],
        "commands": run.commands,
        "restored": run.restored,
        "confirmation": {
            "confirmed": not run.check_mode,
            "applied_at": run.applied_at,
            "readback_seconds": run.readback_seconds,
            "seconds": run.seconds,
            "prometheus": run.prometheus,
            "warnings": backend.warnings,
        },
    }
    result.update(extra)
    return result


class PodExecBackend(FaultBackend):
    """A fault set and cleared by commands run in each targeted pod, read back by another."""

    desired: dict[str, Any]

    def __init__(self, client: KubeClient, params: dict[str, Any]) -> None:
        self.client = client
        self.params = params
        self.timeout = params["confirm_timeout"]
        self.pods_by_name: dict[str, dict[str, Any]] = {}
        self.matched = 0
        self.warnings: list[str] = []

    @property
    def target(self) -> str:
        raise NotImplementedError

    @property
    def fault_params(self) -> dict[str, Any]:
        return dict(self.desired)

    def read_pod(self, pod: str) -> dict[str, Any] | None:
        raise NotImplementedError

    def commands(
        self, action: str, previous: dict[str, Any] | None = None
    ) -> list[list[str]]:
        raise NotImplementedError

    def ran(self, pod: str, command: list[str], output: str) -> None:
        """What a command's output says of the pod (admin_command, which has no read side)."""

    def details(self, pod: str) -> dict[str, Any]:
        return {}

    def read(self, target: Any = None) -> dict[str, Any]:
        pods = running_pods(
            self.client, self.params["namespace"], self.params["label_selector"]
        )
        self.pods_by_name = {pod["metadata"]["name"]: pod for pod in pods}
        self.matched = len(pods)
        if not pods and self.params["state"] == "present":
            raise ChaosError(
                "No running pods match {} in namespace {}; nothing to inject into.".format(
                    self.params["label_selector"], self.params["namespace"]
                ),
                reason="no_targets",
            )
        return {name: self.read_pod(name) for name in self.pods_by_name}

    def plan(self, current: dict[str, Any]) -> list[Change]:
        targets = choose_targets(list(current), current, self.params, self.desired)
        return [
            Change(
                pod,
                plan_action(self.params["state"], current[pod], self.desired),
                current[pod],
            )
            for pod in targets
        ]

    def record_undo(self, change: Change, restoring: bool) -> None:
        action = self._restore_action(change) if restoring else change.action
        record_exec(
            self.client,
            self.pods_by_name[change.target],
            f"runtime_fault:{self.target}",
            self.commands(CLEAR if action == SET else "restore", change.before),
            self.params["container"],
        )

    def _restore_action(self, change: Change) -> str:
        return CLEAR if change.action == SET else "restore"

    def _run(
        self, pod: str, commands: list[list[str]], check_mode: bool
    ) -> list[dict[str, Any]]:
        ran = []
        for command in commands:
            ran.append({"pod": pod, "command": command})
            if not check_mode:
                self.ran(
                    pod, command, run_in_pod(self.client, self.params, pod, command)
                )
        return ran

    def apply(self, change: Change, check_mode: bool) -> list[dict[str, Any]]:
        return self._run(
            change.target, self.commands(change.action, change.before), check_mode
        )

    def restore(self, change: Change) -> list[dict[str, Any]]:
        commands = self.commands(self._restore_action(change), change.before)
        return self._run(change.target, commands, False)

    def confirming(self, changes: list[Change]) -> list[Change]:
        # Every target is read back once anything changed, also those that needed nothing.
        return list(changes) if any(change.action != NONE for change in changes) else []

    def read_back(self, change: Change, restoring: bool = False) -> tuple[bool, Any]:
        reading = self.read_pod(change.target)
        if not restoring:
            state, wanted = self.params["state"], self.desired
        elif change.before is None:
            state, wanted = "absent", {}
        else:
            state, wanted = "present", change.before
        return plan_action(state, reading, wanted) == NONE, reading

    def partial_failure(
        self, exc: ChaosError, change: Change, done: list[str], restoring: bool
    ) -> ChaosError:
        return already_changed(exc, "Pods", "pod", change.target, done)

    def not_confirmed(
        self, pending: dict[str, Any], changed: bool, restoring: bool
    ) -> ChaosError:
        if restoring:
            return ChaosError(
                "After duration, pods {} do not read back their earlier state.".format(
                    ", ".join(pending)
                ),
                reason="not_confirmed",
                changed=True,
            )
        return ChaosError(
            "The fault {} is not confirmed in pods {} after {} seconds: they read back {}. "
            "What was set stays set; run state=absent to remove it.".format(
                self.target,
                ", ".join(pending),
                self.params["confirm_timeout"],
                pending,
            ),
            reason="not_confirmed",
            changed=changed,
            unconfirmed=list(pending),
        )

    def result(self, run: Run, want_diff: bool) -> dict[str, Any]:
        pods = []
        for change in run.changes:
            entry = {
                "name": change.target,
                "action": change.action,
                "before": change.before,
                "after": predicted_after(change.action, self.desired, change.before)
                if run.check_mode
                else run.readings.get(change.target),
                "confirmed": None if run.check_mode else True,
            }
            entry.update(self.details(change.target))
            pods.append(entry)
        result = fault_result(self, self.params, run, pods=pods)
        if want_diff:
            result["diff"] = {
                "before": {
                    "pods": {change.target: change.before for change in run.changes}
                },
                "after": {"pods": {entry["name"]: entry["after"] for entry in pods}},
            }
        return result


class RuntimeCliBackend(PodExecBackend):
    """Faults through the runtime CLI: `cli fault set|clear|list`."""

    def __init__(self, client: KubeClient, params: dict[str, Any]) -> None:
        super().__init__(client, params)
        self.cli = cli_prefix(params["cli_path"])
        self.name = runtime_fault_name(params["fault"], params.get("resource"))
        self.desired = (
            desired_runtime_params(params["fault"], params)
            if params["state"] == "present"
            else {}
        )
        self.records: dict[str, dict[str, Any]] = {}

    @property
    def target(self) -> str:
        return self.name

    def read_pod(self, pod: str) -> dict[str, Any] | None:
        faults = parse_fault_list(
            run_in_pod(self.client, self.params, pod, fault_list_command(self.cli))
        )
        record = faults.get(self.name)
        if record is None:
            self.records.pop(pod, None)
            return None
        self.records[pod] = record
        return dict(record.get("params") or {})

    def commands(
        self, action: str, previous: dict[str, Any] | None = None
    ) -> list[list[str]]:
        if action in (SET, UPDATE):
            return [fault_set_command(self.cli, self.name, self.desired)]
        if action == CLEAR:
            return [fault_clear_command(self.cli, self.name)]
        if action == "restore" and previous is not None:
            return [fault_set_command(self.cli, self.name, previous)]
        return []

    def details(self, pod: str) -> dict[str, Any]:
        record = self.records.get(pod) or {}
        return {key: record[key] for key in ("corrupted_entries",) if key in record}


class EnvoyRuntimeBackend(PodExecBackend):
    """Faults through Envoy's runtime: POST /runtime_modify and GET /runtime on the admin port."""

    def __init__(self, client: KubeClient, params: dict[str, Any]) -> None:
        super().__init__(client, params)
        self.url = params["envoy_admin_url"]
        self.keys = envoy_runtime_keys(params["fault"], params["envoy_runtime_prefix"])
        self.desired = (
            envoy_runtime_values(
                params["fault"], params, params["envoy_runtime_prefix"]
            )
            if params["state"] == "present"
            else {}
        )

    @property
    def target(self) -> str:
        return ",".join(self.keys)

    def read_pod(self, pod: str) -> dict[str, Any] | None:
        stdout = run_in_pod(self.client, self.params, pod, envoy_read_command(self.url))
        return envoy_current(parse_envoy_runtime(stdout, self.keys))

    def commands(
        self, action: str, previous: dict[str, Any] | None = None
    ) -> list[list[str]]:
        if action in (SET, UPDATE):
            return [envoy_modify_command(self.url, self.desired)]
        if action == CLEAR:
            return [envoy_modify_command(self.url, {key: "" for key in self.keys})]
        if action == "restore" and previous is not None:
            values = {key: str(previous.get(key) or "") for key in self.keys}
            return [envoy_modify_command(self.url, values)]
        return []


class AdminCommandBackend(PodExecBackend):
    """A fault with no standard interface: the runtime's own admin command (set, clear).

    A command has no read side, so what the module knows of a pod is what its last command
    said: before any, the fault is taken as absent for state present (set it) and as present
    for state absent (clear it); after one, as its output matching expected_output says.
    """

    def __init__(self, client: KubeClient, params: dict[str, Any]) -> None:
        super().__init__(client, params)
        self.spec = params["admin_command"]
        self.desired: dict[str, Any] = {}
        self.outputs: dict[str, str] = {}
        self.known: dict[str, dict[str, Any] | None] = {}

    @property
    def target(self) -> str:
        return " ".join(self.spec["set"])

    def read_pod(self, pod: str) -> dict[str, Any] | None:
        if pod in self.known:
            return self.known[pod]
        return {} if self.params["state"] == "absent" else None

    def commands(
        self, action: str, previous: dict[str, Any] | None = None
    ) -> list[list[str]]:
        if action in (SET, UPDATE):
            return [list(self.spec["set"])]
        if action == CLEAR or (action == "restore" and previous is None):
            return [list(self.spec["clear"])]
        return []

    def ran(self, pod: str, command: list[str], output: str) -> None:
        self.outputs[pod] = output
        setting = command == list(self.spec["set"])
        pattern = self.spec.get("expected_output")
        matched = not pattern or re.search(pattern, output or "") is not None
        # A set whose output does not say so did not take; a clear whatever it said.
        self.known[pod] = ({} if matched else None) if setting else None

    def details(self, pod: str) -> dict[str, Any]:
        return {"output": self.outputs[pod]} if pod in self.outputs else {}


POD_BACKENDS = {
    "runtime_cli": RuntimeCliBackend,
    "envoy_runtime": EnvoyRuntimeBackend,
    "admin_command": AdminCommandBackend,
}

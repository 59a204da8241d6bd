# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""gpu_fault's methods behind FaultBackend: taint, cordon and capacity (node patches),
runtime_flag and dcgm (exec in pods). Each target is read, planned, changed and confirmed
before the next one is touched; the pure decisions are in _nodes."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import Any

from ansible_collections.veritas.chaos.plugins.module_utils._client import (
    KubeClient,
    resource_path,
)
from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError
from ansible_collections.veritas.chaos.plugins.module_utils._exec import exec_in_pod
from ansible_collections.veritas.chaos.plugins.module_utils._fault_backends import (
    NONE,
    Change,
    FaultBackend,
    Run,
)
from ansible_collections.veritas.chaos.plugins.module_utils._guard import is_production
from ansible_collections.veritas.chaos.plugins.module_utils._ledger import record_exec
from ansible_collections.veritas.chaos.plugins.module_utils._nodes import (
    GPU_FAULT_NAME,
    dcgm_inject_command,
    node_view,
    parse_fault_list,
    plan_dcgm,
    plan_node,
    plan_runtime_flag,
    pod_annotation_patch,
    read_record,
    runtime_clear_command,
    runtime_list_command,
    runtime_set_command,
)

RECORD = "record"


def select_nodes(client: KubeClient, params: dict[str, Any]) -> list[dict[str, Any]]:
    """The nodes named or selected, each once; a named node that does not exist is an error."""
    found: dict[str, dict[str, Any]] = {}
    for name in params["nodes"] or []:
        node = client.get(resource_path("v1", "nodes", name=name), missing_ok=True)
        if node is None:
            raise ChaosError(
                f"Node {name} not found.", reason="not_found", field="nodes", node=name
            )
        found[name] = node
    if params["node_selector"]:
        for node in client.list(
            resource_path("v1", "nodes"), label_selector=params["node_selector"]
        ):
            found.setdefault(node["metadata"]["name"], node)
    if not found:
        raise ChaosError(
            f"No node matches node_selector {params['node_selector']!r}.",
            reason="not_found",
            field="node_selector",
        )
    for name, node in found.items():
        labels = (node.get("metadata") or {}).get("labels")
        if not params["allow_production"] and is_production(
            labels, params["production_label"], params["production_value"]
        ):
            raise ChaosError(
                f"Node {name} is labelled {params['production_label']}="
                f"{params['production_value']} (production); refusing to act on it. "
                "Set allow_production=true to run there on purpose.",
                reason="production_refused",
                node=name,
            )
    return [found[name] for name in sorted(found)]


def select_pods(client: KubeClient, params: dict[str, Any]) -> list[dict[str, Any]]:
    namespace = params["namespace"]
    found: dict[str, dict[str, Any]] = {}
    for name in params["pods"] or []:
        pod = client.get(resource_path("v1", "pods", namespace, name), missing_ok=True)
        if pod is None:
            raise ChaosError(
                f"Pod {name} not found in namespace {namespace}.",
                reason="not_found",
                field="pods",
                pod=name,
            )
        found[name] = pod
    if params["label_selector"]:
        for pod in client.list(
            resource_path("v1", "pods", namespace),
            label_selector=params["label_selector"],
        ):
            found.setdefault(pod["metadata"]["name"], pod)
    pods = [
        p
        for p in found.values()
        if not (p.get("metadata") or {}).get("deletionTimestamp")
        and (p.get("status") or {}).get("phase") == "Running"
    ]
    if params["nodes"] or params["node_selector"]:
        wanted = {n["metadata"]["name"] for n in select_nodes(client, params)}
        pods = [p for p in pods if (p.get("spec") or {}).get("nodeName") in wanted]
    if not pods:
        raise ChaosError(
            f"No running pod matches pods={params['pods']!r} label_selector="
            f"{params['label_selector']!r} in namespace {namespace}"
            + (
                " on the selected nodes."
                if params["nodes"] or params["node_selector"]
                else "."
            ),
            reason="not_found",
            field="pods, label_selector",
        )
    return sorted(pods, key=lambda p: p["metadata"]["name"])


def _run(
    client: KubeClient,
    pod: dict[str, Any],
    command: list[str],
    params: dict[str, Any],
    exec_fn: Callable[..., Any] = exec_in_pod,
) -> dict[str, Any]:
    result = exec_fn(
        client,
        pod["metadata"]["namespace"],
        pod["metadata"]["name"],
        command,
        container=params["container"],
        timeout=params["exec_timeout"],
    ).as_dict()
    result["command"] = command
    return result


def _check_rc(result: dict[str, Any], what: str, reason: str = "exec_failed") -> None:
    if result["rc"] != 0:
        raise ChaosError(
            "{} failed in pod {} (rc={}): {}".format(
                what,
                result["pod"],
                result["rc"],
                (result["stderr"] or result["stdout"]).strip()[:500],
            ),
            reason=reason,
            pod=result["pod"],
            rc=result["rc"],
            stdout=result["stdout"],
            stderr=result["stderr"],
        )


def _patch_pod_record(
    client: KubeClient,
    pod: dict[str, Any],
    record: dict[str, Any],
    old: dict[str, Any],
    check_mode: bool,
) -> bool:
    patch = pod_annotation_patch(record, old)
    if patch is None:
        return False
    path = resource_path(
        "v1", "pods", pod["metadata"]["namespace"], pod["metadata"]["name"]
    )
    client.patch(path, patch, dry_run=check_mode)
    return True


def dcgm_unavailable(result: dict[str, Any], dcgmi: str) -> ChaosError:
    output = (result["stderr"] or result["stdout"]).strip()[:300]
    if result["rc"] == -1 and not output:
        # the exec error channel carried no exit code: the command could not start
        output = "the command could not be started (not installed in the container?)"
    return ChaosError(
        f"{dcgmi} is not usable in pod {result['pod']} (rc={result['rc']}: "
        f"{output or 'no output'}). The dcgm method needs real NVIDIA DCGM: the dcgmi tool "
        "and a running nv-hostengine on a GPU node. On simulated nodes use method "
        "runtime_flag, taint, cordon or capacity.",
        reason="dcgm_unavailable",
        pod=result["pod"],
    )


class GpuBackend(FaultBackend):
    """A gpu_fault method: one target after the other, each change read back at once."""

    one_target_at_a_time = True
    timeout = 0  # one read-back, no waiting

    def __init__(
        self,
        client: KubeClient,
        params: dict[str, Any],
        exec_fn: Callable[..., Any] = exec_in_pod,
    ) -> None:
        self.client = client
        self.params = params
        self.exec_fn = exec_fn
        self.present = params["state"] == "present"
        self.entries: dict[str, dict[str, Any]] = {}

    def targets(self) -> list[dict[str, Any]]:
        return select_pods(self.client, self.params)

    def run(self, pod: dict[str, Any], command: list[str]) -> dict[str, Any]:
        return _run(self.client, pod, command, self.params, self.exec_fn)

    def ordered(self, record: Change, change: Change | None) -> list[Change]:
        """present writes the record of the originals first, absent drops it last."""
        if change is None:
            return [record]
        return [record, change] if self.present else [change, record]

    def record_change(
        self, pod: dict[str, Any], record: dict[str, Any], old: dict[str, Any]
    ) -> Change:
        patch = pod_annotation_patch(record, old)
        return Change(
            pod["metadata"]["name"],
            NONE if patch is None else RECORD,
            data={"kind": RECORD, "pod": pod, "patch": patch},
        )

    def apply(self, change: Change, check_mode: bool) -> list[dict[str, Any]]:
        if change.data["kind"] == RECORD:
            pod = change.data["pod"]
            path = resource_path(
                "v1", "pods", pod["metadata"]["namespace"], pod["metadata"]["name"]
            )
            self.client.patch(path, change.data["patch"], dry_run=check_mode)
            return []
        if not check_mode:
            self.run_commands(change)
        return []

    def run_commands(self, change: Change) -> None:
        """Run change's commands in its pod, each kept in the target's commands."""
        raise NotImplementedError

    def confirming(self, changes: list[Change]) -> list[Change]:
        return []

    def entry(self, name: str, run: Run) -> dict[str, Any]:
        raise NotImplementedError

    def result(self, run: Run, want_diff: bool) -> dict[str, Any]:
        targets = [self.entry(name, run) for name in self.entries]
        result: dict[str, Any] = {
            "changed": any(target["changed"] for target in targets),
            "method": self.params["method"],
            "state": self.params["state"],
            "targets": targets,
        }
        if want_diff:
            result["diff"] = {
                "before": {target["name"]: target["before"] for target in targets},
                "after": {target["name"]: target["after"] for target in targets},
            }
        return result


def _pod_entry(
    entry: dict[str, Any], before: dict[str, Any], after: dict[str, Any]
) -> dict[str, Any]:
    pod = entry["pod"]
    return {
        "kind": "Pod",
        "name": pod["metadata"]["name"],
        "namespace": pod["metadata"]["namespace"],
        "changed": before != after,
        "before": before,
        "after": after,
        "commands": entry["commands"],
    }


class NodeBackend(GpuBackend):
    """taint, cordon, capacity: a patch of the node and one of its status subresource."""

    def targets(self) -> list[dict[str, Any]]:
        return select_nodes(self.client, self.params)

    def read(self, target: Any = None) -> dict[str, Any]:
        return {target["metadata"]["name"]: target}

    def plan(self, current: dict[str, Any]) -> list[Change]:
        ((name, node),) = current.items()
        plan = plan_node(
            node,
            self.params["method"],
            self.params["state"],
            taint_key=self.params["taint_key"],
            taint_value=self.params["taint_value"],
            taint_effect=self.params["taint_effect"],
            resource=self.params["resource"],
        )
        self.entries[name] = {"node": node, "responses": {}}
        # present: record first, then the status change; absent: status first, then drop the record.
        kinds = ("main", "status") if self.present else ("status", "main")
        self.entries[name]["kinds"] = kinds
        return [
            Change(
                name,
                NONE if plan[kind] is None else kind,
                data={"kind": kind, "patch": plan[kind]},
            )
            for kind in kinds
        ]

    def apply(self, change: Change, check_mode: bool) -> list[dict[str, Any]]:
        kind = change.data["kind"]
        path = resource_path("v1", "nodes", name=change.target)
        target = path + "/status" if kind == "status" else path
        self.entries[change.target]["responses"][kind] = self.client.patch(
            target, change.data["patch"], dry_run=check_mode
        )
        return []

    def entry(self, name: str, run: Run) -> dict[str, Any]:
        node, responses, kinds = (
            self.entries[name][key] for key in ("node", "responses", "kinds")
        )
        if not responses:
            after = node
        elif not run.check_mode:
            after = (
                responses[kinds[-1]] if kinds[-1] in responses else responses[kinds[0]]
            )
        else:
            # Each dry run sees the stored object, so compose them: spec and metadata from the
            # main patch, status from the status patch.
            after = dict(responses.get("main") or node)
            if "status" in responses:
                after["status"] = responses["status"].get("status")
        before_view = node_view(node, self.params["resource"])
        after_view = node_view(after, self.params["resource"])
        return {
            "kind": "Node",
            "name": name,
            "namespace": None,
            "changed": before_view != after_view,
            "before": before_view,
            "after": after_view,
        }


class RuntimeFlagBackend(GpuBackend):
    """runtime_flag: `cli fault set|clear gpu-unavailable`, read back with `cli fault list`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cli = shlex.split(self.params["cli_path"])

    def read_flag(self, pod: dict[str, Any]) -> dict[str, Any] | None:
        listed = self.run(pod, runtime_list_command(self.cli))
        _check_rc(listed, "`cli fault list`")
        return parse_fault_list(listed["stdout"]).get(GPU_FAULT_NAME)

    def read(self, target: Any = None) -> dict[str, Any]:
        return {
            target["metadata"]["name"]: (
                target,
                self.read_flag(target),
                read_record(target),
            )
        }

    def plan(self, current: dict[str, Any]) -> list[Change]:
        ((name, (pod, flag, record)),) = current.items()
        plan = plan_runtime_flag(
            flag, record, self.params["state"], self.params["cpu_fallback"]
        )
        self.entries[name] = {
            "pod": pod,
            "flag": flag,
            "record": record,
            "plan": plan,
            "commands": [],
        }
        if plan["action"] == "set":
            predicted = {"cpu_fallback": True} if plan["cpu_fallback"] else {}
        else:
            predicted = None if plan["action"] == "clear" else flag
        self.entries[name]["after"] = predicted
        change = Change(
            name, plan["action"] or NONE, flag, {"kind": "flag", "pod": pod}
        )
        return self.ordered(self.record_change(pod, plan["record"], record), change)

    def _command(self, action: str, cpu_fallback: bool) -> list[str]:
        if action == "set":
            return runtime_set_command(self.cli, cpu_fallback)
        return runtime_clear_command(self.cli)

    def record_undo(self, change: Change, restoring: bool) -> None:
        if change.data["kind"] == RECORD:
            return
        undo_action = "clear" if change.action == "set" else "set"
        undo = self._command(
            undo_action, bool((change.before or {}).get("cpu_fallback"))
        )
        record_exec(
            self.client,
            change.data["pod"],
            f"gpu_fault:{GPU_FAULT_NAME}",
            [undo],
            self.params["container"],
        )

    def run_commands(self, change: Change) -> None:
        plan = self.entries[change.target]["plan"]
        result = self.run(
            change.data["pod"], self._command(change.action, plan["cpu_fallback"])
        )
        self.entries[change.target]["commands"].append(result)
        _check_rc(result, f"`cli fault {change.action} {GPU_FAULT_NAME}`")

    def confirming(self, changes: list[Change]) -> list[Change]:
        # No silent success: read the flag back.
        return [change for change in changes if change.data["kind"] != RECORD]

    def read_back(self, change: Change, restoring: bool = False) -> tuple[bool, Any]:
        flag = self.read_flag(change.data["pod"])
        self.entries[change.target]["after"] = flag
        return (flag is not None) == (change.action == "set"), flag

    def not_confirmed(
        self, pending: dict[str, Any], changed: bool, restoring: bool
    ) -> ChaosError:
        ((name, flag),) = pending.items()
        action = self.entries[name]["plan"]["action"]
        return ChaosError(
            f"`cli fault {action} {GPU_FAULT_NAME}` in pod "
            f"{name} did not take effect (fault list: {flag!r}).",
            reason="not_confirmed",
            pod=name,
        )

    def entry(self, name: str, run: Run) -> dict[str, Any]:
        entry = self.entries[name]
        before = {"name": name, "flag": entry["flag"], "record": entry["record"]}
        after = {
            "name": name,
            "flag": entry["after"],
            "record": entry["plan"]["record"],
        }
        return _pod_entry(entry, before, after)


class DcgmBackend(GpuBackend):
    """dcgm: `dcgmi test --inject` in pods on GPU nodes; the record stands for the injection."""

    def plan_pod(self, record: dict[str, Any]) -> dict[str, Any]:
        params = self.params
        return plan_dcgm(
            record,
            params["state"],
            params["dcgm_gpu_ids"],
            params["dcgm_field_id"],
            params["dcgm_value"],
            params["dcgm_clear_value"],
        )

    def read(self, target: Any = None) -> dict[str, Any]:
        record = read_record(target)
        if self.plan_pod(record)["injections"]:
            # Only pods that need an injection must have DCGM (also in check mode).
            dcgmi = self.params["dcgmi_path"]
            try:
                probe = self.run(target, [dcgmi, "discovery", "-l"])
            except ChaosError as exc:
                if exc.reason != "exec_failed":
                    raise
                probe = {
                    "pod": target["metadata"]["name"],
                    "rc": -1,
                    "stdout": "",
                    "stderr": exc.msg,
                }
            if probe["rc"] != 0:
                raise dcgm_unavailable(probe, dcgmi)
        return {target["metadata"]["name"]: (target, record)}

    def plan(self, current: dict[str, Any]) -> list[Change]:
        ((name, (pod, record)),) = current.items()
        plan = self.plan_pod(record)
        self.entries[name] = {
            "pod": pod,
            "record": record,
            "plan": plan,
            "commands": [],
        }
        injection = (
            Change(name, "inject", data={"kind": "inject", "pod": pod})
            if plan["injections"]
            else None
        )
        return self.ordered(self.record_change(pod, plan["record"], record), injection)

    def run_commands(self, change: Change) -> None:
        dcgmi = self.params["dcgmi_path"]
        for gpu_id, field_id, value in self.entries[change.target]["plan"][
            "injections"
        ]:
            result = self.run(
                change.data["pod"], dcgm_inject_command(dcgmi, gpu_id, field_id, value)
            )
            self.entries[change.target]["commands"].append(result)
            _check_rc(result, "`dcgmi test --inject`")

    def entry(self, name: str, run: Run) -> dict[str, Any]:
        entry = self.entries[name]
        before = {"name": name, "record": entry["record"]}
        after = {"name": name, "record": entry["plan"]["record"]}
        return _pod_entry(entry, before, after)


GPU_BACKENDS = {
    "taint": NodeBackend,
    "cordon": NodeBackend,
    "capacity": NodeBackend,
    "runtime_flag": RuntimeFlagBackend,
    "dcgm": DcgmBackend,
}

# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure decisions for gpu_fault: what to patch on a node or pod, and how to restore it.

``present`` records the original values on the object itself, in the annotation
ORIGINAL_ANNOTATION (JSON, one entry per method), before it changes anything; ``absent``
restores from that record and removes its entry. A later run needs no memory of the earlier
one, several methods can be stacked on the same node, and each is undone on its own.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError

ORIGINAL_ANNOTATION = "chaos.veritas.io/gpu-fault-original"
GPU_RESOURCE = "nvidia.com/gpu"
TAINT_EFFECTS = ("NoSchedule", "NoExecute")
NODE_METHODS = ("taint", "cordon", "capacity")
POD_METHODS = ("runtime_flag", "dcgm")
METHODS = ("runtime_flag", "taint", "cordon", "capacity", "dcgm")
GPU_FAULT_NAME = "gpu-unavailable"


def annotations_of(obj: dict[str, Any] | None) -> dict[str, str]:
    return dict(((obj or {}).get("metadata") or {}).get("annotations") or {})


def read_record(obj: dict[str, Any] | None) -> dict[str, Any]:
    """The recorded originals of an object (empty when none); an error when unreadable."""
    text = annotations_of(obj).get(ORIGINAL_ANNOTATION)
    if not text:
        return {}
    try:
        record = json.loads(text)
    except ValueError as exc:
        raise ChaosError(
            f"Annotation {ORIGINAL_ANNOTATION} does not hold JSON: {text[:200]!r}.",
            reason="invalid_state",
        ) from exc
    if not isinstance(record, dict):
        raise ChaosError(
            f"Annotation {ORIGINAL_ANNOTATION} does not hold a JSON object: {text[:200]!r}.",
            reason="invalid_state",
        )
    return record


def encode_record(record: dict[str, Any]) -> str | None:
    """The annotation value for a record; None (delete the annotation) when it is empty."""
    if not record:
        return None
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


def annotation_patch(record: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"annotations": {ORIGINAL_ANNOTATION: encode_record(record)}}}


# --- taint -----------------------------------------------------------------------------


def validate_taint(key: str, value: str | None, effect: str) -> None:
    if not key or not key.strip():
        raise ChaosError(
            "taint_key must be a non-empty taint key.",
            reason="invalid_input",
            field="taint_key",
        )
    if effect not in TAINT_EFFECTS:
        raise ChaosError(
            "taint_effect must be one of {}, got {!r}.".format(
                ", ".join(TAINT_EFFECTS), effect
            ),
            reason="invalid_input",
            field="taint_effect",
        )


def make_taint(key: str, value: str | None, effect: str) -> dict[str, Any]:
    taint: dict[str, Any] = {"key": key, "effect": effect}
    if value:
        taint["value"] = value
    return taint


def find_taint(
    taints: list[dict[str, Any]] | None, key: str, effect: str
) -> dict[str, Any] | None:
    for taint in taints or []:
        if taint.get("key") == key and taint.get("effect") == effect:
            return dict(taint)
    return None


def _same_taint(left: dict[str, Any], right: dict[str, Any]) -> bool:
    fields = ("key", "value", "effect")
    return all((left.get(f) or None) == (right.get(f) or None) for f in fields)


def taints_with(
    taints: list[dict[str, Any]] | None, taint: dict[str, Any]
) -> list[dict[str, Any]]:
    """taints with taint set (replacing one of the same key and effect, in place)."""
    result: list[dict[str, Any]] = []
    placed = False
    for current in taints or []:
        if (
            current.get("key") == taint["key"]
            and current.get("effect") == taint["effect"]
        ):
            if not placed:
                result.append(dict(taint))
                placed = True
            continue
        result.append(dict(current))
    if not placed:
        result.append(dict(taint))
    return result


def taints_without(
    taints: list[dict[str, Any]] | None, key: str, effect: str
) -> list[dict[str, Any]]:
    return [
        dict(t)
        for t in taints or []
        if not (t.get("key") == key and t.get("effect") == effect)
    ]


def _taints_equal(
    left: list[dict[str, Any]] | None, right: list[dict[str, Any]] | None
) -> bool:
    left, right = left or [], right or []
    return len(left) == len(right) and all(
        _same_taint(a, b) for a, b in zip(left, right, strict=True)
    )


# --- node plans ------------------------------------------------------------------------


def node_view(node: dict[str, Any], resource: str = GPU_RESOURCE) -> dict[str, Any]:
    """What gpu_fault can change on a node (for diff, changed and the result)."""
    spec = node.get("spec") or {}
    status = node.get("status") or {}
    return {
        "name": (node.get("metadata") or {}).get("name"),
        "taints": [dict(t) for t in spec.get("taints") or []],
        "unschedulable": bool(spec.get("unschedulable")),
        "capacity": (status.get("capacity") or {}).get(resource),
        "allocatable": (status.get("allocatable") or {}).get(resource),
        "record": read_record(node),
    }


def plan_node(
    node: dict[str, Any],
    method: str,
    state: str,
    taint_key: str = "",
    taint_value: str | None = None,
    taint_effect: str = "NoSchedule",
    resource: str = GPU_RESOURCE,
) -> dict[str, Any]:
    """The patches for one node: ``main`` (metadata/spec) and ``status`` (status subresource).

    Either is None when nothing needs to change there. present writes the record in the same
    patch as the spec change (or before the status change); absent restores and drops it.
    """
    if method not in NODE_METHODS:
        raise ChaosError(
            "method {} is not a node method ({}).".format(
                method, ", ".join(NODE_METHODS)
            ),
            reason="invalid_input",
            field="method",
        )
    record = read_record(node)
    spec = node.get("spec") or {}
    status = node.get("status") or {}
    entry = record.get(method)
    new_record = copy.deepcopy(record)
    main: dict[str, Any] = {}
    status_patch: dict[str, Any] | None = None

    if method == "taint":
        validate_taint(taint_key, taint_value, taint_effect)
        taints = spec.get("taints") or []
        ours = make_taint(taint_key, taint_value, taint_effect)
        if state == "present":
            if entry and (entry.get("key"), entry.get("effect")) != (
                taint_key,
                taint_effect,
            ):
                raise ChaosError(
                    "Node {} already has a taint fault recorded ({}:{}); remove it with "
                    "state=absent before injecting {}:{}.".format(
                        _name(node),
                        entry.get("key"),
                        entry.get("effect"),
                        taint_key,
                        taint_effect,
                    ),
                    reason="conflict",
                    node=_name(node),
                )
            if not entry:
                new_record["taint"] = {
                    "key": taint_key,
                    "effect": taint_effect,
                    "original": find_taint(taints, taint_key, taint_effect),
                }
            desired = taints_with(taints, ours)
        else:
            if entry:
                key, effect = entry.get("key"), entry.get("effect")
                desired = taints_without(taints, key, effect)
                if entry.get("original"):
                    desired = taints_with(desired, entry["original"])
                new_record.pop("taint", None)
            else:
                # No record: only a taint that carries our exact marker is ours to remove.
                current = find_taint(taints, taint_key, taint_effect)
                desired = taints
                if current and _same_taint(current, ours):
                    desired = taints_without(taints, taint_key, taint_effect)
        if not _taints_equal(desired, taints):
            main.setdefault("spec", {})["taints"] = desired or None

    elif method == "cordon":
        if state == "present":
            if not entry:
                new_record["cordon"] = {"unschedulable": spec.get("unschedulable")}
            if not spec.get("unschedulable"):
                main.setdefault("spec", {})["unschedulable"] = True
        elif entry:
            original = entry.get("unschedulable")
            if bool(original) != bool(spec.get("unschedulable")):
                # null removes the field, as a node that was never cordoned has none.
                main.setdefault("spec", {})["unschedulable"] = (
                    True if original else None
                )
            new_record.pop("cordon", None)

    else:  # capacity
        capacity = (status.get("capacity") or {}).get(resource)
        allocatable = (status.get("allocatable") or {}).get(resource)
        if state == "present":
            if entry and entry.get("resource") != resource:
                raise ChaosError(
                    "Node {} already has a capacity fault recorded for {}; remove it with "
                    "state=absent first.".format(_name(node), entry.get("resource")),
                    reason="conflict",
                    node=_name(node),
                )
            if not entry:
                new_record["capacity"] = {
                    "resource": resource,
                    "capacity": capacity,
                    "allocatable": allocatable,
                }
            if not (_is_zero(capacity) and _is_zero(allocatable)):
                status_patch = {
                    "status": {
                        "capacity": {resource: "0"},
                        "allocatable": {resource: "0"},
                    }
                }
        elif entry:
            res = entry.get("resource") or resource
            want_cap, want_alloc = entry.get("capacity"), entry.get("allocatable")
            now_cap = (status.get("capacity") or {}).get(res)
            now_alloc = (status.get("allocatable") or {}).get(res)
            if (now_cap, now_alloc) != (want_cap, want_alloc):
                status_patch = {
                    "status": {
                        "capacity": {res: want_cap},
                        "allocatable": {res: want_alloc},
                    }
                }
            new_record.pop("capacity", None)

    if new_record != record:
        main.setdefault("metadata", {})["annotations"] = {
            ORIGINAL_ANNOTATION: encode_record(new_record)
        }
    return {"main": main or None, "status": status_patch, "record": new_record}


def _is_zero(quantity: Any) -> bool:
    return quantity is not None and str(quantity).strip() in ("0", "0.0")


def _name(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name"))


# --- pod plans (runtime flag and DCGM) -------------------------------------------------


def runtime_flag_matches(params: dict[str, Any] | None, cpu_fallback: bool) -> bool:
    """Whether the gpu-unavailable fault is set with the wanted --cpu-fallback."""
    if params is None:
        return False
    return bool(params.get("cpu_fallback")) == bool(cpu_fallback)


def runtime_set_command(cli: list[str], cpu_fallback: bool) -> list[str]:
    command = [*cli, "fault", "set", GPU_FAULT_NAME, "--json"]
    if cpu_fallback:
        command.append("--cpu-fallback")
    return command


def runtime_clear_command(cli: list[str]) -> list[str]:
    return [*cli, "fault", "clear", GPU_FAULT_NAME, "--json"]


def runtime_list_command(cli: list[str]) -> list[str]:
    return [*cli, "fault", "list", "--json"]


def parse_fault_list(text: str) -> dict[str, dict[str, Any]]:
    """``cli fault list --json`` output as {fault name: params}."""
    try:
        records = json.loads(text or "[]")
    except ValueError as exc:
        raise ChaosError(
            f"Could not read `cli fault list --json` output: {text[:200]!r}",
            reason="bad_output",
        ) from exc
    if isinstance(records, dict):
        records = records.get("faults") or []
    if not isinstance(records, list):
        raise ChaosError(
            f"`cli fault list --json` returned {type(records).__name__}, not a list.",
            reason="bad_output",
        )
    return {
        str(r["name"]): dict(r.get("params") or {})
        for r in records
        if isinstance(r, dict) and r.get("name")
    }


def plan_runtime_flag(
    current: dict[str, Any] | None,
    record: dict[str, Any],
    state: str,
    cpu_fallback: bool,
) -> dict[str, Any]:
    """What to do in one pod: ``action`` (set/clear/None), the flag to set and the new record.

    current is the gpu-unavailable fault's params (None when not set).
    """
    entry = record.get("runtime_flag")
    new_record = copy.deepcopy(record)
    action: str | None = None
    want_fallback = cpu_fallback
    if state == "present":
        if not entry:
            new_record["runtime_flag"] = {"original": current}
        if not runtime_flag_matches(current, cpu_fallback):
            action = "set"
    else:
        if entry:
            original = entry.get("original")
            new_record.pop("runtime_flag", None)
            if original is None:
                action = "clear" if current is not None else None
            else:
                want_fallback = bool(original.get("cpu_fallback"))
                if not runtime_flag_matches(current, want_fallback):
                    action = "set"
        elif current is not None:
            # No record, yet the fault is set: absent means no GPU fault in the runtime.
            action = "clear"
    return {"action": action, "cpu_fallback": want_fallback, "record": new_record}


def dcgm_inject_command(
    dcgmi: str, gpu_id: int, field_id: int, value: float | str
) -> list[str]:
    return [
        dcgmi,
        "test",
        "--inject",
        "--gpuid",
        str(gpu_id),
        "-f",
        str(field_id),
        "-v",
        str(value),
    ]


def plan_dcgm(
    record: dict[str, Any],
    state: str,
    gpu_ids: list[int],
    field_id: int,
    value: float | str,
    clear_value: float | str,
) -> dict[str, Any]:
    """Which injections to run in one pod and the new record (DCGM has no cheap read-back)."""
    entry = record.get("dcgm")
    new_record = copy.deepcopy(record)
    injections: list[tuple[int, int, Any]] = []
    if state == "present":
        wanted = {
            "gpu_ids": sorted(gpu_ids),
            "field_id": field_id,
            "value": value,
            "clear_value": clear_value,
        }
        if entry != wanted:
            if entry:
                raise ChaosError(
                    f"A different DCGM injection is recorded on this pod ({json.dumps(entry, sort_keys=True)}); remove it with "
                    "state=absent first.",
                    reason="conflict",
                )
            new_record["dcgm"] = wanted
            injections = [(g, field_id, value) for g in sorted(gpu_ids)]
    elif entry:
        injections = [
            (g, int(entry["field_id"]), entry.get("clear_value", 0))
            for g in entry.get("gpu_ids") or []
        ]
        new_record.pop("dcgm", None)
    return {"injections": injections, "record": new_record}


def pod_annotation_patch(
    record: dict[str, Any], old_record: dict[str, Any]
) -> dict[str, Any] | None:
    if record == old_record:
        return None
    return annotation_patch(record)

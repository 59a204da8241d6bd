# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic of runtime_fault's method memory_limit: quantities, plans, patches, evidence.

The method lowers the memory limit of the Deployments that own the selected pods, so that the
pods the rollout makes are OOMKilled by the kubelet and crash-loop. The values before the first
change are kept in an annotation on the Deployment (metadata only: no rollout), from which
state=absent puts them back. Nothing here does I/O.
"""

from __future__ import annotations

import copy
import json
import re
from decimal import Decimal
from typing import Any

from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError

ANNOTATION = "chaos.veritas.io/memory-limit-before"
DEPLOYMENT_API = "apps/v1"
DEFAULT_CONTAINER = "runtime"
OOM_KILLED = "OOMKilled"
CRASH_LOOP = "CrashLoopBackOff"

# Actions of a per-Deployment plan (the same words as the per-pod plans of the other methods).
SET = "set"
UPDATE = "update"
CLEAR = "clear"
NONE = "none"

# A Kubernetes resource.Quantity: a signed decimal number and a suffix (binary SI, decimal SI
# or a decimal exponent), e.g. 16Mi, 64M, 1.5Gi, 134217728, 128e6.
_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$"
)
_MULTIPLIERS: dict[str, Decimal] = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}
# Kubernetes refuses quantities above 2^63-1 (in the unit); no memory limit comes close.
_MAX_BYTES = Decimal(2) ** 63 - 1


def _invalid(msg: str, field: str) -> ChaosError:
    return ChaosError(msg, reason="invalid_input", field=field)


def parse_quantity(text: Any) -> Decimal | None:
    """A Kubernetes quantity as a number (bytes for memory); None when it is not one."""
    if not isinstance(text, str):
        return None
    match = _QUANTITY.match(text.strip())
    if not match or text.strip() != text:
        return None
    suffix = match.group("suffix") or ""
    try:
        number = Decimal(match.group("number"))
        if suffix[:1] in ("e", "E"):
            return number * Decimal(10) ** int(suffix[1:])
        return number * _MULTIPLIERS[suffix]
    except (ArithmeticError, ValueError):  # InvalidOperation, Overflow
        return None


def check_memory_limit(value: Any, field: str = "memory_limit") -> str:
    """A memory quantity of at least one byte, as the Kubernetes API takes it."""
    text = "" if value is None else str(value)
    number = parse_quantity(text)
    if number is None or len(text) > 64:
        raise _invalid(
            f"{field} must be a Kubernetes quantity such as 16Mi, 64M, 1.5Gi or 134217728 "
            f"(a number with an optional suffix Ki, Mi, Gi, Ti, Pi, Ei, k, M, G, T, P, E), got {text[:80]!r}.",
            field,
        )
    if number < 1 or number > _MAX_BYTES:
        raise _invalid(
            f"{field} must be a memory size from 1 byte to {_MAX_BYTES} bytes, got {text!r}.",
            field,
        )
    return text


def same_quantity(left: Any, right: Any) -> bool:
    """Two quantities are equal in value (the API rewrites 16384Ki as 16Mi); None is absent."""
    if left is None or right is None:
        return left is None and right is None
    a, b = parse_quantity(str(left)), parse_quantity(str(right))
    if a is None or b is None:
        return str(left) == str(right)
    return a == b


def _greater(left: Any, right: Any) -> bool:
    a, b = parse_quantity(str(left)), parse_quantity(str(right))
    return a is not None and b is not None and a > b


def is_below(left: Any, right: Any) -> bool:
    """left is a smaller quantity than right (False when either is not a quantity)."""
    a, b = parse_quantity(str(left)), parse_quantity(str(right))
    return a is not None and b is not None and a < b


# ------------------------------------------------------------------- owners and containers


def controller_owner(obj: dict[str, Any], kind: str) -> str | None:
    """The name of the object's controller of the given kind (its ownerReference), if any."""
    for reference in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if reference.get("kind") == kind and reference.get("controller", True):
            return reference.get("name")
    return None


def containers_of(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    return list(
        (
            (
                ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
            ).get("containers")
        )
        or []
    )


def container_name(deployment: dict[str, Any], wanted: str | None) -> str:
    """The container the method changes: wanted, else the one named runtime, else the first."""
    names = [str(c.get("name")) for c in containers_of(deployment)]
    name = deployment.get("metadata", {}).get("name")
    if wanted is not None:
        if wanted not in names:
            raise _invalid(
                f"Deployment {name} has no container {wanted} (its containers: {', '.join(names) or 'none'}).",
                "container",
            )
        return wanted
    if not names:
        raise _invalid(f"Deployment {name} has no containers.", "container")
    return DEFAULT_CONTAINER if DEFAULT_CONTAINER in names else names[0]


def memory_of(deployment: dict[str, Any], container: str) -> dict[str, str | None]:
    """The container's memory limit and request (None when not set)."""
    for item in containers_of(deployment):
        if item.get("name") == container:
            resources = item.get("resources") or {}
            return {
                "limits_memory": (resources.get("limits") or {}).get("memory"),
                "requests_memory": (resources.get("requests") or {}).get("memory"),
            }
    return {"limits_memory": None, "requests_memory": None}


def containers_with(
    deployment: dict[str, Any], container: str, memory: dict[str, str | None]
) -> list[dict[str, Any]]:
    """The template's containers with the container's memory limit and request set (None removes).

    A JSON merge patch replaces a list whole, so the patch carries every container as it is.
    """
    containers = copy.deepcopy(containers_of(deployment))
    for item in containers:
        if item.get("name") != container:
            continue
        resources = dict(item.get("resources") or {})
        for section, key in (
            ("limits", "limits_memory"),
            ("requests", "requests_memory"),
        ):
            values = dict(resources.get(section) or {})
            if memory.get(key) is None:
                values.pop("memory", None)
            else:
                values["memory"] = memory[key]
            if values:
                resources[section] = values
            else:
                resources.pop(section, None)
        if resources:
            item["resources"] = resources
        else:
            item.pop("resources", None)
    return containers


# ------------------------------------------------------------------- the record and the plans


def encode_before(container: str, memory: dict[str, str | None]) -> str:
    return json.dumps(
        {
            "container": container,
            "limits_memory": memory.get("limits_memory"),
            "requests_memory": memory.get("requests_memory"),
        },
        sort_keys=True,
    )


def decode_before(deployment: dict[str, Any]) -> dict[str, Any] | None:
    """The record of the annotation: container and memory values before the fault; None if absent."""
    annotations = (deployment.get("metadata") or {}).get("annotations") or {}
    text = annotations.get(ANNOTATION)
    if text is None:
        return None
    name = (deployment.get("metadata") or {}).get("name")
    try:
        record = json.loads(text)
    except (TypeError, ValueError):
        record = None
    if (
        not isinstance(record, dict)
        or not isinstance(record.get("container"), str)
        or any(
            record.get(key) is not None and not isinstance(record.get(key), str)
            for key in ("limits_memory", "requests_memory")
        )
    ):
        raise ChaosError(
            f"Deployment {name} has an unreadable {ANNOTATION} annotation {str(text)[:200]!r}; "
            "put its memory limit back by hand and remove the annotation.",
            reason="invalid_state",
            deployment=name,
        )
    return {
        "container": record["container"],
        "limits_memory": record.get("limits_memory"),
        "requests_memory": record.get("requests_memory"),
    }


def desired_memory(
    original: dict[str, str | None], limit: str
) -> dict[str, str | None]:
    """The limit, and the original request unless it is larger (the API refuses requests > limits)."""
    request = original.get("requests_memory")
    if request is not None and _greater(request, limit):
        request = limit
    return {"limits_memory": limit, "requests_memory": request}


def memory_matches(
    current: dict[str, str | None], desired: dict[str, str | None]
) -> bool:
    return all(
        same_quantity(current.get(key), desired.get(key))
        for key in ("limits_memory", "requests_memory")
    )


def plan_present(
    deployment: dict[str, Any], wanted_container: str | None, limit: str
) -> dict[str, Any]:
    """What one Deployment needs for the limit: action, container, before, desired, the record."""
    name = deployment["metadata"]["name"]
    record = decode_before(deployment)
    if record is not None:
        if wanted_container is not None and wanted_container != record["container"]:
            raise _invalid(
                f"Deployment {name} already has a lowered memory limit on container {record['container']}; "
                f"remove it (state=absent) before lowering the limit of container {wanted_container}.",
                "container",
            )
        container = container_name(deployment, record["container"])
    else:
        container = container_name(deployment, wanted_container)
    current = memory_of(deployment, container)
    original = (
        {key: record[key] for key in ("limits_memory", "requests_memory")}
        if record is not None
        else current
    )
    desired = desired_memory(original, limit)
    if memory_matches(current, desired):
        action = NONE
    else:
        action = UPDATE if record is not None else SET
    return {
        "name": name,
        "container": container,
        "action": action,
        "before": current,
        "original": original,
        "desired": desired,
        "recorded": record is not None,
    }


def plan_absent(deployment: dict[str, Any]) -> dict[str, Any]:
    """What one Deployment needs to get its memory back: clear when it carries the record."""
    name = deployment["metadata"]["name"]
    record = decode_before(deployment)
    names = [str(c.get("name")) for c in containers_of(deployment)]
    if record is None:
        container = (
            DEFAULT_CONTAINER if DEFAULT_CONTAINER in names else next(iter(names), None)
        )
        current = memory_of(deployment, container or "")
        return {
            "name": name,
            "container": container,
            "action": NONE,
            "before": current,
            "original": current,
            "desired": current,
            "recorded": False,
            "missing": False,
        }
    container = record["container"]
    original = {key: record[key] for key in ("limits_memory", "requests_memory")}
    return {
        "name": name,
        "container": container,
        "action": CLEAR,
        "before": memory_of(deployment, container),
        "original": original,
        "desired": original,
        "recorded": True,
        "missing": container not in names,
    }


def present_patch(deployment: dict[str, Any], plan: dict[str, Any]) -> dict[str, Any]:
    """The merge patch: the containers with the desired memory, and the record if none is there."""
    body: dict[str, Any] = {
        "spec": {
            "template": {
                "spec": {
                    "containers": containers_with(
                        deployment, plan["container"], plan["desired"]
                    )
                }
            }
        }
    }
    if not plan["recorded"]:
        body["metadata"] = {
            "annotations": {
                ANNOTATION: encode_before(plan["container"], plan["before"])
            }
        }
    return body


def restore_patch(
    deployment: dict[str, Any],
    container: str,
    memory: dict[str, str | None],
    annotation: str | None = None,
) -> dict[str, Any]:
    """The merge patch that puts memory back; the annotation set to annotation (None removes it)."""
    return {
        "metadata": {"annotations": {ANNOTATION: annotation}},
        "spec": {
            "template": {
                "spec": {"containers": containers_with(deployment, container, memory)}
            }
        },
    }


def replicas_of(deployment: dict[str, Any]) -> int:
    replicas = (deployment.get("spec") or {}).get("replicas")
    return 1 if replicas is None else int(replicas)


# ------------------------------------------------------------------- confirmation


def pod_limit_is(pod: dict[str, Any], container: str, limit: str) -> bool:
    for item in (pod.get("spec") or {}).get("containers") or []:
        if item.get("name") == container:
            memory = ((item.get("resources") or {}).get("limits") or {}).get("memory")
            return same_quantity(memory, limit)
    return False


def oom_evidence(pod: dict[str, Any], container: str) -> dict[str, Any] | None:
    """The pod's container was OOMKilled (now or last time) or waits in CrashLoopBackOff."""
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") != container:
            continue
        state = status.get("state") or {}
        last = status.get("lastState") or {}
        reasons = [
            (state.get("terminated") or {}).get("reason"),
            (last.get("terminated") or {}).get("reason"),
            (state.get("waiting") or {}).get("reason"),
        ]
        for reason in (OOM_KILLED, CRASH_LOOP):
            if reason in reasons:
                return {
                    "pod": (pod.get("metadata") or {}).get("name"),
                    "reason": reason,
                    "restarts": int(status.get("restartCount") or 0),
                }
    return None


def rollout_state(deployment: dict[str, Any]) -> dict[str, Any]:
    """Whether the Deployment's rollout is complete, with the counts that say so."""
    status = deployment.get("status") or {}
    generation = int((deployment.get("metadata") or {}).get("generation") or 0)
    observed = int(status.get("observedGeneration") or 0)
    wanted = replicas_of(deployment)
    counts = {
        "replicas": int(status.get("replicas") or 0),
        "updated": int(status.get("updatedReplicas") or 0),
        "available": int(status.get("availableReplicas") or 0),
    }
    complete = (
        observed >= generation
        and counts["updated"] == counts["replicas"] == counts["available"] == wanted
    )
    return dict(
        counts, wanted=wanted, observed=observed >= generation, complete=complete
    )


def selector_string(deployment: dict[str, Any]) -> str | None:
    """The Deployment's matchLabels as a label selector for a list call (None if it has none)."""
    labels = ((deployment.get("spec") or {}).get("selector") or {}).get(
        "matchLabels"
    ) or {}
    if not labels:
        return None
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))

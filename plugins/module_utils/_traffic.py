# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure decisions for traffic weights (ConfigMap and OpenShift Route backends)."""

from __future__ import annotations

import copy
from typing import Any

from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError

WEIGHT_MIN = 0
WEIGHT_MAX = 100
WEIGHT_TOTAL = 100


def validate_weights(control: Any, canary: Any) -> tuple[int, int]:
    """Both weights are integers 0-100 that sum to 100; otherwise a ChaosError naming the field."""
    checked: dict[str, int] = {}
    for field, value in (("control", control), ("canary", canary)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ChaosError(
                f"{field} must be an integer from {WEIGHT_MIN} to {WEIGHT_MAX}, got {value!r}.",
                reason="invalid_input",
                field=field,
            )
        if not WEIGHT_MIN <= value <= WEIGHT_MAX:
            raise ChaosError(
                f"{field} must be an integer from {WEIGHT_MIN} to {WEIGHT_MAX}, got {value}.",
                reason="invalid_input",
                field=field,
            )
        checked[field] = value
    total = checked["control"] + checked["canary"]
    if total != WEIGHT_TOTAL:
        raise ChaosError(
            f"control and canary must sum to {WEIGHT_TOTAL}, "
            f"got {checked['control']} + {checked['canary']} = {total}.",
            reason="invalid_input",
            field="control, canary",
        )
    return checked["control"], checked["canary"]


def parse_weight(value: Any) -> int | None:
    """A stored weight ('90', 90) as int; None when absent or not a number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def configmap_weights(
    data: dict[str, Any] | None, control_key: str, canary_key: str
) -> dict[str, int | None]:
    data = data or {}
    return {
        "control": parse_weight(data.get(control_key)),
        "canary": parse_weight(data.get(canary_key)),
    }


def configmap_patch(
    data: dict[str, Any] | None,
    control_key: str,
    canary_key: str,
    control: int,
    canary: int,
) -> dict[str, Any] | None:
    """The merge patch that sets the weights as strings (as the runbook writes them); None if already set."""
    desired = {control_key: str(control), canary_key: str(canary)}
    current = data or {}
    if all(current.get(key) == value for key, value in desired.items()):
        return None
    return {"data": desired}


def route_weights(spec: dict[str, Any] | None) -> dict[str, Any]:
    spec = spec or {}
    to = spec.get("to") or {}
    alternates = spec.get("alternateBackends") or []
    canary = alternates[0] if alternates else {}
    return {
        "control": parse_weight(to.get("weight")),
        "canary": parse_weight(canary.get("weight")),
        "control_service": to.get("name"),
        "canary_service": canary.get("name"),
    }


def route_patch(
    spec: dict[str, Any] | None,
    control: int,
    canary: int,
    control_service: str | None = None,
    canary_service: str | None = None,
) -> dict[str, Any] | None:
    """The merge patch for a Route's spec.to and spec.alternateBackends; None if already set.

    The canary becomes the only alternate backend so that the two weights are the whole split.
    Services default to the ones the Route already names.
    """
    current = route_weights(spec)
    control_name = control_service or current["control_service"]
    canary_name = canary_service or current["canary_service"]
    if not control_name:
        raise ChaosError(
            "The Route has no spec.to service; set route_control_service.",
            reason="invalid_input",
            field="route_control_service",
        )
    if not canary_name:
        raise ChaosError(
            "The Route has no alternate backend; set route_canary_service.",
            reason="invalid_input",
            field="route_canary_service",
        )
    to = copy.deepcopy((spec or {}).get("to") or {})
    to.update({"kind": "Service", "name": control_name, "weight": control})
    alternates = [{"kind": "Service", "name": canary_name, "weight": canary}]
    if (spec or {}).get("to") == to and (spec or {}).get(
        "alternateBackends"
    ) == alternates:
        return None
    return {"spec": {"to": to, "alternateBackends": alternates}}


def split_observed(
    observed_canary_percent: float | None, canary: int, tolerance: float
) -> bool:
    """Whether the served canary share matches the weight; no data never matches."""
    if observed_canary_percent is None:
        return False
    return abs(observed_canary_percent - canary) <= tolerance

# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Escalation inputs from what a game day measured.

``escalation_inputs`` turns a run's measurements (the components its fault hit, the load window
of its observation, what it detected and how the rollback went) into the facts that
``veritas.chaos.escalation_level`` judges. Pure; its documentation is in ``escalation_inputs.yml``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ansible.errors import AnsibleFilterError

# More than this share of the users' requests failed: a widespread outage (runbook L3). A
# canary at its 10 % weight failing completely stays well below; a live colour that fails does not.
WIDESPREAD_ERROR_RATIO = 0.5
# Variant header values that name no environment: missing (a transport error) or the data
# plane's "no backend selected".
NOT_AN_ENVIRONMENT = frozenset({"", "-", "none"})
UNATTRIBUTED = "(errors not attributed to a variant or colour)"
MEASURED_KEYS = (
    "faulted",
    "load",
    "corruption_detected",
    "sessions_lost",
    "auto_recovered",
    "rollback_needed",
    "rolled_back",
    "manual_recovery_needed",
)
BOOL_KEYS = (
    "corruption_detected",
    "auto_recovered",
    "rollback_needed",
    "rolled_back",
    "manual_recovery_needed",
)


def _count(name: str, value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise AnsibleFilterError(
            f"escalation_inputs: {name} must be a non-negative integer, got {value!r}"
        )
    return value


def _optional_bool(name: str, value: Any) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise AnsibleFilterError(
            f"escalation_inputs: {name!r} must be true, false or null, got {value!r}"
        )
    return value


def _faulted(value: Any) -> set[str]:
    if value is None:
        return set()
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise AnsibleFilterError(
            f"escalation_inputs: 'faulted' must be a list of component names, got {value!r}"
        )
    names = set()
    for name in value:
        if name is None:
            continue  # a pod without the variant or colour label
        if not isinstance(name, str):
            raise AnsibleFilterError(
                f"escalation_inputs: each name in 'faulted' must be a string, got {name!r}"
            )
        if name:
            names.add(name)
    return names


def _errors_of(name: str, stats: Any) -> int:
    if not isinstance(stats, Mapping):
        raise AnsibleFilterError(
            f"escalation_inputs: load variant {name!r} must be a dict of statistics, got {stats!r}"
        )
    if "errors" in stats:
        return _count(f"load variant {name!r} 'errors'", stats["errors"])
    return _count(f"load variant {name!r} 'count'", stats.get("count")) - _count(
        f"load variant {name!r} 'ok'", stats.get("ok")
    )


def _user_impact(load: Any, threshold: float) -> dict[str, Any]:
    """What users saw in the load window: which environments failed requests, how many, wrong answers."""
    unknown = {
        "environments": None,
        "unattributed_errors": None,
        "widespread": None,
        "data_loss_risk": None,
        "wrong_answers": None,
    }
    if load is None or load == {}:
        return unknown
    if not isinstance(load, Mapping):
        raise AnsibleFilterError(
            f"escalation_inputs: 'load' must be the statistics of a load window (a dict) or null, got {load!r}"
        )
    count = _count("load 'count'", load.get("count", load.get("total")))
    if count == 0:
        return unknown
    if "errors" in load:
        errors = _count("load 'errors'", load["errors"])
    else:
        errors = count - _count("load 'ok'", load.get("ok"))
    per_variant = load.get("by_variant")
    if per_variant is None and isinstance(load.get("variants"), Mapping) and all(
        isinstance(stats, Mapping) for stats in load["variants"].values()
    ):
        per_variant = load["variants"]  # the load generator's summary
    if per_variant is None:
        environments = None
        unattributed = None
    else:
        if not isinstance(per_variant, Mapping):
            raise AnsibleFilterError(
                f"escalation_inputs: load 'by_variant' must be a dict, got {per_variant!r}"
            )
        by_name = {str(name): _errors_of(str(name), stats) for name, stats in per_variant.items()}
        environments = sorted(
            name for name, failed in by_name.items() if failed > 0 and name not in NOT_AN_ENVIRONMENT
        )
        attributed = sum(by_name[name] for name in environments)
        unattributed = max(errors - attributed, 0)
    measured = load.get("measured", True) is not False
    share = errors / count
    wrong = _count("load 'wrong_answers'", load.get("wrong_answers"))
    checked = load.get("checked")
    answers_checked = checked is None or _count("load 'checked'", checked) > 0
    return {
        "environments": environments,
        "unattributed_errors": unattributed,
        "widespread": (share > threshold) if measured else None,
        "data_loss_risk": (wrong > 0) if answers_checked else None,
        "wrong_answers": wrong if answers_checked else None,
    }


def escalation_inputs(
    measured: Mapping[str, Any], widespread_error_ratio: float = WIDESPREAD_ERROR_RATIO
) -> dict[str, Any]:
    """The facts for ``escalation_level`` from what one game day measured (see escalation_inputs.yml)."""
    if measured is None:
        measured = {}
    if not isinstance(measured, Mapping):
        raise AnsibleFilterError(
            f"escalation_inputs expects a dict of measurements, got {type(measured).__name__}"
        )
    unknown_keys = sorted(set(measured) - set(MEASURED_KEYS))
    if unknown_keys:
        raise AnsibleFilterError(
            f"escalation_inputs: unknown key(s) {', '.join(unknown_keys)}; allowed keys are {', '.join(MEASURED_KEYS)}"
        )
    if (
        isinstance(widespread_error_ratio, bool)
        or not isinstance(widespread_error_ratio, (int, float))
        or math.isnan(widespread_error_ratio)
        or not 0 <= widespread_error_ratio < 1
    ):
        raise AnsibleFilterError(
            f"escalation_inputs: widespread_error_ratio must be a number from 0 up to (not including) 1, "
            f"got {widespread_error_ratio!r}"
        )
    flags = {key: _optional_bool(key, measured.get(key)) for key in BOOL_KEYS}
    faulted = _faulted(measured.get("faulted"))
    impact = _user_impact(measured.get("load"), float(widespread_error_ratio))

    environments = impact["environments"]
    components = set(faulted)
    if environments is None:
        environments_affected = None
    else:
        components.update(environments)
        environments_affected = len(environments)
        if not environments and impact["unattributed_errors"]:
            # Users saw errors that no variant or colour answered: at least one environment failed.
            environments_affected = 1
            components.add(UNATTRIBUTED)

    sessions_lost = measured.get("sessions_lost")
    if sessions_lost is not None and not isinstance(sessions_lost, bool):
        sessions_lost = _count("'sessions_lost'", sessions_lost) > 0

    wrong = impact["wrong_answers"]
    detected = flags["corruption_detected"]
    if wrong:
        detected = True
    contained = None
    if detected and wrong is not None:
        contained = wrong == 0

    needed, rolled_back = flags["rollback_needed"], flags["rolled_back"]
    if needed is None:
        rollback_failed = None
    elif not needed:
        rollback_failed = False
    else:
        rollback_failed = None if rolled_back is None else not rolled_back
    manual = flags["manual_recovery_needed"]
    if manual is None and rollback_failed:
        manual = True  # runbook: manual rollback when the automatic one fails

    return {
        "failed_components": len(components),
        "environments_affected": environments_affected,
        "widespread": impact["widespread"],
        "data_loss_risk": impact["data_loss_risk"],
        "data_corruption_detected": detected,
        "data_corruption_contained": contained,
        "sessions_lost": sessions_lost,
        "auto_recovered": flags["auto_recovered"],
        "automatic_rollback_failed": rollback_failed,
        "manual_recovery_needed": manual,
    }


class FilterModule:
    """veritas.chaos escalation filters."""

    def filters(self) -> dict[str, Any]:
        return {"escalation_inputs": escalation_inputs}

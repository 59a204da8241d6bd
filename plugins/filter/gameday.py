# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Game-day judging: success criteria, verdicts, escalation levels and the metrics math they need.

Every function is pure and importable on its own; ``FilterModule`` exposes them as
``veritas.chaos.<name>`` filters. Their documentation is in the sidecar ``<name>.yml`` files.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from ansible.errors import AnsibleFilterError

COMPARISONS: dict[str, Any] = {
    "<=": lambda measured, bound: measured <= bound,
    "<": lambda measured, bound: measured < bound,
    ">=": lambda measured, bound: measured >= bound,
    ">": lambda measured, bound: measured > bound,
    "==": lambda measured, bound: measured == bound,
}
REQUIRED_CRITERION_KEYS = ("id", "description", "measured", "bound", "comparison")
# passed/status/line are accepted so that an evaluated list can be evaluated again.
OPTIONAL_CRITERION_KEYS = ("unit", "evidence", "note", "missing", "missing_text", "passed", "status", "line")
# What a null measurement means: nothing could be measured (inconclusive), or the awaited event
# never came, which is the failure itself (an alert that never fired, a rollback that never ran).
MISSING_OUTCOMES = ("inconclusive", "fail")

PASS = "pass"
FAIL = "fail"
INCONCLUSIVE = "inconclusive"

# The runbook's "Escalation Paths" table.
ESCALATION_PATHS: dict[str, dict[str, Any]] = {
    "none": {
        "contact": None,
        "response_time": None,
        "response_minutes": None,
        "criteria": "No component failed",
    },
    "L1": {
        "contact": "On-call engineer",
        "response_time": "15 minutes",
        "response_minutes": 15,
        "criteria": "Single component failure, auto-recovery works",
    },
    "L2": {
        "contact": "Platform team",
        "response_time": "30 minutes",
        "response_minutes": 30,
        "criteria": "Multiple component failure, manual recovery needed",
    },
    "L3": {
        "contact": "Engineering lead + Security",
        "response_time": "Immediate",
        "response_minutes": 0,
        "criteria": "Widespread outage, data loss potential",
    },
}
ESCALATION_BOOL_FACTS = (
    "auto_recovered",
    "manual_recovery_needed",
    "automatic_rollback_failed",
    "data_loss_risk",
    "data_corruption_detected",
    "data_corruption_contained",
    "sessions_lost",
    "widespread",
    "security_incident",
)
ESCALATION_INT_FACTS = ("failed_components", "environments_affected")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _numeric_text(value: Any) -> Any:
    """A number written as text (``-e x=12.5``, a text survey answer) becomes that number."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return value
    return value if math.isnan(number) or math.isinf(number) else number


def _format_value(value: Any, unit: str) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = "NaN" if math.isnan(value) else f"{value:.3f}".rstrip("0").rstrip(".")
    else:
        text = str(value)
    if not unit or isinstance(value, bool):
        return text
    return f"{text}{unit}" if unit == "%" else f"{text} {unit}"


def evaluate_criterion(criterion: Mapping[str, Any]) -> dict[str, Any]:
    """Judge one criterion; nothing measured is inconclusive (``passed`` None), or a fail with ``missing: fail``."""
    if not isinstance(criterion, Mapping):
        raise AnsibleFilterError(
            f"each criterion must be a dict, got {type(criterion).__name__}: {criterion!r}"
        )
    label = criterion.get("id", "<no id>")
    missing = [key for key in REQUIRED_CRITERION_KEYS if key not in criterion]
    if missing:
        raise AnsibleFilterError(
            f"criterion {label!r}: missing key(s) {', '.join(missing)}; "
            f"required keys are {', '.join(REQUIRED_CRITERION_KEYS)}"
        )
    unknown = sorted(
        set(criterion) - set(REQUIRED_CRITERION_KEYS) - set(OPTIONAL_CRITERION_KEYS)
    )
    if unknown:
        raise AnsibleFilterError(
            f"criterion {label!r}: unknown key(s) {', '.join(unknown)}; allowed keys are "
            f"{', '.join(REQUIRED_CRITERION_KEYS + OPTIONAL_CRITERION_KEYS[:5])}"
        )
    if not isinstance(criterion["id"], str) or not criterion["id"]:
        raise AnsibleFilterError(
            f"criterion {label!r}: 'id' must be a non-empty string"
        )
    if not isinstance(criterion["description"], str) or not criterion["description"]:
        raise AnsibleFilterError(
            f"criterion {label!r}: 'description' must be a non-empty string (the runbook's words)"
        )
    comparison = criterion["comparison"]
    if comparison not in COMPARISONS:
        raise AnsibleFilterError(
            f"criterion {label!r}: 'comparison' is {comparison!r}; allowed values are {', '.join(COMPARISONS)}"
        )
    measured = _numeric_text(criterion["measured"])
    bound = _numeric_text(criterion["bound"])
    if not (_is_number(bound) or isinstance(bound, bool)):
        raise AnsibleFilterError(
            f"criterion {label!r}: 'bound' must be a number or a boolean, got {type(bound).__name__}: {bound!r}"
        )
    if measured is not None and not (
        _is_number(measured) or isinstance(measured, bool)
    ):
        raise AnsibleFilterError(
            f"criterion {label!r}: 'measured' must be a number, a boolean or null (not measured), "
            f"got {type(measured).__name__}: {measured!r}"
        )
    if (isinstance(bound, bool) or isinstance(measured, bool)) and comparison != "==":
        raise AnsibleFilterError(
            f"criterion {label!r}: a boolean 'measured' or 'bound' needs 'comparison' '==', got {comparison!r}"
        )
    if isinstance(bound, bool) != isinstance(measured, bool) and measured is not None:
        raise AnsibleFilterError(
            f"criterion {label!r}: 'measured' ({measured!r}) and 'bound' ({bound!r}) must both be booleans or both numbers"
        )
    unit = criterion.get("unit") or ""
    if not isinstance(unit, str):
        raise AnsibleFilterError(
            f"criterion {label!r}: 'unit' must be a string, got {unit!r}"
        )
    evidence = criterion.get("evidence")
    if evidence is None:
        evidence = {}
    if not isinstance(evidence, Mapping):
        raise AnsibleFilterError(
            f"criterion {label!r}: 'evidence' must be a dict, got {type(evidence).__name__}"
        )
    missing_outcome = criterion.get("missing") or "inconclusive"
    if missing_outcome not in MISSING_OUTCOMES:
        raise AnsibleFilterError(
            f"criterion {label!r}: 'missing' is {missing_outcome!r}; allowed values are {', '.join(MISSING_OUTCOMES)}"
        )
    missing_text = criterion.get("missing_text") or "not measured"
    if not isinstance(missing_text, str):
        raise AnsibleFilterError(
            f"criterion {label!r}: 'missing_text' must be a string, got {missing_text!r}"
        )

    if measured is None or (isinstance(measured, float) and math.isnan(measured)):
        measured = None
        passed, status = (False, "FAIL") if missing_outcome == "fail" else (None, "INCONCLUSIVE")
        line = f"{criterion['description']}: {missing_text} (needs {comparison} {_format_value(bound, unit)}) {status}"
    else:
        passed = bool(COMPARISONS[comparison](measured, bound))
        status = "PASS" if passed else "FAIL"
        line = f"{criterion['description']}: {_format_value(measured, unit)} {comparison} {_format_value(bound, unit)} {status}"
    result = dict(criterion)
    result.update(
        measured=measured,
        bound=bound,
        unit=unit,
        evidence=dict(evidence),
        missing=missing_outcome,
        missing_text=missing_text,
        passed=passed,
        status=status,
        line=line,
    )
    return result


def evaluate_criteria(criteria: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Judge every criterion of a game day; ids must be unique."""
    if isinstance(criteria, (str, bytes, Mapping)) or not isinstance(
        criteria, Sequence
    ):
        raise AnsibleFilterError(
            f"evaluate_criteria expects a list of criteria, got {type(criteria).__name__}"
        )
    evaluated = [evaluate_criterion(criterion) for criterion in criteria]
    seen: set[str] = set()
    for criterion in evaluated:
        if criterion["id"] in seen:
            raise AnsibleFilterError(
                f"criterion id {criterion['id']!r} appears more than once; ids must be unique"
            )
        seen.add(criterion["id"])
    return evaluated


def gameday_verdict(criteria: Sequence[Mapping[str, Any]]) -> str:
    """'fail' if any criterion failed, else 'inconclusive' if any was not measured (or there are none), else 'pass'."""
    evaluated = evaluate_criteria(criteria)
    if any(criterion["passed"] is False for criterion in evaluated):
        return FAIL
    if not evaluated or any(criterion["passed"] is None for criterion in evaluated):
        return INCONCLUSIVE
    return PASS


def _escalation_facts(facts: Mapping[str, Any]) -> dict[str, Any]:
    if facts is None:
        facts = {}
    if not isinstance(facts, Mapping):
        raise AnsibleFilterError(
            f"escalation_level expects a dict of facts, got {type(facts).__name__}"
        )
    allowed = ESCALATION_INT_FACTS + ESCALATION_BOOL_FACTS
    unknown = sorted(set(facts) - set(allowed))
    if unknown:
        raise AnsibleFilterError(
            f"escalation_level: unknown fact(s) {', '.join(unknown)}; allowed facts are {', '.join(allowed)}"
        )
    checked: dict[str, Any] = {}
    for key in ESCALATION_INT_FACTS:
        value = facts.get(key)
        if value is None:
            value = 0
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise AnsibleFilterError(
                f"escalation_level: {key!r} must be a non-negative integer, got {value!r}"
            )
        checked[key] = value
    for key in ESCALATION_BOOL_FACTS:
        value = facts.get(key)
        if value is not None and not isinstance(value, bool):
            raise AnsibleFilterError(
                f"escalation_level: {key!r} must be true, false or null, got {value!r}"
            )
        checked[key] = value
    return checked


def escalation_level(facts: Mapping[str, Any]) -> dict[str, Any]:
    """The runbook's escalation level (L1/L2/L3, or 'none') for what went wrong during a game day.

    Unknown is treated conservatively: a failure whose auto-recovery is not confirmed is L2,
    detected data corruption not confirmed as contained is L3.
    """
    f = _escalation_facts(facts)
    l3: list[str] = []
    l2: list[str] = []
    l1: list[str] = []
    if f["widespread"]:
        l3.append("widespread outage")
    if f["environments_affected"] >= 2:
        l3.append(
            f"{f['environments_affected']} environments/variants affected simultaneously"
        )
    if f["data_loss_risk"]:
        l3.append("data loss potential")
    if f["data_corruption_detected"] and f["data_corruption_contained"] is not True:
        l3.append("data corruption detected and not contained")
    if f["sessions_lost"]:
        l3.append("sessions lost")
    if f["security_incident"]:
        l3.append("security incident suspected")
    if f["failed_components"] >= 2:
        l2.append(f"{f['failed_components']} components failed")
    if f["automatic_rollback_failed"]:
        l2.append("automatic rollback failed")
    if f["manual_recovery_needed"]:
        l2.append("manual recovery needed")
    failed = (
        f["failed_components"] >= 1
        or f["environments_affected"] >= 1
        or f["data_corruption_detected"]
    )
    if failed and f["auto_recovered"] is False and not f["manual_recovery_needed"]:
        l2.append("auto-recovery did not work")
    elif failed and f["auto_recovered"] is None and not (l2 or l3):
        l2.append("auto-recovery not confirmed")
    if failed and f["auto_recovered"] and not (l2 or l3):
        l1.append("single component failure, auto-recovery works")
    if f["data_corruption_detected"] and f["data_corruption_contained"] is True:
        l1.append("data corruption detected and contained")

    if l3:
        level = "L3"
    elif l2:
        level = "L2"
    elif l1:
        level = "L1"
    else:
        level = "none"
    reasons = l3 + l2 + l1 or ["no component failed"]
    path = ESCALATION_PATHS[level]
    return {
        "level": level,
        "contact": path["contact"],
        "response_time": path["response_time"],
        "response_minutes": path["response_minutes"],
        "criteria": path["criteria"],
        "reasons": reasons,
    }


def percent_change(before: Any, after: Any, ndigits: int | None = None) -> float | None:
    """Relative change from ``before`` to ``after`` in percent; None when it is undefined (no data, before 0)."""
    for name, value in (("before", before), ("after", after)):
        if value is not None and not _is_number(value):
            raise AnsibleFilterError(
                f"percent_change: {name!r} must be a number or null, got {value!r}"
            )
    if before is None or after is None or math.isnan(before) or math.isnan(after):
        return None
    if before == 0:
        return 0.0 if after == 0 else None
    change = (after - before) / abs(before) * 100.0
    return round(change, ndigits) if ndigits is not None else change


def split_ratio(
    counts_by_variant: Mapping[str, Any], ndigits: int | None = None
) -> dict[str, float | None]:
    """Each variant's share of the total in percent (0-100); every share is None when the total is 0."""
    if not isinstance(counts_by_variant, Mapping):
        raise AnsibleFilterError(
            f"split_ratio expects a dict of variant -> count, got {type(counts_by_variant).__name__}"
        )
    for variant, count in counts_by_variant.items():
        if not _is_number(count) or count < 0 or math.isnan(count):
            raise AnsibleFilterError(
                f"split_ratio: count for {variant!r} must be a non-negative number, got {count!r}"
            )
    total = sum(counts_by_variant.values())
    if total == 0:
        return {variant: None for variant in counts_by_variant}
    shares = {
        variant: count / total * 100.0 for variant, count in counts_by_variant.items()
    }
    if ndigits is not None:
        shares = {variant: round(share, ndigits) for variant, share in shares.items()}
    return shares


def _to_datetime(name: str, value: Any) -> datetime:
    if _is_number(value):
        return datetime.fromtimestamp(value, tz=UTC)
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise AnsibleFilterError(
                f"seconds_between: {name!r} is not an ISO 8601 time: {value!r}"
            ) from exc
    else:
        raise AnsibleFilterError(
            f"seconds_between: {name!r} must be an ISO 8601 string, epoch seconds or null, got {value!r}"
        )
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def seconds_between(start: Any, end: Any, ndigits: int | None = 3) -> float | None:
    """Seconds from ``start`` to ``end`` (ISO 8601 strings or epoch seconds; naive times are UTC); None if either is null."""
    if start is None or end is None or start == "" or end == "":
        return None
    delta = (_to_datetime("end", end) - _to_datetime("start", start)).total_seconds()
    return round(delta, ndigits) if ndigits is not None else delta


# What a scenario's measure step may say about one criterion (the rest is the registry's).
MEASURE_KEYS = ("measured", "evidence", "missing", "missing_text", "note", "bound", "description")


def scenario_criteria(
    criteria: Sequence[Mapping[str, Any]],
    measures: Mapping[str, Any] | None,
    bounds: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Join a scenario's criteria from the registry with what the run measured, by criterion id.

    The registry gives the words, comparison, unit and bound; ``bounds`` the bound's value (the
    engine resolves the registry's variable names); a measure's own ``bound`` wins over both. No
    measures at all (the run failed before measuring) gives no criteria; a measure for an id the
    registry does not list, or a registry criterion without a measure, is an error, except for
    criteria marked ``optional`` (measured only in some runs).
    """
    if not measures:
        return []
    if not isinstance(measures, Mapping):
        raise AnsibleFilterError(
            f"scenario_criteria: measures must be a dict of criterion id to measure, got {type(measures).__name__}"
        )
    known = [c.get("id") for c in criteria]
    unknown = sorted(set(measures) - set(known))
    if unknown:
        raise AnsibleFilterError(
            f"scenario_criteria: measured {', '.join(unknown)}, which the registry does not list; "
            f"its criteria are {', '.join(known)}"
        )
    bounds = bounds or {}
    joined = []
    for criterion in criteria:
        label = criterion["id"]
        measure = measures.get(label)
        if measure is None:
            # An optional criterion left out, or measured as null: not part of this run.
            if criterion.get("optional"):
                continue
            raise AnsibleFilterError(
                f"scenario_criteria: criterion {label!r} of the registry was not measured; "
                f"measured: {', '.join(measures)}"
            )
        if not isinstance(measure, Mapping):
            raise AnsibleFilterError(
                f"scenario_criteria: the measure of {label!r} must be a dict with keys {', '.join(MEASURE_KEYS)}"
            )
        extra = sorted(set(measure) - set(MEASURE_KEYS))
        if extra:
            raise AnsibleFilterError(
                f"scenario_criteria: the measure of {label!r} has unknown key(s) {', '.join(extra)}; "
                f"allowed keys are {', '.join(MEASURE_KEYS)}"
            )
        entry = {
            "id": label,
            # A run may name what it found (the colour it switched to) in its own words.
            "description": measure.get("description") or criterion.get("description") or criterion["runbook"],
            "comparison": criterion["comparison"],
            "unit": criterion.get("unit", ""),
            "bound": measure["bound"] if "bound" in measure else bounds.get(label, criterion.get("bound")),
            "measured": measure.get("measured"),
        }
        entry.update({k: measure[k] for k in ("evidence", "missing", "missing_text", "note") if k in measure})
        joined.append(entry)
    return joined


class FilterModule:
    """veritas.chaos game-day filters."""

    def filters(self) -> dict[str, Any]:
        return {
            "evaluate_criteria": evaluate_criteria,
            "gameday_verdict": gameday_verdict,
            "escalation_level": escalation_level,
            "percent_change": percent_change,
            "split_ratio": split_ratio,
            "seconds_between": seconds_between,
            "scenario_criteria": scenario_criteria,
        }

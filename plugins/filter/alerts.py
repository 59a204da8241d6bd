# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A scenario's alerts from the standard places.

``active_alerts``: which Prometheus has active (the steady state's "no alert is firing");
``fired_alerts``: which fired after the injection (Prometheus's ALERTS series, a range query);
``silencing``: the Alertmanager silences that kept such an alert from paging anyone. Pure; the
documentation is in ``active_alerts.yml``, ``fired_alerts.yml`` and ``silencing.yml``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ansible.errors import AnsibleFilterError

STATES = ("firing", "pending")
# Labels that say where an alert is, shown after its name; the rest stay in ``labels``.
WHERE_LABELS = ("namespace", "variant", "deployment", "pod", "reason")


def _alert_list(response: Any) -> Sequence[Any]:
    if isinstance(response, Mapping):
        if response.get("status", "success") != "success":
            raise AnsibleFilterError(
                f"active_alerts: Prometheus answered {response.get('status')!r}: "
                f"{response.get('errorType', '')} {response.get('error', '')}".rstrip()
            )
        data = response.get("data")
        alerts = data.get("alerts") if isinstance(data, Mapping) else None
        if alerts is None:
            raise AnsibleFilterError(
                "active_alerts expects the answer of Prometheus's /api/v1/alerts ({'data': {'alerts': [...]}}) "
                f"or its list of alerts, got a dict with keys {sorted(response)}"
            )
        response = alerts
    if isinstance(response, (str, bytes)) or not isinstance(response, Sequence):
        raise AnsibleFilterError(
            f"active_alerts expects a list of alerts, got {type(response).__name__}"
        )
    return response


def _names(value: Any, what: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, Sequence) or not all(isinstance(name, str) for name in value):
        raise AnsibleFilterError(f"active_alerts: {what} must be a list of strings, got {value!r}")
    return list(value)


def active_alerts(
    response: Any,
    alertnames: Any,
    namespace: str | None = None,
    states: Any = STATES,
) -> list[dict[str, Any]]:
    """The alerts named in ``alertnames`` that are in one of ``states``, oldest first.

    An alert with a ``namespace`` label counts only in ``namespace`` (when given); one without
    (for example ``absent(...)``) counts everywhere.
    """
    names = set(_names(alertnames, "alertnames"))
    wanted_states = set(_names(states, "states"))
    found = []
    for alert in _alert_list(response):
        if not isinstance(alert, Mapping):
            raise AnsibleFilterError(f"active_alerts: each alert must be a dict, got {alert!r}")
        labels = alert.get("labels") or {}
        if not isinstance(labels, Mapping):
            raise AnsibleFilterError(f"active_alerts: an alert's labels must be a dict, got {labels!r}")
        name = labels.get("alertname")
        state = alert.get("state")
        if name not in names or state not in wanted_states:
            continue
        if namespace and labels.get("namespace") not in (None, namespace):
            continue
        active_at = alert.get("activeAt")
        where = ", ".join(f"{key}={labels[key]}" for key in WHERE_LABELS if labels.get(key))
        summary = (alert.get("annotations") or {}).get("summary") or ""
        line = f"{name} is {state} since {active_at or 'an unknown time'}"
        if where:
            line += f" ({where})"
        if summary:
            line += f": {summary}"
        found.append(
            {
                "alertname": name,
                "state": state,
                "active_at": active_at,
                "labels": dict(labels),
                "summary": summary,
                "line": line,
            }
        )
    return sorted(found, key=lambda item: (item["active_at"] or "", item["alertname"], item["line"]))


# RFC 3339 as Alertmanager writes it: fractions up to nanoseconds, Z or an offset.
_RFC3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|z|[+-]\d{2}:\d{2})$"
)


def rfc3339_epoch(text: Any) -> float:
    """Epoch seconds of an RFC 3339 time such as 2026-11-30T04:05:06.123456789Z."""
    match = _RFC3339.match(str(text or ""))
    if not match:
        raise AnsibleFilterError(f"silencing: {text!r} is not an RFC 3339 time")
    day, clock, fraction, zone = match.groups()
    zone = "+00:00" if zone in ("Z", "z") else zone
    stamp = datetime.fromisoformat(f"{day}T{clock}{zone}")  # aware: timestamp() needs no local zone
    return stamp.timestamp() + (float("0." + fraction) if fraction else 0.0)


def fired_alerts(response: Any, since: Any) -> list[dict[str, Any]]:
    """Alerts that were firing at or after ``since`` (epoch seconds), from a range query of
    Prometheus's ``ALERTS{alertstate="firing"}`` series; first first, one per label set.

    The range keeps an alert that fired and resolved between two polls (a rollback within
    seconds), which Alertmanager's list of active alerts has already dropped.
    """
    try:
        since_epoch = float(since)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"fired_alerts: since must be epoch seconds, got {since!r}") from exc
    if not isinstance(response, Mapping) or response.get("status", "success") != "success":
        raise AnsibleFilterError(
            "fired_alerts expects the answer of Prometheus's /api/v1/query_range, got "
            f"{(response or {}).get('error') if isinstance(response, Mapping) else type(response).__name__}"
        )
    found = []
    for series in (response.get("data") or {}).get("result") or []:
        labels = {k: v for k, v in (series.get("metric") or {}).items() if k not in ("__name__", "alertstate")}
        times = [float(t) for t, value in series.get("values") or [] if float(t) >= since_epoch and value == "1"]
        if times:
            found.append({"alertname": labels.get("alertname"), "started": min(times), "labels": labels})
    return sorted(found, key=lambda item: (item["started"], item["alertname"] or ""))


def _matches(matcher: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    value = str(labels.get(matcher.get("name"), ""))
    wanted = str(matcher.get("value", ""))
    hit = re.fullmatch(wanted, value) is not None if matcher.get("isRegex") else value == wanted
    return hit if matcher.get("isEqual", True) else not hit


def silencing(silences: Any, labels: Any, at: Any) -> list[dict[str, Any]]:
    """The Alertmanager silences (``GET /api/v2/silences``) that silenced an alert with
    ``labels`` at ``at`` (epoch seconds): in force then, every matcher matching."""
    if not isinstance(silences, Sequence) or isinstance(silences, (str, bytes)):
        raise AnsibleFilterError(
            f"silencing expects the list Alertmanager's /api/v2/silences answers, got {type(silences).__name__}"
        )
    moment = float(at)
    found = []
    for silence in silences:
        if not isinstance(silence, Mapping):
            raise AnsibleFilterError(f"silencing: each silence must be a dict, got {silence!r}")
        if not rfc3339_epoch(silence.get("startsAt")) <= moment <= rfc3339_epoch(silence.get("endsAt")):
            continue
        if all(_matches(m, labels or {}) for m in silence.get("matchers") or []):
            found.append(
                {
                    "id": silence.get("id"),
                    "created_by": silence.get("createdBy"),
                    "comment": silence.get("comment"),
                    "ends_at": silence.get("endsAt"),
                }
            )
    return found


class FilterModule:
    """veritas.chaos alert filters."""

    def filters(self) -> dict[str, Any]:
        return {"active_alerts": active_alerts, "fired_alerts": fired_alerts, "silencing": silencing}

# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A scenario's alerts from the standard places.

``active_alerts``: which Prometheus has active (the steady state's "no alert is firing");
``paged_alerts``: which reached Alertmanager, un-silenced, after the injection (an "alert fires
within" criterion). Pure; their documentation is in ``active_alerts.yml`` and ``paged_alerts.yml``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
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
        raise AnsibleFilterError(f"paged_alerts: {text!r} is not an RFC 3339 time")
    day, clock, fraction, zone = match.groups()
    zone = "+00:00" if zone in ("Z", "z") else zone
    stamp = datetime.fromisoformat(f"{day}T{clock}{zone}").astimezone(timezone.utc)
    return stamp.timestamp() + (float("0." + fraction) if fraction else 0.0)


def paged_alerts(
    response: Any,
    alertnames: Any,
    since: Any,
    labels: Any = None,
) -> list[dict[str, Any]]:
    """The alerts of ``alertnames`` that Alertmanager holds active (not silenced, not inhibited),
    that started firing at or after ``since`` (epoch seconds) and carry ``labels``; first first.

    ``response`` is the answer of Alertmanager's ``GET /api/v2/alerts`` (a list). An alert that
    started before ``since`` was not caused by the injection; a silenced one never paged anyone.
    """
    names = set(_names(alertnames, "alertnames"))
    try:
        since_epoch = float(since)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"paged_alerts: since must be epoch seconds, got {since!r}") from exc
    wanted = dict(labels or {})
    if not isinstance(response, Sequence) or isinstance(response, (str, bytes)):
        raise AnsibleFilterError(
            f"paged_alerts expects the list Alertmanager's /api/v2/alerts answers, got {type(response).__name__}"
        )
    found = []
    for alert in response:
        if not isinstance(alert, Mapping):
            raise AnsibleFilterError(f"paged_alerts: each alert must be a dict, got {alert!r}")
        alert_labels = alert.get("labels") or {}
        name = alert_labels.get("alertname")
        state = (alert.get("status") or {}).get("state", "active")
        if name not in names or state != "active":
            continue
        if any(str(alert_labels.get(key)) != str(value) for key, value in wanted.items()):
            continue
        started = rfc3339_epoch(alert.get("startsAt"))
        if started < since_epoch:
            continue
        found.append(
            {
                "alertname": name,
                "started": round(started, 3),
                "starts_at": alert.get("startsAt"),
                "labels": dict(alert_labels),
                "summary": (alert.get("annotations") or {}).get("summary") or "",
                "fingerprint": alert.get("fingerprint"),
            }
        )
    return sorted(found, key=lambda item: (item["started"], item["alertname"]))


class FilterModule:
    """veritas.chaos alert filters."""

    def filters(self) -> dict[str, Any]:
        return {"active_alerts": active_alerts, "paged_alerts": paged_alerts}

# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which of a scenario's alerts Prometheus has active: the steady state's "no alert is firing".

Pure; the documentation of ``active_alerts`` is in ``active_alerts.yml``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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


class FilterModule:
    """veritas.chaos alert filters."""

    def filters(self) -> dict[str, Any]:
        return {"active_alerts": active_alerts}

# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Safety rules that hold for every module: production is refused unless allowed."""

from __future__ import annotations

from typing import Any

from ansible_collections.veritas.chaos.plugins.module_utils._client import (
    KubeClient,
    resource_path,
)
from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError


def is_production(labels: dict[str, str] | None, label: str, value: str) -> bool:
    """True when the namespace labels mark it as production."""
    return (labels or {}).get(label) == value


def production_refusal(
    namespace: str,
    labels: dict[str, str] | None,
    label: str,
    value: str,
    allow_production: bool,
) -> str | None:
    """The refusal message for a production namespace, or None when the module may proceed."""
    if allow_production or not is_production(labels, label, value):
        return None
    return (
        f"Namespace {namespace} is marked as production (label {label}={value}); refusing to act on it. "
        "Set allow_production=true to run there on purpose."
    )


def guard_namespace(
    client: KubeClient, namespace: str, params: dict[str, Any]
) -> dict[str, Any]:
    """Read the namespace and refuse a production one unless allow_production; returns the namespace."""
    ns = client.get(resource_path("v1", "namespaces", name=namespace), missing_ok=True)
    if ns is None:
        raise ChaosError(
            f"Namespace {namespace} does not exist.",
            reason="not_found",
            namespace=namespace,
        )
    labels = (ns.get("metadata") or {}).get("labels") or {}
    refusal = production_refusal(
        namespace,
        labels,
        params["production_label"],
        params["production_value"],
        params["allow_production"],
    )
    if refusal:
        raise ChaosError(refusal, reason="production_refused", namespace=namespace)
    return ns

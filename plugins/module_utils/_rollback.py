# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The canary rollback action: the traffic ConfigMap to 100% control (runbook "Canary Rollback").

Shared by the canary_analysis module and the lab's rollback controller. Uses the weight logic
of traffic_split (_traffic.py) so that both write the ConfigMap exactly as the runbook does.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.veritas.chaos.plugins.module_utils._client import (
    KubeClient,
    objects_differ,
    resource_path,
    strip_volatile,
)
from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError
from ansible_collections.veritas.chaos.plugins.module_utils._traffic import (
    configmap_patch,
    configmap_weights,
)

ROLLBACK_CONTROL = 100
ROLLBACK_CANARY = 0


def rollback_traffic(
    client: KubeClient,
    namespace: str,
    name: str,
    control_key: str,
    canary_key: str,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Set control 100 / canary 0 with a merge patch; dry_run is a server-side dry run.

    Returns changed, the weights before and after, and the stripped objects for a diff.
    """
    path = resource_path("v1", "configmaps", namespace, name)
    before = client.get(path, missing_ok=True)
    if before is None:
        raise ChaosError(
            f"ConfigMap {name} not found in namespace {namespace}; cannot roll back.",
            reason="not_found",
            name=name,
            namespace=namespace,
        )
    patch = configmap_patch(
        before.get("data"), control_key, canary_key, ROLLBACK_CONTROL, ROLLBACK_CANARY
    )
    after = before if patch is None else client.patch(path, patch, dry_run=dry_run)
    return {
        "changed": objects_differ(before, after),
        "previous_weights": configmap_weights(
            before.get("data"), control_key, canary_key
        ),
        "weights": configmap_weights(after.get("data"), control_key, canary_key),
        "before": strip_volatile(before),
        "after": strip_volatile(after),
    }

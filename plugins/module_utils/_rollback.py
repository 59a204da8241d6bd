# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Traffic weights on the cluster through a traffic backend (_traffic.py): read, plan the merge
patch, apply it, read the weights back. traffic_split sets any weights with set_weights; the
canary rollback (runbook "Canary Rollback": control 100 / canary 0) is rollback_traffic, shared
by the canary_analysis module and the lab's rollback controller. What a patch changes is
recorded by the change ledger of a recording client, whose restore puts it back.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.veritas.chaos.plugins.module_utils._client import (
    KubeClient,
    objects_differ,
    strip_volatile,
)
from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError
from ansible_collections.veritas.chaos.plugins.module_utils._traffic import (
    TrafficBackend,
)

ROLLBACK_CONTROL = 100
ROLLBACK_CANARY = 0


def read_traffic(
    client: KubeClient,
    backend: TrafficBackend,
    namespace: str,
    name: str,
    missing: str = "",
) -> dict[str, Any]:
    """The backend's object; a not_found ChaosError (with ``missing`` appended) when absent."""
    obj = client.get(backend.path(namespace, name), missing_ok=True)
    if obj is None:
        raise ChaosError(
            f"{backend.kind} {name} not found in namespace {namespace}{missing}.",
            reason="not_found",
            name=name,
            namespace=namespace,
        )
    return obj


def set_weights(
    client: KubeClient,
    backend: TrafficBackend,
    namespace: str,
    name: str,
    control: int,
    canary: int,
    dry_run: bool = False,
    missing: str = "",
) -> dict[str, Any]:
    """Set the weights with the backend's merge patch (none when already set); dry_run is a
    server-side dry run.

    Returns changed, the weights before and after (read back from the patched object), and
    the objects without volatile metadata, for a diff.
    """
    before = read_traffic(client, backend, namespace, name, missing)
    patch = backend.patch(before, control, canary)
    after = (
        before
        if patch is None
        else client.patch(backend.path(namespace, name), patch, dry_run=dry_run)
    )
    return {
        "changed": objects_differ(before, after),
        "previous_weights": backend.weights(before),
        "weights": backend.weights(after),
        "before": strip_volatile(before),
        "after": strip_volatile(after),
    }


def rollback_traffic(
    client: KubeClient,
    backend: TrafficBackend,
    namespace: str,
    name: str,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Set control 100 / canary 0 (see set_weights)."""
    return set_weights(
        client,
        backend,
        namespace,
        name,
        ROLLBACK_CONTROL,
        ROLLBACK_CANARY,
        dry_run=dry_run,
        missing="; cannot roll back",
    )

# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running the runtime CLI (or curl) in a pod for runtime_fault and cache_warmup."""

from __future__ import annotations

import time
from typing import Any

from ansible_collections.veritas.chaos.plugins.module_utils._blast import is_candidate
from ansible_collections.veritas.chaos.plugins.module_utils._client import (
    KubeClient,
    resource_path,
)
from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError
from ansible_collections.veritas.chaos.plugins.module_utils._exec import (
    ExecResult,
    exec_in_pod,
)

# exec_in_pod reports -1 when the stream closed without an exit status on the error channel.
NO_STATUS = -1
RETRY_SLEEP = 0.3


def lost_status(result: ExecResult) -> bool:
    """The stream ended without an exit status and without output: the command's fate is unknown."""
    return result.rc == NO_STATUS and not result.stdout and not result.stderr


def run_checked(
    client: KubeClient,
    namespace: str,
    pod: str,
    command: list[str],
    container: str | None = None,
    timeout: int = 30,
    idempotent: bool = True,
) -> str:
    """Run command in the pod and return its stdout; a non-zero exit is a ChaosError naming all.

    An idempotent command (a read, a `fault set` with the same parameters, a `fault clear`) is
    run once more when the exec stream lost its exit status.
    """
    attempts = 2 if idempotent else 1
    for attempt in range(attempts):
        result = exec_in_pod(
            client, namespace, pod, command, container=container, timeout=timeout
        )
        if not lost_status(result) or attempt == attempts - 1:
            break
        time.sleep(RETRY_SLEEP)
    if result.rc != 0:
        detail = (result.stderr or result.stdout or "").strip()[:500]
        if lost_status(result):
            detail = "the exec stream closed without an exit status"
        raise ChaosError(
            "Command {} in pod {}/{} failed (exit code {}): {}".format(
                " ".join(command), namespace, pod, result.rc, detail
            ),
            reason="exec_failed",
            pod=pod,
            rc=result.rc,
        )
    return result.stdout


def run_in_pod(
    client: KubeClient,
    params: dict[str, Any],
    pod: str,
    command: list[str],
    idempotent: bool = True,
) -> str:
    """run_checked with the module's namespace, container and exec_timeout parameters."""
    return run_checked(
        client,
        params["namespace"],
        pod,
        command,
        container=params["container"],
        timeout=params["exec_timeout"],
        idempotent=idempotent,
    )


def running_pods(
    client: KubeClient, namespace: str, selector: str
) -> list[dict[str, Any]]:
    """The live pods in phase Running that match selector, sorted by name (the exec targets)."""
    pods = client.list(resource_path("v1", "pods", namespace), label_selector=selector)
    live = [
        pod
        for pod in pods
        if is_candidate(pod) and (pod.get("status") or {}).get("phase") == "Running"
    ]
    return sorted(live, key=lambda pod: pod["metadata"]["name"])

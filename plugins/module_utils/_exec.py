# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a command in a pod through the API's exec subresource (works on any cluster)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ansible_collections.veritas.chaos.plugins.module_utils._client import KubeClient
from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError

ERROR_CHANNEL = 3
_EXIT_STATUS = re.compile(r"exit status (\d+)")


@dataclass
class ExecResult:
    pod: str
    rc: int
    stdout: str
    stderr: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "pod": self.pod,
            "rc": self.rc,
            "stdout": self.stdout,
            "stderr": self.stderr,
        }


def exit_code_from_status(status_text: str | None) -> int:
    """The exit code carried by the exec error channel ({"status": "Success"} means 0)."""
    if not status_text:
        return -1
    try:
        status = json.loads(status_text)
    except ValueError:
        return -1
    if status.get("status") == "Success":
        return 0
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message"))
            except (TypeError, ValueError):
                return -1
    # Some runtimes (kwok's local exec among them) report the exit as an internal error
    # whose message ends in "exit status N".
    found = _EXIT_STATUS.search(str(status.get("message") or ""))
    return int(found.group(1)) if found else -1


def exec_in_pod(
    client: KubeClient,
    namespace: str,
    pod: str,
    command: list[str],
    container: str | None = None,
    timeout: int = 30,
) -> ExecResult:
    """Run command in the pod and return its exit code and output; a timeout is an error."""
    try:
        from kubernetes.stream import stream
    except (
        ImportError
    ) as exc:  # pragma: no cover - the client import already failed before this
        raise ChaosError(
            f"The kubernetes Python library is required for exec: {exc}",
            reason="missing_library",
        ) from exc
    kwargs: dict[str, Any] = {
        "command": list(command),
        "stderr": True,
        "stdin": False,
        "stdout": True,
        "tty": False,
        "_preload_content": False,
    }
    if container:
        kwargs["container"] = container
    try:
        response = stream(
            client.core_v1.connect_get_namespaced_pod_exec, pod, namespace, **kwargs
        )
        response.run_forever(timeout=timeout)
        still_running = response.is_open()
        stdout = response.read_stdout() or ""
        stderr = response.read_stderr() or ""
        status_text = None if still_running else response.read_channel(ERROR_CHANNEL)
        response.close()
    except ChaosError:
        raise
    except Exception as exc:
        raise ChaosError(
            f"exec in pod {namespace}/{pod} failed: {exc}",
            reason="exec_failed",
            pod=pod,
        ) from exc
    if still_running:
        raise ChaosError(
            f"Command {command} in pod {namespace}/{pod} did not finish within {timeout} seconds.",
            reason="timeout",
            pod=pod,
        )
    return ExecResult(
        pod=pod, rc=exit_code_from_status(status_text), stdout=stdout, stderr=stderr
    )

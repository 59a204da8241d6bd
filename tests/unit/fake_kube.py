"""An in-memory stand-in for KubeClient: enough of the API for the modules' logic."""

from __future__ import annotations

import copy
import json
from typing import Any

from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386 JSON merge patch."""
    result = copy.deepcopy(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


class FakeKube:
    """Objects keyed by REST path; records every call; dry runs never store."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str, bool]] = []
        self.version = 100
        self.fail_on: dict[tuple[str, str], ChaosError] = {}

    def put(self, path: str, obj: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        self.version += 1
        obj.setdefault("metadata", {})["resourceVersion"] = str(self.version)
        obj["metadata"]["managedFields"] = [
            {"manager": "test", "time": str(self.version)}
        ]
        self.objects[path] = obj
        return copy.deepcopy(obj)

    @property
    def writes(self) -> list[tuple[str, str, bool]]:
        return [call for call in self.calls if call[0] != "GET"]

    def _check_fail(self, method: str, path: str) -> None:
        if (method, path) in self.fail_on:
            raise self.fail_on[(method, path)]

    def get(self, path: str, missing_ok: bool = False) -> dict[str, Any] | None:
        self.calls.append(("GET", path, False))
        self._check_fail("GET", path)
        if path in self.objects:
            return copy.deepcopy(self.objects[path])
        if missing_ok:
            return None
        raise ChaosError("not found: " + path, reason="not_found", status=404)

    def list(
        self,
        path: str,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        self.calls.append(("GET", path, False))
        wanted = (
            dict(part.split("=", 1) for part in label_selector.split(","))
            if label_selector
            else {}
        )
        items = []
        for key, obj in sorted(self.objects.items()):
            if key.rsplit("/", 1)[0] != path:
                continue
            labels = (obj.get("metadata") or {}).get("labels") or {}
            if all(labels.get(k) == v for k, v in wanted.items()):
                items.append(copy.deepcopy(obj))
        return items

    def create(
        self, path: str, body: dict[str, Any], dry_run: bool = False
    ) -> dict[str, Any]:
        self.calls.append(("POST", path, dry_run))
        target = path + "/" + body["metadata"]["name"]
        self._check_fail("POST", target)
        if target in self.objects:
            raise ChaosError("exists", reason="conflict", status=409)
        if dry_run:
            return copy.deepcopy(body)
        body = copy.deepcopy(body)
        body["metadata"].setdefault("uid", "uid-" + body["metadata"]["name"])
        return self.put(target, body)

    def replace(
        self, path: str, body: dict[str, Any], dry_run: bool = False
    ) -> dict[str, Any]:
        self.calls.append(("PUT", path, dry_run))
        self._check_fail("PUT", path)
        current = self.objects.get(path)
        if current is None:
            raise ChaosError("not found", reason="not_found", status=404)
        if (
            body.get("metadata", {}).get("resourceVersion")
            != current["metadata"]["resourceVersion"]
        ):
            raise ChaosError("conflict", reason="conflict", status=409)
        return copy.deepcopy(body) if dry_run else self.put(path, body)

    def patch(
        self, path: str, body: Any, dry_run: bool = False, content_type: str = ""
    ) -> dict[str, Any]:
        self.calls.append(("PATCH", path, dry_run))
        self._check_fail("PATCH", path)
        if path.endswith("/status") and path[: -len("/status")] in self.objects:
            path = path[: -len("/status")]  # the status subresource of a stored object
        if path not in self.objects:
            raise ChaosError("not found", reason="not_found", status=404)
        merged = _merge(self.objects[path], json.loads(json.dumps(body)))
        if dry_run:
            return merged
        if merged == self.objects[path]:
            return copy.deepcopy(merged)
        return self.put(path, merged)

    def delete(
        self,
        path: str,
        dry_run: bool = False,
        grace_period_seconds: int | None = None,
        preconditions: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        self.calls.append(("DELETE", path, dry_run))
        self._check_fail("DELETE", path)
        if path not in self.objects:
            raise ChaosError("not found", reason="not_found", status=404)
        if (
            preconditions
            and "resourceVersion" in preconditions
            and preconditions["resourceVersion"]
            != self.objects[path]["metadata"]["resourceVersion"]
        ):
            raise ChaosError("conflict", reason="conflict", status=409)
        obj = self.objects[path]
        if not dry_run:
            del self.objects[path]
        return obj


def namespace(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": labels or {}},
    }


def pod(
    name: str,
    labels: dict[str, str],
    ready: bool = True,
    phase: str = "Running",
    uid: str | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels, "uid": uid or "uid-" + name},
        "spec": {"nodeName": "kwok-node-0"},
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }

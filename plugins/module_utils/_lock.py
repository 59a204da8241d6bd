# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A coordination.k8s.io Lease used as a lock with holder and expiry.

A crashed run does not block forever: a Lease whose renewTime + leaseDurationSeconds
is in the past may be taken over. Writes use resourceVersion, so two runs racing for
the same expired Lease cannot both win.
"""

from __future__ import annotations

import datetime
from typing import Any

from ansible_collections.veritas.chaos.plugins.module_utils._client import (
    KubeClient,
    resource_path,
)
from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError

LEASE_API = "coordination.k8s.io/v1"
ACQUIRE = "acquire"
TAKE_OVER = "take_over"
RENEW = "renew"
HELD = "held"


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def format_micro_time(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str | None) -> datetime.datetime | None:
    """Parse a Kubernetes Time/MicroTime string; None when absent or unreadable."""
    if not text:
        return None
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed


def lease_expiry(spec: dict[str, Any]) -> datetime.datetime | None:
    """When the lease stops protecting its holder (renewTime or acquireTime + duration)."""
    start = parse_time(spec.get("renewTime")) or parse_time(spec.get("acquireTime"))
    duration = spec.get("leaseDurationSeconds")
    if start is None or duration is None:
        return None
    return start + datetime.timedelta(seconds=int(duration))


def lease_expired(spec: dict[str, Any], now: datetime.datetime) -> bool:
    """A lease with no holder, no times or a past expiry protects nobody."""
    if not spec.get("holderIdentity"):
        return True
    expiry = lease_expiry(spec)
    return expiry is None or expiry <= now


def lock_decision(
    spec: dict[str, Any] | None, holder: str, now: datetime.datetime
) -> str:
    """What to do with a lease: acquire (none), renew (ours), take_over (expired) or held."""
    if spec is None:
        return ACQUIRE
    if spec.get("holderIdentity") == holder:
        return RENEW
    if lease_expired(spec, now):
        return TAKE_OVER
    return HELD


def lease_spec(
    holder: str,
    duration_seconds: int,
    now: datetime.datetime,
    acquire_time: str | None = None,
) -> dict[str, Any]:
    stamp = format_micro_time(now)
    return {
        "holderIdentity": holder,
        "leaseDurationSeconds": int(duration_seconds),
        "acquireTime": acquire_time or stamp,
        "renewTime": stamp,
    }


class LeaseLock:
    """Acquire and release one Lease; in check mode only the refusal is evaluated."""

    def __init__(
        self,
        client: KubeClient,
        namespace: str,
        name: str,
        holder: str,
        duration_seconds: int,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.name = name
        self.holder = holder
        self.duration_seconds = duration_seconds
        self.lease: dict[str, Any] | None = None

    @property
    def path(self) -> str:
        return resource_path(LEASE_API, "leases", self.namespace, self.name)

    def read(self) -> dict[str, Any] | None:
        return self.client.get(self.path, missing_ok=True)

    def _refuse(self, spec: dict[str, Any]) -> ChaosError:
        expiry = lease_expiry(spec)
        return ChaosError(
            "Another switch is in progress: Lease {}/{} is held by {} until {}.".format(
                self.namespace,
                self.name,
                spec.get("holderIdentity"),
                format_micro_time(expiry) if expiry else "unknown",
            ),
            reason="locked",
            lock_holder=spec.get("holderIdentity"),
            lock_expires=format_micro_time(expiry) if expiry else None,
        )

    def check(self, now: datetime.datetime | None = None) -> str:
        """The decision without writing anything; raises when another holder has it."""
        current = self.read()
        decision = lock_decision(
            current.get("spec") if current else None, self.holder, now or utcnow()
        )
        if decision == HELD:
            raise self._refuse(current["spec"] if current else {})
        return decision

    def acquire(self, now: datetime.datetime | None = None) -> str:
        moment = now or utcnow()
        current = self.read()
        spec = current.get("spec") if current else None
        decision = lock_decision(spec, self.holder, moment)
        if decision == HELD:
            raise self._refuse(spec or {})
        try:
            if current is None:
                body = {
                    "apiVersion": LEASE_API,
                    "kind": "Lease",
                    "metadata": {
                        "name": self.name,
                        "namespace": self.namespace,
                        "labels": {"app.kubernetes.io/managed-by": "veritas.chaos"},
                    },
                    "spec": lease_spec(self.holder, self.duration_seconds, moment),
                }
                self.lease = self.client.create(
                    resource_path(LEASE_API, "leases", self.namespace), body
                )
            else:
                acquire_time = (
                    (spec or {}).get("acquireTime") if decision == RENEW else None
                )
                body = dict(current)
                body["spec"] = lease_spec(
                    self.holder, self.duration_seconds, moment, acquire_time
                )
                self.lease = self.client.replace(self.path, body)
        except ChaosError as exc:
            if exc.reason in ("conflict", "already_exists"):
                raise ChaosError(
                    f"Another switch took Lease {self.namespace}/{self.name} at the same moment; try again.",
                    reason="locked",
                ) from exc
            raise
        return decision

    def release(self) -> None:
        """Delete the lease if it is still ours (resourceVersion precondition)."""
        if self.lease is None:
            current = self.read()
            if (
                current is None
                or (current.get("spec") or {}).get("holderIdentity") != self.holder
            ):
                return
            self.lease = current
        version = (self.lease.get("metadata") or {}).get("resourceVersion")
        try:
            self.client.delete(
                self.path,
                preconditions={"resourceVersion": version} if version else None,
            )
        except ChaosError as exc:
            if exc.reason not in ("not_found", "conflict"):
                raise
        self.lease = None

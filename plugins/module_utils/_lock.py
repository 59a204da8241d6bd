# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A coordination.k8s.io Lease used as a lock with holder and expiry.

A crashed run does not block forever: a Lease whose renewTime + leaseDurationSeconds
is in the past may be taken over. Writes use resourceVersion, so two runs racing for
the same expired Lease cannot both win.
"""

from __future__ import annotations

import copy
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

# Why the lock is held (which game day, which run), so whoever is refused sees who and why.
PURPOSE_ANNOTATION = "veritas.chaos/lock-purpose"


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


def lease_purpose(lease: dict[str, Any] | None) -> str | None:
    """The purpose recorded on a Lease (annotation veritas.chaos/lock-purpose), if any."""
    annotations = ((lease or {}).get("metadata") or {}).get("annotations") or {}
    return annotations.get(PURPOSE_ANNOTATION)


def lease_summary(lease: dict[str, Any] | None) -> dict[str, Any] | None:
    """Holder, times and purpose of a Lease in plain terms; None without a Lease."""
    if lease is None:
        return None
    metadata = lease.get("metadata") or {}
    spec = lease.get("spec") or {}
    expiry = lease_expiry(spec)
    duration = spec.get("leaseDurationSeconds")
    return {
        "name": metadata.get("name"),
        "namespace": metadata.get("namespace"),
        "holder": spec.get("holderIdentity") or None,
        "acquired_at": spec.get("acquireTime"),
        "renewed_at": spec.get("renewTime"),
        "expires_at": format_micro_time(expiry) if expiry else None,
        "duration": int(duration) if duration is not None else None,
        "purpose": lease_purpose(lease),
    }


class LeaseLock:
    """Acquire and release one Lease.

    ``activity`` names what the lock protects in refusals ("Another switch is in progress").
    ``purpose``, when set, is written to the annotation veritas.chaos/lock-purpose and shown
    to whoever is refused. After :meth:`acquire` or :meth:`release_held`, ``before`` is the
    Lease as it was read; after :meth:`acquire`, ``written`` is the server's answer to the
    write (also for a dry run). ``lease`` is only set by a real write and is what
    :meth:`release` deletes.
    """

    def __init__(
        self,
        client: KubeClient,
        namespace: str,
        name: str,
        holder: str,
        duration_seconds: int,
        purpose: str | None = None,
        activity: str = "switch",
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.name = name
        self.holder = holder
        self.duration_seconds = duration_seconds
        self.purpose = purpose
        self.activity = activity
        self.lease: dict[str, Any] | None = None
        self.before: dict[str, Any] | None = None
        self.written: dict[str, Any] | None = None

    @property
    def path(self) -> str:
        return resource_path(LEASE_API, "leases", self.namespace, self.name)

    def read(self) -> dict[str, Any] | None:
        return self.client.get(self.path, missing_ok=True)

    def _holder_details(
        self, lease: dict[str, Any] | None
    ) -> tuple[str, dict[str, Any]]:
        """'X (purpose: P) until T' and the error details naming holder, purpose and expiry."""
        summary = lease_summary(lease or {})
        holder = ((lease or {}).get("spec") or {}).get("holderIdentity")
        purpose, expires = summary["purpose"], summary["expires_at"]
        text = "{}{} until {}".format(
            holder,
            f" (purpose: {purpose})" if purpose else "",
            expires or "unknown",
        )
        return text, {
            "lock_holder": holder,
            "lock_purpose": purpose,
            "lock_expires": expires,
        }

    def _refuse(self, lease: dict[str, Any] | None) -> ChaosError:
        text, details = self._holder_details(lease)
        return ChaosError(
            f"Another {self.activity} is in progress: Lease {self.namespace}/{self.name} is held by {text}.",
            reason="locked",
            **details,
        )

    def check(self, now: datetime.datetime | None = None) -> str:
        """The decision without writing anything; raises when another holder has it."""
        current = self.read()
        decision = lock_decision(
            current.get("spec") if current else None, self.holder, now or utcnow()
        )
        if decision == HELD:
            raise self._refuse(current)
        return decision

    def acquire(
        self, now: datetime.datetime | None = None, dry_run: bool = False
    ) -> str:
        """Create, renew or take over the Lease; raises 'locked' when another holder has it.

        A renewal keeps acquireTime and moves renewTime (and the duration and purpose) on.
        With dry_run the writes are server-side dry runs and ``lease`` stays unset.
        """
        moment = now or utcnow()
        current = self.read()
        self.before = current
        self.written = None
        spec = current.get("spec") if current else None
        decision = lock_decision(spec, self.holder, moment)
        if decision == HELD:
            raise self._refuse(current)
        try:
            if current is None:
                metadata: dict[str, Any] = {
                    "name": self.name,
                    "namespace": self.namespace,
                    "labels": {"app.kubernetes.io/managed-by": "veritas.chaos"},
                }
                if self.purpose is not None:
                    metadata["annotations"] = {PURPOSE_ANNOTATION: self.purpose}
                body = {
                    "apiVersion": LEASE_API,
                    "kind": "Lease",
                    "metadata": metadata,
                    "spec": lease_spec(self.holder, self.duration_seconds, moment),
                }
                written = self.client.create(
                    resource_path(LEASE_API, "leases", self.namespace),
                    body,
                    dry_run=dry_run,
                )
            else:
                acquire_time = (
                    (spec or {}).get("acquireTime") if decision == RENEW else None
                )
                body = copy.deepcopy(current)
                body["spec"] = lease_spec(
                    self.holder, self.duration_seconds, moment, acquire_time
                )
                metadata = body.setdefault("metadata", {})
                annotations = metadata.get("annotations") or {}
                if self.purpose is not None:
                    annotations[PURPOSE_ANNOTATION] = self.purpose
                elif decision != RENEW:
                    # The previous holder's purpose is not ours.
                    annotations.pop(PURPOSE_ANNOTATION, None)
                if annotations:
                    metadata["annotations"] = annotations
                else:
                    metadata.pop("annotations", None)
                written = self.client.replace(self.path, body, dry_run=dry_run)
        except ChaosError as exc:
            if exc.reason in ("conflict", "already_exists"):
                raise ChaosError(
                    f"Another {self.activity} took Lease {self.namespace}/{self.name} at the same moment; try again.",
                    reason="locked",
                ) from exc
            raise
        self.written = written
        if not dry_run:
            self.lease = written
        return decision

    def release_held(
        self, force: bool = False, dry_run: bool = False
    ) -> dict[str, Any] | None:
        """Delete the Lease when this holder has it (any holder with force).

        Returns the Lease that was (or, with dry_run, would be) deleted; None when there is
        none, or (without force) when it has no holder, which is a free lock. Raises 'locked'
        when another holder has it, expired or not, and force is off, and when the Lease
        changed between the read and the delete (resourceVersion precondition), so a lock
        taken over at that moment is never deleted.
        """
        current = self.read()
        self.before = current
        if current is None:
            return None
        spec = current.get("spec") or {}
        if not force and not spec.get("holderIdentity"):
            return None
        if spec.get("holderIdentity") != self.holder and not force:
            text, details = self._holder_details(current)
            expired = lease_expired(spec, utcnow())
            raise ChaosError(
                f"Refusing to release Lease {self.namespace}/{self.name}: it is held by {text}"
                f"{' (expired)' if expired else ''}, not by {self.holder}. "
                "Set force=true to delete it anyway.",
                reason="locked",
                lock_expired=expired,
                **details,
            )
        version = (current.get("metadata") or {}).get("resourceVersion")
        try:
            self.client.delete(
                self.path,
                dry_run=dry_run,
                preconditions={"resourceVersion": version} if version else None,
            )
        except ChaosError as exc:
            if exc.reason == "not_found":
                self.before = None
                return None
            if exc.reason == "conflict":
                raise ChaosError(
                    f"Lease {self.namespace}/{self.name} changed while it was being released; try again.",
                    reason="locked",
                ) from exc
            raise
        if not dry_run:
            self.lease = None
        return current

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

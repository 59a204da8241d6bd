# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The change ledger: what a game-day run changed, recorded in the cluster before it changes it.

A ledger is a ConfigMap per run (label ``veritas.chaos/ledger``). Each entry is one change with
what was there before: the fields a merge patch touches and their previous values, an object the
run created, replaced or deleted, a fault set by exec in a pod (with the commands that undo it),
or a process the run started on its controller (host, boot, pid, start time). Restore undoes
the ledger from any controller, after any interruption, idempotently: processes are stopped
first (a rollback guard could otherwise move the weights again), then every change is undone
in reverse order, each key (object field, object, pod fault) back to the value it had before
the run's FIRST change of it, whatever the inventory says.

The pure functions (touched fields, undo plans) carry the decisions; ``Ledger`` and
``RecordingClient`` do the I/O.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
import os
import re
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

from ansible_collections.veritas.chaos.plugins.module_utils._client import (
    MERGE_PATCH,
    STRATEGIC_MERGE_PATCH,
    KubeClient,
    resource_path,
)
from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError

LEDGER_LABEL = "veritas.chaos/ledger"
STATE_LABEL = "veritas.chaos/ledger-state"
TOPOLOGY_LABEL = "veritas.chaos/topology"
RUN_ANNOTATION = "veritas.chaos/run-id"
HOLDER_ANNOTATION = "veritas.chaos/holder"
PURPOSE_ANNOTATION = "veritas.chaos/purpose"
LOCK_ANNOTATION = "veritas.chaos/lock"
CONTROLLER_ANNOTATION = "veritas.chaos/controller"
RESTORED_ANNOTATION = "veritas.chaos/restored-through"
RESTORED_AT_ANNOTATION = "veritas.chaos/restored-at"
CREATED_BY_ANNOTATION = "veritas.chaos/created-by-ledger"
OPEN = "open"
RESTORED = "restored"
FAILED = "failed"
ENTRY_PREFIX = "entry-"
# Locks are the lock's business (released, never "restored"); the ledger itself is not a change.
UNRECORDED_PATHS = ("/apis/coordination.k8s.io/",)
SUBRESOURCES = ("status", "scale")
APPEND_ATTEMPTS = 8
STOP_GRACE_SECONDS = 5.0

_NAME_UNSAFE = re.compile(r"[^a-z0-9-]+")


def utcnow_text() -> str:
    return (
        datetime.datetime.now(datetime.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def ledger_name(run_id: str, suffix: str = "") -> str:
    """A ConfigMap name for a run's ledger: lower-case, [a-z0-9-], at most 63 characters."""
    base = _NAME_UNSAFE.sub(
        "-", f"{run_id}-{suffix}".lower() if suffix else run_id.lower()
    )
    base = base.strip("-")[:48].strip("-") or "run"
    return f"veritas-ledger-{base}"


def parse_ledger_ref(
    ref: Any, default_namespace: str | None = None
) -> tuple[str, str] | None:
    """'namespace/name' (or 'name' with a default namespace) as a pair; None for ''/None."""
    if ref is None or ref == "":
        return None
    if not isinstance(ref, str):
        raise ChaosError(
            f"ledger must be 'namespace/name' of a ledger ConfigMap, got {ref!r}.",
            reason="invalid_input",
            field="ledger",
        )
    if "/" in ref:
        namespace, _sep, name = ref.partition("/")
    else:
        namespace, name = default_namespace or "", ref
    if not namespace or not name or "/" in name:
        raise ChaosError(
            f"ledger must be 'namespace/name' of a ledger ConfigMap, got {ref!r}.",
            reason="invalid_input",
            field="ledger",
        )
    return namespace, name


# ---------------------------------------------------------------- pure decisions


def touched_fields(patch: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The leaf paths a JSON merge patch sets or removes (a dict recurses; anything else is a leaf)."""
    if not isinstance(patch, dict) or not patch:
        return [prefix] if prefix else []
    fields: list[tuple[str, ...]] = []
    for key in sorted(patch):
        fields.extend(touched_fields(patch[key], prefix + (str(key),)))
    return fields


def value_at(obj: Any, path: tuple[str, ...] | list[str]) -> tuple[bool, Any]:
    """(present, value) of a field path in an object."""
    current = obj
    for key in path:
        if not isinstance(current, dict) or key not in current:
            return False, None
        current = current[key]
    return True, copy.deepcopy(current)


def field_changes(
    obj: dict[str, Any] | None, patch: dict[str, Any]
) -> list[dict[str, Any]]:
    """Each field the patch changes with its previous value; unchanged fields are left out."""
    changes = []
    for path in touched_fields(patch):
        present, previous = value_at(obj or {}, path)
        _present, wanted = value_at(patch, path)
        now_present = wanted is not None
        if present == now_present and (not present or previous == wanted):
            continue
        changes.append({"path": list(path), "present": present, "value": previous})
    return changes


def undo_merge_patch(fields: list[dict[str, Any]]) -> dict[str, Any]:
    """The merge patch that puts recorded fields back (null removes a field that was absent)."""
    patch: dict[str, Any] = {}
    for field in fields:
        path = list(field["path"])
        node = patch
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = copy.deepcopy(field["value"]) if field["present"] else None
    return patch


def split_subresource(path: str) -> tuple[str, str | None]:
    """('/api/v1/nodes/n', 'status') for '/api/v1/nodes/n/status'; the object path alone otherwise."""
    head, _sep, tail = path.rpartition("/")
    if tail in SUBRESOURCES and head.count("/") >= 3:
        return head, tail
    return path, None


def recordable(path: str) -> bool:
    return not any(path.startswith(prefix) for prefix in UNRECORDED_PATHS)


def clean_object(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    """An object as it can be created again: no server-set metadata, no status."""
    if obj is None:
        return None
    clean = copy.deepcopy(obj)
    clean.pop("status", None)
    metadata = clean.get("metadata") or {}
    for key in (
        "resourceVersion",
        "uid",
        "creationTimestamp",
        "generation",
        "managedFields",
        "selfLink",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ):
        metadata.pop(key, None)
    return clean


def plan_undo(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The steps that undo entries: processes first, then each key back to its value before the
    first change of it, latest first.

    Keys: a field of an object (patch), an object (created / replaced / deleted), a fault in a
    pod (exec). A later change of a key only moved it further from what was there; undoing the
    earliest change is undoing them all. An object-level undo covers field changes made to the
    same object after it.
    """
    ordered = sorted(entries, key=lambda entry: entry["seq"])
    processes = [e for e in ordered if e["type"] == "process"]
    earliest: dict[tuple[Any, ...], dict[str, Any]] = {}
    object_first: dict[str, int] = {}
    uids: dict[str, str] = {}
    for entry in ordered:
        kind = entry["type"]
        if kind == "created_uid":
            uids[entry["path"]] = entry["uid"]
            continue
        if kind in ("created", "replaced", "deleted"):
            key: tuple[Any, ...] = ("object", entry["path"])
            earliest.setdefault(key, entry)
            object_first.setdefault(entry["path"], entry["seq"])
        elif kind == "patch":
            base, _sub = split_subresource(entry["path"])
            for field in entry["fields"]:
                field_key = ("field", base, tuple(field["path"]))
                if field_key not in earliest:
                    earliest[field_key] = {
                        "seq": entry["seq"],
                        "entry": entry,
                        "field": field,
                    }
        elif kind == "exec":
            exec_key = ("exec", entry["pod"]["uid"], entry["key"])
            earliest.setdefault(exec_key, entry)

    steps: list[dict[str, Any]] = []
    for entry in reversed(processes):
        steps.append(
            {
                "op": "stop_process",
                "seq": entry["seq"],
                "process": entry["process"],
                "what": entry.get("what"),
            }
        )

    patches: dict[tuple[int, str, str | None], list[dict[str, Any]]] = {}
    others: list[dict[str, Any]] = []
    for key, item in earliest.items():
        if key[0] == "field":
            entry = item["entry"]
            base, sub = split_subresource(entry["path"])
            first_object = object_first.get(base)
            if first_object is not None and first_object < item["seq"]:
                continue  # the object-level undo puts the whole object back
            patches.setdefault((item["seq"], base, sub), []).append(item["field"])
        elif key[0] == "object":
            step = {
                "op": {
                    "created": "delete",
                    "replaced": "put_back",
                    "deleted": "put_back",
                }[item["type"]],
                "seq": item["seq"],
                "path": item["path"],
                "previous": item.get("previous"),
                "kind": item.get("kind"),
                "name": item.get("name"),
            }
            if item["type"] == "created":
                step["uid"] = uids.get(item["path"])
            others.append(step)
        else:
            others.append(
                {
                    "op": "exec",
                    "seq": item["seq"],
                    "pod": item["pod"],
                    "container": item.get("container"),
                    "commands": item["undo"],
                    "key": item["key"],
                }
            )
    for (seq, base, sub), fields in patches.items():
        others.append(
            {
                "op": "patch",
                "seq": seq,
                "path": base + ("/" + sub if sub else ""),
                "object_path": base,
                "body": undo_merge_patch(fields),
                "fields": [".".join(field["path"]) for field in fields],
            }
        )
    others.sort(key=lambda step: step["seq"], reverse=True)
    return steps + others


def describe_entry(entry: dict[str, Any]) -> str:
    """One line for a person: what the run changed."""
    kind = entry["type"]
    if kind == "patch":
        fields = ", ".join(
            "{} (was {})".format(
                ".".join(f["path"]),
                json.dumps(f["value"]) if f["present"] else "absent",
            )
            for f in entry["fields"]
        )
        return f"{entry.get('kind', 'object')} {entry.get('name', entry['path'])}: {fields}"
    if kind == "exec":
        return "pod {}: {} (undo: {})".format(
            entry["pod"]["name"],
            entry["key"],
            " ; ".join(" ".join(c) for c in entry["undo"]),
        )
    if kind == "process":
        process = entry["process"]
        return "{} pid {} on {}".format(
            entry.get("what") or "process", process["pid"], process["host"]
        )
    return "{} {} {}".format(
        kind, entry.get("kind", ""), entry.get("name", entry.get("path", ""))
    ).strip()


# ---------------------------------------------------------------- processes


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None


def boot_id() -> str:
    return (_read("/proc/sys/kernel/random/boot_id") or "").strip()


def process_start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks after boot (/proc/PID/stat field 22); None if
    gone or a zombie (it has exited; only its parent's wait is missing)."""
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat.rpartition(")")[2].split()
    try:
        return None if fields[0] in ("Z", "X") else int(fields[19])
    except (IndexError, ValueError):
        return None


def process_parent(pid: int) -> int | None:
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return None
    fields = stat.rpartition(")")[2].split()
    try:
        return int(fields[1])
    except (IndexError, ValueError):
        return None


def process_cmdline(pid: int) -> list[str]:
    text = _read(f"/proc/{pid}/cmdline") or ""
    return [part for part in text.split("\0") if part]


GROUP_NONE = "none"
# Every process of the group the recorded process leads (a load generator started with setsid).
GROUP_ALL = "all"
# The processes of its group that run the same command line: an ansible-playbook's forked workers.
GROUP_WORKERS = "workers"


def _cmdline_digest(pid: int) -> str:
    return hashlib.sha256("\0".join(process_cmdline(pid)).encode()).hexdigest()


def process_identity(pid: int, group: str = GROUP_NONE) -> dict[str, Any]:
    """What identifies a process across time: host, boot, pid and start time (and its group).

    GROUP_ALL is kept only for a group leader, so that a restore never stops a group that the
    recorded process merely belongs to (a shell script's, a CI job's).
    """
    start = process_start_ticks(pid)
    if start is None:
        raise ChaosError(
            f"Process {pid} is not running; nothing to record.",
            reason="not_found",
            field="pid",
        )
    try:
        pgid = os.getpgid(pid)
    except OSError:
        pgid = None
    if group == GROUP_ALL and pgid != pid:
        group = GROUP_NONE
    return {
        "host": socket.gethostname(),
        "boot_id": boot_id(),
        "pid": pid,
        "start_ticks": start,
        "pgid": pgid,
        "group": group,
        "cmdline": " ".join(process_cmdline(pid))[:300],
        "cmdline_sha256": _cmdline_digest(pid),
    }


def controller_pid(start: int | None = None) -> int | None:
    """The ansible-playbook process this module runs under (the topmost such ancestor)."""
    pid = process_parent(start or os.getpid())
    found = None
    while pid and pid > 1:
        command = process_cmdline(pid)
        if any(
            os.path.basename(part).startswith("ansible-playbook")
            for part in command[:2]
        ):
            found = pid
        pid = process_parent(pid)
    return found


def same_process(identity: dict[str, Any]) -> str:
    """'alive', 'gone' or 'elsewhere' (another host or boot: cannot be told from here)."""
    if (
        identity.get("host") != socket.gethostname()
        or identity.get("boot_id") != boot_id()
    ):
        return "elsewhere"
    return (
        "alive"
        if process_start_ticks(identity["pid"]) == identity["start_ticks"]
        else "gone"
    )


def _ancestors() -> set[int]:
    pids = {os.getpid()}
    pid = process_parent(os.getpid())
    while pid and pid > 1:
        pids.add(pid)
        pid = process_parent(pid)
    return pids


def _processes_since(since_ticks: int) -> list[int]:
    """Live processes here started no earlier than since_ticks, never this one or its ancestors."""
    mine = _ancestors()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in mine:
            continue
        start = process_start_ticks(int(name))
        if start is not None and start >= since_ticks:
            found.append(int(name))
    return sorted(found)


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def group_members(identity: dict[str, Any]) -> list[int]:
    """Live processes of the recorded group started no earlier than its leader (never us)."""
    pgid = identity.get("pgid")
    group = identity.get("group") or GROUP_NONE
    if group == GROUP_NONE or not pgid:
        return []
    if (
        identity.get("host") != socket.gethostname()
        or identity.get("boot_id") != boot_id()
    ):
        return []
    return [
        pid
        for pid in _processes_since(identity["start_ticks"])
        if _pgid(pid) == pgid
        and (
            group != GROUP_WORKERS
            or _cmdline_digest(pid) == identity.get("cmdline_sha256")
        )
    ]


def orphaned_forks(identity: dict[str, Any]) -> list[int]:
    """Forks of a dead controller that left its process group: same command line, orphaned.

    A worker of ansible-playbook may run in a session of its own; when the controller is
    killed it is reparented to init (ppid 1), blocked on a pipe nobody reads. Another run's
    controller or worker with the same command line has a live parent, so it is never one.
    """
    if same_process(identity) != "gone" or identity.get("group") != GROUP_WORKERS:
        return []
    return [
        pid
        for pid in _processes_since(identity["start_ticks"])
        if process_parent(pid) == 1
        and _cmdline_digest(pid) == identity.get("cmdline_sha256")
    ]


def process_environ(pid: int) -> list[str]:
    text = _read(f"/proc/{pid}/environ") or ""
    return [part for part in text.split("\0") if part]


def marked_processes(marker: str, since_ticks: int) -> list[int]:
    """Live processes here whose environment holds marker, started no earlier than since_ticks.

    A run's modules inherit VERITAS_LEDGER=<its ledger>, whatever process group their worker
    put them in: a killed run's module still running (about to make a change) carries it.
    """
    return [pid for pid in _processes_since(since_ticks) if marker in process_environ(pid)]


def stop_process(
    identity: dict[str, Any],
    grace: float = STOP_GRACE_SECONDS,
    marker: str | None = None,
) -> dict[str, Any]:
    """Stop the recorded process (and its group when recorded so) if it is still that process.

    With marker (VERITAS_LEDGER=<ledger>), also every process of the run that carries it.
    """
    state = same_process(identity)
    if state == "elsewhere":
        return {"stopped": [], "state": "elsewhere", "changed": False}
    if state == "alive" and identity["pid"] in _ancestors():
        # The run restoring its own ledger: its controller and workers are this very run.
        return {"stopped": [], "state": "this run", "changed": False}
    targets = []
    if state == "alive":
        targets.append(identity["pid"])
    if (identity.get("group") or GROUP_NONE) != GROUP_NONE:
        targets.extend(pid for pid in group_members(identity) if pid not in targets)
        targets.extend(pid for pid in orphaned_forks(identity) if pid not in targets)
    if marker:
        marked = marked_processes(marker, identity["start_ticks"])
        targets.extend(pid for pid in marked if pid not in targets)
    if not targets:
        return {"stopped": [], "state": "gone", "changed": False}
    starts = {pid: process_start_ticks(pid) for pid in targets}
    for pid in targets:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if all(process_start_ticks(pid) != starts[pid] for pid in targets):
            break
        time.sleep(0.1)
    for pid in targets:
        if process_start_ticks(pid) == starts[pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    return {"stopped": targets, "state": state, "changed": True}


# ---------------------------------------------------------------- the ledger object


class Ledger:
    """One run's ledger ConfigMap: open, append, read, restore, close."""

    def __init__(self, client: KubeClient, namespace: str, name: str) -> None:
        self.client = client
        self.namespace = namespace
        self.name = name

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def path(self) -> str:
        return resource_path("v1", "configmaps", self.namespace, self.name)

    def read(self) -> dict[str, Any] | None:
        return self.client.get(self.path, missing_ok=True)

    def read_required(self) -> dict[str, Any]:
        current = self.read()
        if current is None:
            raise ChaosError(
                f"Ledger ConfigMap {self.ref} not found.",
                reason="not_found",
                field="ledger",
            )
        return current

    def open(
        self,
        run_id: str,
        holder: str,
        topology: str | None,
        purpose: str | None,
        lock: str | None,
        dry_run: bool = False,
    ) -> tuple[dict[str, Any], bool]:
        """Create the ledger (or return the one that exists for the same run); (object, created)."""
        current = self.read()
        if current is not None:
            annotations = (current.get("metadata") or {}).get("annotations") or {}
            if annotations.get(RUN_ANNOTATION) != run_id:
                raise ChaosError(
                    f"Ledger {self.ref} belongs to run {annotations.get(RUN_ANNOTATION)!r}, not {run_id!r}.",
                    reason="conflict",
                    field="name",
                )
            return current, False
        labels = {
            "app.kubernetes.io/managed-by": "veritas.chaos",
            LEDGER_LABEL: "true",
            STATE_LABEL: OPEN,
        }
        if topology:
            labels[TOPOLOGY_LABEL] = _NAME_UNSAFE.sub("-", topology.lower())[:63]
        annotations = {RUN_ANNOTATION: run_id, HOLDER_ANNOTATION: holder}
        if purpose:
            annotations[PURPOSE_ANNOTATION] = purpose
        if lock:
            annotations[LOCK_ANNOTATION] = lock
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": labels,
                "annotations": annotations,
            },
            "data": {},
        }
        created = self.client.create(
            resource_path("v1", "configmaps", self.namespace), body, dry_run=dry_run
        )
        return created, True

    def entries(self, obj: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        obj = obj if obj is not None else self.read_required()
        data = obj.get("data") or {}
        entries = []
        for key in sorted(data):
            if key.startswith(ENTRY_PREFIX):
                try:
                    entries.append(json.loads(data[key]))
                except ValueError as exc:
                    raise ChaosError(
                        f"Ledger {self.ref}: entry {key} is not JSON: {exc}",
                        reason="invalid_state",
                    ) from exc
        return sorted(entries, key=lambda entry: entry["seq"])

    def append(
        self, entry: dict[str, Any], set_annotations: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """Add an entry (next sequence number), optimistic on resourceVersion; reopens the ledger."""
        for _attempt in range(APPEND_ATTEMPTS):
            current = self.read_required()
            seqs = [e["seq"] for e in self.entries(current)]
            seq = (max(seqs) if seqs else 0) + 1
            record = dict(entry, seq=seq, at=utcnow_text())
            metadata: dict[str, Any] = {
                "resourceVersion": current["metadata"]["resourceVersion"],
                "labels": {STATE_LABEL: OPEN},
            }
            if set_annotations:
                metadata["annotations"] = set_annotations
            patch = {
                "metadata": metadata,
                "data": {
                    f"{ENTRY_PREFIX}{seq:05d}": json.dumps(record, sort_keys=True)
                },
            }
            try:
                self.client.patch(self.path, patch)
                return record
            except ChaosError as exc:
                if exc.reason != "conflict":
                    raise
        raise ChaosError(
            f"Could not append to ledger {self.ref}: it kept changing ({APPEND_ATTEMPTS} attempts).",
            reason="conflict",
        )

    def restored_through(self, obj: dict[str, Any]) -> int:
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        try:
            return int(annotations.get(RESTORED_ANNOTATION) or 0)
        except ValueError:
            return 0

    def pending(self, obj: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Entries not yet undone by a completed restore."""
        obj = obj if obj is not None else self.read_required()
        through = self.restored_through(obj)
        return [entry for entry in self.entries(obj) if entry["seq"] > through]

    def mark(
        self, state: str, through: int | None, dry_run: bool = False
    ) -> dict[str, Any]:
        annotations: dict[str, Any] = {RESTORED_AT_ANNOTATION: utcnow_text()}
        if through is not None:
            annotations[RESTORED_ANNOTATION] = str(through)
        patch = {
            "metadata": {"labels": {STATE_LABEL: state}, "annotations": annotations}
        }
        return self.client.patch(self.path, patch, dry_run=dry_run)


def summary(obj: dict[str, Any], ledger: Ledger) -> dict[str, Any]:
    """The ledger in plain terms (for return values and the report)."""
    metadata = obj.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    labels = metadata.get("labels") or {}
    entries = ledger.entries(obj)
    controller = annotations.get(CONTROLLER_ANNOTATION)
    return {
        "ref": ledger.ref,
        "name": metadata.get("name"),
        "namespace": metadata.get("namespace"),
        "run_id": annotations.get(RUN_ANNOTATION),
        "holder": annotations.get(HOLDER_ANNOTATION),
        "purpose": annotations.get(PURPOSE_ANNOTATION),
        "lock": annotations.get(LOCK_ANNOTATION),
        "topology": labels.get(TOPOLOGY_LABEL),
        "state": labels.get(STATE_LABEL),
        "controller": json.loads(controller) if controller else None,
        "restored_through": ledger.restored_through(obj),
        "entries": len(entries),
        "changes": [
            {
                "seq": e["seq"],
                "at": e["at"],
                "type": e["type"],
                "what": describe_entry(e),
            }
            for e in entries
        ],
    }


# ---------------------------------------------------------------- recording client


class RecordingClient:
    """A KubeClient that records every real write in the ledger before making it.

    Dry runs are not recorded; neither are Leases (locks). Everything else behaves exactly as
    the wrapped client.
    """

    def __init__(self, client: KubeClient, ledger: Ledger, module: str) -> None:
        self._client = client
        self.ledger = ledger
        self.module = module

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def _identity(self, obj: dict[str, Any] | None, path: str) -> dict[str, Any]:
        metadata = (obj or {}).get("metadata") or {}
        return {
            "kind": (obj or {}).get("kind"),
            "name": metadata.get("name") or path.rsplit("/", 1)[-1],
            "namespace": metadata.get("namespace"),
            "uid": metadata.get("uid"),
        }

    def patch(
        self,
        path: str,
        body: Any,
        dry_run: bool = False,
        content_type: str = MERGE_PATCH,
    ) -> dict[str, Any]:
        if (
            not dry_run
            and recordable(path)
            and isinstance(body, dict)
            and content_type in (MERGE_PATCH, STRATEGIC_MERGE_PATCH)
        ):
            base, _sub = split_subresource(path)
            current = self._client.get(base, missing_ok=True)
            changes = field_changes(current, body)
            if changes:
                entry = {
                    "type": "patch",
                    "module": self.module,
                    "path": path,
                    "fields": changes,
                }
                entry.update(self._identity(current, base))
                self.ledger.append(entry)
        elif (
            not dry_run
            and recordable(path)
            and content_type not in (MERGE_PATCH, STRATEGIC_MERGE_PATCH)
        ):
            raise ChaosError(
                f"The ledger records merge patches only; {content_type} to {path} was refused.",
                reason="invalid_input",
            )
        return self._client.patch(
            path, body, dry_run=dry_run, content_type=content_type
        )

    def create(
        self, path: str, body: dict[str, Any], dry_run: bool = False
    ) -> dict[str, Any]:
        if dry_run or not recordable(path):
            return self._client.create(path, body, dry_run=dry_run)
        name = (body.get("metadata") or {}).get("name")
        object_path = f"{path}/{name}"
        self.ledger.append(
            {
                "type": "created",
                "module": self.module,
                "path": object_path,
                "kind": body.get("kind"),
                "name": name,
            }
        )
        created = self._client.create(path, body)
        uid = (created.get("metadata") or {}).get("uid")
        if uid:
            self.ledger.append(
                {
                    "type": "created_uid",
                    "module": self.module,
                    "path": object_path,
                    "uid": uid,
                }
            )
        return created

    def replace(
        self, path: str, body: dict[str, Any], dry_run: bool = False
    ) -> dict[str, Any]:
        if not dry_run and recordable(path):
            current = self._client.get(path, missing_ok=True)
            entry = {
                "type": "replaced",
                "module": self.module,
                "path": path,
                "previous": clean_object(current),
            }
            entry.update(self._identity(current, path))
            self.ledger.append(entry)
        return self._client.replace(path, body, dry_run=dry_run)

    def delete(
        self,
        path: str,
        dry_run: bool = False,
        grace_period_seconds: int | None = None,
        preconditions: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        if not dry_run and recordable(path):
            current = self._client.get(path, missing_ok=True)
            owned = bool(((current or {}).get("metadata") or {}).get("ownerReferences"))
            entry = {
                "type": "deleted" if not owned else "deleted_owned",
                "module": self.module,
                "path": path,
                # An object with an owner is recreated by its owner (a pod by its ReplicaSet).
                "previous": None if owned else clean_object(current),
            }
            entry.update(self._identity(current, path))
            if current is not None:
                self.ledger.append(entry)
        return self._client.delete(
            path,
            dry_run=dry_run,
            grace_period_seconds=grace_period_seconds,
            preconditions=preconditions,
        )

    def record_exec(
        self,
        pod: dict[str, Any],
        key: str,
        undo: list[list[str]],
        container: str | None = None,
    ) -> None:
        """Before a fault is set by exec in a pod: the commands that put the pod back."""
        metadata = pod.get("metadata") or {}
        self.ledger.append(
            {
                "type": "exec",
                "module": self.module,
                "pod": {
                    "namespace": metadata.get("namespace"),
                    "name": metadata.get("name"),
                    "uid": metadata.get("uid"),
                },
                "container": container,
                "key": key,
                "undo": [list(command) for command in undo],
            }
        )

    def record_process(
        self, pid: int, what: str, group: str = GROUP_NONE
    ) -> dict[str, Any]:
        identity = process_identity(pid, group=group)
        return self.ledger.append(
            {
                "type": "process",
                "module": self.module,
                "what": what,
                "process": identity,
            }
        )


def recording_client(client: KubeClient, params: dict[str, Any], module: str) -> Any:
    """The client a changing module writes through: recording when params name a ledger."""
    ref = parse_ledger_ref(params.get("ledger"), params.get("namespace"))
    if ref is None:
        return client
    ledger = Ledger(client, *ref)
    ledger.read_required()
    return RecordingClient(client, ledger, module)


def unrecorded(client: Any) -> KubeClient:
    """The plain client under a recording one: for bookkeeping writes that are not changes."""
    return client._client if isinstance(client, RecordingClient) else client


def record_exec(
    client: Any,
    pod: dict[str, Any],
    key: str,
    undo: list[list[str]],
    container: str | None = None,
) -> None:
    """Record an exec fault when the client records; a no-op otherwise."""
    if isinstance(client, RecordingClient):
        client.record_exec(pod, key, undo, container)


# ---------------------------------------------------------------- restore


def execute_step(
    client: KubeClient,
    step: dict[str, Any],
    run_exec: Callable[[str, str, list[str], str | None], None],
    dry_run: bool = False,
) -> dict[str, Any]:
    """Carry out one undo step; returns what happened (changed, outcome)."""
    op = step["op"]
    if op == "stop_process":
        if dry_run:
            return {
                "changed": same_process(step["process"]) == "alive",
                "outcome": "would stop",
            }
        outcome = stop_process(step["process"], marker=step.get("marker"))
        return {
            "changed": outcome["changed"],
            "outcome": outcome["state"],
            "stopped": outcome["stopped"],
        }
    if op == "patch":
        current = client.get(step["object_path"], missing_ok=True)
        if current is None:
            return {"changed": False, "outcome": "object gone"}
        if not field_changes(current, step["body"]):
            return {"changed": False, "outcome": "already as before"}
        client.patch(step["path"], step["body"], dry_run=dry_run)
        return {"changed": True, "outcome": "put back"}
    if op == "delete":
        current = client.get(step["path"], missing_ok=True)
        if current is None:
            return {"changed": False, "outcome": "already absent"}
        uid = (current.get("metadata") or {}).get("uid")
        if step.get("uid") and uid != step["uid"]:
            return {"changed": False, "outcome": "replaced by someone else; left alone"}
        client.delete(
            step["path"], dry_run=dry_run, preconditions={"uid": uid} if uid else None
        )
        return {"changed": True, "outcome": "deleted"}
    if op == "put_back":
        previous = step.get("previous")
        current = client.get(step["path"], missing_ok=True)
        if previous is None:
            if current is None:
                return {"changed": False, "outcome": "already absent"}
            client.delete(step["path"], dry_run=dry_run)
            return {"changed": True, "outcome": "deleted"}
        if current is None:
            collection = step["path"].rsplit("/", 1)[0]
            client.create(collection, previous, dry_run=dry_run)
            return {"changed": True, "outcome": "created again"}
        if clean_object(current) == previous:
            return {"changed": False, "outcome": "already as before"}
        body = copy.deepcopy(previous)
        body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        client.replace(step["path"], body, dry_run=dry_run)
        return {"changed": True, "outcome": "put back"}
    if op == "exec":
        pod = step["pod"]
        live = client.get(
            resource_path("v1", "pods", pod["namespace"], pod["name"]), missing_ok=True
        )
        live_uid = ((live or {}).get("metadata") or {}).get("uid")
        if live is None or live_uid != pod["uid"]:
            return {"changed": False, "outcome": "pod gone (the fault went with it)"}
        if (live.get("status") or {}).get("phase") != "Running":
            return {"changed": False, "outcome": "pod not running"}
        if dry_run:
            return {"changed": True, "outcome": "would run"}
        for command in step["commands"]:
            run_exec(pod["namespace"], pod["name"], command, step.get("container"))
        return {"changed": True, "outcome": "undo commands ran"}
    raise ChaosError(f"Unknown undo step {op!r}.", reason="invalid_state")


def restore_ledger(
    ledger: Ledger,
    run_exec: Callable[[str, str, list[str], str | None], None],
    dry_run: bool = False,
) -> dict[str, Any]:
    """Undo every pending entry; every step runs even when one fails; marks the ledger."""
    obj = ledger.read_required()
    pending = ledger.pending(obj)
    steps = plan_undo(pending)
    for step in steps:
        if step["op"] == "stop_process":
            step["marker"] = f"VERITAS_LEDGER={ledger.ref}"
    results = []
    failed = []
    for step in steps:
        label = {
            k: v
            for k, v in step.items()
            if k in ("op", "seq", "path", "fields", "key", "what")
        }
        if step["op"] == "exec":
            label["pod"] = step["pod"]["name"]
        if step["op"] == "stop_process":
            label["pid"] = step["process"]["pid"]
        try:
            outcome = execute_step(ledger.client, step, run_exec, dry_run=dry_run)
        except ChaosError as exc:
            outcome = {"changed": False, "outcome": "failed", "error": exc.msg}
            failed.append(dict(label, error=exc.msg))
        results.append(dict(label, **outcome))
    through = max(
        (entry["seq"] for entry in pending), default=ledger.restored_through(obj)
    )
    state = ((obj.get("metadata") or {}).get("labels") or {}).get(STATE_LABEL)
    if not dry_run and failed:
        ledger.mark(FAILED, None)
    elif not dry_run and (pending or state != RESTORED):
        ledger.mark(RESTORED, through)
    return {
        "changed": any(result["changed"] for result in results),
        "steps": results,
        "failed": failed,
        "entries_undone": len(pending),
    }

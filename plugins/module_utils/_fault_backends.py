# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One interface for fault methods, and one driver that runs their lifecycle.

Every fault method (runtime_fault's runtime_cli, envoy_runtime, admin_command, network_policy
and memory_limit; gpu_fault's runtime_flag, dcgm, taint, cordon and capacity) is a
FaultBackend: it reads the current state of its targets, plans what to change (a pure
decision, blast radius included), applies one change at a time through the module's client
(so that a ledger records it before it happens; exec backends record their undo with
record_exec first), reads a target back until it shows what was wanted, and restores what
this call changed. run_fault drives that lifecycle for any backend: check mode, the read-back
wait, the shared Prometheus confirmation, duration and the result dict.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError
from ansible_collections.veritas.chaos.plugins.module_utils._prom_confirm import (
    instant_query,
    wait_for_condition,
)

NONE = "none"
READBACK_SLEEP = 0.5

Query = Callable[..., list[dict[str, Any]]]
Sleep = Callable[[float], None]


@dataclass
class Change:
    """One planned change of one target; action NONE when the target already is as wanted."""

    target: str
    action: str
    before: Any = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Run:
    """What run_fault did, for the backend's result."""

    check_mode: bool
    sleep: Sleep | None = None
    changes: list[Change] = field(default_factory=list)
    commands: list[dict[str, Any]] = field(default_factory=list)
    readings: dict[str, Any] = field(default_factory=dict)
    changed: bool = False
    applied_at: float | None = None
    readback_seconds: float = 0.0
    seconds: float = 0.0
    prometheus: dict[str, Any] | None = None
    restored: bool = False

    @property
    def changing(self) -> list[Change]:
        return [change for change in self.changes if change.action != NONE]


class FaultBackend:
    """A fault method. run_fault calls, in this order:

    - read(): the current state of every target, by name (reads only);
    - plan(current): pure, the Changes to make (which targets: the blast-radius choice);
    - per changing Change, record_undo() then apply() (the write, through the module's client);
    - read_back() of every Change in confirming() until each shows what was wanted;
    - with duration, per changing Change, restore() and, with confirm_restore, read_back()
      until each shows its state from before;
    - result(run, want_diff): the module's result dict.
    """

    timeout: float = 30
    interval: float = READBACK_SLEEP
    confirm_restore = True
    # gpu_fault confirms each change before the next target is touched, one target at a time.
    one_target_at_a_time = False

    def targets(self) -> list[Any]:
        """The targets run one at a time (one_target_at_a_time only)."""
        return []

    def read(self, target: Any = None) -> dict[str, Any]:
        raise NotImplementedError

    def plan(self, current: dict[str, Any]) -> list[Change]:
        raise NotImplementedError

    def record_undo(self, change: Change, restoring: bool) -> None:
        """Record how to undo change before it is made (exec backends; the client records writes)."""

    def apply(self, change: Change, check_mode: bool) -> list[dict[str, Any]]:
        """Make change (a dry run in check mode); the commands it runs in pods."""
        raise NotImplementedError

    def confirming(self, changes: list[Change]) -> list[Change]:
        """The changes to read back after they were applied."""
        return [change for change in changes if change.action != NONE]

    def read_back(self, change: Change, restoring: bool = False) -> tuple[bool, Any]:
        """One reading of change's target: (shows what was wanted, the reading)."""
        raise NotImplementedError

    def restore(self, change: Change) -> list[dict[str, Any]]:
        """Undo change, which this call made; the commands it runs in pods."""
        raise NotImplementedError

    def partial_failure(
        self, exc: ChaosError, change: Change, done: list[str], restoring: bool
    ) -> ChaosError:
        """The error to raise when change failed after the targets done were changed."""
        return exc

    def not_confirmed(
        self, pending: dict[str, Any], changed: bool, restoring: bool
    ) -> ChaosError:
        raise NotImplementedError

    def prometheus_failure(
        self, outcome: dict[str, Any], params: dict[str, Any], changed: bool
    ) -> ChaosError:
        return ChaosError(
            "Prometheus did not confirm the fault within {} seconds: {} is not {} {} "
            "(last samples {}{}). What was set stays set; run state=absent to remove it.".format(
                params["prometheus"]["timeout"],
                outcome["query"],
                outcome["condition"],
                outcome["threshold"],
                outcome["samples"],
                f", last error: {outcome['last_error']}"
                if outcome["last_error"]
                else "",
            ),
            reason="not_confirmed",
            changed=changed,
            confirmation=outcome,
        )

    def result(self, run: Run, want_diff: bool) -> dict[str, Any]:
        raise NotImplementedError


def already_changed(
    exc: ChaosError, noun: str, key: str, target: str, done: list[str]
) -> ChaosError:
    """exc, saying which targets one call had already changed when it failed at target."""
    return ChaosError(
        "{} {} already changed: {}.".format(exc.msg, noun, ", ".join(done) or "none"),
        reason=exc.reason,
        changed=bool(done),
        **{key: target, f"changed_{key}s": done},
    )


def wait_for(
    names: list[str],
    read: Callable[[str], tuple[bool, Any]],
    timeout: float,
    interval: float,
    sleep: Sleep | None = None,
) -> tuple[dict[str, Any], list[str], float]:
    """Read each name until it is as wanted or timeout passes: (readings, pending, seconds)."""
    start = time.monotonic()
    readings: dict[str, Any] = {}
    pending = sorted(names)
    while True:
        for name in list(pending):
            done, readings[name] = read(name)
            if done:
                pending.remove(name)
        elapsed = time.monotonic() - start
        if not pending or elapsed >= timeout:
            return readings, pending, round(elapsed, 3)
        (sleep or time.sleep)(interval)


def prometheus_confirmation(
    params: dict[str, Any], query: Query = instant_query
) -> dict[str, Any]:
    """Wait until params['prometheus'] says the fault shows: the outcome, confirmed or not."""
    options = params["prometheus"]

    def samples() -> list[dict[str, Any]]:
        return query(
            options["url"],
            options["query"],
            validate_certs=options["validate_certs"],
            bearer_token=options.get("bearer_token"),
        )

    outcome = wait_for_condition(options, samples)
    outcome.update(
        query=options["query"],
        condition=options["condition"],
        threshold=options.get("threshold"),
    )
    return outcome


def _apply(
    backend: FaultBackend, run: Run, changes: list[Change], restoring: bool = False
) -> None:
    done: list[str] = []
    for change in changes:
        if not run.check_mode:
            backend.record_undo(change, restoring)
        try:
            run.commands += (
                backend.restore(change)
                if restoring
                else backend.apply(change, run.check_mode)
            )
        except ChaosError as exc:
            # A dry run changed nothing.
            done = [] if run.check_mode else done
            raise backend.partial_failure(exc, change, done, restoring) from exc
        done.append(change.target)


def _confirm(
    backend: FaultBackend, run: Run, changes: list[Change], restoring: bool = False
) -> float:
    if not changes:
        return 0.0
    by_target = {change.target: change for change in changes}
    readings, pending, seconds = wait_for(
        list(by_target),
        lambda name: backend.read_back(by_target[name], restoring),
        backend.timeout,
        backend.interval,
        run.sleep,
    )
    run.readings.update(readings)
    if pending:
        raise backend.not_confirmed(
            {name: run.readings.get(name) for name in pending},
            run.changed or restoring,
            restoring,
        )
    return seconds


def _step(backend: FaultBackend, run: Run, target: Any = None) -> list[Change]:
    changes = backend.plan(backend.read(target))
    run.changes += changes
    for change in changes:
        run.readings.setdefault(change.target, change.before)
    return changes


def run_fault(
    backend: FaultBackend,
    params: dict[str, Any],
    check_mode: bool,
    want_diff: bool,
    query: Query = instant_query,
    sleep: Sleep | None = None,
) -> dict[str, Any]:
    """Read, plan, apply, read back (then Prometheus) and, with duration, restore; the result.

    query runs the Prometheus query, sleep waits (time.sleep when None): the module's own.
    """
    run = Run(check_mode, sleep)
    if backend.one_target_at_a_time:
        for target in backend.targets():
            for change in _step(backend, run, target):
                if change.action != NONE:
                    _apply(backend, run, [change])
                    if not check_mode:
                        _confirm(backend, run, backend.confirming([change]))
        run.changed = bool(run.changing)
        return backend.result(run, want_diff)

    changes = _step(backend, run)
    _apply(backend, run, run.changing)
    run.changed = bool(run.changing)
    if run.changed and not check_mode:
        # The fault is in effect from here: what a rollback system can react to at the earliest.
        run.applied_at = round(time.time(), 3)
    if not check_mode:
        start = time.monotonic()
        run.readback_seconds = _confirm(backend, run, backend.confirming(changes))
        if params.get("confirm_with") == "prometheus":
            outcome = prometheus_confirmation(params, query)
            if not outcome["confirmed"]:
                raise backend.prometheus_failure(outcome, params, run.changed)
            run.prometheus = outcome
        run.seconds = round(time.monotonic() - start, 3)
    if params.get("duration") and not check_mode:
        (sleep or time.sleep)(params["duration"])
        changing = run.changing
        _apply(backend, run, changing, restoring=True)
        if backend.confirm_restore:
            restore_run = Run(check_mode, sleep, changed=True)
            _confirm(backend, restore_run, changing, restoring=True)
        run.restored = True
        run.changed = True
    return backend.result(run, want_diff)

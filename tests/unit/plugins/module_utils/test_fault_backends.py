# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""run_fault drives any FaultBackend: read, plan, apply, read back, Prometheus, duration."""

from __future__ import annotations

from typing import Any

import pytest
from ansible_collections.veritas.chaos.plugins.module_utils import _fault_backends
from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError
from ansible_collections.veritas.chaos.plugins.module_utils._fault_backends import (
    NONE,
    Change,
    FaultBackend,
    Run,
    already_changed,
    run_fault,
    wait_for,
)


class Switches(FaultBackend):
    """Named switches; a switch set to on reads back on after `lag` more reads."""

    timeout = 5

    def __init__(self, switches: dict[str, bool], lag: int = 0, fail_at: str = ""):
        self.switches = dict(switches)
        self.lag = lag
        self.fail_at = fail_at
        self.log: list[tuple[str, str]] = []
        self.reads: dict[str, int] = {}

    def read(self, target: Any = None) -> dict[str, Any]:
        self.log.append(("read", "*"))
        return dict(self.switches)

    def plan(self, current: dict[str, Any]) -> list[Change]:
        return [Change(name, NONE if on else "set", on) for name, on in current.items()]

    def record_undo(self, change: Change, restoring: bool) -> None:
        self.log.append(("undo", change.target))

    def apply(self, change: Change, check_mode: bool) -> list[dict[str, Any]]:
        if change.target == self.fail_at:
            raise ChaosError("boom", reason="exec_failed")
        self.log.append(("dry-run" if check_mode else "apply", change.target))
        if not check_mode:
            self.switches[change.target] = True
        return [{"pod": change.target, "command": ["on"]}]

    def read_back(self, change: Change, restoring: bool = False) -> tuple[bool, Any]:
        self.reads[change.target] = self.reads.get(change.target, 0) + 1
        value = self.switches[change.target] and self.reads[change.target] > self.lag
        return value == (not restoring), value

    def restore(self, change: Change) -> list[dict[str, Any]]:
        self.log.append(("restore", change.target))
        self.switches[change.target] = False
        return []

    def partial_failure(
        self, exc: ChaosError, change: Change, done: list[str], restoring: bool
    ) -> ChaosError:
        return already_changed(exc, "Switches", "switch", change.target, done)

    def not_confirmed(
        self, pending: dict[str, Any], changed: bool, restoring: bool
    ) -> ChaosError:
        return ChaosError(f"not confirmed: {sorted(pending)}", reason="not_confirmed")

    def result(self, run: Run, want_diff: bool) -> dict[str, Any]:
        return {
            "changed": run.changed,
            "changes": [(c.target, c.action) for c in run.changes],
            "readings": run.readings,
            "commands": run.commands,
            "applied_at": run.applied_at,
            "prometheus": run.prometheus,
            "restored": run.restored,
        }


PARAMS = {"confirm_with": "readback", "duration": None}


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    sleeps: list[float] = []
    monkeypatch.setattr(_fault_backends.time, "sleep", sleeps.append)
    return sleeps


def test_only_what_differs_is_applied_undo_first_then_read_back(no_sleep):
    backend = Switches({"a": False, "b": True}, lag=2)
    result = run_fault(backend, PARAMS, check_mode=False, want_diff=False)
    assert result["changed"] and result["changes"] == [("a", "set"), ("b", NONE)]
    assert backend.log == [("read", "*"), ("undo", "a"), ("apply", "a")]
    assert result["readings"] == {"a": True, "b": True}
    assert backend.reads == {"a": 3} and len(no_sleep) == 2
    assert result["applied_at"] is not None and result["restored"] is False


def test_check_mode_is_a_dry_run_without_undo_or_read_back():
    backend = Switches({"a": False})
    result = run_fault(backend, PARAMS, check_mode=True, want_diff=False)
    assert result["changed"] and result["applied_at"] is None
    assert backend.log == [("read", "*"), ("dry-run", "a")] and backend.reads == {}


def test_nothing_to_change_is_not_a_change():
    result = run_fault(Switches({"a": True}), PARAMS, False, False)
    assert not result["changed"] and result["commands"] == []


def test_a_read_back_that_never_shows_it_times_out(monkeypatch):
    clock = iter(range(100))
    monkeypatch.setattr(_fault_backends.time, "monotonic", lambda: next(clock))
    with pytest.raises(ChaosError, match=r"not confirmed: \['a'\]"):
        run_fault(Switches({"a": False}, lag=99), PARAMS, False, False)


def test_a_failed_apply_names_the_targets_already_changed():
    backend = Switches({"a": False, "b": False, "c": False}, fail_at="c")
    with pytest.raises(ChaosError) as caught:
        run_fault(backend, PARAMS, False, False)
    assert caught.value.msg == "boom Switches already changed: a, b."
    assert caught.value.details["changed_switchs"] == ["a", "b"]
    assert caught.value.details["switch"] == "c"


def test_duration_restores_what_this_call_changed_and_confirms_it(no_sleep):
    backend = Switches({"a": False, "b": True})
    result = run_fault(backend, dict(PARAMS, duration=7), False, False)
    assert result["restored"] and result["changed"]
    assert backend.switches == {"a": False, "b": True}
    assert ("restore", "a") in backend.log and ("restore", "b") not in backend.log
    assert 7 in no_sleep


def test_prometheus_confirmation_uses_the_query_it_is_given():
    params = dict(
        PARAMS,
        confirm_with="prometheus",
        prometheus={
            "url": "http://prometheus:9090",
            "query": "up",
            "condition": "no_data",
            "threshold": None,
            "timeout": 5,
            "interval": 1,
            "validate_certs": True,
            "bearer_token": None,
        },
    )
    asked: list[tuple[Any, ...]] = []

    def query(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        asked.append(args)
        return []

    result = run_fault(Switches({"a": False}), params, False, False, query=query)
    assert asked == [("http://prometheus:9090", "up")]
    assert result["prometheus"]["confirmed"] is True


def test_one_target_at_a_time_confirms_each_before_the_next_is_read():
    class OneByOne(Switches):
        one_target_at_a_time = True
        timeout = 0

        def targets(self) -> list[Any]:
            return ["a", "b"]

        def read(self, target: Any = None) -> dict[str, Any]:
            self.log.append(("read", target))
            return {target: self.switches[target]}

    backend = OneByOne({"a": False, "b": False})
    result = run_fault(backend, PARAMS, False, False)
    assert backend.log == [
        ("read", "a"),
        ("undo", "a"),
        ("apply", "a"),
        ("read", "b"),
        ("undo", "b"),
        ("apply", "b"),
    ]
    assert backend.reads == {"a": 1, "b": 1} and result["changed"]


def test_wait_for_reads_only_what_is_still_pending(no_sleep):
    seen: list[str] = []

    def read(name: str) -> tuple[bool, Any]:
        seen.append(name)
        return name == "x" or len(seen) > 3, len(seen)

    readings, pending, _seconds = wait_for(["y", "x"], read, 10, 0.5)
    assert pending == [] and seen == ["x", "y", "y", "y"]
    assert readings == {"x": 1, "y": 4} and len(no_sleep) == 2

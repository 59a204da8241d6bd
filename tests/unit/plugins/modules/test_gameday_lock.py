from __future__ import annotations

import datetime
import types

import pytest
from ansible_collections.veritas.chaos.plugins.module_utils import _lock
from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError
from ansible_collections.veritas.chaos.plugins.module_utils._lock import (
    PURPOSE_ANNOTATION,
    LeaseLock,
)
from ansible_collections.veritas.chaos.plugins.modules import gameday_lock

NAME = "veritas-gameday-bluegreen"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/lab/leases"
LEASE = LEASES + "/" + NAME
NOW = datetime.datetime(2026, 11, 29, 12, 0, 0, tzinfo=datetime.UTC)
TAKE = {
    "namespace": "lab",
    "name": NAME,
    "holder": "gameday-bluegreen-run-a",
    "purpose": "gameday-bluegreen scenario 3",
    "duration": 600,
}
RELEASE = {"namespace": "lab", "name": NAME, "holder": "gameday-bluegreen-run-a"}


class Clock:
    """Wall clock for the Lease times and monotonic clock for the wait, advanced by sleep."""

    def __init__(self) -> None:
        self.now = NOW
        self.mono = 1000.0
        self.sleeps: list[float] = []

    def utcnow(self) -> datetime.datetime:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.now += datetime.timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(_lock, "utcnow", fake.utcnow)
    monkeypatch.setattr(
        gameday_lock,
        "time",
        types.SimpleNamespace(monotonic=fake.monotonic, sleep=fake.sleep),
    )
    return fake


def held_by(kube, holder, purpose=None, duration=600, ago=0):
    """Another run's Lease, renewed `ago` seconds before NOW."""
    LeaseLock(kube, "lab", NAME, holder, duration, purpose=purpose).acquire(
        NOW - datetime.timedelta(seconds=ago)
    )
    return kube.objects[LEASE]


def test_acquire_a_free_lock(kube, clock, run_module):
    result = run_module(gameday_lock, TAKE, kube)
    assert result["changed"] is True
    assert result["decision"] == "acquire"
    assert result["taken_over"] is False and result["previous_holder"] is None
    assert result["lock"] == {
        "name": NAME,
        "namespace": "lab",
        "holder": "gameday-bluegreen-run-a",
        "acquired_at": "2026-11-29T12:00:00.000000Z",
        "renewed_at": "2026-11-29T12:00:00.000000Z",
        "expires_at": "2026-11-29T12:10:00.000000Z",
        "duration": 600,
        "purpose": "gameday-bluegreen scenario 3",
    }
    lease = kube.objects[LEASE]
    assert lease["spec"]["holderIdentity"] == "gameday-bluegreen-run-a"
    assert lease["spec"]["leaseDurationSeconds"] == 600
    assert (
        lease["metadata"]["annotations"][PURPOSE_ANNOTATION]
        == "gameday-bluegreen scenario 3"
    )
    assert lease["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "veritas.chaos"
    }


def test_renew_own_lock_is_a_change_that_keeps_acquire_time(kube, clock, run_module):
    run_module(gameday_lock, TAKE, kube)
    clock.advance(120)
    result = run_module(gameday_lock, dict(TAKE, duration=900), kube)
    assert result["changed"] is True
    assert result["decision"] == "renew"
    assert result["previous_holder"] == "gameday-bluegreen-run-a"
    assert result["taken_over"] is False
    assert result["lock"]["acquired_at"] == "2026-11-29T12:00:00.000000Z"
    assert result["lock"]["renewed_at"] == "2026-11-29T12:02:00.000000Z"
    assert result["lock"]["expires_at"] == "2026-11-29T12:17:00.000000Z"
    assert kube.objects[LEASE]["spec"]["leaseDurationSeconds"] == 900


def test_renew_without_purpose_keeps_the_recorded_one(kube, clock, run_module):
    run_module(gameday_lock, TAKE, kube)
    result = run_module(gameday_lock, dict(TAKE, purpose=None), kube)
    assert result["decision"] == "renew"
    assert result["lock"]["purpose"] == "gameday-bluegreen scenario 3"


def test_held_lock_refused_naming_holder_purpose_and_expiry(kube, clock, run_module):
    held_by(kube, "gameday-canary-run-b", purpose="gameday-canary by bob", ago=60)
    before = kube.objects[LEASE]
    writes = len(kube.writes)
    result = run_module(gameday_lock, TAKE, kube)
    assert result["failed"] and result["reason"] == "locked"
    assert result["lock_holder"] == "gameday-canary-run-b"
    assert result["lock_purpose"] == "gameday-canary by bob"
    assert result["lock_expires"] == "2026-11-29T12:09:00.000000Z"
    for text in (
        "gameday-canary-run-b",
        "gameday-canary by bob",
        "2026-11-29T12:09:00.000000Z",
        f"lab/{NAME}",
        "game day",
    ):
        assert text in result["msg"]
    assert kube.objects[LEASE] == before
    assert len(kube.writes) == writes


def test_take_over_an_expired_lock(kube, clock, run_module):
    held_by(kube, "crashed-run", purpose="gameday-canary by bob", duration=60, ago=3600)
    result = run_module(gameday_lock, dict(TAKE, purpose=None), kube)
    assert result["changed"] is True
    assert result["decision"] == "take_over"
    assert result["taken_over"] is True
    assert result["previous_holder"] == "crashed-run"
    assert result["lock"]["holder"] == "gameday-bluegreen-run-a"
    assert result["lock"]["acquired_at"] == "2026-11-29T12:00:00.000000Z"
    # The crashed run's purpose is not ours.
    assert result["lock"]["purpose"] is None
    assert PURPOSE_ANNOTATION not in (
        kube.objects[LEASE]["metadata"].get("annotations") or {}
    )


def test_wait_until_a_held_lock_expires(kube, clock, run_module):
    held_by(kube, "gameday-canary-run-b", duration=60, ago=50)
    result = run_module(gameday_lock, dict(TAKE, wait=30, poll_interval=4), kube)
    assert result["changed"] and result["decision"] == "take_over"
    assert result["previous_holder"] == "gameday-canary-run-b"
    assert result["waited"] == 12.0
    assert clock.sleeps == [4, 4, 4]


def test_wait_runs_out_and_fails_naming_the_holder(kube, clock, run_module):
    held_by(kube, "gameday-canary-run-b", duration=600)
    before = kube.objects[LEASE]
    result = run_module(gameday_lock, dict(TAKE, wait=10, poll_interval=4), kube)
    assert result["failed"] and result["reason"] == "locked"
    assert result["lock_holder"] == "gameday-canary-run-b"
    assert result["waited"] == 10.0
    assert "Waited 10 seconds" in result["msg"]
    assert clock.sleeps == [4, 4, 2]
    assert kube.objects[LEASE] == before


def test_race_for_a_free_lock_is_refused_as_locked(kube, clock, run_module):
    kube.fail_on[("POST", LEASE)] = ChaosError("exists", reason="conflict", status=409)
    result = run_module(gameday_lock, TAKE, kube)
    assert result["failed"] and result["reason"] == "locked"
    assert "at the same moment" in result["msg"]


def test_release_own_lock_then_release_again(kube, clock, run_module):
    run_module(gameday_lock, TAKE, kube)
    result = run_module(gameday_lock, dict(RELEASE, state="absent"), kube, diff=True)
    assert result["changed"] is True
    assert result["decision"] == "release"
    assert result["previous_holder"] == "gameday-bluegreen-run-a"
    assert result["lock"] is None
    assert result["diff"]["after"] == {}
    assert result["diff"]["before"]["spec"]["holderIdentity"] == (
        "gameday-bluegreen-run-a"
    )
    assert LEASE not in kube.objects

    writes = len(kube.writes)
    again = run_module(gameday_lock, dict(RELEASE, state="absent"), kube)
    assert again["changed"] is False and again["decision"] == "none"
    assert "does not exist" in again["msg"]
    assert len(kube.writes) == writes


@pytest.mark.parametrize("ago, expired", [(0, False), (3600, True)])
def test_release_of_another_holders_lock_refused(kube, clock, run_module, ago, expired):
    held_by(
        kube, "gameday-canary-run-b", purpose="gameday-canary", duration=60, ago=ago
    )
    before = kube.objects[LEASE]
    result = run_module(gameday_lock, dict(RELEASE, state="absent"), kube)
    assert result["failed"] and result["reason"] == "locked"
    assert result["lock_holder"] == "gameday-canary-run-b"
    assert result["lock_purpose"] == "gameday-canary"
    assert result["lock_expired"] is expired
    assert "force=true" in result["msg"]
    assert kube.objects[LEASE] == before


def test_release_with_force_deletes_another_holders_lock(kube, clock, run_module):
    held_by(kube, "gameday-canary-run-b")
    result = run_module(gameday_lock, dict(RELEASE, state="absent", force=True), kube)
    assert result["changed"] and result["decision"] == "release"
    assert result["previous_holder"] == "gameday-canary-run-b"
    assert LEASE not in kube.objects


def test_release_absent_or_without_holder_is_not_changed(kube, clock, run_module):
    result = run_module(gameday_lock, dict(RELEASE, state="absent"), kube)
    assert result["changed"] is False and result["lock"] is None
    assert result["previous_holder"] is None
    assert kube.writes == []

    kube.put(
        LEASE,
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": NAME, "namespace": "lab"},
            "spec": {"leaseDurationSeconds": 60},
        },
    )
    result = run_module(gameday_lock, dict(RELEASE, state="absent"), kube)
    assert result["changed"] is False and "has no holder" in result["msg"]
    assert kube.writes == [] and LEASE in kube.objects


def test_release_refused_when_the_lease_changes_underneath(kube, clock, run_module):
    run_module(gameday_lock, TAKE, kube)
    kube.fail_on[("DELETE", LEASE)] = ChaosError(
        "conflict", reason="conflict", status=409
    )
    result = run_module(gameday_lock, dict(RELEASE, state="absent"), kube)
    assert result["failed"] and result["reason"] == "locked"
    assert LEASE in kube.objects


def test_check_mode_changes_nothing(kube, clock, run_module):
    acquire = run_module(gameday_lock, TAKE, kube, check_mode=True, diff=True)
    assert acquire["changed"] is True and acquire["decision"] == "acquire"
    assert acquire["lock"]["holder"] == "gameday-bluegreen-run-a"
    assert acquire["diff"]["before"] == {}
    assert acquire["diff"]["after"]["spec"]["holderIdentity"] == (
        "gameday-bluegreen-run-a"
    )
    assert kube.writes == [("POST", LEASES, True)]
    assert LEASE not in kube.objects

    run_module(gameday_lock, TAKE, kube)
    before = kube.objects[LEASE]
    clock.advance(60)
    renew = run_module(gameday_lock, TAKE, kube, check_mode=True)
    assert renew["changed"] and renew["decision"] == "renew"
    release = run_module(
        gameday_lock, dict(RELEASE, state="absent"), kube, check_mode=True
    )
    assert release["changed"] and release["decision"] == "release"
    assert release["lock"] is None
    assert kube.objects[LEASE] == before
    assert [w for w in kube.writes if not w[2]] == [("POST", LEASES, False)]


def test_check_mode_refuses_a_held_lock(kube, clock, run_module):
    held_by(kube, "gameday-canary-run-b")
    result = run_module(gameday_lock, TAKE, kube, check_mode=True)
    assert result["failed"] and result["reason"] == "locked"
    assert result["lock_holder"] == "gameday-canary-run-b"


@pytest.mark.parametrize(
    "args, field",
    [
        ({"duration": 0}, "duration"),
        ({"duration": -5}, "duration"),
        ({"holder": ""}, "holder"),
        ({"holder": "   "}, "holder"),
        ({"wait": -1}, "wait"),
        ({"poll_interval": 0}, "poll_interval"),
        ({"name": "Bad_Name"}, "name"),
        ({"force": True}, "force"),
    ],
)
def test_bad_input_names_the_field_and_changes_nothing(
    kube, clock, run_module, args, field
):
    held_by(kube, "gameday-canary-run-b")
    before = kube.objects[LEASE]
    calls = len(kube.calls)
    result = run_module(gameday_lock, dict(TAKE, **args), kube)
    assert result["failed"] and result["reason"] == "invalid_input"
    assert result["field"] == field and field in result["msg"]
    assert len(kube.calls) == calls
    assert kube.objects[LEASE] == before


def test_production_namespace_refused(kube, clock, run_module):
    result = run_module(gameday_lock, dict(TAKE, namespace="prod"), kube)
    assert result["failed"] and result["reason"] == "production_refused"
    assert kube.writes == []


def test_release_of_a_lease_deleted_underneath_is_not_changed(kube, clock, run_module):
    run_module(gameday_lock, TAKE, kube)
    kube.fail_on[("DELETE", LEASE)] = ChaosError(
        "not found", reason="not_found", status=404
    )
    result = run_module(gameday_lock, dict(RELEASE, state="absent"), kube)
    assert result["changed"] is False and result["decision"] == "none"
    assert result["previous_holder"] is None and "does not exist" in result["msg"]

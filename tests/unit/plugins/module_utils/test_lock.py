from __future__ import annotations

import datetime

import pytest
from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError
from ansible_collections.veritas.chaos.plugins.module_utils._lock import (
    ACQUIRE,
    HELD,
    PURPOSE_ANNOTATION,
    RENEW,
    TAKE_OVER,
    LeaseLock,
    format_micro_time,
    lease_expired,
    lease_expiry,
    lease_purpose,
    lease_summary,
    lock_decision,
    parse_time,
)
from fake_kube import FakeKube

NOW = datetime.datetime(2026, 11, 29, 12, 0, 0, tzinfo=datetime.UTC)


def spec(holder="run-a", renewed_seconds_ago=10, duration=60):
    return {
        "holderIdentity": holder,
        "leaseDurationSeconds": duration,
        "renewTime": format_micro_time(
            NOW - datetime.timedelta(seconds=renewed_seconds_ago)
        ),
    }


def test_parse_time_handles_micro_time_and_z():
    assert parse_time("2026-11-29T12:00:00.000000Z") == NOW
    assert parse_time("2026-11-29T12:00:00Z") == NOW
    assert parse_time(None) is None
    assert parse_time("yesterday") is None


def test_expiry_is_renew_time_plus_duration():
    assert lease_expiry(
        spec(renewed_seconds_ago=10, duration=60)
    ) == NOW + datetime.timedelta(seconds=50)


@pytest.mark.parametrize(
    "ago, duration, expired",
    [(10, 60, False), (59, 60, False), (60, 60, True), (61, 60, True)],
)
def test_lease_expired_boundary(ago, duration, expired):
    assert (
        lease_expired(spec(renewed_seconds_ago=ago, duration=duration), NOW) is expired
    )


def test_lease_without_holder_or_times_protects_nobody():
    assert lease_expired({"holderIdentity": "", "leaseDurationSeconds": 60}, NOW)
    assert lease_expired({"holderIdentity": "x"}, NOW)


def test_lock_decisions():
    assert lock_decision(None, "run-a", NOW) == ACQUIRE
    assert lock_decision(spec("run-a"), "run-a", NOW) == RENEW
    assert lock_decision(spec("run-b"), "run-a", NOW) == HELD
    assert (
        lock_decision(spec("run-b", renewed_seconds_ago=120), "run-a", NOW) == TAKE_OVER
    )


LEASE_PATH = "/apis/coordination.k8s.io/v1/namespaces/ns/leases/svc-switch"


def test_lease_lock_acquire_refuse_release():
    kube = FakeKube()
    mine = LeaseLock(kube, "ns", "svc-switch", "run-a", 60)
    assert mine.acquire(NOW) == ACQUIRE
    assert kube.objects[LEASE_PATH]["spec"]["holderIdentity"] == "run-a"

    theirs = LeaseLock(kube, "ns", "svc-switch", "run-b", 60)
    with pytest.raises(ChaosError) as caught:
        theirs.acquire(NOW + datetime.timedelta(seconds=30))
    assert caught.value.reason == "locked"
    assert caught.value.details["lock_holder"] == "run-a"

    mine.release()
    assert LEASE_PATH not in kube.objects


def test_lease_lock_takes_over_an_expired_lock():
    kube = FakeKube()
    LeaseLock(kube, "ns", "svc-switch", "crashed-run", 60).acquire(
        NOW - datetime.timedelta(seconds=300)
    )
    assert LeaseLock(kube, "ns", "svc-switch", "run-a", 60).acquire(NOW) == TAKE_OVER
    assert kube.objects[LEASE_PATH]["spec"]["holderIdentity"] == "run-a"


def test_release_leaves_someone_elses_lease_alone():
    kube = FakeKube()
    LeaseLock(kube, "ns", "svc-switch", "run-b", 60).acquire(NOW)
    LeaseLock(kube, "ns", "svc-switch", "run-a", 60).release()
    assert kube.objects[LEASE_PATH]["spec"]["holderIdentity"] == "run-b"


def test_refusal_names_the_activity_and_the_purpose():
    kube = FakeKube()
    LeaseLock(kube, "ns", "svc-switch", "run-b", 60, purpose="canary by bob").acquire(
        NOW
    )
    with pytest.raises(ChaosError) as switch:
        LeaseLock(kube, "ns", "svc-switch", "run-a", 60).acquire(NOW)
    assert switch.value.msg.startswith("Another switch is in progress")
    assert "run-b (purpose: canary by bob) until 2026-11-29T12:01:00.000000Z" in (
        switch.value.msg
    )
    assert switch.value.details["lock_purpose"] == "canary by bob"
    with pytest.raises(ChaosError) as gameday:
        LeaseLock(kube, "ns", "svc-switch", "run-a", 60, activity="game day").check(NOW)
    assert gameday.value.msg.startswith("Another game day is in progress")


def test_dry_run_acquire_writes_nothing_and_keeps_no_lease():
    kube = FakeKube()
    lock = LeaseLock(kube, "ns", "svc-switch", "run-a", 60, purpose="p")
    assert lock.acquire(NOW, dry_run=True) == ACQUIRE
    assert LEASE_PATH not in kube.objects and lock.lease is None
    assert lock.before is None
    assert lock.written["spec"]["holderIdentity"] == "run-a"
    assert lease_summary(lock.written)["purpose"] == "p"


def test_purpose_kept_on_renew_and_dropped_on_take_over():
    kube = FakeKube()
    LeaseLock(kube, "ns", "svc-switch", "run-a", 60, purpose="mine").acquire(NOW)
    LeaseLock(kube, "ns", "svc-switch", "run-a", 60).acquire(NOW)
    assert lease_purpose(kube.objects[LEASE_PATH]) == "mine"
    later = NOW + datetime.timedelta(seconds=120)
    LeaseLock(kube, "ns", "svc-switch", "run-b", 60).acquire(later)
    assert lease_purpose(kube.objects[LEASE_PATH]) is None
    assert "annotations" not in kube.objects[LEASE_PATH]["metadata"]


def test_lease_summary():
    lease = {
        "metadata": {
            "name": "l",
            "namespace": "ns",
            "annotations": {PURPOSE_ANNOTATION: "why"},
        },
        "spec": dict(spec("run-a", renewed_seconds_ago=0, duration=60)),
    }
    assert lease_summary(lease) == {
        "name": "l",
        "namespace": "ns",
        "holder": "run-a",
        "acquired_at": None,
        "renewed_at": "2026-11-29T12:00:00.000000Z",
        "expires_at": "2026-11-29T12:01:00.000000Z",
        "duration": 60,
        "purpose": "why",
    }
    assert lease_summary(None) is None


def test_release_held_only_ours_unless_forced():
    kube = FakeKube()
    assert LeaseLock(kube, "ns", "svc-switch", "run-a", 60).release_held() is None
    LeaseLock(kube, "ns", "svc-switch", "run-b", 60).acquire(NOW)
    with pytest.raises(ChaosError) as caught:
        LeaseLock(kube, "ns", "svc-switch", "run-a", 60).release_held()
    assert caught.value.reason == "locked"
    assert caught.value.details["lock_holder"] == "run-b"
    assert LEASE_PATH in kube.objects

    dry = LeaseLock(kube, "ns", "svc-switch", "run-a", 60).release_held(
        force=True, dry_run=True
    )
    assert dry["spec"]["holderIdentity"] == "run-b" and LEASE_PATH in kube.objects
    LeaseLock(kube, "ns", "svc-switch", "run-a", 60).release_held(force=True)
    assert LEASE_PATH not in kube.objects

    LeaseLock(kube, "ns", "svc-switch", "run-a", 60).acquire(NOW)
    gone = LeaseLock(kube, "ns", "svc-switch", "run-a", 60).release_held()
    assert gone["spec"]["holderIdentity"] == "run-a"
    assert LEASE_PATH not in kube.objects

from __future__ import annotations

import datetime

import pytest
from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError
from ansible_collections.veritas.chaos.plugins.module_utils._lock import (
    ACQUIRE,
    HELD,
    RENEW,
    TAKE_OVER,
    LeaseLock,
    format_micro_time,
    lease_expired,
    lease_expiry,
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

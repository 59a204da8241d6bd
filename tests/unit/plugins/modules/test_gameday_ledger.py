"""gameday_ledger state=restored release_locks: a restored run's game-day lock, never another run's."""

from __future__ import annotations

import pytest
from ansible_collections.veritas.chaos.plugins.module_utils._client import resource_path
from ansible_collections.veritas.chaos.plugins.module_utils._ledger import (
    RESTORED,
    Ledger,
    ledger_name,
)
from ansible_collections.veritas.chaos.plugins.modules import gameday_ledger

NS = "lab"
LOCK = "veritas-gameday-canary"
LEASE = resource_path("coordination.k8s.io/v1", "leases", NS, LOCK)


def restored_ledger(kube, run_id: str) -> None:
    ledger = Ledger(kube, NS, ledger_name(run_id))
    ledger.open(run_id, holder=run_id, topology="canary", purpose="test", lock=LOCK)
    ledger.mark(RESTORED, 0)


def lease(kube, holder: str) -> None:
    kube.put(
        LEASE,
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": LOCK, "namespace": NS, "resourceVersion": "1"},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 1800},
        },
    )


RESTORE = {"namespace": NS, "state": "restored", "release_locks": True}


def test_a_restored_runs_lock_is_released_and_a_second_call_changes_nothing(kube, run_module):
    # A run killed after its restore put its ledger back, before it let go of its lock.
    restored_ledger(kube, "run-a")
    lease(kube, "run-a")
    first = run_module(gameday_ledger, RESTORE, kube)
    assert first["changed"] is True
    assert first["locks"] == [{"lock": LOCK, "run_id": "run-a", "outcome": "released"}]
    assert LEASE not in kube.objects
    second = run_module(gameday_ledger, RESTORE, kube)
    assert second["changed"] is False
    assert second["locks"] == [{"lock": LOCK, "run_id": "run-a", "outcome": "not held"}]


def test_a_lock_another_run_took_over_is_left_alone(kube, run_module):
    restored_ledger(kube, "run-a")
    lease(kube, "run-b")
    result = run_module(gameday_ledger, RESTORE, kube)
    assert result["changed"] is False and not result.get("failed")
    assert result["locks"][0]["outcome"] == "held by another run"
    assert kube.objects[LEASE]["spec"]["holderIdentity"] == "run-b"


def test_without_release_locks_the_lock_stays(kube, run_module):
    restored_ledger(kube, "run-a")
    lease(kube, "run-a")
    result = run_module(gameday_ledger, dict(RESTORE, release_locks=False), kube)
    assert "locks" not in result and LEASE in kube.objects


def test_check_mode_releases_nothing(kube, run_module):
    restored_ledger(kube, "run-a")
    lease(kube, "run-a")
    result = run_module(gameday_ledger, RESTORE, kube, check_mode=True)
    assert result["locks"][0]["outcome"] == "released"
    assert kube.objects[LEASE]["spec"]["holderIdentity"] == "run-a"


@pytest.mark.parametrize("extra", [{"name": "veritas-ledger-x"}, {"state": "absent", "name": "x"}])
def test_release_locks_outside_the_interrupted_runs_restore_is_refused(kube, run_module, extra):
    result = run_module(gameday_ledger, dict(RESTORE, **extra), kube)
    assert result["failed"] and result["field"] == "release_locks"

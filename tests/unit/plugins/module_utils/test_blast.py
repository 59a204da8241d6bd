from __future__ import annotations

import pytest
from ansible_collections.veritas.chaos.plugins.module_utils._blast import (
    blast_radius_refusal,
    choose,
    is_candidate,
    is_ready,
    pods_to_kill,
    validate_caps,
)
from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError


@pytest.mark.parametrize(
    "total, count, percent, expected",
    [
        (4, 1, None, 1),
        (4, 10, None, 4),
        (4, None, 25, 1),
        (4, None, 50, 2),
        (3, None, 50, 2),  # rounds up
        (5, None, 10, 1),  # a positive percent always selects at least one pod
        (4, None, 100, 4),
        (4, None, None, 1),
        (0, None, None, 0),
    ],
)
def test_pods_to_kill(total, count, percent, expected):
    assert pods_to_kill(total, count, percent) == expected


@pytest.mark.parametrize(
    "count, percent, field",
    [
        (0, None, "count"),
        (None, 0, "percent"),
        (None, 101, "percent"),
        (1, 50, "count, percent"),
    ],
)
def test_pods_to_kill_rejects_bad_input(count, percent, field):
    with pytest.raises(ChaosError) as caught:
        pods_to_kill(4, count, percent)
    assert caught.value.details["field"] == field


def test_blast_radius_within_caps():
    assert blast_radius_refusal(2, 4, max_count=2, max_percent=50) is None


def test_blast_radius_count_cap():
    assert "exceeds max_count=1" in blast_radius_refusal(
        2, 10, max_count=1, max_percent=100
    )


def test_blast_radius_percent_cap_boundary():
    assert blast_radius_refusal(1, 2, None, 50) is None
    refusal = blast_radius_refusal(2, 3, None, 50)
    assert refusal is not None
    assert "2 of 3 pods (66.7%) exceeds max_percent=50" in refusal


def test_validate_caps():
    validate_caps(None, 100)
    with pytest.raises(ChaosError):
        validate_caps(0, None)
    with pytest.raises(ChaosError):
        validate_caps(None, 0)


def test_choose_is_repeatable_with_a_seed_and_sorted():
    names = [f"p{i}" for i in range(10)]
    first = choose(names, 3, seed=7)
    assert first == choose(list(reversed(names)), 3, seed=7)
    assert first == sorted(first)
    assert len(set(first)) == 3


def test_candidates_and_readiness():
    running = {
        "metadata": {},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }
    terminating = {
        "metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"},
        "status": running["status"],
    }
    done = {"metadata": {}, "status": {"phase": "Succeeded"}}
    assert is_candidate(running) and is_ready(running)
    assert not is_candidate(terminating) and not is_ready(terminating)
    assert not is_candidate(done)
    assert not is_ready({"metadata": {}, "status": {"phase": "Pending"}})

from __future__ import annotations

import json

import pytest
from ansible_collections.veritas.chaos.plugins.modules import pod_chaos
from fake_kube import pod

PODS = "/api/v1/namespaces/lab/pods"


@pytest.fixture
def canaries(kube):
    for index in range(4):
        kube.put(
            f"{PODS}/canary-{index}",
            pod(f"canary-{index}", {"app": "veritas", "variant": "canary"}),
        )
    kube.put(
        PODS + "/control-0", pod("control-0", {"app": "veritas", "variant": "control"})
    )
    return kube


def live(kube, variant="canary"):
    return sorted(
        path.rsplit("/", 1)[1]
        for path, obj in kube.objects.items()
        if path.startswith(PODS) and obj["metadata"]["labels"]["variant"] == variant
    )


def test_kills_count_pods_of_the_selection_only(canaries, run_module):
    result = run_module(
        pod_chaos,
        {"namespace": "lab", "label_selector": "variant=canary", "count": 2, "seed": 1},
        canaries,
    )
    assert result["changed"] and len(result["killed"]) == 2
    assert result["matched"] == 4
    assert result["blast_radius"] == {
        "selected": 2,
        "percent": 50.0,
        "max_count": None,
        "max_percent": 50,
    }
    assert len(live(canaries)) == 2 and live(canaries, "control") == ["control-0"]
    assert not set(result["killed"]) & set(live(canaries))


def test_blast_radius_cap_refuses_and_deletes_nothing(canaries, run_module):
    result = run_module(
        pod_chaos,
        {"namespace": "lab", "label_selector": "variant=canary", "percent": 75},
        canaries,
    )
    assert result["failed"] and result["reason"] == "blast_radius"
    assert "3 of 4 pods (75.0%) exceeds max_percent=50" in result["msg"]
    assert canaries.writes == []
    capped = run_module(
        pod_chaos,
        {
            "namespace": "lab",
            "label_selector": "variant=canary",
            "count": 2,
            "max_count": 1,
        },
        canaries,
    )
    assert capped["failed"] and "exceeds max_count=1" in capped["msg"]
    assert len(live(canaries)) == 4


def test_percent_100_with_explicit_cap_and_force(canaries, run_module, monkeypatch):
    grace = []
    original = canaries.delete
    monkeypatch.setattr(
        canaries,
        "delete",
        lambda path, dry_run=False, grace_period_seconds=None, preconditions=None: (
            grace.append(grace_period_seconds) or original(path, dry_run)
        ),
    )
    result = run_module(
        pod_chaos,
        {
            "namespace": "lab",
            "label_selector": "variant=canary",
            "percent": 100,
            "max_percent": 100,
            "force": True,
        },
        canaries,
    )
    assert result["killed"] == ["canary-0", "canary-1", "canary-2", "canary-3"]
    assert grace == [0, 0, 0, 0]


def test_check_mode_dry_runs_each_delete(canaries, run_module):
    result = run_module(
        pod_chaos,
        {
            "namespace": "lab",
            "label_selector": "variant=canary",
            "count": 1,
            "wait": True,
        },
        canaries,
        check_mode=True,
        diff=True,
    )
    assert result["changed"] and len(result["killed"]) == 1
    assert all(call[2] for call in canaries.writes)
    assert len(live(canaries)) == 4
    assert result["recovery_seconds"] is None
    assert len(result["diff"]["after"]["pods"]) == 3


def test_no_targets_is_an_error(canaries, run_module):
    result = run_module(
        pod_chaos, {"namespace": "lab", "label_selector": "variant=ghost"}, canaries
    )
    assert result["failed"] and result["reason"] == "no_targets"


def test_terminating_pods_are_not_part_of_the_population(canaries, run_module):
    terminating = pod("canary-0", {"app": "veritas", "variant": "canary"})
    terminating["metadata"]["deletionTimestamp"] = "2026-11-29T00:00:00Z"
    canaries.put(PODS + "/canary-0", terminating)
    result = run_module(
        pod_chaos,
        {
            "namespace": "lab",
            "label_selector": "variant=canary",
            "percent": 100,
            "max_percent": 100,
        },
        canaries,
    )
    assert result["matched"] == 3 and "canary-0" not in result["killed"]


def test_experiment_id_makes_the_kill_idempotent(canaries, run_module):
    args = {
        "namespace": "lab",
        "label_selector": "variant=canary",
        "count": 1,
        "experiment_id": "gd1-run7",
    }
    first = run_module(pod_chaos, args, canaries)
    assert first["changed"] and not first["recorded"]
    record = json.loads(
        canaries.objects["/api/v1/namespaces/lab/configmaps/veritas-chaos-experiments"][
            "data"
        ]["gd1-run7"]
    )
    assert record["killed"] == first["killed"]
    writes = len(canaries.writes)
    second = run_module(pod_chaos, args, canaries)
    assert second["changed"] is False and second["recorded"] is True
    assert second["killed"] == first["killed"]
    assert len(canaries.writes) == writes
    assert len(live(canaries)) == 3


def test_wait_measures_recovery_of_replacements(canaries, run_module, monkeypatch):
    # A replacement appears (Ready) after the kill, as a ReplicaSet would create it.
    original_list = canaries.list
    state = {"calls": 0}

    def listing(path, label_selector=None, field_selector=None):
        state["calls"] += 1
        if state["calls"] == 3:
            canaries.put(
                PODS + "/canary-new",
                pod("canary-new", {"app": "veritas", "variant": "canary"}),
            )
        return original_list(path, label_selector, field_selector)

    monkeypatch.setattr(canaries, "list", listing)
    monkeypatch.setattr(pod_chaos.time, "sleep", lambda seconds: None)
    result = run_module(
        pod_chaos,
        {
            "namespace": "lab",
            "label_selector": "variant=canary",
            "count": 1,
            "wait": True,
            "wait_timeout": 30,
        },
        canaries,
    )
    assert result["changed"] and isinstance(result["recovery_seconds"], float)
    assert result["ready_before"] == 4
    assert state["calls"] >= 3


def test_wait_timeout_fails_reporting_the_kill(canaries, run_module, monkeypatch):
    monkeypatch.setattr(pod_chaos.time, "sleep", lambda seconds: None)
    result = run_module(
        pod_chaos,
        {
            "namespace": "lab",
            "label_selector": "variant=canary",
            "count": 1,
            "wait": True,
            "wait_timeout": 0,
        },
        canaries,
    )
    assert (
        result["failed"] and result["reason"] == "timeout" and result["changed"] is True
    )
    assert "Only 3 of 4 pods" in result["msg"]


@pytest.mark.parametrize(
    "args, field",
    [
        ({"count": 0}, "count"),
        ({"percent": 120}, "percent"),
        ({"max_percent": 0}, "max_percent"),
        ({"wait_sleep": 0}, "wait_sleep"),
    ],
)
def test_bad_input_names_the_field(canaries, run_module, args, field):
    result = run_module(
        pod_chaos,
        dict({"namespace": "lab", "label_selector": "variant=canary"}, **args),
        canaries,
    )
    assert result["failed"] and result["field"] == field
    assert canaries.calls == []


def test_count_and_percent_are_exclusive(canaries, run_module):
    result = run_module(
        pod_chaos,
        {
            "namespace": "lab",
            "label_selector": "variant=canary",
            "count": 1,
            "percent": 10,
        },
        canaries,
    )
    assert result["failed"] and "mutually exclusive" in result["msg"]

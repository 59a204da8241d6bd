from __future__ import annotations

import pytest
from ansible_collections.veritas.chaos.plugins.module_utils import _runtime_exec
from ansible_collections.veritas.chaos.plugins.modules import cache_warmup
from fake_kube import pod
from fake_runtime import FakeRuntimes

PODS = "/api/v1/namespaces/lab/pods"
GREEN = {
    "namespace": "lab",
    "label_selector": "deployment=green",
    "model": "llama-7b",
    "poll_interval": 0.01,
}


@pytest.fixture
def lab(kube, monkeypatch):
    for name in ("green-0", "green-1"):
        kube.put(
            f"{PODS}/{name}",
            pod(name, {"app": "veritas-runtime", "deployment": "green"}),
        )
    kube.put(
        PODS + "/blue-0",
        pod("blue-0", {"app": "veritas-runtime", "deployment": "blue"}),
    )
    runtimes = FakeRuntimes("green-0", "green-1", "blue-0")
    monkeypatch.setattr(_runtime_exec, "exec_in_pod", runtimes.exec)
    monkeypatch.setattr(cache_warmup.time, "sleep", lambda seconds: None)
    kube.runtimes = runtimes
    return kube


def test_warms_every_cold_pod_reports_progress_and_is_idempotent(lab, run_module):
    result = run_module(cache_warmup, GREEN, lab, diff=True)
    assert result["changed"] and not result.get("failed")
    assert result["warmed"] == ["green-0", "green-1"] and result["already_warm"] == []
    first = result["pods"][0]
    assert first["action"] == "warmup" and first["changed"]
    assert first["before"]["state"] == "cold" and first["after"]["state"] == "warm"
    assert [sample["percent"] for sample in first["progress"]] == [34, 68, 99, 100]
    assert first["duration_seconds"] is not None and result["duration_seconds"] >= 0
    assert result["diff"]["after"]["pods"]["green-1"] == {
        "state": "warm",
        "percent": 100,
        "entries": 64,
    }
    assert (
        "green-0",
        ["./cli", "cache-warmup", "--model", "llama-7b", "--no-wait"],
    ) in lab.runtimes.writes()
    assert lab.runtimes.pods["blue-0"].cache_state == "cold"

    lab.runtimes.commands.clear()
    again = run_module(cache_warmup, GREEN, lab)
    assert not again["changed"] and again["already_warm"] == ["green-0", "green-1"]
    assert lab.runtimes.writes() == []


def test_check_mode_only_reads_cache_status(lab, run_module):
    result = run_module(cache_warmup, GREEN, lab, check_mode=True, diff=True)
    assert result["changed"] and result["warmed"] == ["green-0", "green-1"]
    assert lab.runtimes.writes() == []
    assert all(command[1] == "cache-status" for _pod, command in lab.runtimes.commands)
    assert result["pods"][0]["after"]["state"] == "cold"
    assert result["diff"]["after"]["pods"]["green-0"]["percent"] == 100


def test_target_percent_accepts_a_pod_already_warming_past_it(lab, run_module):
    warming = lab.runtimes.pods["green-0"]
    warming.warmup = {
        "state": "running",
        "model": "llama-7b",
        "done": 60,
        "total": 64,
        "progress": 93,
        "id": "x",
    }
    warming.stuck = True
    lab.runtimes.pods["green-1"].cache_state = "warm"
    result = run_module(cache_warmup, dict(GREEN, target_percent=90), lab)
    assert not result["changed"] and lab.runtimes.writes() == []


def test_pod_already_warming_is_waited_for_not_restarted(lab, run_module):
    lab.runtimes.pods["green-0"].warmup = {
        "state": "running",
        "model": "llama-7b",
        "done": 0,
        "total": 64,
        "progress": 0,
        "id": "x",
    }
    lab.runtimes.pods["green-1"].cache_state = "warm"
    result = run_module(cache_warmup, GREEN, lab)
    assert not result["changed"] and result["pods"][0]["action"] == "wait"
    assert result["pods"][0]["after"]["state"] == "warm"
    assert lab.runtimes.writes() == []


def test_timeout_names_the_pods_still_warming(lab, run_module):
    lab.runtimes.pods["green-1"].stuck = True
    result = run_module(cache_warmup, dict(GREEN, timeout=1, poll_interval=0.2), lab)
    assert result["failed"] and result["reason"] == "timeout"
    assert result["still_warming"] == ["green-1"]
    assert "still warming: green-1 (0%, 0 entries)" in result["msg"]
    assert result["changed"] is True


def test_wrong_model_is_refused_before_anything_starts(lab, run_module):
    lab.runtimes.pods["green-1"].model = "mistral-7b"
    result = run_module(cache_warmup, GREEN, lab)
    assert result["failed"] and result["field"] == "model"
    assert "green-1" in result["msg"] and "mistral-7b" in result["msg"]
    assert lab.runtimes.writes() == []


def test_warmup_failure_names_the_pod(lab, run_module):
    lab.runtimes.pods["green-1"].disk_full = True
    result = run_module(cache_warmup, GREEN, lab)
    assert (
        result["failed"]
        and result["reason"] == "exec_failed"
        and result["pod"] == "green-1"
    )
    assert (
        "no space left on device" in result["msg"]
        and "already started in: green-0" in result["msg"]
    )


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"target_percent": 0}, "target_percent"),
        ({"target_percent": 101}, "target_percent"),
        ({"timeout": 0}, "timeout"),
        ({"poll_interval": 0}, "poll_interval"),
        ({"warmup_prompts": 0}, "warmup_prompts"),
        ({"model": " "}, "model"),
        ({"cli_path": ""}, "cli_path"),
    ],
)
def test_bad_input_names_the_field(lab, run_module, extra, field):
    result = run_module(cache_warmup, dict(GREEN, **extra), lab)
    assert (
        result["failed"]
        and result["reason"] == "invalid_input"
        and result["field"] == field
    )
    assert field in result["msg"]
    assert lab.runtimes.commands == []


def test_no_pods_and_production_are_refused(lab, run_module):
    none = run_module(
        cache_warmup, dict(GREEN, label_selector="deployment=purple"), lab
    )
    assert none["failed"] and none["reason"] == "no_targets"
    prod = run_module(cache_warmup, dict(GREEN, namespace="prod"), lab)
    assert prod["failed"] and prod["reason"] == "production_refused"
    assert lab.runtimes.commands == []


def test_warmup_options_are_passed_to_the_cli(lab, run_module):
    run_module(
        cache_warmup,
        dict(
            GREEN, warmup_seconds=0.5, warmup_prompts=16, cli_path="python3 /app/cli.py"
        ),
        lab,
    )
    starts = [command for _pod, command in lab.runtimes.writes()]
    assert starts[0] == [
        "python3",
        "/app/cli.py",
        "cache-warmup",
        "--model",
        "llama-7b",
        "--no-wait",
        "--seconds",
        "0.5",
        "--prompts",
        "16",
    ]


def test_invalidate_waits_for_a_running_warm_up_drops_the_cache_then_warms(lab, run_module):
    # green-0 is warm (and would be left alone), green-1 is still warming from an earlier warm-up.
    lab.runtimes.pods["green-0"].cache_state, lab.runtimes.pods["green-0"].entries = "warm", 64
    lab.runtimes.pods["green-1"].warmup = {
        "state": "running", "model": "llama-7b", "done": 10, "total": 64, "progress": 15, "id": "x"
    }
    result = run_module(cache_warmup, dict(GREEN, invalidate=True), lab)
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] and result["invalidated"] == ["green-0", "green-1"]
    assert result["warmed"] == ["green-0", "green-1"]
    writes = [command[1] for _pod, command in lab.runtimes.writes()]
    assert writes == ["cache-invalidate", "cache-invalidate", "cache-warmup", "cache-warmup"]
    # the earlier warm-up had ended before its pod's cache was dropped
    assert lab.runtimes.pods["green-1"].warmup["id"] == "w1"
    assert all(p["after"]["state"] == "warm" for p in result["pods"])


def test_invalidate_in_check_mode_changes_nothing(lab, run_module):
    lab.runtimes.pods["green-0"].cache_state, lab.runtimes.pods["green-0"].entries = "warm", 64
    result = run_module(cache_warmup, dict(GREEN, invalidate=True), lab, check_mode=True)
    assert result["changed"] and result["invalidated"] == ["green-0", "green-1"]
    assert lab.runtimes.writes() == []
    assert lab.runtimes.pods["green-0"].entries == 64

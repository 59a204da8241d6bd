"""The change ledger: what a run changed, recorded before the change, and put back exactly."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ansible_collections.veritas.chaos.plugins.module_utils import _ledger
from ansible_collections.veritas.chaos.plugins.module_utils._client import resource_path
from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError
from ansible_collections.veritas.chaos.plugins.module_utils._ledger import (
    Ledger,
    RecordingClient,
    field_changes,
    ledger_name,
    parse_ledger_ref,
    plan_undo,
    restore_ledger,
    touched_fields,
    undo_merge_patch,
)
from fake_kube import FakeKube

NS = "veritas-lab"
CM = resource_path("v1", "configmaps", NS, "veritas-traffic-config")
SVC = resource_path("v1", "services", NS, "veritas-runtime")
NODE = resource_path("v1", "nodes", name="lab-gpu-1")
NP_COLLECTION = resource_path("networking.k8s.io/v1", "networkpolicies", NS)


def _cluster() -> FakeKube:
    kube = FakeKube()
    kube.put(
        CM,
        {
            "kind": "ConfigMap",
            "metadata": {
                "name": "veritas-traffic-config",
                "namespace": NS,
                "uid": "cm-1",
            },
            "data": {"control": "80", "canary": "20"},
        },
    )
    kube.put(
        SVC,
        {
            "kind": "Service",
            "metadata": {"name": "veritas-runtime", "namespace": NS, "uid": "svc-1"},
            "spec": {"selector": {"app": "veritas-runtime", "deployment": "green"}},
        },
    )
    kube.put(
        NODE,
        {
            "kind": "Node",
            "metadata": {"name": "lab-gpu-1", "uid": "node-1"},
            "spec": {"taints": [{"key": "other", "effect": "NoSchedule"}]},
            "status": {"capacity": {"nvidia.com/gpu": "8"}},
        },
    )
    return kube


def _recording(kube: FakeKube, module: str = "test") -> RecordingClient:
    ledger = Ledger(kube, NS, ledger_name("run-1"))
    ledger.open(
        "run-1",
        holder="run-1",
        topology="canary",
        purpose="test",
        lock="veritas-gameday-canary",
    )
    return RecordingClient(kube, ledger, module)


def _no_exec(*_args):  # pragma: no cover - called only when a test wants exec
    raise AssertionError("no exec expected")


def test_touched_fields_are_the_leaves_of_a_merge_patch():
    patch = {
        "data": {"canary": "0", "control": "100"},
        "spec": {"selector": {"app": None}},
    }
    assert touched_fields(patch) == [
        ("data", "canary"),
        ("data", "control"),
        ("spec", "selector", "app"),
    ]


def test_field_changes_keep_previous_values_and_skip_unchanged_fields():
    obj = {"data": {"canary": "20", "control": "80"}}
    changes = field_changes(obj, {"data": {"canary": "0", "control": "80", "new": "x"}})
    assert changes == [
        {"path": ["data", "canary"], "present": True, "value": "20"},
        {"path": ["data", "new"], "present": False, "value": None},
    ]


def test_undo_patch_sets_previous_values_and_removes_fields_that_were_absent():
    fields = [
        {"path": ["data", "canary"], "present": True, "value": "20"},
        {"path": ["data", "new"], "present": False, "value": None},
    ]
    assert undo_merge_patch(fields) == {"data": {"canary": "20", "new": None}}


@pytest.mark.parametrize(
    "ref, expected",
    [("ns/name", ("ns", "name")), ("name", ("dflt", "name")), ("", None), (None, None)],
)
def test_ledger_ref(ref, expected):
    assert parse_ledger_ref(ref, "dflt") == expected


@pytest.mark.parametrize("ref", ["a/b/c", "/x", 5])
def test_ledger_ref_rejects_bad_values_naming_the_field(ref):
    with pytest.raises(ChaosError) as err:
        parse_ledger_ref(ref, "dflt")
    assert err.value.details["field"] == "ledger"


def test_ledger_name_is_a_valid_object_name():
    name = ledger_name("Alice-20261129T204500-123", "Canary_Error_Rate")
    assert name.startswith("veritas-ledger-") and len(name) <= 63
    assert all(c.isalnum() and c.islower() or c.isdigit() or c == "-" for c in name)


def test_a_recorded_patch_is_undone_to_the_value_that_was_there_not_an_inventory_value():
    kube = _cluster()
    client = _recording(kube)
    # The run moves the weights twice (inject, then a rollback to 100/0).
    client.patch(CM, {"data": {"control": "50", "canary": "50"}})
    client.patch(CM, {"data": {"control": "100", "canary": "0"}})
    assert len(client.ledger.entries()) == 2
    outcome = restore_ledger(client.ledger, _no_exec)
    assert kube.objects[CM]["data"] == {"control": "80", "canary": "20"}
    assert outcome["changed"] and not outcome["failed"]
    # Idempotent: nothing pending, nothing changed.
    again = restore_ledger(client.ledger, _no_exec)
    assert again["changed"] is False and again["entries_undone"] == 0


def test_selector_keys_removed_by_a_switch_come_back():
    kube = _cluster()
    client = _recording(kube)
    client.patch(
        SVC,
        {"spec": {"selector": {"deployment": "blue", "track": "stable", "app": None}}},
    )
    assert kube.objects[SVC]["spec"]["selector"] == {
        "deployment": "blue",
        "track": "stable",
    }
    restore_ledger(client.ledger, _no_exec)
    assert kube.objects[SVC]["spec"]["selector"] == {
        "app": "veritas-runtime",
        "deployment": "green",
    }


def test_status_subresource_patches_are_recorded_and_undone_on_the_subresource():
    kube = _cluster()
    client = _recording(kube)
    client.patch(NODE + "/status", {"status": {"capacity": {"nvidia.com/gpu": "0"}}})
    client.patch(
        NODE,
        {
            "spec": {
                "taints": [
                    {"key": "other", "effect": "NoSchedule"},
                    {"key": "gpu", "effect": "NoExecute"},
                ]
            }
        },
    )
    steps = plan_undo(client.ledger.entries())
    assert [step["path"] for step in steps] == [NODE, NODE + "/status"]
    restore_ledger(client.ledger, _no_exec)
    assert kube.objects[NODE]["status"]["capacity"] == {"nvidia.com/gpu": "8"}
    assert kube.objects[NODE]["spec"]["taints"] == [
        {"key": "other", "effect": "NoSchedule"}
    ]


def test_dry_runs_and_leases_are_not_recorded():
    kube = _cluster()
    client = _recording(kube)
    client.patch(CM, {"data": {"canary": "0"}}, dry_run=True)
    lease_path = resource_path("coordination.k8s.io/v1", "leases", NS)
    client.create(lease_path, {"kind": "Lease", "metadata": {"name": "l"}, "spec": {}})
    assert client.ledger.entries() == []


def test_a_created_object_is_deleted_and_a_deleted_one_created_again():
    kube = _cluster()
    client = _recording(kube)
    policy = {
        "kind": "NetworkPolicy",
        "metadata": {"name": "block", "namespace": NS},
        "spec": {"podSelector": {}},
    }
    client.create(NP_COLLECTION, policy)
    client.delete(CM)
    assert CM not in kube.objects
    restore_ledger(client.ledger, _no_exec)
    assert NP_COLLECTION + "/block" not in kube.objects
    assert kube.objects[CM]["data"] == {"control": "80", "canary": "20"}


def test_an_object_replaced_by_someone_else_after_our_create_is_left_alone():
    kube = _cluster()
    client = _recording(kube)
    client.create(
        NP_COLLECTION,
        {"kind": "NetworkPolicy", "metadata": {"name": "block", "namespace": NS}},
    )
    kube.objects[NP_COLLECTION + "/block"]["metadata"]["uid"] = "someone-elses"
    outcome = restore_ledger(client.ledger, _no_exec)
    assert NP_COLLECTION + "/block" in kube.objects
    assert "left alone" in outcome["steps"][0]["outcome"]


def test_exec_faults_run_the_earliest_undo_once_and_only_in_the_same_pod():
    kube = _cluster()
    pod_path = resource_path("v1", "pods", NS, "canary-0")
    kube.put(
        pod_path,
        {
            "kind": "Pod",
            "metadata": {"name": "canary-0", "namespace": NS, "uid": "p-1"},
            "status": {"phase": "Running"},
        },
    )
    client = _recording(kube)
    pod = kube.objects[pod_path]
    client.record_exec(
        pod, "runtime_fault:error-rate", [["./cli", "fault", "clear", "error-rate"]]
    )
    # The run's own restore clears it, recording the re-set as its undo; the earliest wins.
    client.record_exec(
        pod, "runtime_fault:error-rate", [["./cli", "fault", "set", "error-rate"]]
    )
    ran = []
    restore_ledger(
        client.ledger, lambda ns, name, command, container: ran.append((name, command))
    )
    assert ran == [("canary-0", ["./cli", "fault", "clear", "error-rate"])]
    # A replacement pod (another uid) never had the fault: nothing runs there.
    client.record_exec(
        pod, "runtime_fault:latency", [["./cli", "fault", "clear", "latency"]]
    )
    kube.objects[pod_path]["metadata"]["uid"] = "p-2"
    ran.clear()
    outcome = restore_ledger(
        client.ledger, lambda ns, name, command, container: ran.append(command)
    )
    assert ran == [] and outcome["steps"][0]["outcome"].startswith("pod gone")


def test_every_step_runs_when_one_fails_and_the_ledger_says_failed():
    kube = _cluster()
    client = _recording(kube)
    client.patch(CM, {"data": {"canary": "0", "control": "100"}})
    client.patch(SVC, {"spec": {"selector": {"deployment": "blue"}}})
    kube.fail_on[("PATCH", SVC)] = ChaosError("boom", reason="api_error")
    outcome = restore_ledger(client.ledger, _no_exec)
    assert kube.objects[CM]["data"]["canary"] == "20"  # the other step still ran
    assert len(outcome["failed"]) == 1
    assert (
        kube.objects[client.ledger.path]["metadata"]["labels"][_ledger.STATE_LABEL]
        == "failed"
    )
    del kube.fail_on[("PATCH", SVC)]
    outcome = restore_ledger(client.ledger, _no_exec)
    assert (
        not outcome["failed"]
        and kube.objects[SVC]["spec"]["selector"]["deployment"] == "green"
    )


def test_changes_after_a_restore_are_restored_to_the_post_restore_state():
    kube = _cluster()
    client = _recording(kube)
    client.patch(CM, {"data": {"canary": "0", "control": "100"}})
    restore_ledger(client.ledger, _no_exec)
    kube.objects[CM]["data"] = {"control": "70", "canary": "30"}  # a release by hand
    client.patch(CM, {"data": {"canary": "0", "control": "100"}})
    restore_ledger(client.ledger, _no_exec)
    assert kube.objects[CM]["data"] == {"control": "70", "canary": "30"}


def test_open_refuses_a_ledger_of_another_run():
    kube = _cluster()
    Ledger(kube, NS, "veritas-ledger-x").open("run-a", "run-a", None, None, None)
    with pytest.raises(ChaosError) as err:
        Ledger(kube, NS, "veritas-ledger-x").open("run-b", "run-b", None, None, None)
    assert err.value.reason == "conflict"


def test_processes_are_stopped_first_and_by_identity():
    kube = _cluster()
    client = _recording(kube)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        client.patch(CM, {"data": {"canary": "0", "control": "100"}})
        client.record_process(sleeper.pid, "rollback guard")
        steps = plan_undo(client.ledger.entries())
        assert steps[0]["op"] == "stop_process"
        outcome = restore_ledger(client.ledger, _no_exec)
        assert outcome["steps"][0]["stopped"] == [sleeper.pid]
        assert sleeper.wait(timeout=10) is not None
    finally:
        if sleeper.poll() is None:
            sleeper.kill()


def test_a_reused_pid_is_not_the_recorded_process():
    identity = _ledger.process_identity(os.getpid())
    other = dict(identity, start_ticks=identity["start_ticks"] - 1)
    assert _ledger.same_process(identity) == "alive"
    assert _ledger.same_process(other) == "gone"
    assert _ledger.same_process(dict(identity, host="elsewhere")) == "elsewhere"


def test_a_run_restoring_its_own_ledger_does_not_stop_itself():
    identity = _ledger.process_identity(os.getppid(), group=_ledger.GROUP_WORKERS)
    outcome = _ledger.stop_process(identity, grace=0.1)
    assert outcome == {"stopped": [], "state": "this run", "changed": False}


def test_process_group_members_are_stopped_after_the_leader_died():
    # A leader that starts a worker in its own process group, then is killed: the worker stays.
    script = "import os, subprocess, sys, time; os.setpgid(0, 0); subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"
    leader = subprocess.Popen([sys.executable, "-c", script])
    time.sleep(0.5)
    identity = _ledger.process_identity(leader.pid, group=_ledger.GROUP_ALL)
    assert identity["group"] == _ledger.GROUP_ALL
    members = _ledger.group_members(identity)
    assert leader.pid in members and len(members) == 2
    leader.kill()
    leader.wait()
    worker = next(pid for pid in members if pid != leader.pid)
    outcome = _ledger.stop_process(identity, grace=2)
    assert outcome["stopped"] == [worker]
    for _attempt in range(50):
        if _ledger.process_start_ticks(worker) is None or _zombie(worker):
            break
        time.sleep(0.1)
    else:
        pytest.fail("the worker of the killed run was not stopped")


def test_a_group_is_recorded_only_for_its_leader():
    # This test process is not a group leader: its group (pytest's, make's) is never stopped.
    if os.getpgid(0) == os.getpid():
        pytest.skip("running as a group leader")
    assert (
        _ledger.process_identity(os.getpid(), group=_ledger.GROUP_ALL)["group"]
        == _ledger.GROUP_NONE
    )


def test_workers_are_the_group_members_with_the_same_command_line():
    other = (
        "import os, sys, subprocess, time; os.setpgid(0, 0); "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); os.fork(); time.sleep(60)"
    )
    leader = subprocess.Popen([sys.executable, "-c", other])
    try:
        time.sleep(0.5)
        identity = _ledger.process_identity(leader.pid, group=_ledger.GROUP_WORKERS)
        members = _ledger.group_members(identity)
        # the leader and its fork share the command line; the spawned sleeper does not
        assert len(members) == 2 and leader.pid in members
    finally:
        os.killpg(leader.pid, 9)
        leader.wait()


def test_a_killed_runs_module_in_another_group_is_stopped_by_its_ledger_marker():
    # The controller (a workers group) is killed; its module runs in a session of its own with
    # the run's VERITAS_LEDGER and would still make a change. Another run's module is left alone.
    leader = subprocess.Popen(
        [sys.executable, "-c", "import os, time; os.setpgid(0, 0); time.sleep(60)"]
    )
    sleep = [sys.executable, "-c", "import time; time.sleep(60)"]
    ours = subprocess.Popen(
        sleep, start_new_session=True, env={**os.environ, "VERITAS_LEDGER": "ns/veritas-ledger-a"}
    )
    theirs = subprocess.Popen(
        sleep, start_new_session=True, env={**os.environ, "VERITAS_LEDGER": "ns/veritas-ledger-b"}
    )
    try:
        time.sleep(0.3)
        identity = _ledger.process_identity(leader.pid, group=_ledger.GROUP_WORKERS)
        leader.kill()
        leader.wait()
        assert _ledger.marked_processes("VERITAS_LEDGER=ns/veritas-ledger-a", identity["start_ticks"]) == [ours.pid]
        outcome = _ledger.stop_process(identity, grace=2, marker="VERITAS_LEDGER=ns/veritas-ledger-a")
        assert outcome["stopped"] == [ours.pid]
        assert ours.wait(timeout=10) is not None
        assert theirs.poll() is None
    finally:
        for proc in (leader, ours, theirs):
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_an_orphaned_fork_of_a_killed_controller_is_stopped():
    # The controller forks a worker into a session of its own, then dies: the worker is
    # reparented to init. A live process with the same command line (another run) is left alone.
    script = (
        "import os, sys, time\n"
        "os.setpgid(0, 0)\n"
        "if os.fork() == 0:\n"
        "    os.setsid(); time.sleep(15); sys.exit(0)\n"
        "time.sleep(60)\n"
    )
    command = [sys.executable, "-c", script]
    controller = subprocess.Popen(command)
    other_run = None
    try:
        time.sleep(0.5)
        identity = _ledger.process_identity(controller.pid, group=_ledger.GROUP_WORKERS)
        fork = next(
            int(p) for p in os.listdir("/proc")
            if p.isdigit() and _ledger.process_parent(int(p)) == controller.pid
        )
        other_run = subprocess.Popen(command)
        time.sleep(0.3)
        assert _ledger.orphaned_forks(identity) == []  # the controller is alive: nothing is orphaned
        controller.kill()
        controller.wait()
        for _attempt in range(50):
            if _ledger.process_parent(fork) != controller.pid:
                break
            time.sleep(0.1)
        if _ledger.process_parent(fork) != 1:
            pytest.skip("orphans are reparented to a subreaper here, not to init")
        assert _ledger.orphaned_forks(identity) == [fork]
        outcome = _ledger.stop_process(identity, grace=2)
        assert fork in outcome["stopped"] and other_run.pid not in outcome["stopped"]
        for _attempt in range(50):
            if _ledger.process_start_ticks(fork) is None or _zombie(fork):
                break
            time.sleep(0.1)
        else:
            pytest.fail("the orphaned fork of the killed controller was not stopped")
        assert other_run.poll() is None
    finally:
        for proc in (controller, other_run):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, 9)
                proc.wait()


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"

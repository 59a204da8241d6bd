# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import copy
import json

import pytest
from ansible_collections.veritas.chaos.plugins.module_utils._exec import ExecResult
from ansible_collections.veritas.chaos.plugins.module_utils._nodes import (
    ORIGINAL_ANNOTATION,
    plan_node,
    read_record,
)
from ansible_collections.veritas.chaos.plugins.modules import gpu_fault
from fake_kube import FakeKube, namespace

GPU1 = "/api/v1/nodes/gpu-1"
GPU2 = "/api/v1/nodes/gpu-2"
CPU1 = "/api/v1/nodes/cpu-1"


class NodeKube(FakeKube):
    """FakeKube plus the status subresource of nodes (only .status is taken from the patch)."""

    def patch(self, path, body, dry_run=False, content_type=""):
        if not path.endswith("/status"):
            return super().patch(path, body, dry_run, content_type)
        base = path[: -len("/status")]
        self.calls.append(("PATCH", path, dry_run))
        self._check_fail("PATCH", path)
        stored = self.objects[base]
        merged = FakeKubeMerge.merge(stored, {"status": body.get("status") or {}})
        if dry_run or merged == stored:
            return merged
        return self.put(base, merged)


class FakeKubeMerge:
    @staticmethod
    def merge(target, patch):
        from fake_kube import _merge

        return _merge(target, json.loads(json.dumps(patch)))


def node(name, gpus=None, labels=None, taints=None, unschedulable=None):
    status = {"capacity": {"cpu": "32"}, "allocatable": {"cpu": "32"}}
    if gpus is not None:
        status["capacity"]["nvidia.com/gpu"] = gpus
        status["allocatable"]["nvidia.com/gpu"] = gpus
    spec = {}
    if taints is not None:
        spec["taints"] = taints
    if unschedulable is not None:
        spec["unschedulable"] = unschedulable
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": labels or {},
            "annotations": {"kwok.x-k8s.io/node": "fake"},
        },
        "spec": spec,
        "status": status,
    }


@pytest.fixture
def nodes():
    kube = NodeKube()
    kube.put("/api/v1/namespaces/lab", namespace("lab", {"environment": "lab"}))
    kube.put(
        "/api/v1/namespaces/prod", namespace("prod", {"environment": "production"})
    )
    gpu = {"nvidia.com/gpu.present": "true"}
    kube.put(GPU1, node("gpu-1", "8", gpu))
    kube.put(
        GPU2,
        node(
            "gpu-2",
            "8",
            gpu,
            taints=[{"key": "dedicated", "value": "ml", "effect": "NoSchedule"}],
        ),
    )
    kube.put(CPU1, node("cpu-1", labels={"environment": "production"}))
    return kube


def spec_status(kube, path):
    obj = kube.objects[path]
    return copy.deepcopy(
        {"spec": obj.get("spec"), "status": obj.get("status")}
    ), copy.deepcopy(obj["metadata"].get("annotations") or {})


# --- node methods -----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["taint", "cordon", "capacity"])
def test_node_method_round_trip_restores_exactly(nodes, run_module, method):
    originals = {p: spec_status(nodes, p) for p in (GPU1, GPU2)}
    args = {"method": method, "node_selector": "nvidia.com/gpu.present=true"}

    first = run_module(gpu_fault, args, nodes, diff=True)
    assert first["changed"] is True
    assert [t["name"] for t in first["targets"]] == ["gpu-1", "gpu-2"]
    for path in (GPU1, GPU2):
        record = read_record(nodes.objects[path])
        assert method in record
    assert "gpu-1" in first["diff"]["before"]

    again = run_module(gpu_fault, args, nodes)
    assert again["changed"] is False

    gone = run_module(gpu_fault, dict(args, state="absent"), nodes)
    assert gone["changed"] is True
    for path in (GPU1, GPU2):
        assert spec_status(nodes, path) == originals[path]
        assert ORIGINAL_ANNOTATION not in nodes.objects[path]["metadata"]["annotations"]

    writes = len(nodes.writes)
    assert run_module(gpu_fault, dict(args, state="absent"), nodes)["changed"] is False
    assert len(nodes.writes) == writes


def test_taint_effect_and_existing_taints_are_kept(nodes, run_module):
    run_module(
        gpu_fault,
        {"method": "taint", "nodes": ["gpu-2"], "taint_effect": "NoExecute"},
        nodes,
    )
    taints = nodes.objects[GPU2]["spec"]["taints"]
    assert {"key": "dedicated", "value": "ml", "effect": "NoSchedule"} in taints
    assert {
        "key": "chaos.veritas.io/gpu-fault",
        "value": "gpu-unavailable",
        "effect": "NoExecute",
    } in taints


def test_taint_overwriting_a_preexisting_one_restores_it(nodes, run_module):
    args = {
        "method": "taint",
        "nodes": ["gpu-2"],
        "taint_key": "dedicated",
        "taint_value": "chaos",
    }
    run_module(gpu_fault, args, nodes)
    assert nodes.objects[GPU2]["spec"]["taints"] == [
        {"key": "dedicated", "value": "chaos", "effect": "NoSchedule"}
    ]
    run_module(gpu_fault, dict(args, state="absent"), nodes)
    assert nodes.objects[GPU2]["spec"]["taints"] == [
        {"key": "dedicated", "value": "ml", "effect": "NoSchedule"}
    ]


def test_capacity_goes_through_the_status_subresource(nodes, run_module):
    run_module(gpu_fault, {"method": "capacity", "nodes": ["gpu-1"]}, nodes)
    assert ("PATCH", GPU1 + "/status", False) in nodes.writes
    status = nodes.objects[GPU1]["status"]
    assert status["capacity"]["nvidia.com/gpu"] == "0"
    assert status["allocatable"]["nvidia.com/gpu"] == "0"
    assert status["capacity"]["cpu"] == "32"
    record = read_record(nodes.objects[GPU1])
    assert record["capacity"] == {
        "resource": "nvidia.com/gpu",
        "capacity": "8",
        "allocatable": "8",
    }
    # the record is written before the status changes
    paths = [path for _method, path, _dry in nodes.writes]
    assert paths.index(GPU1) < paths.index(GPU1 + "/status")


def test_capacity_reapplied_when_something_reset_it(nodes, run_module):
    args = {"method": "capacity", "nodes": ["gpu-1"]}
    run_module(gpu_fault, args, nodes)
    stored = nodes.objects[GPU1]
    stored["status"]["capacity"]["nvidia.com/gpu"] = (
        "8"  # e.g. a device plugin re-registered
    )
    result = run_module(gpu_fault, args, nodes)
    assert result["changed"] is True
    assert nodes.objects[GPU1]["status"]["capacity"]["nvidia.com/gpu"] == "0"
    # the original stays the one recorded first
    assert read_record(nodes.objects[GPU1])["capacity"]["capacity"] == "8"


def test_stacked_methods_are_undone_one_by_one(nodes, run_module):
    run_module(gpu_fault, {"method": "cordon", "nodes": ["gpu-1"]}, nodes)
    run_module(gpu_fault, {"method": "capacity", "nodes": ["gpu-1"]}, nodes)
    assert set(read_record(nodes.objects[GPU1])) == {"cordon", "capacity"}
    run_module(
        gpu_fault, {"method": "cordon", "nodes": ["gpu-1"], "state": "absent"}, nodes
    )
    assert set(read_record(nodes.objects[GPU1])) == {"capacity"}
    assert "unschedulable" not in nodes.objects[GPU1]["spec"]
    assert nodes.objects[GPU1]["status"]["capacity"]["nvidia.com/gpu"] == "0"


def test_cordon_of_an_already_cordoned_node_leaves_it_cordoned(nodes, run_module):
    nodes.objects[GPU1]["spec"]["unschedulable"] = True
    run_module(gpu_fault, {"method": "cordon", "nodes": ["gpu-1"]}, nodes)
    run_module(
        gpu_fault, {"method": "cordon", "nodes": ["gpu-1"], "state": "absent"}, nodes
    )
    assert nodes.objects[GPU1]["spec"]["unschedulable"] is True


def test_node_check_mode_is_a_dry_run(nodes, run_module):
    before = copy.deepcopy(nodes.objects[GPU1])
    result = run_module(
        gpu_fault,
        {"method": "capacity", "nodes": ["gpu-1"]},
        nodes,
        check_mode=True,
        diff=True,
    )
    assert result["changed"] is True
    assert nodes.writes and all(dry for _method, _path, dry in nodes.writes)
    assert nodes.objects[GPU1] == before
    assert result["diff"]["after"]["gpu-1"]["capacity"] == "0"
    assert result["diff"]["after"]["gpu-1"]["record"]["capacity"]["capacity"] == "8"


def test_production_node_refused(nodes, run_module):
    result = run_module(gpu_fault, {"method": "cordon", "nodes": ["cpu-1"]}, nodes)
    assert result["failed"] is True
    assert result["reason"] == "production_refused"
    assert nodes.writes == []
    allowed = run_module(
        gpu_fault,
        {"method": "cordon", "nodes": ["cpu-1"], "allow_production": True},
        nodes,
    )
    assert allowed["changed"] is True


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"method": "taint"}, "nodes, node_selector"),
        ({"method": "cordon", "nodes": ["nope"]}, "nodes"),
        ({"method": "cordon", "node_selector": "x=y"}, "node_selector"),
        ({"method": "runtime_flag", "label_selector": "app=veritas"}, "namespace"),
        ({"method": "runtime_flag", "namespace": "lab"}, "pods, label_selector"),
        ({"method": "taint", "nodes": ["gpu-1"], "taint_key": " "}, "taint_key"),
        ({"method": "cordon", "nodes": ["gpu-1"], "exec_timeout": 0}, "exec_timeout"),
    ],
)
def test_bad_input_names_the_field_and_changes_nothing(nodes, run_module, args, field):
    result = run_module(gpu_fault, args, nodes)
    assert result["failed"] is True
    assert result["field"] == field
    assert nodes.writes == []


def test_choices_are_enforced_by_the_argument_spec(nodes, run_module):
    result = run_module(gpu_fault, {"method": "unplug", "nodes": ["gpu-1"]}, nodes)
    assert result["failed"] is True
    assert "method" in result["msg"] and "runtime_flag" in result["msg"]
    assert nodes.calls == []


def test_conflicting_taint_record_is_refused():
    obj = node("n", "8")
    plan = plan_node(obj, "taint", "present", "k", "v", "NoSchedule")
    obj = FakeKubeMerge.merge(obj, plan["main"])
    with pytest.raises(Exception) as info:
        plan_node(obj, "taint", "present", "k", "v", "NoExecute")
    assert info.value.reason == "conflict"


def test_absent_without_record_removes_only_our_exact_taint():
    ours = {
        "key": "chaos.veritas.io/gpu-fault",
        "value": "gpu-unavailable",
        "effect": "NoSchedule",
    }
    obj = node("n", "8", taints=[ours])
    plan = plan_node(obj, "taint", "absent", ours["key"], ours["value"], "NoSchedule")
    assert plan["main"] == {"spec": {"taints": None}}
    other = dict(ours, value="someone-else")
    obj = node("n", "8", taints=[other])
    assert (
        plan_node(obj, "taint", "absent", ours["key"], ours["value"], "NoSchedule")[
            "main"
        ]
        is None
    )


def test_unreadable_record_is_an_error(nodes, run_module):
    nodes.objects[GPU1]["metadata"]["annotations"][ORIGINAL_ANNOTATION] = "{not json"
    result = run_module(gpu_fault, {"method": "cordon", "nodes": ["gpu-1"]}, nodes)
    assert result["failed"] is True
    assert result["reason"] == "invalid_state"


# --- pod methods ------------------------------------------------------------------------


class Runtimes:
    """Exec stand-in: the lab CLI's `fault list/set/clear` for gpu-unavailable, and dcgmi."""

    def __init__(self, dcgm: bool = False) -> None:
        self.faults: dict[str, dict[str, dict]] = {}
        self.commands: list[tuple[str, list[str]]] = []
        self.dcgm = dcgm
        self.ignore_sets = False

    def exec(self, client, ns, pod, command, container=None, timeout=30):
        self.commands.append((pod, list(command)))
        faults = self.faults.setdefault(pod, {})
        if command[0] == "dcgmi":
            if not self.dcgm:
                return ExecResult(pod, -1, "", "")
            return ExecResult(pod, 0, "ok", "")
        args = command[1:]
        if args[:2] == ["fault", "list"]:
            records = [
                {"name": n, "params": p, "since": 1.0} for n, p in faults.items()
            ]
            return ExecResult(pod, 0, json.dumps(records), "")
        if args[:2] == ["fault", "set"]:
            if not self.ignore_sets:
                faults[args[2]] = {"cpu_fallback": "--cpu-fallback" in args}
            return ExecResult(pod, 0, "{}", "")
        if args[:2] == ["fault", "clear"]:
            faults.pop(args[2], None)
            return ExecResult(pod, 0, "{}", "")
        return ExecResult(pod, 2, "", "usage")

    def writes(self):
        return [
            c for _pod, c in self.commands if "list" not in c and "discovery" not in c
        ]


def runtime_pod(name, ns="lab", node_name="gpu-1", labels=None):
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": labels or {"app": "veritas"},
        },
        "spec": {"nodeName": node_name},
        "status": {"phase": "Running"},
    }


@pytest.fixture
def pods(nodes, monkeypatch):
    nodes.put("/api/v1/namespaces/lab/pods/rt-1", runtime_pod("rt-1"))
    nodes.put(
        "/api/v1/namespaces/lab/pods/rt-2", runtime_pod("rt-2", node_name="gpu-2")
    )
    nodes.put("/api/v1/namespaces/prod/pods/rt-9", runtime_pod("rt-9", ns="prod"))
    runtimes = Runtimes()
    monkeypatch.setattr(gpu_fault, "exec_in_pod", runtimes.exec)
    return nodes, runtimes


def test_runtime_flag_round_trip(pods, run_module):
    kube, runtimes = pods
    args = {
        "method": "runtime_flag",
        "namespace": "lab",
        "label_selector": "app=veritas",
        "cpu_fallback": True,
    }
    first = run_module(gpu_fault, args, kube)
    assert first["changed"] is True
    assert runtimes.faults["rt-1"] == {"gpu-unavailable": {"cpu_fallback": True}}
    assert runtimes.faults["rt-2"] == {"gpu-unavailable": {"cpu_fallback": True}}
    assert [
        "./cli",
        "fault",
        "set",
        "gpu-unavailable",
        "--json",
        "--cpu-fallback",
    ] in runtimes.writes()
    record = read_record(kube.objects["/api/v1/namespaces/lab/pods/rt-1"])
    assert record == {"runtime_flag": {"original": None}}

    writes = len(runtimes.writes())
    assert run_module(gpu_fault, args, kube)["changed"] is False
    assert len(runtimes.writes()) == writes

    gone = run_module(gpu_fault, dict(args, state="absent"), kube)
    assert gone["changed"] is True
    assert runtimes.faults["rt-1"] == {}
    assert read_record(kube.objects["/api/v1/namespaces/lab/pods/rt-1"]) == {}
    assert run_module(gpu_fault, dict(args, state="absent"), kube)["changed"] is False


def test_runtime_flag_restores_a_preexisting_flag(pods, run_module):
    kube, runtimes = pods
    runtimes.faults["rt-1"] = {"gpu-unavailable": {"cpu_fallback": False}}
    args = {
        "method": "runtime_flag",
        "namespace": "lab",
        "pods": ["rt-1"],
        "cpu_fallback": True,
    }
    run_module(gpu_fault, args, kube)
    assert runtimes.faults["rt-1"]["gpu-unavailable"] == {"cpu_fallback": True}
    run_module(gpu_fault, dict(args, state="absent"), kube)
    assert runtimes.faults["rt-1"]["gpu-unavailable"] == {"cpu_fallback": False}


def test_runtime_flag_restricted_to_nodes(pods, run_module):
    kube, runtimes = pods
    args = {
        "method": "runtime_flag",
        "namespace": "lab",
        "label_selector": "app=veritas",
        "nodes": ["gpu-2"],
    }
    result = run_module(gpu_fault, args, kube)
    assert [t["name"] for t in result["targets"]] == ["rt-2"]
    assert "rt-1" not in runtimes.faults or runtimes.faults["rt-1"] == {}


def test_runtime_flag_check_mode_runs_no_write_command(pods, run_module):
    kube, runtimes = pods
    args = {"method": "runtime_flag", "namespace": "lab", "pods": ["rt-1"]}
    result = run_module(gpu_fault, args, kube, check_mode=True, diff=True)
    assert result["changed"] is True
    assert runtimes.writes() == []
    assert all(dry for _method, _path, dry in kube.writes)
    assert read_record(kube.objects["/api/v1/namespaces/lab/pods/rt-1"]) == {}
    assert result["diff"]["after"]["rt-1"]["flag"] == {}


def test_runtime_flag_not_taking_effect_fails(pods, run_module):
    kube, runtimes = pods
    runtimes.ignore_sets = True
    result = run_module(
        gpu_fault,
        {"method": "runtime_flag", "namespace": "lab", "pods": ["rt-1"]},
        kube,
    )
    assert result["failed"] is True
    assert result["reason"] == "not_confirmed"


def test_runtime_flag_production_namespace_refused(pods, run_module):
    kube, runtimes = pods
    result = run_module(
        gpu_fault,
        {"method": "runtime_flag", "namespace": "prod", "pods": ["rt-9"]},
        kube,
    )
    assert result["failed"] is True
    assert result["reason"] == "production_refused"
    assert runtimes.commands == []


def test_dcgm_fails_clearly_without_dcgm(pods, run_module):
    kube, _runtimes = pods
    result = run_module(
        gpu_fault, {"method": "dcgm", "namespace": "lab", "pods": ["rt-1"]}, kube
    )
    assert result["failed"] is True
    assert result["reason"] == "dcgm_unavailable"
    assert "needs real NVIDIA DCGM" in result["msg"]
    assert kube.writes == []


def test_dcgm_round_trip_with_dcgm(pods, run_module):
    kube, runtimes = pods
    runtimes.dcgm = True
    args = {
        "method": "dcgm",
        "namespace": "lab",
        "pods": ["rt-1"],
        "dcgm_gpu_ids": [0, 1],
    }
    assert run_module(gpu_fault, args, kube)["changed"] is True
    injected = [c for _pod, c in runtimes.commands if "--inject" in c]
    assert injected == [
        ["dcgmi", "test", "--inject", "--gpuid", "0", "-f", "230", "-v", "79"],
        ["dcgmi", "test", "--inject", "--gpuid", "1", "-f", "230", "-v", "79"],
    ]
    assert run_module(gpu_fault, args, kube)["changed"] is False
    runtimes.commands.clear()
    assert run_module(gpu_fault, dict(args, state="absent"), kube)["changed"] is True
    cleared = [c for _pod, c in runtimes.commands if "--inject" in c]
    assert [c[-1] for c in cleared] == ["0", "0"]
    assert read_record(kube.objects["/api/v1/namespaces/lab/pods/rt-1"]) == {}

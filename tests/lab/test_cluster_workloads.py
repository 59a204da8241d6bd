"""Lab part 1: the control plane schedules, runs, replaces and exposes pods for real."""

from __future__ import annotations

from conftest import wait_for
from kubernetes import client

LAB_NODES = {"lab-cpu-1", "lab-cpu-2", "lab-cpu-3", "lab-gpu-1", "lab-gpu-2", "lab-gpu-3"}


def deployment(name: str, replicas: int, labels: dict, gpu: int = 0) -> client.V1Deployment:
    resources = client.V1ResourceRequirements(
        requests={"nvidia.com/gpu": str(gpu)}, limits={"nvidia.com/gpu": str(gpu)}
    ) if gpu else None
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(
                    name="app", image="veritas/runtime:lab", resources=resources)]),
            ),
        ),
    )


def running_pods(core, namespace: str, selector: str) -> list:
    pods = core.list_namespaced_pod(namespace, label_selector=selector).items
    return [p for p in pods if p.status.phase == "Running" and not p.metadata.deletion_timestamp]


def is_ready(pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))


def test_deployment_gets_running_pods_on_fake_nodes_and_replaces_a_deleted_one(core, apps, namespace):
    apps.create_namespaced_deployment(namespace, deployment("web", 3, {"app": "web"}))
    pods = wait_for(lambda: (p := running_pods(core, namespace, "app=web")) and len(p) == 3 and p,
                    what="3 Running pods")
    assert {p.spec.node_name for p in pods} <= LAB_NODES
    assert all(is_ready(p) for p in pods)

    victim = pods[0].metadata.name
    core.delete_namespaced_pod(victim, namespace)

    def replaced():
        now = running_pods(core, namespace, "app=web")
        names = {p.metadata.name for p in now}
        return len(now) == 3 and victim not in names and names

    names = wait_for(replaced, what="a replacement pod")
    assert victim not in names


def test_service_endpointslice_lists_only_ready_pods(core, apps, api_client, namespace):
    discovery = client.DiscoveryV1Api(api_client)
    apps.create_namespaced_deployment(namespace, deployment("svc", 2, {"app": "svc"}))
    core.create_namespaced_service(namespace, client.V1Service(
        metadata=client.V1ObjectMeta(name="svc"),
        spec=client.V1ServiceSpec(selector={"app": "svc"},
                                  ports=[client.V1ServicePort(port=8080, target_port=8080)]),
    ))
    pods = wait_for(lambda: (p := running_pods(core, namespace, "app=svc")) and len(p) == 2 and p,
                    what="2 Running pods")

    def ready_endpoint_pods():
        slices = discovery.list_namespaced_endpoint_slice(
            namespace, label_selector="kubernetes.io/service-name=svc").items
        return {e.target_ref.name for s in slices for e in (s.endpoints or [])
                if e.conditions and e.conditions.ready}

    expected = {p.metadata.name for p in pods}
    wait_for(lambda: ready_endpoint_pods() == expected, what=f"endpoints {expected}")

    # A pod that fails (kwok stage veritas-pod-failed) leaves the EndpointSlice's ready set.
    failing = pods[0].metadata.name
    core.patch_namespaced_pod(failing, namespace, {"metadata": {"labels": {"lab.veritas.io/fail": "true"}}})
    wait_for(lambda: core.read_namespaced_pod(failing, namespace).status.phase == "Failed",
             what="phase Failed")
    wait_for(lambda: failing not in ready_endpoint_pods(), what="failed pod out of the endpoints")


def test_crashloop_stage_restarts_the_container_and_keeps_the_pod_unready(core, apps, namespace):
    apps.create_namespaced_deployment(namespace, deployment("crash", 1, {"app": "crash"}))
    pod = wait_for(lambda: (p := running_pods(core, namespace, "app=crash")) and p[0], what="Running pod")
    name = pod.metadata.name
    core.patch_namespaced_pod(name, namespace, {"metadata": {"labels": {"lab.veritas.io/crashloop": "true"}}})

    def crashlooping_twice():
        p = core.read_namespaced_pod(name, namespace)
        st = (p.status.container_statuses or [None])[0]
        return st and st.restart_count >= 2 and not is_ready(p) and st

    status = wait_for(crashlooping_twice, timeout=30, what="restartCount >= 2")
    assert status.last_state.terminated.exit_code == 1
    p = core.read_namespaced_pod(name, namespace)
    assert p.status.phase == "Running"
    assert not is_ready(p)
    seen_backoff = wait_for(lambda: (
        s := core.read_namespaced_pod(name, namespace).status.container_statuses[0]
    ).state.waiting and s.state.waiting.reason == "CrashLoopBackOff", what="CrashLoopBackOff")
    assert seen_backoff


def test_gpu_pods_land_only_on_gpu_nodes_and_a_noschedule_taint_keeps_them_off(core, apps, api_client, namespace):
    gpu_nodes = {n.metadata.name for n in core.list_node(label_selector="nvidia.com/gpu.present=true").items}
    assert {"lab-gpu-1", "lab-gpu-2", "lab-gpu-3"} <= gpu_nodes
    assert not gpu_nodes & {"lab-cpu-1", "lab-cpu-2", "lab-cpu-3"}
    for n in ("lab-gpu-1", "lab-gpu-2", "lab-gpu-3"):
        assert core.read_node(n).status.allocatable["nvidia.com/gpu"] == "8"

    plain = api_client.sanitize_for_serialization
    taint = {"key": "veritas.io/test-gpu-fault", "value": namespace, "effect": "NoSchedule"}
    node = core.read_node("lab-gpu-1")
    core.patch_node("lab-gpu-1", {"spec": {"taints": [plain(t) for t in node.spec.taints or []] + [taint]}})
    try:
        # The lab's runtime pods already hold some GPUs; 2 more fit on lab-gpu-2 alone.
        gpu = deployment("gpu", 2, {"app": "gpu"}, gpu=1)
        # Only the lab's own nodes but lab-gpu-3: the CPU nodes (no nvidia.com/gpu), lab-gpu-1 (tainted)
        # and lab-gpu-2.
        gpu.spec.template.spec.affinity = client.V1Affinity(node_affinity=client.V1NodeAffinity(
            required_during_scheduling_ignored_during_execution=client.V1NodeSelector(node_selector_terms=[
                client.V1NodeSelectorTerm(match_expressions=[client.V1NodeSelectorRequirement(
                    key="kubernetes.io/hostname", operator="In", values=sorted(LAB_NODES - {"lab-gpu-3"}))])])))
        apps.create_namespaced_deployment(namespace, gpu)
        pods = wait_for(lambda: (p := running_pods(core, namespace, "app=gpu")) and len(p) == 2 and p,
                        what="2 GPU pods Running")
        assert {p.spec.node_name for p in pods} == {"lab-gpu-2"}
    finally:
        node = core.read_node("lab-gpu-1")
        kept = [plain(t) for t in (node.spec.taints or []) if t.key != "veritas.io/test-gpu-fault"]
        core.patch_node("lab-gpu-1", {"spec": {"taints": kept or None}})
    assert all(t.key != "veritas.io/test-gpu-fault" for t in core.read_node("lab-gpu-1").spec.taints or [])

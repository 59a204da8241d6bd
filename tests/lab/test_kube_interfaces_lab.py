"""Standard Kubernetes interfaces act on the lab's runtime processes as on a real cluster.

Needs `make lab-up`. Game days inject faults through these, never through lab-only switches:
  - a NetworkPolicy that denies Prometheus the pod's port takes its scrapes down (up == 0),
    the data plane keeps flowing; deleting it brings the scrapes back;
  - resources.limits.memory is enforced on the process (OOMKilled, CrashLoopBackOff);
  - a node whose nvidia.com/gpu capacity drops below the pod's request takes its GPUs away.
Each test uses its own namespace (and, for GPUs, its own tainted kwok node), except the data
plane check, which needs HAProxy's blue-green entry and blocks scrapes there for about a second.
"""

from __future__ import annotations

import http.client
import json
import os
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml
from conftest import KUBECONFIG, wait_for

# The supervisor tests' helpers: pods of a test Deployment, readiness, a live process per pod.
from test_supervisor_lab import is_ready, pods, process_alive, ready_message, serving

REPO = Path(__file__).resolve().parents[2]
LAB_DIR = Path(os.environ.get("LAB_DIR", REPO / ".lab"))
OBS = yaml.safe_load((REPO / "lab" / "observability" / "config.yml").read_text())
DP = yaml.safe_load((REPO / "lab" / "dataplane" / "config.yml").read_text())
PROM = f"http://{OBS['prometheus']['listen']}"
BLUEGREEN = f"http://{DP['haproxy']['bind']}:{DP['haproxy']['bluegreen_port']}"
ADDRESS, PID = "lab.veritas.io/address", "lab.veritas.io/pid"
GPU = "nvidia.com/gpu"


@pytest.fixture(scope="module", autouse=True)
def lab_running():
    if not KUBECONFIG.is_file():
        pytest.fail(f"the lab is not running: {KUBECONFIG} is missing (run `make lab-up`)")
    if not (LAB_DIR / "run" / "supervisor.pid").is_file():
        pytest.fail("the supervisor is not running (lab/supervisor/up.sh)")


@pytest.fixture
def ns(core):
    from kubernetes import client

    name = f"t-kif-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


def deployment(apps, namespace: str, name: str, replicas: int = 1, env: dict | None = None,
               resources: dict | None = None, pod_spec: dict | None = None) -> None:
    """A runtime Deployment as the lab's manifests write one: port http 8080, rolling update."""
    match = {"app": "veritas-test", "lab-test": name}
    container = {"name": "runtime", "image": "veritas/spark-runtime:lab",
                 "ports": [{"name": "http", "containerPort": 8080}],
                 "env": [{"name": k, "value": str(v)} for k, v in
                         {"VERITAS_MODEL": "llama-7b", "VERITAS_PER_TOKEN_MS": "2", "PREFILL_MS": "5",
                          **(env or {})}.items()],
                 "resources": resources or {}}
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": match},
                     "strategy": {"type": "RollingUpdate",
                                  "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                     "template": {"metadata": {"labels": {**match, "lab.veritas.io/runtime": "true"}},
                                  "spec": {"terminationGracePeriodSeconds": 1, "containers": [container],
                                           **(pod_spec or {})}}}}
    apps.create_namespaced_deployment(namespace, body)


def call(addr: str, method: str = "GET", path: str = "/health", body: dict | None = None,
         headers: dict | None = None) -> tuple[int | None, dict | str]:
    """(status, body); status None when the connection closed without an answer (dropped)."""
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None,
                     headers={"Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        raw = resp.read().decode()
        try:
            return resp.status, json.loads(raw)
        except ValueError:
            return resp.status, raw
    except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
        return None, ""
    finally:
        conn.close()


def scrape(addr: str) -> int | None:
    """GET /metrics as Prometheus sends it (its headers); None when dropped."""
    return call(addr, path="/metrics", headers={"User-Agent": "Prometheus/3.0.0",
                                                "X-Prometheus-Scrape-Timeout-Seconds": "0.9"})[0]


def up(namespace: str, pod: str) -> str | None:
    q = f'up{{job="veritas-runtime",namespace="{namespace}",pod="{pod}"}}'
    with urllib.request.urlopen(f"{PROM}/api/v1/query?{urllib.parse.urlencode({'query': q})}", timeout=5) as r:
        result = json.load(r)["data"]["result"]
    return result[0]["value"][1] if result else None


def metrics_outage_policy(name: str, namespace: str, match: dict, port: int = 8080) -> dict:
    """The shape of the collection's policy (plugins/module_utils/_runtime_cli.py
    metrics_network_policy): every other port from anywhere, `port` from every namespace but
    Prometheus's."""
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"podSelector": {"matchLabels": match}, "policyTypes": ["Ingress"],
                     "ingress": [
                         {"ports": [*([{"protocol": "TCP", "port": 1, "endPort": port - 1}] if port > 1 else []),
                                    {"protocol": "TCP", "port": port + 1, "endPort": 65535},
                                    {"protocol": "UDP", "port": 1, "endPort": 65535}]},
                         {"from": [{"namespaceSelector": {"matchExpressions": [
                             {"key": "kubernetes.io/metadata.name", "operator": "NotIn",
                              "values": [OBS["prometheus"]["identity"]["namespace"]]}]}}],
                          "ports": [{"protocol": "TCP", "port": port}]}]}}


@pytest.fixture
def networking(api_client):
    from kubernetes import client

    return client.NetworkingV1Api(api_client)


def completion(addr: str) -> tuple[int | None, dict | str]:
    return call(addr, "POST", "/v1/completions", {"prompt": "hi", "max_tokens": 2})


# ---- NetworkPolicy ---------------------------------------------------------------------------

def test_a_policy_denying_prometheus_the_port_takes_the_scrapes_down_until_it_is_deleted(
        core, apps, networking, ns, kubectl):
    deployment(apps, ns, "rt")
    (pod,) = serving(core, ns, "rt", 1)
    name, addr = pod.metadata.name, pod.metadata.annotations[ADDRESS]
    wait_for(lambda: up(ns, name) == "1", timeout=20, what="Prometheus to scrape the pod")

    # Negative first: a policy of the same shape for another port leaves the scrapes alone.
    networking.create_namespaced_network_policy(ns, metrics_outage_policy("other-port", ns, {"app": "veritas-test"},
                                                                          port=9090))
    time.sleep(3)  # three resyncs and scrapes
    assert scrape(addr) == 200
    assert up(ns, name) == "1"
    networking.delete_namespaced_network_policy("other-port", ns)

    t0 = time.monotonic()
    networking.create_namespaced_network_policy(ns, metrics_outage_policy("metrics-outage", ns, {"app": "veritas-test"}))
    wait_for(lambda: scrape(addr) is None, timeout=10, what="the process to drop Prometheus's connections")
    wait_for(lambda: up(ns, name) == "0", timeout=10, what="up to go 0")
    took = time.monotonic() - t0
    assert took < 8, f"up==0 only {took:.1f}s after the policy"
    # Only Prometheus: the data plane (any other origin-form client) and the pod's own
    # processes (kubectl exec, absolute-form through http_proxy) still get answers.
    assert completion(addr)[0] == 200
    r = kubectl("exec", "-n", ns, name, "-c", "runtime", "--", "curl", "-fsS", "http://127.0.0.1:8080/metrics",
                check=False)
    assert r.returncode == 0 and "vllm:num_requests_running" in r.stdout, r.stderr
    # The pod stays Ready: readiness probes come from the node, not through the policy.
    time.sleep(1.5)
    assert is_ready(core.read_namespaced_pod(name, ns))

    networking.delete_namespaced_network_policy("metrics-outage", ns)
    wait_for(lambda: up(ns, name) == "1", timeout=10, what="up to return to 1")
    assert scrape(addr) == 200


def test_a_restarted_process_gets_the_current_verdict_at_start(core, apps, networking, ns, kubectl):
    deployment(apps, ns, "rt")
    (pod,) = serving(core, ns, "rt", 1)
    networking.create_namespaced_network_policy(ns, metrics_outage_policy("metrics-outage", ns, {"app": "veritas-test"}))
    wait_for(lambda: scrape(pod.metadata.annotations[ADDRESS]) is None, timeout=10, what="scrapes dropped")
    core.delete_namespaced_pod(pod.metadata.name, ns)
    wait_for(lambda: [p for p in serving(core, ns, "rt", 1) if p.metadata.uid != pod.metadata.uid],
             timeout=60, what="the replacement pod")
    (new,) = pods(core, ns, "rt")
    # Its very first scrape is already dropped: the verdict was there before it listened.
    assert scrape(new.metadata.annotations[ADDRESS]) is None
    assert completion(new.metadata.annotations[ADDRESS])[0] == 200


def test_load_through_haproxy_keeps_flowing_while_the_policy_blocks_scrapes(core, networking):
    """Blue-green entry, blue pods: scrapes dropped for about a second (less than any alert's
    `for`), every request through HAProxy answered meanwhile."""
    ns = DP["namespace"]
    blue = [p for p in core.list_namespaced_pod(ns, label_selector="deployment=blue").items
            if is_ready(p) and not p.metadata.deletion_timestamp]
    assert blue
    addrs = [p.metadata.annotations[ADDRESS] for p in blue]
    policy = metrics_outage_policy(f"t-outage-{uuid.uuid4().hex[:4]}", ns,
                                   {"app": "veritas-runtime", "deployment": "blue"})
    networking.create_namespaced_network_policy(ns, policy)
    try:
        wait_for(lambda: all(scrape(a) is None for a in addrs), timeout=10, what="blue scrapes dropped")
        codes, pods_seen = [], set()
        for i in range(30):
            req = urllib.request.Request(f"{BLUEGREEN}/v1/completions", method="POST",
                                         data=json.dumps({"prompt": f"p{i}", "max_tokens": 1}).encode(),
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=10) as r:
                codes.append(r.status)
                pods_seen.add(r.headers["X-Veritas-Pod"])
        assert codes == [200] * 30
        assert pods_seen <= {p.metadata.name for p in blue}
    finally:
        networking.delete_namespaced_network_policy(policy["metadata"]["name"], ns)
    wait_for(lambda: all(scrape(a) == 200 for a in addrs), timeout=10, what="blue scrapes back")


# ---- memory limits ------------------------------------------------------------------------------

def runtime_status(pod):
    return next((s for s in pod.status.container_statuses or [] if s.name == "runtime"), None)


def test_a_memory_limit_below_the_process_rss_is_oom_killed_and_never_rolls_out(core, apps, ns):
    # A generous limit: the process runs on, never killed.
    deployment(apps, ns, "rt", resources={"limits": {"memory": "256Mi"}})
    (old,) = serving(core, ns, "rt", 1)
    time.sleep(2)  # four memory checks
    again = core.read_namespaced_pod(old.metadata.name, ns)
    assert runtime_status(again).restart_count == 0
    assert again.metadata.annotations[PID] == old.metadata.annotations[PID]
    assert is_ready(again)

    def resources(memory: str) -> None:
        apps.patch_namespaced_deployment("rt", ns, {"spec": {"template": {"spec": {"containers": [
            {"name": "runtime", "resources": {"limits": {"memory": memory}, "requests": {"memory": memory}}}]}}}})

    resources("16Mi")  # the runtime's resident memory is about 24 MiB

    def oom_looping():
        new = [p for p in pods(core, ns, "rt") if p.metadata.uid != old.metadata.uid]
        if len(new) != 1:
            return None
        st = runtime_status(new[0])
        if st is None:
            return None
        last = st.last_state.terminated if st.last_state else None
        return new[0] if st.restart_count >= 2 and last is not None and last.reason == "OOMKilled" else None

    ready_seen = False
    deadline = time.monotonic() + 20
    new = None
    while time.monotonic() < deadline and new is None:
        for p in pods(core, ns, "rt"):
            if p.metadata.uid != old.metadata.uid and is_ready(p):
                ready_seen = True
        new = oom_looping()
        time.sleep(0.1)
    assert new is not None, "no OOMKilled restarts of the new pod"
    assert not ready_seen, "the OOM-killed pod was Ready at some point"
    st = runtime_status(new)
    assert st.last_state.terminated.exit_code == 137
    if st.state.waiting is not None:
        assert st.state.waiting.reason == "CrashLoopBackOff"
        assert "restarting failed container=runtime" in st.state.waiting.message
    assert not is_ready(new)
    # The old pod keeps serving (maxUnavailable 0: the rollout waits for a Ready new pod).
    kept = core.read_namespaced_pod(old.metadata.name, ns)
    assert is_ready(kept) and not kept.metadata.deletion_timestamp
    assert completion(kept.metadata.annotations[ADDRESS])[0] == 200

    resources("256Mi")  # back to a limit it fits in: the rollout completes

    def rolled():
        ps = pods(core, ns, "rt")
        return len(ps) == 1 and is_ready(ps[0]) and ps[0].metadata.uid not in (old.metadata.uid, new.metadata.uid) \
            and runtime_status(ps[0]).restart_count == 0 and process_alive(ps[0])
    wait_for(rolled, timeout=60, what="a clean rollout to the generous limit")


# ---- GPUs --------------------------------------------------------------------------------------

@pytest.fixture
def gpu_node(core):
    """A kwok GPU node of this test alone: tainted so only the test's pods land on it."""
    name = f"t-gpu-{uuid.uuid4().hex[:6]}"
    core.create_node({"apiVersion": "v1", "kind": "Node",
                      "metadata": {"name": name, "annotations": {"kwok.x-k8s.io/node": "fake"},
                                   "labels": {"kubernetes.io/hostname": name, "type": "kwok",
                                              "nvidia.com/gpu.present": "true"}},
                      "spec": {"taints": [{"key": "lab.veritas.io/test", "value": name, "effect": "NoSchedule"}]},
                      "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110", GPU: "8"},
                                 "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110", GPU: "8"}}})
    wait_for(lambda: any(c.type == "Ready" and c.status == "True"
                         for c in core.read_node(name).status.conditions or []), timeout=30, what="node Ready")
    yield name
    core.delete_node(name)


def set_gpus(core, node: str, n: str) -> None:
    core.patch_node_status(node, {"status": {"capacity": {GPU: n}, "allocatable": {GPU: n}}})


def test_a_node_losing_its_gpus_takes_them_from_its_pods_and_gives_them_back(core, apps, ns, gpu_node, kubectl):
    on_node = {"nodeSelector": {"kubernetes.io/hostname": gpu_node},
               "tolerations": [{"key": "lab.veritas.io/test", "operator": "Exists", "effect": "NoSchedule"}]}
    gpu = {"requests": {GPU: "1"}, "limits": {GPU: "1"}}
    deployment(apps, ns, "strict", resources=gpu, pod_spec=on_node)
    deployment(apps, ns, "fallback", resources=gpu, pod_spec=on_node, env={"VERITAS_CPU_FALLBACK": "true"})
    deployment(apps, ns, "faulted", resources=gpu, pod_spec=on_node)
    (strict,) = serving(core, ns, "strict", 1)
    (fallback,) = serving(core, ns, "fallback", 1)
    (faulted,) = serving(core, ns, "faulted", 1)
    # Someone else's gpu-unavailable (the runtime's own switch) on one pod: the node must not clear it.
    r = kubectl("exec", "-n", ns, faulted.metadata.name, "--", "./cli", "fault", "set", "gpu-unavailable", check=False)
    assert r.returncode == 0, r.stderr
    wait_for(lambda: not is_ready(core.read_namespaced_pod(faulted.metadata.name, ns)), timeout=10,
             what="the faulted pod NotReady")

    # Cordon and a NoSchedule taint are about new pods: running ones keep their GPUs.
    core.patch_node(gpu_node, {"spec": {"unschedulable": True, "taints": [
        {"key": "lab.veritas.io/test", "value": gpu_node, "effect": "NoSchedule"},
        {"key": "nvidia.com/gpu", "value": "degraded", "effect": "NoSchedule"}]}})
    time.sleep(2.5)
    assert is_ready(core.read_namespaced_pod(strict.metadata.name, ns))
    assert is_ready(core.read_namespaced_pod(fallback.metadata.name, ns))

    t0 = time.monotonic()
    set_gpus(core, gpu_node, "0")
    try:
        lost = wait_for(lambda: (p := core.read_namespaced_pod(strict.metadata.name, ns)) and not is_ready(p) and p,
                        timeout=10, what="the strict pod NotReady")
        assert time.monotonic() - t0 < 6
        assert "gpu_unavailable: CUDA error: no CUDA-capable device is detected" in ready_message(lost)
        code, body = completion(strict.metadata.annotations[ADDRESS])
        assert code == 503
        # CPU fallback (the pod's env says so): Ready, serving, slower.
        fb_addr = fallback.metadata.annotations[ADDRESS]
        wait_for(lambda: call(fb_addr)[1].get("mode") == "cpu_fallback", timeout=10, what="cpu fallback")
        assert is_ready(core.read_namespaced_pod(fallback.metadata.name, ns))
        code, body = completion(fb_addr)
        assert code == 200 and body["veritas"]["mode"] == "cpu_fallback"
        # kwok's node heartbeat leaves the patched capacity alone.
        time.sleep(3)
        node = core.read_node(gpu_node)
        assert (node.status.capacity[GPU], node.status.allocatable[GPU]) == ("0", "0")
    finally:
        set_gpus(core, gpu_node, "8")
    wait_for(lambda: is_ready(core.read_namespaced_pod(strict.metadata.name, ns)), timeout=10,
             what="the strict pod Ready again")
    assert completion(strict.metadata.annotations[ADDRESS])[0] == 200
    assert call(fallback.metadata.annotations[ADDRESS])[1]["mode"] == "gpu"
    # The switch someone else set is still there.
    time.sleep(1.5)
    assert not is_ready(core.read_namespaced_pod(faulted.metadata.name, ns))
    r = kubectl("exec", "-n", ns, faulted.metadata.name, "--", "./cli", "fault", "list", "--json", check=False)
    assert [f["name"] for f in json.loads(r.stdout)] == ["gpu-unavailable"], r.stdout
    kubectl("exec", "-n", ns, faulted.metadata.name, "--", "./cli", "fault", "clear", "gpu-unavailable")
    wait_for(lambda: is_ready(core.read_namespaced_pod(faulted.metadata.name, ns)), timeout=10,
             what="the faulted pod Ready after its own clear")


# ---- kubectl exec in the runtime container -------------------------------------------------------

def test_curl_in_the_runtime_container_reaches_the_pods_own_process(core, apps, ns, kubectl):
    deployment(apps, ns, "rt", replicas=2)
    a, b = serving(core, ns, "rt", 2)
    for pod in (a, b):
        r = kubectl("exec", "-n", ns, pod.metadata.name, "-c", "runtime", "--", "curl", "-fsS", "-X", "POST",
                    "-H", "Content-Type: application/json",
                    "-d", '{"model":"llama-7b","prompt":"hi","max_tokens":1}',
                    "http://127.0.0.1:8080/v1/completions", check=False)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["veritas"]["pod"] == pod.metadata.name
        # Nothing listens on another port of the pod: refused, as a proxy reports it.
        r = kubectl("exec", "-n", ns, pod.metadata.name, "--", "curl", "-fsS", "http://127.0.0.1:9/", check=False)
        assert r.returncode != 0 and "returned error: 502" in r.stderr, r.stderr
        # The cli, through the same proxy, still reaches its process.
        r = kubectl("exec", "-n", ns, pod.metadata.name, "--", "./cli", "status", "--json", check=False)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["pid"] == int(pod.metadata.annotations[PID])

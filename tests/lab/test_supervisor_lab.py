"""The supervisor against the running lab: real pods, real local processes.

Needs `make lab-up` (control plane and lab/supervisor/up.sh). Each test makes its own namespace
and Deployment labelled lab.veritas.io/runtime=true; the namespace is deleted afterwards.
"""

from __future__ import annotations

import http.client
import json
import os
import time
import uuid
from pathlib import Path

import pytest
from conftest import KUBECONFIG, wait_for

REPO = Path(__file__).resolve().parents[2]
LAB_DIR = Path(os.environ.get("LAB_DIR", REPO / ".lab"))
TARGETS = LAB_DIR / "run" / "targets" / "runtime.json"
RUNTIME = str(REPO / "lab" / "runtime" / "veritas_runtime.py")
ADDRESS = "lab.veritas.io/address"
PID = "lab.veritas.io/pid"


@pytest.fixture(scope="module", autouse=True)
def supervisor_running():
    pidfile = LAB_DIR / "run" / "supervisor.pid"
    if not KUBECONFIG.is_file():
        pytest.fail(f"the lab is not running: {KUBECONFIG} is missing (run `make lab-up`)")
    if not pidfile.is_file():
        pytest.fail("the supervisor is not running (lab/supervisor/up.sh)")
    pid = int(pidfile.read_text())
    assert "supervisor.py" in Path(f"/proc/{pid}/cmdline").read_text(), "pid file names another process"


def deployment(apps, namespace: str, name: str, replicas: int = 1, env: dict | None = None,
               labels: dict | None = None) -> None:
    from kubernetes import client

    match = {"app": "veritas-test", "lab-test": name}
    pod_labels = {**match, "lab.veritas.io/runtime": "true", **(labels or {})}
    container = client.V1Container(
        name="runtime", image="veritas/spark-runtime:lab",
        env=[client.V1EnvVar(name=k, value=str(v)) for k, v in
             {"VERITAS_MODEL": "llama-7b", "VERITAS_PER_TOKEN_MS": "2", "PREFILL_MS": "5",
              **(env or {})}.items()])
    spec = client.V1DeploymentSpec(
        replicas=replicas, selector=client.V1LabelSelector(match_labels=match),
        template=client.V1PodTemplateSpec(
            metadata=client.V1ObjectMeta(labels=pod_labels),
            spec=client.V1PodSpec(containers=[container], termination_grace_period_seconds=1)))
    apps.create_namespaced_deployment(namespace, client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name), spec=spec))


def pods(core, namespace: str, name: str) -> list:
    return [p for p in core.list_namespaced_pod(namespace, label_selector=f"lab-test={name}").items
            if not p.metadata.deletion_timestamp]


def is_ready(pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def ready_message(pod) -> str:
    return next((c.message or "" for c in pod.status.conditions or [] if c.type == "Ready"), "")


def serving(core, namespace: str, name: str, count: int) -> list:
    """Waits until `count` pods are Running, Ready and published with a live process."""
    def check():
        ps = pods(core, namespace, name)
        ok = [p for p in ps if p.status.phase == "Running" and is_ready(p)
              and (p.metadata.annotations or {}).get(ADDRESS) and process_alive(p)]
        return ok if len(ok) == count and len(ps) == count else None
    return wait_for(check, timeout=60, what=f"{count} serving pod(s) of {name}")


def process_alive(pod) -> bool:
    pid = (pod.metadata.annotations or {}).get(PID)
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode()
        environ = Path(f"/proc/{pid}/environ").read_bytes().decode()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return (RUNTIME in cmdline and f"POD_NAME={pod.metadata.name}\0" in environ
            and stat.split(") ")[1][0] != "Z")


def http_call(addr: str, method: str, path: str, body: dict | None = None) -> tuple[int, dict | str]:
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None,
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        raw = resp.read().decode()
        try:
            return resp.status, json.loads(raw)
        except ValueError:
            return resp.status, raw
    finally:
        conn.close()


def address(pod) -> str:
    return pod.metadata.annotations[ADDRESS]


@pytest.fixture
def ns(core):
    from kubernetes import client

    name = f"t-sup-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


def test_each_running_pod_gets_one_process_and_its_address_is_published(core, apps, api_client, ns):
    from kubernetes import client

    deployment(apps, ns, "rt", replicas=2, labels={"variant": "canary", "deployment": "green"})
    ready = serving(core, ns, "rt", 2)
    addrs = {address(p) for p in ready}
    assert len(addrs) == 2
    for p in ready:
        status, health = http_call(address(p), "GET", "/health")
        assert status == 200
        assert health["pod"] == p.metadata.name
        assert health["variant"] == "canary"
        assert process_alive(p)
    groups = json.loads(TARGETS.read_text())
    mine = {g["targets"][0]: g["labels"] for g in groups if g["labels"].get("namespace") == ns}
    assert set(mine) == addrs
    assert {lab["pod"] for lab in mine.values()} == {p.metadata.name for p in ready}
    assert {(lab["variant"], lab["deployment"]) for lab in mine.values()} == {("canary", "green")}
    execs = client.CustomObjectsApi(api_client).list_namespaced_custom_object(
        "kwok.x-k8s.io", "v1alpha1", ns, "execs")["items"]
    env_addr = {e["metadata"]["name"]: {v["name"]: v["value"] for v in e["spec"]["execs"][0]["local"]["envs"]}
                ["VERITAS_RUNTIME_ADDR"] for e in execs}
    assert env_addr == {p.metadata.name: address(p) for p in ready}


def test_deleting_a_pod_kills_its_process_and_its_replacement_gets_one(core, apps, api_client, ns):
    from kubernetes import client

    deployment(apps, ns, "rt")
    (old,) = serving(core, ns, "rt", 1)
    old_pid, old_addr = int(old.metadata.annotations[PID]), address(old)
    core.delete_namespaced_pod(old.metadata.name, ns, grace_period_seconds=0)

    wait_for(lambda: not process_alive(old), timeout=15, what="the deleted pod's process to end")
    assert not Path(f"/proc/{old_pid}").exists() or not process_alive(old)
    with pytest.raises(OSError):
        http_call(old_addr, "GET", "/health")

    (new,) = wait_for(lambda: [p for p in serving(core, ns, "rt", 1) if p.metadata.uid != old.metadata.uid],
                      timeout=60, what="a replacement pod with a process")
    assert int(new.metadata.annotations[PID]) != old_pid
    assert http_call(address(new), "GET", "/health")[1]["pod"] == new.metadata.name
    wait_for(lambda: {g["labels"]["pod"] for g in json.loads(TARGETS.read_text())
                      if g["labels"].get("namespace") == ns} == {new.metadata.name},
             timeout=10, what="file_sd to list only the replacement")
    custom = client.CustomObjectsApi(api_client)
    wait_for(lambda: {e["metadata"]["name"] for e in custom.list_namespaced_custom_object(
        "kwok.x-k8s.io", "v1alpha1", ns, "execs")["items"]} == {new.metadata.name},
        timeout=30, what="the Exec mapping of the deleted pod to go")


def test_a_failed_pod_loses_its_process(core, apps, ns):
    deployment(apps, ns, "rt")
    (pod,) = serving(core, ns, "rt", 1)
    core.patch_namespaced_pod_status(pod.metadata.name, ns, {"status": {"phase": "Failed"}},
                                     _content_type="application/strategic-merge-patch+json")
    wait_for(lambda: not process_alive(pod), timeout=15, what="the failed pod's process to end")


def test_gpu_unavailable_makes_the_pod_not_ready_and_cpu_fallback_ready_but_slower(core, apps, ns, kubectl):
    from kubernetes import client

    deployment(apps, ns, "rt", env={"VERITAS_PER_TOKEN_MS": "5", "PREFILL_MS": "0",
                                    "CPU_FALLBACK_FACTOR": "4"})
    core.create_namespaced_service(ns, client.V1Service(
        metadata=client.V1ObjectMeta(name="rt"),
        spec=client.V1ServiceSpec(selector={"lab-test": "rt"},
                                  ports=[client.V1ServicePort(port=8080, target_port=8080)])))
    (pod,) = serving(core, ns, "rt", 1)
    name, addr = pod.metadata.name, address(pod)
    discovery = client.DiscoveryV1Api(core.api_client)

    def endpoint_ready() -> bool | None:
        for sl in discovery.list_namespaced_endpoint_slice(
                ns, label_selector="kubernetes.io/service-name=rt").items:
            for ep in sl.endpoints or []:
                if ep.target_ref and ep.target_ref.name == name:
                    return bool(ep.conditions.ready)
        return None

    wait_for(lambda: endpoint_ready() is True, timeout=30, what="a ready endpoint")
    t0 = time.monotonic()
    assert http_call(addr, "POST", "/v1/completions", {"prompt": "gpu", "max_tokens": 20})[0] == 200
    on_gpu = time.monotonic() - t0

    r = kubectl("exec", "-n", ns, name, "--", "./cli", "fault", "set", "gpu-unavailable", check=False)
    assert r.returncode == 0, r.stderr
    assert http_call(addr, "GET", "/health")[0] == 503
    not_ready = wait_for(lambda: next((p for p in pods(core, ns, "rt") if not is_ready(p)), None),
                         timeout=10, what="the pod to become not Ready")
    assert "gpu_unavailable" in ready_message(not_ready)
    wait_for(lambda: endpoint_ready() is False, timeout=15, what="the endpoint to turn not ready")

    r = kubectl("exec", "-n", ns, name, "--", "./cli", "fault", "set", "gpu-unavailable", "--cpu-fallback",
                check=False)
    assert r.returncode == 0, r.stderr
    wait_for(lambda: all(is_ready(p) for p in pods(core, ns, "rt")), timeout=10, what="Ready again")
    wait_for(lambda: endpoint_ready() is True, timeout=15, what="the endpoint ready again")
    t0 = time.monotonic()
    status, body = http_call(addr, "POST", "/v1/completions", {"prompt": "gpu", "max_tokens": 20})
    on_cpu = time.monotonic() - t0
    assert status == 200
    assert body["veritas"]["mode"] == "cpu_fallback"
    assert on_cpu >= 3 * on_gpu


def test_corrupted_kv_entry_is_detected_and_the_answer_is_still_correct(core, apps, ns, kubectl):
    deployment(apps, ns, "rt")
    (pod,) = serving(core, ns, "rt", 1)
    addr = address(pod)
    req = {"prompt": "veritas lab prompt 5", "max_tokens": 12}
    _, first = http_call(addr, "POST", "/v1/completions", req)
    assert http_call(addr, "POST", "/v1/completions", req)[1]["veritas"]["cache"] == "hit"
    r = kubectl("exec", "-n", ns, pod.metadata.name, "--", "./cli", "fault", "set", "kv-corruption",
                check=False)
    assert r.returncode == 0, r.stderr
    status, after = http_call(addr, "POST", "/v1/completions", req)
    assert status == 200
    assert after["veritas"]["cache"] == "corrupt_bypass"
    assert after["choices"][0]["text"] == first["choices"][0]["text"]
    assert after["veritas"]["checksum"] == first["veritas"]["checksum"]
    _, metrics = http_call(addr, "GET", "/metrics")
    assert "veritas_kv_cache_corruptions_detected_total{engine=\"0\",model_name=\"llama-7b\"} 1" in metrics


def test_kubectl_exec_cli_reports_the_pods_own_process(core, apps, ns, kubectl):
    deployment(apps, ns, "rt", replicas=2, env={"WARMUP_SECONDS": "0.5", "WARMUP_PROMPTS": "12"})
    a, b = serving(core, ns, "rt", 2)
    r = kubectl("exec", "-n", ns, a.metadata.name, "--", "./cli", "cache-warmup", "--model", "llama-7b",
                check=False)
    assert r.returncode == 0, r.stderr
    assert "progress=100%" in r.stdout
    for pod, entries in ((a, 12), (b, 0)):
        r = kubectl("exec", "-n", ns, pod.metadata.name, "--", "./cli", "cache-status", "--json",
                    check=False)
        assert r.returncode == 0, r.stderr
        status = json.loads(r.stdout)
        assert status["pod"] == pod.metadata.name
        assert status["entries"] == entries
        assert status == {**http_call(address(pod), "GET", "/admin/cache")[1], "warmup": status["warmup"]}


def test_bare_cli_works_in_kubectl_exec(core, apps, ns, kubectl):
    deployment(apps, ns, "rt")
    (pod,) = serving(core, ns, "rt", 1)
    r = kubectl("exec", "-n", ns, pod.metadata.name, "--", "cli", "status", "--json", check=False)
    assert r.returncode == 0, (
        "`cli` without ./ must be on kwok's PATH: add $REPO_ROOT/lab/runtime/bin to PATH before "
        f"kwokctl create cluster. {r.stderr}")
    assert json.loads(r.stdout)["pid"] == int(pod.metadata.annotations[PID])


def test_a_crashed_process_is_restarted_and_readiness_follows(core, apps, ns, kubectl):
    deployment(apps, ns, "rt")
    (pod,) = serving(core, ns, "rt", 1)
    old_pid = int(pod.metadata.annotations[PID])
    kubectl("exec", "-n", ns, pod.metadata.name, "--", "./cli", "fault", "set", "memory-exhaustion",
            "--oom-kill", check=False)
    wait_for(lambda: not Path(f"/proc/{old_pid}/cmdline").exists()
             or RUNTIME not in Path(f"/proc/{old_pid}/cmdline").read_text(), timeout=10,
             what="the process to die")
    (again,) = wait_for(lambda: [p for p in serving(core, ns, "rt", 1)
                                 if int(p.metadata.annotations[PID]) != old_pid], timeout=30,
                        what="a restarted process")
    assert again.metadata.uid == pod.metadata.uid
    assert address(again) == address(pod)
    assert http_call(address(again), "GET", "/health")[0] == 200


def test_a_crash_looping_container_has_no_process_while_it_waits_and_is_never_ready(core, apps, ns):
    deployment(apps, ns, "rt")
    (pod,) = serving(core, ns, "rt", 1)
    first_pid = int(pod.metadata.annotations[PID])
    core.patch_namespaced_pod(pod.metadata.name, ns,
                              {"metadata": {"labels": {"lab.veritas.io/crashloop": "true"}}})

    def waiting():
        p = core.read_namespaced_pod(pod.metadata.name, ns)
        st = (p.status.container_statuses or [None])[0]
        return p if st is not None and st.state.waiting is not None else None

    crashed = wait_for(waiting, timeout=15, what="the container to wait in CrashLoopBackOff")
    assert not is_ready(crashed)
    wait_for(lambda: not process_alive(pod), timeout=10, what="the process to end while waiting")

    def running_again():
        p = core.read_namespaced_pod(pod.metadata.name, ns)
        st = (p.status.container_statuses or [None])[0]
        return p if st is not None and st.state.running is not None and process_alive(p) \
            and int(p.metadata.annotations[PID]) != first_pid else None

    again = wait_for(running_again, timeout=20, what="a new process after the back-off")
    assert http_call(address(again), "GET", "/health")[0] == 200
    # Healthy process, but a crash-looping container: it stays not Ready for several probes.
    watch_until = time.monotonic() + 2.0
    while time.monotonic() < watch_until:
        assert not is_ready(core.read_namespaced_pod(again.metadata.name, ns))
        time.sleep(0.1)

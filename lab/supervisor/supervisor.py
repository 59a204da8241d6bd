#!/usr/bin/env python3
"""Gives every Running runtime pod of the lab one real local process, as a kubelet would.

Follows pods labelled lab.veritas.io/runtime=true in all namespaces through the Kubernetes API
(list + watch, with a periodic resync):
  - a Running pod (not being deleted, container not waiting/terminated) gets one process of
    lab/runtime/veritas_runtime.py on 127.0.0.1:PORT; a deleted, Failed or Succeeded pod
    loses it (SIGTERM, then SIGKILL); a container restart seen in the pod's status restarts it;
  - a process that dies while its pod should run is restarted on the same port (back-off);
  - each pod's address is published as the annotation lab.veritas.io/address, in the
    Prometheus file_sd file $LAB_DIR/run/targets/runtime.json, and in a kwok Exec object of
    the same name that maps `kubectl exec POD -- ./cli ...` to a local command with
    VERITAS_RUNTIME_ADDR set, and `kubectl exec POD -c envoy -- curl http://127.0.0.1:15000/...`
    (the Envoy sidecar's admin API) to curl with http_proxy set to the pod's process, which
    answers for the sidecar;
  - the pod's Ready and ContainersReady conditions follow the process's /health (status
    subresource), so EndpointSlices and the lab's proxy drop a pod whose /health is 503.

  - standard Kubernetes interfaces act on the process as on a real node: NetworkPolicies
    (Ingress) decide whether the lab's Prometheus and data plane may reach the pod's port, as a
    CNI would (the verdict goes to the process, which drops what is not admitted); the runtime
    container's limits.memory is enforced on the process's resident memory, as the kernel's OOM
    killer and kubelet would (SIGKILL, OOMKilled, CrashLoopBackOff); a node whose
    nvidia.com/gpu capacity or allocatable drops below the pod's request takes the devices away
    from the process (it reports gpu_unavailable, or serves on CPU when VERITAS_CPU_FALLBACK=true).

Configuration from the pod: container env (literal values) is passed through; labels variant
and deployment become VARIANT and DEPLOYMENT; annotation lab.veritas.io/faults (JSON) sets
faults at start; annotation lab.veritas.io/session-store picks the session store
("isolated" for one per pod, another name for a shared one; default: one per namespace).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

SELECTOR = "lab.veritas.io/runtime=true"
ANN_ADDRESS = "lab.veritas.io/address"
ANN_PID = "lab.veritas.io/pid"
ANN_LOG = "lab.veritas.io/log"
ANN_FAULTS = "lab.veritas.io/faults"
ANN_SESSION_STORE = "lab.veritas.io/session-store"
LABEL_CRASHLOOP = "lab.veritas.io/crashloop"
KWOK_GROUP, KWOK_VERSION = "kwok.x-k8s.io", "v1alpha1"
MANAGED_BY = "veritas-lab-supervisor"
REPO_ROOT = Path(__file__).resolve().parents[2]
RUNTIME = REPO_ROOT / "lab" / "runtime" / "veritas_runtime.py"
CLI = REPO_ROOT / "lab" / "runtime" / "bin" / "cli"
SMP = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
GPU_RESOURCE = "nvidia.com/gpu"
NS_NAME_LABEL = "kubernetes.io/metadata.name"
# The runtime's API port when the container declares none (the manifests name it `http`).
DEFAULT_POD_PORT = 8080
# kubelet's probes carry this User-Agent; NetworkPolicies never apply to them (node traffic).
PROBE_USER_AGENT = "kube-probe/1.36"
OBS_CONFIG = REPO_ROOT / "lab" / "observability" / "config.yml"
DATAPLANE_CONFIG = REPO_ROOT / "lab" / "dataplane" / "config.yml"


def log(event: str, *args: object, **fields: object) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() % 1 * 1000):03d}Z"
    parts = [stamp, event, *(str(a) for a in args), *(f"{k}={v}" for k, v in fields.items())]
    sys.stdout.write(" ".join(parts) + "\n")
    sys.stdout.flush()


# ---- decisions (pure) -------------------------------------------------------------------

def wants_process(pod: dict) -> bool:
    """A kubelet would have the container running: Running phase, not deleting, not waiting."""
    meta, status = pod.get("metadata", {}), pod.get("status", {})
    if meta.get("deletionTimestamp") or status.get("phase") != "Running":
        return False
    st = runtime_status(pod)
    if st is not None:
        state = st.get("state") or {}
        if "waiting" in state or "terminated" in state:
            return False
    return True


def restart_count(pod: dict) -> int:
    st = runtime_status(pod)
    return int(st.get("restartCount", 0)) if st is not None else 0


def ready_condition(pod: dict) -> bool | None:
    for cond in pod.get("status", {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return None


def desired_ready(pod: dict, health_code: int | None) -> bool:
    if pod.get("metadata", {}).get("labels", {}).get(LABEL_CRASHLOOP) == "true":
        return False
    return health_code == 200


def runtime_container(pod: dict) -> dict:
    """The container the process stands for: the one named runtime, else the first.

    Only spec.containers: the Envoy sidecar of the lab's manifests is a native sidecar
    (an init container with restartPolicy Always), never the runtime.
    """
    containers = pod.get("spec", {}).get("containers") or [{}]
    for c in containers:
        if c.get("name") == "runtime":
            return c
    return containers[0]


def runtime_status(pod: dict) -> dict | None:
    """The runtime container's entry of status.containerStatuses (by name, else the first)."""
    statuses = pod.get("status", {}).get("containerStatuses") or []
    name = runtime_container(pod).get("name")
    for st in statuses:
        if name and st.get("name") == name:
            return st
    return statuses[0] if statuses else None


def runtime_env(pod: dict, addr: str, lab_dir: Path) -> dict[str, str]:
    meta = pod["metadata"]
    labels = meta.get("labels") or {}
    ann = meta.get("annotations") or {}
    env: dict[str, str] = {}
    for item in runtime_container(pod).get("env") or []:
        if "value" in item and item.get("name"):
            env[item["name"]] = str(item["value"])
    env.setdefault("VARIANT", labels.get("variant", ""))
    env.setdefault("DEPLOYMENT", labels.get("deployment", ""))
    store = ann.get(ANN_SESSION_STORE, "")
    if store == "isolated":
        store_dir = lab_dir / "state" / "sessions" / f"{meta['namespace']}.{meta['name']}"
    else:
        store_dir = lab_dir / "state" / "sessions" / (store or meta["namespace"])
    env.setdefault("SESSION_STORE_DIR", str(store_dir))
    if ann.get(ANN_FAULTS):
        env["VERITAS_FAULTS"] = ann[ANN_FAULTS]
    env.update({
        "VERITAS_RUNTIME_ADDR": addr,
        "POD_NAME": meta["name"],
        "POD_NAMESPACE": meta["namespace"],
        "POD_UID": meta.get("uid", ""),
    })
    env.pop("VERITAS_POD_NAME", None)
    env.pop("VERITAS_POD_NAMESPACE", None)
    return env


def target_labels(pod: dict) -> dict[str, str]:
    meta = pod["metadata"]
    labels = meta.get("labels") or {}
    out = {"namespace": meta["namespace"], "pod": meta["name"],
           "variant": labels.get("variant", ""), "deployment": labels.get("deployment", ""),
           "app": labels.get("app", labels.get("app.kubernetes.io/name", ""))}
    return {k: v for k, v in out.items() if v}


ENVOY_CONTAINER = "envoy"


def envoy_workdir(workdir: Path) -> Path:
    """The envoy container's exec folder: its own, so the runtime's ./cli is not in it."""
    return workdir / ENVOY_CONTAINER


def exec_object(pod: dict, addr: str, workdir: Path, lab_py: str) -> dict:
    """The kwok Exec of a runtime pod: the runtime container (the default entry) and envoy.

    The first entry has no `containers`, so it serves every container without an entry of its
    own (kwok's default), as `kubectl exec POD -- ./cli ...` needs; its http_proxy points at the
    pod's process too, so `curl http://127.0.0.1:8080/...` in the runtime container reaches that
    pod's API as it would in the pod's network namespace. The second serves the Envoy
    sidecar: curl there reaches the sidecar's admin API at http://127.0.0.1:15000 as in a real
    pod, through http_proxy set to the pod's runtime process, which answers absolute-form
    requests for port 15000 as Envoy's admin (lab/runtime/README.md). NO_PROXY is emptied so
    that curl proxies 127.0.0.1 too (curl reads lower-case http_proxy; HTTP_PROXY is for other
    tools).
    """
    meta = pod["metadata"]
    proxy = f"http://{addr}"
    return {
        "apiVersion": f"{KWOK_GROUP}/{KWOK_VERSION}",
        "kind": "Exec",
        "metadata": {
            "name": meta["name"], "namespace": meta["namespace"],
            "labels": {"app.kubernetes.io/managed-by": MANAGED_BY},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": meta["name"],
                                 "uid": meta["uid"]}],
        },
        "spec": {"execs": [
            {"local": {
                "workDir": str(workdir),
                "envs": [{"name": "VERITAS_RUNTIME_ADDR", "value": addr},
                         {"name": "POD_NAME", "value": meta["name"]},
                         {"name": "POD_NAMESPACE", "value": meta["namespace"]},
                         {"name": "LAB_PY", "value": lab_py},
                         {"name": "http_proxy", "value": proxy},
                         {"name": "HTTP_PROXY", "value": proxy},
                         {"name": "no_proxy", "value": ""},
                         {"name": "NO_PROXY", "value": ""}],
            }},
            {"containers": [ENVOY_CONTAINER], "local": {
                "workDir": str(envoy_workdir(workdir)),
                "envs": [{"name": "http_proxy", "value": proxy},
                         {"name": "HTTP_PROXY", "value": proxy},
                         {"name": "no_proxy", "value": ""},
                         {"name": "NO_PROXY", "value": ""},
                         {"name": "POD_NAME", "value": meta["name"]},
                         {"name": "POD_NAMESPACE", "value": meta["namespace"]}],
            }},
        ]},
    }



# ---- NetworkPolicy (Ingress), as a CNI enforces it (pure) -----------------------------------

def selector_matches(selector: dict | None, labels: dict) -> bool:
    """A metav1.LabelSelector against labels; {} (or None) matches everything."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In":
            ok = key in labels and labels[key] in values
        elif op == "NotIn":
            ok = key not in labels or labels[key] not in values
        elif op == "Exists":
            ok = key in labels
        elif op == "DoesNotExist":
            ok = key not in labels
        else:  # unknown operator: the API server rejects it; match nothing rather than everything
            ok = False
        if not ok:
            return False
    return True


def namespace_labels(name: str, ns_labels: dict[str, dict]) -> dict:
    """A namespace's labels; the API server always sets kubernetes.io/metadata.name."""
    return {**(ns_labels.get(name) or {}), NS_NAME_LABEL: name}


def peer_matches(rule_peer: dict, policy_ns: str, peer: dict, ns_labels: dict[str, dict]) -> bool:
    """One entry of `from`. peer: {"namespace", "labels"} of the connecting pod."""
    if "ipBlock" in rule_peer:  # lab peers are processes on this machine: no pod IP to match
        return False
    ns_sel, pod_sel = rule_peer.get("namespaceSelector"), rule_peer.get("podSelector")
    if ns_sel is None and pod_sel is None:
        return False
    if ns_sel is None:  # podSelector alone: pods of the policy's own namespace
        if peer["namespace"] != policy_ns:
            return False
    elif not selector_matches(ns_sel, namespace_labels(peer["namespace"], ns_labels)):
        return False
    return pod_sel is None or selector_matches(pod_sel, peer.get("labels") or {})


def port_matches(rule_port: dict, port: int, name: str, protocol: str = "TCP") -> bool:
    """One entry of `ports`: protocol (TCP by default), a number (with endPort) or a port name."""
    if (rule_port.get("protocol") or "TCP") != protocol:
        return False
    want = rule_port.get("port")
    if want is None:
        return True
    if isinstance(want, str) and not want.isdigit():
        return bool(name) and want == name
    low = int(want)
    high = int(rule_port.get("endPort") or low)
    return low <= port <= high


def policy_types(policy: dict) -> list[str]:
    """policyTypes, or the API's default: Ingress, plus Egress when egress rules exist."""
    spec = policy.get("spec") or {}
    return spec.get("policyTypes") or (["Ingress"] + (["Egress"] if spec.get("egress") else []))


def ingress_admits(policies: list[dict], pod: dict, peer: dict, port: tuple[int, str],
                   ns_labels: dict[str, dict]) -> bool:
    """Whether peer may open a TCP connection to pod's port (number, name).

    A pod no Ingress policy selects admits everything; a selected pod admits only what some
    rule of some selecting policy admits (policies are additive allow lists).
    """
    meta = pod.get("metadata") or {}
    ns, labels = meta.get("namespace"), meta.get("labels") or {}
    selecting = [p for p in policies if (p.get("metadata") or {}).get("namespace") == ns
                 and "Ingress" in policy_types(p)
                 and selector_matches((p.get("spec") or {}).get("podSelector"), labels)]
    if not selecting:
        return True
    for policy in selecting:
        for rule in (policy.get("spec") or {}).get("ingress") or []:
            ports = rule.get("ports") or []
            if ports and not any(port_matches(rp, *port) for rp in ports):
                continue
            peers = rule.get("from") or []
            if not peers or any(peer_matches(rp, ns, peer, ns_labels) for rp in peers):
                return True
    return False


def serving_port(pod: dict) -> tuple[int, str]:
    """The runtime container's API port (named http, else the first declared, else 8080).

    It serves /metrics too, as vLLM does on its API port, so Prometheus and the data plane
    reach the same port.
    """
    ports = runtime_container(pod).get("ports") or []
    for p in ports:
        if p.get("name") == "http" and p.get("containerPort"):
            return int(p["containerPort"]), "http"
    if ports and ports[0].get("containerPort"):
        return int(ports[0]["containerPort"]), ports[0].get("name") or ""
    return DEFAULT_POD_PORT, ""


def network_verdict(pod: dict, policies: list[dict], peers: dict[str, dict],
                    ns_labels: dict[str, dict]) -> dict[str, bool]:
    """For each known peer (prometheus, dataplane): may it reach the pod's serving port?"""
    port = serving_port(pod)
    return {name: ingress_admits(policies, pod, peer, port, ns_labels)
            for name, peer in sorted(peers.items())}


def load_peers(obs_config: Path = OBS_CONFIG, dp_config: Path = DATAPLANE_CONFIG) -> dict[str, dict]:
    """Who the lab's Prometheus and data plane are to NetworkPolicies (their config files say)."""
    import yaml

    obs = yaml.safe_load(obs_config.read_text()) or {}
    dp = yaml.safe_load(dp_config.read_text()) or {}
    out = {}
    for name, ident in (("prometheus", (obs.get("prometheus") or {}).get("identity")),
                        ("dataplane", dp.get("identity"))):
        if ident:
            out[name] = {"namespace": ident["namespace"], "labels": dict(ident.get("labels") or {})}
    return out


# ---- memory limits, as the kernel's OOM killer and kubelet enforce them (pure) ----------------

_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?$")
_SUFFIX = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
           "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}


def parse_quantity(value: object) -> int | None:
    """A Kubernetes quantity (128Mi, 1G, 512k, 1e9, 1048576) in whole units, rounded up."""
    m = _QUANTITY.match(str(value).strip()) if value is not None else None
    if not m:
        return None
    try:
        return math.ceil(float(m.group(1)) * _SUFFIX.get(m.group(2) or "", 1))
    except (ValueError, OverflowError):
        return None


def memory_limit(pod: dict) -> int | None:
    """The runtime container's resources.limits.memory in bytes; None without a limit."""
    limits = (runtime_container(pod).get("resources") or {}).get("limits") or {}
    return parse_quantity(limits.get("memory")) if "memory" in limits else None


def parse_vmrss(status_text: str) -> int | None:
    """VmRSS of /proc/<pid>/status in bytes (kernel threads and zombies have none)."""
    for line in status_text.splitlines():
        if line.startswith("VmRSS:"):
            parts = line.split()
            return int(parts[1]) * (1024 if len(parts) > 2 and parts[2] == "kB" else 1)
    return None


def parse_pgrp(stat_text: str) -> int:
    """The process group of /proc/<pid>/stat (after the command, which may hold spaces)."""
    return int(stat_text.rsplit(")", 1)[1].split()[2])


def crash_backoff(kills: int) -> float:
    """kubelet's crash back-off, lab-short: 2 s, doubling, at most 10 s."""
    return min(10.0, 2.0 * 2 ** max(0, kills - 1))


def _replace_runtime_status(pod: dict, entry: dict) -> list[dict]:
    statuses = [dict(s) for s in (pod.get("status") or {}).get("containerStatuses") or []]
    name = entry["name"]
    for i, st in enumerate(statuses):
        if st.get("name") == name:
            statuses[i] = entry
            return statuses
    return [*statuses, entry]


def _not_ready_conditions(pod: dict, now: str, container: str) -> list[dict]:
    conds = [c for c in (pod.get("status") or {}).get("conditions") or []
             if c.get("type") not in ("Ready", "ContainersReady")]
    return conds + [{"type": t, "status": "False", "lastTransitionTime": now,
                     "reason": "ContainersNotReady",
                     "message": f"containers with unready status: [{container}]"}
                    for t in ("Ready", "ContainersReady")]


def oom_killed_status(pod: dict, started_at: str, finished_at: str, backoff: float) -> dict:
    """The pod status kubelet shows after the OOM killer ended the runtime container."""
    meta = pod.get("metadata") or {}
    name = runtime_container(pod).get("name") or "runtime"
    old = runtime_status(pod) or {"name": name, "image": runtime_container(pod).get("image", "")}
    entry = {**old, "name": name, "ready": False, "started": False,
             "restartCount": int(old.get("restartCount", 0)) + 1,
             "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled",
                                          "startedAt": started_at, "finishedAt": finished_at}},
             "state": {"waiting": {"reason": "CrashLoopBackOff", "message": (
                 f"back-off {int(backoff)}s restarting failed container={name} "
                 f"pod={meta.get('name')}_{meta.get('namespace')}({meta.get('uid')})")}}}
    return {"containerStatuses": _replace_runtime_status(pod, entry),
            "conditions": _not_ready_conditions(pod, finished_at, name)}


def restarted_status(pod: dict, now: str) -> dict:
    """After the back-off: the container runs again (not Ready until its probe says so)."""
    name = runtime_container(pod).get("name") or "runtime"
    old = runtime_status(pod) or {"name": name}
    entry = {**old, "name": name, "ready": False, "started": True,
             "state": {"running": {"startedAt": now}}}
    return {"containerStatuses": _replace_runtime_status(pod, entry)}


def in_oom_backoff(pod: dict) -> bool:
    """Waiting in CrashLoopBackOff after an OOM kill: the supervisor's back-off, not kwok's."""
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    if meta.get("deletionTimestamp") or status.get("phase") != "Running":
        return False
    st = runtime_status(pod) or {}
    waiting = (st.get("state") or {}).get("waiting") or {}
    last = (st.get("lastState") or {}).get("terminated") or {}
    return waiting.get("reason") == "CrashLoopBackOff" and last.get("reason") == "OOMKilled"


# ---- GPUs, as the device plugin and kubelet see them (pure) ----------------------------------

def gpu_request(pod: dict) -> int:
    """nvidia.com/gpu the pod's containers ask for (extended resources: limits, else requests)."""
    total = 0
    for c in (pod.get("spec") or {}).get("containers") or []:
        res = c.get("resources") or {}
        value = (res.get("limits") or {}).get(GPU_RESOURCE, (res.get("requests") or {}).get(GPU_RESOURCE))
        if value is not None:
            total += parse_quantity(value) or 0
    return total


def node_gpus(node: dict) -> int:
    """The GPUs a node still offers: the lower of status.capacity and status.allocatable."""
    status = node.get("status") or {}
    values = [parse_quantity(status[f].get(GPU_RESOURCE)) for f in ("capacity", "allocatable")
              if GPU_RESOURCE in (status.get(f) or {})]
    values = [v for v in values if v is not None]
    return min(values) if values else 0


def gpus_lost(pod: dict, node: dict | None) -> bool:
    """Whether the node no longer has the GPUs the pod asked for (unknown node: not lost)."""
    need = gpu_request(pod)
    return bool(need) and node is not None and node_gpus(node) < need


def lab_state(verdict: dict[str, bool], gpu_lost: bool) -> dict:
    """What the process is told (lab-internal file): who may connect, whether its GPUs are gone."""
    return {"network": dict(verdict), "devices": {"gpu_lost": gpu_lost}}


def free_port(taken: set[int]) -> int:
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in taken:
            return port
    raise RuntimeError("no free port")


def probe(addr: str, timeout: float = 0.8) -> tuple[int | None, str]:
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", "/health", headers={"User-Agent": PROBE_USER_AGENT})
        resp = conn.getresponse()
        body = resp.read()
        reason = ""
        try:
            reason = json.loads(body).get("reason", "")
        except (ValueError, AttributeError):
            pass
        return resp.status, reason
    except (OSError, http.client.HTTPException) as exc:
        return None, f"health check failed: {exc}"
    finally:
        conn.close()


# ---- processes ----------------------------------------------------------------------------

@dataclass
class Managed:
    uid: str
    namespace: str
    name: str
    port: int
    pod: dict
    workdir: Path
    log_path: Path
    proc: subprocess.Popen | None = None
    container_restarts: int = 0
    process_restarts: int = 0
    next_start: float = 0.0
    last_patch: tuple[bool, float] | None = None
    health: tuple[int | None, str] = (None, "")
    published: bool = False
    extra: dict = field(default_factory=dict)
    lab_state: dict | None = None      # last state written to state_file
    oom_kills: int = 0
    oom_backoff: bool = False          # waiting after an OOM kill: the probe loop restarts it
    started_at: str = ""               # state.running.startedAt of the current process

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def key(self) -> str:
        return f"{self.namespace}.{self.name}"

    @property
    def state_file(self) -> Path:
        return self.workdir / "lab-state.json"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Supervisor:
    def __init__(self, lab_dir: Path, kubeconfig: str, lab_py: str, probe_interval: float = 0.5,
                 resync: float = 10.0, cluster_interval: float = 1.0):
        from kubernetes import client, config

        self.lab_dir = lab_dir
        self.lab_py = lab_py
        self.probe_interval = probe_interval
        self.resync = resync
        self.api = config.new_client_from_config(config_file=kubeconfig)
        self.core = client.CoreV1Api(self.api)
        self.networking = client.NetworkingV1Api(self.api)
        self.cluster_interval = cluster_interval
        # NetworkPolicies, namespace labels and nodes, relisted every cluster_interval.
        self.policies: list[dict] = []
        self.ns_labels: dict[str, dict] = {}
        self.nodes: dict[str, dict] = {}
        self.peers = load_peers()
        self.custom = client.CustomObjectsApi(self.api)
        self.ApiException = client.ApiException
        self.lock = threading.RLock()
        self.managed: dict[str, Managed] = {}
        self.stopping = threading.Event()
        self.exec_crd = True
        self.logs_crd = True
        self.released: dict[int, float] = {}
        self.run_dir = lab_dir / "run"
        self.pid_dir = self.run_dir / "runtime-pods"
        self.targets = self.run_dir / "targets" / "runtime.json"
        self.state_file = self.run_dir / "supervisor-state.json"
        self.pod_log_dir = lab_dir / "logs" / "pods"
        for d in (self.pid_dir, self.targets.parent, self.pod_log_dir, self.run_dir / "pods"):
            d.mkdir(parents=True, exist_ok=True)

    # -- lifecycle of one process --
    def start(self, m: Managed) -> None:
        m.workdir.mkdir(parents=True, exist_ok=True)
        envoy_workdir(m.workdir).mkdir(exist_ok=True)
        link = m.workdir / "cli"
        if not link.is_symlink() or os.readlink(link) != str(CLI):
            with contextlib.suppress(FileNotFoundError):
                link.unlink()
            link.symlink_to(CLI)
        ready_file = m.workdir / "ready.json"
        with contextlib.suppress(FileNotFoundError):
            ready_file.unlink()
        # The current network verdict and devices before the first connection can arrive.
        self.push_state(m, force=True)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/"),
               "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1", **runtime_env(m.pod, m.addr, self.lab_dir),
               "VERITAS_READY_FILE": str(ready_file),
               "VERITAS_LAB_STATE_FILE": str(m.state_file),
               "VERITAS_POD_PORT": str(serving_port(m.pod)[0]),
               "VERITAS_CRI_LOG_FILE": str(m.log_path.with_suffix(".cri.log"))}
        pod_ip = (m.pod.get("status") or {}).get("podIP")
        if pod_ip:
            env["POD_IP"] = pod_ip
        Path(env["SESSION_STORE_DIR"]).mkdir(parents=True, exist_ok=True)
        logf = open(m.log_path, "a")  # noqa: SIM115 - handed to the child
        try:
            m.proc = subprocess.Popen([self.lab_py, "-S", str(RUNTIME)], cwd=m.workdir, env=env,
                                      stdout=logf, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            logf.close()
        (self.pid_dir / f"{m.uid}.pid").write_text(f"{m.proc.pid} {m.port} {m.namespace} {m.name}\n")
        m.started_at = _now()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not ready_file.exists() and m.proc.poll() is None:
            time.sleep(0.01)
        log("process_started", m.key, pid=m.proc.pid, addr=m.addr, ready=ready_file.exists())
        m.health = probe(m.addr)
        self.publish(m)

    def kill(self, m: Managed, reason: str) -> None:
        proc = m.proc
        m.proc = None
        if proc is not None:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(2)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(5)
            log("process_stopped", m.key, pid=proc.pid, reason=reason, code=proc.returncode)
        with contextlib.suppress(FileNotFoundError):
            (self.pid_dir / f"{m.uid}.pid").unlink()

    # -- publishing the address --
    def publish(self, m: Managed) -> None:
        assert m.proc is not None
        # The exec mapping first: whoever sees the address annotation can exec at once.
        self.put_exec(m)
        self.put_logs(m)
        ann = {ANN_ADDRESS: m.addr, ANN_PID: str(m.proc.pid), ANN_LOG: str(m.log_path)}
        try:
            self.core.patch_namespaced_pod(m.name, m.namespace, {"metadata": {"annotations": ann}},
                                           _content_type=SMP)
        except self.ApiException as exc:
            log("annotate_failed", m.key, status=exc.status)
        m.published = True
        self.write_targets()

    def put_exec(self, m: Managed) -> None:
        if not self.exec_crd:
            return
        body = exec_object(m.pod, m.addr, m.workdir, self.lab_py)
        args = (KWOK_GROUP, KWOK_VERSION, m.namespace, "execs")
        try:
            self.custom.create_namespaced_custom_object(*args, body)
        except self.ApiException as exc:
            if exc.status == 409:
                current = self.custom.get_namespaced_custom_object(*args, m.name)
                body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                self.custom.replace_namespaced_custom_object(*args, m.name, body)
            elif exc.status == 404:
                self.exec_crd = False
                log("exec_crd_missing", "kwok Exec CRD not served; enable it with --enable-crds=Exec")
            else:
                log("exec_failed", m.key, status=exc.status)

    def put_logs(self, m: Managed) -> None:
        """`kubectl logs POD` reads the process's log, if the lab serves kwok's Logs CRD."""
        if not self.logs_crd:
            return
        body = {"apiVersion": f"{KWOK_GROUP}/{KWOK_VERSION}", "kind": "Logs",
                "metadata": {"name": m.name, "namespace": m.namespace,
                             "labels": {"app.kubernetes.io/managed-by": MANAGED_BY},
                             "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": m.name,
                                                  "uid": m.uid}]},
                "spec": {"logs": [{"logsFile": str(m.log_path.with_suffix(".cri.log")), "follow": True}]}}
        args = (KWOK_GROUP, KWOK_VERSION, m.namespace, "logs")
        try:
            self.custom.create_namespaced_custom_object(*args, body)
        except self.ApiException as exc:
            if exc.status == 409:
                return
            if exc.status == 404:
                self.logs_crd = False
                log("logs_crd_missing", "kwok Logs CRD not served; `kubectl logs` needs --enable-crds=Logs")
            else:
                log("logs_failed", m.key, status=exc.status)

    def delete_exec(self, m: Managed) -> None:
        if not self.exec_crd:
            return
        with contextlib.suppress(self.ApiException):
            self.custom.delete_namespaced_custom_object(KWOK_GROUP, KWOK_VERSION, m.namespace, "execs",
                                                        m.name)

    def write_targets(self) -> None:
        with self.lock:
            groups = [{"targets": [m.addr], "labels": target_labels(m.pod)}
                      for m in sorted(self.managed.values(), key=lambda x: x.key) if m.alive()]
            state = [{"namespace": m.namespace, "pod": m.name, "uid": m.uid, "addr": m.addr,
                      "pid": m.proc.pid if m.proc else None, "alive": m.alive(),
                      "health": m.health[0], "ready": m.last_patch[0] if m.last_patch else None,
                      "process_restarts": m.process_restarts, "log": str(m.log_path)}
                     for m in sorted(self.managed.values(), key=lambda x: x.key)]
        _atomic_write(self.targets, json.dumps(groups, indent=1))
        _atomic_write(self.state_file, json.dumps({"pid": os.getpid(), "pods": state}, indent=1))

    # -- readiness --
    def set_ready(self, m: Managed, ready: bool, reason: str) -> None:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        conds = [{"type": t, "status": "True" if ready else "False", "lastTransitionTime": now,
                  "reason": "" if ready else "HealthCheckFailed", "message": "" if ready else reason[:200]}
                 for t in ("Ready", "ContainersReady")]
        try:
            self.core.patch_namespaced_pod_status(m.name, m.namespace, {"status": {"conditions": conds}},
                                                  _content_type=SMP)
            m.last_patch = (ready, time.monotonic())
            # Our own view until the watch delivers the patched pod.
            status = m.pod.setdefault("status", {})
            others = [c for c in status.get("conditions") or [] if c.get("type") not in ("Ready", "ContainersReady")]
            status["conditions"] = others + conds
            log("ready" if ready else "not_ready", m.key, reason=reason.replace(" ", "_") or "-")
            self.write_targets()
        except self.ApiException as exc:
            log("ready_patch_failed", m.key, status=exc.status)

    # -- reconciliation --
    def reconcile(self, pod: dict, deleted: bool = False) -> None:
        meta = pod.get("metadata", {})
        uid = meta.get("uid")
        if not uid:
            return
        with self.lock:
            if self.stopping.is_set():
                return
            m = self.managed.get(uid)
            want = not deleted and wants_process(pod)
            # Waiting out our own OOM back-off: keep the slot, the probe loop restarts it.
            hold = not deleted and in_oom_backoff(pod)
            if m is not None:
                m.pod = pod
            if hold and m is None:  # e.g. a supervisor restarted during the back-off
                m = self.new_managed(pod)
                m.oom_backoff = True
            elif hold and not want:
                pass
            elif want and m is None:
                m = self.new_managed(pod)
                if ready_condition(pod):
                    self.set_ready(m, False, "process starting")
                self.start(m)
                self.after_start(m)
            elif want and m is not None and restart_count(pod) > m.container_restarts:
                m.container_restarts = restart_count(pod)
                self.kill(m, "container_restarted")
                self.start(m)
                self.after_start(m)
            elif not want and m is not None:
                why = "pod_deleted" if deleted or meta.get("deletionTimestamp") else \
                    f"phase_{pod.get('status', {}).get('phase', 'unknown')}_or_container_not_running"
                self.kill(m, why)
                del self.managed[uid]
                self.released[m.port] = time.monotonic()
                if not deleted and not meta.get("deletionTimestamp"):
                    self.delete_exec(m)
                else:
                    shutil.rmtree(m.workdir, ignore_errors=True)
                self.write_targets()

    def new_managed(self, pod: dict) -> Managed:
        meta = pod["metadata"]
        now = time.monotonic()
        self.released = {p: t for p, t in self.released.items() if now - t < 120}
        taken = {x.port for x in self.managed.values()} | set(self.released)
        key = f"{meta['namespace']}.{meta['name']}"
        m = Managed(uid=meta["uid"], namespace=meta["namespace"], name=meta["name"],
                    port=free_port(taken), pod=pod, workdir=self.run_dir / "pods" / key,
                    log_path=self.pod_log_dir / f"{key}.log", container_restarts=restart_count(pod))
        self.managed[m.uid] = m
        return m

    def after_start(self, m: Managed) -> None:
        """Memory first: a process over its limit from the start must never be set Ready."""
        if not self.check_memory(m):
            self.apply_health(m)

    # -- memory limits --
    def check_memory(self, m: Managed, groups: dict[int, list[int]] | None = None) -> bool:
        """SIGKILLs the process (its process group) above limits.memory; True if it did."""
        limit = memory_limit(m.pod)
        if limit is None or not m.alive():
            return False
        pids = (groups if groups is not None else process_groups()).get(m.proc.pid, [m.proc.pid])
        rss = group_rss(pids)
        if rss is None or rss <= limit:
            return False
        self.oom_kill(m, rss, limit)
        return True

    def oom_kill(self, m: Managed, rss: int, limit: int) -> None:
        proc = m.proc
        assert proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
        m.proc = None
        with contextlib.suppress(FileNotFoundError):
            (self.pid_dir / f"{m.uid}.pid").unlink()
        m.oom_kills += 1
        backoff = crash_backoff(m.oom_kills)
        m.next_start = time.monotonic() + backoff
        m.oom_backoff = True
        st = runtime_status(m.pod) or {}
        started = ((st.get("state") or {}).get("running") or {}).get("startedAt") or m.started_at or _now()
        status = oom_killed_status(m.pod, started, _now(), backoff)
        log("oom_killed", m.key, pid=proc.pid, rss=rss, limit=limit, kills=m.oom_kills, backoff=backoff)
        self.patch_status(m, status)
        m.container_restarts = restart_count(m.pod)
        m.last_patch = (False, time.monotonic())
        self.write_targets()

    def restart_after_backoff(self, m: Managed) -> None:
        self.patch_status(m, restarted_status(m.pod, _now()))
        m.oom_backoff = False
        self.start(m)
        self.after_start(m)

    def patch_status(self, m: Managed, status: dict) -> None:
        """A JSON merge patch: containerStatuses and conditions are replaced as a whole."""
        try:
            self.core.patch_namespaced_pod_status(m.name, m.namespace, {"status": status},
                                                  _content_type=MERGE)
        except self.ApiException as exc:
            log("status_patch_failed", m.key, status=exc.status)
        # Our own view until the watch delivers the patched pod.
        m.pod.setdefault("status", {}).update(json.loads(json.dumps(status)))

    # -- NetworkPolicies, namespaces and nodes --
    def refresh_cluster(self) -> None:
        def items(resp) -> list[dict]:
            return json.loads(resp.data).get("items", [])

        policies = items(self.networking.list_network_policy_for_all_namespaces(_preload_content=False))
        namespaces = items(self.core.list_namespace(_preload_content=False))
        nodes = items(self.core.list_node(_preload_content=False))
        with self.lock:
            self.policies = policies
            self.ns_labels = {n["metadata"]["name"]: n["metadata"].get("labels") or {} for n in namespaces}
            self.nodes = {n["metadata"]["name"]: n for n in nodes}

    def desired_state(self, m: Managed) -> dict:
        verdict = network_verdict(m.pod, self.policies, self.peers, self.ns_labels)
        node = self.nodes.get((m.pod.get("spec") or {}).get("nodeName") or "")
        return lab_state(verdict, gpus_lost(m.pod, node))

    def push_state(self, m: Managed, force: bool = False) -> None:
        """Writes the pod's lab state file when it changed; the process reads it per request."""
        with self.lock:
            state = self.desired_state(m)
        if state == m.lab_state and not force:
            return
        m.workdir.mkdir(parents=True, exist_ok=True)
        _atomic_write(m.state_file, json.dumps(state))
        if state != m.lab_state:
            old = m.lab_state or {}
            if old.get("network") != state["network"]:
                log("network_verdict", m.key, **{k: "allow" if v else "drop" for k, v in state["network"].items()})
            if old.get("devices") != state["devices"]:
                log("gpu_devices", m.key, lost=state["devices"]["gpu_lost"])
        m.lab_state = state

    def cluster_loop(self) -> None:
        while not self.stopping.wait(self.cluster_interval):
            try:
                self.refresh_cluster()
            except Exception as exc:  # noqa: BLE001 - keep the last view through API hiccups
                log("cluster_list_error", type(exc).__name__, detail=str(exc)[:200].replace(" ", "_"))
                continue
            with self.lock:
                items = list(self.managed.values())
            for m in items:
                self.push_state(m)

    def apply_health(self, m: Managed) -> None:
        code, reason = m.health
        want = desired_ready(m.pod, code) if m.alive() else False
        if not m.alive():
            reason = "process not running"
        elif code != 200 and not reason:
            reason = f"/health answered {code}"
        elif want is False and code == 200:
            reason = "container in crash loop"
        current = ready_condition(m.pod)
        recent = m.last_patch is not None and m.last_patch[0] == want and \
            time.monotonic() - m.last_patch[1] < 3.0
        if current != want and not recent:
            self.set_ready(m, want, reason)

    def probe_loop(self) -> None:
        while not self.stopping.wait(self.probe_interval):
            with self.lock:
                items = list(self.managed.values())
            for m in items:
                if m.alive():
                    m.health = probe(m.addr)
                else:
                    m.health = (None, "process not running")
            groups = process_groups() if any(memory_limit(m.pod) is not None for m in items) else {}
            with self.lock:
                for m in items:
                    if self.managed.get(m.uid) is not m:
                        continue
                    if self.check_memory(m, groups):
                        continue
                    if m.proc is None and m.oom_backoff:
                        if time.monotonic() >= m.next_start:
                            self.restart_after_backoff(m)
                        continue
                    if m.proc is not None and m.proc.poll() is not None:
                        code = m.proc.returncode
                        log("process_exited", m.key, pid=m.proc.pid, code=code)
                        self.kill(m, f"exited_{code}")
                        m.process_restarts += 1
                        m.next_start = time.monotonic() + min(10.0, 0.5 * 2 ** min(m.process_restarts, 5))
                        self.write_targets()
                    if m.proc is None and time.monotonic() >= m.next_start and wants_process(m.pod):
                        self.start(m)
                        if self.check_memory(m):
                            continue
                    self.apply_health(m)

    def list_pods(self) -> tuple[list[dict], str]:
        resp = self.core.list_pod_for_all_namespaces(label_selector=SELECTOR, _preload_content=False)
        data = json.loads(resp.data)
        return data.get("items", []), data["metadata"]["resourceVersion"]

    def resync_all(self) -> str:
        pods, rv = self.list_pods()
        seen = set()
        for pod in pods:
            seen.add(pod["metadata"]["uid"])
            self.reconcile(pod)
        with self.lock:
            gone = [m for uid, m in self.managed.items() if uid not in seen]
        for m in gone:
            self.reconcile(m.pod, deleted=True)
        return rv

    def watch_loop(self) -> None:
        from kubernetes import watch

        rv = ""
        last_resync = 0.0
        while not self.stopping.is_set():
            try:
                if not rv or time.monotonic() - last_resync > self.resync:
                    rv = self.resync_all()
                    last_resync = time.monotonic()
                w = watch.Watch()
                for ev in w.stream(self.core.list_pod_for_all_namespaces, label_selector=SELECTOR,
                                   resource_version=rv, timeout_seconds=int(self.resync),
                                   allow_watch_bookmarks=True, deserialize=False):
                    obj = ev.get("raw_object") or ev.get("object") or {}
                    kind = ev.get("type")
                    if kind == "ERROR":
                        rv = ""
                        break
                    rv = obj.get("metadata", {}).get("resourceVersion", rv)
                    if kind == "BOOKMARK":
                        continue
                    self.reconcile(obj, deleted=kind == "DELETED")
                    if self.stopping.is_set():
                        w.stop()
                        break
            except Exception as exc:  # noqa: BLE001 - the supervisor must outlive API hiccups
                log("watch_error", type(exc).__name__, detail=str(exc)[:200].replace(" ", "_"))
                rv = ""
                self.stopping.wait(1.0)

    def kill_stale(self) -> None:
        """Processes left by a supervisor that died: their pid files name them."""
        for pidfile in self.pid_dir.glob("*.pid"):
            try:
                pid = int(pidfile.read_text().split()[0])
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                if str(RUNTIME).encode() in cmdline:
                    os.killpg(pid, signal.SIGKILL)
                    log("stale_process_killed", pid=pid)
            except (OSError, ValueError, IndexError):
                pass
            pidfile.unlink(missing_ok=True)

    def shutdown(self) -> None:
        self.stopping.set()
        with self.lock:
            items = list(self.managed.values())
            self.managed.clear()
        for m in items:  # signal all first, then wait for each
            if m.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(m.proc.pid, signal.SIGTERM)
        for m in items:
            self.kill(m, "supervisor_stopping")
        for m in items:
            if ready_condition(m.pod):
                try:
                    self.core.patch_namespaced_pod_status(
                        m.name, m.namespace, {"status": {"conditions": [
                            {"type": "Ready", "status": "False", "reason": "SupervisorStopped"},
                            {"type": "ContainersReady", "status": "False", "reason": "SupervisorStopped"}]}},
                        _content_type=SMP, _request_timeout=2)
                except Exception:  # noqa: BLE001 - the API may be gone already; do not wait on it
                    break
        self.write_targets()
        pidfile = self.run_dir / "supervisor.pid"
        with contextlib.suppress(OSError, ValueError):
            if int(pidfile.read_text()) == os.getpid():
                pidfile.unlink()
        log("supervisor_stopped")

    def run(self) -> None:
        self.kill_stale()
        # Nothing runs yet: the work folders of earlier runs are stale.
        shutil.rmtree(self.run_dir / "pods", ignore_errors=True)
        (self.run_dir / "pods").mkdir(parents=True, exist_ok=True)
        self.write_targets()
        _atomic_write(self.run_dir / "supervisor.pid", f"{os.getpid()}\n")
        log("supervisor_started", pid=os.getpid(), selector=SELECTOR, targets=self.targets)
        try:
            self.refresh_cluster()
        except Exception as exc:  # noqa: BLE001 - the cluster loop retries
            log("cluster_list_error", type(exc).__name__, detail=str(exc)[:200].replace(" ", "_"))
        threading.Thread(target=self.cluster_loop, daemon=True, name="cluster").start()
        threading.Thread(target=self.probe_loop, daemon=True, name="probe").start()
        threading.Thread(target=self.watch_loop, daemon=True, name="watch").start()
        self.stopping.wait()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def process_groups() -> dict[int, list[int]]:
    """Process group id -> its pids, from /proc (the runtime leads its own group)."""
    groups: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            pgrp = parse_pgrp(Path(entry.path, "stat").read_text())
        except (OSError, ValueError, IndexError):
            continue
        groups.setdefault(pgrp, []).append(int(entry.name))
    return groups


def group_rss(pids: list[int]) -> int | None:
    """Resident memory of these processes (VmRSS), as a memory cgroup would charge them."""
    total, seen = 0, False
    for pid in pids:
        try:
            rss = parse_vmrss(Path(f"/proc/{pid}/status").read_text())
        except OSError:
            continue
        if rss is not None:
            total, seen = total + rss, True
    return total if seen else None


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def main() -> int:
    lab_dir = Path(os.environ.get("LAB_DIR", REPO_ROOT / ".lab"))
    kubeconfig = os.environ.get("KUBECONFIG", str(lab_dir / "kubeconfig"))
    lab_py = os.environ.get("LAB_PY") or sys.executable
    sup = Supervisor(lab_dir, kubeconfig, lab_py,
                     probe_interval=float(os.environ.get("SUPERVISOR_PROBE_INTERVAL", "0.5")),
                     cluster_interval=float(os.environ.get("SUPERVISOR_CLUSTER_INTERVAL", "1.0")))
    done = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log("signal", signal.Signals(signum).name)
        done.set()
        sup.stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        sup.run()
    finally:
        sup.shutdown()
    sys.stdout.flush()
    # Everything is cleaned up; do not wait for the API client's pools and the watch socket.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())

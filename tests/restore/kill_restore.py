"""Kill game days at random points and prove the restore puts back what was there.

Each trial: a release by hand (the blue-green Service on green, the canary weights 80/20, so
neither is what the inventory calls the steady state), a game day started as its own
ansible-playbook, SIGKILL to that ansible-playbook at a random moment (as a lost controller:
its workers, rollback guard and load generators live on), then
`playbooks/restore-steady-state.yml`. The trial passes when the Service is on green again,
the weights are 80/20, no runtime pod carries a fault (its runtime's or its Envoy sidecar's),
the GPU nodes and the Deployments' resources are as before, no NetworkPolicy of ours is left,
no process the run recorded is alive, no game-day lock is held and every ledger is restored.
At the end the lab goes back to its own steady state.

    .venv/bin/python tests/restore/kill_restore.py --runs 10   # part of make test
    make restore-soak RUNS=30                                  # separate, prints the count

Needs the running lab (make lab-up). Prints one line per trial and 'N passed, M failed'.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NAMESPACE = "veritas-lab"
RELEASE_COLOUR = "green"
RELEASE_WEIGHTS = {"control": "80", "canary": "20"}
LAB_COLOUR = "blue"
LAB_WEIGHTS = {"control": "90", "canary": "10"}
sys.path.insert(0, str(REPO / "scenarios"))
import registry  # the scenario registry: the one list of game days

# Every game day of the registry, canary and blue-green alternating (the order of the trials).
GAMEDAYS = [
    (s.id, s.playbook)
    for pair in itertools.zip_longest(*(registry.load().of_topology(t) for t in ("canary", "bluegreen")))
    for s in pair if s is not None
]
# A kill lands anywhere from the pre-flight to the report (the game days take 25-70 s on the lab).
KILL_AFTER = (5.0, 55.0)


def _kube_bin() -> Path:
    versions = dict(
        line.split("=", 1)
        for line in (REPO / "lab" / "versions.env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    cache = Path(
        os.environ.get("VERITAS_LAB_CACHE", Path.home() / ".cache" / "veritas-lab")
    )
    return cache / f"kubernetes-{versions['KUBE_VERSION']}"


KUBECTL = [
    str(_kube_bin() / "kubectl"),
    "--kubeconfig",
    str(REPO / ".lab" / "kubeconfig"),
]
ENV = dict(
    os.environ,
    ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
    ANSIBLE_COLLECTIONS_PATH=str(REPO / ".collections"),
    PATH=f"{REPO / '.venv' / 'bin'}:{os.environ['PATH']}",
)


def kubectl(*args: str, check: bool = True) -> str:
    done = subprocess.run(
        KUBECTL + list(args), capture_output=True, text=True, timeout=60, check=False
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def kube_json(*args: str) -> dict:
    return json.loads(kubectl(*args, "-o", "json"))


def set_release(colour: str, weights: dict[str, str]) -> None:
    """What a release by hand leaves: the Service on a colour, the canary weights."""
    kubectl(
        "-n",
        NAMESPACE,
        "patch",
        "configmap",
        "veritas-traffic-config",
        "--type=merge",
        "-p",
        json.dumps({"data": weights}),
    )
    kubectl(
        "-n",
        NAMESPACE,
        "patch",
        "service",
        "veritas-runtime",
        "--type=merge",
        "-p",
        json.dumps({"spec": {"selector": {"deployment": colour}}}),
    )


def runtime_pods() -> list[dict]:
    pods = kube_json(
        "-n", NAMESPACE, "get", "pods", "-l", "app in (veritas,veritas-runtime)"
    )["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def wait_ready(timeout: float = 120) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        pods = runtime_pods()
        ready = [
            p
            for p in pods
            if p["status"].get("phase") == "Running"
            and any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in p["status"].get("conditions", [])
            )
        ]
        if pods and len(ready) == len(pods) and len(pods) >= 10:
            return pods
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"runtime pods not Ready after {timeout} s: {len(ready)}/{len(pods)}"
            )
        time.sleep(1)


def node_gpu_state() -> dict:
    nodes = kube_json("get", "nodes", "-l", "nvidia.com/gpu.present=true")["items"]
    return {
        n["metadata"]["name"]: {
            "taints": n["spec"].get("taints", []),
            "unschedulable": n["spec"].get("unschedulable", False),
            "gpus": n["status"].get("capacity", {}).get("nvidia.com/gpu"),
        }
        for n in nodes
    }


def deployment_templates() -> dict[str, str]:
    """Each runtime Deployment's pod template resources (a lowered memory limit is a fault left)."""
    items = kube_json("-n", NAMESPACE, "get", "deployments", "-l", "app in (veritas,veritas-runtime)")["items"]
    return {
        d["metadata"]["name"]: json.dumps(
            [c.get("resources", {}) for c in d["spec"]["template"]["spec"]["containers"]],
            sort_keys=True,
        )
        for d in items
    }


def faults_left(pods: list[dict]) -> dict[str, list[str]]:
    left = {}
    for pod in pods:
        out = kubectl(
            "-n",
            NAMESPACE,
            "exec",
            pod["metadata"]["name"],
            "--",
            "./cli",
            "fault",
            "list",
            "--json",
            check=False,
        )
        try:
            names = [f["name"] for f in json.loads(out or "[]")]
        except ValueError:
            names = [f"unreadable: {out[:80]!r}"]
        # HTTP errors and latency go through the pod's Envoy sidecar: its admin runtime keys.
        runtime = kubectl(
            "-n",
            NAMESPACE,
            "exec",
            pod["metadata"]["name"],
            "-c",
            "envoy",
            "--",
            "curl",
            "-sS",
            "--fail",
            "http://127.0.0.1:15000/runtime",
            check=False,
        )
        try:
            names += [f"envoy {key}" for key in json.loads(runtime or "{}")["entries"]]
        except (ValueError, KeyError):
            names.append(f"envoy unreadable: {runtime[:80]!r}")
        if names:
            left[pod["metadata"]["name"]] = names
    return left


def ledgers() -> list[dict]:
    return kube_json(
        "-n", NAMESPACE, "get", "configmaps", "-l", "veritas.chaos/ledger=true"
    )["items"]


def recorded_processes_alive(items: list[dict]) -> list[str]:
    alive = []
    for cm in items:
        for text in (cm.get("data") or {}).values():
            entry = json.loads(text)
            if entry.get("type") != "process":
                continue
            proc = entry["process"]
            try:
                stat = Path(f"/proc/{proc['pid']}/stat").read_text()
            except OSError:
                continue
            fields = stat.rpartition(")")[2].split()
            if int(fields[19]) == proc["start_ticks"] and fields[0] != "Z":
                alive.append(
                    f"{entry.get('what')} pid {proc['pid']} ({cm['metadata']['name']})"
                )
            if proc.get("group") == "workers":
                alive += [
                    f"worker pid {pid} of the killed run" for pid in workers_alive(proc)
                ]
    return alive


def workers_alive(controller: dict) -> list[int]:
    """Forked workers of a killed ansible-playbook: its command line, started after it."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        # Workers detach into their own sessions: orphans (parent 1) or the controller's group.
        if (
            (int(fields[2]) == controller["pgid"] or int(fields[1]) == 1)
            and fields[0] != "Z"
            and int(fields[19]) >= controller["start_ticks"]
            and hashlib.sha256(cmdline.rstrip(b"\0")).hexdigest()
            == controller.get("cmdline_sha256")
        ):
            pids.append(int(name))
    return pids


def controller_pid(ledger_names_before: set[str]) -> int | None:
    """The pid the run's pre-flight recorded in its new ledger (None before the ledger exists)."""
    for cm in ledgers():
        if cm["metadata"]["name"] in ledger_names_before:
            continue
        text = (cm["metadata"].get("annotations") or {}).get("veritas.chaos/controller")
        if text:
            return json.loads(text)["pid"]
    return None


def run_and_kill(
    playbook: str, kill_after: float, log_path: Path, journal: Path
) -> bool:
    """Run a game day; SIGKILL its ansible-playbook after kill_after s. True if it ended first."""
    with open(log_path, "w", encoding="utf-8") as log:
        game = subprocess.Popen(
            [
                str(REPO / ".venv" / "bin" / "ansible-playbook"),
                "-i",
                "inventories/lab",
                f"playbooks/{playbook}",
                "-e",
                "@molecule/shared/vars/windows.yml",
            ],
            cwd=REPO,
            env=dict(ENV, VERITAS_JOURNAL_DIR=str(journal)),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + kill_after
        while time.monotonic() < deadline and game.poll() is None:
            time.sleep(0.2)
        finished_first = game.poll() is not None
        if not finished_first:
            # The ansible-playbook alone, as a lost controller: its workers, rollback guard and
            # load generators live on, for the restore to find.
            game.send_signal(signal.SIGKILL)
        game.wait()
    return finished_first


def trial(
    index: int, name: str, playbook: str, kill_after: float, logs: Path
) -> tuple[bool, str]:
    set_release(RELEASE_COLOUR, RELEASE_WEIGHTS)
    wait_ready()
    nodes_before = node_gpu_state()
    templates_before = deployment_templates()
    before = {cm["metadata"]["name"] for cm in ledgers()}
    finished_first = run_and_kill(
        playbook,
        kill_after,
        logs / f"trial-{index:02d}-{name}.log",
        logs / f"journal-{index:02d}",
    )
    recorded_controller = controller_pid(before)
    restore = subprocess.run(
        [
            str(REPO / ".venv" / "bin" / "ansible-playbook"),
            "-i",
            "inventories/lab",
            "playbooks/restore-steady-state.yml",
        ],
        cwd=REPO,
        env=dict(ENV, VERITAS_JOURNAL_DIR=str(logs / f"journal-{index:02d}-restore")),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    (logs / f"trial-{index:02d}-{name}-restore.log").write_text(
        restore.stdout + restore.stderr
    )
    problems = []
    if restore.returncode != 0:
        problems.append(f"restore playbook rc {restore.returncode}")
    pods = wait_ready()
    service = kube_json("-n", NAMESPACE, "get", "service", "veritas-runtime")
    colour = service["spec"]["selector"].get("deployment")
    weights = kube_json("-n", NAMESPACE, "get", "configmap", "veritas-traffic-config")[
        "data"
    ]
    if colour != RELEASE_COLOUR:
        problems.append(f"Service on {colour}, not {RELEASE_COLOUR}")
    if {k: weights.get(k) for k in RELEASE_WEIGHTS} != RELEASE_WEIGHTS:
        problems.append(f"weights {weights}, not {RELEASE_WEIGHTS}")
    left = faults_left(pods)
    if left:
        problems.append(f"faults left {left}")
    if deployment_templates() != templates_before:
        problems.append(f"Deployment resources changed: {deployment_templates()} vs {templates_before}")
    if node_gpu_state() != nodes_before:
        problems.append(f"GPU nodes changed: {node_gpu_state()} vs {nodes_before}")
    policies = kube_json(
        "-n",
        NAMESPACE,
        "get",
        "networkpolicies",
        "-l",
        "app.kubernetes.io/managed-by=veritas.chaos",
    )["items"]
    if policies:
        problems.append(
            f"NetworkPolicies left {[p['metadata']['name'] for p in policies]}"
        )
    items = ledgers()
    open_ledgers = [
        cm["metadata"]["name"]
        for cm in items
        if cm["metadata"]["labels"].get("veritas.chaos/ledger-state") != "restored"
    ]
    if open_ledgers:
        problems.append(f"ledgers not restored {open_ledgers}")
    alive = recorded_processes_alive(items)
    if alive:
        problems.append(f"processes alive {alive}")
    leases = [
        l["metadata"]["name"]
        for l in kube_json("-n", NAMESPACE, "get", "leases")["items"]
        if l["metadata"]["name"].startswith("veritas-gameday-")
        and (l.get("spec") or {}).get("holderIdentity")
    ]
    if leases:
        problems.append(f"locks held {leases}")
    how = (
        "finished before the kill"
        if finished_first
        else f"killed at {kill_after:.1f} s"
    )
    if recorded_controller is None and not finished_first:
        how += " (before its ledger)"
    return not problems, f"{how}; " + (
        "; ".join(problems)
        if problems
        else f"back to {colour} and {weights['control']}/{weights['canary']}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--logs", default=str(REPO / "reports" / "kill-restore"))
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    logs = Path(args.logs)
    logs.mkdir(parents=True, exist_ok=True)
    print(f"kill-restore: {args.runs} trials, seed {seed}, logs {logs}", flush=True)
    passed = failed = 0
    try:
        for index in range(args.runs):
            name, playbook = GAMEDAYS[index % len(GAMEDAYS)]
            kill_after = round(rng.uniform(*KILL_AFTER), 1)
            start = time.monotonic()
            try:
                ok, detail = trial(index + 1, name, playbook, kill_after, logs)
            except (
                RuntimeError,
                OSError,
                ValueError,
                KeyError,
                subprocess.SubprocessError,
            ) as exc:
                # a trial that cannot even be judged is a failure
                ok, detail = False, f"error: {exc}"
            passed += ok
            failed += not ok
            print(
                f"{index + 1:3d} {name:28s} {'PASS' if ok else 'FAIL'} {time.monotonic() - start:5.1f} s  {detail}",
                flush=True,
            )
    finally:
        set_release(LAB_COLOUR, LAB_WEIGHTS)
        wait_ready()
    print(f"kill-restore: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

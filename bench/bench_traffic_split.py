#!/usr/bin/env python3
"""Benchmark: the same ConfigMap weight change through veritas.chaos.traffic_split and
kubernetes.core.k8s (state: patched), against the lab, many times each, alternating.

Every timed task really changes the ConfigMap (the weights alternate between two values), and
the two modules take turns so that drift in the cluster or the machine hits both alike. The
per-task time is the wall time ansible-playbook spends on the task (module transfer, Python
start, imports, API calls), measured by a small callback. Prints the median of each and the
ratio; writes everything to bench/results/.

Usage: .venv/bin/python bench/bench_traffic_split.py [--pairs 40] [--kubeconfig .lab/kubeconfig]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OURS = "veritas.chaos.traffic_split"
THEIRS = "kubernetes.core.k8s"
WEIGHTS = ((90, 10), (80, 20))


def ours_task(index: int, namespace: str, control: int, canary: int) -> str:
    return f"""
        - name: bench ours {index}
          {OURS}:
            namespace: {namespace}
            control: {control}
            canary: {canary}
"""


def theirs_task(index: int, namespace: str, control: int, canary: int) -> str:
    return f"""
        - name: bench theirs {index}
          {THEIRS}:
            state: patched
            definition:
              apiVersion: v1
              kind: ConfigMap
              metadata:
                name: veritas-traffic-config
                namespace: {namespace}
              data:
                control: "{control}"
                canary: "{canary}"
"""


def build_playbook(namespace: str, pairs: int) -> str:
    tasks = []
    step = 0
    # One untimed warm-up of each first (connection setup, kubernetes.core's discovery cache).
    for index in range(-1, pairs):
        for who in ("ours", "theirs") if index % 2 == 0 else ("theirs", "ours"):
            control, canary = WEIGHTS[step % 2]
            step += 1
            label = "warmup" if index < 0 else str(index)
            task = ours_task if who == "ours" else theirs_task
            text = task(0, namespace, control, canary).replace(
                "bench ours 0", f"bench ours {label}"
            )
            text = text.replace("bench theirs 0", f"bench theirs {label}")
            tasks.append(text)
    return f"""---
- name: Benchmark traffic_split against kubernetes.core.k8s
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Benchmark in a throwaway namespace
      block:
        - name: Create the namespace
          kubernetes.core.k8s:
            definition:
              apiVersion: v1
              kind: Namespace
              metadata:
                name: {namespace}
                labels:
                  environment: bench
        - name: Create the traffic ConfigMap
          kubernetes.core.k8s:
            definition:
              apiVersion: v1
              kind: ConfigMap
              metadata:
                name: veritas-traffic-config
                namespace: {namespace}
              data:
                control: "100"
                canary: "0"
{"".join(tasks)}
      always:
        - name: Delete the namespace
          kubernetes.core.k8s:
            api_version: v1
            kind: Namespace
            name: {namespace}
            state: absent
"""


def import_seconds(module: str, repeats: int = 5) -> float:
    """Median wall time of a fresh Python importing the module (its whole import graph)."""
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, ".collections"))
    code = f"import {module}"
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=env)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--pairs", type=int, default=40, help="timed runs of each module (default 40)"
    )
    parser.add_argument(
        "--kubeconfig", default=os.path.join(REPO, ".lab", "kubeconfig")
    )
    args = parser.parse_args()
    if not os.path.exists(args.kubeconfig):
        print(
            f"bench: no kubeconfig at {args.kubeconfig}; run make lab-up first",
            file=sys.stderr,
        )
        return 2

    namespace = "vc-bench-" + secrets.token_hex(4)
    results_dir = os.path.join(REPO, "bench", "results")
    os.makedirs(results_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="veritas-bench-") as work:
        playbook = os.path.join(work, "bench.yml")
        timings = os.path.join(work, "timings.json")
        with open(playbook, "w", encoding="utf-8") as handle:
            handle.write(build_playbook(namespace, args.pairs))
        env = dict(
            os.environ,
            ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
            ANSIBLE_CALLBACK_PLUGINS=os.path.join(REPO, "bench", "callback_plugins"),
            ANSIBLE_CALLBACKS_ENABLED="bench_timer",
            ANSIBLE_STDOUT_CALLBACK="ansible.builtin.null",
            BENCH_TIMINGS_FILE=timings,
            K8S_AUTH_KUBECONFIG=args.kubeconfig,
            PATH=os.path.join(REPO, ".venv", "bin")
            + os.pathsep
            + os.environ.get("PATH", ""),
        )
        started = time.perf_counter()
        run = subprocess.run(  # noqa: PLW1510 - the return code is checked below
            [
                os.path.join(REPO, ".venv", "bin", "ansible-playbook"),
                "-i",
                os.path.join(REPO, "inventories", "lab"),
                playbook,
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - started
        if run.returncode != 0 or not os.path.exists(timings):
            print(run.stdout[-4000:], run.stderr[-4000:], sep="\n", file=sys.stderr)
            return 1
        with open(timings, encoding="utf-8") as handle:
            rows = json.load(handle)

    timed = [row for row in rows if not row["task"].endswith("warmup")]
    problems = [row for row in timed if row["status"] != "ok" or not row["changed"]]
    ours = [row["seconds"] for row in timed if row["task"].startswith("bench ours")]
    theirs = [row["seconds"] for row in timed if row["task"].startswith("bench theirs")]
    median_ours, median_theirs = statistics.median(ours), statistics.median(theirs)
    imports = {
        OURS: import_seconds(
            "ansible_collections.veritas.chaos.plugins.modules.traffic_split"
        ),
        THEIRS: import_seconds(
            "ansible_collections.kubernetes.core.plugins.modules.k8s, "
            "ansible_collections.kubernetes.core.plugins.module_utils.k8s.client, "
            "ansible_collections.kubernetes.core.plugins.module_utils.k8s.runner"
        ),
    }
    report = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(),
        "pairs": args.pairs,
        "namespace": namespace,
        "median_seconds": {OURS: median_ours, THEIRS: median_theirs},
        "p90_seconds": {
            OURS: statistics.quantiles(ours, n=10)[-1],
            THEIRS: statistics.quantiles(theirs, n=10)[-1],
        },
        "ratio_ours_over_theirs": median_ours / median_theirs,
        "import_seconds": imports,
        "tasks_not_ok_or_unchanged": problems,
        "playbook_wall_seconds": wall,
        "samples": {OURS: ours, THEIRS: theirs},
    }
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = os.path.join(results_dir, f"traffic_split-{stamp}.json")
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=1)

    print(
        f"ConfigMap weight change, {args.pairs} runs each, alternating (every run changed the ConfigMap)"
    )
    print(
        f"  {OURS:<30} median {median_ours * 1000:7.1f} ms   p90 {report['p90_seconds'][OURS] * 1000:7.1f} ms"
    )
    print(
        f"  {THEIRS:<30} median {median_theirs * 1000:7.1f} ms   p90 {report['p90_seconds'][THEIRS] * 1000:7.1f} ms"
    )
    print(
        f"  ratio ours/theirs: {report['ratio_ours_over_theirs']:.2f} (target <= 1.00)"
    )
    print(
        f"  Python import of the module's graph: ours {imports[OURS] * 1000:.0f} ms, theirs {imports[THEIRS] * 1000:.0f} ms"
    )
    if problems:
        print(
            f"  WARNING: {len(problems)} timed task(s) failed or did not change anything",
            file=sys.stderr,
        )
    print(f"  results: {os.path.relpath(out, REPO)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

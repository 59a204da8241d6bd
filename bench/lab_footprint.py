#!/usr/bin/env python3
"""Resident memory of the running lab, per component and in total (issue 4's target: < 2 GiB
at rest with 10 runtime pods). Reads /proc; run with the lab up:  python bench/lab_footprint.py
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# (component, substring of the command line); the first match names a process.
COMPONENTS = [
    ("kube-apiserver", "/bin/kube-apiserver"),
    ("kube-controller-manager", "/bin/kube-controller-manager"),
    ("kube-scheduler", "/bin/kube-scheduler"),
    ("etcd", "/bin/etcd"),
    ("kwok-controller", "/bin/kwok-controller"),
    ("runtime pods", "lab/runtime/veritas_runtime.py"),
    ("supervisor", "lab/supervisor/supervisor.py"),
    ("haproxy", "haproxy"),
    ("dataplane controller", "lab/dataplane/dataplane.py"),
    ("prometheus", "prometheus "),
    ("alertmanager", "alertmanager"),
    ("alert webhook", "lab/observability/webhook.py"),
    ("rollback controller", "lab/rollback_controller/controller.py"),
]


def processes():
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            status = (entry / "status").read_text()
        except OSError:
            continue
        rss_kib = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
        yield int(entry.name), cmd, rss_kib


def classify(cmd: str, lab_dir: str) -> str | None:
    """The lab component a command line belongs to, or None (pure, for reading and testing)."""
    if lab_dir not in cmd and str(REPO / "lab") not in cmd:
        return None
    for name, needle in COMPONENTS:
        if needle in cmd:
            return name
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lab-dir", default=os.environ.get("LAB_DIR", str(REPO / ".lab")))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    totals: dict[str, list[int]] = {}
    for pid, cmd, rss in processes():
        if pid == os.getpid():
            continue
        name = classify(cmd, args.lab_dir)
        if name:
            totals.setdefault(name, []).append(rss)
    report = {name: {"processes": len(v), "rss_mib": round(sum(v) / 1024, 1)} for name, v in totals.items()}
    total = round(sum(c["rss_mib"] for c in report.values()), 1)
    if args.json:
        print(json.dumps({"components": report, "total_rss_mib": total}, indent=2))
    else:
        for name, c in sorted(report.items(), key=lambda kv: -kv[1]["rss_mib"]):
            print(f"{name:26} {c['processes']:3d} proc  {c['rss_mib']:8.1f} MiB")
        print(f"{'total':26} {sum(c['processes'] for c in report.values()):3d} proc  {total:8.1f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

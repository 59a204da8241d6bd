#!/usr/bin/env python3
"""The data plane's added latency: the same requests at the same rate, straight to the backends
and through HAProxy, at the same time; median / P90 / P99 of each and the difference.

  bench/bench_proxy_latency.py                      private HAProxy (the lab's configuration on
                                                    free ports) in front of local backends
  bench/bench_proxy_latency.py --lab                the lab's proxy (blue-green frontend) and the
                                                    lab's runtime pods behind it (make lab-up)
  options: --rate 100 --duration 30 --path /health --json out.json

Open loop: request i of each stream is due at start + i/rate; keep-alive connections on both
paths (as a client of the proxy would have). Target: added median and P99 under 2 ms.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lab" / "dataplane"))

import dataplane
import harness


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(p / 100 * (len(xs) - 1))))]


def stream(
    targets: list[tuple[str, int]],
    path: str,
    rate: float,
    duration: float,
    start: float,
    out: list,
    workers: int = 4,
):
    """Paced GETs; request i goes to targets[i % len(targets)]; latency in ms into out."""
    q: queue.Queue = queue.Queue()
    lock = threading.Lock()

    def worker():
        conns: dict = {}
        while (i := q.get()) is not None:
            due = start + i / rate
            if (d := due - time.monotonic()) > 0:
                time.sleep(d)
            host, port = targets[i % len(targets)]
            for _ in (1, 2):
                c = conns.get((host, port)) or http.client.HTTPConnection(
                    host, port, timeout=10
                )
                conns[(host, port)] = c
                t0 = time.perf_counter()
                try:
                    c.request("GET", path)
                    r = c.getresponse()
                    r.read()
                    ms = (time.perf_counter() - t0) * 1000
                    with lock:
                        out.append((ms, r.status))
                    break
                except (OSError, http.client.HTTPException):
                    c.close()
                    conns.pop((host, port), None)

    ts = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    for t in ts:
        t.start()
    for i in range(int(rate * duration)):
        q.put(i)
    for _ in ts:
        q.put(None)
    return ts


def measure(
    proxy: tuple[str, int],
    direct: list[tuple[str, int]],
    path: str,
    rate: float,
    duration: float,
):
    via, straight = [], []
    start = time.monotonic() + 0.2
    ts = stream([proxy], path, rate, duration, start, via)
    # the direct stream is offset by half a period so the two do not contend for the same instant
    ts += stream(direct, path, rate, duration, start + 0.5 / rate, straight)
    for t in ts:
        t.join(duration + 60)

    def summary(xs):
        lat = [ms for ms, _ in xs]
        return {
            "n": len(xs),
            "ok": sum(1 for _, s in xs if s < 500),
            "median_ms": round(statistics.median(lat), 3),
            "p90_ms": round(pct(lat, 90), 3),
            "p99_ms": round(pct(lat, 99), 3),
            "max_ms": round(max(lat), 3),
        }

    res = {
        "rate": rate,
        "duration_s": duration,
        "path": path,
        "direct": summary(straight),
        "proxied": summary(via),
    }
    res["added_median_ms"] = round(
        res["proxied"]["median_ms"] - res["direct"]["median_ms"], 3
    )
    res["added_p99_ms"] = round(res["proxied"]["p99_ms"] - res["direct"]["p99_ms"], 3)
    return res


def _serve_backends(n: int, conn) -> None:
    backs = [harness.Backend(f"b{i}") for i in range(n)]
    conn.send([b.port for b in backs])
    conn.recv()  # until the parent is done


def private(args):
    import multiprocessing

    # the backends run in their own process, so that they do not share the client's GIL
    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.Process(target=_serve_backends, args=(3, child), daemon=True)
    proc.start()
    ports = parent.recv()
    with tempfile.TemporaryDirectory() as tmp:
        hp = harness.PrivateHAProxy(Path(tmp)).start()
        try:
            for i, port in enumerate(ports):
                hp.api.checked(f"add server blue/b{i} 127.0.0.1:{port} weight 1")
                hp.api.checked(f"set server blue/b{i} state ready")
            hp.api.checked(f"set map {tmp}/bluegreen.map active blue")
            front = hp.cfg["haproxy"]["bluegreen_port"]
            return measure(
                ("127.0.0.1", front),
                [("127.0.0.1", p) for p in ports],
                args.path,
                args.rate,
                args.duration,
            )
        finally:
            hp.stop()
            parent.send("done")
            proc.join(5)


def lab(args):
    cfg = dataplane.load_config()
    st = json.loads(
        (REPO / ".lab" / "run" / "dataplane" / "controller-status.json").read_text()
    )
    sel = st["selector"] or {}
    pods = [
        tuple(p["address"])
        for p in st["pods"].values()
        if p["ready"]
        and p["address"]
        and sel
        and all(p["labels"].get(k) == v for k, v in sel.items())
    ]
    if not pods:
        sys.exit("no Ready pod behind the lab's blue-green Service")
    return measure(
        (cfg["haproxy"]["bind"], cfg["haproxy"]["bluegreen_port"]),
        [(h, int(p)) for h, p in pods],
        args.path,
        args.rate,
        args.duration,
    )


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    ap.add_argument("--lab", action="store_true")
    ap.add_argument("--rate", type=float, default=100)
    ap.add_argument("--duration", type=float, default=30)
    ap.add_argument("--path", default="/health")
    ap.add_argument("--json", help="also write the result here")
    args = ap.parse_args()
    res = lab(args) if args.lab else private(args)
    res["mode"] = "lab" if args.lab else "private"
    res["haproxy"] = os.popen("haproxy -v | head -1").read().strip()
    print(json.dumps(res, indent=1))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=1))
    ok = res["added_median_ms"] < 2 and res["added_p99_ms"] < 2
    print(
        f"added latency: median {res['added_median_ms']} ms, P99 {res['added_p99_ms']} ms "
        f"({'within' if ok else 'OVER'} the 2 ms target)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

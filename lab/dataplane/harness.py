"""Helpers to run a private HAProxy of the data plane (tests, bench): free ports, a rendered
configuration in a scratch directory, small HTTP backends that say who they are."""

from __future__ import annotations

import copy
import http.server
import json
import socket
import subprocess
import threading
import time
from pathlib import Path

import dataplane


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):  # peers resetting kept-alive connections
        pass


class Backend:
    """A threaded HTTP server on 127.0.0.1 that answers every request with its name, and a
    configurable status code; counts what it served."""

    def __init__(self, name: str, status: int = 200):
        self.name = name
        self.status = status
        self.hits = 0
        self.lock = threading.Lock()
        backend = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = 65536  # headers and body in one write (no Nagle / delayed-ACK stalls)
            disable_nagle_algorithm = True

            def log_message(self, *a):
                pass

            def _answer(self):
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                with backend.lock:
                    backend.hits += 1
                body = json.dumps({"backend": backend.name}).encode()
                self.send_response(backend.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = _answer
            do_POST = _answer

        self.server = _QuietServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.address = f"127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class PrivateHAProxy:
    """HAProxy with the lab's configuration on free ports, its runtime API in run_dir."""

    def __init__(self, run_dir: Path, cfg: dict | None = None, namespace: str | None = None):
        self.cfg = copy.deepcopy(cfg or dataplane.load_config())
        h = self.cfg["haproxy"]
        h["bluegreen_port"], h["stats_port"] = free_port(), free_port()
        for f in dataplane.canary_frontends(self.cfg):
            h[f"{f['name']}_port"] = free_port()
        if namespace:  # every topology in the one namespace of the test
            self.cfg["namespace"] = namespace
            for f in dataplane.canary_frontends(self.cfg):
                self.cfg[f["name"]]["namespace"] = namespace
        self.run_dir = Path(run_dir)
        self.cfg_path = dataplane.render(self.cfg, self.run_dir)
        self.log_path = self.run_dir / "haproxy.log"
        self.addr = dataplane.addresses(self.cfg)
        self.api = dataplane.HAProxyAPI(self.run_dir / "haproxy.sock")
        self.proc = None

    def start(self):
        with open(self.log_path, "ab") as logf:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                ["haproxy", "-db", "-f", str(self.cfg_path)], stdout=logf, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"haproxy exited: {self.log_path.read_text()}")
            try:
                self.api.info()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("haproxy runtime API did not come up")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def access_log(self) -> list[dict]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out

    def config_file(self) -> Path:
        p = self.run_dir / "dataplane.yml"
        import yaml

        p.write_text(yaml.safe_dump(self.cfg))
        return p



def paced_load(url: str, rate: float, duration: float, body: dict | None = None, workers: int = 16,
               timeout: float = 10.0) -> list[dict]:
    """Open-loop load: request i is due at start + i/rate. Returns one record per request:
    {"due", "sent", "done" (monotonic s from start), "status", "variant", "pod"}."""
    import http.client
    import queue
    from urllib.parse import urlparse

    u = urlparse(url)
    path = u.path or "/"
    data = json.dumps(body or {"prompt": "hello", "max_tokens": 4}).encode()
    n = int(rate * duration)
    q: queue.Queue = queue.Queue()
    records: list[dict] = []
    lock = threading.Lock()
    start = time.monotonic() + 0.05

    def worker():
        conn = None
        while True:
            i = q.get()
            if i is None:
                return
            due = start + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sent = time.monotonic()
            rec = {"due": due - start, "sent": sent - start, "status": 0, "variant": None, "pod": None}
            for attempt in (1, 2):  # a kept-alive connection the server just closed: once more
                reused = conn is not None
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
                    conn.request("POST", path, body=data, headers={"Content-Type": "application/json"})
                    r = conn.getresponse()
                    r.read()
                    rec.update(status=r.status, variant=r.getheader("X-Veritas-Variant"),
                               pod=r.getheader("X-Veritas-Pod"))
                    if r.getheader("Connection", "").lower() == "close":
                        conn.close()
                        conn = None
                    break
                except (OSError, http.client.HTTPException):
                    if conn is not None:
                        conn.close()
                    conn = None
                    if not reused or attempt == 2:
                        break
            rec["done"] = time.monotonic() - start
            with lock:
                records.append(rec)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    for t in threads:
        t.start()
    for i in range(n):
        q.put(i)
    for _ in threads:
        q.put(None)
    for t in threads:
        t.join(duration + timeout + 30)
    return sorted(records, key=lambda r: r["due"])

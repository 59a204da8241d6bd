"""Starting and stopping one runtime process outside the cluster (tests, benchmarks)."""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Self

RUNTIME = Path(__file__).resolve().parent / "veritas_runtime.py"
CLI = Path(__file__).resolve().parent / "bin" / "cli"
_LISTENING = re.compile(r" listening 127\.0\.0\.1:(\d+) ")


class RuntimeProcess:
    """A runtime on an ephemeral 127.0.0.1 port; `addr` is host:port once started."""

    def __init__(self, env: dict[str, str] | None = None, log_file: str | None = None,
                 python: str | None = None):
        self.env = {k: str(v) for k, v in (env or {}).items()}
        self.log_file = log_file
        self.python = python or sys.executable
        self.proc: subprocess.Popen | None = None
        self.addr = ""
        self.lines: list[str] = []

    def start(self, timeout: float = 10.0) -> Self:
        env = {**os.environ, "VERITAS_RUNTIME_ADDR": "127.0.0.1:0", **self.env}
        if self.log_file:
            env["VERITAS_LOG_FILE"] = self.log_file
        self.proc = subprocess.Popen([self.python, "-S", str(RUNTIME)], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"runtime exited with {self.proc.wait()}: {''.join(self.lines)}")
            self.lines.append(line)
            m = _LISTENING.search(line)
            if m:
                self.addr = f"127.0.0.1:{m.group(1)}"
                threading.Thread(target=self._drain, daemon=True).start()
                return self
        raise RuntimeError("runtime did not start listening in time")

    def _drain(self) -> None:
        # Keeps reading the process's stdout so that its log writes never block.
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def output(self) -> str:
        return "".join(self.lines)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def request(self, method: str, path: str, body: dict | None = None,
                headers: dict | None = None, timeout: float = 10.0) -> tuple[int, dict, object]:
        """Returns (status, response headers, JSON body or text)."""
        host, port = self.addr.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
        try:
            payload = json.dumps(body) if body is not None else None
            conn.request(method, path, body=payload,
                         headers={"Content-Type": "application/json", **(headers or {})})
            resp = conn.getresponse()
            raw = resp.read().decode()
            hdrs = {k.lower(): v for k, v in resp.getheaders()}
            data: object = raw
            if hdrs.get("content-type", "").startswith("application/json"):
                data = json.loads(raw)
            return resp.status, hdrs, data
        finally:
            conn.close()

    def complete(self, prompt: str, max_tokens: int = 8, **extra: object) -> tuple[int, dict, dict]:
        status, hdrs, data = self.request("POST", "/v1/completions",
                                          {"prompt": prompt, "max_tokens": max_tokens, **extra})
        assert isinstance(data, dict)
        return status, hdrs, data

    def cli(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
        env = {**os.environ, "VERITAS_RUNTIME_ADDR": self.addr}
        return subprocess.run([str(CLI), *args], env=env, capture_output=True, text=True,
                              timeout=timeout, check=False)


def metric_samples(text: str, name: str) -> list[tuple[dict, float]]:
    """Samples of one series name from a Prometheus text exposition."""
    out = []
    pattern = re.compile(r"^" + re.escape(name) + r"(\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")
    for line in text.splitlines():
        m = pattern.match(line)
        if m:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group("labels") or ""))
            out.append((labels, float(m.group("value"))))
    return out

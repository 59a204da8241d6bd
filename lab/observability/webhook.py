#!/usr/bin/env python3
"""Alertmanager webhook receiver of the lab: keeps every alert it is sent.

  POST /alerts          Alertmanager webhook payload (version 4); each alert becomes one record
  GET  /alerts          the records, oldest first; filters (all optional):
                          ?alertname=X&status=firing|resolved&since=EPOCH&limit=N
                          and any other ?key=value is matched against the alert's labels
  GET  /health          200 "ok"

Records are appended to a JSONL file (one JSON object a line) that survives restarts:
  {"received": epoch_s, "status", "alertname", "labels", "annotations", "startsAt", "endsAt",
   "fingerprint", "generatorURL", "receiver", "groupKey"}
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse


class Store:
    def __init__(self, path: Path):
        self.path = path
        self.lock = threading.Lock()
        self.records: list[dict] = []
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            for line in path.read_text().splitlines():
                try:
                    self.records.append(json.loads(line))
                except ValueError:
                    continue

    def add(self, payload: dict) -> int:
        now = time.time()
        recs = []
        for a in payload.get("alerts") or []:
            labels = a.get("labels") or {}
            recs.append({
                "received": now,
                "status": a.get("status") or payload.get("status"),
                "alertname": labels.get("alertname"),
                "labels": labels,
                "annotations": a.get("annotations") or {},
                "startsAt": a.get("startsAt"),
                "endsAt": a.get("endsAt"),
                "fingerprint": a.get("fingerprint"),
                "generatorURL": a.get("generatorURL"),
                "receiver": payload.get("receiver"),
                "groupKey": payload.get("groupKey"),
            })
        with self.lock:
            with open(self.path, "a") as fh:
                fh.writelines(json.dumps(r, sort_keys=True) + "\n" for r in recs)
            self.records.extend(recs)
        return len(recs)

    def query(self, q: dict[str, str]) -> list[dict]:
        q = dict(q)
        name = q.pop("alertname", None)
        status = q.pop("status", None)
        since = float(q.pop("since", 0) or 0)
        limit = int(q.pop("limit", 0) or 0)
        with self.lock:
            out = [
                r for r in self.records
                if (name is None or r["alertname"] == name)
                and (status is None or r["status"] == status)
                and r["received"] >= since
                and all(r["labels"].get(k) == v for k, v in q.items())
            ]
        return out[-limit:] if limit else out


def make_handler(store: Store):
    class Handler(BaseHTTPRequestHandler):
        server_version = "veritas-alert-webhook/1"

        def log_message(self, fmt, *args):  # quiet: the JSONL file is the record
            pass

        def _send(self, code: int, body: object):
            data = (json.dumps(body) if not isinstance(body, str) else body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json" if not isinstance(body, str) else "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            u = urlparse(self.path)
            if u.path == "/health":
                self._send(200, "ok\n")
            elif u.path == "/alerts":
                q = {k: v[-1] for k, v in parse_qs(u.query).items()}
                try:
                    recs = store.query(q)
                except ValueError as e:
                    self._send(400, {"error": str(e)})
                    return
                self._send(200, {"alerts": recs, "count": len(recs)})
            else:
                self._send(404, {"error": "not found"})

        def do_POST(self):
            if urlparse(self.path).path != "/alerts":
                self._send(404, {"error": "not found"})
                return
            n = int(self.headers.get("Content-Length") or 0)
            try:
                payload = json.loads(self.rfile.read(n) or b"{}")
            except ValueError:
                self._send(400, {"error": "invalid JSON"})
                return
            self._send(200, {"stored": store.add(payload)})

    return Handler


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--listen", default="127.0.0.1:19095")
    ap.add_argument("--store", required=True, help="JSONL file of the alerts")
    a = ap.parse_args(argv)
    host, _, port = a.listen.rpartition(":")
    srv = ThreadingHTTPServer((host, int(port)), make_handler(Store(Path(a.store))))
    srv.daemon_threads = True
    print(f"alert webhook on http://{a.listen}/alerts, store {a.store}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

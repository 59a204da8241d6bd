"""A tiny Prometheus on 127.0.0.1 speaking the instant-query API (/api/v1/query).

Close enough to test the clients' parsing and error paths (_prometheus, _prom_confirm); the
lab's real Prometheus is used by the integration target.
"""

from __future__ import annotations

import json
import socket
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

EMPTY_VECTOR = {"status": "success", "data": {"resultType": "vector", "result": []}}


class PromStub:
    """Answers by query text: a dict payload, (status, payload) or 'hang'."""

    def __init__(self) -> None:
        self.answers: dict[str, object] = {}
        self.requests: list[dict[str, list[str]]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                url = urllib.parse.urlparse(self.path)
                params = urllib.parse.parse_qs(url.query)
                stub.requests.append(
                    dict(
                        params,
                        _path=[url.path],
                        _auth=[self.headers.get("Authorization", "")],
                    )
                )
                answer = stub.answers.get(params.get("query", [""])[0], EMPTY_VECTOR)
                status = 200
                if isinstance(answer, tuple):
                    status, answer = answer
                body = (
                    answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                )
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.02},
            daemon=True,
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]

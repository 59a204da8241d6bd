# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""http_load against a real local HTTP(S) server that answers like an OpenAI completions endpoint.

The servers listen on 127.0.0.1, port 0 (an ephemeral port). The run's engine is exercised in
this process (run_load), the module's main() for the options and both states; the end-to-end
tests start the real detached process (its server then runs in a subprocess, so that the fork
happens in a process without other threads, as under ansible).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.veritas.chaos.plugins.module_utils import _ledger
from ansible_collections.veritas.chaos.plugins.module_utils._loadstats import (
    summarize_run,
)
from ansible_collections.veritas.chaos.plugins.modules import http_load

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[3]
FIELDS = {
    "seq",
    "due",
    "sent",
    "done",
    "latency_ms",
    "latency_from_due_ms",
    "status",
    "variant",
    "pod",
    "error",
    "correct",
    "prompt_index",
    "answer",
}


# ---------------------------------------------------------------- the fake endpoint


def answer_text(prompt: str) -> str:
    return "answer " + hashlib.sha256(prompt.encode()).hexdigest()[:12]


class Handler(BaseHTTPRequestHandler):
    """POST /v1/completions: {"choices": [{"text": ...}]} with the X-Veritas-* headers.

    The server's attributes steer it: ``changed`` (prompt -> another text), ``fail`` (prompt ->
    status), ``variant``; it counts requests in ``hits``.
    """

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # silence
        pass

    def do_POST(self):
        server = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body.get("prompt", "")
        with server.lock:
            server.hits += 1
            server.bodies.append(body)
            server.auth.add(self.headers.get("Authorization"))
        status = server.fail.get(prompt, 200)
        if status != 200:
            payload = {"error": {"message": "injected failure"}}
        else:
            text = server.changed.get(prompt) or answer_text(prompt)
            payload = {"model": "m", "choices": [{"index": 0, "text": text}]}
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Veritas-Variant", server.variant)
        self.send_header("X-Veritas-Pod", server.variant + "-0")
        self.end_headers()
        self.wfile.write(data)


def make_server(context: ssl.SSLContext | None = None) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.lock = threading.Lock()
    server.hits = 0
    server.bodies = []
    server.auth = set()
    server.changed = {}
    server.fail = {}
    server.variant = "control"
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    return server


@pytest.fixture
def endpoint():
    server = make_server()
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}
    )
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/v1/completions"
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def serve_on_stdout() -> None:  # pragma: no cover - runs in the subprocess
    """The endpoint in a process of its own: prints its port, serves until stdin closes."""
    server = make_server()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.server_address[1], flush=True)
    sys.stdin.read()


@pytest.fixture
def endpoint_process():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    code = f"import sys; sys.path.insert(0, {str(HERE)!r}); import test_http_load as t; t.serve_on_stdout()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    port = int(proc.stdout.readline())
    yield f"http://127.0.0.1:{port}/v1/completions"
    proc.stdin.close()
    proc.wait(5)


# ---------------------------------------------------------------- helpers


def params(**over):
    """The module's parameters with their defaults, as AnsibleModule would pass them."""
    base = {name: spec.get("default") for name, spec in http_load.ARGUMENT_SPEC.items()}
    base.update(over)
    return base


def run_plan(**over):
    """One whole run in this process; (records, plan)."""
    plan = http_load.build_plan(params(**over))
    records, stopped = http_load.run_load(plan)
    assert not stopped
    return records, plan


def run_sync(**over):
    """The records of one whole run in this process."""
    return run_plan(**over)[0]


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line]


@pytest.fixture
def run_main(capsys):
    """main() with module args; returns the JSON result (failed or not)."""

    def run(args, check_mode=False):
        args = dict(args, _ansible_check_mode=check_mode)
        with patch_module_args(args), pytest.raises(SystemExit):
            http_load.main()
        return json.loads(capsys.readouterr().out)

    return run


@pytest.fixture
def no_fork(monkeypatch):
    """Fails the test if anything forks (a run started)."""

    def refuse():
        raise AssertionError("a load process was started")

    monkeypatch.setattr(http_load.os, "fork", refuse)


def wait_gone(pid, ticks, seconds=5.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if http_load.process_start_ticks(pid) != ticks:
            return True
        time.sleep(0.05)
    return False


# ---------------------------------------------------------------- the run


def test_rate_and_duration_make_the_request_count_and_every_record_has_the_fields(
    endpoint,
):
    started = time.monotonic()
    records, plan = run_plan(url=endpoint.url, rate=40, duration=1, prompt_count=8)
    elapsed = time.monotonic() - started

    assert plan["requests"] == 40
    assert len(records) == 40
    assert endpoint.hits == 40
    assert [r["seq"] for r in records] == list(range(40))
    assert 0.9 <= elapsed < 4  # open loop: 40 requests at 40/s take about a second
    for rec in records:
        assert set(rec) == FIELDS
        assert rec["status"] == 200
        assert rec["error"] == ""
        assert rec["variant"] == "control"
        assert rec["pod"] == "control-0"
        assert rec["prompt_index"] == rec["seq"] % 8
        text = answer_text(f"veritas lab prompt {rec['prompt_index']}")
        assert rec["answer"] == hashlib.sha256(text.encode()).hexdigest()[:16]
        assert rec["correct"] is None
        assert rec["due"] <= rec["sent"] <= rec["done"]
        assert rec["latency_ms"] >= 0
        assert rec["latency_from_due_ms"] >= rec["latency_ms"] - 1
    # Open loop: request i is due at start + i/rate.
    assert records[-1]["due"] - records[0]["due"] == pytest.approx(39 / 40, abs=1e-6)
    # The default body: the OpenAI completions request of the lab corpus, no model when none is set.
    assert endpoint.bodies[0] == {
        "prompt": "veritas lab prompt 0",
        "max_tokens": 16,
        "temperature": 0,
    }
    summary = summarize_run(records)
    assert summary["total"] == 40
    assert summary["ok"] == 40
    assert summary["measured"] is True
    assert summary["variants"]["control"]["count"] == 40


def test_a_500_is_an_error_with_its_status(endpoint):
    endpoint.fail["veritas lab prompt 2"] = 500
    records = run_sync(url=endpoint.url, rate=100, duration=0.4, prompt_count=4)

    failed = [r for r in records if r["prompt_index"] == 2]
    assert len(records) == 40
    assert len(failed) == 10
    for rec in failed:
        assert rec["status"] == 500
        assert rec["error"].startswith("HTTP 500: ")
        assert rec["answer"] is None
        assert rec["correct"] is None
    summary = summarize_run(records)
    assert summary["errors"] == 10
    assert summary["http_5xx"] == 10
    assert summary["error_ratio"] == 0.25


def test_verify_against_marks_a_changed_answer_false(endpoint, tmp_path):
    reference = tmp_path / "before.jsonl"
    first = run_sync(url=endpoint.url, rate=100, duration=0.3, prompt_count=4)
    reference.write_text("".join(json.dumps(r) + "\n" for r in first))
    endpoint.changed["veritas lab prompt 3"] = "a different answer"

    records, plan = run_plan(
        url=endpoint.url,
        rate=100,
        duration=0.4,
        prompt_count=5,
        verify_against=str(reference),
    )

    assert sorted(plan["references"]) == [0, 1, 2, 3]
    by_index = {}
    for rec in records:
        by_index.setdefault(rec["prompt_index"], set()).add(rec["correct"])
    assert by_index == {0: {True}, 1: {True}, 2: {True}, 3: {False}, 4: {None}}
    summary = summarize_run(records)
    assert summary["checked"] == 32
    assert summary["wrong_answers"] == 8


def test_references_are_the_most_common_answer_of_2xx_records():
    rows = [
        {"status": 200, "prompt_index": 0, "answer": "aa"},
        {"status": 200, "prompt_index": 0, "answer": "bb"},
        {"status": 200, "prompt_index": 0, "answer": "bb"},
        {"status": 500, "prompt_index": 1, "answer": "cc"},
        {"status": 200, "prompt_index": 2, "answer": None},
        {"status": 200, "prompt_index": 3, "answer": "ff"},
        {"status": 200, "prompt_index": 3, "answer": "ee"},
    ]
    assert http_load.reference_answers(rows) == {0: "bb", 3: "ee"}


def test_verify_against_a_file_without_answers_starts_nothing(
    tmp_path, run_main, no_fork
):
    reference = tmp_path / "lab.jsonl"
    reference.write_text(json.dumps({"seq": 0, "status": 200, "sent": 1.0}) + "\n")
    result = run_main(
        {
            "url": "http://127.0.0.1:9/v1/completions",
            "rate": 10,
            "duration": 1,
            "records": str(tmp_path / "run.jsonl"),
            "verify_against": str(reference),
        }
    )
    assert result["failed"]
    assert result["field"] == "verify_against"
    assert not (tmp_path / "run.jsonl").exists()


def test_body_templates():
    values = {
        "model": None,
        "prompt": "p 1",
        "max_tokens": 8,
        "prompt_index": 1,
        "seq": 9,
    }
    assert http_load.render(http_load.DEFAULT_BODY, values) == {
        "prompt": "p 1",
        "max_tokens": 8,
        "temperature": 0,
    }
    chat = {
        "model": "{model}",
        "messages": [{"role": "user", "content": "say {prompt} ({seq})"}],
        "max_tokens": "{max_tokens}",
    }
    assert http_load.render(chat, dict(values, model="m")) == {
        "model": "m",
        "messages": [{"role": "user", "content": "say p 1 (9)"}],
        "max_tokens": 8,
    }
    assert http_load.body_template('{"prompt": "{prompt}"}') == (
        {"prompt": "{prompt}"},
        True,
    )
    assert http_load.body_template("text {prompt}") == ("text {prompt}", False)


# ---------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("the openssl CLI is not available to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    done = subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(
            f"openssl could not make a test certificate: {done.stderr[-200:]!r}"
        )
    return cert, key


@pytest.fixture
def tls_endpoint(certificate):
    cert, key = certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = make_server(context)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}
    )
    thread.start()
    server.url = f"https://127.0.0.1:{server.server_address[1]}/v1/completions"
    server.cert = cert
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_an_untrusted_certificate_fails_with_validate_certs(
    tls_endpoint, tmp_path, run_main, no_fork
):
    result = run_main(
        {
            "url": tls_endpoint.url,
            "rate": 10,
            "duration": 1,
            "records": str(tmp_path / "run.jsonl"),
        }
    )
    assert result["failed"]
    assert result["reason"] == "tls_error"
    assert result["field"] == "validate_certs"
    assert "not trusted" in result["msg"]
    assert not (tmp_path / "run.jsonl").exists()
    # The requests themselves fail the same way (a certificate that changes during a run).
    records = run_sync(url=tls_endpoint.url, rate=50, duration=0.2)
    assert {r["status"] for r in records} == {0}
    assert all("CERTIFICATE_VERIFY_FAILED" in r["error"] for r in records)
    assert tls_endpoint.hits == 0


def test_an_untrusted_certificate_is_accepted_without_validate_certs_or_with_its_ca(
    tls_endpoint,
):
    records = run_sync(
        url=tls_endpoint.url, rate=50, duration=0.2, validate_certs=False
    )
    assert {r["status"] for r in records} == {200}
    assert all(r["answer"] for r in records)
    records = run_sync(
        url=tls_endpoint.url, rate=50, duration=0.2, ca_path=str(tls_endpoint.cert)
    )
    assert {r["status"] for r in records} == {200}
    assert tls_endpoint.hits == 20


# ---------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("over", "field", "words"),
    [
        ({"rate": 0}, "rate", "above 0 and at most 2000"),
        ({"rate": 5000}, "rate", "above 0 and at most 2000"),
        ({"rate": -1}, "rate", "above 0 and at most 2000"),
        ({"duration": 0}, "duration", "above 0 and at most 3600"),
        ({"duration": 3601}, "duration", "above 0 and at most 3600"),
        ({"rate": 2000, "duration": 600}, "duration", "at most 1,000,000 requests"),
        ({"concurrency": 0}, "concurrency", "from 1 to 512"),
        ({"request_timeout": 0}, "request_timeout", "above 0"),
        ({"prompt_count": 0}, "prompt_count", "from 1 to"),
        ({"url": "ftp://127.0.0.1/x"}, "url", "http:// or https://"),
        ({"url": "http://user:pw@127.0.0.1/x"}, "url", "without credentials"),
        ({"method": "GET /x"}, "method", "HTTP method"),
        (
            {"ca_path": "/nonexistent/ca.pem", "url": "https://127.0.0.1:9/"},
            "ca_path",
            "PEM",
        ),
    ],
)
def test_bad_input_fails_naming_the_field_and_starts_nothing(
    tmp_path, run_main, no_fork, over, field, words
):
    args = {
        "url": "http://127.0.0.1:9/v1/completions",
        "rate": 10,
        "duration": 1,
        "records": str(tmp_path / "run.jsonl"),
        **over,
    }
    result = run_main(args)
    assert result["failed"]
    assert result["reason"] == "invalid_input"
    assert result["field"] == field
    assert result["msg"].startswith(field) or f"{field} " in result["msg"]
    assert words in result["msg"]
    assert "nothing was started" in result["msg"]
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_state_fails_naming_the_field(tmp_path, run_main, no_fork):
    result = run_main(
        {
            "state": "running",
            "url": "http://127.0.0.1:9/",
            "rate": 10,
            "duration": 1,
            "records": str(tmp_path / "run.jsonl"),
        }
    )
    assert result["failed"]
    assert "state" in result["msg"]
    assert "started, finished" in result["msg"]
    assert list(tmp_path.iterdir()) == []


def test_an_unreachable_target_starts_nothing(tmp_path, run_main, no_fork):
    with socket_closed_port() as port:
        result = run_main(
            {
                "url": f"http://127.0.0.1:{port}/v1/completions",
                "rate": 10,
                "duration": 1,
                "records": str(tmp_path / "run.jsonl"),
            }
        )
    assert result["failed"]
    assert result["reason"] == "unreachable"
    assert list(tmp_path.iterdir()) == []


@contextlib.contextmanager
def socket_closed_port():
    """A port nothing listens on (bound, not listening, while in use)."""
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
    finally:
        sock.close()


def test_existing_records_are_never_overwritten(tmp_path, run_main, no_fork, endpoint):
    records = tmp_path / "run.jsonl"
    records.write_text("earlier run\n")
    result = run_main(
        {"url": endpoint.url, "rate": 10, "duration": 1, "records": str(records)}
    )
    assert result["failed"]
    assert result["field"] == "records"
    assert records.read_text() == "earlier run\n"
    assert endpoint.hits == 0


def test_check_mode_says_what_it_would_run_and_starts_nothing(
    tmp_path, run_main, no_fork, endpoint
):
    result = run_main(
        {
            "url": endpoint.url,
            "rate": 25,
            "duration": 2,
            "records": str(tmp_path / "run.jsonl"),
            "headers": {"Authorization": "Bearer s3cret-token"},
        },
        check_mode=True,
    )
    assert not result.get("failed")
    assert result["changed"] is True
    assert result["requests"] == 50
    assert result["msg"].startswith("would start 50 POST requests to " + endpoint.url)
    assert "pid" not in result
    assert result["records"] == str(tmp_path / "run.jsonl")
    assert result["summary"] == str(tmp_path / "run.summary.json")
    assert result["rc_file"] == str(tmp_path / "run.rc")
    assert result["log"] == str(tmp_path / "run.log")
    assert "s3cret-token" not in json.dumps(result)
    assert result["handle"]["pid"] is None
    assert result["handle"]["records"] == result["records"]
    # finished, in check mode too, on that handle: nothing to wait for.
    finished = run_main(
        {"state": "finished", "handle": result["handle"]}, check_mode=True
    )
    assert not finished.get("failed")
    assert finished["finished"] is False
    assert list(tmp_path.iterdir()) == []
    assert endpoint.hits == 0


def test_finished_in_check_mode_does_not_wait(tmp_path, run_main):
    result = run_main(
        {"state": "finished", "records": str(tmp_path / "run.jsonl"), "timeout": 60},
        check_mode=True,
    )
    assert not result.get("failed")
    assert result["finished"] is False
    assert result["summary"] is None


def test_finished_times_out_when_the_run_does_not_end(tmp_path, run_main):
    started = time.monotonic()
    result = run_main(
        {"state": "finished", "records": str(tmp_path / "run.jsonl"), "timeout": 0.3}
    )
    assert result["failed"]
    assert result["reason"] == "timeout"
    assert time.monotonic() - started < 3


# ---------------------------------------------------------------- the detached process


def test_started_then_finished_end_to_end(tmp_path, run_main, endpoint_process):
    records = tmp_path / "load-run1.jsonl"
    started = run_main(
        {
            "url": endpoint_process,
            "rate": 40,
            "duration": 1,
            "records": str(records),
            "api_key": "k-123",
            "concurrency": 8,
        }
    )
    assert not started.get("failed"), started
    pid = started["pid"]
    handle = started["handle"]
    assert started["changed"] is True
    assert handle["pid"] == pid
    assert handle["records"] == str(records)
    assert started["summary"] == str(tmp_path / "load-run1.summary.json")
    assert "k-123" not in json.dumps(started)
    # The pid is the load process itself: not us, the leader of its own session and process
    # group, holding the records file open, and the one its log names.
    assert pid != os.getpid()
    ticks = handle["start_ticks"]
    assert ticks is not None
    assert http_load.process_start_ticks(pid) == ticks  # it runs for about a second
    assert os.getsid(pid) == pid
    assert os.getpgid(pid) == pid
    fds = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    assert str(records) in fds
    assert os.readlink(f"/proc/{pid}/fd/1") == started["log"]
    assert os.readlink(f"/proc/{pid}/fd/0") == os.devnull
    finished = run_main({"state": "finished", "handle": handle, "timeout": 10})
    assert not finished.get("failed"), finished
    assert finished["changed"] is False
    assert finished["finished"] is True
    assert finished["rc"] == 0
    summary = finished["summary"]
    assert summary["total"] == 40
    assert summary["ok"] == 40
    assert summary["measured"] is True
    assert set(summary) >= {
        "total",
        "started",
        "duration_s",
        "achieved_rate",
        "variants",
        "seconds",
        "p99_ms",
    }
    lines = read_jsonl(records)
    assert len(lines) == 40
    assert all(set(r) == FIELDS for r in lines)
    assert summarize_run(sorted(lines, key=lambda r: r["seq"])) == summary
    log = Path(started["log"]).read_text()
    assert log.startswith(f"http_load pid {pid}: 40 POST requests")
    assert "done: total=40" in log
    assert wait_gone(pid, ticks)
    # Given the records path instead of the handle: the same summary.
    again = run_main({"state": "finished", "records": str(records), "timeout": 0})
    assert again["summary"] == summary
    assert again["rc"] == 0


def test_a_run_stopped_by_the_ledgers_restore_fails_finished_with_what_it_sent(
    tmp_path, run_main, endpoint_process
):
    """The ledger records the pid as a group leader and its restore stops it (SIGTERM)."""
    started = run_main(
        {
            "url": endpoint_process,
            "rate": 20,
            "duration": 30,
            "records": str(tmp_path / "a.jsonl"),
        }
    )
    pid, handle = started["pid"], started["handle"]
    identity = _ledger.process_identity(pid, group=_ledger.GROUP_ALL)
    assert identity["group"] == _ledger.GROUP_ALL  # kept only for a group leader
    assert identity["start_ticks"] == handle["start_ticks"]
    time.sleep(0.5)
    stopped = _ledger.stop_process(identity)
    assert stopped["stopped"] == [pid]
    result = run_main({"state": "finished", "handle": handle, "timeout": 10})
    assert result["failed"]
    assert result["reason"] == "load_failed"
    assert result["rc"] == 143
    assert "stopped by SIGTERM" in result["msg"]
    assert 1 <= result["summary"]["total"] < 600
    assert len(read_jsonl(tmp_path / "a.jsonl")) == result["summary"]["total"]


def test_a_killed_run_is_reported_at_once_not_after_the_timeout(
    tmp_path, run_main, endpoint_process
):
    started = run_main(
        {
            "url": endpoint_process,
            "rate": 20,
            "duration": 30,
            "records": str(tmp_path / "b.jsonl"),
        }
    )
    pid, handle = started["pid"], started["handle"]
    os.kill(pid, signal.SIGKILL)
    began = time.monotonic()
    result = run_main({"state": "finished", "handle": handle, "timeout": 30})
    assert result["failed"]
    assert result["reason"] == "load_failed"
    assert f"process {pid} ended without finishing" in result["msg"]
    assert time.monotonic() - began < 3

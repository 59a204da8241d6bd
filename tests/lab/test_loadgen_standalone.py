"""The load generator against runtime processes started here: no cluster needed."""

from __future__ import annotations

import csv
import itertools
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "lab" / "runtime"))
sys.path.insert(0, str(REPO / "lab" / "loadgen"))

import loadgen
from proc import RuntimeProcess

FAST = {"PER_TOKEN_MS": "1", "PREFILL_MS": "2", "PREFILL_HIT_MS": "1"}


@pytest.fixture
def canary():
    rt = RuntimeProcess({**FAST, "VARIANT": "canary", "POD_NAME": "lg-canary-0"}).start()
    yield rt
    rt.stop()


def url(rt: RuntimeProcess) -> str:
    return f"http://{rt.addr}/v1/completions"


def test_steady_rate_records_every_response_with_variant_and_pod(canary):
    records = loadgen.run(loadgen.Config(url=url(canary), rate=50, duration=2, max_tokens=4,
                                         verify=True))
    assert len(records) == 100
    assert [r.seq for r in records] == list(range(100))
    assert {r.status for r in records} == {200}
    assert {r.variant for r in records} == {"canary"}
    assert {r.pod for r in records} == {"lg-canary-0"}
    assert all(r.correct is True for r in records)
    # open loop: request i is due at start + i/rate
    gaps = [b.due - a.due for a, b in itertools.pairwise(records)]
    assert all(gap == pytest.approx(0.02, abs=1e-6) for gap in gaps)
    # Sent on schedule, not after the previous answer; the slack absorbs a busy 2-core machine.
    assert max(r.sent - r.due for r in records) < 0.5
    s = loadgen.summarize(records)
    assert s["total"] == 100
    assert s["ok"] == 100
    assert s["variants"]["canary"]["share"] == 1.0
    assert [sec["count"] for sec in s["seconds"]] == [50, 50]
    assert s["achieved_rate"] == pytest.approx(50, rel=0.01)
    assert s["p50_ms"] > 0


def test_open_loop_does_not_wait_for_slow_responses(canary):
    assert canary.cli("fault", "set", "latency", "--ms", "400").returncode == 0
    records = loadgen.run(loadgen.Config(url=url(canary), rate=20, duration=1, max_tokens=1,
                                         concurrency=32))
    assert len(records) == 20
    assert all(r.status == 200 for r in records)
    assert all(r.latency_ms >= 400 for r in records)
    # 20 requests of 400 ms each were all sent within the second, not one after another
    assert records[-1].sent - records[0].sent < 1.1
    assert max(r.done for r in records) - records[0].sent < 2.0


def test_errors_are_counted_per_variant_and_per_second(canary):
    with RuntimeProcess({**FAST, "VARIANT": "control", "POD_NAME": "lg-control-0"}) as control:
        assert canary.cli("fault", "set", "error-rate", "--percent", "50").returncode == 0
        a = loadgen.run(loadgen.Config(url=url(canary), rate=40, duration=1, max_tokens=1))
        b = loadgen.run(loadgen.Config(url=url(control), rate=40, duration=1, max_tokens=1))
    s = loadgen.summarize(a + b)
    assert s["variants"]["canary"]["http_5xx"] == 20
    assert s["variants"]["canary"]["error_ratio"] == 0.5
    assert s["variants"]["control"]["error_ratio"] == 0.0
    assert s["variants"]["control"]["share"] == 0.5
    text = loadgen.format_summary(s)
    assert "variant=canary count=40 share=50.0% error_ratio=0.5" in text


def test_transport_errors_are_recorded_not_raised():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    records = loadgen.run(loadgen.Config(url=f"http://127.0.0.1:{port}/v1/completions", rate=10,
                                         duration=0.5, timeout=1))
    assert len(records) == 5
    assert all(r.status == 0 and "ConnectionRefused" in r.error for r in records)
    assert loadgen.summarize(records)["transport_errors"] == 5


@pytest.mark.parametrize("args", [
    ["--url", "http://10.1.2.3:80/v1/completions"],
    ["--url", "http://127.0.0.1:1/v1/completions", "--rate", "5000"],
    ["--url", "http://127.0.0.1:1/v1/completions", "--duration", "7200"],
    ["--url", "https://127.0.0.1:1/v1/completions"],
])
def test_cli_refuses_unbounded_or_remote_runs(args):
    r = subprocess.run([sys.executable, "-m", "lab.loadgen", *args], cwd=REPO,
                       capture_output=True, text=True, timeout=30, check=False)
    assert r.returncode == 2
    assert r.stderr.startswith("loadgen: ")


def test_cli_writes_jsonl_csv_and_summary(canary, tmp_path):
    out, summary = tmp_path / "run.jsonl", tmp_path / "summary.json"
    r = subprocess.run([sys.executable, "-m", "lab.loadgen", "--url", url(canary), "--rate", "30",
                        "--duration", "2", "--max-tokens", "2", "--verify", "--out", str(out),
                        "--summary-json", str(summary)],
                       cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 60
    assert {row["status"] for row in rows} == {200}
    assert {row["variant"] for row in rows} == {"canary"}
    per_second = [line for line in r.stdout.splitlines() if line.startswith("t=")]
    assert len(per_second) >= 2
    assert sum(int(line.split("responses=")[1].split()[0]) for line in per_second) == 60
    assert "variant=canary count=60 share=100.0%" in r.stdout
    assert json.loads(summary.read_text())["variants"]["canary"]["wrong_answers"] == 0

    csv_out = tmp_path / "run.csv"
    r = subprocess.run([str(REPO / "lab" / "loadgen" / "loadgen.py"), "--url", url(canary),
                        "--rate", "20", "--duration", "1", "--out", str(csv_out), "--quiet"],
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    with csv_out.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 20
    assert {row["status"] for row in rows} == {"200"}
    assert not [line for line in r.stdout.splitlines() if line.startswith("t=")]

"""The runtime stand-in as a plain local process: no cluster needed."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAB = REPO / "lab"
sys.path.insert(0, str(LAB / "runtime"))
sys.path.insert(0, str(LAB / "supervisor"))
# The collection, as `make collection-link` links it (tests/unit/conftest.py does the same).
if (REPO / ".collections" / "ansible_collections" / "veritas" / "chaos").is_dir():
    sys.path.insert(0, str(REPO / ".collections"))

import supervisor
from proc import RuntimeProcess, metric_samples

# The runtime's deterministic answer, computed independently of its code: what a client that
# checks answers would do (the runtime's vocabulary and hashing, restated here).
VOCAB = ("the", "model", "answers", "with", "steady", "tokens", "cache", "blue", "green",
         "canary", "control", "latency", "prefix", "session", "engine", "veritas", "spark",
         "request", "metric", "budget", "replica", "signal", "window", "rollout", "health",
         "stream", "kernel", "tensor", "vector", "batch", "queue", "block")


def expected_text(model: str, prompt: str, max_tokens: int) -> str:
    state = hashlib.sha256(f"{model}\x00{prompt}".encode()).digest()
    words: list[str] = []
    block, counter = b"", 0
    while len(words) < max_tokens:
        if not block:
            block = hashlib.sha256(state + counter.to_bytes(4, "big")).digest()
            counter += 1
        words.append(VOCAB[block[0] % len(VOCAB)])
        block = block[1:]
    return " ".join(words)


FAST = {"PER_TOKEN_MS": "1", "PREFILL_MS": "5", "PREFILL_HIT_MS": "1", "WARMUP_SECONDS": "0.5",
        "WARMUP_PROMPTS": "20", "VARIANT": "canary", "POD_NAME": "rt-test-0"}


@pytest.fixture
def runtime(tmp_path):
    rt = RuntimeProcess(FAST, log_file=str(tmp_path / "runtime.log")).start()
    yield rt
    rt.stop()


def metrics(rt: RuntimeProcess) -> str:
    status, _, body = rt.request("GET", "/metrics")
    assert status == 200
    assert isinstance(body, str)
    return body


def value(rt: RuntimeProcess, name: str, **labels: str) -> float:
    samples = [v for lab, v in metric_samples(metrics(rt), name)
               if all(lab.get(k) == want for k, want in labels.items())]
    assert samples, f"{name}{labels} not exposed"
    return sum(samples)


def test_completion_is_deterministic_and_carries_a_checksum(runtime):
    s1, h1, r1 = runtime.complete("what is a canary", max_tokens=12)
    s2, _, r2 = runtime.complete("what is a canary", max_tokens=12)
    s3, _, r3 = runtime.complete("what is a blue-green switch", max_tokens=12)
    assert (s1, s2, s3) == (200, 200, 200)
    text = r1["choices"][0]["text"]
    assert text == r2["choices"][0]["text"]
    assert text != r3["choices"][0]["text"]
    assert len(text.split()) == 12
    assert r1["veritas"]["checksum"] == "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    # computed independently of the runtime's code
    assert text == expected_text("llama-7b", "what is a canary", 12)
    assert h1["x-veritas-pod"] == "rt-test-0"
    assert h1["x-veritas-variant"] == "canary"
    assert r1["usage"]["completion_tokens"] == 12


def test_latency_is_tokens_times_per_token_time(tmp_path):
    with RuntimeProcess({**FAST, "PER_TOKEN_MS": "10", "PREFILL_MS": "0"}) as rt:
        t0 = time.monotonic()
        assert rt.complete("short", max_tokens=2)[0] == 200
        short = time.monotonic() - t0
        t0 = time.monotonic()
        assert rt.complete("long", max_tokens=40)[0] == 200
        long = time.monotonic() - t0
    assert long >= 0.40
    assert short < 0.2
    assert long - short >= 0.3


def test_metrics_use_vllm_names_labels_and_buckets(runtime):
    for i in range(3):
        assert runtime.complete(f"p{i}", max_tokens=4)[0] == 200
    text = metrics(runtime)
    for name, kind in [("vllm:num_requests_running", "gauge"), ("vllm:num_requests_waiting", "gauge"),
                       ("vllm:kv_cache_usage_perc", "gauge"),
                       ("vllm:prefix_cache_queries_total", "counter"),
                       ("vllm:prefix_cache_hits_total", "counter"),
                       ("vllm:e2e_request_latency_seconds", "histogram"),
                       ("vllm:time_to_first_token_seconds", "histogram"),
                       ("vllm:request_success_total", "counter"),
                       ("veritas_http_requests_total", "counter"),
                       ("veritas_kv_cache_corruptions_detected_total", "counter")]:
        assert f"# TYPE {name} {kind}" in text
    e2e = metric_samples(text, "vllm:e2e_request_latency_seconds_bucket")
    assert [lab["le"] for lab, _ in e2e] == [
        "0.3", "0.5", "0.8", "1.0", "1.5", "2.0", "2.5", "5.0", "10.0", "15.0", "20.0", "30.0",
        "40.0", "50.0", "60.0", "120.0", "240.0", "480.0", "960.0", "1920.0", "7680.0", "+Inf"]
    assert all(lab["model_name"] == "llama-7b" for lab, _ in e2e)
    assert value(runtime, "vllm:e2e_request_latency_seconds_count") == 3
    assert value(runtime, "vllm:time_to_first_token_seconds_count") == 3
    assert value(runtime, "vllm:request_success_total", finished_reason="length") == 3
    assert value(runtime, "veritas_http_requests_total", handler="completions", code="200") == 3
    assert value(runtime, "vllm:kv_cache_usage_perc") > 0


def test_injected_error_rate_is_exact_and_counted_by_code(runtime):
    r = runtime.cli("fault", "set", "error-rate", "--percent", "20")
    assert r.returncode == 0, r.stderr
    codes = [runtime.complete(f"q{i}", max_tokens=1)[0] for i in range(50)]
    assert codes.count(500) == 10
    assert codes.count(200) == 40
    assert value(runtime, "veritas_http_requests_total", handler="completions", code="500") == 10
    assert value(runtime, "vllm:request_success_total") == 40
    assert runtime.cli("fault", "clear", "error-rate").returncode == 0
    assert {runtime.complete(f"r{i}", max_tokens=1)[0] for i in range(10)} == {200}


def test_corrupted_kv_entry_is_detected_on_read_and_the_answer_stays_correct(runtime):
    prompt = "veritas lab prompt 3"
    _, h_miss, first = runtime.complete(prompt, max_tokens=10)
    _, h_hit, second = runtime.complete(prompt, max_tokens=10)
    assert (h_miss["x-veritas-cache"], h_hit["x-veritas-cache"]) == ("miss", "hit")
    assert second["choices"][0]["text"] == first["choices"][0]["text"]
    assert value(runtime, "veritas_kv_cache_corruptions_detected_total") == 0

    r = runtime.cli("fault", "set", "kv-corruption", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["corrupted_entries"] >= 1

    status, hdrs, after = runtime.complete(prompt, max_tokens=10)
    assert status == 200
    assert hdrs["x-veritas-cache"] == "corrupt_bypass"
    assert after["veritas"]["degraded"] is True
    assert after["choices"][0]["text"] == first["choices"][0]["text"]
    assert after["veritas"]["checksum"] == first["veritas"]["checksum"]
    assert value(runtime, "veritas_kv_cache_corruptions_detected_total") == 1
    cache = json.loads(runtime.cli("cache-status", "--json").stdout)
    assert cache["state"] == "degraded"
    assert cache["corruptions_detected"] == 1
    assert "kv_cache_corruption_detected" in Path(runtime.log_file).read_text()

    # The corrupt entry was evicted: the next read refills it, the one after hits again.
    assert runtime.complete(prompt, max_tokens=10)[1]["x-veritas-cache"] == "miss"
    assert runtime.complete(prompt, max_tokens=10)[1]["x-veritas-cache"] == "hit"

    # Recovery as in the runbook: invalidate, warm up, status healthy again.
    assert runtime.cli("cache-invalidate").returncode == 0
    assert runtime.cli("fault", "clear", "kv-corruption").returncode == 0
    assert runtime.cli("cache-warmup", "--model", "llama-7b").returncode == 0
    cache = json.loads(runtime.cli("cache-status", "--json").stdout)
    assert cache["state"] == "warm"
    assert cache["entries"] == 20


def test_silent_kv_corruption_passes_the_checksum_and_gives_a_wrong_answer(runtime):
    # Damage before the checksum was taken: the read cannot tell, the answer is wrong (what the
    # game day's answer checks, not the runtime's counter, must catch).
    prompt = "veritas lab prompt 4"
    _, _, first = runtime.complete(prompt, max_tokens=10)
    r = runtime.cli("fault", "set", "kv-corruption", "--mode", "silent", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["params"]["mode"] == "silent"
    status, hdrs, after = runtime.complete(prompt, max_tokens=10)
    assert (status, hdrs["x-veritas-cache"]) == (200, "hit")
    assert after["choices"][0]["text"] != first["choices"][0]["text"]
    assert value(runtime, "veritas_kv_cache_corruptions_detected_total") == 0
    assert runtime.cli("fault", "set", "kv-corruption", "--mode", "bitrot").returncode != 0
    assert runtime.cli("fault", "clear", "kv-corruption").returncode == 0
    assert runtime.cli("cache-invalidate").returncode == 0


def test_cache_warmup_prints_progress_and_logs_cache_warm_lines(runtime):
    r = runtime.cli("cache-warmup", "--model", "llama-7b", "--seconds", "1")
    assert r.returncode == 0, r.stderr
    progress = [int(w.split("=")[1].rstrip("%")) for line in r.stdout.splitlines()
                for w in line.split() if w.startswith("progress=")]
    assert progress[0] == 0
    assert progress[-1] == 100
    assert len(progress) >= 5
    assert progress == sorted(progress)
    assert all(line.startswith("cache_warm ") for line in r.stdout.splitlines())
    logged = [line for line in Path(runtime.log_file).read_text().splitlines() if " cache_warm " in line]
    assert any("state=done" in line for line in logged)
    assert len(logged) >= 5
    # A warmed prompt is a cache hit on first use.
    assert runtime.complete("veritas lab prompt 7", max_tokens=4)[1]["x-veritas-cache"] == "hit"
    wrong = runtime.cli("cache-warmup", "--model", "mistral-7b")
    assert wrong.returncode == 1
    assert "not loaded" in wrong.stderr


def test_gpu_unavailable_makes_health_503_and_cpu_fallback_serves_slower(tmp_path):
    env = {**FAST, "PER_TOKEN_MS": "5", "PREFILL_MS": "0", "CPU_FALLBACK_FACTOR": "4"}
    with RuntimeProcess(env) as rt:
        assert rt.request("GET", "/health")[0] == 200
        t0 = time.monotonic()
        assert rt.complete("gpu", max_tokens=20)[0] == 200
        on_gpu = time.monotonic() - t0

        assert rt.cli("fault", "set", "gpu-unavailable").returncode == 0
        status, _, body = rt.request("GET", "/health")
        assert status == 503
        assert body["reason"].startswith("gpu_unavailable")
        assert rt.cli("health").returncode == 1
        assert rt.complete("gpu", max_tokens=20)[0] == 503
        assert value(rt, "veritas_gpu_available") == 0

        assert rt.cli("fault", "set", "gpu-unavailable", "--cpu-fallback").returncode == 0
        status, _, body = rt.request("GET", "/health")
        assert status == 200
        assert body["mode"] == "cpu_fallback"
        t0 = time.monotonic()
        status, _, resp = rt.complete("gpu", max_tokens=20)
        on_cpu = time.monotonic() - t0
        assert status == 200
        assert resp["veritas"]["mode"] == "cpu_fallback"
        assert on_cpu >= 3 * on_gpu
        assert value(rt, "veritas_cpu_fallback") == 1


def test_latency_fault_adds_time(runtime):
    t0 = time.monotonic()
    runtime.complete("lat", max_tokens=1)
    base = time.monotonic() - t0
    assert runtime.cli("fault", "set", "latency", "--ms", "300").returncode == 0
    t0 = time.monotonic()
    runtime.complete("lat", max_tokens=1)
    slow = time.monotonic() - t0
    assert slow - base >= 0.28


def test_metrics_off_modes(runtime):
    assert runtime.cli("fault", "set", "metrics-off").returncode == 0
    assert runtime.request("GET", "/metrics")[0] == 503
    assert runtime.cli("fault", "set", "metrics-off", "--mode", "empty").returncode == 0
    status, _, body = runtime.request("GET", "/metrics")
    assert status == 200
    assert "vllm:" not in body
    assert runtime.complete("still serving", max_tokens=2)[0] == 200
    assert runtime.cli("fault", "clear", "--all").returncode == 0
    assert "vllm:num_requests_running" in metrics(runtime)


def test_sessions_lost_and_unreachable(tmp_path):
    store = tmp_path / "sessions"
    env = {**FAST, "SESSION_STORE_DIR": str(store)}
    with RuntimeProcess(env, log_file=str(tmp_path / "a.log")) as a, \
            RuntimeProcess({**env, "POD_NAME": "rt-test-1"}) as b:
        status, _, created = a.request("POST", "/v1/sessions", {})
        assert status == 201
        sid = created["session_id"]
        # the store is shared: the session made on one pod is usable on the other
        assert b.complete("hello", max_tokens=2, session_id=sid)[0] == 200
        listing = a.cli("session-list", "--json")
        assert [s["id"] for s in json.loads(listing.stdout)["sessions"]] == [sid]
        assert json.loads(listing.stdout)["sessions"][0]["turns"] == 1

        assert a.cli("fault", "set", "session-loss").returncode == 0
        status, _, body = a.complete("hello", max_tokens=2, session_id=sid)
        assert status == 404
        assert body["error"]["type"] == "session_not_found"
        lines = [ln for ln in Path(a.log_file).read_text().splitlines() if "session_not_found" in ln]
        assert lines, "no session_not_found log line"
        # the runbook extracts the id with: grep session_not_found | cut -d' ' -f3
        assert lines[-1].split(" ")[2] == sid

        assert b.cli("fault", "set", "session-store-unreachable").returncode == 0
        health = b.cli("session-store-health", "--json")
        assert health.returncode == 1
        assert json.loads(health.stdout)["reachable"] is False
        assert b.complete("hello", max_tokens=2, session_id="any")[0] == 503
        assert a.cli("session-store-health").returncode == 0


def test_memory_and_disk_exhaustion(tmp_path):
    with RuntimeProcess(FAST) as rt:
        assert rt.cli("fault", "set", "disk-exhaustion").returncode == 0
        status, _, body = rt.request("GET", "/health")
        assert status == 503
        assert "disk_full" in body["reason"]
        assert rt.cli("cache-warmup", "--model", "llama-7b").returncode == 1
        assert rt.request("POST", "/v1/sessions", {})[0] == 507
        assert rt.cli("fault", "clear", "disk-exhaustion").returncode == 0
        assert rt.request("GET", "/health")[0] == 200

        assert rt.cli("fault", "set", "memory-exhaustion").returncode == 0
        assert rt.request("GET", "/health")[0] == 503
        assert rt.complete("x", max_tokens=1)[0] == 503
        rt.cli("fault", "set", "memory-exhaustion", "--oom-kill")
        assert rt.proc.wait(5) == 137


def test_fault_cli_list_clear_and_errors(runtime):
    assert runtime.cli("fault", "list").stdout.strip() == "no faults set"
    runtime.cli("fault", "set", "latency", "--ms", "5")
    runtime.cli("fault", "set", "error-rate", "--percent", "1")
    listed = json.loads(runtime.cli("fault", "list", "--json").stdout)
    assert sorted(f["name"] for f in listed) == ["error-rate", "latency"]
    assert value(runtime, "veritas_fault_active", fault="latency") == 1
    bad = runtime.cli("fault", "set", "no-such-fault")
    assert bad.returncode == 1
    assert "unknown fault" in bad.stderr
    assert runtime.cli("fault", "set", "error-rate", "--percent", "150").returncode == 1
    assert runtime.cli("fault", "clear", "--all").returncode == 0
    assert json.loads(runtime.cli("fault", "list", "--json").stdout) == []
    status = json.loads(runtime.cli("status", "--json").stdout)
    assert status["pid"] == runtime.pid
    assert status["variant"] == "canary"


def test_selftest_fails_on_a_ready_pod_that_fails_every_request(runtime):
    # /health stays 200 under an error rate: only a real completion shows the pod is broken.
    ok = runtime.cli("selftest", "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["status"] == 200
    runtime.cli("fault", "set", "error-rate", "--percent", "100")
    assert runtime.request("GET", "/health")[0] == 200
    broken = runtime.cli("selftest", "--json")
    assert broken.returncode == 1
    report = json.loads(broken.stdout)
    assert report["ok"] is False and report["status"] == 500


def test_cli_needs_an_address(tmp_path):
    import subprocess

    from proc import CLI
    r = subprocess.run([str(CLI), "cache-status"], env={"PATH": "/usr/bin:/bin"},
                       capture_output=True, text=True, check=False)
    assert r.returncode == 2
    assert "VERITAS_RUNTIME_ADDR" in r.stderr


def test_initial_faults_from_environment():
    with RuntimeProcess({**FAST, "VERITAS_FAULTS": json.dumps({"gpu-unavailable": {}})}) as rt:
        assert rt.request("GET", "/health")[0] == 503


def test_refuses_to_bind_beyond_loopback():
    rt = RuntimeProcess({"VERITAS_RUNTIME_ADDR": "0.0.0.0:0"})
    with pytest.raises(RuntimeError, match="127.0.0.1 only"):
        rt.start()


def test_resident_memory_stays_small_under_load(runtime):
    from concurrent.futures import ThreadPoolExecutor

    def one(i: int) -> int:
        return runtime.complete(f"veritas lab prompt {i % 64}", max_tokens=4)[0]

    with ThreadPoolExecutor(max_workers=32) as pool:
        codes = list(pool.map(one, range(400)))
    assert codes.count(200) == len(codes) == 400
    rss_kb = next(int(line.split()[1]) for line in
                  Path(f"/proc/{runtime.pid}/status").read_text().splitlines()
                  if line.startswith("VmRSS:"))
    assert rss_kb < 30 * 1024, f"runtime RSS {rss_kb} kB"


def test_a_peer_resetting_its_connection_leaves_no_traceback(runtime):
    import socket
    import struct

    host, port = runtime.addr.rsplit(":", 1)
    for _ in range(3):
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: lab\r\n\r\n")
            sock.recv(4096)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    # the server is still serving, and said nothing about the resets
    assert runtime.request("GET", "/health")[0] == 200
    assert "Traceback" not in runtime.output()
    assert "Traceback" not in Path(runtime.log_file).read_text()



def test_health_is_503_while_the_model_loads_then_200():
    t0 = time.monotonic()
    with RuntimeProcess({**FAST, "MODEL_LOAD_SECONDS": "1.5"}) as rt:
        status, _, body = rt.request("GET", "/health")
        assert status == 503
        assert "loading_model" in body["reason"]
        deadline = time.monotonic() + 5
        while rt.request("GET", "/health")[0] != 200:
            assert time.monotonic() < deadline, "still loading 5 s after the start"
            time.sleep(0.1)
        assert time.monotonic() - t0 >= 1.4


# ---- the Envoy sidecar: admin runtime and HTTP fault filter ---------------------------------

ADMIN = "http://127.0.0.1:15000"  # the sidecar's admin address as runtime_fault uses it


@pytest.fixture(scope="module")
def runtime_cli():
    """The collection's command builders and parsers: what runtime_fault runs and reads."""
    return pytest.importorskip(
        "ansible_collections.veritas.chaos.plugins.module_utils._runtime_cli",
        reason="the collection is not importable (make collection-link)")


def in_envoy(rt: RuntimeProcess, command: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    """command as `kubectl exec POD -c envoy --` runs it: the env of the supervisor's Exec entry."""
    pod = {"metadata": {"name": "rt-test-0", "namespace": "veritas-lab", "uid": "u-1"}}
    entry = next(e for e in supervisor.exec_object(pod, rt.addr, tmp_path, sys.executable)["spec"]["execs"]
                 if e.get("containers") == ["envoy"])
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
           **{e["name"]: e["value"] for e in entry["local"]["envs"]}}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=30, check=False)


def completion(rt: RuntimeProcess, prompt: str) -> tuple[int, dict, object]:
    return rt.request("POST", "/v1/completions", {"prompt": prompt, "max_tokens": 1})


def test_envoy_runtime_modify_aborts_exactly_the_percent_and_the_metrics_count_it(runtime, runtime_cli, tmp_path):
    values = runtime_cli.envoy_runtime_values("error_rate", {"percent": 20, "status_code": 503})
    keys = runtime_cli.envoy_runtime_keys("error_rate")
    set_cmd = runtime_cli.envoy_modify_command(ADMIN, values)
    assert set_cmd[:5] == ["curl", "-sS", "--fail", "-X", "POST"]
    r = in_envoy(runtime, set_cmd, tmp_path)
    assert (r.returncode, r.stdout) == (0, "OK\n"), r.stderr

    answers = [completion(runtime, f"q{i}") for i in range(50)]
    codes = [status for status, _, _ in answers]
    assert codes.count(503) == 10
    assert codes.count(200) == 40
    _, headers, body = next(a for a in answers if a[0] == 503)
    # Envoy's local reply of the fault filter.
    assert body == "fault filter abort"
    assert headers["server"] == "envoy"
    assert headers["content-type"] == "text/plain"
    assert headers["x-veritas-pod"] == "rt-test-0"
    # Counted as the error-rate fault's errors are: the game days' queries and alerts see them.
    assert value(runtime, "veritas_http_requests_total", handler="completions", code="503") == 10
    assert value(runtime, "veritas_http_requests_total", handler="completions", code="200") == 40
    assert value(runtime, "vllm:request_success_total") == 40
    assert "reason=fault_filter_abort" in Path(runtime.log_file).read_text()

    # GET /runtime as the module reads it back.
    r = in_envoy(runtime, runtime_cli.envoy_read_command(ADMIN), tmp_path)
    assert r.returncode == 0, r.stderr
    document = json.loads(r.stdout)
    assert document["layers"] == ["static", "admin"]
    assert document["entries"]["fault.http.abort.abort_percent"] == {"final_value": "20", "layer_values": ["", "20"]}
    read = runtime_cli.parse_envoy_runtime(r.stdout, keys)
    assert read == {"fault.http.abort.abort_percent": "20", "fault.http.abort.http_status": "503"}
    assert runtime_cli.envoy_current(read) == values
    assert runtime_cli.plan_action("present", runtime_cli.envoy_current(read), values) == "none"

    # An empty value removes the key from the admin layer: how the module clears the fault.
    r = in_envoy(runtime, runtime_cli.envoy_modify_command(ADMIN, {key: "" for key in keys}), tmp_path)
    assert (r.returncode, r.stdout) == (0, "OK\n"), r.stderr
    r = in_envoy(runtime, runtime_cli.envoy_read_command(ADMIN), tmp_path)
    assert json.loads(r.stdout)["entries"] == {}
    assert runtime_cli.envoy_current(runtime_cli.parse_envoy_runtime(r.stdout, keys)) is None
    assert {completion(runtime, f"r{i}")[0] for i in range(10)} == {200}


def test_envoy_fixed_delay_adds_its_duration_to_completions_only(runtime, runtime_cli, tmp_path):
    for _ in range(2):  # the prompt cached, so both timed requests are hits
        t0 = time.monotonic()
        assert completion(runtime, "delay")[0] == 200
        base = time.monotonic() - t0
    e2e_before = value(runtime, "vllm:e2e_request_latency_seconds_sum")
    values = runtime_cli.envoy_runtime_values("latency", {"latency_ms": 200})
    assert values == {"fault.http.delay.fixed_delay_percent": "100", "fault.http.delay.fixed_duration_ms": "200"}
    assert in_envoy(runtime, runtime_cli.envoy_modify_command(ADMIN, values), tmp_path).returncode == 0
    t0 = time.monotonic()
    assert completion(runtime, "delay")[0] == 200
    slow = time.monotonic() - t0
    assert slow >= 0.2
    assert slow - base >= 0.18
    # In the latency histograms like the latency fault: the P99 rule and alert see it.
    assert value(runtime, "vllm:e2e_request_latency_seconds_sum") - e2e_before >= 0.2
    # Only the data path (/v1/...): the supervisor's /health probe and the scrapes are not delayed.
    t0 = time.monotonic()
    assert runtime.request("GET", "/health")[0] == 200
    assert time.monotonic() - t0 < 0.15
    keys = runtime_cli.envoy_runtime_keys("latency")
    assert in_envoy(runtime, runtime_cli.envoy_modify_command(ADMIN, {k: "" for k in keys}), tmp_path).returncode == 0
    t0 = time.monotonic()
    assert completion(runtime, "delay")[0] == 200
    assert time.monotonic() - t0 < 0.15


def other_answers(rt: RuntimeProcess) -> float:
    """Answers the runtime counted under handler="other" (0 before the first)."""
    return sum(v for lab, v in metric_samples(metrics(rt), "veritas_http_requests_total")
               if lab.get("handler") == "other")


def test_envoy_admin_answers_only_requests_addressed_to_its_port(runtime, tmp_path):
    other_before = other_answers(runtime)
    # The runtime's own API has no admin path of Envoy's.
    status, _, body = runtime.request("POST", "/runtime_modify?fault.http.abort.abort_percent=100")
    assert status == 404
    assert "no route" in body["error"]
    assert runtime.request("GET", "/runtime")[0] == 404
    # Neither has another port reached through the same proxy: nothing listens there in the
    # pod, so the proxy answers 502 and the runtime never sees it.
    r = in_envoy(runtime, ["curl", "-sS", "--fail", "-X", "POST",
                           "http://127.0.0.1:15001/runtime_modify?fault.http.abort.abort_percent=100"], tmp_path)
    assert r.returncode == 22
    assert "502" in r.stderr
    assert {completion(runtime, f"a{i}")[0] for i in range(5)} == {200}
    assert other_answers(runtime) == other_before + 2

    def curl(*args: str) -> tuple[str, str]:
        r = in_envoy(runtime, ["curl", "-sS", "-o", "/dev/stderr", "-w", "%{http_code}", *args], tmp_path)
        return r.stdout, r.stderr

    # Envoy's answers: GET on the mutating endpoint, no parameters, unknown admin paths.
    assert curl(f"{ADMIN}/runtime_modify?a=1") == ("405", "Method GET not allowed, POST required.")
    code, text = curl("-X", "POST", f"{ADMIN}/runtime_modify")
    assert (code, text.splitlines()[0]) == ("400", "usage: /runtime_modify?key1=value1&key2=value2&keyN=valueN")
    assert curl(f"{ADMIN}/stats")[0] == "404"
    assert curl("http://localhost:15000/v1/completions")[0] == "404"
    # Form values work too; localhost is the same admin.
    assert curl("-d", "custom.key=on", "http://localhost:15000/runtime_modify") == ("200", "OK\n")
    assert json.loads(curl(f"{ADMIN}/runtime")[1])["entries"]["custom.key"]["final_value"] == "on"
    # Admin traffic is the sidecar's, not the runtime's: not in its HTTP metrics.
    assert other_answers(runtime) == other_before + 2
    assert {completion(runtime, f"b{i}")[0] for i in range(5)} == {200}


def test_envoy_fault_keys_under_a_custom_prefix(runtime_cli, tmp_path):
    with RuntimeProcess({**FAST, "ENVOY_FAULT_RUNTIME_PREFIX": "fault.veritas"}) as rt:
        default = runtime_cli.envoy_runtime_values("error_rate", {"percent": 100})
        assert in_envoy(rt, runtime_cli.envoy_modify_command(ADMIN, default), tmp_path).returncode == 0
        assert {completion(rt, f"d{i}")[0] for i in range(3)} == {200}  # not this filter's keys
        custom = runtime_cli.envoy_runtime_values("error_rate", {"percent": 100}, prefix="fault.veritas")
        assert in_envoy(rt, runtime_cli.envoy_modify_command(ADMIN, custom), tmp_path).returncode == 0
        assert [completion(rt, f"c{i}")[0] for i in range(3)] == [500, 500, 500]


# ---- what the lab's node tells the process (NetworkPolicy verdict, GPUs) --------------------------

def test_classify_peer():
    import veritas_runtime as vr

    assert vr.classify_peer("/metrics", {"x-prometheus-scrape-timeout-seconds": "0.9"}) == "prometheus"
    assert vr.classify_peer("/metrics", {"user-agent": "Prometheus/3.0.0"}) == "prometheus"
    assert vr.classify_peer("/v1/completions", {"user-agent": "curl/8"}) == "dataplane"
    assert vr.classify_peer("/health", {"user-agent": "kube-probe/1.36"}) is None
    # Absolute-form: made inside the pod (kubectl exec through http_proxy), never filtered.
    assert vr.classify_peer("http://127.0.0.1:8080/metrics", {"user-agent": "Prometheus/3.0.0"}) is None


def write_state(path: Path, prometheus=True, dataplane=True, gpu_lost=False) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"network": {"prometheus": prometheus, "dataplane": dataplane},
                               "devices": {"gpu_lost": gpu_lost}}))
    tmp.replace(path)
    time.sleep(0.06)  # the process re-reads it at most every 50 ms


def test_the_network_verdict_drops_only_the_blocked_peer(tmp_path):
    state = tmp_path / "lab-state.json"
    write_state(state, prometheus=False)
    with RuntimeProcess({**FAST, "VERITAS_LAB_STATE_FILE": str(state), "POD_PORT": "8080"}) as rt:
        scrape_headers = {"X-Prometheus-Scrape-Timeout-Seconds": "0.9", "User-Agent": "Prometheus/3.0.0"}
        # Blocked from the very start: the verdict is read before the first connection.
        with pytest.raises((ConnectionError, OSError)):
            rt.request("GET", "/metrics", headers=scrape_headers)
        assert rt.request("GET", "/metrics")[0] == 200                       # the data plane
        assert rt.request("GET", "/health", headers={"User-Agent": "kube-probe/1.36"})[0] == 200
        write_state(state, prometheus=True, dataplane=False)
        assert rt.request("GET", "/metrics", headers=scrape_headers)[0] == 200
        with pytest.raises((ConnectionError, OSError)):
            rt.request("POST", "/v1/completions", {"prompt": "x", "max_tokens": 1})
        assert rt.request("GET", "/health", headers={"User-Agent": "kube-probe/1.36"})[0] == 200
        # In-pod traffic (curl through http_proxy): absolute-form, never filtered.
        env = {"PATH": os.environ.get("PATH", ""), "http_proxy": f"http://{rt.addr}", "no_proxy": ""}
        r = subprocess.run(["curl", "-fsS", "-X", "POST", "-d", '{"prompt":"x","max_tokens":1}',
                            "http://127.0.0.1:8080/v1/completions"], env=env, capture_output=True, text=True,
                           timeout=30, check=False)
        assert r.returncode == 0, r.stderr
        r = subprocess.run(["curl", "-fsS", "http://127.0.0.1:8081/health"], env=env, capture_output=True,
                           text=True, timeout=30, check=False)
        assert r.returncode == 22 and "502" in r.stderr
        # The cli reaches the process's own port through the proxy too.
        r = subprocess.run([str(LAB / "runtime" / "bin" / "cli"), "health"], env={**env, "VERITAS_RUNTIME_ADDR": rt.addr},
                           capture_output=True, text=True, timeout=30, check=False)
        assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("fallback", [False, True])
def test_gpus_lost_on_the_node_and_the_fault_switch_are_kept_apart(tmp_path, fallback):
    state = tmp_path / "lab-state.json"
    write_state(state)
    env = {**FAST, "VERITAS_LAB_STATE_FILE": str(state), "VERITAS_CPU_FALLBACK": str(fallback).lower()}
    with RuntimeProcess(env) as rt:
        assert rt.request("GET", "/health")[0] == 200
        write_state(state, gpu_lost=True)
        code, _, body = rt.request("GET", "/health")
        if fallback:
            assert (code, body["mode"]) == (200, "cpu_fallback")
            assert rt.complete("x", 1)[2]["veritas"]["mode"] == "cpu_fallback"
        else:
            assert code == 503
            assert body["reason"] == "gpu_unavailable: CUDA error: no CUDA-capable device is detected"
        assert "veritas_gpu_available 0" in metrics(rt)
        # The node state is not a fault switch: nobody's `fault clear` removes it...
        assert rt.cli("fault", "list", "--json").stdout.strip() == "[]"
        # ...and the node coming back does not clear a switch someone set.
        assert rt.cli("fault", "set", "gpu-unavailable").returncode == 0
        write_state(state, gpu_lost=False)
        assert rt.request("GET", "/health")[0] == 503
        assert rt.cli("fault", "clear", "gpu-unavailable").returncode == 0
        assert rt.request("GET", "/health")[0] == 200
        assert "gpu_unavailable" in rt.output() and "gpu_available source=node" in rt.output()

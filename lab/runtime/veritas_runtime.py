#!/usr/bin/env python3
"""Stand-in for the Veritas SPARK inference runtime, as the lab's pods run it.

Standard library only, one process per pod, bound to 127.0.0.1. From the outside it behaves
like the runtime: an OpenAI-style completions endpoint whose latency is tokens x per-token time,
`/health`, Prometheus `/metrics` with vLLM's names, a KV cache whose entries carry checksums,
sessions kept in a store, and fault switches driven through `/admin/*` (see cli.py).

Configuration comes from the environment (the supervisor fills it from the pod spec):
  (each NAME below may also be spelled VERITAS_NAME, which wins)
  VERITAS_RUNTIME_ADDR  host:port to bind (port 0: any free port, printed on the first line)
  MODEL, VARIANT, DEPLOYMENT, POD_NAME, POD_NAMESPACE
  PER_TOKEN_MS (decode time per output token), PREFILL_MS (prefill on a cache miss),
  PREFILL_HIT_MS (prefill on a cache hit), CPU_FALLBACK_FACTOR, MAX_NUM_SEQS,
  MODEL_LOAD_SECONDS (/health answers 503 "loading_model" that long after the start),
  KV_CACHE_CAPACITY, WARMUP_PROMPTS, WARMUP_SECONDS, SESSION_STORE_DIR (empty: in memory),
  VERITAS_FAULTS (JSON object {fault: params} applied at start), VERITAS_READY_FILE,
  VERITAS_LOG_FILE (events also appended there), VERITAS_CRI_LOG_FILE (the same in CRI format),
  ENVOY_ADMIN_PORT (15000), ENVOY_FAULT_RUNTIME_PREFIX (fault.http): the pod's Envoy sidecar,
  see EnvoySidecar.
  CPU_FALLBACK (false): on losing the GPUs, serve on CPU (slower) instead of failing.
  VERITAS_LAB_STATE_FILE: what the lab's node tells the process (LabState), POD_PORT and POD_IP:
  which absolute-form targets are this pod's (ProxyTargets).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import re
import signal
import sys
import threading
import time
import uuid
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlparse, urlsplit

# vLLM v1 buckets (vllm/v1/metrics/loggers.py).
E2E_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0,
               60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5,
                5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)

VOCAB = ("the", "model", "answers", "with", "steady", "tokens", "cache", "blue", "green",
         "canary", "control", "latency", "prefix", "session", "engine", "veritas", "spark",
         "request", "metric", "budget", "replica", "signal", "window", "rollout", "health",
         "stream", "kernel", "tensor", "vector", "batch", "queue", "block")

FAULT_NAMES = ("error-rate", "latency", "kv-corruption", "gpu-unavailable", "metrics-off",
               "memory-exhaustion", "disk-exhaustion", "session-store-unreachable",
               "session-loss")
MAX_TOKENS_LIMIT = 4096


def warmup_prompt(i: int) -> str:
    """The i-th prompt of the corpus that warm-up loads and the load generator sends."""
    return f"veritas lab prompt {i}"


def prefill_state(model: str, prompt: str) -> bytes:
    """What the KV cache keeps for a prompt: the state the completion is decoded from."""
    return hashlib.sha256(f"{model}\x00{prompt}".encode()).digest()


def decode(state: bytes, max_tokens: int) -> str:
    words = []
    block = b""
    counter = 0
    while len(words) < max_tokens:
        if not block:
            block = hashlib.sha256(state + counter.to_bytes(4, "big")).digest()
            counter += 1
        words.append(VOCAB[block[0] % len(VOCAB)])
        block = block[1:]
    return " ".join(words)


def text_checksum(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def expected_completion(model: str, prompt: str, max_tokens: int) -> str:
    """The correct answer, computed without the cache; tests compare responses with it."""
    return decode(prefill_state(model, prompt), max_tokens)


def count_tokens(text: str) -> int:
    return max(1, len(text.split()))


class Log:
    """One line per event: `<iso time> <event> <args...> k=v ...` to stdout (and a file)."""

    def __init__(self, path: str | None, cri_path: str | None = None):
        self._lock = threading.Lock()
        self._file = open(path, "a", buffering=1) if path else None  # noqa: SIM115
        # The same lines in the CRI log format, which kwok's Logs objects serve to `kubectl logs`.
        self._cri = open(cri_path, "a", buffering=1) if cri_path else None  # noqa: SIM115

    def event(self, name: str, *args: object, **fields: object) -> None:
        now = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
        parts = [stamp, name, *(str(a) for a in args)]
        parts += [f"{k}={v}" for k, v in fields.items()]
        line = " ".join(parts) + "\n"
        with self._lock:
            try:
                sys.stdout.write(line)
                sys.stdout.flush()
            except (OSError, ValueError):
                pass
            if self._file:
                try:
                    self._file.write(line)
                except OSError:
                    pass
            if self._cri:
                cri_stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e9):09d}Z"
                try:
                    self._cri.write(f"{cri_stamp} stdout F {line}")
                except OSError:
                    pass


class Histogram:
    def __init__(self, buckets: tuple[float, ...]):
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.total = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
        self.total += 1
        self.sum += value


class Metrics:
    def __init__(self, model: str):
        self.lock = threading.Lock()
        self.labels = f'engine="0",model_name="{model}"'
        self.running = 0
        self.waiting = 0
        self.prefix_queries = 0
        self.prefix_hits = 0
        self.prompt_tokens = 0
        self.generation_tokens = 0
        self.success: dict[str, int] = {"stop": 0, "length": 0, "abort": 0}
        self.e2e = Histogram(E2E_BUCKETS)
        self.ttft = Histogram(TTFT_BUCKETS)
        # The inference handler's success and error series exist from the start (at 0), so an
        # error ratio is defined, and moves, from the first scrape after the first error.
        self.http: dict[tuple[str, str], int] = {("completions", c): 0 for c in ("200", "500", "503")}
        self.corruptions = 0
        self.cache_hits = 0
        self.cache_misses = 0

    def count_http(self, handler: str, code: int) -> None:
        with self.lock:
            key = (handler, str(code))
            self.http[key] = self.http.get(key, 0) + 1


class KVCache:
    """LRU of prefill states keyed by (model, prompt); each entry carries its checksum."""

    def __init__(self, capacity: int):
        self.capacity = max(1, capacity)
        self.lock = threading.Lock()
        self.entries: OrderedDict[str, dict] = OrderedDict()

    @staticmethod
    def key(model: str, prompt: str) -> str:
        return hashlib.sha256(f"{model}\x00{prompt}".encode()).hexdigest()[:32]

    @staticmethod
    def checksum(data: bytes) -> str:
        return hashlib.blake2b(data, digest_size=16).hexdigest()

    def put(self, key: str, data: bytes, corrupt: bool = False, silent: bool = False) -> None:
        entry = {"data": data, "checksum": self.checksum(data)}
        if corrupt:
            entry["data"] = _flip(data)
            if silent:  # damaged before the checksum was taken: data and checksum agree
                entry["checksum"] = self.checksum(entry["data"])
        with self.lock:
            self.entries[key] = entry
            self.entries.move_to_end(key)
            while len(self.entries) > self.capacity:
                self.entries.popitem(last=False)

    def get(self, key: str) -> tuple[str, bytes | None]:
        """Returns ('hit', data), ('miss', None) or ('corrupt', None); a corrupt entry is evicted."""
        with self.lock:
            entry = self.entries.get(key)
            if entry is None:
                return "miss", None
            if self.checksum(entry["data"]) != entry["checksum"]:
                del self.entries[key]
                return "corrupt", None
            self.entries.move_to_end(key)
            return "hit", entry["data"]

    def corrupt(self, percent: float, rng: random.Random, silent: bool = False) -> int:
        with self.lock:
            keys = list(self.entries)
            n = len(keys) if percent >= 100 else round(len(keys) * percent / 100.0)
            for key in rng.sample(keys, n):
                entry = self.entries[key]
                entry["data"] = _flip(entry["data"])
                if silent:  # damaged before the checksum was taken: data and checksum agree
                    entry["checksum"] = self.checksum(entry["data"])
            return n

    def verify(self) -> int:
        with self.lock:
            bad = [k for k, e in self.entries.items() if self.checksum(e["data"]) != e["checksum"]]
            for key in bad:
                del self.entries[key]
            return len(bad)

    def clear(self) -> int:
        with self.lock:
            n = len(self.entries)
            self.entries.clear()
            return n

    def __len__(self) -> int:
        return len(self.entries)


def _flip(data: bytes) -> bytes:
    return bytes([data[0] ^ 0xFF]) + data[1:]


class StoreUnavailable(Exception):
    pass


class SessionStore:
    """Sessions in memory, or as one JSON file each in a directory shared by several pods."""

    _ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")

    def __init__(self, directory: str | None):
        self.dir = Path(directory) if directory else None
        self.mem: dict[str, dict] = {}
        self.lock = threading.Lock()
        self.unreachable = False
        self.disk_full = False
        if self.dir:
            self.dir.mkdir(parents=True, exist_ok=True)

    @property
    def backend(self) -> str:
        return f"file:{self.dir}" if self.dir else "memory"

    def _check(self) -> None:
        if self.unreachable:
            raise StoreUnavailable("session store unreachable: connection refused")

    def create(self, owner: str) -> dict:
        self._check()
        if self.disk_full:
            raise OSError(28, "No space left on device")
        sid = uuid.uuid4().hex[:16]
        rec = {"id": sid, "created": time.time(), "last_used": time.time(), "turns": 0,
               "created_by": owner}
        self._save(rec)
        return rec

    def get(self, sid: str) -> dict | None:
        self._check()
        if not self._ID.match(sid):
            return None
        if self.dir:
            try:
                return json.loads((self.dir / f"{sid}.json").read_text())
            except (OSError, ValueError):
                return None
        with self.lock:
            rec = self.mem.get(sid)
            return dict(rec) if rec else None

    def touch(self, rec: dict) -> None:
        rec["turns"] += 1
        rec["last_used"] = time.time()
        if not self.disk_full:
            self._save(rec)

    def _save(self, rec: dict) -> None:
        if self.dir:
            tmp = self.dir / f".{rec['id']}.{os.getpid()}.tmp"
            tmp.write_text(json.dumps(rec))
            tmp.replace(self.dir / f"{rec['id']}.json")
        else:
            with self.lock:
                self.mem[rec["id"]] = dict(rec)

    def list(self) -> list[dict]:
        self._check()
        if self.dir:
            out = []
            for path in sorted(self.dir.glob("*.json")):
                try:
                    out.append(json.loads(path.read_text()))
                except (OSError, ValueError):
                    continue
            return out
        with self.lock:
            return [dict(r) for r in self.mem.values()]

    def wipe(self) -> int:
        if self.dir:
            n = 0
            for path in self.dir.glob("*.json"):
                try:
                    path.unlink()
                    n += 1
                except OSError:
                    pass
            return n
        with self.lock:
            n = len(self.mem)
            self.mem.clear()
            return n

    def health(self) -> dict:
        start = time.monotonic()
        info: dict = {"backend": self.backend, "reachable": not self.unreachable}
        if self.unreachable:
            info["error"] = "connection refused"
            return info
        try:
            info["sessions"] = len(self.list())
            if self.dir:
                probe = self.dir / f".probe.{os.getpid()}"
                probe.write_text("ok")
                probe.unlink()
            info["writable"] = not self.disk_full
        except OSError as exc:
            info["reachable"] = False
            info["error"] = str(exc)
        info["latency_ms"] = round((time.monotonic() - start) * 1000, 3)
        return info


ENVOY_ADMIN_HOSTS = ("127.0.0.1", "localhost")
ENVOY_ADMIN_USAGE = ("usage: /runtime_modify?key1=value1&key2=value2&keyN=valueN\n"
                     "       or send the parameters as form values\n"
                     "use an empty value to remove a previously added override")
ENVOY_ADMIN_HELP = ("invalid path. admin commands are:\n"
                    "  /runtime: print runtime values\n"
                    "  /runtime_modify (POST): Adds or modifies runtime values as passed in query "
                    "parameters. To delete a previously added key, use an empty string as the "
                    "value.\n")


def evenly_spread_hit(n: int, percent: float) -> bool:
    """Whether the n-th request (from 0) is hit: exactly percent% of consecutive requests, spread evenly."""
    return int((n + 1) * percent / 100.0) > int(n * percent / 100.0)


def absolute_target(target: str) -> tuple[str | None, int] | None:
    """(host, port) of an absolute-form http:// request target (what curl sends a proxy), else None."""
    if not target.startswith("http://"):
        return None
    parts = urlsplit(target)
    try:
        return parts.hostname, parts.port or 80
    except ValueError:
        return None


class EnvoySidecar:
    """The pod's Envoy sidecar as far as the lab needs it: the admin runtime and the HTTP fault filter.

    kwok runs no images, so the `envoy` container of a lab pod is emulated here: its Exec sends
    curl through http_proxy to this process, so an absolute-form request for
    http://127.0.0.1:15000/... is the admin API (POST /runtime_modify, GET /runtime), with
    Envoy's semantics: the admin layer holds string values, an empty value removes the key.

    The fault filter reads the fault filter's default runtime keys under `prefix`
    (abort.abort_percent, abort.http_status, delay.fixed_delay_percent,
    delay.fixed_duration_ms) over its configured values, which are an abort of 503 and a fixed
    delay of 1 s, both at 0%: nothing happens until a key says so. Unlike Envoy's random draw,
    the lab's percentages are exact over consecutive requests (the error-rate fault's sequence).
    """

    LAYERS = ("static", "admin")
    DEFAULT_ABORT_STATUS = 503
    DEFAULT_DELAY_MS = 1000.0

    def __init__(self, admin_port: int = 15000, prefix: str = "fault.http"):
        self.admin_port = admin_port
        self.prefix = prefix.rstrip(".")
        self.lock = threading.Lock()
        self.admin: dict[str, str] = {}
        self.abort_seq = 0
        self.delay_seq = 0

    # -- the admin API --
    def is_admin_target(self, target: str) -> bool:
        """An absolute-form request target addressed to the admin port (what curl sends a proxy)."""
        addressed = absolute_target(target)
        return addressed is not None and addressed[0] in ENVOY_ADMIN_HOSTS and addressed[1] == self.admin_port

    def modify(self, pairs: list[tuple[str, str]]) -> None:
        with self.lock:
            for key, value in pairs:
                if value == "":
                    self.admin.pop(key, None)
                else:
                    self.admin[key] = value

    def runtime(self) -> dict:
        """GET /runtime as Envoy answers it (no static layer values: the filter's are config)."""
        with self.lock:
            entries = {key: {"final_value": value, "layer_values": ["", value]}
                       for key, value in sorted(self.admin.items())}
        return {"layers": list(self.LAYERS), "entries": entries}

    # -- the HTTP fault filter --
    def _number(self, name: str, default: float, low: float, high: float | None = None) -> float:
        raw = self.admin.get(f"{self.prefix}.{name}")
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:  # Envoy ignores a value it cannot read and keeps the configured one
            return default
        if not math.isfinite(value) or value < low:  # NaN, infinite or below the range
            return default
        return min(value, high) if high is not None else value

    def decide(self) -> tuple[float, int | None]:
        """(delay in seconds, abort status or None) for the next request on the data path."""
        with self.lock:
            delay_pct = self._number("delay.fixed_delay_percent", 0.0, 0.0, 100.0)
            abort_pct = self._number("abort.abort_percent", 0.0, 0.0, 100.0)
            delay = 0.0
            if delay_pct > 0:
                n, self.delay_seq = self.delay_seq, self.delay_seq + 1
                if evenly_spread_hit(n, delay_pct):
                    delay = self._number("delay.fixed_duration_ms", self.DEFAULT_DELAY_MS, 0.0) / 1000.0
            abort = None
            if abort_pct > 0:
                n, self.abort_seq = self.abort_seq, self.abort_seq + 1
                if evenly_spread_hit(n, abort_pct):
                    status = int(self._number("abort.http_status", self.DEFAULT_ABORT_STATUS, 200.0))
                    abort = status if 200 <= status <= 599 else self.DEFAULT_ABORT_STATUS
        return delay, abort


PROMETHEUS_USER_AGENT = "Prometheus/"
PROMETHEUS_SCRAPE_HEADER = "X-Prometheus-Scrape-Timeout-Seconds"
PROBE_USER_AGENT = "kube-probe/"


def classify_peer(target: str, headers: dict[str, str]) -> str | None:
    """Who sent a request, as far as the pod's NetworkPolicies go (headers: lower-case names).

    None: never subject to policy: absolute-form requests are made inside the pod (kubectl exec
    through http_proxy) and kubelet's probes come from the node. Prometheus says who it is;
    any other origin-form request is the data plane (HAProxy).
    """
    if "://" in target or headers.get("user-agent", "").startswith(PROBE_USER_AGENT):
        return None
    if PROMETHEUS_SCRAPE_HEADER.lower() in headers or \
            headers.get("user-agent", "").startswith(PROMETHEUS_USER_AGENT):
        return "prometheus"
    return "dataplane"


class LabState:
    """What the lab's supervisor, playing CNI and kubelet, tells this process through a file.

    {"network": {"prometheus": bool, "dataplane": bool}, "devices": {"gpu_lost": bool}}: the
    NetworkPolicy verdict for each known peer and whether the node lost the pod's GPUs. The
    file is re-read when it changes (checked at most every 50 ms); without one, all is allowed.
    """

    def __init__(self, path: str | None, log: Log | None = None):
        self.path = path
        self.log = log
        self.lock = threading.Lock()
        self.stamp: tuple[int, int] | None = None
        self.checked = 0.0
        self.network: dict[str, bool] = {}
        self.gpu_lost = False
        self.refresh(force=True)

    def refresh(self, force: bool = False) -> None:
        if not self.path:
            return
        now = time.monotonic()
        if not force and now - self.checked < 0.05:
            return
        with self.lock:
            self.checked = now
            try:
                st = os.stat(self.path)
                stamp = (st.st_mtime_ns, st.st_size)
                if stamp == self.stamp:
                    return
                data = json.loads(Path(self.path).read_text())
            except (OSError, ValueError):
                return
            self.stamp = stamp
            network = {k: bool(v) for k, v in (data.get("network") or {}).items()}
            gpu_lost = bool((data.get("devices") or {}).get("gpu_lost"))
            if self.log and network != self.network:
                self.log.event("network_policy", *(f"{k}={'allow' if v else 'drop'}" for k, v in sorted(network.items())))
            if self.log and gpu_lost != self.gpu_lost:
                if gpu_lost:
                    self.log.event("gpu_unavailable", "CUDA error: no CUDA-capable device is detected",
                                   source="node")
                else:
                    self.log.event("gpu_available", source="node")
            self.network, self.gpu_lost = network, gpu_lost

    def admits(self, peer: str | None) -> bool:
        if peer is None:
            return True
        self.refresh()
        return self.network.get(peer, True)


class ProxyTargets:
    """The absolute-form targets this process answers, as the pod's network namespace would.

    kubectl exec sends curl and the cli through http_proxy to this process; a real pod has its
    runtime on POD_PORT (the container's http port), Envoy's admin on its admin port, and the
    process's own port (the cli's VERITAS_RUNTIME_ADDR). Anything else is refused (502).
    """

    def __init__(self, ports: set[int], hosts: set[str]):
        self.ports = ports
        self.hosts = hosts

    def allowed(self, target: str) -> bool:
        addressed = absolute_target(target)
        return addressed is not None and addressed[0] in self.hosts and addressed[1] in self.ports


def _setting(env: dict[str, str], name: str, default: str = "") -> str:
    """VERITAS_<NAME> (as the lab's manifests spell it) or <NAME>."""
    return env.get(f"VERITAS_{name}") or env.get(name) or default


def _setting_float(env: dict[str, str], name: str, default: float) -> float:
    try:
        return float(_setting(env, name, str(default)))
    except ValueError:
        return default


class Runtime:
    def __init__(self, env: dict[str, str] | None = None):
        env = dict(os.environ if env is None else env)
        self.model = _setting(env, "MODEL", "llama-7b")
        self.variant = _setting(env, "VARIANT")
        self.deployment = _setting(env, "DEPLOYMENT")
        self.pod = _setting(env, "POD_NAME", f"local-{os.getpid()}")
        self.namespace = _setting(env, "POD_NAMESPACE")
        self.per_token_s = _setting_float(env, "PER_TOKEN_MS", 1.0) / 1000.0
        self.prefill_s = _setting_float(env, "PREFILL_MS", 20.0) / 1000.0
        self.prefill_hit_s = _setting_float(env, "PREFILL_HIT_MS", 2.0) / 1000.0
        self.cpu_factor = max(1.0, _setting_float(env, "CPU_FALLBACK_FACTOR", 4.0))
        self.warmup_prompts = int(_setting_float(env, "WARMUP_PROMPTS", 64))
        self.warmup_seconds = _setting_float(env, "WARMUP_SECONDS", 3.0)
        # Loading the model's weights: /health answers 503 until it is done, so a new pod is not
        # Ready at once (a real LLM runtime takes seconds to minutes here).
        self.model_load_seconds = max(0.0, _setting_float(env, "MODEL_LOAD_SECONDS", 0.0))
        self.started = time.time()
        self.log = Log(_setting(env, "LOG_FILE") or None, _setting(env, "CRI_LOG_FILE") or None)
        self.metrics = Metrics(self.model)
        self.cache = KVCache(int(_setting_float(env, "KV_CACHE_CAPACITY", 1024)))
        self.sessions = SessionStore(_setting(env, "SESSION_STORE_DIR") or None)
        self.slots = threading.BoundedSemaphore(int(_setting_float(env, "MAX_NUM_SEQS", 64)))
        self.rng = random.Random()
        self.faults: dict[str, dict] = {}
        self.fault_lock = threading.Lock()
        self.error_seq = 0
        self.degraded_since: float | None = None
        self.warmup: dict = {"state": "idle"}
        self.warmup_lock = threading.Lock()
        self.exit_code: int | None = None
        self.envoy = EnvoySidecar(int(_setting_float(env, "ENVOY_ADMIN_PORT", 15000)),
                                  _setting(env, "ENVOY_FAULT_RUNTIME_PREFIX", "fault.http"))
        # What the pod's spec says to do when the GPUs go away: fail, or serve on CPU.
        self.cpu_fallback = _setting(env, "CPU_FALLBACK", "false").lower() in ("1", "true", "yes")
        self.lab = LabState(env.get("VERITAS_LAB_STATE_FILE") or None, self.log)
        pod_port = int(_setting_float(env, "POD_PORT", 0))
        hosts = {*ENVOY_ADMIN_HOSTS, *([_setting(env, "POD_IP")] if _setting(env, "POD_IP") else [])}
        self.proxy = ProxyTargets({p for p in (pod_port, self.envoy.admin_port) if p}, hosts)
        initial = env.get("VERITAS_FAULTS", "").strip()
        if initial:
            try:
                for name, params in json.loads(initial).items():
                    self.set_fault(name, params or {})
            except (ValueError, AttributeError, KeyError) as exc:
                self.log.event("fault_config_invalid", error=repr(exc))

    # ---- faults -------------------------------------------------------------------------
    def set_fault(self, name: str, params: dict) -> dict:
        if name not in FAULT_NAMES:
            raise KeyError(name)
        params = dict(params)
        record: dict = {"name": name, "since": time.time(), "params": params}
        if name == "error-rate":
            pct = float(params.get("percent", 100))
            if not 0 <= pct <= 100:
                raise ValueError("percent must be within 0..100")
            params["percent"] = pct
            params["status"] = int(params.get("status", 500))
        elif name == "latency":
            params["ms"] = float(params.get("ms", 1000))
            params["jitter_ms"] = float(params.get("jitter_ms", 0))
        elif name == "kv-corruption":
            pct = float(params.get("percent", 100))
            params["percent"] = pct
            params["write_percent"] = float(params.get("write_percent", 0))
            mode = str(params.get("mode", "payload"))
            if mode not in ("payload", "silent"):
                raise ValueError("mode must be payload or silent")
            params["mode"] = mode
            record["corrupted_entries"] = self.cache.corrupt(pct, self.rng, silent=mode == "silent")
        elif name == "gpu-unavailable":
            params["cpu_fallback"] = bool(params.get("cpu_fallback", False))
        elif name == "metrics-off":
            mode = str(params.get("mode", "503"))
            if mode not in ("503", "empty"):
                raise ValueError("mode must be 503 or empty")
            params["mode"] = mode
        elif name == "memory-exhaustion":
            params["oom_kill"] = bool(params.get("oom_kill", False))
        elif name == "disk-exhaustion":
            self.sessions.disk_full = True
        elif name == "session-store-unreachable":
            self.sessions.unreachable = True
        elif name == "session-loss":
            record["sessions_lost"] = self.sessions.wipe()
        with self.fault_lock:
            self.faults[name] = record
        self.log.event("fault_set", name, **{k: v for k, v in params.items()},
                       **{k: v for k, v in record.items() if k not in ("name", "since", "params")})
        if name == "gpu-unavailable":
            self.log.event("gpu_unavailable", "CUDA error: no CUDA-capable device is detected",
                           cpu_fallback=params["cpu_fallback"])
        if name == "memory-exhaustion" and params["oom_kill"]:
            self.exit_code = 137
        return record

    def clear_fault(self, name: str | None) -> list[str]:
        with self.fault_lock:
            names = list(self.faults) if name is None else ([name] if name in self.faults else [])
            for n in names:
                del self.faults[n]
        for n in names:
            if n == "disk-exhaustion":
                self.sessions.disk_full = False
            elif n == "session-store-unreachable":
                self.sessions.unreachable = False
            self.log.event("fault_cleared", n)
        return names

    def fault(self, name: str) -> dict | None:
        rec = self.faults.get(name)
        return rec["params"] if rec else None

    def gpu_state(self) -> dict | None:
        """{"cpu_fallback": bool} when the GPU is gone: the fault switch, else the node's word.

        Two sources kept apart, so that the node coming back clears only its own state.
        """
        gpu = self.fault("gpu-unavailable")
        if gpu is not None:
            return gpu
        self.lab.refresh()
        return {"cpu_fallback": self.cpu_fallback, "source": "node"} if self.lab.gpu_lost else None

    # ---- health ---------------------------------------------------------------------------
    def health(self) -> tuple[int, dict]:
        body: dict = {"pod": self.pod, "variant": self.variant, "model": self.model,
                      "mode": "gpu"}
        reasons = []
        loading_left = self.started + self.model_load_seconds - time.time()
        if loading_left > 0:
            reasons.append(f"loading_model: {self.model} ({loading_left:.1f} s left)")
        gpu = self.gpu_state()
        if gpu is not None:
            if gpu["cpu_fallback"]:
                body["mode"] = "cpu_fallback"
            else:
                reasons.append("gpu_unavailable: CUDA error: no CUDA-capable device is detected")
        if self.fault("memory-exhaustion") is not None:
            reasons.append("memory_exhausted: CUDA out of memory")
        if self.fault("disk-exhaustion") is not None:
            reasons.append("disk_full: no space left on device")
        if reasons:
            body.update(status="unhealthy", reason="; ".join(reasons))
            return 503, body
        body["status"] = "degraded" if body["mode"] == "cpu_fallback" else "ok"
        return 200, body

    # ---- inference ------------------------------------------------------------------------
    def complete(self, req: dict, headers: dict, delay_s: float = 0.0) -> tuple[int, dict, dict]:
        """One completion; delay_s is the sidecar's fault delay, spent before the runtime sees it.

        The delay counts in the latency histograms (time to first token and end to end): the lab
        has one process per pod, so what a mesh's request-duration metric would show is here.
        """
        start = time.monotonic()
        if delay_s > 0:
            time.sleep(delay_s)
        prompt = req.get("prompt", "")
        if isinstance(prompt, list):
            prompt = prompt[0] if prompt else ""
        if not isinstance(prompt, str):
            return 400, {"error": {"message": "prompt must be a string", "type": "invalid_request"}}, {}
        try:
            max_tokens = int(req.get("max_tokens", 16))
        except (TypeError, ValueError):
            return 400, {"error": {"message": "max_tokens must be an integer", "type": "invalid_request"}}, {}
        if not 1 <= max_tokens <= MAX_TOKENS_LIMIT:
            return 400, {"error": {"message": f"max_tokens must be 1..{MAX_TOKENS_LIMIT}", "type": "invalid_request"}}, {}
        model = req.get("model") or self.model
        if model != self.model:
            return 404, {"error": {"message": f"model {model} not found", "type": "not_found"}}, {}

        status = self.injected_failure()
        if status:
            code, message = status
            self.log.event("request_failed", code=code, reason=message.replace(" ", "_"))
            return code, {"error": {"message": message, "type": "server_error"}}, {}

        session = None
        sid = req.get("session_id") or headers.get("x-session-id")
        if sid:
            try:
                session = self.sessions.get(sid)
            except StoreUnavailable as exc:
                self.log.event("session_store_unreachable", sid)
                return 503, {"error": {"message": str(exc), "type": "session_store_unavailable"}}, {}
            if session is None:
                self.log.event("session_not_found", sid, pod=self.pod)
                return 404, {"error": {"message": f"Session not found: {sid}",
                                       "type": "session_not_found"}}, {}

        with self.metrics.lock:
            self.metrics.waiting += 1
        self.slots.acquire()
        with self.metrics.lock:
            self.metrics.waiting -= 1
            self.metrics.running += 1
        try:
            text, cache_result, ttft = self._generate(model, prompt, max_tokens)
        finally:
            self.slots.release()
            with self.metrics.lock:
                self.metrics.running -= 1
        if session is not None:
            try:
                self.sessions.touch(session)
            except (StoreUnavailable, OSError):
                pass
        ttft += delay_s
        e2e = time.monotonic() - start
        prompt_tokens = count_tokens(prompt)
        with self.metrics.lock:
            m = self.metrics
            m.success["length"] += 1
            m.e2e.observe(e2e)
            m.ttft.observe(ttft)
            m.prompt_tokens += prompt_tokens
            m.generation_tokens += max_tokens
        body = {
            "id": "cmpl-" + uuid.uuid4().hex[:24],
            "object": "text_completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": "length"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": max_tokens,
                      "total_tokens": prompt_tokens + max_tokens},
            "veritas": {"pod": self.pod, "variant": self.variant, "deployment": self.deployment,
                        "cache": cache_result, "degraded": cache_result == "corrupt_bypass",
                        "mode": "cpu_fallback" if self.gpu_state() else "gpu",
                        "checksum": text_checksum(text), "session_id": sid or None,
                        "ttft_ms": round(ttft * 1000, 3), "latency_ms": round(e2e * 1000, 3)},
        }
        return 200, body, {"X-Veritas-Cache": cache_result}

    def injected_failure(self) -> tuple[int, str] | None:
        gpu = self.gpu_state()
        if gpu is not None and not gpu["cpu_fallback"]:
            return 503, "GPU unavailable: CUDA error: no CUDA-capable device is detected"
        if self.fault("memory-exhaustion") is not None:
            return 503, "CUDA out of memory"
        err = self.fault("error-rate")
        if err is not None:
            with self.fault_lock:
                n = self.error_seq
                self.error_seq += 1
            # Exactly pct% of consecutive requests fail, spread evenly.
            if evenly_spread_hit(n, err["percent"]):
                return err["status"], "injected error"
        return None

    def _generate(self, model: str, prompt: str, max_tokens: int) -> tuple[str, str, float]:
        key = self.cache.key(model, prompt)
        result, state = self.cache.get(key)
        prompt_tokens = count_tokens(prompt)
        with self.metrics.lock:
            self.metrics.prefix_queries += prompt_tokens
            if result == "hit":
                self.metrics.prefix_hits += prompt_tokens
                self.metrics.cache_hits += 1
            else:
                self.metrics.cache_misses += 1
            if result == "corrupt":
                self.metrics.corruptions += 1
        if result == "corrupt":
            self.log.event("kv_cache_corruption_detected", key, model=model, action="evicted_served_uncached")
            if self.degraded_since is None:
                self.degraded_since = time.time()
            result = "corrupt_bypass"
        if state is None:
            state = prefill_state(model, prompt)
            if result == "miss":
                kv = self.fault("kv-corruption")
                corrupt = bool(kv and kv["write_percent"] and self.rng.random() * 100 < kv["write_percent"])
                self.cache.put(key, state, corrupt=corrupt, silent=kv is not None and kv["mode"] == "silent")
            prefill = self.prefill_s
        else:
            prefill = self.prefill_hit_s
        decode_time = self.per_token_s * max_tokens
        factor = self.cpu_factor if self.gpu_state() else 1.0
        extra = 0.0
        lat = self.fault("latency")
        if lat is not None:
            extra = lat["ms"] / 1000.0
            if lat["jitter_ms"]:
                extra += self.rng.uniform(0, lat["jitter_ms"] / 1000.0)
        ttft = prefill * factor + extra
        time.sleep(ttft + decode_time * factor)
        return decode(state, max_tokens), result, ttft

    # ---- cache admin ----------------------------------------------------------------------
    def cache_status(self) -> dict:
        m = self.metrics
        looked = m.cache_hits + m.cache_misses
        if self.warmup.get("state") == "running":
            state = "warming"
        elif self.degraded_since is not None:
            state = "degraded"
        elif len(self.cache) == 0:
            state = "cold"
        else:
            state = "warm"
        return {
            "model": self.model, "pod": self.pod, "state": state, "entries": len(self.cache),
            "capacity": self.cache.capacity,
            "usage_perc": round(len(self.cache) / self.cache.capacity, 4),
            "hits": m.cache_hits, "misses": m.cache_misses,
            "hit_rate": round(m.cache_hits / looked, 4) if looked else 0.0,
            "corruptions_detected": m.corruptions,
            "degraded_since": self.degraded_since,
            "warmup": dict(self.warmup),
        }

    def invalidate(self) -> int:
        n = self.cache.clear()
        self.degraded_since = None
        self.log.event("cache_invalidated", entries=n, model=self.model)
        return n

    def start_warmup(self, model: str, seconds: float | None, prompts: int | None) -> tuple[int, dict]:
        if model != self.model:
            return 404, {"error": f"model {model} is not loaded on this pod (loaded: {self.model})"}
        if self.fault("disk-exhaustion") is not None:
            self.log.event("cache_warm", model=model, state="failed", reason="disk_full")
            return 507, {"error": "cache warm-up failed: no space left on device"}
        with self.warmup_lock:
            if self.warmup.get("state") == "running":
                return 409, {"error": "warm-up already running", "warmup": dict(self.warmup)}
            total = prompts if prompts else self.warmup_prompts
            self.warmup = {"state": "running", "model": model, "done": 0, "total": total,
                           "progress": 0, "started": time.time(), "id": uuid.uuid4().hex[:8]}
        dur = self.warmup_seconds if seconds is None else seconds
        threading.Thread(target=self._warmup, args=(model, total, dur), daemon=True).start()
        return 202, dict(self.warmup)

    def _warmup(self, model: str, total: int, seconds: float) -> None:
        self.log.event("cache_warm", model=model, state="started", progress="0%", entries=f"0/{total}")
        step = seconds / total if total else 0
        last_decile = 0
        for i in range(total):
            prompt = warmup_prompt(i)
            self.cache.put(self.cache.key(model, prompt), prefill_state(model, prompt))
            self.warmup["done"] = i + 1
            pct = int((i + 1) * 100 / total)
            self.warmup["progress"] = pct
            if pct // 10 > last_decile:
                last_decile = pct // 10
                self.log.event("cache_warm", model=model, state="running", progress=f"{pct}%",
                               entries=f"{i + 1}/{total}")
            if step:
                time.sleep(step)
        self.degraded_since = None
        self.warmup.update(state="done", finished=time.time())
        self.log.event("cache_warm", model=model, state="done", progress="100%",
                       entries=f"{total}/{total}", cache_entries=len(self.cache))

    # ---- metrics --------------------------------------------------------------------------
    def render_metrics(self) -> str:
        m = self.metrics
        lab = m.labels
        out: list[str] = []

        def family(name: str, kind: str, doc: str) -> None:
            out.append(f"# HELP {name} {doc}")
            out.append(f"# TYPE {name} {kind}")

        def hist(name: str, doc: str, h: Histogram) -> None:
            family(name, "histogram", doc)
            for bound, count in zip(h.buckets, h.counts, strict=True):
                out.append(f'{name}_bucket{{{lab},le="{bound}"}} {count}')
            out.append(f'{name}_bucket{{{lab},le="+Inf"}} {h.total}')
            out.append(f"{name}_sum{{{lab}}} {h.sum}")
            out.append(f"{name}_count{{{lab}}} {h.total}")

        with m.lock:
            family("vllm:num_requests_running", "gauge", "Number of requests in model execution batches.")
            out.append(f"vllm:num_requests_running{{{lab}}} {m.running}")
            family("vllm:num_requests_waiting", "gauge", "Number of requests waiting to be processed.")
            out.append(f"vllm:num_requests_waiting{{{lab}}} {m.waiting}")
            family("vllm:kv_cache_usage_perc", "gauge", "KV-cache usage. 1 means 100 percent usage.")
            out.append(f"vllm:kv_cache_usage_perc{{{lab}}} {len(self.cache) / self.cache.capacity}")
            family("vllm:prefix_cache_queries_total", "counter",
                   "Prefix cache queries, in terms of number of queried tokens.")
            out.append(f"vllm:prefix_cache_queries_total{{{lab}}} {m.prefix_queries}")
            family("vllm:prefix_cache_hits_total", "counter",
                   "Prefix cache hits, in terms of number of cached tokens.")
            out.append(f"vllm:prefix_cache_hits_total{{{lab}}} {m.prefix_hits}")
            family("vllm:prompt_tokens_total", "counter", "Number of prefill tokens processed.")
            out.append(f"vllm:prompt_tokens_total{{{lab}}} {m.prompt_tokens}")
            family("vllm:generation_tokens_total", "counter", "Number of generation tokens processed.")
            out.append(f"vllm:generation_tokens_total{{{lab}}} {m.generation_tokens}")
            family("vllm:request_success_total", "counter", "Count of successfully processed requests.")
            for reason, count in m.success.items():
                out.append(f'vllm:request_success_total{{{lab},finished_reason="{reason}"}} {count}')
            hist("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.", m.e2e)
            hist("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", m.ttft)
            family("veritas_http_requests_total", "counter", "HTTP responses by handler and status code.")
            for (handler, code), count in sorted(m.http.items()):
                out.append(f'veritas_http_requests_total{{handler="{handler}",code="{code}"}} {count}')
            family("veritas_kv_cache_corruptions_detected_total", "counter",
                   "KV-cache entries whose checksum did not match on read.")
            out.append(f"veritas_kv_cache_corruptions_detected_total{{{lab}}} {m.corruptions}")
        gpu = self.gpu_state()
        family("veritas_gpu_available", "gauge", "1 when the engine can use its GPU.")
        out.append(f"veritas_gpu_available {0 if gpu is not None else 1}")
        family("veritas_cpu_fallback", "gauge", "1 when the engine serves on CPU after losing its GPU.")
        out.append(f"veritas_cpu_fallback {1 if gpu and gpu['cpu_fallback'] else 0}")
        code, _ = self.health()
        family("veritas_healthy", "gauge", "1 when /health answers 200.")
        out.append(f"veritas_healthy {1 if code == 200 else 0}")
        family("veritas_kv_cache_degraded", "gauge", "1 after a corrupt entry was read, until invalidation or warm-up.")
        out.append(f"veritas_kv_cache_degraded {1 if self.degraded_since is not None else 0}")
        family("veritas_fault_active", "gauge", "Fault switches that are set.")
        for name in FAULT_NAMES:
            out.append(f'veritas_fault_active{{fault="{name}"}} {1 if name in self.faults else 0}')
        family("veritas_runtime_info", "gauge", "Static facts about this runtime process.")
        out.append(f'veritas_runtime_info{{model_name="{self.model}",variant="{self.variant}",'
                   f'deployment="{self.deployment}",pid="{os.getpid()}"}} 1')
        return "\n".join(out) + "\n"

    def status(self) -> dict:
        code, health = self.health()
        return {"pod": self.pod, "namespace": self.namespace, "variant": self.variant,
                "deployment": self.deployment, "model": self.model, "pid": os.getpid(),
                "uptime_s": round(time.time() - self.started, 3), "health": health,
                "healthy": code == 200, "faults": self.fault_list(),
                "cache": self.cache_status(), "session_store": self.sessions.health()}

    def fault_list(self) -> list[dict]:
        with self.fault_lock:
            return [dict(r) for r in self.faults.values()]


HANDLERS = {"/v1/completions": "completions", "/health": "health", "/metrics": "metrics"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes; without TCP_NODELAY a client that reuses the
    # connection waits ~40 ms for the delayed ACK (Nagle) on every response.
    disable_nagle_algorithm = True
    server_version = "veritas-spark-standin/1.0"
    runtime: Runtime

    def log_message(self, format: str, *args: object) -> None:
        return

    def _send(self, code: int, body: object, headers: dict | None = None, handler: str = "") -> None:
        rt = self.runtime
        if isinstance(body, str):
            data = body.encode()
            ctype = "text/plain; version=0.0.4; charset=utf-8"
        else:
            data = json.dumps(body).encode()
            ctype = "application/json"
        # Counted before the client can read the answer: a scrape right after a response sees it.
        rt.metrics.count_http(handler or self._handler_name(), code)
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Veritas-Pod", rt.pod)
        if rt.variant:
            self.send_header("X-Veritas-Variant", rt.variant)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        if rt.exit_code is not None:
            self.wfile.flush()
            rt.log.event("process_exit", code=rt.exit_code, reason="oom_killed")
            os._exit(rt.exit_code)

    def _handler_name(self) -> str:
        path = urlparse(self.path).path
        if path in HANDLERS:
            return HANDLERS[path]
        return "admin" if path.startswith("/admin") else "other"

    def _body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return {}
        raw = self.rfile.read(length)
        data = json.loads(raw or b"{}")
        if not isinstance(data, dict):
            raise TypeError("body must be a JSON object")
        return data

    def _drain_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send_envoy(self, code: int, text: str, ctype: str = "text/plain; charset=UTF-8",
                    headers: dict | None = None) -> None:
        """An answer of the Envoy sidecar (admin API or local reply): Envoy's headers."""
        data = text.encode()
        self.send_response_only(code)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(data)))
        self.send_header("date", self.date_time_string())
        self.send_header("server", "envoy")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _gate(self) -> bool:
        """Network first: False when the request must not reach the runtime (already handled).

        An absolute-form target for a port this pod does not serve gets the 502 a proxy gives
        for a refused connection. A peer the pod's NetworkPolicies do not admit is dropped:
        the connection closes without an answer (no metrics, no log: it never got in).
        """
        rt = self.runtime
        if "://" in self.path:
            if rt.proxy.allowed(self.path):
                return True
            self._drain_body()
            target = urlsplit(self.path)
            self._send_envoy(502, f"connection refused: nothing listens on {target.netloc} in pod {rt.pod}\n")
            return False
        peer = classify_peer(self.path, {k.lower(): v for k, v in self.headers.items()})
        if rt.lab.admits(peer):
            return True
        self.close_connection = True
        return False

    def _envoy_admin(self) -> bool:
        """Answers a request addressed to the sidecar's admin port; False for any other request.

        Only an absolute-form target reaches it (`curl http://127.0.0.1:15000/...` with http_proxy
        set to this process, as the pod's envoy container runs it): the runtime's own API has no
        admin path of Envoy's.
        """
        envoy = self.runtime.envoy
        if not envoy.is_admin_target(self.path):
            return False
        target = urlsplit(self.path)
        body = self._drain_body()
        path = target.path or "/"
        if path == "/runtime":
            self._send_envoy(200, json.dumps(envoy.runtime(), indent=2) + "\n", "application/json",
                             {"cache-control": "no-cache, max-age=0", "x-content-type-options": "nosniff"})
        elif path == "/runtime_modify":
            if self.command != "POST":
                self._send_envoy(405, f"Method {self.command} not allowed, POST required.")
                return True
            pairs = parse_qsl(target.query, keep_blank_values=True)
            if body and "x-www-form-urlencoded" in (self.headers.get("Content-Type") or ""):
                pairs += parse_qsl(body.decode(errors="replace"), keep_blank_values=True)
            if not pairs:
                self._send_envoy(400, ENVOY_ADMIN_USAGE)
                return True
            envoy.modify(pairs)
            self.runtime.log.event("envoy_runtime_modify", *(f"{k}={v}" for k, v in pairs))
            self._send_envoy(200, "OK\n")
        else:
            self._send_envoy(404, ENVOY_ADMIN_HELP)
        return True

    def _envoy_fault_filter(self, path: str) -> tuple[float, bool]:
        """The sidecar's HTTP fault filter on the data path (/v1/...): (delay to add, answered).

        An abort is Envoy's local reply after the delay, counted in the runtime's HTTP metrics
        like an error of the error-rate fault; the lab's X-Veritas-Pod/-Variant headers are kept
        so that load records attribute it to the pod.
        """
        if not path.startswith("/v1/"):
            return 0.0, False
        rt = self.runtime
        delay, abort = rt.envoy.decide()
        if abort is None:
            return delay, False
        self._drain_body()
        if delay > 0:
            time.sleep(delay)
        rt.log.event("request_failed", code=abort, reason="fault_filter_abort")
        rt.metrics.count_http(self._handler_name(), abort)
        lab = {"X-Veritas-Pod": rt.pod, **({"X-Veritas-Variant": rt.variant} if rt.variant else {})}
        self._send_envoy(abort, "fault filter abort", "text/plain", lab)
        return delay, True

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        rt = self.runtime
        if not self._gate() or self._envoy_admin():
            return
        path = urlparse(self.path).path
        delay, answered = self._envoy_fault_filter(path)
        if answered:
            return
        if delay > 0:
            time.sleep(delay)
        if path in ("/health", "/healthz"):
            code, body = rt.health()
            self._send(code, body)
        elif path == "/metrics":
            off = rt.fault("metrics-off")
            if off is None:
                self._send(200, rt.render_metrics())
            elif off["mode"] == "empty":
                self._send(200, "# metrics collection disabled\n")
            else:
                self._send(503, "metrics unavailable\n")
        elif path == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": rt.model, "object": "model",
                                                         "owned_by": "veritas"}]})
        elif path == "/admin/status":
            self._send(200, rt.status())
        elif path == "/admin/cache":
            self._send(200, rt.cache_status())
        elif path == "/admin/cache/warmup":
            self._send(200, dict(rt.warmup))
        elif path == "/admin/sessions":
            try:
                self._send(200, {"backend": rt.sessions.backend, "sessions": rt.sessions.list()})
            except StoreUnavailable as exc:
                self._send(503, {"error": str(exc), "backend": rt.sessions.backend})
        elif path == "/admin/sessions/health":
            info = rt.sessions.health()
            self._send(200 if info["reachable"] else 503, info)
        elif path == "/admin/faults":
            self._send(200, {"faults": rt.fault_list(), "known": list(FAULT_NAMES)})
        else:
            self._send(404, {"error": f"no route for GET {path}"})

    def do_POST(self) -> None:
        rt = self.runtime
        if not self._gate() or self._envoy_admin():
            return
        path = urlparse(self.path).path
        delay, answered = self._envoy_fault_filter(path)
        if answered:
            return
        if delay > 0 and path != "/v1/completions":  # a completion counts it in its latency
            time.sleep(delay)
        try:
            body = self._body()
        except (ValueError, TypeError) as exc:
            if delay > 0 and path == "/v1/completions":
                time.sleep(delay)
            self._send(400, {"error": f"invalid JSON body: {exc}"})
            return
        if path == "/v1/completions":
            code, resp, headers = rt.complete(body, {k.lower(): v for k, v in self.headers.items()},
                                              delay_s=delay)
            self._send(code, resp, headers)
        elif path == "/v1/sessions":
            try:
                rec = rt.sessions.create(rt.pod)
                rt.log.event("session_created", rec["id"], pod=rt.pod)
                self._send(201, {"session_id": rec["id"], **rec})
            except StoreUnavailable as exc:
                self._send(503, {"error": str(exc)})
            except OSError as exc:
                self._send(507, {"error": str(exc)})
        elif path == "/admin/cache/warmup":
            seconds = body.get("seconds")
            prompts = body.get("prompts")
            code, resp = rt.start_warmup(str(body.get("model") or rt.model),
                                         float(seconds) if seconds is not None else None,
                                         int(prompts) if prompts else None)
            self._send(code, resp)
        elif path == "/admin/cache/invalidate":
            self._send(200, {"invalidated": rt.invalidate()})
        elif path == "/admin/cache/verify":
            bad = rt.cache.verify()
            if bad:
                with rt.metrics.lock:
                    rt.metrics.corruptions += bad
                rt.degraded_since = rt.degraded_since or time.time()
                rt.log.event("kv_cache_corruption_detected", f"{bad}_entries", action="evicted_by_verify")
            self._send(200, {"corrupt_evicted": bad, "entries": len(rt.cache)})
        elif path.startswith("/admin/faults/"):
            name = path.rsplit("/", 1)[1]
            try:
                rec = rt.set_fault(name, body)
            except KeyError:
                self._send(404, {"error": f"unknown fault {name}", "known": list(FAULT_NAMES)})
                return
            except (TypeError, ValueError) as exc:
                self._send(400, {"error": str(exc)})
                return
            self._send(200, rec)
        else:
            self._send(404, {"error": f"no route for POST {path}"})

    do_PUT = do_POST

    def do_DELETE(self) -> None:
        rt = self.runtime
        if not self._gate() or self._envoy_admin():
            return
        path = urlparse(self.path).path
        if path == "/admin/faults":
            self._send(200, {"cleared": rt.clear_fault(None)})
        elif path.startswith("/admin/faults/"):
            name = path.rsplit("/", 1)[1]
            if name not in FAULT_NAMES:
                self._send(404, {"error": f"unknown fault {name}", "known": list(FAULT_NAMES)})
                return
            self._send(200, {"cleared": rt.clear_fault(name)})
        else:
            self._send(404, {"error": f"no route for DELETE {path}"})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    runtime: Runtime

    def handle_error(self, request: object, client_address: object) -> None:
        # A peer closing a kept-alive connection (proxies do) is routine, not worth a traceback.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        self.runtime.log.event("http_handler_error", type(exc).__name__,
                               detail=str(exc)[:200].replace(" ", "_"))


def serve(runtime: Runtime, addr: str) -> Server:
    host, _, port = addr.rpartition(":")
    host = host or "127.0.0.1"
    if host not in ("127.0.0.1", "localhost"):
        raise SystemExit(f"refusing to bind {host}: the lab binds 127.0.0.1 only")
    handler = type("BoundHandler", (Handler,), {"runtime": runtime})
    server = Server(("127.0.0.1", int(port or 0)), handler)
    server.runtime = runtime
    # The cli reaches the process through http_proxy too, at its real port.
    runtime.proxy.ports.add(server.server_address[1])
    return server


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen", default=os.environ.get("VERITAS_RUNTIME_ADDR", "127.0.0.1:0"))
    args = ap.parse_args(argv)
    runtime = Runtime()
    server = serve(runtime, args.listen)
    port = server.server_address[1]
    runtime.log.event("listening", f"127.0.0.1:{port}", pod=runtime.pod, variant=runtime.variant,
                      model=runtime.model, pid=os.getpid())
    ready_file = os.environ.get("VERITAS_READY_FILE")
    if ready_file:
        tmp = ready_file + ".tmp"
        Path(tmp).write_text(json.dumps({"port": port, "pid": os.getpid()}))
        os.replace(tmp, ready_file)

    def stop(signum: int, _frame: object) -> None:
        runtime.log.event("shutdown", signal=signal.Signals(signum).name)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

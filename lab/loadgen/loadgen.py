#!/usr/bin/env python3
"""Steady-rate, open-loop load generator for the lab. Standard library only.

Request i is due at start + i/rate whatever happened to earlier ones (open loop); a pool of
worker threads with keep-alive connections sends them. Every response is recorded: due time,
send time, latency (from send and from due time), status, and the X-Veritas-Variant and
X-Veritas-Pod headers. Output: JSONL or CSV records, a line per second while running, and a
summary per variant at the end (also as JSON with --summary-json).

Bounded: only 127.0.0.1/localhost targets, rate <= 2000/s, duration <= 3600 s,
at most 1,000,000 requests.

  python lab/loadgen/loadgen.py --url http://127.0.0.1:8080/v1/completions --rate 100 \
      --duration 30 --out run.jsonl --summary-json summary.json
  python -m lab.loadgen ...            (from the repo root)

From Python: `from loadgen import run, summarize` (with lab/loadgen on sys.path).

The summary's statistics are the collection's (plugins/module_utils/_loadstats.py, loaded from
this checkout): the game days' criteria read the records with the same function.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import http.client
import importlib.util
import json
import queue
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlparse


def _load_stats_module():
    """The collection's statistics (plugins/module_utils/_loadstats.py, standard library only),
    loaded from this checkout's file: the summary and the game days' criteria are one function."""
    name = "veritas_chaos_loadstats"
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).resolve().parents[2] / "plugins" / "module_utils" / "_loadstats.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_loadstats = _load_stats_module()
window_stats = _loadstats.window_stats
percentile = _loadstats.percentile
DEFAULT_MIN_SAMPLES = _loadstats.DEFAULT_MIN_SAMPLES

MAX_RATE = 2000.0
MAX_DURATION = 3600.0
MAX_REQUESTS = 1_000_000
LOCAL_HOSTS = ("127.0.0.1", "localhost")
FIELDS = ("seq", "due", "sent", "done", "latency_ms", "latency_from_due_ms", "status", "variant",
          "pod", "error", "correct")


@dataclass
class Record:
    seq: int
    due: float
    sent: float = 0.0
    done: float = 0.0
    latency_ms: float = 0.0
    latency_from_due_ms: float = 0.0
    status: int = 0
    variant: str = ""
    pod: str = ""
    error: str = ""
    correct: bool | None = None


@dataclass
class Config:
    url: str
    rate: float = 100.0
    duration: float = 10.0
    max_tokens: int = 16
    prompts: int = 64
    model: str | None = None
    concurrency: int = 64
    timeout: float = 5.0
    verify: bool = False
    headers: dict = field(default_factory=dict)


def warmup_prompt(i: int) -> str:
    # Same corpus as the runtime's warm-up (lab/runtime/veritas_runtime.py).
    return f"veritas lab prompt {i}"


VOCAB = ("the", "model", "answers", "with", "steady", "tokens", "cache", "blue", "green",
         "canary", "control", "latency", "prefix", "session", "engine", "veritas", "spark",
         "request", "metric", "budget", "replica", "signal", "window", "rollout", "health",
         "stream", "kernel", "tensor", "vector", "batch", "queue", "block")


def expected_text(model: str, prompt: str, max_tokens: int) -> str:
    """The runtime's deterministic answer, computed independently to check responses."""
    state = hashlib.sha256(f"{model}\x00{prompt}".encode()).digest()
    words: list[str] = []
    block = b""
    counter = 0
    while len(words) < max_tokens:
        if not block:
            block = hashlib.sha256(state + counter.to_bytes(4, "big")).digest()
            counter += 1
        words.append(VOCAB[block[0] % len(VOCAB)])
        block = block[1:]
    return " ".join(words)


def validate(cfg: Config) -> tuple[str, int, str]:
    url = urlparse(cfg.url)
    if url.scheme != "http":
        raise ValueError("only http:// targets")
    if url.hostname not in LOCAL_HOSTS:
        raise ValueError(f"target must be 127.0.0.1 or localhost, not {url.hostname}")
    if not 0 < cfg.rate <= MAX_RATE:
        raise ValueError(f"rate must be within (0, {MAX_RATE}]")
    if not 0 < cfg.duration <= MAX_DURATION:
        raise ValueError(f"duration must be within (0, {MAX_DURATION}]")
    if cfg.rate * cfg.duration > MAX_REQUESTS:
        raise ValueError(f"at most {MAX_REQUESTS} requests per run")
    if not 1 <= cfg.concurrency <= 512:
        raise ValueError("concurrency must be within 1..512")
    return "127.0.0.1", url.port or 80, url.path or "/v1/completions"


class Progress:
    """Counts by completion second, printed as each second closes."""

    def __init__(self, out, start: float):
        self.out = out
        self.start = start
        self.lock = threading.Lock()
        self.seconds: dict[int, dict] = {}
        self.printed = -1

    def add(self, rec: Record) -> None:
        sec = int(rec.done - self.start)
        with self.lock:
            s = self.seconds.setdefault(sec, {"n": 0, "err": 0, "lat": [], "variants": {}})
            s["n"] += 1
            if not 200 <= rec.status < 400:
                s["err"] += 1
            s["lat"].append(rec.latency_ms)
            key = rec.variant or "-"
            s["variants"][key] = s["variants"].get(key, 0) + 1

    def flush(self, upto: int) -> None:
        if self.out is None:
            return
        with self.lock:
            for sec in range(self.printed + 1, upto):
                s = self.seconds.pop(sec, {"n": 0, "err": 0, "lat": [], "variants": {}})
                lat = sorted(s["lat"])
                variants = " ".join(f"{k}={v}" for k, v in sorted(s["variants"].items()))
                self.out.write(f"t={sec:>4}s responses={s['n']} errors={s['err']} "
                               f"p50_ms={_ms(percentile(lat, 50))} p99_ms={_ms(percentile(lat, 99))} {variants}\n")
                self.printed = sec
            self.out.flush()


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def run(cfg: Config, progress_out=None, sink=None) -> list[Record]:
    """Sends rate x duration requests on schedule; returns every record in seq order.

    `sink(record)` is called for each completed request (e.g. to stream records to a file).
    """
    host, port, path = validate(cfg)
    total = round(cfg.rate * cfg.duration)
    work: queue.Queue = queue.Queue()
    records: list[Record | None] = [None] * total
    start = time.time() + 0.05
    mono0 = time.monotonic() + 0.05
    prog = Progress(progress_out, start)
    sink_lock = threading.Lock()

    def worker() -> None:
        conn: http.client.HTTPConnection | None = None
        while True:
            item = work.get()
            if item is None:
                break
            seq, due = item
            prompt = warmup_prompt(seq % max(1, cfg.prompts))
            body = {"prompt": prompt, "max_tokens": cfg.max_tokens}
            if cfg.model:
                body["model"] = cfg.model
            rec = Record(seq=seq, due=due)
            rec.sent = time.time()
            t0 = time.monotonic()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(host, port, timeout=cfg.timeout)
                conn.request("POST", path, body=json.dumps(body),
                             headers={"Content-Type": "application/json", **cfg.headers})
                resp = conn.getresponse()
                data = resp.read()
                rec.status = resp.status
                rec.variant = resp.getheader("X-Veritas-Variant", "") or ""
                rec.pod = resp.getheader("X-Veritas-Pod", "") or ""
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
                if cfg.verify and resp.status == 200:
                    rec.correct = _check(data, prompt, cfg)
            except (OSError, http.client.HTTPException) as exc:
                rec.error = f"{type(exc).__name__}: {exc}"[:200]
                if conn is not None:
                    conn.close()
                conn = None
            rec.done = time.time()
            rec.latency_ms = round((time.monotonic() - t0) * 1000, 3)
            rec.latency_from_due_ms = round((rec.done - due) * 1000, 3)
            records[seq] = rec
            prog.add(rec)
            if sink is not None:
                with sink_lock:
                    sink(rec)
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(cfg.concurrency)]
    for t in threads:
        t.start()
    for seq in range(total):
        due_mono = mono0 + seq / cfg.rate
        delay = due_mono - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        work.put((seq, start + seq / cfg.rate))
        prog.flush(int(time.time() - start))
    for _ in threads:
        work.put(None)
    deadline = time.monotonic() + cfg.timeout + 5
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    prog.flush(int(time.time() - start) + 1)
    return [r if r is not None else Record(seq=i, due=start + i / cfg.rate, error="not completed")
            for i, r in enumerate(records)]


def _check(data: bytes, prompt: str, cfg: Config) -> bool:
    try:
        doc = json.loads(data)
        text = doc["choices"][0]["text"]
        model = doc.get("model") or cfg.model or ""
    except (ValueError, KeyError, IndexError, TypeError):
        return False
    return text == expected_text(model, prompt, cfg.max_tokens)


def summarize(records: list[Record], min_samples: int = DEFAULT_MIN_SAMPLES) -> dict:
    """Totals, per variant and per second (by due time) of a run's records.

    Every number is window_stats' (plugins/module_utils/_loadstats.py), the function the
    game days' load_window lookup uses: fewer than `min_samples` requests is not measured
    (`measured` false, ratios and percentiles null). Variants and shares count the answered
    requests (a transport error has no variant).
    """
    rows = [asdict(r) if isinstance(r, Record) else r for r in records]
    if not rows:
        return {"total": 0, **window_stats([], min_samples=min_samples), "variants": {}, "seconds": []}
    start = min(row["due"] for row in rows)
    whole = window_stats(rows, min_samples=min_samples)
    by_second: dict[int, list[dict]] = {}
    for row in rows:
        by_second.setdefault(int(row["due"] - start), []).append(row)
    seconds = []
    for sec in sorted(by_second):
        stats = window_stats(by_second[sec], min_samples=min_samples)
        seconds.append({"second": sec, **_without(stats, "by_variant", "shares", "pods", "last_sent_by_variant")})
    duration = max(row["due"] for row in rows) - start
    total = len(rows)
    return {"total": total, "started": start, "duration_s": round(duration, 3),
            "achieved_rate": round((total - 1) / duration, 2) if duration > 0 else float(total),
            **_without(whole, "variants", "by_variant", "last_sent_by_variant"),
            "variants": whole["by_variant"], "seconds": seconds}


def _without(stats: dict, *keys: str) -> dict:
    return {k: v for k, v in stats.items() if k not in keys}


def format_summary(summary: dict) -> str:
    head = (f"total={summary['total']} ok={summary.get('ok', 0)} "
            f"error_ratio={summary.get('error_ratio')} p50_ms={summary.get('p50_ms')} "
            f"p99_ms={summary.get('p99_ms')} rate={summary.get('achieved_rate', 0)}/s")
    if not summary.get("measured", True):
        head += f" (not measured: fewer than {summary.get('min_samples')} requests)"
    lines = [head]
    for name, v in summary["variants"].items():
        share = "-" if v.get("share") is None else f"{v['share'] * 100:.1f}%"
        lines.append(f"variant={name} count={v['count']} share={share} "
                     f"error_ratio={v['error_ratio']} p50_ms={v['p50_ms']} p99_ms={v['p99_ms']}")
    return "\n".join(lines) + "\n"


class FileSink:
    def __init__(self, path: str, fmt: str):
        self.fh = open(path, "w", newline="")  # noqa: SIM115 - closed by close()
        self.fmt = fmt
        self.writer = None
        if fmt == "csv":
            self.writer = csv.DictWriter(self.fh, fieldnames=FIELDS)
            self.writer.writeheader()

    def __call__(self, rec: Record) -> None:
        row = asdict(rec)
        if self.writer is not None:
            self.writer.writerow(row)
        else:
            self.fh.write(json.dumps(row) + "\n")

    def close(self) -> None:
        self.fh.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="loadgen", description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True, help="http://127.0.0.1:PORT/v1/completions")
    ap.add_argument("--rate", type=float, default=100.0, help="requests per second")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds")
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--prompts", type=int, default=64, help="size of the prompt corpus to cycle through")
    ap.add_argument("--model")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--verify", action="store_true", help="check each answer against the expected text")
    ap.add_argument("--header", action="append", default=[], help="extra request header K:V")
    ap.add_argument("--out", help="write every response here (JSONL, or CSV if it ends in .csv)")
    ap.add_argument("--format", choices=["jsonl", "csv"])
    ap.add_argument("--summary-json", help="write the summary here")
    ap.add_argument("--quiet", action="store_true", help="no per-second lines")
    args = ap.parse_args(argv)
    headers = {}
    for h in args.header:
        k, _, v = h.partition(":")
        headers[k.strip()] = v.strip()
    cfg = Config(url=args.url, rate=args.rate, duration=args.duration, max_tokens=args.max_tokens,
                 prompts=args.prompts, model=args.model, concurrency=args.concurrency,
                 timeout=args.timeout, verify=args.verify, headers=headers)
    try:
        validate(cfg)
    except ValueError as exc:
        print(f"loadgen: {exc}", file=sys.stderr)
        return 2
    sink = None
    if args.out:
        fmt = args.format or ("csv" if args.out.endswith(".csv") else "jsonl")
        sink = FileSink(args.out, fmt)
    try:
        records = run(cfg, progress_out=None if args.quiet else sys.stdout, sink=sink)
    finally:
        if sink is not None:
            sink.close()
    summary = summarize(records)
    sys.stdout.write(format_summary(summary))
    if args.summary_json:
        with open(args.summary_json, "w") as fh:
            json.dump(summary, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

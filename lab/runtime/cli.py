#!/usr/bin/env python3
"""The runtime's `cli`, as the runbook runs it inside a pod: `kubectl exec POD -- ./cli ...`.

It talks to the pod's runtime process over HTTP at $VERITAS_RUNTIME_ADDR (host:port), which the
lab's kwok Exec mapping sets for each pod. Standard library only.

  cli status [--json]                       everything the process knows about itself
  cli health                                /health; exit 1 when unhealthy
  cli selftest [--json]                     one real completion; exit 1 unless it answers 200
                                            with text (a Ready pod can still fail every request)
  cli cache-status [--json]
  cli cache-warmup --model NAME [--seconds S] [--prompts N] [--no-wait]
  cli cache-invalidate
  cli cache-verify                          scan every entry's checksum, evict corrupt ones
  cli cache-corrupt --percent P [--write-percent P] [--mode payload|silent]
                                            debug: corrupt P% of the entries (and of new ones)
  cli cache-corrupt --clear                 debug: stop corrupting new entries (cache-invalidate
                                            drops the corrupt ones)
  cli session-list [--json]
  cli session-store-health [--json]         exit 1 when the store is unreachable
  cli fault list [--json]
  cli fault set NAME [--percent P] [--status CODE] [--ms MS] [--jitter-ms MS]
                     [--write-percent P] [--cpu-fallback] [--mode 503|empty|payload|silent] [--oom-kill]
  cli fault clear NAME | --all
Fault names: error-rate, latency, kv-corruption, gpu-unavailable, metrics-off,
memory-exhaustion, disk-exhaustion, session-store-unreachable, session-loss.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request

TIMEOUT = 10.0


class CliError(Exception):
    pass


def call(addr: str, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://{addr}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw or b"{}")
        except ValueError:
            return exc.code, {"error": raw.decode(errors="replace")}
    except (urllib.error.URLError, OSError) as exc:
        raise CliError(f"runtime at {addr} unreachable: {exc}") from exc


def emit(obj: object, as_json: bool, out=sys.stdout) -> None:
    if as_json:
        out.write(json.dumps(obj, indent=2, sort_keys=True) + "\n")
        return
    if isinstance(obj, dict):
        for key, value in obj.items():
            if isinstance(value, (dict, list)):
                value = json.dumps(value, sort_keys=True)
            out.write(f"{key}: {value}\n")
    else:
        out.write(f"{obj}\n")


def fail_on(code: int, body: dict) -> None:
    if code >= 400:
        raise CliError(body.get("error") if isinstance(body.get("error"), str) else json.dumps(body))


def cmd_status(addr: str, args: argparse.Namespace) -> int:
    code, body = call(addr, "GET", "/admin/status")
    fail_on(code, body)
    emit(body, args.json)
    return 0


def cmd_health(addr: str, args: argparse.Namespace) -> int:
    code, body = call(addr, "GET", "/health")
    emit(body, args.json)
    return 0 if code == 200 else 1


def cmd_selftest(addr: str, args: argparse.Namespace) -> int:
    started = time.monotonic()
    code, body = call(addr, "POST", "/v1/completions",
                      {"prompt": "veritas selftest", "max_tokens": 2})
    text = (body.get("choices") or [{}])[0].get("text") if isinstance(body, dict) else None
    ok = code == 200 and bool(text)
    emit({"ok": ok, "status": code, "seconds": round(time.monotonic() - started, 3),
          "error": None if ok else body.get("error", body)}, args.json)
    return 0 if ok else 1


def cmd_cache_status(addr: str, args: argparse.Namespace) -> int:
    code, body = call(addr, "GET", "/admin/cache")
    fail_on(code, body)
    emit(body, args.json)
    return 0


def cmd_cache_warmup(addr: str, args: argparse.Namespace) -> int:
    req: dict = {"model": args.model}
    if args.seconds is not None:
        req["seconds"] = args.seconds
    if args.prompts is not None:
        req["prompts"] = args.prompts
    code, body = call(addr, "POST", "/admin/cache/warmup", req)
    fail_on(code, body)
    total = body.get("total")
    print(f"cache_warm model={args.model} state=started progress=0% entries=0/{total}", flush=True)
    if args.no_wait:
        return 0
    last = 0
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        _, st = call(addr, "GET", "/admin/cache/warmup")
        if st.get("id") != body.get("id"):
            raise CliError("warm-up was replaced by another one")
        pct = int(st.get("progress", 0))
        if pct // 10 > last // 10 and st.get("state") == "running":
            print(f"cache_warm model={args.model} state=running progress={pct}% "
                  f"entries={st.get('done')}/{st.get('total')}", flush=True)
            last = pct
        if st.get("state") == "done":
            _, cache = call(addr, "GET", "/admin/cache")
            print(f"cache_warm model={args.model} state=done progress=100% "
                  f"entries={st.get('done')}/{st.get('total')} cache_entries={cache.get('entries')} "
                  f"cache_state={cache.get('state')}", flush=True)
            return 0
        time.sleep(0.1)
    raise CliError(f"warm-up did not finish within {args.timeout}s")


def cmd_cache_invalidate(addr: str, args: argparse.Namespace) -> int:
    code, body = call(addr, "POST", "/admin/cache/invalidate", {})
    fail_on(code, body)
    emit(body, args.json)
    return 0


def cmd_cache_verify(addr: str, args: argparse.Namespace) -> int:
    code, body = call(addr, "POST", "/admin/cache/verify", {})
    fail_on(code, body)
    emit(body, args.json)
    return 0


def cmd_cache_corrupt(addr: str, args: argparse.Namespace) -> int:
    """The runtime's debug command for a game day's KV-cache corruption (no standard exists)."""
    if args.clear:
        code, body = call(addr, "DELETE", "/admin/faults/kv-corruption")
        fail_on(code, body)
        print("kv-cache corruption cleared")
        return 0
    if args.percent is None:
        raise CliError("cache-corrupt takes --percent P (or --clear)")
    params = {k: v for k, v in {"percent": args.percent, "write_percent": args.write_percent,
                                "mode": args.mode}.items() if v is not None}
    code, body = call(addr, "POST", "/admin/faults/kv-corruption", params)
    fail_on(code, body)
    _, cache = call(addr, "GET", "/admin/cache")
    print(f"kv-cache corruption set: {body.get('corrupted_entries', 0)} of {cache.get('entries', 0)} "
          f"entries corrupted ({args.mode or 'payload'})")
    return 0


def cmd_session_list(addr: str, args: argparse.Namespace) -> int:
    code, body = call(addr, "GET", "/admin/sessions")
    fail_on(code, body)
    if args.json:
        emit(body, True)
        return 0
    print(f"backend: {body['backend']}")
    print(f"sessions: {len(body['sessions'])}")
    for rec in body["sessions"]:
        print(f"{rec['id']} turns={rec.get('turns', 0)} created_by={rec.get('created_by', '')} "
              f"last_used={time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(rec.get('last_used', 0)))}")
    return 0


def cmd_session_store_health(addr: str, args: argparse.Namespace) -> int:
    code, body = call(addr, "GET", "/admin/sessions/health")
    emit(body, args.json)
    return 0 if code == 200 and body.get("reachable") else 1


def cmd_fault(addr: str, args: argparse.Namespace) -> int:
    if args.fault_cmd == "list":
        code, body = call(addr, "GET", "/admin/faults")
        fail_on(code, body)
        if args.json:
            emit(body["faults"], True)
        elif not body["faults"]:
            print("no faults set")
        else:
            for rec in body["faults"]:
                params = " ".join(f"{k}={v}" for k, v in rec["params"].items())
                print(f"{rec['name']} {params}".rstrip())
        return 0
    if args.fault_cmd == "set":
        params = {k: v for k, v in {
            "percent": args.percent, "status": args.status, "ms": args.ms,
            "jitter_ms": args.jitter_ms, "write_percent": args.write_percent,
            "mode": args.mode,
        }.items() if v is not None}
        if args.cpu_fallback:
            params["cpu_fallback"] = True
        if args.oom_kill:
            params["oom_kill"] = True
        code, body = call(addr, "POST", f"/admin/faults/{args.name}", params)
        fail_on(code, body)
        emit(body, args.json)
        return 0
    if args.all == bool(args.name):
        raise CliError("fault clear takes a fault name or --all")
    path = "/admin/faults" if args.all else f"/admin/faults/{args.name}"
    code, body = call(addr, "DELETE", path)
    fail_on(code, body)
    emit(body, args.json)
    return 0


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="cli", description="Veritas runtime CLI (lab stand-in)",
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__)
    ap.add_argument("--addr", default=os.environ.get("VERITAS_RUNTIME_ADDR"),
                    help="runtime host:port (default: $VERITAS_RUNTIME_ADDR)")
    sub = ap.add_subparsers(dest="cmd", required=True)

    def add(name: str, func, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--json", action="store_true", help="JSON output")
        p.set_defaults(func=func)
        return p

    add("status", cmd_status, "status of the runtime process")
    add("health", cmd_health, "health check")
    add("selftest", cmd_selftest, "one real completion; exit 1 unless it succeeds")
    add("cache-status", cmd_cache_status, "KV-cache status")
    w = add("cache-warmup", cmd_cache_warmup, "warm the KV cache, printing progress")
    w.add_argument("--model", required=True)
    w.add_argument("--seconds", type=float)
    w.add_argument("--prompts", type=int)
    w.add_argument("--no-wait", action="store_true")
    w.add_argument("--timeout", type=float, default=900.0)
    add("cache-invalidate", cmd_cache_invalidate, "drop every KV-cache entry")
    add("cache-verify", cmd_cache_verify, "check every entry's checksum")
    k = add("cache-corrupt", cmd_cache_corrupt, "debug: corrupt KV-cache entries, or --clear")
    k.add_argument("--percent", type=float)
    k.add_argument("--write-percent", type=float)
    k.add_argument("--mode", choices=["payload", "silent"])
    k.add_argument("--clear", action="store_true")
    add("session-list", cmd_session_list, "list sessions")
    add("session-store-health", cmd_session_store_health, "session store connectivity")
    f = add("fault", cmd_fault, "fault switches")
    fsub = f.add_subparsers(dest="fault_cmd", required=True)
    fl = fsub.add_parser("list")
    fl.add_argument("--json", action="store_true")
    fs = fsub.add_parser("set")
    fs.add_argument("name")
    fs.add_argument("--percent", type=float)
    fs.add_argument("--status", type=int)
    fs.add_argument("--ms", type=float)
    fs.add_argument("--jitter-ms", type=float)
    fs.add_argument("--write-percent", type=float)
    fs.add_argument("--cpu-fallback", action="store_true")
    fs.add_argument("--oom-kill", action="store_true")
    fs.add_argument("--mode", choices=["503", "empty", "payload", "silent"])
    fs.add_argument("--json", action="store_true")
    fc = fsub.add_parser("clear")
    fc.add_argument("name", nargs="?")
    fc.add_argument("--all", action="store_true")
    fc.add_argument("--json", action="store_true")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not args.addr:
        print("cli: VERITAS_RUNTIME_ADDR is not set (or pass --addr host:port)", file=sys.stderr)
        return 2
    try:
        return args.func(args.addr, args)
    except CliError as exc:
        print(f"cli: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

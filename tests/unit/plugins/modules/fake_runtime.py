"""In-memory runtime pods for the exec-based modules: the lab CLI's commands and output formats.

FakeRuntimes.exec has the signature of module_utils._exec.exec_in_pod; a test patches a module's
exec_in_pod with it. Formats follow lab/runtime/cli.py and veritas_runtime.py (fault records with
normalised params, cache-status JSON) and Envoy's admin API (/runtime, /runtime_modify).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlparse

from ansible_collections.veritas.chaos.plugins.module_utils._exec import ExecResult


class FakePod:
    def __init__(
        self, name: str, model: str = "llama-7b", warmup_steps: int = 3
    ) -> None:
        self.name = name
        self.model = model
        self.faults: dict[str, dict[str, Any]] = {}
        self.cache_state = "cold"
        self.entries = 0
        self.warmup: dict[str, Any] = {"state": "idle"}
        self.warmup_steps = warmup_steps
        self.envoy: dict[str, str] = {}
        self.ignore_sets = (
            False  # a runtime that accepts `fault set` but does not apply it
        )
        self.disk_full = False
        self.stuck = False  # a warm-up that never advances

    # -- runtime CLI ---------------------------------------------------------------------
    def set_fault(self, name: str, flags: dict[str, str]) -> dict[str, Any]:
        params: dict[str, Any] = {}
        record: dict[str, Any] = {"name": name, "since": 1.0, "params": params}
        if name == "error-rate":
            params.update(
                percent=float(flags.get("--percent", 100)),
                status=int(flags.get("--status", 500)),
            )
        elif name == "latency":
            params.update(
                ms=float(flags.get("--ms", 1000)),
                jitter_ms=float(flags.get("--jitter-ms", 0)),
            )
        elif name == "kv-corruption":
            params.update(
                percent=float(flags.get("--percent", 100)),
                write_percent=float(flags.get("--write-percent", 0)),
                mode=flags.get("--mode", "payload"),
            )
            record["corrupted_entries"] = int(self.entries * params["percent"] / 100)
        elif name == "metrics-off":
            params["mode"] = flags.get("--mode", "503")
        elif name == "memory-exhaustion":
            params["oom_kill"] = False
        elif name == "disk-exhaustion":
            self.disk_full = True
        else:
            raise KeyError(name)
        if not self.ignore_sets:
            self.faults[name] = record
        return record

    def cache_status(self) -> dict[str, Any]:
        if self.warmup.get("state") == "running" and not self.stuck:
            if self.warmup["done"] >= self.warmup["total"]:
                # As the lab runtime: 100% is reported a moment before the warm-up is done.
                self.warmup["state"] = "done"
                self.cache_state = "warm"
            else:
                done = min(
                    self.warmup["total"],
                    self.warmup["done"] + self.warmup["total"] // self.warmup_steps + 1,
                )
                self.warmup.update(
                    done=done, progress=int(done * 100 / self.warmup["total"])
                )
                self.entries = done
        state = "warming" if self.warmup.get("state") == "running" else self.cache_state
        return {
            "model": self.model,
            "pod": self.name,
            "state": state,
            "entries": self.entries,
            "capacity": 1024,
            "hits": 0,
            "misses": 0,
            "hit_rate": 0.0,
            "warmup": dict(self.warmup),
        }

    def cli(self, args: list[str]) -> tuple[int, str, str]:
        if args[:2] == ["fault", "list"]:
            return 0, json.dumps(list(self.faults.values())), ""
        if args[:2] == ["fault", "set"]:
            flags = dict(zip(args[3::2], args[4::2]))
            try:
                record = self.set_fault(args[2], flags)
            except KeyError:
                return 1, "", f"cli: unknown fault {args[2]}"
            return 0, json.dumps(record), ""
        if args[:2] == ["fault", "clear"]:
            cleared = [args[2]] if self.faults.pop(args[2], None) else []
            if args[2] == "disk-exhaustion":
                self.disk_full = False
            return 0, json.dumps({"cleared": cleared}), ""
        if args[0] == "cache-corrupt":  # the lab runtime's debug command (lab/runtime/cli.py)
            if "--clear" in args:
                self.faults.pop("kv-corruption", None)
                return 0, "kv-cache corruption cleared\n", ""
            if self.ignore_sets:
                return 0, "kv-cache corruption: nothing to do\n", ""
            flags = dict(zip(args[1::2], args[2::2]))
            record = self.set_fault("kv-corruption", flags)
            return 0, (
                f"kv-cache corruption set: {record['corrupted_entries']} of {self.entries} entries corrupted\n"
            ), ""
        if args[0] == "cache-status":
            return 0, json.dumps(self.cache_status()), ""
        if args[0] == "cache-warmup":
            model = args[args.index("--model") + 1]
            if model != self.model:
                return (
                    1,
                    "",
                    f"cli: model {model} is not loaded on this pod (loaded: {self.model})",
                )
            if self.disk_full:
                return 1, "", "cli: cache warm-up failed: no space left on device"
            if self.warmup.get("state") == "running":
                return 1, "", "cli: warm-up already running"
            total = (
                int(args[args.index("--prompts") + 1]) if "--prompts" in args else 64
            )
            self.warmup = {
                "state": "running",
                "model": model,
                "done": 0,
                "total": total,
                "progress": 0,
                "id": "w1",
            }
            self.cache_state = "cold"
            return (
                0,
                f"cache_warm model={model} state=started progress=0% entries=0/{total}\n",
                "",
            )
        if args[0] == "cache-invalidate":
            if self.warmup.get("state") == "running":
                self.warmup = {"state": "cancelled"}  # what a refill after it would undo
            dropped, self.entries, self.cache_state = self.entries, 0, "cold"
            return 0, json.dumps({"invalidated": dropped}), ""
        return 2, "", "cli: unknown command " + " ".join(args)

    # -- Envoy admin ---------------------------------------------------------------------
    def curl(self, args: list[str]) -> tuple[int, str, str]:
        url = urlparse(args[-1])
        if url.path == "/runtime":
            entries = {
                key: {"final_value": value, "layer_values": ["", value]}
                for key, value in self.envoy.items()
            }
            return (
                0,
                json.dumps({"layers": ["static", "admin"], "entries": entries}),
                "",
            )
        if url.path == "/runtime_modify" and "POST" in args:
            for key, value in parse_qsl(url.query, keep_blank_values=True):
                if value == "":
                    self.envoy.pop(key, None)
                else:
                    self.envoy[key] = value
            return 0, "OK\n", ""
        return 22, "", "curl: (22) The requested URL returned error: 404"


class FakeRuntimes:
    """Pods by name; exec() dispatches `cli ...` and `curl ...` and records every command."""

    def __init__(self, *names: str, **pod_args: Any) -> None:
        self.pods = {name: FakePod(name, **pod_args) for name in names}
        self.commands: list[tuple[str, list[str]]] = []

    def exec(
        self,
        client: Any,
        namespace: str,
        pod: str,
        command: list[str],
        container: str | None = None,
        timeout: int = 30,
    ) -> ExecResult:
        self.commands.append((pod, list(command)))
        target = self.pods[pod]
        if command[0] == "curl":
            rc, out, err = target.curl(command)
        else:
            verbs = ("fault", "cache-status", "cache-warmup", "cache-invalidate", "cache-corrupt")
            start = next(
                (i for i, word in enumerate(command) if word in verbs), len(command)
            )
            rc, out, err = target.cli(command[start:] or ["?"])
        return ExecResult(pod=pod, rc=rc, stdout=out, stderr=err)

    def writes(self) -> list[tuple[str, list[str]]]:
        """Commands that change something (not list/status/read)."""
        reads = (["fault", "list"], ["cache-status"])
        result = []
        for pod, command in self.commands:
            if command[0] == "curl":
                if "POST" in command:
                    result.append((pod, command))
                continue
            if any(
                r[0] in command
                and command[command.index(r[0]) : command.index(r[0]) + len(r)] == r
                for r in reads
            ):
                continue
            result.append((pod, command))
        return result

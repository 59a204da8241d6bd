# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic of runtime_fault and cache_warmup: commands, output parsing, plans.

Everything here builds a command, reads a command's output, or decides; nothing does I/O,
so the decisions are unit-tested without a cluster.

The runtime CLI (the runbook's ``./cli``) is used as:
  cli fault list --json          -> [{"name": "error-rate", "params": {...}, "since": ...}]
  cli fault set NAME [--percent P] [--status C] [--ms MS] [--jitter-ms MS]
                     [--write-percent P] [--mode 503|empty]
  cli fault clear NAME
  cli cache-status --json        -> {"state": "cold|warming|warm|degraded", "entries": N, ...}
  cli cache-warmup --model M --no-wait [--seconds S] [--prompts N]
"""

from __future__ import annotations

import json
import math
import re
import shlex
from typing import Any
from urllib.parse import urlencode

from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError

# ---------------------------------------------------------------------------------------
# Fault catalogue
# ---------------------------------------------------------------------------------------

FAULTS: tuple[str, ...] = (
    "error_rate",
    "latency",
    "kv_cache_corruption",
    "metrics_outage",
    "resource_exhaustion",
)
RESOURCES: tuple[str, ...] = ("memory", "disk")
METRICS_MODES: tuple[str, ...] = ("503", "empty")
# payload: the entry's data is damaged after its checksum was taken (a read can catch it);
# silent: damaged before it (data and checksum agree: only the answers show it).
CORRUPTION_MODES: tuple[str, ...] = ("payload", "silent")
METHODS: tuple[str, ...] = (
    "runtime_cli",
    "network_policy",
    "envoy_runtime",
    "memory_limit",
    "admin_command",
)

# Which module options each fault accepts (besides state, method and targeting).
FAULT_OPTIONS: dict[str, tuple[str, ...]] = {
    "error_rate": ("percent", "status_code"),
    "latency": ("latency_ms", "jitter_ms"),
    "kv_cache_corruption": ("percent", "write_percent", "corruption_mode"),
    "metrics_outage": ("metrics_mode",),
    "resource_exhaustion": ("resource",),
}
FAULT_OPTION_NAMES: tuple[str, ...] = (
    "percent",
    "status_code",
    "latency_ms",
    "jitter_ms",
    "write_percent",
    "corruption_mode",
    "metrics_mode",
    "resource",
)
# Faults each method can inject.
METHOD_FAULTS: dict[str, tuple[str, ...]] = {
    "runtime_cli": FAULTS,
    "network_policy": ("metrics_outage",),
    "envoy_runtime": ("error_rate", "latency"),
    "memory_limit": ("resource_exhaustion",),
    # No standard interface corrupts a KV cache: the runtime's own admin command does.
    "admin_command": ("kv_cache_corruption",),
}
# The method a fault gets when the caller names none: its standard interface, never the
# runtime's own `cli fault` switches (runtime_cli is used only when named).
DEFAULT_METHODS: dict[str, str] = {
    "error_rate": "envoy_runtime",
    "latency": "envoy_runtime",
    "metrics_outage": "network_policy",
    "resource_exhaustion": "memory_limit",
    "kv_cache_corruption": "admin_command",
}
# Resources each method can exhaust (fault resource_exhaustion).
METHOD_RESOURCES: dict[str, tuple[str, ...]] = {
    "runtime_cli": RESOURCES,
    "memory_limit": ("memory",),
}

# Actions of a per-pod plan.
SET = "set"
UPDATE = "update"
CLEAR = "clear"
NONE = "none"


def _invalid(msg: str, field: str) -> ChaosError:
    return ChaosError(msg, reason="invalid_input", field=field)


def runtime_fault_name(fault: str, resource: str | None = None) -> str:
    """The runtime CLI's name of a module fault, e.g. error_rate -> error-rate."""
    if fault == "resource_exhaustion":
        if resource not in RESOURCES:
            raise _invalid(
                "resource must be one of {} for fault resource_exhaustion, got {!r}.".format(
                    ", ".join(RESOURCES), resource
                ),
                "resource",
            )
        return f"{resource}-exhaustion"
    names = {
        "error_rate": "error-rate",
        "latency": "latency",
        "kv_cache_corruption": "kv-corruption",
        "metrics_outage": "metrics-off",
    }
    if fault not in names:
        raise _invalid(
            "fault must be one of {}, got {!r}.".format(", ".join(FAULTS), fault),
            "fault",
        )
    return names[fault]


def _number(
    params: dict[str, Any],
    field: str,
    low: float,
    high: float | None,
    low_inclusive: bool = True,
) -> float | None:
    value = params.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _invalid(f"{field} must be a number, got {value!r}.", field)
    value = float(value)
    too_low = value < low if low_inclusive else value <= low
    too_high = high is not None and value > high
    if too_low or too_high or math.isnan(value):
        bound = "from" if low_inclusive else "above"
        upper = f" to {_fmt(high)}" if high is not None else ""
        lower = _fmt(low)
        raise _invalid(
            f"{field} must be a number {bound} {lower}{upper}, got {_fmt(value)}.",
            field,
        )
    return value


def validate_fault_options(
    fault: str, method: str, state: str, params: dict[str, Any]
) -> None:
    """Check that the fault, the method and the fault's options fit together.

    Options that belong to another fault are an error (they would be silently ignored
    otherwise). With state=absent the fault's own options are optional.
    """
    if fault not in FAULTS:
        raise _invalid(
            "fault must be one of {}, got {!r}.".format(", ".join(FAULTS), fault),
            "fault",
        )
    if method not in METHODS:
        raise _invalid(
            "method must be one of {}, got {!r}.".format(", ".join(METHODS), method),
            "method",
        )
    if fault not in METHOD_FAULTS[method]:
        raise _invalid(
            "method {} supports the faults {}, not {}.".format(
                method, ", ".join(METHOD_FAULTS[method]), fault
            ),
            "method",
        )
    allowed = FAULT_OPTIONS[fault] if method != "admin_command" else ()
    for option in FAULT_OPTION_NAMES:
        if method == "admin_command" and params.get(option) is not None:
            raise _invalid(
                f"{option} does not apply to method admin_command: the command carries its own "
                "parameters (admin_command.set).",
                option,
            )
        if params.get(option) is not None and option not in allowed:
            raise _invalid(
                "{} does not apply to fault {}; its options are {}.".format(
                    option, fault, ", ".join(allowed)
                ),
                option,
            )
    _number(params, "percent", 0.0, 100.0, low_inclusive=False)
    _number(params, "write_percent", 0.0, 100.0)
    _number(params, "latency_ms", 0.0, None, low_inclusive=False)
    _number(params, "jitter_ms", 0.0, None)
    status = params.get("status_code")
    if status is not None and not 100 <= int(status) <= 599:
        raise _invalid(
            f"status_code must be an HTTP status from 100 to 599, got {status}.",
            "status_code",
        )
    for field, allowed in (
        ("metrics_mode", METRICS_MODES),
        ("corruption_mode", CORRUPTION_MODES),
    ):
        value = params.get(field)
        if value is not None and str(value) not in allowed:
            raise _invalid(
                "{} must be one of {}, got {!r}.".format(
                    field, ", ".join(allowed), value
                ),
                field,
            )
    if fault == "resource_exhaustion":
        runtime_fault_name(fault, params.get("resource"))
        resources = METHOD_RESOURCES.get(method, RESOURCES)
        if params.get("resource") not in resources:
            raise _invalid(
                "method {} supports resource {} only, not {} (fault resource_exhaustion).".format(
                    method, ", ".join(resources), params.get("resource")
                ),
                "resource",
            )
    if state != "present":
        return
    if fault == "error_rate" and params.get("percent") is None:
        raise _invalid(
            "percent is required for fault error_rate (a number above 0 to 100).",
            "percent",
        )
    if fault == "latency" and params.get("latency_ms") is None:
        raise _invalid(
            "latency_ms is required for fault latency (milliseconds above 0).",
            "latency_ms",
        )
    if method == "envoy_runtime":
        percent = params.get("percent")
        if percent is not None and float(percent) != int(float(percent)):
            raise _invalid(
                f"percent must be a whole number from 1 to 100 with method envoy_runtime, got {percent}.",
                "percent",
            )
        latency = params.get("latency_ms")
        if latency is not None and float(latency) != int(float(latency)):
            raise _invalid(
                f"latency_ms must be whole milliseconds with method envoy_runtime (Envoy reads the key as an integer), got {latency}.",
                "latency_ms",
            )
        if params.get("jitter_ms"):
            raise _invalid(
                "jitter_ms is not supported by method envoy_runtime (Envoy's fixed delay has no jitter).",
                "jitter_ms",
            )


def desired_runtime_params(fault: str, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters as the runtime stores them (what `fault list` shows when set)."""
    if fault == "error_rate":
        status = params.get("status_code")
        return {
            "percent": float(params["percent"]),
            "status": int(status if status is not None else 500),
        }
    if fault == "latency":
        return {
            "ms": float(params["latency_ms"]),
            "jitter_ms": float(params.get("jitter_ms") or 0),
        }
    if fault == "kv_cache_corruption":
        percent = params.get("percent")
        return {
            "percent": float(percent if percent is not None else 100),
            "write_percent": float(params.get("write_percent") or 0),
            "mode": str(params.get("corruption_mode") or "payload"),
        }
    if fault == "metrics_outage":
        return {"mode": str(params.get("metrics_mode") or "503")}
    if params.get("resource") == "memory":
        return {"oom_kill": False}
    return {}


def _fmt(value: Any) -> str:
    """A number as the CLI takes it: 20.0 -> '20', 2.5 -> '2.5'."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def cli_prefix(cli_path: str) -> list[str]:
    """The CLI command as a list, e.g. 'cli' or 'python3 /app/cli.py'."""
    try:
        parts = shlex.split(cli_path or "")
    except ValueError:  # an unbalanced quote
        parts = []
    if not parts:
        raise _invalid(
            "cli_path must name the runtime CLI, e.g. cli or ./cli.", "cli_path"
        )
    return parts


def fault_list_command(cli: list[str]) -> list[str]:
    return [*cli, "fault", "list", "--json"]


def fault_set_command(cli: list[str], name: str, params: dict[str, Any]) -> list[str]:
    flags = {
        "percent": "--percent",
        "status": "--status",
        "ms": "--ms",
        "jitter_ms": "--jitter-ms",
        "write_percent": "--write-percent",
        "mode": "--mode",
    }
    command = [*cli, "fault", "set", name]
    for key in ("percent", "status", "ms", "jitter_ms", "write_percent", "mode"):
        if key in params and params[key] is not None:
            command += [flags[key], _fmt(params[key])]
    return command


def fault_clear_command(cli: list[str], name: str) -> list[str]:
    return [*cli, "fault", "clear", name]


def _json_output(stdout: str, what: str) -> Any:
    text = (stdout or "").strip()
    try:
        return json.loads(text)
    except ValueError:
        pass
    # Tolerate lines printed before the JSON document (banners, warnings).
    start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
    if start > 0:
        try:
            return json.loads(text[start:])
        except ValueError:
            pass
    raise ChaosError(
        f"Could not read the output of {what} as JSON: {text[:200]!r}",
        reason="bad_output",
    )


def parse_fault_list(stdout: str) -> dict[str, dict[str, Any]]:
    """`cli fault list` output as {runtime fault name: record}; JSON or the text form."""
    text = (stdout or "").strip()
    if not text or text == "no faults set":
        return {}
    if re.search(r"^\s*[\[{]", text, re.MULTILINE):
        data = _json_output(text, "fault list")
        records = data.get("faults", []) if isinstance(data, dict) else data
        if not isinstance(records, list):
            raise ChaosError(
                f"fault list returned {type(records).__name__}, not a list.",
                reason="bad_output",
            )
        result: dict[str, dict[str, Any]] = {}
        for record in records:
            if isinstance(record, dict) and record.get("name"):
                result[str(record["name"])] = dict(
                    record, params=dict(record.get("params") or {})
                )
        return result
    result = {}
    for line in text.splitlines():
        words = line.split()
        if not words:
            continue
        params: dict[str, Any] = {}
        for word in words[1:]:
            key, value = word.split("=", 1) if "=" in word else (word, "")
            params[key] = _scalar(value)
        result[words[0]] = {"name": words[0], "params": params}
    return result


def _scalar(text: str) -> Any:
    if text in ("True", "true"):
        return True
    if text in ("False", "false"):
        return False
    try:
        return float(text)
    except ValueError:
        return text


def _same(current: Any, desired: Any) -> bool:
    if isinstance(desired, bool) or isinstance(current, bool):
        return bool(current) == bool(desired)
    if isinstance(desired, (int, float)):
        try:
            return math.isclose(
                float(current), float(desired), rel_tol=1e-9, abs_tol=1e-9
            )
        except (TypeError, ValueError):
            return False
    return str(current) == str(desired)


def params_match(current: dict[str, Any] | None, desired: dict[str, Any]) -> bool:
    """The fault is set with the desired parameters (keys the runtime adds are ignored)."""
    if current is None:
        return False
    return all(
        key in current and _same(current[key], value) for key, value in desired.items()
    )


def plan_action(
    state: str, current: dict[str, Any] | None, desired: dict[str, Any]
) -> str:
    """What one pod needs: set, update (set with other params), clear, or none."""
    if state == "absent":
        return CLEAR if current is not None else NONE
    if current is None:
        return SET
    return NONE if params_match(current, desired) else UPDATE


# ---------------------------------------------------------------------------------------
# Choosing the target pods
# ---------------------------------------------------------------------------------------


def order_targets(
    names: list[str], already: list[str], how_many: int, chosen_rest: list[str]
) -> list[str]:
    """The targets: pods in already first (in its order of preference), then chosen_rest."""
    keep = [name for name in already if name in names][:how_many]
    rest = [name for name in chosen_rest if name not in keep][: how_many - len(keep)]
    return sorted(keep + rest)


# ---------------------------------------------------------------------------------------
# Cache warm-up
# ---------------------------------------------------------------------------------------


def cache_status_command(cli: list[str]) -> list[str]:
    return [*cli, "cache-status", "--json"]


def cache_warmup_command(
    cli: list[str], model: str, seconds: float | None = None, prompts: int | None = None
) -> list[str]:
    command = [*cli, "cache-warmup", "--model", model, "--no-wait"]
    if seconds is not None:
        command += ["--seconds", _fmt(float(seconds))]
    if prompts is not None:
        command += ["--prompts", str(int(prompts))]
    return command


def parse_cache_status(stdout: str) -> dict[str, Any]:
    data = _json_output(stdout, "cache-status")
    if not isinstance(data, dict):
        raise ChaosError(
            f"cache-status returned {type(data).__name__}, not an object.",
            reason="bad_output",
        )
    return data


def warm_percent(status: dict[str, Any]) -> int:
    """How warm a pod's cache is, 0-100: 100 when warm, the warm-up's progress while warming.

    A cold or degraded (corruption detected) cache is 0: it needs a warm-up.
    """
    state = status.get("state")
    warmup = status.get("warmup") or {}
    if state == "warm":
        return 100
    if state == "warming":
        # The warm-up reports 100% a moment before the runtime calls the cache warm: until
        # then it is not done, so a running warm-up counts at most 99.
        try:
            return max(0, min(99, int(warmup.get("progress", 0))))
        except (TypeError, ValueError):
            return 0
    return 0


def cache_summary(status: dict[str, Any]) -> dict[str, Any]:
    """The fields of cache-status that progress reports and diffs show."""
    warmup = status.get("warmup") or {}
    return {
        "state": status.get("state"),
        "percent": warm_percent(status),
        "entries": status.get("entries"),
        "hit_rate": status.get("hit_rate"),
        "model": status.get("model"),
        "warmup_state": warmup.get("state"),
        "warmup_id": warmup.get("id"),
    }


# ---------------------------------------------------------------------------------------
# Envoy runtime overrides
# ---------------------------------------------------------------------------------------


def envoy_runtime_values(
    fault: str, params: dict[str, Any], prefix: str = "fault.http"
) -> dict[str, str]:
    """The runtime keys of Envoy's HTTP fault filter for a fault, as strings."""
    if fault == "error_rate":
        status = params.get("status_code")
        return {
            f"{prefix}.abort.abort_percent": _fmt(float(params["percent"])),
            f"{prefix}.abort.http_status": str(
                int(status if status is not None else 500)
            ),
        }
    if fault == "latency":
        return {
            f"{prefix}.delay.fixed_delay_percent": "100",
            f"{prefix}.delay.fixed_duration_ms": _fmt(float(params["latency_ms"])),
        }
    raise _invalid(
        f"method envoy_runtime supports error_rate and latency, not {fault}.", "fault"
    )


def envoy_runtime_keys(fault: str, prefix: str = "fault.http") -> list[str]:
    if fault == "error_rate":
        return [f"{prefix}.abort.abort_percent", f"{prefix}.abort.http_status"]
    if fault == "latency":
        return [
            f"{prefix}.delay.fixed_delay_percent",
            f"{prefix}.delay.fixed_duration_ms",
        ]
    raise _invalid(
        f"method envoy_runtime supports error_rate and latency, not {fault}.", "fault"
    )


def envoy_modify_command(admin_url: str, values: dict[str, str]) -> list[str]:
    """POST /runtime_modify?k=v...; an empty value deletes the key from the admin layer."""
    query = urlencode(sorted(values.items()))
    return [
        "curl",
        "-sS",
        "--fail",
        "-X",
        "POST",
        f"{admin_url.rstrip('/')}/runtime_modify?{query}",
    ]


def envoy_read_command(admin_url: str) -> list[str]:
    return ["curl", "-sS", "--fail", f"{admin_url.rstrip('/')}/runtime"]


def parse_envoy_runtime(stdout: str, keys: list[str]) -> dict[str, str | None]:
    """Admin-layer values of keys from GET /runtime (the admin layer is the last layer).

    None when the key has no admin override.
    """
    data = _json_output(stdout, "Envoy GET /runtime")
    entries = (data or {}).get("entries") or {}
    result: dict[str, str | None] = {}
    for key in keys:
        entry = entries.get(key)
        if not entry:
            result[key] = None
            continue
        layer_values = entry.get("layer_values")
        if layer_values:
            value = layer_values[-1]
        else:
            value = entry.get("final_value")
        result[key] = str(value) if value not in (None, "") else None
    return result


def envoy_current(values: dict[str, str | None]) -> dict[str, str] | None:
    """The override as a record for plan_action: None when none of the keys is set."""
    present = {key: value for key, value in values.items() if value is not None}
    return present or None


# ---------------------------------------------------------------------------------------
# Label selectors and the metrics NetworkPolicy
# ---------------------------------------------------------------------------------------

_SET_EXPR = re.compile(r"^\s*([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_PART = re.compile(r"(?:[^,(]|\([^)]*\))+")


def parse_label_selector(text: str) -> dict[str, Any]:
    """A kubectl-style selector ('app=x,tier!=y,env in (a,b),!legacy') as a LabelSelector."""
    match_labels: dict[str, str] = {}
    expressions: list[dict[str, Any]] = []
    for raw in _PART.findall(text or ""):
        part = raw.strip()
        if not part:
            continue
        set_match = _SET_EXPR.match(part)
        if set_match:
            key, op, values = set_match.groups()
            expression: dict[str, Any] = {
                "key": key,
                "operator": "In" if op == "in" else "NotIn",
                "values": sorted(v.strip() for v in values.split(",") if v.strip()),
            }
        elif "!=" in part:
            key, value = (s.strip() for s in part.split("!=", 1))
            expression = {"key": key, "operator": "NotIn", "values": [value]}
        elif "=" in part:
            key, value = (s.strip() for s in part.replace("==", "=").split("=", 1))
            if not key:
                raise _invalid(
                    f"label_selector has an empty key in {part!r}.", "label_selector"
                )
            match_labels[key] = value
            continue
        elif part.startswith("!"):
            expression = {"key": part[1:].strip(), "operator": "DoesNotExist"}
        else:
            expression = {"key": part, "operator": "Exists"}
        if not expression["key"]:
            raise _invalid(
                f"label_selector has an empty key in {part!r}.", "label_selector"
            )
        expressions.append(expression)
    selector: dict[str, Any] = {}
    if match_labels:
        selector["matchLabels"] = match_labels
    if expressions:
        selector["matchExpressions"] = expressions
    if not selector:
        raise _invalid(
            "label_selector must select the target pods, e.g. app=veritas,variant=canary.",
            "label_selector",
        )
    return selector


def selector_matches(
    selector: dict[str, Any] | None, labels: dict[str, str] | None
) -> bool:
    """Whether a LabelSelector selects labels (an empty selector selects everything)."""
    labels = labels or {}
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, op = expression.get("key"), expression.get("operator")
        values = expression.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
MANAGED_BY = {"app.kubernetes.io/managed-by": "veritas.chaos"}
FAULT_LABEL = "chaos.veritas.io/fault"
MAX_PORT = 65535


def _other_ports(port: int) -> list[dict[str, Any]]:
    ranges: list[dict[str, Any]] = []
    if port > 1:
        ranges.append(
            {"protocol": "TCP", "port": 1, "endPort": port - 1}
            if port > 2
            else {"protocol": "TCP", "port": 1}
        )
    if port < MAX_PORT:
        ranges.append(
            {"protocol": "TCP", "port": port + 1, "endPort": MAX_PORT}
            if port < MAX_PORT - 1
            else {"protocol": "TCP", "port": MAX_PORT}
        )
    ranges.append({"protocol": "UDP", "port": 1, "endPort": MAX_PORT})
    return ranges


def metrics_network_policy(
    name: str,
    namespace: str,
    pod_selector: dict[str, Any],
    metrics_port: int,
    prometheus_namespace: str,
    prometheus_pod_labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A NetworkPolicy that stops Prometheus from reaching metrics_port of the selected pods.

    NetworkPolicies are allow lists: once a policy selects a pod for Ingress, only what some
    policy allows gets in. So this one allows every other port from anywhere, and the metrics
    port from every namespace but Prometheus's (and, with prometheus_pod_labels, from the pods
    of that namespace that are not Prometheus). Everything else keeps flowing.
    """
    if not 1 <= int(metrics_port) <= MAX_PORT:
        raise _invalid(
            f"metrics_port must be a port from 1 to {MAX_PORT}, got {metrics_port}.",
            "metrics_port",
        )
    peers: list[dict[str, Any]] = [
        {
            "namespaceSelector": {
                "matchExpressions": [
                    {
                        "key": NAMESPACE_NAME_LABEL,
                        "operator": "NotIn",
                        "values": [prometheus_namespace],
                    }
                ]
            }
        }
    ]
    # A pod is "not Prometheus" when it lacks at least one of the labels: one peer per label.
    for key, value in sorted((prometheus_pod_labels or {}).items()):
        peers.append(
            {
                "namespaceSelector": {
                    "matchLabels": {NAMESPACE_NAME_LABEL: prometheus_namespace}
                },
                "podSelector": {
                    "matchExpressions": [
                        {"key": key, "operator": "NotIn", "values": [value]}
                    ]
                },
            }
        )
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": dict(MANAGED_BY, **{FAULT_LABEL: "metrics-outage"}),
        },
        "spec": {
            "podSelector": pod_selector,
            "policyTypes": ["Ingress"],
            "ingress": [
                {"ports": _other_ports(int(metrics_port))},
                {
                    "from": peers,
                    "ports": [{"protocol": "TCP", "port": int(metrics_port)}],
                },
            ],
        },
    }


def policy_matches(current: dict[str, Any] | None, desired: dict[str, Any]) -> bool:
    """The live policy has the desired spec and labels (server defaults tolerated)."""
    if current is None:
        return False
    labels = (current.get("metadata") or {}).get("labels") or {}
    if any(labels.get(k) != v for k, v in desired["metadata"]["labels"].items()):
        return False
    return _normalise_policy_spec(current.get("spec")) == _normalise_policy_spec(
        desired["spec"]
    )


def _normalise_policy_spec(spec: dict[str, Any] | None) -> Any:
    spec = json.loads(json.dumps(spec or {}))
    for rule in spec.get("ingress") or []:
        for port in rule.get("ports") or []:
            port.setdefault("protocol", "TCP")
    return json.loads(json.dumps(spec, sort_keys=True))


def is_owned(obj: dict[str, Any] | None) -> bool:
    labels = ((obj or {}).get("metadata") or {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in MANAGED_BY.items())


def overlapping_policies(
    policies: list[dict[str, Any]], own_name: str, pod_labels: list[dict[str, str]]
) -> list[str]:
    """Other Ingress policies that select any target pod (they may still allow Prometheus in)."""
    names = []
    for policy in policies:
        name = (policy.get("metadata") or {}).get("name")
        if name == own_name:
            continue
        spec = policy.get("spec") or {}
        types = spec.get("policyTypes") or ["Ingress"]
        if "Ingress" not in types:
            continue
        if any(
            selector_matches(spec.get("podSelector"), labels) for labels in pod_labels
        ):
            names.append(str(name))
    return sorted(names)

# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cache_warmup
short_description: Warm the KV cache of runtime pods and wait until they are warm
version_added: 1.0.0
description:
  - Reads C(cli cache-status) in every running pod that matches O(label_selector); pods whose cache is below
    O(target_percent) get C(cli cache-warmup --model MODEL) (the runbook's KV-cache recovery, step 2).
  - Then polls C(cli cache-status) every O(poll_interval) seconds and records each pod's progress
    (percent, entries and hit rate over time) until every pod is at or above O(target_percent).
  - Fails after O(timeout) seconds with an error that names the pods still warming and how far they got.
  - A pod's warmth is 100 when its cache state is C(warm), the warm-up's progress while C(warming), and 0 when
    C(cold) or C(degraded) (corruption was detected, so it needs a warm-up).
  - A pod already warming (started by someone else) is waited for, not started again.
author:
  - Veritas SPARK team (@veritas-spark)
options:
  namespace:
    description:
      - Namespace of the runtime pods.
    type: str
    required: true
  label_selector:
    description:
      - Label selector of the runtime pods, as for C(kubectl -l), for example C(app=veritas-runtime,deployment=green).
    type: str
    required: true
  model:
    description:
      - The model whose cache is warmed; every targeted pod must serve it (as C(cache-status) reports).
    type: str
    required: true
  target_percent:
    description:
      - A pod counts as warm at or above this percentage (1 to 100).
    type: int
    default: 100
  timeout:
    description:
      - Seconds to wait for every pod to be warm (the runbook expects 5 to 15 minutes on real models).
    type: int
    default: 900
  poll_interval:
    description:
      - Seconds between two reads of C(cache-status).
    type: float
    default: 2
  warmup_seconds:
    description:
      - Passed to the CLI as C(--seconds) (how long the warm-up takes, where the runtime supports it).
    type: float
  warmup_prompts:
    description:
      - Passed to the CLI as C(--prompts) (how many prompts the warm-up loads, where the runtime supports it).
    type: int
  invalidate:
    description:
      - First drop every targeted pod's cache with the runtime's C(cache-invalidate), then warm it (the runbook's
        recovery, "trigger cache invalidation" then "warm cache with fresh data"). A warm-up already running in a
        pod is waited for first, so that it cannot refill the cache after the invalidation.
      - Always a change (the entries are dropped even when the cache looked warm).
    type: bool
    default: false
  container:
    description:
      - Container to exec in; the pod's default container when not set.
    type: str
  cli_path:
    description:
      - The runtime CLI in the container, as the runbook runs it; split like a shell would
        (for example V(python3 /app/cli.py)).
    type: str
    default: ./cli
  exec_timeout:
    description:
      - Seconds one command in a pod may take.
    type: int
    default: 30
extends_documentation_fragment:
  - veritas.chaos.auth
  - veritas.chaos.auth.guard
  - veritas.chaos.attributes
  - veritas.chaos.attributes.actiongroup_k8s
attributes:
  check_mode:
    support: full
    details: Only C(cache-status) runs; the result says which pods would be warmed.
  diff_mode:
    support: full
    details: Each targeted pod's cache (state, percent, entries) before and after.
  idempotent:
    support: full
    details: A pod already at or above O(target_percent) is left alone; when all are, nothing changes.
notes:
  - The runtime CLI must support C(cache-status --json) and C(cache-warmup --model M --no-wait), as the lab's
    C(lab/runtime/cli.py) does.
seealso:
  - module: veritas.chaos.runtime_fault
"""

EXAMPLES = r"""
- name: Warm the green pods' KV cache before the switch
  veritas.chaos.cache_warmup:
    namespace: veritas
    label_selector: app=veritas-runtime,deployment=green
    model: llama-7b
    timeout: 900
  register: warmup

- name: Show how long each pod took
  ansible.builtin.debug:
    msg: "{{ warmup.pods | items2dict(key_name='name', value_name='duration_seconds') }}"

- name: Accept 90% warm, poll every 5 seconds (KV-cache recovery)
  veritas.chaos.cache_warmup:
    namespace: veritas
    label_selector: deployment=blue
    model: llama-7b
    target_percent: 90
    poll_interval: 5

- name: The runbook's KV-cache recovery - drop the (possibly corrupt) entries, then warm with fresh data
  veritas.chaos.cache_warmup:
    namespace: veritas
    label_selector: deployment=blue
    model: llama-7b
    invalidate: true
"""

RETURN = r"""
model:
  description: The O(model).
  returned: always
  type: str
  sample: llama-7b
matched:
  description: How many running pods matched O(label_selector).
  returned: always
  type: int
  sample: 3
warmed:
  description: Pods where this call started a warm-up (in check mode, where it would).
  returned: always
  type: list
  elements: str
  sample: ["veritas-runtime-green-7d9f-abcde"]
invalidated:
  description: Pods whose cache this call dropped first (O(invalidate)); in check mode, would drop.
  returned: always
  type: list
  elements: str
  sample: ["veritas-runtime-green-7d9f-abcde"]
already_warm:
  description: Pods that were at or above O(target_percent) before the call.
  returned: always
  type: list
  elements: str
  sample: []
duration_seconds:
  description: Seconds from the first warm-up until every pod was warm (0 when nothing had to warm).
  returned: always
  type: float
  sample: 3.4
pods:
  description: One entry per targeted pod.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The pod.
      type: str
      sample: veritas-runtime-green-7d9f-abcde
    action:
      description: V(warmup) (started here), V(wait) (was already warming), or V(none) (already warm).
      type: str
      sample: warmup
    changed:
      description: Whether this call started a warm-up in the pod.
      type: bool
      sample: true
    before:
      description: The cache before (state, percent, entries, hit_rate, model, warmup_state, warmup_id).
      type: dict
      sample: {"state": "cold", "percent": 0, "entries": 0, "hit_rate": 0.0}
    after:
      description: The cache at the end, same fields (in check mode, as before).
      type: dict
      sample: {"state": "warm", "percent": 100, "entries": 64, "hit_rate": 0.0}
    duration_seconds:
      description: Seconds from the start of the warm-up until the pod was warm (null when it did not warm here).
      type: float
      sample: 3.1
    progress:
      description: Samples taken while polling, one per change of percent.
      type: list
      elements: dict
      contains:
        seconds:
          description: Seconds since the warm-up started.
          type: float
        percent:
          description: Warm percentage.
          type: int
        entries:
          description: Cache entries.
          type: int
        hit_rate:
          description: Cache hit rate.
          type: float
        state:
          description: Cache state.
          type: str
      sample: [{"seconds": 1.0, "percent": 30, "entries": 20, "hit_rate": 0.0, "state": "warming"}]
"""

import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.veritas.chaos.plugins.module_utils._args import (
    AUTH_ARG_SPEC,
    GUARD_ARG_SPEC,
    build_argument_spec,
)
from ansible_collections.veritas.chaos.plugins.module_utils._client import (
    KubeClient,
    get_client,
)
from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError
from ansible_collections.veritas.chaos.plugins.module_utils._guard import (
    guard_namespace,
)
from ansible_collections.veritas.chaos.plugins.module_utils._runner import run_module
from ansible_collections.veritas.chaos.plugins.module_utils._runtime_cli import (
    cache_status_command,
    cache_summary,
    cache_warmup_command,
    cli_prefix,
    parse_cache_status,
)
from ansible_collections.veritas.chaos.plugins.module_utils._runtime_exec import (
    run_in_pod,
    running_pods,
)
from ansible_collections.veritas.chaos.plugins.module_utils._validate import (
    validate_input,
)

WARMUP = "warmup"
WAIT = "wait"
NONE = "none"


def validate_params(params: dict[str, Any]) -> None:
    validate_input(
        params,
        namespaces=("namespace",),
        dns_labels=("container",),
        selectors=("label_selector",),
    )
    checks = (
        (
            "target_percent",
            1 <= params["target_percent"] <= 100,
            "an integer from 1 to 100",
        ),
        ("timeout", params["timeout"] >= 1, "an integer of at least 1"),
        ("poll_interval", params["poll_interval"] > 0, "a number above 0"),
        ("exec_timeout", params["exec_timeout"] >= 1, "an integer of at least 1"),
        (
            "warmup_seconds",
            params["warmup_seconds"] is None or params["warmup_seconds"] > 0,
            "a number above 0",
        ),
        (
            "warmup_prompts",
            params["warmup_prompts"] is None or params["warmup_prompts"] >= 1,
            "an integer of at least 1",
        ),
        (
            "model",
            bool((params["model"] or "").strip()),
            "a model name such as llama-7b",
        ),
    )
    for field, ok, allowed in checks:
        if not ok:
            raise ChaosError(
                f"{field} must be {allowed}, got {params[field]!r}.",
                reason="invalid_input",
                field=field,
            )
    cli_prefix(params["cli_path"])


def read_status(
    client: KubeClient, params: dict[str, Any], cli: list[str], pod: str
) -> dict[str, Any]:
    return cache_summary(
        parse_cache_status(run_in_pod(client, params, pod, cache_status_command(cli)))
    )


def plan(summary: dict[str, Any], target_percent: int) -> str:
    """warmup (start one), wait (one is running, short of the target) or none (warm enough)."""
    if summary["percent"] >= target_percent:
        return NONE
    if summary["state"] == "warming":
        return WAIT
    return WARMUP


def _sample(summary: dict[str, Any], seconds: float) -> dict[str, Any]:
    return {
        "seconds": round(seconds, 3),
        "percent": summary["percent"],
        "entries": summary["entries"],
        "hit_rate": summary["hit_rate"],
        "state": summary["state"],
    }


def invalidate_caches(
    client: KubeClient,
    params: dict[str, Any],
    cli: list[str],
    before: dict[str, dict[str, Any]],
    check_mode: bool,
) -> dict[str, dict[str, Any]]:
    """Drop each pod's cache once no warm-up runs there; returns the caches after (predicted in check mode)."""
    if check_mode:
        return {
            pod: dict(s, state="cold", percent=0, entries=0) for pod, s in before.items()
        }
    deadline = time.monotonic() + params["timeout"]
    after = {}
    for pod, summary in before.items():
        while summary["state"] == "warming":
            if time.monotonic() >= deadline:
                raise ChaosError(
                    f"Timed out after {params['timeout']} seconds waiting for the warm-up running in pod "
                    f"{pod} to end before invalidating its cache; nothing was invalidated there.",
                    reason="timeout",
                    pod=pod,
                )
            time.sleep(params["poll_interval"])
            summary = read_status(client, params, cli, pod)
        run_in_pod(client, params, pod, [*cli, "cache-invalidate", "--json"], idempotent=False)
        after[pod] = read_status(client, params, cli, pod)
    return after


def cache_warmup(
    client: KubeClient, params: dict[str, Any], check_mode: bool, want_diff: bool
) -> dict[str, Any]:
    validate_params(params)
    namespace, model, target = (
        params["namespace"],
        params["model"],
        params["target_percent"],
    )
    guard_namespace(client, namespace, params)
    cli = cli_prefix(params["cli_path"])
    pods = [
        pod["metadata"]["name"]
        for pod in running_pods(client, namespace, params["label_selector"])
    ]
    if not pods:
        raise ChaosError(
            "No running pods match {} in namespace {}; nothing to warm.".format(
                params["label_selector"], namespace
            ),
            reason="no_targets",
        )

    before = {pod: read_status(client, params, cli, pod) for pod in pods}
    wrong_model = {
        pod: s["model"]
        for pod, s in before.items()
        if s.get("model") not in (None, model)
    }
    if wrong_model:
        raise ChaosError(
            "Pods {} serve another model ({}), not {}; nothing was started.".format(
                ", ".join(sorted(wrong_model)),
                ", ".join(sorted({str(m) for m in wrong_model.values()})),
                model,
            ),
            reason="invalid_input",
            field="model",
            pods=wrong_model,
        )
    invalidated: list[str] = []
    if params["invalidate"]:
        before = invalidate_caches(client, params, cli, before, check_mode)
        invalidated = list(pods)
    actions = {pod: plan(before[pod], target) for pod in pods}
    to_start = [pod for pod in pods if actions[pod] == WARMUP]
    entries: dict[str, dict[str, Any]] = {
        pod: {
            "name": pod,
            "action": actions[pod],
            "changed": actions[pod] == WARMUP,
            "before": before[pod],
            "after": before[pod],
            "duration_seconds": None,
            "progress": [],
        }
        for pod in pods
    }
    result: dict[str, Any] = {
        "changed": bool(to_start or invalidated),
        "model": model,
        "matched": len(pods),
        "invalidated": invalidated,
        "warmed": to_start,
        "already_warm": [pod for pod in pods if actions[pod] == NONE],
        "duration_seconds": 0.0,
        "pods": [entries[pod] for pod in pods],
    }

    waiting = [pod for pod in pods if actions[pod] != NONE]
    if not check_mode and waiting:
        started: dict[str, float] = {}
        command = cache_warmup_command(
            cli, model, params["warmup_seconds"], params["warmup_prompts"]
        )
        begin = time.monotonic()
        for pod in waiting:
            started[pod] = time.monotonic()
            if actions[pod] != WARMUP:
                continue
            try:
                run_in_pod(client, params, pod, command, idempotent=False)
            except ChaosError as exc:
                if "already running" in exc.msg:
                    entries[pod].update(action=WAIT, changed=False)
                    continue
                done = [p for p in to_start if p in started and p != pod]
                raise ChaosError(
                    "{} Warm-ups already started in: {}.".format(
                        exc.msg, ", ".join(done) or "none"
                    ),
                    reason=exc.reason,
                    changed=bool(done),
                    pod=pod,
                ) from exc
        result["warmed"] = [pod for pod in pods if entries[pod]["changed"]]
        result["changed"] = bool(result["warmed"] or invalidated)
        pending = list(waiting)
        deadline = begin + params["timeout"]
        while pending:
            for pod in list(pending):
                summary = read_status(client, params, cli, pod)
                elapsed = time.monotonic() - started[pod]
                entries[pod]["after"] = summary
                progress = entries[pod]["progress"]
                if not progress or progress[-1]["percent"] != summary["percent"]:
                    progress.append(_sample(summary, elapsed))
                if summary["percent"] >= target:
                    entries[pod]["duration_seconds"] = round(elapsed, 3)
                    pending.remove(pod)
                elif summary["state"] != "warming":
                    raise ChaosError(
                        "The warm-up of pod {} stopped at {}% (cache state {}, warm-up state {}).".format(
                            pod,
                            summary["percent"],
                            summary["state"],
                            summary["warmup_state"],
                        ),
                        reason="warmup_failed",
                        changed=result["changed"],
                        pods=result["pods"],
                    )
            if not pending:
                break
            if time.monotonic() >= deadline:
                still = ", ".join(
                    "{} ({}%, {} entries)".format(
                        pod,
                        entries[pod]["after"]["percent"],
                        entries[pod]["after"]["entries"],
                    )
                    for pod in pending
                )
                raise ChaosError(
                    f"Timed out after {params['timeout']} seconds waiting for the cache warm-up of "
                    f"{model} to reach {target}%; still warming: {still}.",
                    reason="timeout",
                    changed=result["changed"],
                    still_warming=pending,
                    pods=result["pods"],
                )
            time.sleep(
                min(params["poll_interval"], max(0.0, deadline - time.monotonic()))
            )
        result["duration_seconds"] = round(time.monotonic() - begin, 3)

    if want_diff:
        keys = ("state", "percent", "entries")
        result["diff"] = {
            "before": {"pods": {p: {k: before[p][k] for k in keys} for p in pods}},
            "after": {
                "pods": {
                    p: {
                        k: (
                            entries[p]["after"]
                            if not check_mode
                            else _predicted(before[p], actions[p])
                        )[k]
                        for k in keys
                    }
                    for p in pods
                }
            },
        }
    return result


def _predicted(summary: dict[str, Any], action: str) -> dict[str, Any]:
    if action == NONE:
        return summary
    return dict(summary, state="warm", percent=100)


def main() -> None:
    argument_spec = build_argument_spec(
        AUTH_ARG_SPEC,
        GUARD_ARG_SPEC,
        namespace={"type": "str", "required": True},
        label_selector={"type": "str", "required": True},
        model={"type": "str", "required": True},
        target_percent={"type": "int", "default": 100},
        timeout={"type": "int", "default": 900},
        poll_interval={"type": "float", "default": 2},
        warmup_seconds={"type": "float"},
        warmup_prompts={"type": "int"},
        invalidate={"type": "bool", "default": False},
        container={"type": "str"},
        cli_path={"type": "str", "default": "./cli"},
        exec_timeout={"type": "int", "default": 30},
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)

    def action() -> dict[str, Any]:
        validate_params(module.params)
        return cache_warmup(
            get_client(module.params), module.params, module.check_mode, module._diff
        )

    run_module(module, action)


if __name__ == "__main__":
    main()

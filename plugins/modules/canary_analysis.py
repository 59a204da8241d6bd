# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: canary_analysis
short_description: Judge a canary from Prometheus metrics and optionally roll it back
version_added: 1.0.0
description:
  - Queries Prometheus (HTTP API C(/api/v1/query)) for the canary's error rate and P99 latency at a fixed
    O(interval), compares each sample with the thresholds, and counts consecutive failing samples.
  - Three outcomes. V(fail) as soon as O(consecutive_failures) samples in a row fail (the window stops early).
    V(pass) when the window ends without such a streak and at least O(min_samples) samples passed.
    V(inconclusive) otherwise.
  - A sample fails when a metric is above its threshold (the threshold itself passes), passes when both
    metrics are within their thresholds, and is inconclusive when a metric has no data and none fails.
  - No data (an empty vector or NaN), a query error or an unreachable Prometheus makes a sample
    V(inconclusive). It never counts as a failure, never triggers the rollback, and is reported as an
    alertable condition (RV(alert), RV(inconclusive_reason)). A pass resets the consecutive count;
    an inconclusive sample neither extends nor resets it.
  - With O(rollback=true), a V(fail) verdict sets the traffic weights to control 100 / canary 0 at once
    (the runbook's "Canary Rollback", the same merge patch as M(veritas.chaos.traffic_split)), on the traffic
    ConfigMap, or with O(backend=route) or O(backend=httproute) on the Route or HTTPRoute O(traffic_route).
  - The task succeeds whatever the verdict; branch on RV(verdict) (for example with C(failed_when)).
  - Runs for a whole observation window as an async task (C(async)/C(poll=0) and M(ansible.builtin.async_status)).
author:
  - Veritas SPARK team (@veritas-spark)
options:
  prometheus_url:
    description:
      - Base URL of the Prometheus server (without C(/api/v1)).
      - Can also be set with the E(VERITAS_PROMETHEUS_URL) or E(PROMETHEUS_URL) environment variables.
    type: str
    default: http://localhost:9090
  prometheus_bearer_token:
    description:
      - Bearer token for the Prometheus API.
    type: str
  prometheus_username:
    description:
      - User for HTTP basic authentication to Prometheus (ignored with O(prometheus_bearer_token)).
    type: str
  prometheus_password:
    description:
      - Password for O(prometheus_username).
    type: str
  prometheus_validate_certs:
    description:
      - Whether to verify the TLS certificate of an C(https://) Prometheus.
    type: bool
    default: true
  prometheus_ca_cert:
    description:
      - CA bundle to verify an C(https://) Prometheus.
    type: path
  query_timeout:
    description:
      - Seconds to wait for one query. A query that takes longer makes the sample inconclusive.
    type: float
    default: 5.0
  variant:
    description:
      - Value of the C(variant) label in the default queries.
    type: str
    default: canary
  error_rate_query:
    description:
      - PromQL for the error rate, a ratio from 0 to 1. If several series come back, the largest counts.
      - Default C(max(veritas:error_ratio:rate30s{variant="<variant>"})), with C(namespace="<namespace>")
        added when O(namespace) is set.
    type: str
  latency_query:
    description:
      - PromQL for the P99 latency in seconds. If several series come back, the largest counts.
      - Default C(max(veritas:latency_p99_seconds:rate30s{variant="<variant>"})), with C(namespace="<namespace>")
        added when O(namespace) is set.
    type: str
  error_rate_threshold:
    description:
      - A sample fails when the error rate is above this ratio (the runbook's 5%).
    type: float
    default: 0.05
  latency_threshold:
    description:
      - A sample fails when the P99 latency is above this many seconds (the runbook's 500 ms).
    type: float
    default: 0.5
  interval:
    description:
      - Seconds between samples; fractions are allowed. The first sample is taken at once.
    type: float
    default: 10.0
  duration:
    description:
      - Length of the observation window in seconds (C(floor(duration/interval)+1) samples).
      - At least one of O(duration) and O(samples) is needed; with both, the smaller window wins.
    type: float
  samples:
    description:
      - Number of samples in the window.
    type: int
  consecutive_failures:
    description:
      - Number of failing samples in a row that make the verdict V(fail) (the runbook's 3).
    type: int
    default: 3
  min_samples:
    description:
      - Passing samples needed for a V(pass) verdict; fewer make the window V(inconclusive).
      - Default half of the planned samples, rounded up.
    type: int
  rollback:
    description:
      - Roll back (traffic to 100% control) as soon as the verdict is V(fail). Never on V(inconclusive).
      - Needs O(namespace); the namespace, the traffic object and the rollback's patch (for example that the
        HTTPRoute has the named Services among its backendRefs) are checked before the window starts.
    type: bool
    default: false
  namespace:
    description:
      - Namespace of the traffic object, and the C(namespace) label added to the default queries.
      - Required with O(rollback=true).
    type: str
  traffic_configmap:
    description:
      - Name of the traffic ConfigMap that O(rollback) sets (O(backend=configmap)).
    type: str
    default: veritas-traffic-config
  traffic_route:
    description:
      - Name of the OpenShift Route (O(backend=route)) or Gateway API HTTPRoute (O(backend=httproute)) that
        O(rollback) sets. Required with O(rollback=true) and one of those backends.
    type: str
  control_key:
    description:
      - ConfigMap key of the control weight.
    type: str
    default: control
  canary_key:
    description:
      - ConfigMap key of the canary weight.
    type: str
    default: canary
extends_documentation_fragment:
  - veritas.chaos.traffic_backend
  - veritas.chaos.traffic_backend.route
  - veritas.chaos.auth
  - veritas.chaos.ledger
  - veritas.chaos.auth.guard
  - veritas.chaos.attributes
  - veritas.chaos.attributes.actiongroup_k8s
attributes:
  check_mode:
    support: full
    details:
      - Prometheus is queried as usual; the rollback is never performed. A V(fail) verdict with O(rollback=true)
        returns RV(rollback.would_rollback) and sends the patch as a server-side dry run (C(dryRun=All)).
  diff_mode:
    support: full
    details: The traffic object before and after the rollback (or the dry run), when there is one.
  idempotent:
    support: full
    details:
      - The rollback sets fixed weights; a second rollback of already rolled-back weights reports no change.
        The verdict itself depends on the metrics at the time of the run.
notes:
  - The auth options are only used with O(rollback=true); without it the module needs no Kubernetes library.
  - The production guard applies to O(namespace) when O(rollback=true).
seealso:
  - module: veritas.chaos.traffic_split
  - name: Prometheus HTTP API
    description: The instant query endpoint the module uses.
    link: https://prometheus.io/docs/prometheus/latest/querying/api/#instant-queries
"""

EXAMPLES = r"""
- name: Spot check of the canary (5 samples one second apart)
  veritas.chaos.canary_analysis:
    prometheus_url: http://127.0.0.1:19090
    interval: 1
    samples: 5
  register: canary

- name: Guard a 3-minute observation window and roll back by itself on failure
  veritas.chaos.canary_analysis:
    prometheus_url: http://prometheus.monitoring:9090
    namespace: veritas
    interval: 1
    duration: 180
    rollback: true
  async: 240
  poll: 0
  register: guard

- name: Wait for the guard's verdict
  ansible.builtin.async_status:
    jid: "{{ guard.ansible_job_id }}"
  register: guard_result
  until: guard_result.finished
  retries: 250
  delay: 1

- name: Guard a canary routed by a Gateway API HTTPRoute; roll back on its backendRefs
  veritas.chaos.canary_analysis:
    prometheus_url: http://prometheus.monitoring:9090
    namespace: veritas
    interval: 5
    duration: 300
    rollback: true
    backend: httproute
    traffic_route: veritas-runtime
    httproute_control_service: veritas-runtime-control
    httproute_canary_service: veritas-runtime-canary
  register: guarded

- name: Stricter thresholds and custom queries
  veritas.chaos.canary_analysis:
    prometheus_url: http://prometheus.monitoring:9090
    error_rate_query: >-
      sum(rate(http_requests_total{app="veritas",variant="canary",code=~"5.."}[1m]))
      / sum(rate(http_requests_total{app="veritas",variant="canary"}[1m]))
    latency_query: >-
      histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{variant="canary"}[1m])))
    error_rate_threshold: 0.01
    latency_threshold: 0.25
    interval: 10
    duration: 300
    consecutive_failures: 3
  register: analysis
  failed_when: analysis.verdict == 'fail'
"""

RETURN = r"""
verdict:
  description: V(pass), V(fail) or V(inconclusive).
  returned: always
  type: str
  sample: fail
verdict_reason:
  description: Why the window got its verdict.
  returned: always
  type: str
  sample: 3 consecutive failing samples (at sample 7)
alert:
  description:
    - True when the result needs a human, as the runbook asks when metrics fail. That is when the verdict is
      V(inconclusive), or when O(consecutive_failures) samples in a row were inconclusive (the guard was blind
      for as long as it needs to detect a failure).
  returned: always
  type: bool
  sample: false
inconclusive_reason:
  description: The reason of the last inconclusive sample (or of an inconclusive verdict); null when there was none.
  returned: always
  type: str
  sample: "error_rate: unreachable: http://127.0.0.1:19090: [Errno 111] Connection refused"
counts:
  description: How many samples were taken and their verdicts.
  returned: always
  type: dict
  contains:
    samples:
      description: Samples taken.
      type: int
      sample: 7
    passed:
      description: Passing samples.
      type: int
      sample: 4
    failed:
      description: Failing samples.
      type: int
      sample: 3
    inconclusive:
      description: Inconclusive samples.
      type: int
      sample: 0
measurements:
  description: Every sample, in order.
  returned: always
  type: list
  elements: dict
  contains:
    time:
      description: When the sample was evaluated (ISO 8601, UTC); both queries are evaluated at this instant.
      type: str
      sample: "2026-02-18T10:00:01.250Z"
    timestamp:
      description: The same time as Unix seconds.
      type: float
      sample: 1771408801.25
    error_rate:
      description: The error rate (ratio); null without data.
      type: float
      sample: 0.21
    p99_seconds:
      description: The P99 latency in seconds; null without data.
      type: float
      sample: 0.12
    verdict:
      description: The sample's verdict.
      type: str
      sample: fail
    reason:
      description: Why, for example C(error_rate 0.21 > 0.05), or the missing metric and the reason it has no data.
      type: str
      sample: error_rate 0.21 > 0.05
    consecutive_failures:
      description: The consecutive failure count after this sample.
      type: int
      sample: 1
window:
  description: Timing of the window.
  returned: always
  type: dict
  contains:
    started_at:
      description: Start of the window (ISO 8601, UTC).
      type: str
      sample: "2026-02-18T10:00:00.000Z"
    ended_at:
      description: End of the window (ISO 8601, UTC).
      type: str
      sample: "2026-02-18T10:00:07.010Z"
    first_fail_at:
      description: The first sample of the failing streak; null unless the verdict is V(fail).
      type: str
      sample: "2026-02-18T10:00:05.000Z"
    detected_at:
      description: The sample that completed the failing streak; null unless the verdict is V(fail).
      type: str
      sample: "2026-02-18T10:00:07.000Z"
rollback:
  description: The rollback action.
  returned: always
  type: dict
  contains:
    enabled:
      description: Value of O(rollback).
      type: bool
      sample: true
    backend:
      description: The traffic backend the rollback sets (O(backend)).
      type: str
      sample: httproute
    would_rollback:
      description: The verdict calls for the rollback and it is enabled (also in check mode).
      type: bool
      sample: true
    performed:
      description: The rollback was sent for real (never in check mode, never on V(inconclusive)).
      type: bool
      sample: true
    rollback_at:
      description: When the rollback completed (ISO 8601, UTC); null without a rollback.
      type: str
      sample: "2026-02-18T10:00:07.050Z"
    seconds_from_first_fail:
      description: Seconds from the first failing sample of the streak to RV(rollback.rollback_at).
      type: float
      sample: 2.05
    seconds_from_detection:
      description: Seconds from the sample that completed the streak to RV(rollback.rollback_at).
      type: float
      sample: 0.05
    weights:
      description: The weights after the rollback (or the dry run); null without one.
      type: dict
      sample: {"control": 100, "canary": 0}
    previous_weights:
      description: The weights before the rollback; null without one.
      type: dict
      sample: {"control": 90, "canary": 10}
queries:
  description: The PromQL that was run.
  returned: always
  type: dict
  contains:
    error_rate:
      description: Error rate query.
      type: str
      sample: max(veritas:error_ratio:rate30s{variant="canary"})
    latency:
      description: P99 latency query.
      type: str
      sample: max(veritas:latency_p99_seconds:rate30s{variant="canary"})
thresholds:
  description: The thresholds and streak length used.
  returned: always
  type: dict
  contains:
    error_rate:
      description: Error rate threshold.
      type: float
      sample: 0.05
    latency_seconds:
      description: P99 threshold in seconds.
      type: float
      sample: 0.5
    consecutive_failures:
      description: Failing samples in a row for a V(fail).
      type: int
      sample: 3
    min_samples:
      description: Passing samples needed for a V(pass).
      type: int
      sample: 3
"""

import os
import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule, env_fallback
from ansible_collections.veritas.chaos.plugins.module_utils._analysis import (
    ERROR_RATIO_RECORD,
    FAIL,
    LATENCY_P99_RECORD,
    Reading,
    Settings,
    default_query,
    isoformat,
    run_window,
    summarize,
)
from ansible_collections.veritas.chaos.plugins.module_utils._args import (
    AUTH_ARG_SPEC,
    GUARD_ARG_SPEC,
    LEDGER_ARG_SPEC,
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
from ansible_collections.veritas.chaos.plugins.module_utils._ledger import (
    RecordingClient,
    recording_client,
)
from ansible_collections.veritas.chaos.plugins.module_utils._prometheus import (
    PrometheusClient,
    validate_url,
)
from ansible_collections.veritas.chaos.plugins.module_utils._rollback import (
    ROLLBACK_CANARY,
    ROLLBACK_CONTROL,
    read_traffic,
    rollback_traffic,
)
from ansible_collections.veritas.chaos.plugins.module_utils._runner import run_module
from ansible_collections.veritas.chaos.plugins.module_utils._traffic import (
    ROUTE_ARG_SPEC,
    TRAFFIC_BACKEND_ARG_SPEC,
    TrafficBackend,
    traffic_backend,
    traffic_object_name,
    validate_backend_options,
)
from ansible_collections.veritas.chaos.plugins.module_utils._validate import (
    validate_input,
)


def settings_from(params: dict[str, Any]) -> Settings:
    settings = Settings(
        interval=params["interval"],
        duration=params["duration"],
        samples=params["samples"],
        consecutive_failures=params["consecutive_failures"],
        min_samples=params["min_samples"],
        error_rate_threshold=params["error_rate_threshold"],
        latency_threshold_seconds=params["latency_threshold"],
    )
    settings.validate()
    return settings


def queries_from(params: dict[str, Any]) -> tuple[str, str]:
    namespace = params["namespace"]
    error_rate = params["error_rate_query"] or default_query(
        ERROR_RATIO_RECORD, params["variant"], namespace
    )
    latency = params["latency_query"] or default_query(
        LATENCY_P99_RECORD, params["variant"], namespace
    )
    for option, query in (("error_rate_query", error_rate), ("latency_query", latency)):
        if not query.strip():
            raise ChaosError(
                f"{option} must be a non-empty PromQL expression.",
                reason="invalid_input",
                field=option,
            )
    return error_rate, latency


def prometheus_from(params: dict[str, Any]) -> PrometheusClient:
    if not params["query_timeout"] > 0:
        raise ChaosError(
            f"query_timeout must be a number of seconds greater than 0, got {params['query_timeout']!r}.",
            reason="invalid_input",
            field="query_timeout",
        )
    return PrometheusClient(
        validate_url(params["prometheus_url"]),
        timeout=params["query_timeout"],
        bearer_token=params["prometheus_bearer_token"],
        username=params["prometheus_username"],
        password=params["prometheus_password"],
        validate_certs=params["prometheus_validate_certs"],
        ca_cert=params["prometheus_ca_cert"],
    )


def preflight_rollback(
    client: KubeClient, backend: TrafficBackend, namespace: str, name: str, params: dict[str, Any]
) -> None:
    """Before the window: the namespace is allowed, the traffic object exists and the rollback's
    patch can be planned on it (nothing changes)."""
    guard_namespace(client, namespace, params)
    obj = read_traffic(client, backend, namespace, name, missing="; rollback=true needs it")
    backend.patch(obj, ROLLBACK_CONTROL, ROLLBACK_CANARY)


def analyse(
    params: dict[str, Any],
    check_mode: bool,
    want_diff: bool,
) -> dict[str, Any]:
    clock = time.time
    validate_input(
        params,
        namespaces=("namespace",),
        names=("traffic_configmap", "traffic_route"),
        data_keys=("control_key", "canary_key"),
        label_values=("variant",),
        urls=("prometheus_url",),
    )
    validate_backend_options(params)
    if params["control_key"] == params["canary_key"]:
        raise ChaosError(
            f"canary_key must differ from control_key, got {params['canary_key']!r} for both.",
            reason="invalid_input",
            field="canary_key",
        )
    settings = settings_from(params)
    error_rate_query, latency_query = queries_from(params)
    prometheus = prometheus_from(params)

    client: KubeClient | None = None
    backend = traffic_backend(params)
    traffic_name = ""
    if params["rollback"]:
        if not params["namespace"]:
            raise ChaosError(
                "rollback=true needs namespace (the namespace of the traffic object).",
                reason="invalid_input",
                field="namespace",
            )
        traffic_name = traffic_object_name(params)
        client = recording_client(get_client(params), params, "veritas.chaos.canary_analysis")
        preflight_rollback(client, backend, params["namespace"], traffic_name, params)
        if isinstance(client, RecordingClient) and not check_mode:
            # A guard left running by a killed run could move the weights after a restore:
            # the restore stops this very process, by identity.
            client.record_process(os.getpid(), "rollback guard")

    def query(promql: str, moment: float) -> Reading:
        return prometheus.query(promql, moment)

    window = run_window(
        settings, query, error_rate_query, latency_query, clock=clock, sleep=time.sleep
    )
    summary = summarize(window, settings)

    rollback: dict[str, Any] = {
        "enabled": params["rollback"],
        "backend": backend.name,
        "would_rollback": False,
        "performed": False,
        "rollback_at": None,
        "seconds_from_first_fail": None,
        "seconds_from_detection": None,
        "weights": None,
        "previous_weights": None,
    }
    result: dict[str, Any] = {"changed": False}
    if window.verdict == FAIL and params["rollback"] and client is not None:
        rollback["would_rollback"] = True
        outcome = rollback_traffic(
            client,
            backend,
            params["namespace"],
            traffic_name,
            dry_run=check_mode,
        )
        done = clock()
        rollback["performed"] = not check_mode
        rollback["weights"] = outcome["weights"]
        rollback["previous_weights"] = outcome["previous_weights"]
        if not check_mode:
            rollback["rollback_at"] = isoformat(done)
            if window.first_fail_time is not None:
                rollback["seconds_from_first_fail"] = round(
                    done - window.first_fail_time, 3
                )
            if window.detected_time is not None:
                rollback["seconds_from_detection"] = round(
                    done - window.detected_time, 3
                )
        result["changed"] = outcome["changed"]
        if want_diff:
            result["diff"] = {"before": outcome["before"], "after": outcome["after"]}

    inconclusive_reason = summary["inconclusive_reason"]
    if inconclusive_reason is None and window.verdict == "inconclusive":
        inconclusive_reason = window.reason
    result.update(
        {
            "verdict": window.verdict,
            "verdict_reason": window.reason,
            "alert": summary["alert"],
            "inconclusive_reason": inconclusive_reason,
            "counts": {
                "samples": summary["samples"],
                "passed": summary["passed"],
                "failed": summary["failed"],
                "inconclusive": summary["inconclusive"],
            },
            "measurements": [m.as_dict() for m in window.measurements],
            "window": {
                "started_at": summary["started_at"],
                "ended_at": summary["ended_at"],
                "first_fail_at": summary["first_fail_at"],
                "detected_at": summary["detected_at"],
            },
            "rollback": rollback,
            "queries": {"error_rate": error_rate_query, "latency": latency_query},
            "thresholds": {
                "error_rate": settings.error_rate_threshold,
                "latency_seconds": settings.latency_threshold_seconds,
                "consecutive_failures": settings.consecutive_failures,
                "min_samples": settings.effective_min_samples,
            },
        }
    )
    return result


def argument_spec() -> dict[str, dict[str, Any]]:
    return build_argument_spec(
        AUTH_ARG_SPEC,
        LEDGER_ARG_SPEC,
        GUARD_ARG_SPEC,
        TRAFFIC_BACKEND_ARG_SPEC,
        ROUTE_ARG_SPEC,
        prometheus_url={
            "type": "str",
            "default": "http://localhost:9090",
            "fallback": (env_fallback, ["VERITAS_PROMETHEUS_URL", "PROMETHEUS_URL"]),
        },
        prometheus_bearer_token={"type": "str", "no_log": True},
        prometheus_username={"type": "str"},
        prometheus_password={"type": "str", "no_log": True},
        prometheus_validate_certs={"type": "bool", "default": True},
        prometheus_ca_cert={"type": "path"},
        query_timeout={"type": "float", "default": 5.0},
        variant={"type": "str", "default": "canary"},
        error_rate_query={"type": "str"},
        latency_query={"type": "str"},
        error_rate_threshold={"type": "float", "default": 0.05},
        latency_threshold={"type": "float", "default": 0.5},
        interval={"type": "float", "default": 10.0},
        duration={"type": "float"},
        samples={"type": "int"},
        consecutive_failures={"type": "int", "default": 3},
        min_samples={"type": "int"},
        rollback={"type": "bool", "default": False},
        namespace={"type": "str"},
        traffic_configmap={"type": "str", "default": "veritas-traffic-config"},
        traffic_route={"type": "str"},
        control_key={"type": "str", "default": "control", "no_log": False},
        canary_key={"type": "str", "default": "canary", "no_log": False},
    )


def main() -> None:
    module = AnsibleModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
        required_one_of=[("duration", "samples")],
        required_if=[("rollback", True, ("namespace",))],
    )
    # Only the rollback talks to Kubernetes; the analysis alone needs Prometheus only.
    run_module(
        module,
        lambda: analyse(module.params, module.check_mode, module._diff),
        needs_kubernetes=module.params["rollback"],
    )


if __name__ == "__main__":
    main()

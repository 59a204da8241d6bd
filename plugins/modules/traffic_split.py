# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: traffic_split
short_description: Set the control/canary traffic weights of a canary deployment
version_added: 1.0.0
description:
  - Sets the control and canary weights in the traffic ConfigMap that the data plane follows
    (keys C(control) and C(canary), string values, as the runbook's C(kubectl patch) writes them).
  - With O(backend=route), sets the weights on an OpenShift Route (C(route.openshift.io/v1)).
    C(spec.to) is the control Service and the only entry of C(spec.alternateBackends) is the canary Service.
  - With O(backend=httproute), sets the weights of two C(backendRefs) of one rule of a Gateway API HTTPRoute
    (C(gateway.networking.k8s.io/v1)). The merge patch carries the whole C(spec.rules) list with only the two
    weights changed, since a merge patch replaces a list whole.
  - All three backends go through the same traffic backend interface as the rollback of
    M(veritas.chaos.canary_analysis) and the weights M(veritas.chaos.gameday_info) reports.
  - Weights are integers from 0 to 100 that sum to 100; anything else fails before the API is touched.
author:
  - Veritas SPARK team (@veritas-spark)
options:
  name:
    description:
      - Name of the ConfigMap, of the Route with O(backend=route), or of the HTTPRoute with O(backend=httproute).
    type: str
    default: veritas-traffic-config
  namespace:
    description:
      - Namespace of the object.
    type: str
    required: true
  control:
    description:
      - Weight of the control group, an integer from 0 to 100.
    type: int
    required: true
  canary:
    description:
      - Weight of the canary, an integer from 0 to 100; O(control) + O(canary) must be 100.
    type: int
    required: true
  control_key:
    description:
      - ConfigMap key that holds the control weight.
    type: str
    default: control
  canary_key:
    description:
      - ConfigMap key that holds the canary weight.
    type: str
    default: canary
  observe:
    description:
      - After setting the weights, wait until the split the data plane really serves, measured by Prometheus,
        matches the canary weight within O(observe.tolerance) percentage points.
      - Not done in check mode. A timeout fails the task (the weights stay set) with reason V(not_observed).
    type: dict
    suboptions:
      prometheus_url:
        description:
          - Base URL of Prometheus, for example V(http://127.0.0.1:19090).
        type: str
        required: true
      query:
        description:
          - PromQL that returns the share of requests served by the canary, in percent (0 to 100).
        type: str
        default: >-
          100 * sum(rate(veritas_http_requests_total{variant="canary"}[30s]))
          / sum(rate(veritas_http_requests_total{variant=~"control|canary"}[30s]))
      tolerance:
        description:
          - Largest accepted distance, in percentage points, between the observed share and O(canary).
        type: float
        default: 5
      timeout:
        description:
          - Seconds to wait for the observed split.
        type: int
        default: 120
      interval:
        description:
          - Seconds between two queries.
        type: float
        default: 2
      bearer_token:
        description:
          - Bearer token for Prometheus.
        type: str
      validate_certs:
        description:
          - Whether to verify Prometheus' TLS certificate.
        type: bool
        default: true
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
    details: A server-side dry run (C(dryRun=All)); the API validates and admits the change but does not store it.
  diff_mode:
    support: full
    details: The object before and after, without C(resourceVersion), C(generation) and C(managedFields).
  idempotent:
    support: full
seealso:
  - module: veritas.chaos.gameday_info
  - module: kubernetes.core.k8s
"""

EXAMPLES = r"""
- name: Send 10% of the traffic to the canary
  veritas.chaos.traffic_split:
    namespace: veritas
    control: 90
    canary: 10

- name: Canary rollback, all traffic to control (runbook "Canary Rollback")
  veritas.chaos.traffic_split:
    namespace: veritas
    control: 100
    canary: 0

- name: Split on an OpenShift Route instead
  veritas.chaos.traffic_split:
    namespace: veritas
    backend: route
    name: veritas-runtime
    route_control_service: veritas-runtime-control
    route_canary_service: veritas-runtime-canary
    control: 75
    canary: 25

- name: Split on a Gateway API HTTPRoute (the backendRefs of its first rule)
  veritas.chaos.traffic_split:
    namespace: veritas
    backend: httproute
    name: veritas-runtime
    httproute_control_service: veritas-runtime-control
    httproute_canary_service: veritas-runtime-canary
    control: 90
    canary: 10

- name: Shift 25% to the canary and wait until the proxy really serves it
  veritas.chaos.traffic_split:
    namespace: veritas
    control: 75
    canary: 25
    observe:
      prometheus_url: http://prometheus.monitoring:9090
      tolerance: 3
      timeout: 90

- name: Set auth once for the collection's modules
  module_defaults:
    group/veritas.chaos.k8s:
      kubeconfig: "{{ veritas_kubeconfig }}"
  block:
    - name: Set weights with a custom ConfigMap layout
      veritas.chaos.traffic_split:
        namespace: veritas
        name: router-weights
        control_key: stable
        canary_key: preview
        control: 50
        canary: 50
"""

RETURN = r"""
weights:
  description: The weights after the task (in check mode, the weights the dry run produced).
  returned: success
  type: dict
  contains:
    control:
      description: Control weight.
      type: int
      sample: 90
    canary:
      description: Canary weight.
      type: int
      sample: 10
previous_weights:
  description: The weights before the task; a value is null when the object did not hold a number.
  returned: success
  type: dict
  contains:
    control:
      description: Control weight before.
      type: int
      sample: 100
    canary:
      description: Canary weight before.
      type: int
      sample: 0
observed:
  description: The split observed through O(observe); null without O(observe) or in check mode.
  returned: success
  type: dict
  contains:
    canary_percent:
      description: The last observed canary share, in percent.
      type: float
      sample: 24.6
    seconds:
      description: Seconds from the start of the observation until the split matched.
      type: float
      sample: 6.2
    samples:
      description: Number of queries made.
      type: int
      sample: 4
backend:
  description: The backend that was set.
  returned: success
  type: str
  sample: configmap
object:
  description: The object after the task, without C(managedFields).
  returned: success
  type: dict
  contains:
    apiVersion:
      description: API version of the object.
      type: str
      sample: v1
    kind:
      description: Kind of the object.
      type: str
      sample: ConfigMap
    metadata:
      description: Metadata of the object.
      type: dict
      sample: {"name": "veritas-traffic-config", "namespace": "veritas"}
    data:
      description: ConfigMap data (ConfigMap backend).
      type: dict
      returned: when O(backend=configmap)
      sample: {"control": "90", "canary": "10"}
    spec:
      description: Route or HTTPRoute spec (Route and HTTPRoute backends).
      type: dict
      returned: when O(backend=route) or O(backend=httproute)
      sample: {"to": {"kind": "Service", "name": "control", "weight": 90}}
      contains:
        to:
          description: The Route's control backend.
          type: dict
          returned: when O(backend=route)
          sample: {"kind": "Service", "name": "control", "weight": 90}
        alternateBackends:
          description: The Route's canary backend, the only entry.
          type: list
          elements: dict
          returned: when O(backend=route)
          sample: [{"kind": "Service", "name": "canary", "weight": 10}]
        parentRefs:
          description: The Gateways the HTTPRoute attaches to (unchanged).
          type: list
          elements: dict
          returned: when O(backend=httproute)
          sample: [{"name": "veritas-gateway"}]
        rules:
          description: The HTTPRoute's rules; only the two weights of rule O(httproute_rule) are set.
          type: list
          elements: dict
          returned: when O(backend=httproute)
          sample:
            - matches: [{"path": {"type": "PathPrefix", "value": "/v1"}}]
              backendRefs:
                - {"name": "veritas-runtime-control", "port": 8080, "weight": 90}
                - {"name": "veritas-runtime-canary", "port": 8080, "weight": 10}
"""

import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule
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
    recording_client,
)
from ansible_collections.veritas.chaos.plugins.module_utils._rollback import (
    set_weights,
)
from ansible_collections.veritas.chaos.plugins.module_utils._runner import run_module
from ansible_collections.veritas.chaos.plugins.module_utils._traffic import (
    ROUTE_ARG_SPEC,
    TRAFFIC_BACKEND_ARG_SPEC,
    split_observed,
    traffic_backend,
    validate_backend_options,
    validate_weights,
)
from ansible_collections.veritas.chaos.plugins.module_utils._validate import (
    is_http_url,
    validate_input,
)


def observe_split(options: dict[str, Any], canary: int) -> dict[str, Any]:
    """Query Prometheus until the served canary share is within tolerance of the weight."""
    # Imported here: ansible's urls module costs ~150 ms of start-up that only this path needs.
    from ansible_collections.veritas.chaos.plugins.module_utils import _prometheus

    prometheus = _prometheus.PrometheusClient(
        options["prometheus_url"],
        bearer_token=options.get("bearer_token"),
        validate_certs=options.get("validate_certs", True),
    )
    start = time.monotonic()
    samples = 0
    last: float | None = None
    reason: str | None = None
    while True:
        reading = prometheus.query(options["query"])
        samples += 1
        last, reason = reading.value, reading.reason
        elapsed = time.monotonic() - start
        if split_observed(last, canary, options["tolerance"]):
            return {
                "canary_percent": round(last, 2),
                "seconds": round(elapsed, 3),
                "samples": samples,
            }
        if elapsed >= options["timeout"]:
            seen = "no data (" + str(reason) + ")" if last is None else f"{last:.1f}%"
            raise ChaosError(
                f"The weights are set, but after {options['timeout']} s the observed canary share is {seen}, "
                f"not {canary}% within {options['tolerance']} points.",
                reason="not_observed",
                changed=True,
                observed={
                    "canary_percent": last,
                    "seconds": round(elapsed, 3),
                    "samples": samples,
                    "reason": reason,
                },
            )
        time.sleep(options["interval"])


def validate_params(params: dict[str, Any]) -> None:
    validate_input(
        params,
        namespaces=("namespace",),
        names=("name",),
        data_keys=("control_key", "canary_key"),
    )
    validate_backend_options(params)
    if params["control_key"] == params["canary_key"]:
        raise ChaosError(
            f"canary_key must differ from control_key, got {params['canary_key']!r} for both.",
            reason="invalid_input",
            field="canary_key",
        )


def validate_observe(options: dict[str, Any] | None) -> None:
    if not options:
        return
    if not (options["query"] or "").strip():
        raise ChaosError(
            "observe.query must be a non-empty PromQL expression.",
            reason="invalid_input",
            field="observe.query",
        )
    if not is_http_url(options["prometheus_url"]):
        raise ChaosError(
            f"observe.prometheus_url must be an http:// or https:// URL, got {options['prometheus_url']!r}.",
            reason="invalid_input",
            field="prometheus_url",
        )
    for field, minimum, maximum in (
        ("tolerance", 0, 100),
        ("timeout", 0, None),
        ("interval", 0.01, None),
    ):
        if options[field] < minimum or (maximum is not None and options[field] > maximum):
            raise ChaosError(
                f"observe.{field} must be at least {minimum}"
                + (f" and at most {maximum}" if maximum is not None else "")
                + f", got {options[field]}.",
                reason="invalid_input",
                field=f"observe.{field}",
            )


def set_traffic_split(
    client: KubeClient, params: dict[str, Any], check_mode: bool, want_diff: bool
) -> dict[str, Any]:
    control, canary = validate_weights(params["control"], params["canary"])
    namespace = params["namespace"]
    name = params["name"]
    backend = traffic_backend(params)
    guard_namespace(client, namespace, params)
    outcome = set_weights(
        client, backend, namespace, name, control, canary, dry_run=check_mode
    )
    result: dict[str, Any] = {
        "changed": outcome["changed"],
        "backend": backend.name,
        "weights": outcome["weights"],
        "previous_weights": outcome["previous_weights"],
        "object": outcome["after"],
    }
    result["observed"] = None
    if params.get("observe") and not check_mode:
        result["observed"] = observe_split(params["observe"], canary)
    if want_diff:
        result["diff"] = {"before": outcome["before"], "after": outcome["after"]}
    return result


def main() -> None:
    argument_spec = build_argument_spec(
        AUTH_ARG_SPEC,
        LEDGER_ARG_SPEC,
        GUARD_ARG_SPEC,
        TRAFFIC_BACKEND_ARG_SPEC,
        ROUTE_ARG_SPEC,
        name={"type": "str", "default": "veritas-traffic-config"},
        namespace={"type": "str", "required": True},
        control={"type": "int", "required": True},
        canary={"type": "int", "required": True},
        control_key={"type": "str", "default": "control", "no_log": False},
        canary_key={"type": "str", "default": "canary", "no_log": False},
        observe={
            "type": "dict",
            "options": {
                "prometheus_url": {"type": "str", "required": True},
                "query": {
                    "type": "str",
                    "default": '100 * sum(rate(veritas_http_requests_total{variant="canary"}[30s]))'
                    ' / sum(rate(veritas_http_requests_total{variant=~"control|canary"}[30s]))',
                },
                "tolerance": {"type": "float", "default": 5},
                "timeout": {"type": "int", "default": 120},
                "interval": {"type": "float", "default": 2},
                "bearer_token": {"type": "str", "no_log": True},
                "validate_certs": {"type": "bool", "default": True},
            },
        },
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)

    def action() -> dict[str, Any]:
        validate_params(module.params)
        validate_weights(module.params["control"], module.params["canary"])
        validate_observe(module.params["observe"])
        return set_traffic_split(
            recording_client(get_client(module.params), module.params, "veritas.chaos.traffic_split"),
            module.params, module.check_mode, module._diff
        )

    run_module(module, action)


if __name__ == "__main__":
    main()

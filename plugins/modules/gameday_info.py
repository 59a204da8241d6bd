# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: gameday_info
short_description: Read the state of a Veritas deployment (weights, active colour, pods, endpoints)
version_added: 1.0.0
description:
  - Reads the traffic weights from the traffic ConfigMap (or with O(backend=route) or O(backend=httproute)
    from the Route or HTTPRoute O(traffic_route), through the same backend interface as
    M(veritas.chaos.traffic_split)), the active colour from the Service's selector,
    the pods per variant and per colour with their readiness, and the Service's ready endpoints.
  - Changes nothing. A missing traffic object or Service gives null values rather than an error.
author:
  - Veritas SPARK team (@veritas-spark)
options:
  namespace:
    description:
      - Namespace of the deployment.
    type: str
    required: true
  traffic_configmap:
    description:
      - Name of the traffic ConfigMap (O(backend=configmap)).
    type: str
    default: veritas-traffic-config
  traffic_route:
    description:
      - Name of the OpenShift Route (O(backend=route)) or Gateway API HTTPRoute (O(backend=httproute)) to read
        the weights from. Required with those backends.
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
  service:
    description:
      - Name of the Service whose selector names the active colour.
    type: str
    default: veritas-runtime
  colour_label:
    description:
      - Label that names the colour (blue-green), in the Service's selector and on pods.
    type: str
    default: deployment
  variant_label:
    description:
      - Label that names the variant (control or canary) on pods.
    type: str
    default: variant
  pod_selector:
    description:
      - Label selector of the deployment's pods.
      - When not set, every pod in O(namespace) that carries O(variant_label) or O(colour_label).
    type: str
extends_documentation_fragment:
  - veritas.chaos.traffic_backend
  - veritas.chaos.auth
  - veritas.chaos.auth.guard
  - veritas.chaos.attributes
  - veritas.chaos.attributes.actiongroup_k8s
attributes:
  check_mode:
    support: full
    details: Read only; runs the same in check mode.
  diff_mode:
    support: N/A
    details: Changes nothing.
  idempotent:
    support: full
seealso:
  - module: veritas.chaos.traffic_split
  - module: veritas.chaos.service_selector
"""

EXAMPLES = r"""
- name: Read the steady state before the game day
  veritas.chaos.gameday_info:
    namespace: veritas
  register: steady

- name: The canary gets 10% and blue is active
  ansible.builtin.assert:
    that:
      - steady.weights.canary == 10
      - steady.active_colour == 'blue'
      - steady.variants.canary.ready >= 1

- name: Read the weights a Gateway API HTTPRoute gives the canary
  veritas.chaos.gameday_info:
    namespace: veritas
    backend: httproute
    traffic_route: veritas-runtime
    httproute_control_service: veritas-runtime-control
    httproute_canary_service: veritas-runtime-canary
  register: gateway_split
"""

RETURN = r"""
backend:
  description: The traffic backend the weights were read from (O(backend)).
  returned: success
  type: str
  sample: httproute
weights:
  description: The traffic weights; null when the traffic object does not exist.
  returned: success
  type: dict
  contains:
    control:
      description: Control weight (null when the key holds no number).
      type: int
      sample: 90
    canary:
      description: Canary weight (null when the key holds no number).
      type: int
      sample: 10
active_colour:
  description: The value of O(colour_label) in the Service's selector; null without one.
  returned: success
  type: str
  sample: blue
selector:
  description: The Service's selector; null when the Service does not exist.
  returned: success
  type: dict
  sample: {"app": "veritas", "deployment": "blue"}
previous_selector:
  description: The selector recorded by the last M(veritas.chaos.service_selector) switch, if any.
  returned: success
  type: dict
  sample: {"app": "veritas", "deployment": "green"}
pods:
  description: The live pods of the deployment (see O(pod_selector)).
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: Pod name.
      type: str
    variant:
      description: Value of O(variant_label).
      type: str
    colour:
      description: Value of O(colour_label).
      type: str
    phase:
      description: Pod phase.
      type: str
    ready:
      description: Whether the pod is Ready.
      type: bool
    node:
      description: Node the pod runs on.
      type: str
variants:
  description: Per value of O(variant_label), the number of pods and of Ready pods.
  returned: success
  type: dict
  sample: {"control": {"total": 3, "ready": 3}, "canary": {"total": 1, "ready": 1}}
colours:
  description: Per value of O(colour_label), the number of pods and of Ready pods.
  returned: success
  type: dict
  sample: {"blue": {"total": 2, "ready": 2}}
endpoints:
  description: The Service's endpoints from its EndpointSlices.
  returned: success
  type: dict
  contains:
    ready:
      description: Number of ready endpoint addresses.
      type: int
      sample: 2
    not_ready:
      description: Number of endpoint addresses that are not ready.
      type: int
      sample: 0
    addresses:
      description: The ready addresses.
      type: list
      elements: str
      sample: ["10.0.0.4"]
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.veritas.chaos.plugins.module_utils._args import (
    AUTH_ARG_SPEC,
    GUARD_ARG_SPEC,
    build_argument_spec,
)
from ansible_collections.veritas.chaos.plugins.module_utils._blast import (
    is_candidate,
    is_ready,
)
from ansible_collections.veritas.chaos.plugins.module_utils._client import (
    KubeClient,
    get_client,
    resource_path,
)
from ansible_collections.veritas.chaos.plugins.module_utils._guard import (
    guard_namespace,
)
from ansible_collections.veritas.chaos.plugins.module_utils._runner import run_module
from ansible_collections.veritas.chaos.plugins.module_utils._selector import (
    PREVIOUS_SELECTOR_ANNOTATION,
    decode_selector,
)
from ansible_collections.veritas.chaos.plugins.module_utils._traffic import (
    TRAFFIC_BACKEND_ARG_SPEC,
    traffic_backend,
    traffic_object_name,
    validate_backend_options,
)
from ansible_collections.veritas.chaos.plugins.module_utils._validate import (
    validate_input,
)


def summarise_pods(pods: list[dict[str, Any]], label: str) -> dict[str, dict[str, int]]:
    """Per label value, the number of live pods and of Ready ones."""
    summary: dict[str, dict[str, int]] = {}
    for pod in pods:
        value = ((pod.get("metadata") or {}).get("labels") or {}).get(label)
        if value is None:
            continue
        entry = summary.setdefault(value, {"total": 0, "ready": 0})
        entry["total"] += 1
        entry["ready"] += 1 if is_ready(pod) else 0
    return summary


def _labelled(pod: dict[str, Any], *labels: str) -> bool:
    pod_labels = (pod.get("metadata") or {}).get("labels") or {}
    return any(label in pod_labels for label in labels)


def endpoint_summary(slices: list[dict[str, Any]]) -> dict[str, Any]:
    ready: list[str] = []
    not_ready = 0
    for endpoint_slice in slices:
        for endpoint in endpoint_slice.get("endpoints") or []:
            addresses = endpoint.get("addresses") or []
            if (endpoint.get("conditions") or {}).get("ready", True):
                ready.extend(addresses)
            else:
                not_ready += len(addresses)
    return {
        "ready": len(ready),
        "not_ready": not_ready,
        "addresses": sorted(set(ready)),
    }


def read_gameday_state(client: KubeClient, params: dict[str, Any]) -> dict[str, Any]:
    validate_input(
        params,
        namespaces=("namespace",),
        names=("traffic_configmap", "traffic_route", "service"),
        data_keys=("control_key", "canary_key"),
        label_keys=("colour_label", "variant_label"),
        selectors=("pod_selector",),
    )
    validate_backend_options(params)
    backend = traffic_backend(params)
    traffic_name = traffic_object_name(params)
    namespace = params["namespace"]
    guard_namespace(client, namespace, params)

    traffic = client.get(backend.path(namespace, traffic_name), missing_ok=True)
    weights = None if traffic is None else backend.weights(traffic)

    service = client.get(
        resource_path("v1", "services", namespace, params["service"]), missing_ok=True
    )
    selector = (
        None
        if service is None
        else dict((service.get("spec") or {}).get("selector") or {})
    )
    annotations = ((service or {}).get("metadata") or {}).get("annotations") or {}

    pods = [
        pod
        for pod in client.list(
            resource_path("v1", "pods", namespace),
            label_selector=params["pod_selector"],
        )
        if is_candidate(pod)
        and (
            params["pod_selector"]
            or _labelled(pod, params["variant_label"], params["colour_label"])
        )
    ]
    pod_rows = [
        {
            "name": pod["metadata"]["name"],
            "variant": (pod["metadata"].get("labels") or {}).get(
                params["variant_label"]
            ),
            "colour": (pod["metadata"].get("labels") or {}).get(params["colour_label"]),
            "phase": (pod.get("status") or {}).get("phase"),
            "ready": is_ready(pod),
            "node": (pod.get("spec") or {}).get("nodeName"),
        }
        for pod in sorted(pods, key=lambda item: item["metadata"]["name"])
    ]

    slices: list[dict[str, Any]] = []
    if service is not None:
        slices = client.list(
            resource_path("discovery.k8s.io/v1", "endpointslices", namespace),
            label_selector="kubernetes.io/service-name={}".format(params["service"]),
        )
    return {
        "changed": False,
        "backend": backend.name,
        "weights": weights,
        "active_colour": (selector or {}).get(params["colour_label"]),
        "selector": selector,
        "previous_selector": decode_selector(
            annotations.get(PREVIOUS_SELECTOR_ANNOTATION)
        ),
        "pods": pod_rows,
        "variants": summarise_pods(pods, params["variant_label"]),
        "colours": summarise_pods(pods, params["colour_label"]),
        "endpoints": endpoint_summary(slices),
    }


def main() -> None:
    argument_spec = build_argument_spec(
        AUTH_ARG_SPEC,
        GUARD_ARG_SPEC,
        TRAFFIC_BACKEND_ARG_SPEC,
        namespace={"type": "str", "required": True},
        traffic_configmap={"type": "str", "default": "veritas-traffic-config"},
        traffic_route={"type": "str"},
        control_key={"type": "str", "default": "control", "no_log": False},
        canary_key={"type": "str", "default": "canary", "no_log": False},
        service={"type": "str", "default": "veritas-runtime"},
        colour_label={"type": "str", "default": "deployment"},
        variant_label={"type": "str", "default": "variant"},
        pod_selector={"type": "str"},
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    run_module(
        module, lambda: read_gameday_state(get_client(module.params), module.params)
    )


if __name__ == "__main__":
    main()

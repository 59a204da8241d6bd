# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: gpu_fault
short_description: Inject or remove a GPU fault (runtime flag, node taint, cordon, capacity or DCGM)
version_added: 1.0.0
description:
  - Makes GPUs unavailable to the Veritas runtime in one of five ways (O(method)), and undoes it.
  - V(runtime_flag) runs the runtime CLI in the target pods, C(cli fault set gpu-unavailable [--cpu-fallback]),
    and C(cli fault clear gpu-unavailable) to remove it (runbook scenario 6, "driver fault").
  - V(taint) puts a V(NoSchedule) or V(NoExecute) taint on the selected nodes.
  - V(cordon) marks the selected nodes unschedulable.
  - V(capacity) sets the node status capacity and allocatable of O(resource) (default C(nvidia.com/gpu)) to 0
    through the C(status) subresource, as a failed device plugin would.
  - V(dcgm) runs C(dcgmi test --inject) in pods on real GPU nodes (for example the DCGM exporter's pods).
    It needs real NVIDIA DCGM (C(dcgmi) and a running C(nv-hostengine)) in those pods; the module checks
    with C(dcgmi discovery -l) first and fails with reason C(dcgm_unavailable) when it is missing.
  - O(state=present) first records the original values on the object itself, in the annotation
    C(chaos.veritas.io/gpu-fault-original) (JSON, one entry per method), then changes it.
    O(state=absent) restores exactly those values and removes the entry, so it needs no memory of
    the earlier run. Several methods can be stacked on the same node and are undone one by one.
author:
  - Veritas SPARK team (@veritas-spark)
options:
  state:
    description:
      - V(present) injects the fault, V(absent) restores what V(present) changed.
    type: str
    choices: [present, absent]
    default: present
  method:
    description:
      - How the fault is injected.
    type: str
    choices: [runtime_flag, taint, cordon, capacity, dcgm]
    required: true
  nodes:
    description:
      - Names of the nodes to act on (V(taint), V(cordon), V(capacity)), or to restrict the pods to
        (V(runtime_flag), V(dcgm)). Combined with O(node_selector) as a union.
    type: list
    elements: str
  node_selector:
    description:
      - A label selector for nodes, for example C(nvidia.com/gpu.present=true).
    type: str
  namespace:
    description:
      - Namespace of the target pods (V(runtime_flag), V(dcgm)); required for those methods.
    type: str
  pods:
    description:
      - Names of the target pods (V(runtime_flag), V(dcgm)). Combined with O(label_selector) as a union.
    type: list
    elements: str
  label_selector:
    description:
      - A label selector for the target pods (V(runtime_flag), V(dcgm)), for example C(app=veritas,deployment=green).
    type: str
  container:
    description:
      - Container to exec in; default the pod's first container.
    type: str
  cli_path:
    description:
      - The runtime CLI inside the pod, as the runbook runs it (C(./cli)). Split on spaces.
    type: str
    default: ./cli
  cpu_fallback:
    description:
      - With V(runtime_flag), pass C(--cpu-fallback) so that the runtime serves from CPU instead of failing.
    type: bool
    default: false
  exec_timeout:
    description:
      - Seconds to wait for each command run in a pod.
    type: int
    default: 30
  taint_key:
    description:
      - Key of the taint (V(taint)).
    type: str
    default: chaos.veritas.io/gpu-fault
  taint_value:
    description:
      - Value of the taint (V(taint)).
    type: str
    default: gpu-unavailable
  taint_effect:
    description:
      - Effect of the taint (V(taint)). V(NoExecute) also evicts running pods that do not tolerate it.
    type: str
    choices: [NoSchedule, NoExecute]
    default: NoSchedule
  resource:
    description:
      - The extended resource whose capacity and allocatable V(capacity) sets to 0.
    type: str
    default: nvidia.com/gpu
  dcgmi_path:
    description:
      - The C(dcgmi) binary inside the pod (V(dcgm)).
    type: str
    default: dcgmi
  dcgm_gpu_ids:
    description:
      - GPU ids to inject into (V(dcgm)).
    type: list
    elements: int
    default: [0]
  dcgm_field_id:
    description:
      - DCGM field id to inject (V(dcgm)); default 230, C(DCGM_FI_DEV_XID_ERRORS).
    type: int
    default: 230
  dcgm_value:
    description:
      - Value to inject (V(dcgm)); default 79, XID 79 "GPU has fallen off the bus".
    type: str
    default: "79"
  dcgm_clear_value:
    description:
      - Value injected by O(state=absent) to clear the fault (V(dcgm)); recorded with the injection.
    type: str
    default: "0"
extends_documentation_fragment:
  - veritas.chaos.auth
  - veritas.chaos.ledger
  - veritas.chaos.auth.guard
  - veritas.chaos.attributes
  - veritas.chaos.attributes.actiongroup_k8s
attributes:
  check_mode:
    support: full
    details:
      - Node and pod patches are sent as a server-side dry run (C(dryRun=All)).
      - Commands in pods are not run in check mode, except the read-only C(cli fault list) (V(runtime_flag))
        and C(dcgmi discovery -l) (V(dcgm)) that tell whether a change is needed.
  diff_mode:
    support: full
    details: For every target, the fields the method changes (taints, unschedulable, capacity and
      allocatable, the runtime flag) and the recorded originals, before and after.
  idempotent:
    support: full
    details:
      - For V(dcgm) the record on the pod stands for the injection, as DCGM has no cheap read-back of an
        injected value.
notes:
  - The production guard refuses a namespace, and nodes, labelled O(production_label)=O(production_value)
    unless O(allow_production=true).
  - O(state=absent) without a record changes nothing for V(cordon), V(capacity) and V(dcgm); for V(taint)
    it removes a taint with exactly the module's key, value and effect; for V(runtime_flag) it clears
    the C(gpu-unavailable) fault, since that flag is the fault itself.
  - On a real node the kubelet rewrites C(status.capacity) and C(status.allocatable) from its device plugins at its
    next node status update, so a V(capacity) fault lasts only until then unless the device plugin is stopped as well;
    run the task again (it re-applies and keeps the first recorded original) to hold it.
  - On kwok's simulated nodes (annotation C(kwok.x-k8s.io/node=fake)) the V(capacity) patch sticks, as kwok's node
    stages copy capacity and allocatable from the node itself and its heartbeat only rewrites conditions and addresses.
seealso:
  - module: veritas.chaos.pod_chaos
  - name: DCGM error injection
    description: NVIDIA's guide to C(dcgmi test --inject).
    link: https://docs.nvidia.com/datacenter/dcgm/latest/user-guide/dcgm-error-injection.html
"""

EXAMPLES = r"""
- name: GPU driver fault in the green runtime pods, serving from CPU
  veritas.chaos.gpu_fault:
    method: runtime_flag
    namespace: veritas
    label_selector: app=veritas,deployment=green
    cpu_fallback: true

- name: Keep new GPU workloads off the GPU nodes
  veritas.chaos.gpu_fault:
    method: taint
    node_selector: nvidia.com/gpu.present=true
    taint_effect: NoSchedule

- name: The device plugin reports no GPUs on lab-gpu-1
  veritas.chaos.gpu_fault:
    method: capacity
    nodes: [lab-gpu-1]

- name: XID 79 on GPU 0 of a real node, through the DCGM exporter pod running there
  veritas.chaos.gpu_fault:
    method: dcgm
    namespace: gpu-operator
    label_selector: app=nvidia-dcgm-exporter
    nodes: [gpu-node-17]
    dcgm_gpu_ids: [0]

- name: Restore everything the capacity fault changed
  veritas.chaos.gpu_fault:
    method: capacity
    nodes: [lab-gpu-1]
    state: absent
"""

RETURN = r"""
method:
  description: The method used.
  returned: always
  type: str
  sample: taint
state:
  description: The state requested.
  returned: always
  type: str
  sample: present
targets:
  description: One entry per node or pod acted on.
  returned: success
  type: list
  elements: dict
  contains:
    kind:
      description: V(Node) or V(Pod).
      type: str
      sample: Node
    name:
      description: Name of the object.
      type: str
      sample: lab-gpu-1
    namespace:
      description: Namespace of a pod; null for a node.
      type: str
      sample: veritas
    changed:
      description: Whether this target changed (or would, in check mode).
      type: bool
      sample: true
    before:
      description: The fields the method handles, before.
      type: dict
      sample: {"unschedulable": false, "capacity": "8", "allocatable": "8", "taints": [], "record": {}}
    after:
      description: The same fields after (in check mode, as the dry run or the plan says).
      type: dict
      sample: {"unschedulable": false, "capacity": "0", "allocatable": "0", "taints": [], "record": {"capacity": {}}}
    commands:
      description: Commands run in the pod that changed something (V(runtime_flag), V(dcgm)), with rc and output.
      type: list
      elements: dict
      returned: for pod methods
      sample: [{"command": ["./cli", "fault", "set", "gpu-unavailable", "--json"], "rc": 0, "stdout": "{}", "stderr": ""}]
"""

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
from ansible_collections.veritas.chaos.plugins.module_utils._exec import exec_in_pod
from ansible_collections.veritas.chaos.plugins.module_utils._fault_backends import (
    run_fault,
)
from ansible_collections.veritas.chaos.plugins.module_utils._fault_gpu import (
    GPU_BACKENDS,
)
from ansible_collections.veritas.chaos.plugins.module_utils._guard import (
    guard_namespace,
)
from ansible_collections.veritas.chaos.plugins.module_utils._ledger import (
    recording_client,
)
from ansible_collections.veritas.chaos.plugins.module_utils._nodes import (
    METHODS,
    NODE_METHODS,
)
from ansible_collections.veritas.chaos.plugins.module_utils._runner import run_module
from ansible_collections.veritas.chaos.plugins.module_utils._runtime_cli import (
    cli_prefix,
)
from ansible_collections.veritas.chaos.plugins.module_utils._validate import (
    validate_input,
)

STATES = ("present", "absent")


def validate(params: dict[str, Any]) -> None:
    """Bad input fails before the API is touched, naming the field and the allowed values."""
    validate_input(
        params,
        namespaces=("namespace",),
        names=("nodes", "pods"),
        dns_labels=("container",),
        selectors=("label_selector", "node_selector"),
        label_keys=("taint_key", "resource"),
        label_values=("taint_value",) if params["taint_value"] else (),
    )
    if params["method"] not in METHODS:
        raise ChaosError(
            "method must be one of {}, got {!r}.".format(
                ", ".join(METHODS), params["method"]
            ),
            reason="invalid_input",
            field="method",
        )
    if params["state"] not in STATES:
        raise ChaosError(
            "state must be one of {}, got {!r}.".format(
                ", ".join(STATES), params["state"]
            ),
            reason="invalid_input",
            field="state",
        )
    if params["method"] in NODE_METHODS:
        if not params["nodes"] and not params["node_selector"]:
            raise ChaosError(
                f"method {params['method']} needs nodes or node_selector.",
                reason="invalid_input",
                field="nodes, node_selector",
            )
    else:
        if not params["namespace"]:
            raise ChaosError(
                f"method {params['method']} needs namespace (of the target pods).",
                reason="invalid_input",
                field="namespace",
            )
        if not params["pods"] and not params["label_selector"]:
            raise ChaosError(
                f"method {params['method']} needs pods or label_selector.",
                reason="invalid_input",
                field="pods, label_selector",
            )
    if params["exec_timeout"] < 1:
        raise ChaosError(
            f"exec_timeout must be an integer of at least 1, got {params['exec_timeout']}.",
            reason="invalid_input",
            field="exec_timeout",
        )
    if params["method"] == "runtime_flag":
        cli_prefix(params["cli_path"])
    if params["method"] == "dcgm" and not params["dcgm_gpu_ids"]:
        raise ChaosError(
            "dcgm_gpu_ids must list at least one GPU id.",
            reason="invalid_input",
            field="dcgm_gpu_ids",
        )
    if params["method"] == "dcgm":
        for field in ("dcgm_gpu_ids", "dcgm_field_id"):
            values = params[field] if isinstance(params[field], list) else [params[field]]
            if any(value < 0 for value in values):
                raise ChaosError(
                    f"{field} must be GPU or field ids of at least 0, got {params[field]!r}.",
                    reason="invalid_input",
                    field=field,
                )
        for field in ("dcgmi_path", "dcgm_value", "dcgm_clear_value"):
            if not (params[field] or "").strip():
                raise ChaosError(
                    f"{field} must not be empty with method dcgm.",
                    reason="invalid_input",
                    field=field,
                )


def gpu_fault(
    client: KubeClient, params: dict[str, Any], check_mode: bool, want_diff: bool
) -> dict[str, Any]:
    validate(params)
    if params["method"] not in NODE_METHODS:
        guard_namespace(client, params["namespace"], params)
    backend = GPU_BACKENDS[params["method"]](client, params, exec_in_pod)
    return run_fault(backend, params, check_mode, want_diff)


def argument_spec() -> dict[str, dict[str, Any]]:
    return build_argument_spec(
        AUTH_ARG_SPEC,
        LEDGER_ARG_SPEC,
        GUARD_ARG_SPEC,
        state={"type": "str", "choices": list(STATES), "default": "present"},
        method={"type": "str", "choices": list(METHODS), "required": True},
        nodes={"type": "list", "elements": "str"},
        node_selector={"type": "str"},
        namespace={"type": "str"},
        pods={"type": "list", "elements": "str"},
        label_selector={"type": "str"},
        container={"type": "str"},
        cli_path={"type": "str", "default": "./cli"},
        cpu_fallback={"type": "bool", "default": False},
        exec_timeout={"type": "int", "default": 30},
        taint_key={
            "type": "str",
            "default": "chaos.veritas.io/gpu-fault",
            "no_log": False,
        },
        taint_value={"type": "str", "default": "gpu-unavailable"},
        taint_effect={
            "type": "str",
            "choices": ["NoSchedule", "NoExecute"],
            "default": "NoSchedule",
        },
        resource={"type": "str", "default": "nvidia.com/gpu"},
        dcgmi_path={"type": "str", "default": "dcgmi"},
        dcgm_gpu_ids={"type": "list", "elements": "int", "default": [0]},
        dcgm_field_id={"type": "int", "default": 230},
        dcgm_value={"type": "str", "default": "79"},
        dcgm_clear_value={"type": "str", "default": "0"},
    )


def main() -> None:
    module = AnsibleModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
    )

    def action() -> dict[str, Any]:
        validate(module.params)
        return gpu_fault(
            recording_client(get_client(module.params), module.params, "veritas.chaos.gpu_fault"),
            module.params, module.check_mode, module._diff
        )

    run_module(module, action)


if __name__ == "__main__":
    main()

# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: runtime_fault
short_description: Inject or remove a runtime fault (error rate, latency, KV-cache corruption, metrics outage, resource exhaustion)
version_added: 1.0.0
description:
  - Sets (O(state=present)) or removes (O(state=absent)) one fault in the runtime pods that match O(label_selector),
    and confirms that it took effect before reporting success.
  - The module reads the current fault state first, so the same call twice changes nothing the second time,
    and O(state=absent) removes exactly the named fault (other faults stay as they are).
  - "O(method=runtime_cli): runs the runtime CLI in each pod (C(cli fault set|clear|list)), then reads
    C(cli fault list) back from every targeted pod until each shows the fault with the requested parameters."
  - "O(method=network_policy) (O(fault=metrics_outage) only): a NetworkPolicy that stops the Prometheus namespace
    (or its pods) from reaching O(metrics_port) of the selected pods while all other traffic keeps flowing.
    The API confirms that the policy exists; whether the cluster's network plugin enforces it is not visible
    through the API, so use O(confirm_with=prometheus) to confirm that scrapes really fail
    (the local lab applies NetworkPolicies to its Prometheus' scrapes as a network plugin would)."
  - "O(method=envoy_runtime) (O(fault=error_rate) or O(fault=latency)): a runtime override of Envoy's HTTP fault
    filter through the admin API (C(POST /runtime_modify)), reached by exec in the Envoy container (which must have
    C(curl)), read back from C(GET /runtime). Needs the fault filter in the listener's filter chain with an abort
    and a delay block (for example at 0%); the runtime keys override their percentages and values.
    The lab's runtime pods carry an C(envoy) sidecar whose admin endpoint honours the same path, keys and semantics."
  - "O(method=memory_limit) (O(fault=resource_exhaustion) with O(resource=memory) only): exhausts the memory the
    standard way, through the Kubernetes API. It finds the Deployments that own the selected running pods
    (pod, ReplicaSet, Deployment) and lowers the memory limit (C(resources.limits.memory)) of one container of each
    Deployment's pod template to O(memory_limit), and its memory request to the same value where that is larger.
    That rolls the whole Deployment: the pods it makes are OOMKilled by the kubelet and crash-loop (with a
    C(RollingUpdate) strategy the old pods keep serving until the new ones are available; with C(Recreate) all
    go at once). The values before are kept in the Deployment's C(chaos.veritas.io/memory-limit-before)
    annotation (a metadata change, which rolls nothing), and O(state=absent) puts them back from it, removes it
    and waits until the rollout is complete again. The confirmation waits until a pod with the new limit shows
    the container C(OOMKilled) or in C(CrashLoopBackOff)."
  - "O(method=admin_command) (O(fault=kv_cache_corruption) only; no standard interface corrupts a KV cache):
    runs the runtime's own admin command O(admin_command.set) in each targeted pod and confirms the fault from its
    output (O(admin_command.expected_output)); O(admin_command.clear) undoes it, and is what the ledger records
    before the command runs. The command carries its own parameters (the share of entries, the mode), so
    O(percent), O(write_percent) and O(corruption_mode) do not apply. A runtime command has no read side:
    every call with this method runs the command and reports a change."
  - With O(confirm_with=prometheus) the module also waits until a Prometheus query meets a condition
    (for example the error ratio above 0.1) and returns how long that took.
  - With O(duration) the fault is held that many seconds and then removed again (what this call set is cleared,
    what it updated gets its previous parameters back).
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
      - Label selector of the runtime pods, as for C(kubectl -l), for example C(app=veritas,variant=canary).
      - Only running pods that are not terminating are targeted.
    type: str
    required: true
  fault:
    description:
      - The fault.
      - C(error_rate) fails O(percent) of the requests with O(status_code).
      - C(latency) adds O(latency_ms) (plus up to O(jitter_ms)) to every request.
      - C(kv_cache_corruption) corrupts O(percent) of the KV-cache entries (and O(write_percent) of new ones).
      - C(metrics_outage) makes the pods' metrics unavailable to Prometheus.
      - C(resource_exhaustion) exhausts the O(resource) (memory or disk) of the pods.
    type: str
    required: true
    choices: [error_rate, latency, kv_cache_corruption, metrics_outage, resource_exhaustion]
  state:
    description:
      - V(present) sets the fault, V(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
  method:
    description:
      - How the fault is injected; see the description.
      - V(runtime_cli) supports every fault, V(network_policy) only C(metrics_outage),
        V(envoy_runtime) C(error_rate) and C(latency), V(memory_limit) only C(resource_exhaustion) with
        O(resource=memory), V(admin_command) only C(kv_cache_corruption).
      - "When not set, the fault's standard interface: V(envoy_runtime) for C(error_rate) and C(latency),
        V(network_policy) for C(metrics_outage), V(memory_limit) for C(resource_exhaustion) and V(admin_command)
        for C(kv_cache_corruption). V(runtime_cli) (the runtime's C(cli fault) switches, as the lab's runtime has
        them) is used only when named."
    type: str
    choices: [runtime_cli, network_policy, envoy_runtime, memory_limit, admin_command]
  percent:
    description:
      - For C(error_rate) (required), the percentage of requests that fail, above 0 to 100
        (a whole number with V(envoy_runtime)).
      - For C(kv_cache_corruption), the percentage of the cached entries corrupted (default 100).
    type: float
  status_code:
    description:
      - For C(error_rate), the HTTP status of the failed requests, 100 to 599. Defaults to 500.
    type: int
  latency_ms:
    description:
      - For C(latency) (required), the milliseconds added to each request.
    type: float
  jitter_ms:
    description:
      - For C(latency) with V(runtime_cli), up to this many more milliseconds, at random.
    type: float
  write_percent:
    description:
      - For C(kv_cache_corruption), the percentage of newly cached entries written corrupt (default 0).
    type: float
  corruption_mode:
    description:
      - For C(kv_cache_corruption), where the damage happens. V(payload) damages an entry's data after its
        checksum was taken, so a read that verifies it can catch it. V(silent) damages it before (a bad write,
        so data and checksum agree) and only the answers show it. Defaults to V(payload).
    type: str
    choices: [payload, silent]
  metrics_mode:
    description:
      - For C(metrics_outage) with V(runtime_cli), how C(/metrics) fails, V(503) (an error) or V(empty) (no samples).
        Defaults to V(503).
    type: str
    choices: ['503', empty]
  resource:
    description:
      - For C(resource_exhaustion) (required, also with O(state=absent)), which resource is exhausted.
    type: str
    choices: [memory, disk]
  memory_limit:
    description:
      - With O(method=memory_limit), the memory limit the container gets, a Kubernetes quantity such as V(16Mi),
        V(64M), V(1.5Gi) or V(134217728) (bytes). Required with O(state=present); ignored with O(state=absent),
        which puts back the values from before.
      - The container's memory request is lowered to it too where it is larger (the API refuses a request above
        the limit); a smaller request stays.
      - Choose it below what the container uses at start, so that the kubelet OOMKills it. Every pod of the
        Deployment is replaced.
    type: str
  pod_count:
    description:
      - Target only this many of the matching pods (at least 1). Mutually exclusive with O(pod_percent).
      - Pods that already carry the fault are chosen first, so the same call again targets the same pods.
      - All matching pods when neither O(pod_count) nor O(pod_percent) is set. Ignored with O(state=absent),
        which removes the fault from every matching pod that carries it.
      - Refused with O(method=memory_limit), which changes whole Deployments (and with V(network_policy)).
    type: int
  pod_percent:
    description:
      - Target this percentage of the matching pods, 1 to 100, rounded up. Mutually exclusive with O(pod_count).
    type: int
  max_count:
    description:
      - Blast-radius cap, the most pods one call may inject into; the call is refused, changing nothing, above it.
      - With O(method=memory_limit) every pod of the Deployments counts (the sum of their C(spec.replicas)).
    type: int
  max_percent:
    description:
      - Blast-radius cap, the largest share of the matching pods one call may inject into, 1 to 100.
      - With O(method=memory_limit) the pods of the Deployments (the sum of their C(spec.replicas)) as a share of
        the matching pods; it exceeds 100% when the Deployments have more pods than O(label_selector) matches.
    type: int
  seed:
    description:
      - Seed of the random choice of pods with O(pod_count) or O(pod_percent), for a repeatable selection.
    type: int
  container:
    description:
      - Container to exec in, the runtime's with V(runtime_cli) and the Envoy sidecar's with V(envoy_runtime).
        The pod's default container when not set.
      - With V(memory_limit), the container of the pod template whose memory limit is lowered; when not set, the
        one named C(runtime), else the first of C(spec.containers). O(state=absent) restores the container the
        annotation names.
    type: str
  admin_command:
    description:
      - With V(admin_command), the runtime's own commands for the fault, run by exec in O(container).
    type: dict
    suboptions:
      set:
        description:
          - The command that injects the fault, as an argument list (no shell), with its parameters.
        type: list
        elements: str
        required: true
      clear:
        description:
          - The command that removes it again (O(state=absent), O(duration), and the ledger's restore).
        type: list
        elements: str
        required: true
      expected_output:
        description:
          - A regular expression the output of O(admin_command.set) must match in every pod for the fault to
            count as confirmed (exit code 0 alone when not set). O(admin_command.clear) needs exit code 0 only.
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
  confirm_timeout:
    description:
      - Seconds to wait until every targeted pod reads back the requested state (or the NetworkPolicy does).
      - With V(memory_limit), until a pod with the new limit of every changed Deployment shows the container
        OOMKilled or in CrashLoopBackOff (O(state=present)), or until the rollout is complete again
        (O(state=absent)). Allow for the rollout and the kubelet's first restarts.
    type: int
    default: 30
  confirm_with:
    description:
      - V(readback) confirms from the targets themselves (C(cli fault list), Envoy's C(/runtime), the NetworkPolicy).
      - V(prometheus) also waits until O(prometheus.query) meets O(prometheus.condition).
    type: str
    choices: [readback, prometheus]
    default: readback
  prometheus:
    description:
      - The metric check of O(confirm_with=prometheus).
    type: dict
    suboptions:
      url:
        description:
          - Base URL of Prometheus, for example V(http://prometheus.monitoring:9090).
        type: str
        required: true
      query:
        description:
          - PromQL instant query, for example the canary's error ratio. Every returned sample must meet the condition.
        type: str
        required: true
      condition:
        description:
          - V(above) or V(below) O(prometheus.threshold) (an empty result never meets these), or V(no_data)
            (the query returns nothing, as when a pod's metrics are gone).
        type: str
        choices: [above, below, no_data]
        default: above
      threshold:
        description:
          - The bound of V(above) and V(below).
        type: float
      timeout:
        description:
          - Seconds to wait for the condition.
        type: float
        default: 120
      interval:
        description:
          - Seconds between two queries.
        type: float
        default: 2
      validate_certs:
        description:
          - Verify the TLS certificate of Prometheus.
        type: bool
        default: true
      bearer_token:
        description:
          - Bearer token for Prometheus.
        type: str
  duration:
    description:
      - With O(state=present), hold the fault this many seconds after it is confirmed, then remove what this call
        changed and confirm the removal. Every such call reports a change.
    type: int
  policy_name:
    description:
      - Name of the NetworkPolicy of V(network_policy).
    type: str
    default: veritas-chaos-metrics-outage
  metrics_port:
    description:
      - With V(network_policy), the numeric port the pods serve C(/metrics) on (required with O(state=present)).
    type: int
  prometheus_namespace:
    description:
      - With V(network_policy), the namespace Prometheus scrapes from (required with O(state=present)).
    type: str
  prometheus_pod_labels:
    description:
      - With V(network_policy), labels of the Prometheus pods. When set, only those pods of O(prometheus_namespace)
        are blocked (other pods of that namespace still reach the metrics port).
    type: dict
  envoy_admin_url:
    description:
      - With V(envoy_runtime), the Envoy admin address as seen from inside the pod. The default is Istio's
        sidecar's; a standalone Envoy often serves it on V(http://127.0.0.1:9901).
    type: str
    default: http://127.0.0.1:15000
  envoy_runtime_prefix:
    description:
      - With V(envoy_runtime), the prefix of the fault filter's runtime keys.
    type: str
    default: fault.http
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
      - With V(runtime_cli) and V(envoy_runtime) only the read commands run in the pods; nothing is set.
      - With V(network_policy) and V(memory_limit) the write is a server-side dry run (C(dryRun=All)).
  diff_mode:
    support: full
    details: The fault per targeted pod (or the NetworkPolicy, or the memory limit and request per Deployment)
      before and after.
  idempotent:
    support: full
    details: The current state is read first; a fault already set with the same parameters is not set again.
      Not with O(duration), which removes the fault again at the end of every call.
notes:
  - The lab's runtime pods run the CLI of C(lab/runtime/cli.py); a real runtime needs the same C(fault) commands
    with C(--json) output.
  - A C(kv_cache_corruption) injection corrupts the cache at the moment it is set; setting it again with other
    parameters corrupts again.
  - With O(method=memory_limit), the annotation keeps the values from before the first change; a later call
    with another O(memory_limit) changes the limit but not the annotation, so O(state=absent) still puts back
    the original values. With a ledger, the patch of the Deployment is recorded before it is made.
seealso:
  - module: veritas.chaos.cache_warmup
  - module: veritas.chaos.pod_chaos
"""

EXAMPLES = r"""
- name: Inject a 20% error rate on the canary (game day 2) and wait until Prometheus sees it
  veritas.chaos.runtime_fault:
    namespace: veritas
    label_selector: app=veritas,variant=canary
    fault: error_rate
    percent: 20
    confirm_with: prometheus
    prometheus:
      url: http://prometheus.monitoring:9090
      query: >-
        sum(rate(veritas_http_requests_total{variant="canary",code=~"5.."}[30s]))
        / sum(rate(veritas_http_requests_total{variant="canary"}[30s]))
      condition: above
      threshold: 0.1
      timeout: 90
  register: injection

- name: Remove it again
  veritas.chaos.runtime_fault:
    namespace: veritas
    label_selector: app=veritas,variant=canary
    fault: error_rate
    state: absent

- name: Add 1500 ms latency to one control pod, never more than one
  veritas.chaos.runtime_fault:
    namespace: veritas
    label_selector: app=veritas,variant=control
    fault: latency
    latency_ms: 1500
    pod_count: 1
    max_count: 1

- name: Corrupt the KV cache of the green pods (game day 5)
  veritas.chaos.runtime_fault:
    namespace: veritas
    label_selector: deployment=green
    fault: kv_cache_corruption
    percent: 50

- name: Metrics outage through the runtime (works in the lab)
  veritas.chaos.runtime_fault:
    namespace: veritas
    label_selector: variant=canary
    fault: metrics_outage

- name: Metrics outage by blocking Prometheus with a NetworkPolicy (needs an enforcing CNI)
  veritas.chaos.runtime_fault:
    namespace: veritas
    label_selector: app=veritas
    fault: metrics_outage
    method: network_policy
    metrics_port: 8080
    prometheus_namespace: monitoring
    confirm_with: prometheus
    prometheus:
      url: http://prometheus.monitoring:9090
      query: up{namespace="veritas"} == 1
      condition: no_data

- name: Error rate through the Envoy sidecar's fault filter, held for five minutes
  veritas.chaos.runtime_fault:
    namespace: veritas
    label_selector: app=veritas,variant=canary
    fault: error_rate
    percent: 20
    status_code: 503
    method: envoy_runtime
    container: istio-proxy
    envoy_admin_url: http://127.0.0.1:15000
    duration: 300

- name: Exhaust the memory of the canary the Kubernetes way (its Deployment's pods are OOMKilled), for ten minutes
  veritas.chaos.runtime_fault:
    namespace: veritas
    label_selector: app=veritas,variant=canary
    fault: resource_exhaustion
    resource: memory
    method: memory_limit
    memory_limit: 16Mi
    container: runtime
    max_count: 2
    confirm_timeout: 120
    duration: 600

- name: Put the canary's memory limit back and wait for the rollout
  veritas.chaos.runtime_fault:
    namespace: veritas
    label_selector: app=veritas,variant=canary
    fault: resource_exhaustion
    resource: memory
    method: memory_limit
    state: absent
    confirm_timeout: 300

- name: Corrupt half of the live colour's KV cache with the runtime's admin command
  veritas.chaos.runtime_fault:
    namespace: veritas
    label_selector: app=veritas-runtime,deployment=blue
    fault: kv_cache_corruption
    method: admin_command
    admin_command:
      set: [./cli, cache-corrupt, --percent, "50"]
      clear: [./cli, cache-corrupt, --clear]
      expected_output: corrupted

- name: Exhaust the disk of one green pod
  veritas.chaos.runtime_fault:
    namespace: veritas
    label_selector: deployment=green
    fault: resource_exhaustion
    resource: disk
    pod_count: 1
"""

RETURN = r"""
fault:
  description: The fault and how it was applied.
  returned: always
  type: dict
  contains:
    name:
      description: The O(fault).
      type: str
      sample: error_rate
    target:
      description: What the method sets, the runtime's fault name, the Envoy runtime keys, the NetworkPolicy name
        or V(resources.limits.memory) (O(method=memory_limit)).
      type: str
      sample: error-rate
    method:
      description: The O(method).
      type: str
      sample: runtime_cli
    state:
      description: The O(state).
      type: str
      sample: present
    params:
      description:
        - The parameters as the target stores them (empty for O(state=absent)).
        - 'With O(method=memory_limit), the O(memory_limit), for example C({"memory_limit": "16Mi"}).'
      type: dict
      sample: {"percent": 20.0, "status": 500}
matched:
  description: How many running pods matched O(label_selector).
  returned: always
  type: int
  sample: 4
pods:
  description: One entry per targeted pod (empty with V(network_policy) and V(memory_limit)).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The pod.
      type: str
      sample: veritas-canary-6f7c-x2k9d
    action:
      description: What the pod needed, V(set), V(update), V(clear) or V(none).
      type: str
      sample: set
    before:
      description: The fault's parameters before (null when it was not set).
      type: dict
      sample: null
    after:
      description: The fault's parameters read back after the change (null when not set; the prediction in check mode).
      type: dict
      sample: {"percent": 20.0, "status": 500}
    confirmed:
      description: Whether the read-back showed the requested state (null in check mode).
      type: bool
      sample: true
    corrupted_entries:
      description: For C(kv_cache_corruption), how many cache entries the injection corrupted.
      type: int
      returned: when the runtime reports it
      sample: 32
    output:
      description: With V(admin_command), the output of the command run in the pod.
      type: str
      returned: with V(admin_command), when a command ran
      sample: "kv-cache corruption set: 16 of 32 entries corrupted (payload)"
commands:
  description: The changing commands run in the pods (in check mode, those that would run); empty with
    V(network_policy) and V(memory_limit).
  returned: always
  type: list
  elements: dict
  contains:
    pod:
      description: The pod.
      type: str
      sample: veritas-canary-6f7c-x2k9d
    command:
      description: The command.
      type: list
      elements: str
      sample: ["./cli", "fault", "set", "error-rate", "--percent", "20", "--status", "500"]
network_policy:
  description: The NetworkPolicy after the call (null when absent), with V(network_policy).
  returned: when O(method=network_policy)
  type: dict
  sample: {"kind": "NetworkPolicy", "metadata": {"name": "veritas-chaos-metrics-outage"}}
deployments:
  description: With O(method=memory_limit), one entry per Deployment that owns a selected pod (with
    O(state=absent) also those whose pod template the selector matches and that carry the annotation).
  returned: when O(method=memory_limit)
  type: list
  elements: dict
  contains:
    name:
      description: The Deployment.
      type: str
      sample: veritas-canary
    container:
      description: The container of the pod template whose memory is changed.
      type: str
      sample: runtime
    action:
      description: What the Deployment needed, V(set) (first lowered), V(update) (lowered before, now to another
        limit), V(clear) (put back) or V(none).
      type: str
      sample: set
    before:
      description: The container's memory limit and request before the call (null when not set).
      type: dict
      sample: {"limits_memory": null, "requests_memory": "256Mi"}
      contains:
        limits_memory:
          description: C(resources.limits.memory).
          type: str
        requests_memory:
          description: C(resources.requests.memory).
          type: str
    after:
      description: The same after the call (in check mode, the server's dry-run answer).
      type: dict
      sample: {"limits_memory": "16Mi", "requests_memory": "16Mi"}
    replicas:
      description: The Deployment's C(spec.replicas), the pods the change replaces.
      type: int
      sample: 1
    selected_pods:
      description: The pods of O(label_selector) that this Deployment owns.
      type: list
      elements: str
      sample: ["veritas-canary-6f7c-x2k9d"]
    confirmed:
      description: Whether the fault took (O(state=present)) or the rollout completed (O(state=absent)); null in
        check mode.
      type: bool
      sample: true
    oom_pods:
      description: With O(state=present), the pods with the new limit whose container was OOMKilled (now or last
        time) or waits in CrashLoopBackOff, as found by the confirmation.
      type: list
      elements: dict
      sample: [{"pod": "veritas-canary-7d9b-q8w2e", "reason": "OOMKilled", "restarts": 2}]
confirmation:
  description: What confirmed the requested state, and how long that took.
  returned: always
  type: dict
  contains:
    confirmed:
      description: Whether everything asked for was confirmed (false only in check mode, which confirms nothing).
      type: bool
      sample: true
    applied_at:
      description:
        - When the last change command returned, in seconds since the epoch; the fault is in effect from then.
        - Null when nothing changed and in check mode.
      type: float
      sample: 1795958661.402
    readback_seconds:
      description: Seconds from the last change until every target read back the requested state
        (with V(memory_limit), until the pods were OOMKilled or the rollout was complete).
      type: float
      sample: 0.21
    seconds:
      description: Seconds from the last change until the confirmation was complete (read-back and Prometheus).
      type: float
      sample: 6.8
    prometheus:
      description: The Prometheus check with O(confirm_with=prometheus), else null.
      type: dict
      contains:
        query:
          description: The query.
          type: str
        condition:
          description: The condition.
          type: str
          sample: above
        threshold:
          description: The bound.
          type: float
          sample: 0.1
        confirmed:
          description: Whether the condition was met in time.
          type: bool
          sample: true
        seconds:
          description: Seconds until it was met.
          type: float
          sample: 6.5
        checks:
          description: How many queries ran.
          type: int
          sample: 4
        samples:
          description: The last query's samples (labels and value).
          type: list
          elements: dict
          sample: [{"labels": {}, "value": 0.2}]
    warnings:
      description: What the confirmation could not show (for example NetworkPolicy enforcement).
      type: list
      elements: str
      sample: []
restored:
  description: Whether the fault was removed again after O(duration).
  returned: always
  type: bool
  sample: false
"""

import re
import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.veritas.chaos.plugins.module_utils._args import (
    AUTH_ARG_SPEC,
    GUARD_ARG_SPEC,
    LEDGER_ARG_SPEC,
    build_argument_spec,
)
from ansible_collections.veritas.chaos.plugins.module_utils._blast import (
    pods_to_kill,
    validate_caps,
)
from ansible_collections.veritas.chaos.plugins.module_utils._client import (
    KubeClient,
    get_client,
)
from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError
from ansible_collections.veritas.chaos.plugins.module_utils._fault_backends import (
    FaultBackend,
    run_fault,
)
from ansible_collections.veritas.chaos.plugins.module_utils._fault_objects import (
    MemoryLimitBackend,
    NetworkPolicyBackend,
)
from ansible_collections.veritas.chaos.plugins.module_utils._fault_pods import (
    POD_BACKENDS,
    RuntimeCliBackend,
)
from ansible_collections.veritas.chaos.plugins.module_utils._guard import (
    guard_namespace,
)
from ansible_collections.veritas.chaos.plugins.module_utils._ledger import (
    recording_client,
)
from ansible_collections.veritas.chaos.plugins.module_utils._memory_limit import (
    check_memory_limit,
)
from ansible_collections.veritas.chaos.plugins.module_utils._prom_confirm import (
    instant_query,
    validate_confirm_options,
)
from ansible_collections.veritas.chaos.plugins.module_utils._runner import run_module
from ansible_collections.veritas.chaos.plugins.module_utils._runtime_cli import (
    DEFAULT_METHODS,
    cli_prefix,
    parse_label_selector,
    validate_fault_options,
)
from ansible_collections.veritas.chaos.plugins.module_utils._selector import (
    validate_selector,
)
from ansible_collections.veritas.chaos.plugins.module_utils._validate import (
    NUMBER_LIMIT,
    validate_input,
)

ENVOY_RUNTIME_PREFIX = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
OBJECT_BACKENDS = {"network_policy": NetworkPolicyBackend, "memory_limit": MemoryLimitBackend}


def validate_params(params: dict[str, Any]) -> None:
    validate_input(
        params,
        unbounded=("prometheus.threshold",),
        namespaces=("namespace", "prometheus_namespace"),
        dns_labels=("container",),
        names=("policy_name",),
        selectors=("label_selector",),
        urls=("envoy_admin_url", "prometheus.url"),
    )
    if params["prometheus_pod_labels"] is not None:
        validate_selector(params["prometheus_pod_labels"], "prometheus_pod_labels")
    if params["metrics_port"] is not None and not 1 <= params["metrics_port"] <= 65535:
        raise ChaosError(
            f"metrics_port must be a port from 1 to 65535, got {params['metrics_port']}.",
            reason="invalid_input",
            field="metrics_port",
        )
    if not ENVOY_RUNTIME_PREFIX.match(params["envoy_runtime_prefix"] or ""):
        raise ChaosError(
            "envoy_runtime_prefix must be an Envoy runtime key prefix such as fault.http, "
            f"got {params['envoy_runtime_prefix']!r}.",
            reason="invalid_input",
            field="envoy_runtime_prefix",
        )
    validate_fault_options(params["fault"], params["method"], params["state"], params)
    validate_memory_limit_options(params)
    validate_admin_command_options(params)
    validate_caps(params["max_count"], params["max_percent"])
    # pods_to_kill names count and percent; here they are pod_count and pod_percent (percent
    # is the fault's own option).
    for field, low, high in (("pod_count", 1, NUMBER_LIMIT), ("pod_percent", 1, 100)):
        if params[field] is not None and not low <= params[field] <= high:
            raise ChaosError(
                f"{field} must be an integer from {low} to {high}, got {params[field]}.",
                reason="invalid_input",
                field=field,
            )
    pods_to_kill(1, params["pod_count"], params["pod_percent"])
    for field in ("exec_timeout", "confirm_timeout"):
        if params[field] < 1:
            raise ChaosError(
                f"{field} must be an integer of at least 1, got {params[field]}.",
                reason="invalid_input",
                field=field,
            )
    if params["duration"] is not None:
        if params["duration"] < 1:
            raise ChaosError(
                "duration must be an integer of at least 1 (seconds), got {}.".format(
                    params["duration"]
                ),
                reason="invalid_input",
                field="duration",
            )
        if params["state"] != "present":
            raise ChaosError(
                "duration applies to state=present only.",
                reason="invalid_input",
                field="duration",
            )
    if params["confirm_with"] == "prometheus":
        validate_confirm_options(params["prometheus"])
    if params["method"] == "network_policy":
        for field in ("pod_count", "pod_percent"):
            if params[field] is not None:
                raise ChaosError(
                    f"{field} cannot be used with method network_policy, which selects pods by label only.",
                    reason="invalid_input",
                    field=field,
                )
        if params["state"] == "present":
            for field in ("metrics_port", "prometheus_namespace"):
                if not params[field]:
                    raise ChaosError(
                        f"{field} is required with method network_policy and state present.",
                        reason="invalid_input",
                        field=field,
                    )
        parse_label_selector(params["label_selector"])
    cli_prefix(params["cli_path"])


def validate_admin_command_options(params: dict[str, Any]) -> None:
    """admin_command belongs to method admin_command, which needs it with a set and a clear command."""
    spec = params.get("admin_command")
    if params["method"] != "admin_command":
        if spec is not None:
            raise ChaosError(
                f"admin_command applies to method admin_command only, not to method {params['method']}.",
                reason="invalid_input",
                field="admin_command",
            )
        return
    if spec is None:
        raise ChaosError(
            "admin_command (set, clear and optionally expected_output) is required with method admin_command.",
            reason="invalid_input",
            field="admin_command",
        )
    for key in ("set", "clear"):
        if not spec.get(key) or not str(spec[key][0]).strip():
            raise ChaosError(
                f"admin_command.{key} must be a command starting with the program to run, got {spec.get(key)!r}.",
                reason="invalid_input",
                field=f"admin_command.{key}",
            )
    if spec.get("expected_output") is not None:
        try:
            re.compile(spec["expected_output"])
        except re.error as exc:
            raise ChaosError(
                f"admin_command.expected_output must be a regular expression: {exc}.",
                reason="invalid_input",
                field="admin_command.expected_output",
            ) from exc


def validate_memory_limit_options(params: dict[str, Any]) -> None:
    """memory_limit belongs to method memory_limit, which needs it (state present) and no pod_count."""
    if params["method"] != "memory_limit":
        if params.get("memory_limit") is not None:
            raise ChaosError(
                "memory_limit applies to method memory_limit only (fault resource_exhaustion, "
                "resource memory), not to method {}.".format(params["method"]),
                reason="invalid_input",
                field="memory_limit",
            )
        return
    for field in ("pod_count", "pod_percent"):
        if params[field] is not None:
            raise ChaosError(
                f"{field} cannot be used with method memory_limit, which changes whole Deployments: "
                "every pod of each Deployment that owns a selected pod is replaced. "
                "Use max_count or max_percent to cap how many pods that may be.",
                reason="invalid_input",
                field=field,
            )
    if params.get("memory_limit") is not None:
        check_memory_limit(params["memory_limit"])
    elif params["state"] == "present":
        raise ChaosError(
            "memory_limit is required with method memory_limit and state present "
            "(a Kubernetes quantity such as 16Mi).",
            reason="invalid_input",
            field="memory_limit",
        )


def choose_backend(client: KubeClient, params: dict[str, Any]) -> FaultBackend:
    """The backend of params['method'] (runtime_cli when none is named)."""
    methods = dict(POD_BACKENDS, **OBJECT_BACKENDS)
    return methods.get(params["method"], RuntimeCliBackend)(client, params)


def runtime_fault(
    client: KubeClient, params: dict[str, Any], check_mode: bool, want_diff: bool
) -> dict[str, Any]:
    validate_params(params)
    guard_namespace(client, params["namespace"], params)
    return run_fault(
        choose_backend(client, params),
        params,
        check_mode,
        want_diff,
        query=instant_query,
        sleep=time.sleep,
    )


def main() -> None:
    argument_spec = build_argument_spec(
        AUTH_ARG_SPEC,
        LEDGER_ARG_SPEC,
        GUARD_ARG_SPEC,
        namespace={"type": "str", "required": True},
        label_selector={"type": "str", "required": True},
        fault={
            "type": "str",
            "required": True,
            "choices": [
                "error_rate",
                "latency",
                "kv_cache_corruption",
                "metrics_outage",
                "resource_exhaustion",
            ],
        },
        state={"type": "str", "choices": ["present", "absent"], "default": "present"},
        method={
            "type": "str",
            "choices": [
                "runtime_cli",
                "network_policy",
                "envoy_runtime",
                "memory_limit",
                "admin_command",
            ],
        },
        percent={"type": "float"},
        status_code={"type": "int"},
        latency_ms={"type": "float"},
        jitter_ms={"type": "float"},
        write_percent={"type": "float"},
        corruption_mode={"type": "str", "choices": ["payload", "silent"]},
        metrics_mode={"type": "str", "choices": ["503", "empty"]},
        resource={"type": "str", "choices": ["memory", "disk"]},
        memory_limit={"type": "str"},
        pod_count={"type": "int"},
        pod_percent={"type": "int"},
        max_count={"type": "int"},
        max_percent={"type": "int"},
        seed={"type": "int"},
        container={"type": "str"},
        cli_path={"type": "str", "default": "./cli"},
        exec_timeout={"type": "int", "default": 30},
        confirm_timeout={"type": "int", "default": 30},
        confirm_with={
            "type": "str",
            "choices": ["readback", "prometheus"],
            "default": "readback",
        },
        prometheus={
            "type": "dict",
            "options": {
                "url": {"type": "str", "required": True},
                "query": {"type": "str", "required": True},
                "condition": {
                    "type": "str",
                    "choices": ["above", "below", "no_data"],
                    "default": "above",
                },
                "threshold": {"type": "float"},
                "timeout": {"type": "float", "default": 120},
                "interval": {"type": "float", "default": 2},
                "validate_certs": {"type": "bool", "default": True},
                "bearer_token": {"type": "str", "no_log": True},
            },
        },
        duration={"type": "int"},
        policy_name={"type": "str", "default": "veritas-chaos-metrics-outage"},
        metrics_port={"type": "int"},
        prometheus_namespace={"type": "str"},
        prometheus_pod_labels={"type": "dict"},
        envoy_admin_url={"type": "str", "default": "http://127.0.0.1:15000"},
        envoy_runtime_prefix={"type": "str", "default": "fault.http"},
        admin_command={
            "type": "dict",
            "options": {
                "set": {"type": "list", "elements": "str", "required": True},
                "clear": {"type": "list", "elements": "str", "required": True},
                "expected_output": {"type": "str"},
            },
        },
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=[("pod_count", "pod_percent")],
        required_if=[
            ("confirm_with", "prometheus", ("prometheus",)),
            ("fault", "resource_exhaustion", ("resource",)),
        ],
        supports_check_mode=True,
    )

    def action() -> dict[str, Any]:
        module.params["method"] = module.params["method"] or DEFAULT_METHODS.get(
            module.params["fault"]
        )
        validate_params(module.params)
        return runtime_fault(
            recording_client(
                get_client(module.params), module.params, "veritas.chaos.runtime_fault"
            ),
            module.params,
            module.check_mode,
            module._diff,
        )

    run_module(
        module, action, warnings=lambda result: result["confirmation"]["warnings"]
    )


if __name__ == "__main__":
    main()

# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The traffic backends (plugins/module_utils/_traffic.py), for every module that reads or sets weights.
    DOCUMENTATION = r"""
options:
  backend:
    description:
      - Where the traffic weights live. Every module that reads or sets weights goes through the same
        backend interface, so the choices mean the same everywhere.
      - V(configmap), two data keys of a ConfigMap, string values, as the runbook's C(kubectl patch) writes them.
      - V(route), an OpenShift Route (C(route.openshift.io/v1)), C(spec.to) is the control Service and
        the only entry of C(spec.alternateBackends) is the canary Service.
      - V(httproute), a Gateway API HTTPRoute (C(gateway.networking.k8s.io/v1)), the interface Flagger and
        Argo Rollouts drive. The weights are C(spec.rules[i].backendRefs[j].weight) of two backendRefs of
        rule O(httproute_rule); a setting keeps every other field of the rules (matches, filters, other
        backendRefs, other rules). A backendRef without a weight counts as the API's default, 1.
    type: str
    choices: [configmap, route, httproute]
    default: configmap
  httproute_control_service:
    description:
      - With O(backend=httproute), the name of the Service whose backendRef in rule O(httproute_rule) is the control.
      - Defaults to the rule's first backendRef (the first one that is not the canary's).
      - The Service must be among the rule's backendRefs (the module never adds one); otherwise the task fails
        with reason V(invalid_input) naming this option, and nothing changes.
    type: str
  httproute_canary_service:
    description:
      - With O(backend=httproute), the name of the Service whose backendRef in rule O(httproute_rule) is the canary.
      - Defaults to the rule's second backendRef (the first one that is not the control's).
      - The Service must be among the rule's backendRefs, as for O(httproute_control_service).
    type: str
  httproute_rule:
    description:
      - With O(backend=httproute), the index of the rule in C(spec.rules) whose backendRefs hold the weights.
      - Other backendRefs of that rule keep their weights; set them to 0 beforehand if the two weights must
        be the whole split.
    type: int
    default: 0
"""

    # Only for the modules that set weights: which Services a Route's backends name.
    ROUTE = r"""
options:
  route_control_service:
    description:
      - With O(backend=route), the Service for C(spec.to) of the Route. Defaults to the Service the Route already names.
    type: str
  route_canary_service:
    description:
      - With O(backend=route), the Service for the Route's alternate backend. Defaults to the Route's first
        alternate backend.
    type: str
"""

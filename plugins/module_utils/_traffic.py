# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure decisions for traffic weights, and the traffic backends behind one interface.

A backend (ConfigMap, OpenShift Route, Gateway API HTTPRoute) knows where its object lives, how
to read the control and canary weights from it and the merge patch that sets them. It does no
I/O: _rollback.set_weights reads, patches and reads back through it for every caller
(traffic_split, canary_analysis' rollback, gameday_info, the lab's rollback controller), and
the change ledger records what the patch changed, so that a restore puts it back.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, ClassVar

from ansible_collections.veritas.chaos.plugins.module_utils._client import resource_path
from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError
from ansible_collections.veritas.chaos.plugins.module_utils._validate import (
    check_dns_label,
)

WEIGHT_MIN = 0
WEIGHT_MAX = 100
WEIGHT_TOTAL = 100


def validate_weights(control: Any, canary: Any) -> tuple[int, int]:
    """Both weights are integers 0-100 that sum to 100; otherwise a ChaosError naming the field."""
    checked: dict[str, int] = {}
    for field, value in (("control", control), ("canary", canary)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ChaosError(
                f"{field} must be an integer from {WEIGHT_MIN} to {WEIGHT_MAX}, got {value!r}.",
                reason="invalid_input",
                field=field,
            )
        if not WEIGHT_MIN <= value <= WEIGHT_MAX:
            raise ChaosError(
                f"{field} must be an integer from {WEIGHT_MIN} to {WEIGHT_MAX}, got {value}.",
                reason="invalid_input",
                field=field,
            )
        checked[field] = value
    total = checked["control"] + checked["canary"]
    if total != WEIGHT_TOTAL:
        raise ChaosError(
            f"control and canary must sum to {WEIGHT_TOTAL}, "
            f"got {checked['control']} + {checked['canary']} = {total}.",
            reason="invalid_input",
            field="control, canary",
        )
    return checked["control"], checked["canary"]


def parse_weight(value: Any) -> int | None:
    """A stored weight ('90', 90) as int; None when absent or not a number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def configmap_weights(
    data: dict[str, Any] | None, control_key: str, canary_key: str
) -> dict[str, int | None]:
    data = data or {}
    return {
        "control": parse_weight(data.get(control_key)),
        "canary": parse_weight(data.get(canary_key)),
    }


def configmap_patch(
    data: dict[str, Any] | None,
    control_key: str,
    canary_key: str,
    control: int,
    canary: int,
) -> dict[str, Any] | None:
    """The merge patch that sets the weights as strings (as the runbook writes them); None if already set."""
    desired = {control_key: str(control), canary_key: str(canary)}
    current = data or {}
    if all(current.get(key) == value for key, value in desired.items()):
        return None
    return {"data": desired}


def route_weights(spec: dict[str, Any] | None) -> dict[str, Any]:
    spec = spec or {}
    to = spec.get("to") or {}
    alternates = spec.get("alternateBackends") or []
    canary = alternates[0] if alternates else {}
    return {
        "control": parse_weight(to.get("weight")),
        "canary": parse_weight(canary.get("weight")),
        "control_service": to.get("name"),
        "canary_service": canary.get("name"),
    }


def route_patch(
    spec: dict[str, Any] | None,
    control: int,
    canary: int,
    control_service: str | None = None,
    canary_service: str | None = None,
) -> dict[str, Any] | None:
    """The merge patch for a Route's spec.to and spec.alternateBackends; None if already set.

    The canary becomes the only alternate backend so that the two weights are the whole split.
    Services default to the ones the Route already names.
    """
    current = route_weights(spec)
    control_name = control_service or current["control_service"]
    canary_name = canary_service or current["canary_service"]
    if not control_name:
        raise ChaosError(
            "The Route has no spec.to service; set route_control_service.",
            reason="invalid_input",
            field="route_control_service",
        )
    if not canary_name:
        raise ChaosError(
            "The Route has no alternate backend; set route_canary_service.",
            reason="invalid_input",
            field="route_canary_service",
        )
    to = copy.deepcopy((spec or {}).get("to") or {})
    to.update({"kind": "Service", "name": control_name, "weight": control})
    alternates = [{"kind": "Service", "name": canary_name, "weight": canary}]
    if (spec or {}).get("to") == to and (spec or {}).get(
        "alternateBackends"
    ) == alternates:
        return None
    return {"spec": {"to": to, "alternateBackends": alternates}}


def _invalid(field: str, msg: str) -> ChaosError:
    return ChaosError(msg, reason="invalid_input", field=field)


class TrafficBackend:
    """Where the weights live. Subclasses set the class attributes and implement both methods.

    ``weights(obj)`` is ``{"control": int | None, "canary": int | None}`` (None when the object
    holds no number there); ``patch(obj, control, canary)`` is the JSON merge patch that sets
    both weights, or None when they are already set.
    """

    name: ClassVar[str] = ""
    api: ClassVar[str] = ""
    plural: ClassVar[str] = ""
    kind: ClassVar[str] = ""

    def path(self, namespace: str, name: str) -> str:
        return resource_path(self.api, self.plural, namespace, name)

    def weights(self, obj: dict[str, Any]) -> dict[str, int | None]:
        raise NotImplementedError

    def patch(
        self, obj: dict[str, Any], control: int, canary: int
    ) -> dict[str, Any] | None:
        raise NotImplementedError


@dataclass(frozen=True)
class ConfigMapBackend(TrafficBackend):
    """Two data keys with the weights as strings, as the runbook's kubectl patch writes them."""

    control_key: str = "control"
    canary_key: str = "canary"

    name: ClassVar[str] = "configmap"
    api: ClassVar[str] = "v1"
    plural: ClassVar[str] = "configmaps"
    kind: ClassVar[str] = "ConfigMap"

    def weights(self, obj: dict[str, Any]) -> dict[str, int | None]:
        return configmap_weights(obj.get("data"), self.control_key, self.canary_key)

    def patch(
        self, obj: dict[str, Any], control: int, canary: int
    ) -> dict[str, Any] | None:
        return configmap_patch(
            obj.get("data"), self.control_key, self.canary_key, control, canary
        )


@dataclass(frozen=True)
class RouteBackend(TrafficBackend):
    """An OpenShift Route: spec.to is the control Service, the only alternate backend the canary."""

    control_service: str | None = None
    canary_service: str | None = None

    name: ClassVar[str] = "route"
    api: ClassVar[str] = "route.openshift.io/v1"
    plural: ClassVar[str] = "routes"
    kind: ClassVar[str] = "Route"

    def weights(self, obj: dict[str, Any]) -> dict[str, int | None]:
        weights = route_weights(obj.get("spec"))
        return {"control": weights["control"], "canary": weights["canary"]}

    def patch(
        self, obj: dict[str, Any], control: int, canary: int
    ) -> dict[str, Any] | None:
        return route_patch(
            obj.get("spec"), control, canary, self.control_service, self.canary_service
        )


# A backendRef without a weight gets this one from the API (Gateway API's default).
HTTPROUTE_DEFAULT_WEIGHT = 1


@dataclass(frozen=True)
class HTTPRouteBackend(TrafficBackend):
    """A Gateway API HTTPRoute: the weights of two backendRefs of one rule (what Flagger and
    Argo Rollouts drive).

    The backendRefs are chosen by Service name, by default the first and the second of the rule.
    Every other field of the rules (matches, filters, other backendRefs, other rules) is kept:
    a merge patch replaces a list whole, so the patch carries all of spec.rules.
    """

    control_service: str | None = None
    canary_service: str | None = None
    rule: int = 0

    name: ClassVar[str] = "httproute"
    api: ClassVar[str] = "gateway.networking.k8s.io/v1"
    plural: ClassVar[str] = "httproutes"
    kind: ClassVar[str] = "HTTPRoute"

    def _refs(self, obj: dict[str, Any]) -> tuple[list[dict[str, Any]], int, int]:
        """The rules and the indexes of the control and canary backendRefs in the chosen rule."""
        title = f"HTTPRoute {(obj.get('metadata') or {}).get('name')}"
        rules = list((obj.get("spec") or {}).get("rules") or [])
        if not 0 <= self.rule < len(rules):
            raise _invalid(
                "httproute_rule",
                f"httproute_rule must be the index of a rule in spec.rules of {title} "
                f"(it has {len(rules)}), got {self.rule}.",
            )
        refs = rules[self.rule].get("backendRefs") or []
        services = [
            ref.get("name")
            if ref.get("kind", "Service") == "Service" and not ref.get("group")
            else None
            for ref in refs
        ]
        chosen: dict[str, int] = {}
        for role, service in (
            ("control", self.control_service),
            ("canary", self.canary_service),
        ):
            if service is None:
                continue
            if service not in services:
                raise _invalid(
                    f"httproute_{role}_service",
                    f"httproute_{role}_service {service!r} is not a Service among the backendRefs "
                    f"of spec.rules[{self.rule}] of {title}: {[s for s in services if s]}.",
                )
            chosen[role] = services.index(service)
        if self.control_service is not None and self.control_service == self.canary_service:
            raise _invalid(
                "httproute_canary_service",
                f"httproute_canary_service must differ from httproute_control_service, "
                f"got {self.canary_service!r} for both.",
            )
        for role in ("control", "canary"):
            if role not in chosen:
                free = [i for i in range(len(refs)) if i not in chosen.values()]
                if not free:
                    raise _invalid(
                        f"httproute_{role}_service",
                        f"spec.rules[{self.rule}] of {title} has {len(refs)} backendRefs; "
                        f"the {role} needs one of its own (httproute_{role}_service).",
                    )
                chosen[role] = free[0]
        return rules, chosen["control"], chosen["canary"]

    def weights(self, obj: dict[str, Any]) -> dict[str, int | None]:
        rules, control, canary = self._refs(obj)
        refs = rules[self.rule]["backendRefs"]
        return {
            role: parse_weight(refs[index].get("weight", HTTPROUTE_DEFAULT_WEIGHT))
            for role, index in (("control", control), ("canary", canary))
        }

    def patch(
        self, obj: dict[str, Any], control: int, canary: int
    ) -> dict[str, Any] | None:
        rules, control_index, canary_index = self._refs(obj)
        desired = copy.deepcopy(rules)
        refs = desired[self.rule]["backendRefs"]
        refs[control_index]["weight"] = control
        refs[canary_index]["weight"] = canary
        if desired == rules:
            return None
        return {"spec": {"rules": desired}}


BACKENDS = ("configmap", "route", "httproute")

# The options that choose and shape a backend, with the same names in every module that has them
# (documented by the doc fragment veritas.chaos.traffic_backend); the ConfigMap keys stay the
# modules' own control_key and canary_key.
TRAFFIC_BACKEND_ARG_SPEC: dict[str, dict[str, Any]] = {
    "backend": {"type": "str", "choices": list(BACKENDS), "default": "configmap"},
    "httproute_control_service": {"type": "str"},
    "httproute_canary_service": {"type": "str"},
    "httproute_rule": {"type": "int", "default": 0},
}
ROUTE_ARG_SPEC: dict[str, dict[str, Any]] = {
    "route_control_service": {"type": "str"},
    "route_canary_service": {"type": "str"},
}
SERVICE_OPTIONS = (
    "route_control_service",
    "route_canary_service",
    "httproute_control_service",
    "httproute_canary_service",
)


def traffic_object_name(params: dict[str, Any]) -> str:
    """The object that holds the weights, for the modules that name it traffic_configmap (the
    ConfigMap backend) or traffic_route (the Route and HTTPRoute backends)."""
    if (params.get("backend") or "configmap") == "configmap":
        return params["traffic_configmap"]
    if not params.get("traffic_route"):
        raise _invalid(
            "traffic_route",
            f"backend={params['backend']} needs traffic_route, the name of the "
            f"{traffic_backend(params).kind} that holds the weights.",
        )
    return params["traffic_route"]


def validate_backend_options(params: dict[str, Any]) -> None:
    """The backend options a module has: Service names are DNS labels, the rule an index."""
    for option in SERVICE_OPTIONS:
        if params.get(option) is not None:
            check_dns_label(option, params[option])
    rule = params.get("httproute_rule")
    if rule is not None and rule < 0:
        raise _invalid(
            "httproute_rule",
            f"httproute_rule must be the index of a rule in spec.rules (0 or more), got {rule}.",
        )


def traffic_backend(params: dict[str, Any]) -> TrafficBackend:
    """The backend a module's params name (option backend, default configmap) with its options."""
    backend = params.get("backend") or "configmap"
    if backend == "route":
        return RouteBackend(
            params.get("route_control_service"), params.get("route_canary_service")
        )
    if backend == "httproute":
        rule = params.get("httproute_rule")
        return HTTPRouteBackend(
            params.get("httproute_control_service"),
            params.get("httproute_canary_service"),
            0 if rule is None else rule,
        )
    if backend == "configmap":
        return ConfigMapBackend(
            params.get("control_key") or "control", params.get("canary_key") or "canary"
        )
    raise _invalid(
        "backend", f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}."
    )


def split_observed(
    observed_canary_percent: float | None, canary: int, tolerance: float
) -> bool:
    """Whether the served canary share matches the weight; no data never matches."""
    if observed_canary_percent is None:
        return False
    return abs(observed_canary_percent - canary) <= tolerance

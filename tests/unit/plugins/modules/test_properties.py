# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Property-based tests (hypothesis) of every module's argument handling.

Each module starts from a valid parameter set that, run against an in-memory cluster, really
changes something (test_the_valid_base_changes_the_cluster proves it). The property then
corrupts one option at a time (wrong types, out-of-range and huge numbers, NaN and infinity,
empty and blank strings, wildcard selectors, unknown keys, names too long, bad URLs and
ledger references) and runs the module's real main(): AnsibleModule's argument spec first,
then the module's own validation. Every case must fail, name the option, carry reason
invalid_input (or be AnsibleModule's own message, which names the option), and leave the
cluster untouched: no write, no exec in a pod, no Prometheus query, no process stopped.

The pure decisions get properties of their own: weights, selectors, and the ledger's undo of
merge patches (the undo of any sequence of recorded merge patches restores the object).

Run with --hypothesis-show-statistics for per-property numbers; the terminal summary lists
how many cases each module ran.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import io
import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.veritas.chaos.plugins.module_utils import (
    _exec,
    _ledger,
    _prom_confirm,
    _prometheus,
    _runtime_exec,
)
from ansible_collections.veritas.chaos.plugins.module_utils._analysis import Reading
from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError
from ansible_collections.veritas.chaos.plugins.module_utils._exec import ExecResult
from ansible_collections.veritas.chaos.plugins.module_utils._selector import (
    PREVIOUS_SELECTOR_ANNOTATION,
    decode_selector,
    encode_selector,
    label_selector_string,
    rollback_patch,
    switch_patch,
    validate_selector,
)
from ansible_collections.veritas.chaos.plugins.module_utils._traffic import (
    validate_weights,
)
from ansible_collections.veritas.chaos.plugins.module_utils._validate import (
    check_label_selector,
)
from ansible_collections.veritas.chaos.plugins.modules import (
    cache_warmup,
    canary_analysis,
    gameday_info,
    gameday_ledger,
    gameday_lock,
    gpu_fault,
    pod_chaos,
    runtime_fault,
    service_selector,
    traffic_split,
)
from fake_kube import FakeKube, namespace, pod
from fake_runtime import FakeRuntimes
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from traffic_objects import backend_refs, httproute, httproute_path

# Cases for each corrupted option of each module (fewer where an option has fewer malformed
# values: hypothesis stops when it has tried them all), and for each pure property; the
# file runs in well under a minute.
EXAMPLES_PER_OPTION = 20
PURE_EXAMPLES = 300
SETTINGS = settings(
    max_examples=EXAMPLES_PER_OPTION,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
CASE_COUNTS: collections.Counter[str] = collections.Counter()
OPTION_COUNTS: dict[str, collections.Counter[str]] = collections.defaultdict(
    collections.Counter
)
PURE_COUNTS: collections.Counter[str] = collections.Counter()
LIMIT = 2**31 - 1
PID_MAX = 4194304
DROP = object()  # an override that removes the option

# ------------------------------------------------------------------------ the fake world


class GpuRuntimes:
    """Exec stand-in for gpu_fault's pods: `cli fault list/set/clear` and dcgmi."""

    def __init__(self) -> None:
        self.faults: dict[str, dict[str, Any]] = {}

    def exec(self, client, ns, pod_name, command, container=None, timeout=30):
        faults = self.faults.setdefault(pod_name, {})
        if command[0] == "dcgmi":
            return ExecResult(pod_name, 0, "ok", "")
        args = command[1:]
        if args[:2] == ["fault", "list"]:
            listed = [{"name": n, "params": p, "since": 1.0} for n, p in faults.items()]
            return ExecResult(pod_name, 0, json.dumps(listed), "")
        if args[:2] == ["fault", "set"]:
            faults[args[2]] = {"cpu_fallback": "--cpu-fallback" in args}
            return ExecResult(pod_name, 0, "{}", "")
        if args[:2] == ["fault", "clear"]:
            faults.pop(args[2], None)
            return ExecResult(pod_name, 0, "{}", "")
        return ExecResult(pod_name, 2, "", "usage")


class FakePrometheus:
    def __init__(self, world: World, url: str) -> None:
        self.world = world
        self.url = url

    def query(self, promql: str, at: float | None = None) -> Reading:
        self.world.io.append(("prometheus query", promql))
        return Reading(self.world.prom_value(promql), None)

    def fetch(self, promql: str, at: float | None = None) -> dict[str, Any]:
        self.world.io.append(("prometheus query", promql))
        value = str(self.world.prom_value(promql))
        return {
            "status": "success",
            "data": {
                "resultType": "vector",
                "result": [{"metric": {}, "value": [0, value]}],
            },
        }


class World:
    """The cluster and everything else a module could touch; io lists what it touched
    besides cluster reads and writes (exec in a pod, Prometheus, stopping a process)."""

    def __init__(
        self,
        kube: FakeKube,
        runtime: Any = None,
        prom_value: Callable[[str], float] = lambda promql: 1.0,
    ) -> None:
        self.kube = kube
        self.runtime = runtime
        self.prom_value = prom_value
        self.io: list[tuple[Any, ...]] = []
        self.sleeps = 0

    def exec(self, client, namespace_, pod_name, command, container=None, timeout=30):
        self.io.append(("exec", pod_name, list(command)))
        if self.runtime is None:
            return ExecResult(pod_name, 0, "", "")
        return self.runtime.exec(
            client, namespace_, pod_name, command, container, timeout
        )

    def prometheus(self, url: str, **kwargs: Any) -> FakePrometheus:
        return FakePrometheus(self, url)  # a client object; its queries are what counts

    def stop_process(self, identity: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.io.append(("stop process", identity))
        return {"changed": False, "state": "gone", "stopped": []}

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        if self.sleeps > 500:
            raise RuntimeError("the module kept sleeping: a wait that never ends")


def cluster(*objects: tuple[str, dict[str, Any]]) -> FakeKube:
    kube = FakeKube()
    kube.put("/api/v1/namespaces/lab", namespace("lab", {"environment": "lab"}))
    kube.put(
        "/api/v1/namespaces/prod", namespace("prod", {"environment": "production"})
    )
    for path, obj in objects:
        kube.put(path, obj)
    return kube


def configmap(
    name: str, data: dict[str, str], ns: str = "lab"
) -> tuple[str, dict[str, Any]]:
    obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns},
        "data": data,
    }
    return f"/api/v1/namespaces/{ns}/configmaps/{name}", obj


def running_pod(
    name: str, labels: dict[str, str], node: str = "gpu-1"
) -> tuple[str, dict[str, Any]]:
    obj = pod(name, labels)
    obj["metadata"]["namespace"] = "lab"
    obj["spec"]["nodeName"] = node
    return f"/api/v1/namespaces/lab/pods/{name}", obj


def traffic_world() -> World:
    return World(
        cluster(configmap("veritas-traffic-config", {"control": "100", "canary": "0"})),
        prom_value=lambda promql: 10.0,
    )


def route_world() -> World:
    route = {
        "apiVersion": "route.openshift.io/v1",
        "kind": "Route",
        "metadata": {"name": "veritas", "namespace": "lab"},
        "spec": {
            "to": {"kind": "Service", "name": "control", "weight": 100},
            "alternateBackends": [{"kind": "Service", "name": "canary", "weight": 0}],
        },
    }
    return World(
        cluster(("/apis/route.openshift.io/v1/namespaces/lab/routes/veritas", route))
    )


def httproute_world() -> World:
    route = httproute(
        {"backendRefs": backend_refs(("admin", None))},
        {"backendRefs": backend_refs(("control", 100), ("canary", 0))},
        name="veritas",
    )
    return World(cluster((httproute_path("veritas"), route)))


def service_world() -> World:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "veritas-runtime", "namespace": "lab"},
        "spec": {"selector": {"app": "veritas", "deployment": "blue"}},
    }
    return World(
        cluster(
            ("/api/v1/namespaces/lab/services/veritas-runtime", service),
            running_pod("green-0", {"app": "veritas", "deployment": "green"}),
            running_pod("blue-0", {"app": "veritas", "deployment": "blue"}),
        )
    )


def canary_pods_world() -> World:
    pods = [
        running_pod(f"canary-{i}", {"app": "veritas", "variant": "canary"})
        for i in range(3)
    ]
    return World(
        cluster(
            *pods, running_pod("control-0", {"app": "veritas", "variant": "control"})
        ),
        runtime=FakeRuntimes("canary-0", "canary-1", "canary-2", "control-0"),
    )


def info_world() -> World:
    world = service_world()
    path, obj = configmap("veritas-traffic-config", {"control": "90", "canary": "10"})
    world.kube.put(path, obj)
    return world


def analysis_world() -> World:
    return World(
        cluster(configmap("veritas-traffic-config", {"control": "90", "canary": "10"})),
        prom_value=lambda promql: 0.5 if "error" in promql else 0.1,
    )


def node_world() -> World:
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "gpu-1", "labels": {"nvidia.com/gpu.present": "true"}},
        "spec": {},
        "status": {
            "capacity": {"nvidia.com/gpu": "8"},
            "allocatable": {"nvidia.com/gpu": "8"},
        },
    }
    return World(cluster(("/api/v1/nodes/gpu-1", node)))


def gpu_pod_world() -> World:
    world = node_world()
    path, obj = running_pod("rt-1", {"app": "veritas"})
    world.kube.put(path, obj)
    world.runtime = GpuRuntimes()
    return world


def warmup_world() -> World:
    pods = [
        running_pod(f"green-{i}", {"app": "veritas", "deployment": "green"})
        for i in range(2)
    ]
    return World(cluster(*pods), runtime=FakeRuntimes("green-0", "green-1"))


def ledger_world() -> World:
    path, obj = configmap("veritas-ledger-run-0", {})
    obj["metadata"]["labels"] = {
        _ledger.LEDGER_LABEL: "true",
        _ledger.STATE_LABEL: _ledger.RESTORED,
    }
    obj["metadata"]["annotations"] = {_ledger.RUN_ANNOTATION: "run-0"}
    return World(cluster((path, obj)))


# ------------------------------------------------------------------------ running a module


def run(module: Any, args: dict[str, Any], world: World) -> dict[str, Any]:
    """main() with args, the client factory and every other way out patched to the world."""
    out = io.StringIO()
    args = dict(args, _ansible_check_mode=False, _ansible_diff=False)
    with contextlib.ExitStack() as stack:
        enter = stack.enter_context
        enter(mock.patch.object(module, "get_client", lambda params: world.kube))
        for owner in (_exec, _runtime_exec, service_selector, gpu_fault):
            enter(mock.patch.object(owner, "exec_in_pod", world.exec))
        for owner in (_prometheus, _prom_confirm, canary_analysis):
            enter(mock.patch.object(owner, "PrometheusClient", world.prometheus))
        enter(mock.patch.object(_ledger, "stop_process", world.stop_process))
        enter(mock.patch("time.sleep", world.sleep))
        enter(patch_module_args(args))
        enter(contextlib.redirect_stdout(out))
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(out.getvalue())


class _SpecCaptured(Exception):
    pass


def argument_spec_of(module: Any) -> dict[str, Any]:
    captured: dict[str, Any] = {}

    def capture(*args: Any, **kwargs: Any) -> None:
        captured.update(kwargs["argument_spec"])
        raise _SpecCaptured

    with (
        mock.patch.object(module, "AnsibleModule", capture),
        pytest.raises(_SpecCaptured),
    ):
        module.main()
    return captured


# ------------------------------------------------------------------------ malformed values

TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=60)
# AnsibleModule turns these into strings such as "{'a': 1}" for a str option.
NON_STRINGS = st.sampled_from([{"a": 1}, ["x", "y"], {"k": {"n": [1]}}, [{"a": "b"}]])
BLANKS = st.sampled_from([" ", "\t", "\n", "  \t "])
ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"

_DNS = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"


def is_dns_label(text: str) -> bool:
    return len(text) <= 63 and re.fullmatch(_DNS, text) is not None


def is_object_name(text: str) -> bool:
    return len(text) <= 253 and re.fullmatch(rf"{_DNS}(\.{_DNS})*", text) is not None


def is_label_key(text: str) -> bool:
    prefix, slash, name = text.rpartition("/")
    if slash and not (is_object_name(prefix)):
        return False
    return re.fullmatch(_NAME, name) is not None


def is_label_value(text: str) -> bool:
    return re.fullmatch(_NAME, text) is not None


def is_data_key(text: str) -> bool:
    return re.fullmatch(r"[-._a-zA-Z0-9]{1,253}", text) is not None and text not in (
        ".",
        "..",
    )


def too_long(size: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=ALNUM, min_size=size, max_size=size + 120)


def bad_strings(
    valid: Callable[[str], bool], fixed: list[str], long: int, empty: bool = True
):
    parts = [
        BLANKS,
        NON_STRINGS,
        st.sampled_from(fixed),
        too_long(long),
        TEXT.filter(lambda text: not valid(text)),
    ]
    if empty:
        parts.append(st.just(""))
    return st.one_of(parts)


NAME_MISTAKES = [
    "UPPER",
    "lab/../prod",
    "a/b",
    "-lab",
    "lab-",
    "a_b",
    "*",
    "lab ",
    " lab",
    "ｌａｂ",
    "a..b",
]
BAD_NAMESPACE = bad_strings(is_dns_label, [*NAME_MISTAKES, "a.b"], 64)
BAD_OBJECT_NAME = bad_strings(is_object_name, NAME_MISTAKES, 254)
BAD_LABEL_KEY = bad_strings(
    is_label_key,
    [
        "*",
        "a b",
        "-x",
        "x-",
        "UPPER.com/x",
        "a/b/c",
        "/x",
        "x/",
        "a" * 64,
        "p" * 254 + "/x",
    ],
    300,
)
BAD_LABEL_VALUE = bad_strings(
    is_label_value, ["*", "a b", "-x", "x-", "a" * 64, "a/b", "a=b"], 64
)
BAD_DATA_KEY = bad_strings(
    is_data_key, ["a b", "a/b", "*", ".", "..", "k" * 254, "é"], 254
)
BAD_URL = st.one_of(
    BLANKS,
    NON_STRINGS,
    st.just(""),
    st.sampled_from(
        [
            "localhost:9090",
            "ftp://prometheus:9090",
            "http://",
            "http:///api",
            "//prometheus:9090",
            "prometheus",
            "http://prometheus:99999",
            "http://prom etheus:9090",
            "file:///etc/passwd",
            "http://[::1",
            "https://:9090",
        ]
    ),
    TEXT.filter(lambda text: not text.startswith(("http://", "https://"))),
)
BAD_LEDGER = st.one_of(
    BLANKS,
    NON_STRINGS,
    st.sampled_from(
        [
            "a/b/c",
            "/x",
            "x/",
            "UPPER/x",
            "lab/UP",
            "lab/" + "a" * 254,
            "lab/a b",
            "a" * 64 + "/x",
            "lab//x",
        ]
    ),
)
BAD_COMMAND = st.sampled_from(["", " ", "'", '"./cli', "./cli 'unclosed"])

GOOD_KEYS = st.sampled_from(["app", "variant", "example.com/tier", "a-b.c_d", "k" * 63])
GOOD_VALUES = st.sampled_from(["veritas", "canary", "a-b_c.d", "v" * 63, "0"])
BAD_KEYS = st.sampled_from(
    ["", "*", " ", "a b", "-app", "app-", "a" * 64, "UP.com/x", "a/b/c", "@", "x/"]
)
BAD_VALUES = st.sampled_from(
    ["", "*", "a b", "-x", "x-", "a" * 64, "é", "(x)", "a=b", "a!b"]
)


@st.composite
def bad_label_selectors(draw: st.DrawFn) -> str:
    """Selectors with one malformed requirement among good ones, or that exclude only."""
    good = st.builds("{}={}".format, GOOD_KEYS, GOOD_VALUES)
    if draw(st.booleans()):
        exclusions = st.one_of(
            st.builds("!{}".format, GOOD_KEYS),
            st.builds("{}".format, GOOD_KEYS),
            st.builds("{}!={}".format, GOOD_KEYS, GOOD_VALUES),
            st.builds("{} notin ({})".format, GOOD_KEYS, GOOD_VALUES),
        )
        return ",".join(draw(st.lists(exclusions, min_size=1, max_size=3)))
    bad = draw(
        st.one_of(
            st.builds("{}={}".format, BAD_KEYS, GOOD_VALUES),
            st.builds("{}={}".format, GOOD_KEYS, BAD_VALUES),
            st.builds("{}=={}".format, GOOD_KEYS, BAD_VALUES),
            st.builds("{}!={}".format, BAD_KEYS, GOOD_VALUES),
            st.builds("{} in ()".format, GOOD_KEYS),
            st.builds("{} in ({},)".format, GOOD_KEYS, GOOD_VALUES),
            st.builds("{} in ({}".format, GOOD_KEYS, GOOD_VALUES),
            st.builds("{} in {}".format, GOOD_KEYS, GOOD_VALUES),
            st.sampled_from(
                ["*", "", " ", "=", "=x", "app=", "app in ()", "!", "app=x)"]
            ),
        )
    )
    parts = draw(st.lists(good, max_size=2))
    parts.insert(draw(st.integers(0, len(parts))), bad)
    return ",".join(parts)


BAD_SELECTOR = st.one_of(bad_label_selectors(), NON_STRINGS, BLANKS, st.just(""))
BAD_SELECTOR_DICT = st.one_of(
    st.sampled_from(
        [
            "",
            "*",
            "app=",
            "=x",
            "app in ()",
            5,
            ["app=veritas"],
            {},
            {"app": "", "tier": ""},
        ]
    ),
    st.dictionaries(BAD_KEYS, GOOD_VALUES, min_size=1, max_size=2),
    st.dictionaries(GOOD_KEYS, BAD_VALUES.filter(bool), min_size=1, max_size=2),
    st.dictionaries(
        GOOD_KEYS, st.sampled_from([{"x": 1}, ["x"]]), min_size=1, max_size=2
    ),
)

WRONG_TYPES = st.sampled_from(["abc", " ", "1,5", "ten", [1], {"a": 1}, [[]]])
HUGE = st.sampled_from([10**12, 2**31, 2**63, 10**30])


def bad_int(lo: int | None = None, hi: int | None = None, nullable: bool = True):
    """Ints out of [lo, hi] (hi defaults to int32), huge, non-integral, wrong types."""
    upper = LIMIT if hi is None else hi
    parts = [
        st.integers(min_value=upper + 1),
        HUGE,
        WRONG_TYPES,
        # not infinity: AnsibleModule itself crashes on it (see the xfail test below)
        st.integers(-(10**6), 10**6).map(lambda i: i + 0.5),
        st.just(math.nan),
    ]
    if lo is not None:
        parts += [st.integers(max_value=lo - 1), st.just(-(10**12))]
    if nullable:
        parts.append(st.none())
    return st.one_of(parts)


def bad_float(
    lo: float, inclusive: bool = True, hi: float | None = None, nullable: bool = True
):
    """Floats below lo (or at it when exclusive), above hi, NaN, infinite, huge, wrong types."""
    parts = [
        st.sampled_from(
            [math.nan, math.inf, -math.inf, "nan", "inf", "-inf", "NaN", "Infinity"]
        ),
        st.floats(
            max_value=lo, exclude_max=inclusive, allow_nan=False, allow_infinity=False
        ),
        st.sampled_from([1e12, 1e300, 10**12]),
        WRONG_TYPES.filter(lambda v: v != " "),
    ]
    if hi is not None:
        parts.append(st.floats(min_value=hi, exclude_min=True, allow_nan=False))
    if nullable:
        parts.append(st.none())
    return st.one_of(parts)


BAD_BOOL = st.sampled_from(["maybe", "2", 2, -1, [True], {"a": 1}, "yes please", None])


def bad_choice(choices: list[str]):
    return st.one_of(
        st.sampled_from(
            ["bogus", "", " ", None] + [c.upper() for c in choices if c.upper() != c]
        ),
        TEXT.filter(lambda text: text not in choices),
    )


def bad_names_list(bad: st.SearchStrategy[Any], good: str):
    """A list option of names with a malformed one in it, or not a list at all."""
    return st.one_of(
        st.lists(
            bad.filter(lambda v: not isinstance(v, list)), min_size=1, max_size=3
        ).map(lambda items: [good, *items]),
        st.sampled_from([{"a": 1}, [None], [[]], [{}]]),
    )


# ------------------------------------------------------------------------ module cases

Corruption = tuple[str, dict[tuple[Any, ...], Any]]


def path_of(name: str) -> tuple[Any, ...]:
    return tuple(int(part) if part.isdigit() else part for part in name.split("."))


def at(
    name: str, values: st.SearchStrategy[Any], **also: Any
) -> st.SearchStrategy[Corruption]:
    """Corruptions of option name (dotted for sub-options, 'processes.0.pid'); also are
    other overrides that go with it (an option dropped so that another can be tried)."""
    others = {path_of(key): value for key, value in also.items()}
    named = ".".join(part for part in name.split(".") if not part.isdigit())
    return values.map(lambda value: (named, {path_of(name): value, **others}))


def unknown_key(
    spec: dict[str, Any], prefix: str = ""
) -> st.SearchStrategy[Corruption]:
    known = set(spec)
    for option in spec.values():
        known.update(option.get("aliases", []))
    keys = st.from_regex(r"[a-z][a-z_]{2,15}", fullmatch=True).filter(
        lambda key: key not in known
    )
    return keys.map(lambda key: (key, {path_of(prefix + key): 1}))


@dataclass
class Case:
    name: str
    module: Any
    base: dict[str, Any]
    world: Callable[[], World]
    fields: dict[str, st.SearchStrategy[Corruption]]
    changes: bool = True
    spec: dict[str, Any] = field(default_factory=dict)


def shared_fields(
    spec: dict[str, Any], base: dict[str, Any]
) -> dict[str, st.SearchStrategy[Corruption]]:
    """Corruptions every module gets from its spec: bools, choices, guard, ledger, unknown keys."""
    fields: dict[str, st.SearchStrategy[Corruption]] = {
        "<unknown key>": unknown_key(spec)
    }
    for name, option in spec.items():
        # None is "not set" for an option without a default, and AnsibleModule's error otherwise
        unset_is_valid = option.get("default") is None
        if option.get("type") == "bool":
            values = (
                BAD_BOOL.filter(lambda v: v is not None) if unset_is_valid else BAD_BOOL
            )
            fields[name] = at(name, values)
        elif option.get("choices") and name not in base:
            values = bad_choice(option["choices"])
            fields[name] = at(
                name,
                values.filter(lambda v: v is not None) if unset_is_valid else values,
            )
    if "production_label" in spec:
        fields["production_label"] = at("production_label", BAD_LABEL_KEY | st.none())
        fields["production_value"] = at("production_value", BAD_LABEL_VALUE | st.none())
    if "ledger" in spec:
        fields["ledger"] = at("ledger", BAD_LEDGER)
    fields["impersonate_groups"] = at("impersonate_groups", st.just({"a": 1}))
    return fields


def case(
    module_name: str,
    module: Any,
    base: dict[str, Any],
    world: Callable[[], World],
    changes: bool = True,
    **fields: Any,
) -> Case:
    spec = argument_spec_of(module)
    merged = shared_fields(spec, base)
    for option in base:
        choices = spec[option].get("choices")
        if choices:
            merged[option] = at(option, bad_choice(choices))
    merged.update(fields)
    return Case(module_name, module, base, world, merged, changes, spec)


OBSERVE = {
    "prometheus_url": "http://prometheus.lab:9090",
    "tolerance": 5.0,
    "timeout": 10,
    "interval": 1.0,
}
TRAFFIC = {"namespace": "lab", "control": 90, "canary": 10, "observe": OBSERVE}
WEIGHT = bad_int(0, 100) | st.booleans()
traffic_fields = {
    "namespace": at("namespace", BAD_NAMESPACE | st.none()),
    "name": at("name", BAD_OBJECT_NAME | st.none()),
    "control": at("control", WEIGHT),
    "canary": at("canary", WEIGHT),
    "control+canary": st.tuples(st.integers(0, 100), st.integers(0, 100))
    .filter(lambda pair: sum(pair) != 100)
    .map(lambda pair: ("control", {("control",): pair[0], ("canary",): pair[1]})),
    "control_key": at("control_key", BAD_DATA_KEY | st.none()),
    "canary_key": at("canary_key", BAD_DATA_KEY | st.none() | st.just("control")),
    "observe": unknown_key(
        {key: {} for key in [*OBSERVE, "query", "bearer_token", "validate_certs"]},
        "observe.",
    ),
    "observe.prometheus_url": at("observe.prometheus_url", BAD_URL | st.none()),
    "observe.query": at("observe.query", BLANKS | st.just("")),
    "observe.tolerance": at("observe.tolerance", bad_float(0, hi=100)),
    "observe.timeout": at("observe.timeout", bad_int(0)),
    "observe.interval": at("observe.interval", bad_float(0.01)),
    "observe.validate_certs": at("observe.validate_certs", BAD_BOOL),
}
ROUTE = {
    "namespace": "lab",
    "backend": "route",
    "name": "veritas",
    "control": 75,
    "canary": 25,
    "route_control_service": "control",
    "route_canary_service": "canary",
}
HTTPROUTE = {
    "namespace": "lab",
    "backend": "httproute",
    "name": "veritas",
    "control": 75,
    "canary": 25,
    "httproute_rule": 1,
    "httproute_control_service": "control",
    "httproute_canary_service": "canary",
}
SELECTOR = {
    "namespace": "lab",
    "name": "veritas-runtime",
    "selector": {"app": "veritas", "deployment": "green"},
    "min_ready_pods": 1,
    "health_command": ["/bin/true"],
    "health_container": "runtime",
    "health_timeout": 10,
    "lock_name": "veritas-runtime-switch",
    "lock_holder": "run-1",
    "lock_duration": 120,
}
POD_CHAOS = {
    "namespace": "lab",
    "label_selector": "variant=canary",
    "count": 1,
    "max_count": 2,
    "max_percent": 50,
    "grace_period_seconds": 0,
    "seed": 7,
    "wait_timeout": 60,
    "wait_sleep": 0.5,
    "experiment_id": "exp-1",
    "record_configmap": "veritas-chaos-experiments",
}
INFO = {
    "namespace": "lab",
    "traffic_configmap": "veritas-traffic-config",
    "service": "veritas-runtime",
    "pod_selector": "app=veritas",
    "colour_label": "deployment",
    "variant_label": "variant",
}
ANALYSIS = {
    "prometheus_url": "http://prometheus.lab:9090",
    "query_timeout": 5.0,
    "variant": "canary",
    "error_rate_threshold": 0.05,
    "latency_threshold": 0.5,
    "interval": 1.0,
    "samples": 1,
    "consecutive_failures": 1,
    "min_samples": 1,
    "rollback": True,
    "namespace": "lab",
    "traffic_configmap": "veritas-traffic-config",
}
PROMETHEUS_CONFIRM = {
    "url": "http://prometheus.lab:9090",
    "query": "sum(rate(veritas_http_requests_total{code='503'}[30s]))",
    "condition": "above",
    "threshold": 0.1,
    "timeout": 10.0,
    "interval": 1.0,
}
FAULT = {
    "namespace": "lab",
    "label_selector": "variant=canary",
    "fault": "error_rate",
    "method": "runtime_cli",
    "percent": 20.0,
    "status_code": 503,
    "pod_count": 2,
    "max_count": 3,
    "max_percent": 100,
    "seed": 1,
    "container": "runtime",
    "cli_path": "./cli",
    "exec_timeout": 30,
    "confirm_timeout": 30,
    "confirm_with": "prometheus",
    "prometheus": PROMETHEUS_CONFIRM,
    "duration": 5,
}
fault_fields = {
    "namespace": at("namespace", BAD_NAMESPACE | st.none()),
    "label_selector": at("label_selector", BAD_SELECTOR | st.none()),
    "percent": at("percent", bad_float(0, inclusive=False, hi=100, nullable=False)),
    "status_code": at("status_code", bad_int(100, 599, nullable=False)),
    "pod_count": at("pod_count", bad_int(1, nullable=False)),
    "pod_percent": at("pod_percent", bad_int(1, 100, nullable=False), pod_count=DROP),
    "pod_count+pod_percent": at("pod_percent", st.integers(1, 100)),
    "max_count": at("max_count", bad_int(1, nullable=False)),
    "max_percent": at("max_percent", bad_int(1, 100, nullable=False)),
    "seed": at("seed", bad_int(nullable=False)),
    "container": at("container", BAD_NAMESPACE),
    "cli_path": at("cli_path", BAD_COMMAND),
    "exec_timeout": at("exec_timeout", bad_int(1)),
    "confirm_timeout": at("confirm_timeout", bad_int(1)),
    "duration": at("duration", bad_int(1, nullable=False)),
    "prometheus": unknown_key(
        {key: {} for key in [*PROMETHEUS_CONFIRM, "validate_certs", "bearer_token"]},
        "prometheus.",
    ),
    "prometheus.url": at("prometheus.url", BAD_URL | st.none()),
    "prometheus.query": at("prometheus.query", BLANKS | st.just("") | st.none()),
    "prometheus.threshold": at(
        "prometheus.threshold",
        st.sampled_from(
            [math.nan, math.inf, -math.inf, "nan", "-inf", "abc", [1.0], {"a": 1}]
        ),
    ),
    "prometheus.timeout": at("prometheus.timeout", bad_float(0, inclusive=False)),
    "prometheus.interval": at("prometheus.interval", bad_float(0, inclusive=False)),
    "write_percent": at("write_percent", st.floats(0, 100)),
}
POLICY = {
    "namespace": "lab",
    "label_selector": "variant=canary",
    "fault": "metrics_outage",
    "method": "network_policy",
    "metrics_port": 9100,
    "prometheus_namespace": "monitoring",
    "prometheus_pod_labels": {"app": "prometheus"},
    "policy_name": "veritas-chaos-metrics-outage",
}
ENVOY = {
    "namespace": "lab",
    "label_selector": "variant=canary",
    "fault": "latency",
    "method": "envoy_runtime",
    "latency_ms": 200.0,
    "envoy_admin_url": "http://127.0.0.1:15000",
    "envoy_runtime_prefix": "fault.http",
}
KV = {
    "namespace": "lab",
    "label_selector": "variant=canary",
    "fault": "kv_cache_corruption",
    "method": "runtime_cli",
    "percent": 50.0,
    "write_percent": 10.0,
}
TAINT = {
    "method": "taint",
    "nodes": ["gpu-1"],
    "taint_key": "chaos.veritas.io/gpu-fault",
    "taint_value": "gpu-unavailable",
}
FLAG = {
    "method": "runtime_flag",
    "namespace": "lab",
    "pods": ["rt-1"],
    "label_selector": "app=veritas",
    "container": "runtime",
    "cli_path": "./cli",
    "exec_timeout": 30,
}
DCGM = {
    "method": "dcgm",
    "namespace": "lab",
    "pods": ["rt-1"],
    "dcgm_gpu_ids": [0, 1],
    "dcgm_field_id": 230,
}
WARMUP = {
    "namespace": "lab",
    "label_selector": "deployment=green",
    "model": "llama-7b",
    "target_percent": 100,
    "timeout": 60,
    "poll_interval": 0.01,
    "warmup_seconds": 5.0,
    "warmup_prompts": 8,
    "container": "runtime",
    "cli_path": "./cli",
    "exec_timeout": 30,
}
LOCK = {
    "namespace": "lab",
    "name": "veritas-gameday",
    "holder": "run-1",
    "duration": 900,
    "purpose": "game day",
    "wait": 0,
    "poll_interval": 5.0,
}
LEDGER = {
    "namespace": "lab",
    "run_id": "run-1",
    "suffix": "a",
    "topology": "canary",
    "lock": "lab/veritas-gameday",
    "processes": [{"pid": os.getpid(), "what": "pytest"}],
}


def build_cases() -> dict[str, list[Case]]:
    cases = [
        case("traffic_split", traffic_split, TRAFFIC, traffic_world, **traffic_fields),
        case(
            "traffic_split",
            traffic_split,
            ROUTE,
            route_world,
            route_control_service=at("route_control_service", BAD_NAMESPACE),
            route_canary_service=at("route_canary_service", BAD_NAMESPACE),
            name=at("name", BAD_OBJECT_NAME),
        ),
        case(
            "traffic_split",
            traffic_split,
            HTTPROUTE,
            httproute_world,
            httproute_control_service=at(
                "httproute_control_service",
                BAD_NAMESPACE | st.sampled_from(["admin", "missing"]),
            ),
            httproute_canary_service=at(
                "httproute_canary_service",
                BAD_NAMESPACE | st.sampled_from(["admin", "control", "missing"]),
            ),
            httproute_rule=at("httproute_rule", bad_int(0, 1)),
        ),
        case(
            "service_selector",
            service_selector,
            SELECTOR,
            service_world,
            namespace=at("namespace", BAD_NAMESPACE | st.none()),
            name=at("name", BAD_OBJECT_NAME | st.none()),
            selector=at("selector", BAD_SELECTOR_DICT),
            selector_missing=at("selector", st.just(DROP)),
            min_ready_pods=at("min_ready_pods", bad_int(0)),
            health_command=at(
                "health_command", st.sampled_from([[""], [" "], ["", "x"], {"a": 1}])
            ),
            health_container=at("health_container", BAD_NAMESPACE),
            health_timeout=at("health_timeout", bad_int(1)),
            lock_name=at("lock_name", BAD_OBJECT_NAME),
            lock_holder=at("lock_holder", BLANKS),
            lock_duration=at("lock_duration", bad_int(1)),
        ),
        case(
            "pod_chaos",
            pod_chaos,
            POD_CHAOS,
            canary_pods_world,
            namespace=at("namespace", BAD_NAMESPACE | st.none()),
            label_selector=at("label_selector", BAD_SELECTOR | st.none()),
            count=at("count", bad_int(1, nullable=False)),
            percent=at("percent", bad_int(1, 100, nullable=False), count=DROP),
            count_and_percent=at("percent", st.integers(1, 100)),
            max_count=at("max_count", bad_int(1, nullable=False)),
            max_percent=at("max_percent", bad_int(1, 100)),
            grace_period_seconds=at("grace_period_seconds", bad_int(0, nullable=False)),
            seed=at("seed", bad_int(nullable=False)),
            wait_timeout=at("wait_timeout", bad_int(0)),
            wait_sleep=at("wait_sleep", bad_float(0, inclusive=False)),
            experiment_id=at("experiment_id", BAD_DATA_KEY),
            record_configmap=at("record_configmap", BAD_OBJECT_NAME | st.none()),
        ),
        case(
            "gameday_info",
            gameday_info,
            INFO,
            info_world,
            changes=False,
            namespace=at("namespace", BAD_NAMESPACE | st.none()),
            traffic_configmap=at("traffic_configmap", BAD_OBJECT_NAME | st.none()),
            service=at("service", BAD_OBJECT_NAME | st.none()),
            control_key=at("control_key", BAD_DATA_KEY | st.none()),
            canary_key=at("canary_key", BAD_DATA_KEY | st.none()),
            colour_label=at("colour_label", BAD_LABEL_KEY | st.none()),
            variant_label=at("variant_label", BAD_LABEL_KEY | st.none()),
            pod_selector=at("pod_selector", BAD_SELECTOR),
        ),
        case(
            "canary_analysis",
            canary_analysis,
            ANALYSIS,
            analysis_world,
            prometheus_url=at("prometheus_url", BAD_URL | st.none()),
            query_timeout=at("query_timeout", bad_float(0, inclusive=False)),
            variant=at("variant", BAD_LABEL_VALUE | st.none()),
            error_rate_query=at("error_rate_query", BLANKS),
            latency_query=at("latency_query", BLANKS),
            error_rate_threshold=at("error_rate_threshold", bad_float(0, hi=1)),
            latency_threshold=at("latency_threshold", bad_float(0, inclusive=False)),
            interval=at("interval", bad_float(0, inclusive=False)),
            duration=at("duration", bad_float(0, nullable=False)),
            samples=at("samples", bad_int(1, nullable=False)),
            samples_and_duration=at("samples", st.just(DROP)),
            consecutive_failures=at("consecutive_failures", bad_int(1)),
            min_samples=at(
                "min_samples", bad_int(1, nullable=False) | st.integers(2, 100)
            ),
            namespace=at("namespace", BAD_NAMESPACE | st.none()),
            traffic_configmap=at("traffic_configmap", BAD_OBJECT_NAME | st.none()),
            control_key=at("control_key", BAD_DATA_KEY | st.none()),
            canary_key=at("canary_key", BAD_DATA_KEY | st.none() | st.just("control")),
        ),
        case("runtime_fault", runtime_fault, FAULT, canary_pods_world, **fault_fields),
        case(
            "runtime_fault",
            runtime_fault,
            POLICY,
            canary_pods_world,
            label_selector=at("label_selector", BAD_SELECTOR),
            metrics_port=at("metrics_port", bad_int(1, 65535)),
            prometheus_namespace=at("prometheus_namespace", BAD_NAMESPACE | st.none()),
            prometheus_pod_labels=at("prometheus_pod_labels", BAD_SELECTOR_DICT),
            policy_name=at("policy_name", BAD_OBJECT_NAME | st.none()),
            pod_count=at("pod_count", st.integers(1, 5)),
        ),
        case(
            "runtime_fault",
            runtime_fault,
            ENVOY,
            canary_pods_world,
            envoy_admin_url=at("envoy_admin_url", BAD_URL | st.none()),
            envoy_runtime_prefix=at(
                "envoy_runtime_prefix",
                st.sampled_from(
                    [
                        "",
                        " ",
                        "fault http",
                        "fault/http",
                        "*",
                        ".fault",
                        "fault..http",
                        "a=b",
                    ]
                ),
            ),
            latency_ms=at("latency_ms", bad_float(0, inclusive=False)),
            jitter_ms=at("jitter_ms", bad_float(0, nullable=False) | st.floats(1, 100)),
            percent=at(
                "percent", st.floats(0.01, 99.99).filter(lambda v: not v.is_integer())
            ),
        ),
        case(
            "runtime_fault",
            runtime_fault,
            KV,
            canary_pods_world,
            percent=at(
                "percent", bad_float(0, inclusive=False, hi=100, nullable=False)
            ),
            write_percent=at("write_percent", bad_float(0, hi=100, nullable=False)),
        ),
        case(
            "gpu_fault",
            gpu_fault,
            TAINT,
            node_world,
            nodes=at("nodes", bad_names_list(BAD_OBJECT_NAME, "gpu-1")),
            node_selector=at("node_selector", BAD_SELECTOR, nodes=DROP),
            taint_key=at("taint_key", BAD_LABEL_KEY | st.none()),
            taint_value=at("taint_value", BAD_LABEL_VALUE.filter(lambda v: v != "")),
            resource=at("resource", BAD_LABEL_KEY | st.none()),
            exec_timeout=at("exec_timeout", bad_int(1)),
        ),
        case(
            "gpu_fault",
            gpu_fault,
            FLAG,
            gpu_pod_world,
            namespace=at("namespace", BAD_NAMESPACE),
            pods=at("pods", bad_names_list(BAD_OBJECT_NAME, "rt-1")),
            label_selector=at("label_selector", BAD_SELECTOR, pods=DROP),
            container=at("container", BAD_NAMESPACE),
            cli_path=at("cli_path", BAD_COMMAND),
        ),
        case(
            "gpu_fault",
            gpu_fault,
            DCGM,
            gpu_pod_world,
            dcgm_gpu_ids=at(
                "dcgm_gpu_ids",
                st.one_of(
                    st.just([]),
                    st.lists(st.integers(max_value=-1) | HUGE, min_size=1, max_size=3),
                    st.lists(
                        WRONG_TYPES.filter(lambda v: not isinstance(v, list)),
                        min_size=1,
                    ),
                ),
            ),
            dcgm_field_id=at("dcgm_field_id", bad_int(0)),
            dcgm_value=at("dcgm_value", BLANKS | st.just("") | st.none()),
            dcgm_clear_value=at("dcgm_clear_value", BLANKS | st.just("") | st.none()),
            dcgmi_path=at("dcgmi_path", BLANKS | st.just("") | st.none()),
        ),
        case(
            "cache_warmup",
            cache_warmup,
            WARMUP,
            warmup_world,
            namespace=at("namespace", BAD_NAMESPACE | st.none()),
            label_selector=at("label_selector", BAD_SELECTOR | st.none()),
            model=at("model", BLANKS | st.just("") | st.none()),
            target_percent=at("target_percent", bad_int(1, 100)),
            timeout=at("timeout", bad_int(1)),
            poll_interval=at("poll_interval", bad_float(0, inclusive=False)),
            warmup_seconds=at(
                "warmup_seconds", bad_float(0, inclusive=False, nullable=False)
            ),
            warmup_prompts=at("warmup_prompts", bad_int(1, nullable=False)),
            container=at("container", BAD_NAMESPACE),
            cli_path=at("cli_path", BAD_COMMAND),
            exec_timeout=at("exec_timeout", bad_int(1)),
        ),
        case(
            "gameday_lock",
            gameday_lock,
            LOCK,
            lambda: World(cluster()),
            namespace=at("namespace", BAD_NAMESPACE | st.none()),
            name=at("name", BAD_OBJECT_NAME | st.none()),
            holder=at("holder", BLANKS | st.just("") | st.none()),
            duration=at("duration", bad_int(1)),
            wait=at("wait", bad_int(0)),
            poll_interval=at("poll_interval", bad_float(0, inclusive=False)),
            force_with_present=at("force", st.just(True)),
        ),
        case(
            "gameday_ledger",
            gameday_ledger,
            LEDGER,
            lambda: World(cluster()),
            namespace=at("namespace", BAD_NAMESPACE | st.none()),
            name=at("name", BAD_OBJECT_NAME),
            run_id=at("run_id", BLANKS | st.just("") | st.none()),
            topology=at("topology", BAD_LABEL_VALUE.filter(lambda v: v != "")),
            processes=at("processes", st.sampled_from([{"a": 1}, 5, [5], [[]], [{}]])),
            **{
                "processes.pid": at("processes.0.pid", bad_int(2, PID_MAX)),
                "processes.what": at("processes.0.what", st.just(DROP)),
                "processes.<unknown key>": unknown_key(
                    {"pid": {}, "what": {}}, "processes.0."
                ),
            },
            run_ids=at("run_ids", st.just({"a": 1})),
        ),
        case(
            "gameday_ledger",
            gameday_ledger,
            {"namespace": "lab", "state": "absent", "name": "veritas-ledger-run-0"},
            ledger_world,
            name=at("name", BAD_OBJECT_NAME),
        ),
    ]
    by_module: dict[str, list[Case]] = collections.defaultdict(list)
    for item in cases:
        by_module[item.name].append(item)
    return dict(by_module)


CASES = build_cases()


OPTIONS = [
    (module_name, index, kind)
    for module_name in sorted(CASES)
    for index, item in enumerate(CASES[module_name])
    for kind in sorted(item.fields)
]


def apply(
    base: dict[str, Any], overrides: dict[tuple[Any, ...], Any]
) -> dict[str, Any]:
    params = copy.deepcopy(base)
    for path, value in overrides.items():
        node: Any = params
        for key in path[:-1]:
            node = node[key]
        if value is DROP:
            node.pop(path[-1], None)
        else:
            node[path[-1]] = copy.deepcopy(value)
    return params


def names_the_option(result: dict[str, Any], named: str) -> bool:
    """The option appears in msg (as a word) or is the details' field."""
    tokens = {named, named.split(".")[0], named.split(".")[-1]}
    fields = {part.strip() for part in str(result.get("field") or "").split(",")}
    if tokens & fields:
        return True
    msg = str(result.get("msg", ""))
    return any(
        re.search(rf"(?<![\w]){re.escape(token)}(?![\w])", msg) for token in tokens
    )


# ------------------------------------------------------------------------ properties


@pytest.fixture(scope="module", autouse=True)
def case_count_summary(request):
    """Print the number of cases per module at the end of the run."""

    class Summary:
        def pytest_terminal_summary(self, terminalreporter):
            if not CASE_COUNTS and not PURE_COUNTS:
                return
            terminalreporter.section(
                "hypothesis cases: malformed input per module, then pure properties"
            )
            terminalreporter.write_line(f"{'module':18} {'cases':>6} {'options':>8}")
            for name in sorted(CASE_COUNTS):
                terminalreporter.write_line(
                    f"{name:18} {CASE_COUNTS[name]:6d} {len(OPTION_COUNTS[name]):8d}"
                )
            terminalreporter.write_line(f"{'total':18} {sum(CASE_COUNTS.values()):6d}")
            for name in sorted(PURE_COUNTS):
                terminalreporter.write_line(f"{PURE_COUNTS[name]:6d}  {name}")

    if request.config.pluginmanager.get_plugin("veritas-property-cases") is None:
        request.config.pluginmanager.register(Summary(), "veritas-property-cases")


@pytest.mark.parametrize("module_name", sorted(CASES))
def test_the_valid_base_changes_the_cluster(module_name):
    """Each base parameter set is accepted and (for a changing module) changes something:
    a corruption that slipped through validation would change the cluster too."""
    for item in CASES[module_name]:
        world = item.world()
        result = run(item.module, item.base, world)
        assert not result.get("failed"), (item.base, result)
        if item.changes:
            assert result["changed"] is True, (item.base, result)
            assert world.kube.writes or [e for e in world.io if e[0] == "exec"], (
                item.base
            )


@pytest.mark.parametrize(
    "module_name, index, kind",
    OPTIONS,
    ids=[f"{module_name}-{index}-{kind}" for module_name, index, kind in OPTIONS],
)
@SETTINGS
@given(data=st.data())
def test_malformed_input_is_refused_naming_the_option_and_changes_nothing(
    module_name, index, kind, data
):
    item = CASES[module_name][index]
    named, overrides = data.draw(item.fields[kind], label="corruption")
    params = apply(item.base, overrides)
    note(f"params: {params!r}")
    world = item.world()
    result = run(item.module, params, world)
    CASE_COUNTS[module_name] += 1
    OPTION_COUNTS[module_name][f"{index}:{kind}"] += 1
    event(
        "refused by AnsibleModule"
        if "reason" not in result
        else "refused by the module"
    )
    assert result.get("failed") is True, f"accepted: {result}"
    assert world.kube.writes == [], f"the cluster was changed: {world.kube.writes}"
    assert world.io == [], f"something was started: {world.io}"
    assert result.get("reason", "invalid_input") == "invalid_input", result
    assert names_the_option(result, named), f"{named} not named in {result}"


# Malformed input that AnsibleModule (ansible-core 2.19) itself mishandles before any module
# code runs, so no module can fix it; the cluster is not touched either way. A non-dict value
# for a dict option with sub-options: an int or a list of ints raises TypeError in
# set_fallbacks, and for a string the message is the no_log pass's "dictionary requested,
# could not parse JSON or key=value", without the option's name. Infinity for an int option:
# check_type_int lets OverflowError out. Strict xfail, so that a fixed ansible-core is noticed.
@pytest.mark.xfail(strict=True, reason="ansible-core 2.19 argument validation")
@pytest.mark.parametrize(
    "module, base, option, value",
    [
        (traffic_split, TRAFFIC, "observe", 5),
        (traffic_split, TRAFFIC, "observe", [1]),
        (traffic_split, TRAFFIC, "observe", "x"),
        (runtime_fault, FAULT, "prometheus", "x"),
        (gameday_ledger, LEDGER, "processes", ["x"]),
        (pod_chaos, POD_CHAOS, "count", math.inf),
        (service_selector, SELECTOR, "min_ready_pods", "-inf"),
    ],
)
def test_ansible_core_refuses_naming_the_option(module, base, option, value):
    item = next(
        entry
        for entry in CASES[module.__name__.rsplit(".", 1)[-1]]
        if entry.base is base
    )
    world = item.world()
    try:
        result = run(module, dict(base, **{option: value}), world)
    finally:
        assert world.kube.writes == [] and world.io == []
    assert result.get("failed") and option in result["msg"]


# ---- pure decisions


ANYTHING = st.one_of(
    st.integers(-(10**13), 10**13),
    st.booleans(),
    st.none(),
    st.floats(),
    st.text(max_size=5),
)


@settings(max_examples=PURE_EXAMPLES, database=None)
@given(
    control=st.integers(-50, 200) | ANYTHING, canary=st.integers(-50, 200) | ANYTHING
)
def test_validate_weights_accepts_exactly_integer_pairs_from_0_to_100_summing_to_100(
    control, canary
):
    PURE_COUNTS[
        "validate_weights_accepts_exactly_integer_pairs_from_0_to_100_summing_to_100"
    ] += 1

    def weight(value):
        return (
            isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 100
        )

    valid = weight(control) and weight(canary) and control + canary == 100
    try:
        assert validate_weights(control, canary) == (control, canary)
        accepted = True
    except ChaosError as exc:
        accepted = False
        assert exc.reason == "invalid_input"
        assert {"control", "canary"} & {
            part.strip() for part in exc.details["field"].split(",")
        }
    assert accepted == valid


MIXED = ALNUM + "ABCXYZ"


def framed(inner: str, max_size: int) -> st.SearchStrategy[str]:
    """An alphanumeric character, or one at each end of up to max_size of inner's."""
    ends = st.sampled_from(MIXED if "_" in inner else ALNUM)
    return ends | st.builds(
        "{}{}{}".format, ends, st.text(alphabet=inner, max_size=max_size), ends
    )


LABEL_NAME_ST = framed(MIXED + "-_.", 20)
PREFIX_ST = st.lists(framed(ALNUM + "-", 8), min_size=2, max_size=3).map(".".join)
LABEL_KEY_ST = st.one_of(
    LABEL_NAME_ST, st.builds("{}/{}".format, PREFIX_ST, LABEL_NAME_ST)
)
LABEL_VALUE_ST = LABEL_NAME_ST
SELECTORS = st.dictionaries(LABEL_KEY_ST, LABEL_VALUE_ST, min_size=1, max_size=4)


@settings(max_examples=PURE_EXAMPLES, database=None)
@given(selector=SELECTORS)
def test_validate_selector_round_trips(selector):
    PURE_COUNTS["validate_selector_round_trips"] += 1
    assert validate_selector(selector) == selector
    assert decode_selector(encode_selector(selector)) == selector
    text = label_selector_string(selector)
    assert dict(part.split("=", 1) for part in text.split(",")) == selector
    assert check_label_selector("label_selector", text) == text


@settings(max_examples=PURE_EXAMPLES, database=None)
@given(
    before=SELECTORS,
    target=SELECTORS,
    annotations=st.dictionaries(LABEL_KEY_ST, LABEL_VALUE_ST, max_size=2),
)
def test_a_selector_switch_and_its_rollback_restore_the_service(
    before, target, annotations
):
    PURE_COUNTS["a_selector_switch_and_its_rollback_restore_the_service"] += 1
    service = {
        "metadata": {"name": "svc", "annotations": annotations},
        "spec": {"selector": before},
    }
    switched = merge_patch(service, switch_patch(before, target))
    assert switched["spec"]["selector"] == target
    previous = decode_selector(
        switched["metadata"]["annotations"][PREVIOUS_SELECTOR_ANNOTATION]
    )
    assert previous == before
    back = merge_patch(switched, rollback_patch(target, previous))
    assert back["spec"]["selector"] == before
    assert PREVIOUS_SELECTOR_ANNOTATION not in back["metadata"]["annotations"]


@settings(max_examples=PURE_EXAMPLES, database=None)
@given(
    text=st.builds(
        ",".join,
        st.lists(
            st.one_of(
                st.builds("{}={}".format, LABEL_KEY_ST, LABEL_VALUE_ST),
                st.builds("{}=={}".format, LABEL_KEY_ST, LABEL_VALUE_ST),
                st.builds(
                    "{} in ({})".format,
                    LABEL_KEY_ST,
                    st.lists(LABEL_VALUE_ST, min_size=1, max_size=3).map(", ".join),
                ),
            ),
            min_size=1,
            max_size=3,
        ),
    ),
    extra=st.lists(
        st.one_of(
            st.builds("{}!={}".format, LABEL_KEY_ST, LABEL_VALUE_ST),
            st.builds("!{}".format, LABEL_KEY_ST),
            LABEL_KEY_ST,
            st.builds("{} notin ({})".format, LABEL_KEY_ST, LABEL_VALUE_ST),
        ),
        max_size=2,
    ),
)
def test_every_well_formed_positive_selector_is_accepted(text, extra):
    PURE_COUNTS["every_well_formed_positive_selector_is_accepted"] += 1
    selector = ",".join([text, *extra])
    assert check_label_selector("label_selector", selector) == selector


# ---- the ledger's undo of merge patches


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def without_empty_maps(value: Any) -> Any:
    """The object as the API stores it: an empty map (annotations: {}) is the same as none."""
    if isinstance(value, dict):
        pruned = {key: without_empty_maps(item) for key, item in value.items()}
        return {key: item for key, item in pruned.items() if item != {}}
    return value


KEYS = st.sampled_from(["a", "b", "c", "metadata", "spec", "x.y", "k/8s"])
SCALARS = st.one_of(st.integers(-5, 5), st.text(max_size=3), st.booleans())
LEAVES = st.one_of(SCALARS, st.lists(st.one_of(SCALARS, st.none()), max_size=3))
OBJECTS = st.recursive(
    st.dictionaries(KEYS, LEAVES, max_size=3),
    lambda children: st.dictionaries(KEYS, st.one_of(LEAVES, children), max_size=3),
    max_leaves=12,
)


@st.composite
def typed_patch(draw: st.DrawFn, obj: Any, depth: int = 0) -> dict[str, Any]:
    """A merge patch the API could take for obj: an object stays an object and a leaf stays a
    leaf (the schema fixes each field's type); new fields may be anything, null removes."""
    patch: dict[str, Any] = {}
    for key in draw(st.lists(KEYS, max_size=3, unique=True)):
        current = obj.get(key) if isinstance(obj, dict) else None
        if isinstance(current, dict) and depth < 3 and draw(st.booleans()):
            patch[key] = draw(typed_patch(current, depth + 1))
        elif isinstance(current, dict):
            patch[key] = None
        elif key in (obj or {}):
            patch[key] = draw(st.one_of(st.none(), LEAVES))
        else:
            new = draw(st.one_of(st.none(), LEAVES, OBJECTS))
            patch[key] = draw(typed_patch({}, depth + 1)) if new == {} else new
    return patch


@settings(
    max_examples=PURE_EXAMPLES,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=st.data(), obj=OBJECTS)
def test_a_merge_patch_then_its_recorded_undo_is_the_original(data, obj):
    """RFC 7386 merge of a patch, then of undo_merge_patch(field_changes(...)), gives the object
    back (an empty map counting as none, as the API stores it). Patches keep each field's type,
    as the API's schema does: a patch that turns a string into an object cannot be undone
    exactly ({'a': 1} patched with {'a': {'b': 2}} comes back as {'a': {}})."""
    PURE_COUNTS["a_merge_patch_then_its_recorded_undo_is_the_original"] += 1
    patch = data.draw(typed_patch(obj))
    after = merge_patch(obj, patch)
    undo = _ledger.undo_merge_patch(_ledger.field_changes(obj, patch))
    assert without_empty_maps(merge_patch(after, undo)) == without_empty_maps(obj)


@settings(
    max_examples=PURE_EXAMPLES,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=st.data(), obj=OBJECTS, count=st.integers(1, 4))
def test_the_restore_plan_of_a_sequence_of_patches_is_the_original(data, obj, count):
    """Several patches recorded one after the other, then plan_undo's steps (the earliest
    change of each field, latest first): the object as it was before the first patch."""
    PURE_COUNTS["the_restore_plan_of_a_sequence_of_patches_is_the_original"] += 1
    path = "/api/v1/namespaces/lab/configmaps/x"
    current = obj
    entries = []
    for seq in range(1, count + 1):
        patch = data.draw(typed_patch(current), label=f"patch {seq}")
        entries.append(
            {
                "type": "patch",
                "seq": seq,
                "path": path,
                "fields": _ledger.field_changes(current, patch),
            }
        )
        current = merge_patch(current, patch)
    for step in _ledger.plan_undo(entries):
        assert step["op"] == "patch" and step["path"] == path
        current = merge_patch(current, step["body"])
    assert without_empty_maps(current) == without_empty_maps(obj)

"""The traffic I/O every caller shares: read, patch, read back through a backend, recorded by
the change ledger so that a restore puts back exactly what was there."""

from __future__ import annotations

import copy

import pytest
from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError
from ansible_collections.veritas.chaos.plugins.module_utils._ledger import (
    Ledger,
    RecordingClient,
    ledger_name,
    restore_ledger,
)
from ansible_collections.veritas.chaos.plugins.module_utils._rollback import (
    rollback_traffic,
    set_weights,
)
from ansible_collections.veritas.chaos.plugins.module_utils._traffic import (
    ConfigMapBackend,
    HTTPRouteBackend,
    RouteBackend,
)
from fake_kube import FakeKube
from traffic_objects import backend_refs, httproute

NS = "lab"
OBJECTS = {
    "configmap": (
        ConfigMapBackend(),
        {
            "kind": "ConfigMap",
            "metadata": {"name": "traffic", "namespace": NS},
            "data": {"control": "90", "canary": "10"},
        },
    ),
    "route": (
        RouteBackend(),
        {
            "kind": "Route",
            "metadata": {"name": "traffic", "namespace": NS},
            "spec": {
                "to": {"kind": "Service", "name": "a", "weight": 90},
                "alternateBackends": [{"kind": "Service", "name": "b", "weight": 10}],
            },
        },
    ),
    "httproute": (
        HTTPRouteBackend("b", "c", rule=1),
        httproute(
            {"backendRefs": backend_refs(("x", None))},
            {
                "matches": [{"headers": [{"name": "x-beta", "value": "1"}]}],
                "backendRefs": backend_refs(("a", 0), ("b", 90), ("c", 10)),
            },
            name="traffic",
        ),
    ),
}


def cluster(kind: str) -> tuple[FakeKube, str]:
    backend, obj = OBJECTS[kind]
    kube = FakeKube()
    path = backend.path(NS, "traffic")
    kube.put(path, obj)
    return kube, path


@pytest.mark.parametrize("kind", sorted(OBJECTS))
def test_set_weights_reads_patches_and_reads_back(kind):
    backend, _obj = OBJECTS[kind]
    kube, path = cluster(kind)
    outcome = set_weights(kube, backend, NS, "traffic", 60, 40)
    assert outcome["changed"] is True
    assert outcome["previous_weights"] == {"control": 90, "canary": 10}
    assert outcome["weights"] == {"control": 60, "canary": 40}
    assert backend.weights(kube.objects[path]) == {"control": 60, "canary": 40}
    assert "resourceVersion" not in outcome["after"]["metadata"]
    again = set_weights(kube, backend, NS, "traffic", 60, 40)
    assert again["changed"] is False and len(kube.writes) == 1


@pytest.mark.parametrize("kind", sorted(OBJECTS))
def test_rollback_traffic_on_every_backend_and_its_dry_run(kind):
    backend, _obj = OBJECTS[kind]
    kube, path = cluster(kind)
    stored = copy.deepcopy(kube.objects[path])
    dry = rollback_traffic(kube, backend, NS, "traffic", dry_run=True)
    assert dry["changed"] is True and dry["weights"] == {"control": 100, "canary": 0}
    assert kube.objects[path] == stored
    done = rollback_traffic(kube, backend, NS, "traffic")
    assert done["weights"] == {"control": 100, "canary": 0}
    assert kube.writes == [("PATCH", path, True), ("PATCH", path, False)]


def test_a_missing_object_names_its_kind():
    with pytest.raises(ChaosError) as caught:
        rollback_traffic(FakeKube(), HTTPRouteBackend(), NS, "traffic")
    assert caught.value.reason == "not_found"
    assert caught.value.msg == (
        "HTTPRoute traffic not found in namespace lab; cannot roll back."
    )


def test_a_recorded_httproute_change_is_restored_whole():
    backend, original = OBJECTS["httproute"]
    kube, path = cluster("httproute")
    ledger = Ledger(kube, NS, ledger_name("run-1"))
    ledger.open("run-1", holder="run-1", topology="canary", purpose="test", lock="l")
    client = RecordingClient(kube, ledger, "test")
    set_weights(client, backend, NS, "traffic", 50, 50)
    rollback_traffic(client, backend, NS, "traffic")
    assert backend.weights(kube.objects[path]) == {"control": 100, "canary": 0}
    outcome = restore_ledger(ledger, lambda *args: None)
    assert outcome["changed"] and not outcome["failed"]
    assert kube.objects[path]["spec"] == original["spec"]

# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab's rollback controller (lab/rollback_controller/controller.py) runs the same verdict
logic as canary_analysis: driven here by a local HTTP Prometheus stub and the fake API."""

from __future__ import annotations

import importlib.util
import io
import json
from pathlib import Path

import pytest
from fake_kube import FakeKube, namespace
from test_analysis_prometheus import vector

REPO = Path(__file__).resolve().parents[4]
CM = "/api/v1/namespaces/lab/configmaps/veritas-traffic-config"


def load_controller():
    spec = importlib.util.spec_from_file_location(
        "veritas_rollback_controller",
        REPO / "lab" / "rollback_controller" / "controller.py",
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def controller_module():
    return load_controller()


@pytest.fixture
def kube():
    fake = FakeKube()
    fake.put("/api/v1/namespaces/lab", namespace("lab", {"environment": "lab"}))
    fake.put(
        CM,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "veritas-traffic-config", "namespace": "lab"},
            "data": {"control": "90", "canary": "10"},
        },
    )
    return fake


def run(controller_module, prom, kube, tmp_path, *extra):
    args = controller_module.parse_args(
        [
            "--prometheus-url",
            prom.url,
            "--namespace",
            "lab",
            "--interval",
            "0.02",
            "--max-samples",
            "6",
            "--error-rate-query",
            "err",
            "--latency-query",
            "lat",
            "--pause-file",
            str(tmp_path / "paused"),
            *extra,
        ]
    )
    out = io.StringIO()
    ctl = controller_module.Controller(args, controller_module.DecisionLog(out))
    ctl.client = kube
    assert ctl.run() == 0
    return [json.loads(line) for line in out.getvalue().splitlines()]


def events(log):
    return [record["event"] for record in log]


def test_rolls_back_after_three_consecutive_failures(
    controller_module, prom, kube, tmp_path
):
    prom.answers["err"] = vector(0.3)
    prom.answers["lat"] = vector(0.1)
    log = run(controller_module, prom, kube, tmp_path)
    assert events(log)[:5] == ["start", "sample", "sample", "sample", "rollback"]
    rollback = log[4]
    assert rollback["weights"] == {"control": 100, "canary": 0}
    assert rollback["previous_weights"] == {"control": 90, "canary": 10}
    assert rollback["seconds_from_first_fail"] >= 0
    assert kube.objects[CM]["data"] == {"control": "100", "canary": "0"}
    # the window restarts: the next streak finds the rollback already done
    assert "rollback_not_needed" in events(log)
    assert events(log)[-1] == "stop"


def test_no_data_alerts_and_never_acts(controller_module, prom, kube, tmp_path):
    prom.answers["err"] = vector()
    prom.answers["lat"] = vector()
    log = run(controller_module, prom, kube, tmp_path)
    assert "rollback" not in events(log)
    alerts = [r for r in log if r["event"] == "alert"]
    assert len(alerts) == 1
    assert alerts[0]["alert"] == "metrics_unavailable"
    assert kube.writes == []


def test_paused_controller_logs_the_decision_only(
    controller_module, prom, kube, tmp_path
):
    (tmp_path / "paused").write_text("")
    prom.answers["err"] = vector(0.3)
    prom.answers["lat"] = vector(0.1)
    log = run(controller_module, prom, kube, tmp_path)
    paused = [r for r in log if r["event"] == "paused"]
    assert paused and paused[0]["decision"] == "would_rollback"
    assert kube.writes == []


def test_production_namespace_refused(controller_module, prom, kube, tmp_path):
    kube.put("/api/v1/namespaces/lab", namespace("lab", {"environment": "production"}))
    args = controller_module.parse_args(
        ["--prometheus-url", prom.url, "--namespace", "lab"]
    )
    out = io.StringIO()
    ctl = controller_module.Controller(args, controller_module.DecisionLog(out))
    ctl.client = kube
    assert ctl.run() == 2
    assert json.loads(out.getvalue().splitlines()[-1])["reason"] == "production_refused"

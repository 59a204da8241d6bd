"""Shared fixtures for tests that run against the running lab (make lab-up)."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
KUBECONFIG = Path(os.environ.get("VERITAS_KUBECONFIG", REPO_ROOT / ".lab" / "kubeconfig"))


def _kube_bin_dir() -> Path:
    versions = dict(
        line.split("=", 1)
        for line in (REPO_ROOT / "lab" / "versions.env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    cache = Path(os.environ.get("VERITAS_LAB_CACHE", Path.home() / ".cache" / "veritas-lab"))
    return cache / f"kubernetes-{versions['KUBE_VERSION']}"


KUBECTL = str(_kube_bin_dir() / "kubectl")


@pytest.fixture(scope="session")
def kubeconfig() -> str:
    if not KUBECONFIG.is_file():
        pytest.fail(f"the lab is not running: {KUBECONFIG} is missing (run `make lab-up`)")
    return str(KUBECONFIG)


@pytest.fixture(scope="session")
def api_client(kubeconfig):
    from kubernetes import config

    return config.new_client_from_config(config_file=kubeconfig)


@pytest.fixture(scope="session")
def core(api_client):
    from kubernetes import client

    return client.CoreV1Api(api_client)


@pytest.fixture(scope="session")
def apps(api_client):
    from kubernetes import client

    return client.AppsV1Api(api_client)


@pytest.fixture
def namespace(core) -> str:
    """A fresh namespace for one test, deleted afterwards."""
    from kubernetes import client

    name = f"t-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


@pytest.fixture(scope="session")
def kubectl(kubeconfig) -> Callable[..., subprocess.CompletedProcess]:
    def run(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            [KUBECTL, "--kubeconfig", kubeconfig, *args],
            capture_output=True, text=True, check=check, timeout=timeout,
        )

    return run


def wait_for(predicate: Callable[[], object], timeout: float = 30, interval: float = 0.2, what: str = ""):
    """Polls until predicate() is truthy and returns its value; fails the test on timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what or predicate.__name__} (last: {last!r})")


# ---- the data plane tests' private HAProxy, controller and local backends --------------------

DATAPLANE_TEST_LABEL = "lab.veritas.io/dataplane-test"  # not the runtime label: the supervisor ignores these pods


def _harness():
    import sys

    sys.path.insert(0, str(REPO_ROOT / "lab" / "dataplane"))
    import harness

    return harness


@pytest.fixture
def proxy(tmp_path):
    """A private HAProxy rendered from the lab's data plane config."""
    import shutil

    assert shutil.which("haproxy"), "haproxy is not installed (lab/dataplane/up.sh installs it)"
    p = _harness().PrivateHAProxy(tmp_path).start()
    yield p
    p.stop()


@pytest.fixture
def lab_proxy(tmp_path, namespace, kubeconfig):
    """A private HAProxy and controller following a test namespace (pods labelled DATAPLANE_TEST_LABEL)."""
    p = _harness().PrivateHAProxy(tmp_path, namespace=namespace)
    p.cfg["controller"]["pod_label_selector"] = f"{DATAPLANE_TEST_LABEL}=true"
    p.start()
    cfg_file = p.config_file()
    log = open(tmp_path / "controller.log", "wb")  # noqa: SIM115 - closed below
    ctl = subprocess.Popen(
        [str(REPO_ROOT / ".venv" / "bin" / "python"), str(REPO_ROOT / "lab/dataplane/dataplane.py"), "controller",
         "--config", str(cfg_file), "--run-dir", str(tmp_path), "--kubeconfig", kubeconfig],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    p.controller_log = tmp_path / "controller.log"
    yield p
    ctl.terminate()
    ctl.wait(10)
    log.close()
    p.stop()


@pytest.fixture
def backends():
    """make(name) -> a local HTTP backend answering as that pod; all closed afterwards."""
    made = []

    def make(name):
        made.append(_harness().Backend(name))
        return made[-1]

    yield make
    for b in made:
        b.close()

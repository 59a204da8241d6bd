from __future__ import annotations

import json

import pytest
from ansible.module_utils.testing import patch_module_args
from fake_kube import FakeKube, namespace


class ModuleExit(Exception):
    def __init__(self, result, failed):
        super().__init__(result)
        self.result = result
        self.failed = failed


@pytest.fixture
def kube():
    fake = FakeKube()
    fake.put("/api/v1/namespaces/lab", namespace("lab", {"environment": "lab"}))
    fake.put(
        "/api/v1/namespaces/prod", namespace("prod", {"environment": "production"})
    )
    return fake


@pytest.fixture
def run_module(monkeypatch, capsys):
    """Run a module's main() with args, the client factory patched to return the fake."""

    def run(module, args, fake, check_mode=False, diff=False):
        monkeypatch.setattr(module, "get_client", lambda params: fake)
        args = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
        with patch_module_args(args), pytest.raises(SystemExit) as caught:
            module.main()
        result = json.loads(capsys.readouterr().out)
        return ModuleExit(
            result, caught.value.code != 0 or result.get("failed", False)
        ).result

    return run

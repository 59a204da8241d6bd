# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""run_module: the shared end of every module's main()."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args
from ansible_collections.veritas.chaos.plugins.module_utils import _runner
from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError


class Exited(Exception):
    pass


class FakeModule:
    """Records what run_module asks of the module; fail_json and exit_json end the run."""

    def __init__(self) -> None:
        self.failed: dict | None = None
        self.exited: dict | None = None
        self.warnings: list[str] = []

    def fail_json(self, **kwargs):
        self.failed = kwargs
        raise Exited()

    def exit_json(self, **kwargs):
        self.exited = kwargs
        raise Exited()

    def warn(self, warning):
        assert self.exited is None, "warnings come before exit_json"
        self.warnings.append(warning)


def run(action, **kwargs) -> FakeModule:
    module = FakeModule()
    with pytest.raises(Exited):
        _runner.run_module(module, action, **kwargs)
    return module


def test_the_result_is_the_exit():
    module = run(lambda: {"changed": True, "answer": 42})
    assert module.exited == {"changed": True, "answer": 42}
    assert module.failed is None and module.warnings == []


def test_a_chaos_error_becomes_fail_json_with_its_reason_and_details():
    def action():
        raise ChaosError("no pods", reason="no_targets", matched=0, changed=False)

    module = run(action)
    assert module.failed == {
        "msg": "no pods",
        "reason": "no_targets",
        "matched": 0,
        "changed": False,
    }
    assert module.exited is None


def test_other_exceptions_are_not_swallowed():
    def action():
        raise KeyError("bug")

    with pytest.raises(KeyError):
        _runner.run_module(FakeModule(), action)


def test_missing_kubernetes_fails_before_the_action(monkeypatch):
    monkeypatch.setattr(_runner, "HAS_KUBERNETES", False)
    monkeypatch.setattr(
        _runner, "KUBERNETES_IMPORT_ERROR", "No module named 'kubernetes'"
    )
    calls = []
    module = run(lambda: calls.append(1) or {})
    assert calls == []
    assert module.failed["reason"] == "missing_library"
    assert module.failed["exception"] == "No module named 'kubernetes'"
    assert "kubernetes" in module.failed["msg"]


def test_missing_kubernetes_does_not_matter_when_not_needed(monkeypatch):
    monkeypatch.setattr(_runner, "HAS_KUBERNETES", False)
    module = run(lambda: {"changed": False}, needs_kubernetes=False)
    assert module.exited == {"changed": False} and module.failed is None


def test_warnings_of_the_result_are_emitted_before_exit():
    module = run(
        lambda: {"changed": True, "notes": ["first", "second"]},
        warnings=lambda result: result["notes"],
    )
    assert module.warnings == ["first", "second"]
    assert module.exited == {"changed": True, "notes": ["first", "second"]}


def test_no_warnings_on_failure():
    def action():
        raise ChaosError("boom", reason="api_error")

    module = run(action, warnings=lambda result: ["never"])
    assert module.warnings == [] and module.failed["reason"] == "api_error"


def run_real(args, action, **kwargs):
    """run_module with a real AnsibleModule: the JSON it prints and the exit code."""
    with patch_module_args(args), pytest.raises(SystemExit) as caught:
        module = AnsibleModule(argument_spec={"name": {"type": "str"}})
        _runner.run_module(module, action, **kwargs)
    return caught.value.code


def test_with_a_real_module_a_chaos_error_is_a_failed_result(capsys):
    def action():
        raise ChaosError("refused", reason="blast_radius", selected=3)

    code = run_real({"name": "x"}, action)
    result = json.loads(capsys.readouterr().out)
    assert code == 1 and result["failed"] is True
    assert result["msg"] == "refused" and result["reason"] == "blast_radius"
    assert result["selected"] == 3


def test_with_a_real_module_missing_kubernetes_is_missing_library(capsys, monkeypatch):
    monkeypatch.setattr(_runner, "HAS_KUBERNETES", False)
    code = run_real({"name": "x"}, lambda: {"changed": False})
    result = json.loads(capsys.readouterr().out)
    assert code == 1 and result["reason"] == "missing_library"
    assert "kubernetes" in result["msg"]


def test_with_a_real_module_warnings_go_through_module_warn(capsys, monkeypatch):
    # Patched: once controller code is imported (other tests do), ansible-core 2.19 sends
    # module warnings to the Display instead of the result.
    emitted = []
    monkeypatch.setattr(AnsibleModule, "warn", lambda self, w: emitted.append(w))
    code = run_real(
        {"name": "x"},
        lambda: {"changed": False, "notes": ["look", "again"]},
        warnings=lambda result: result["notes"],
    )
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and emitted == ["look", "again"]
    assert result["notes"] == ["look", "again"] and not result.get("failed")

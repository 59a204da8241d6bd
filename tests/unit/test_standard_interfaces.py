"""What a team installs reaches a cluster through standard interfaces only (issue 9).

No role, playbook, plugin default or non-lab inventory names the lab's own switches (the runtime
stand-in's `cli fault`, its `selftest`), the lab's alert journal, or a path under `lab/`; and no
default picks the runtime's own fault switches (runtime_cli, runtime_flag) as a method: a team
that names one gets it, nobody gets it by default.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
# The lab's own: the runtime stand-in's fault switches and self-test, the alert journal (its
# webhook on port 19095, alerts.jsonl), and any path into lab/.
FORBIDDEN = re.compile(r"cli fault|selftest|alert journal|alerts\.jsonl|19095|(?<![\w.-])lab/")
LAB_SWITCH_METHODS = {"runtime_cli", "runtime_flag"}
SHIPPED = [
    *sorted((REPO / "roles").rglob("*")),
    *sorted((REPO / "playbooks").rglob("*")),
    *sorted((REPO / "inventories" / "staging").rglob("*")),
    *sorted((REPO / "inventories" / "production").rglob("*")),
]
MODULES = sorted(p.stem for p in (REPO / "plugins" / "modules").glob("*.py") if p.stem != "__init__")


def mentions(text: str) -> list[str]:
    return [m.group(0) for m in FORBIDDEN.finditer(text)]


def test_the_pattern_catches_what_it_is_for():
    assert mentions("command: [./cli, fault, set]") == []  # argument lists are caught below, by value
    assert mentions("run `cli fault set x`") == ["cli fault"]
    assert mentions("[./cli, selftest]") == ["selftest"]
    assert mentions("http://127.0.0.1:19095/alerts") == ["19095"]
    assert mentions("see lab/runtime/cli.py") == ["lab/"]
    assert mentions("veritas-lab/ and .lab/kubeconfig") == []


@pytest.mark.parametrize("path", [p for p in SHIPPED if p.is_file()], ids=lambda p: str(p.relative_to(REPO)))
def test_no_shipped_role_playbook_or_inventory_names_the_lab(path):
    text = path.read_text(errors="replace")
    assert mentions(text) == [], f"{path.relative_to(REPO)} names the lab's own interfaces"
    if path.suffix in (".yml", ".yaml"):
        # An argument list such as [./cli, fault, set, ...] spells `cli fault` without the space.
        assert not re.search(r"cli['\"]?,\s*['\"]?fault\b", text), path


def _default_values(tree: object, key: str = "") -> list[tuple[str, object]]:
    """Every (key, value) in a role defaults tree, nested keys dotted."""
    if isinstance(tree, dict):
        out = []
        for k, v in tree.items():
            out += _default_values(v, f"{key}.{k}" if key else str(k))
        return out
    return [(key, tree)]


@pytest.mark.parametrize(
    "path", sorted((REPO / "roles").glob("*/defaults/main/*.yml")) + sorted((REPO / "roles").glob("*/defaults/main.yml")),
    ids=lambda p: str(p.relative_to(REPO)),
)
def test_no_role_default_picks_the_runtimes_own_switches(path):
    values = _default_values(yaml.safe_load(path.read_text()) or {})
    methods = {k: v for k, v in values if k.endswith("method") and v in LAB_SWITCH_METHODS}
    assert methods == {}, f"{path.relative_to(REPO)}: default methods {methods}"


def test_the_game_days_default_methods_are_standard_interfaces():
    defaults = {}
    for path in sorted((REPO / "roles" / "gameday" / "defaults" / "main").glob("*.yml")):
        defaults.update(dict(_default_values(yaml.safe_load(path.read_text()) or {})))
    assert defaults["gameday_http_fault.method"] == "envoy_runtime"
    assert defaults["gameday_metrics_outage_method"] == "network_policy"
    assert defaults["gameday_bluegreen_unhealthy_target_fault_method"] == "memory_limit"
    assert defaults["gameday_gpu_unavailable_switch_method"] == "capacity"
    assert "/v1/completions" in " ".join(defaults["gameday_health_probe_command"])


@pytest.mark.parametrize("name", MODULES)
def test_no_plugin_default_names_the_lab_or_picks_its_switches(name):
    module = importlib.import_module(f"ansible_collections.veritas.chaos.plugins.modules.{name}")
    options = yaml.safe_load(module.DOCUMENTATION).get("options") or {}

    def walk(opts, prefix=""):
        for option, spec in opts.items():
            yield f"{prefix}{option}", spec
            yield from walk(spec.get("suboptions") or {}, f"{prefix}{option}.")

    for option, spec in walk(options):
        default = spec.get("default")
        assert mentions(str(default)) == [], f"{name} {option} default {default!r}"
        if option == "method" or option.endswith(".method"):
            assert default not in LAB_SWITCH_METHODS, f"{name} {option} defaults to {default}"


def test_runtime_fault_names_a_standard_method_for_every_fault():
    from ansible_collections.veritas.chaos.plugins.module_utils._runtime_cli import (
        DEFAULT_METHODS,
        FAULTS,
        METHOD_FAULTS,
    )

    assert set(DEFAULT_METHODS) == set(FAULTS)
    for fault, method in DEFAULT_METHODS.items():
        assert method not in LAB_SWITCH_METHODS
        assert fault in METHOD_FAULTS[method]

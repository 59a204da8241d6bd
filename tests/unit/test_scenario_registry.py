# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The game-day registry (scenarios/registry.yml) and everything that must agree with it.

The first half checks the repository as it is; the second half breaks a copy of the registry
and shows that each check names the mismatch (so a green run means the checks looked).
"""

from __future__ import annotations

import shutil
from fnmatch import fnmatch
from typing import Any

import pytest
import yaml
from ansible_collections.veritas.chaos.scenarios import registry as reg

REPO = reg.REPO
if not (REPO / "molecule").is_dir() or not (REPO / "Makefile").is_file():
    # galaxy.yml's build_ignore leaves these out of the built collection.
    pytest.skip("needs the repository (molecule/, Makefile), not the built collection", allow_module_level=True)


@pytest.fixture(scope="module")
def registry() -> reg.Registry:
    return reg.load()


@pytest.fixture
def data() -> dict[str, Any]:
    """The registry's YAML, to break a copy of."""
    return yaml.safe_load(reg.REGISTRY_PATH.read_text(encoding="utf-8"))


def entry(data: dict[str, Any], scenario_id: str) -> dict[str, Any]:
    return next(s for s in data["scenarios"] if s["id"] == scenario_id)


def criterion(scenario: dict[str, Any], criterion_id: str) -> dict[str, Any]:
    return next(c for c in scenario["criteria"] if c["id"] == criterion_id)


# --- the repository agrees with the registry -------------------------------------------------


def test_one_entry_per_runbook_game_day(registry):
    assert [s.number for s in registry.scenarios] == list(range(1, len(registry.scenarios) + 1))
    assert {s.topology for s in registry.scenarios} == set(registry.topologies)


@pytest.mark.parametrize("name", list(reg.CHECKS))
def test_consistency(registry, name):
    assert reg.CHECKS[name](registry, REPO) == []


def test_runbook(registry):
    path = reg.runbook_path()
    if not path.is_file():
        pytest.skip(f"no runbook at {path} (VERITAS_RUNBOOK)")
    assert reg.check_runbook(registry, path.read_text(encoding="utf-8")) == []


def test_molecule_order(registry):
    names = reg.REPO.joinpath("molecule")
    listed = registry.molecule_scenarios()
    assert listed[-1] == "restore_after_interrupt"
    for s in registry.scenarios:
        assert listed.index(s.molecule.negative) == listed.index(s.molecule.gameday) + 1
    assert sorted(listed) == sorted(p.parent.name for p in names.glob("*/molecule.yml"))


def test_cli_molecule(capsys, registry):
    assert reg.main(["molecule"]) == 0
    assert capsys.readouterr().out.split() == registry.molecule_scenarios()


def test_cli_readme_table(capsys, registry):
    assert reg.main(["readme-table"]) == 0
    out = capsys.readouterr().out
    assert out == reg.readme_table(registry)
    for s in registry.scenarios:
        assert f"| {s.number} | {s.title} | `{s.playbook}` | {s.topology} | `{s.role}` | {len(s.criteria)} |" in out


def test_cli_check(capsys):
    assert reg.main(["check"]) == 0
    assert "0 mismatch(es)" in capsys.readouterr().out


def test_the_registry_ships_with_the_collection():
    """galaxy.yml's build_ignore leaves scenarios/ in the built collection."""
    ignores = yaml.safe_load((REPO / "galaxy.yml").read_text(encoding="utf-8")).get("build_ignore") or []
    for path in ("scenarios/registry.yml", "scenarios/registry.py"):
        parts = path.split("/")
        assert not any(fnmatch("/".join(parts[:d]), p) for p in ignores for d in range(1, len(parts) + 1)), path


# --- validation names the entry and field at fault ------------------------------------------


def invalid(data: dict[str, Any]) -> str:
    with pytest.raises(reg.RegistryError) as caught:
        reg.from_data(data, REPO)
    return str(caught.value)


def test_unknown_field(data):
    entry(data, "metrics_outage")["owner"] = "sre"
    assert "scenarios[3] (metrics_outage): unknown field 'owner'" in invalid(data)


def test_missing_field(data):
    del entry(data, "kv_cache_corruption")["role"]
    assert "scenarios[4] (kv_cache_corruption): missing field 'role'" in invalid(data)


def test_missing_field_of_a_criterion(data):
    del criterion(entry(data, "canary_error_rate"), "rollback_within_3m")["comparison"]
    assert "scenarios[1] (canary_error_rate).criteria[1] (rollback_within_3m): missing field 'comparison'" in invalid(data)


def test_wrong_type(data):
    entry(data, "canary_error_rate")["number"] = "2"
    assert "scenarios[1] (canary_error_rate).number: must be an integer" in invalid(data)


def test_duplicate_id(data):
    entry(data, "kv_cache_corruption")["id"] = "metrics_outage"
    assert "id 'metrics_outage' is used by more than one entry" in invalid(data)


def test_duplicate_key_in_the_file():
    text = reg.REGISTRY_PATH.read_text(encoding="utf-8").replace("    number: 4\n", "    number: 4\n    number: 5\n", 1)
    with pytest.raises(reg.RegistryError, match="key 'number' appears twice"):
        reg.load_text(text, REPO)


def test_playbook_that_does_not_exist(data):
    entry(data, "gpu_unavailable_switch")["playbook"] = "gameday-gpu.yml"
    assert "scenarios[5] (gpu_unavailable_switch).playbook: playbooks/gameday-gpu.yml does not exist" in invalid(data)


def test_role_that_does_not_exist(data):
    entry(data, "canary_pod_termination")["role"] = "gameday_canary_kill"
    assert "(canary_pod_termination).role: roles/gameday_canary_kill/tasks/main.yml does not exist" in invalid(data)


def test_unknown_topology(data):
    entry(data, "metrics_outage")["topology"] = "shadow"
    assert "(metrics_outage).topology: 'shadow' is not one of canary, bluegreen" in invalid(data)


def test_expected_failure_that_is_no_criterion(data):
    entry(data, "kv_cache_corruption")["molecule"]["expect_failed"] = ["warmup_restores_hitrate"]
    assert "(kv_cache_corruption).molecule.expect_failed: 'warmup_restores_hitrate' is not one of its criteria" in invalid(data)


def test_section_that_is_not_number_and_title(data):
    entry(data, "canary_error_rate")["runbook_section"] = "Scenario 3: Elevated Error Rate Injection"
    assert "(canary_error_rate).runbook_section" in invalid(data)


def test_bad_comparison(data):
    criterion(entry(data, "metrics_outage"), "clean_recovery")["comparison"] = "=<"
    assert "criteria[3] (clean_recovery).comparison: '=<' is not one of" in invalid(data)


def test_tag_of_two_game_days(data):
    entry(data, "kv_cache_corruption")["tags"].append("scenario3")
    assert "topologies.bluegreen: tag 'scenario3' would select more than one of its game days" in invalid(data)


# --- each consistency check catches a mismatch -----------------------------------------------


def broken(data: dict[str, Any], check) -> list[str]:
    return check(reg.from_data(data, REPO), REPO)


def test_playbook_of_another_topology(data):
    entry(data, "metrics_outage")["topology"] = "bluegreen"
    found = broken(data, reg.check_playbooks)
    assert any("gameday-metrics-outage.yml: gameday_preflight_topology is 'canary', the registry says 'bluegreen'" in p for p in found)


def test_playbook_with_another_role(data):
    entry(data, "canary_error_rate")["playbook"] = "gameday-canary-pod-termination.yml"
    found = broken(data, reg.check_playbooks)
    assert any("does not apply role veritas.chaos.gameday_canary_error_rate" in p for p in found)
    assert any("also applies gameday_canary_pod_termination" in p for p in found)


def test_alerts_the_steady_state_does_not_wait_out(data):
    entry(data, "gpu_unavailable_switch")["alerts"] = ["VeritasGPUMissing"]
    found = broken(data, reg.check_playbooks)
    assert any("waits out alerts ['VeritasGPUUnavailable'], the registry says ['VeritasGPUMissing']" in p for p in found)
    assert any("no alert rule VeritasGPUMissing" in p for p in broken(data, reg.check_lab_alerts))


def test_combined_playbook_tags(data):
    entry(data, "canary_error_rate")["tags"] = ["scenario2", "error_rate"]
    found = broken(data, reg.check_combined_playbooks)
    assert found == [
        (
            "playbooks/gameday-canary.yml: the import of gameday-canary-error-rate.yml has tags "
            "['scenario2', 'canary_error_rate'], the registry says ['scenario2', 'error_rate']"
        )
    ]


def test_combined_playbook_order(data):
    data["scenarios"].insert(0, data["scenarios"].pop(3))  # metrics_outage first
    found = broken(data, reg.check_combined_playbooks)
    assert any("gameday-canary.yml imports" in p for p in found)


def test_criterion_missing_from_the_role(data):
    entry(data, "canary_pod_termination")["criteria"].append(
        {"id": "rollback_within_30s", "runbook": "Rollback triggers within 30 seconds", "comparison": "<=", "unit": "s", "bound": 30}
    )
    found = broken(data, reg.check_role_criteria)
    assert found == [
        "canary_pod_termination: criterion 'rollback_within_30s' is in the registry but not in roles/gameday_canary_pod_termination/tasks"
    ]


def test_role_criterion_missing_from_the_registry(data):
    scenario = entry(data, "kv_cache_corruption")
    scenario["criteria"] = [c for c in scenario["criteria"] if c["id"] != "no_wrong_answers"]
    found = broken(data, reg.check_role_criteria)
    assert found == [
        "kv_cache_corruption: criterion 'no_wrong_answers' of roles/gameday_kv_cache_corruption/tasks is not in the registry"
    ]


def test_report_criterion_missing_from_the_registry(data):
    data["report_criteria"] = []
    found = broken(data, reg.check_role_criteria)
    assert found == ["report: criterion 'steady_state_restored' of roles/gameday_report/tasks is not in the registry"]


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("comparison", "<", "comparison is '<=', the registry says '<'"),
        ("unit", "ms", "unit is 's', the registry says 'ms'"),
        ("runbook", "Alert fires within 2 minutes", "description is 'Alert fires within 1 minute'"),
        ("bound", "gameday_canary_pod_termination_alert_seconds", "bound '{{ gameday_canary_pod_termination_alert_deadline_seconds"),
    ],
)
def test_criterion_fields(data, field, value, expected):
    criterion(entry(data, "canary_pod_termination"), "alert_within_1m")[field] = value
    found = broken(data, reg.check_role_criteria)
    assert any(expected in p for p in found), found


def test_literal_bound(data):
    criterion(entry(data, "bluegreen_unhealthy_target"), "zero_traffic_to_unhealthy")["bound"] = 1
    assert any("bound is 0, the registry says 1" in p for p in broken(data, reg.check_role_criteria))


def test_criteria_order(data):
    scenario = entry(data, "metrics_outage")
    scenario["criteria"].reverse()
    assert any("criteria order" in p for p in broken(data, reg.check_role_criteria))


def test_report_title(data):
    scenario = entry(data, "kv_cache_corruption")
    scenario["title"] = "KV Cache Corruption"
    scenario["runbook_section"] = "Scenario 5: KV Cache Corruption"
    found = broken(data, reg.check_reports)
    assert found == [
        (
            "kv_cache_corruption: roles/gameday_kv_cache_corruption titles its report "
            "'Scenario 5: KV-Cache Corruption', not 'Scenario 5: KV Cache Corruption'"
        )
    ]
    assert any("differs from `registry.py readme-table`" in p for p in broken(data, reg.check_readme))


@pytest.mark.parametrize(
    ("scenario_id", "options", "expected"),
    [
        ("canary_error_rate", {"percent": 30}, "runtime_fault percent is 20, the registry says 30"),
        ("canary_error_rate", {"method": "envoy_runtime"}, "method is 'runtime_cli', the registry says 'envoy_runtime'"),
        ("gpu_unavailable_switch", {"method": "taint"}, "gpu_fault method is 'runtime_flag', the registry says 'taint'"),
        ("canary_pod_termination", {"force": False}, "pod_chaos force is True, the registry says False"),
    ],
)
def test_fault_method(data, scenario_id, options, expected):
    entry(data, scenario_id)["fault"]["options"].update(options)
    assert any(expected in p for p in broken(data, reg.check_faults))


def test_fault_module(data):
    entry(data, "metrics_outage")["fault"]["module"] = "veritas.chaos.gpu_fault"
    assert broken(data, reg.check_faults) == ["metrics_outage: roles/gameday_metrics_outage has no task that injects with veritas.chaos.gpu_fault"]


def test_molecule_scenario_that_does_not_exist(data):
    entry(data, "gpu_unavailable_switch")["molecule"]["negative"] = "gpu_unavailable_switch_negative"
    found = broken(data, reg.check_molecule)
    assert "gpu_unavailable_switch: molecule/gpu_unavailable_switch_negative/molecule.yml does not exist" in found
    assert "molecule/gpu_unavailable_negative is in no registry entry (nor molecule_extra)" in found


def test_molecule_expectation(data):
    entry(data, "canary_error_rate")["molecule"]["expect_failed"] = ["error_rate_detected_within_1m"]
    found = broken(data, reg.check_molecule)
    assert found == [
        (
            "canary_error_rate: molecule/canary_error_rate_negative expects ['rollback_within_3m'] to fail, "
            "the registry says ['error_rate_detected_within_1m']"
        )
    ]


def test_molecule_playbook(data, tmp_path):
    """A molecule scenario that runs another playbook than the registry's (in a copy of molecule/)."""
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("playbooks", "roles", "plugins"):
        (root / name).symlink_to(REPO / name)
    shutil.copytree(REPO / "molecule", root / "molecule", symlinks=True)
    vars_file = root / "molecule" / "kv_cache_corruption" / "vars" / "main.yml"
    vars_file.write_text(vars_file.read_text(encoding="utf-8").replace("gameday-kv-cache-corruption.yml", "gameday-gpu-unavailable.yml"))
    converge = root / "molecule" / "metrics_outage" / "converge.yml"
    converge.write_text(converge.read_text(encoding="utf-8").replace("gameday-metrics-outage.yml", "gameday-canary-error-rate.yml"))
    found = reg.check_molecule(reg.from_data(data, root), root)
    assert found == [
        (
            "metrics_outage: molecule/metrics_outage/converge.yml imports ['gameday-canary-error-rate.yml'], "
            "the registry says ['gameday-metrics-outage.yml']"
        ),
        (
            "kv_cache_corruption: molecule/kv_cache_corruption/vars/main.yml sets molecule_gameday_playbook: "
            "'gameday-gpu-unavailable.yml', the registry says 'gameday-kv-cache-corruption.yml'"
        ),
    ]


def test_run_sh(tmp_path, registry):
    (tmp_path / "molecule").mkdir()
    run_sh = tmp_path / "molecule" / "run.sh"
    names = registry.molecule_scenarios()
    run_sh.write_text("SCENARIOS=(\n  " + " ".join(names) + "\n)\n")
    assert reg.check_run_sh(registry, tmp_path) == []
    run_sh.write_text("SCENARIOS=(\n  " + " ".join(reversed(names)) + "\n)\n")
    assert reg.check_run_sh(registry, tmp_path)[0].startswith("molecule/run.sh lists")
    run_sh.write_text('mapfile -t SCENARIOS < <("$REPO/.venv/bin/python" "$REPO/scenarios/registry.py" molecule)\n')
    assert reg.check_run_sh(registry, tmp_path) == []


def test_readme_without_markers(tmp_path, registry):
    (tmp_path / "README.md").write_text("# veritas.chaos\n")
    assert "README.md has no generated game-day table" in reg.check_readme(registry, tmp_path)[0]


def test_makefile_target(data):
    data["topologies"]["canary"]["make_target"] = "gameday"
    assert broken(data, reg.check_makefile) == ["topologies.canary: make gameday does not run playbooks/gameday-canary.yml"]


def test_runbook_lines(registry):
    text = "\n".join(
        [f"#### {s.runbook_section}\n" + "\n".join(f"- [ ] {c.runbook}" for c in s.criteria) for s in registry.scenarios]
    )
    assert reg.check_runbook(registry, text) == []
    changed = text.replace("- [ ] Alert fires within 1 minute", "- [ ] Alert fires within 1 minute\n- [ ] Pager rings")
    changed = changed.replace("Corruption detected on read", "Corruption detected on write")
    changed += "\n#### Scenario 7: Region Failover\n- [ ] Traffic moves\n"
    assert reg.check_runbook(registry, changed) == [
        "the runbook's 'Scenario 7: Region Failover' is in no registry entry",
        "canary_pod_termination: the runbook's success criterion 'Pager rings' is measured by no criterion of the registry",
        (
            "kv_cache_corruption: criterion corruption_detected_on_read's runbook line 'Corruption detected on read' "
            "is not in the runbook's 'Scenario 5: KV-Cache Corruption'"
        ),
        "kv_cache_corruption: the runbook's success criterion 'Corruption detected on write' is measured by no criterion of the registry",
    ]


def test_resolve():
    defaults = {"a": [1], "b": "x"}
    assert reg.resolve("{{ a }}", defaults) == [1]
    assert reg.resolve("{{ [b] }}", defaults) == ["x"]
    assert reg.resolve("{{ b | string }}", defaults) == "x"
    assert reg.resolve([], defaults) == []
    for template in ("{{ c }}", "{{ a if b else omit }}", "{{ [a }}"):
        with pytest.raises(reg.Unresolved):
            reg.resolve(template, defaults)

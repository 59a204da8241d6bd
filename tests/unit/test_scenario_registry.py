# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The game-day registry (scenarios/registry.yml) and everything that must agree with it.

The first part checks the repository as it is. The rest works on a small collection written
under tmp_path (two scenarios of the engine, roles/gameday): it passes every check, and each
test breaks one thing in it to show that validation or a check names the mismatch (so a green
run on the repository means the checks looked).
"""

from __future__ import annotations

import copy
import textwrap
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_collections.veritas.chaos.scenarios import registry as reg

REPO = reg.REPO
if not (REPO / "molecule").is_dir() or not (REPO / "Makefile").is_file():
    # galaxy.yml's build_ignore leaves these out of the built collection.
    pytest.skip("needs the repository (molecule/, Makefile), not the built collection", allow_module_level=True)


# --- the repository agrees with the registry -------------------------------------------------


@pytest.fixture(scope="module")
def registry() -> reg.Registry:
    return reg.load()


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


def test_molecule_runs_of_the_repository(registry):
    runs = registry.molecule_runs()
    assert runs[-len(registry.molecule_extra):] == list(registry.molecule_extra) == ["restore_after_interrupt"]
    for s in registry.scenarios:
        assert runs.index(s.negative_run) == runs.index(s.id) + 1


def test_cli_check(capsys):
    assert reg.main(["check"]) == 0
    assert "0 mismatch(es)" in capsys.readouterr().out


def test_the_registry_ships_with_the_collection():
    """galaxy.yml's build_ignore leaves scenarios/ and the engine's scenarios in the built collection."""
    ignores = yaml.safe_load((REPO / "galaxy.yml").read_text(encoding="utf-8")).get("build_ignore") or []
    for path in ("scenarios/registry.yml", "scenarios/registry.py", "roles/gameday/scenarios/README.md"):
        parts = path.split("/")
        assert not any(fnmatch("/".join(parts[:d]), p) for p in ignores for d in range(1, len(parts) + 1)), path


# --- a small collection that passes every check ----------------------------------------------

REGISTRY: dict[str, Any] = {
    "topologies": {
        "canary": {"selector": "app=veritas", "combined_playbook": "gameday-canary.yml", "make_target": "gameday-canary"},
        "bluegreen": {"selector": "app=veritas-runtime", "combined_playbook": "gameday-bluegreen.yml", "make_target": "gameday"},
    },
    "report_criteria": [
        {"id": "steady_state_restored", "description": "System restored to steady state", "comparison": "==", "bound": True},
    ],
    "molecule_extra": ["restore_after_interrupt"],
    "scenarios": [
        {
            "id": "pod_kill",
            "number": 1,
            "title": "Pod Kill",
            "runbook_section": "Scenario 1: Pod Kill",
            "topology": "bluegreen",
            "playbook": "gameday-pod-kill.yml",
            "tags": ["scenario1", "pod_kill"],
            "molecule": {
                "sabotage": "guard off",
                "sabotage_vars": {"gameday_pod_kill_guard_enabled": False},
                "expect_failed": ["traffic_zero_within_10s"],
            },
            "alerts": ["PodLost"],
            "fault": {"module": "veritas.chaos.pod_chaos", "options": {"percent": 100, "force": True}, "summary": "every pod, forced"},
            "criteria": [
                {
                    "id": "traffic_zero_within_10s", "runbook": "Traffic drops to 0% within 10 seconds",
                    "comparison": "<=", "unit": "s", "bound": "gameday_pod_kill_deadline_seconds",
                },
                {"id": "no_5xx", "runbook": "No 5xx errors", "comparison": "==", "unit": "requests", "bound": 0},
                {"id": "retried", "runbook": "Retry after the fix", "comparison": ">=", "bound": 0.99, "optional": True},
            ],
        },
        {
            "id": "error_rate",
            "number": 2,
            "title": "Error Rate",
            "runbook_section": "Scenario 2: Error Rate",
            "topology": "canary",
            "playbook": "gameday-error-rate.yml",
            "tags": ["scenario2", "error_rate"],
            "molecule": {
                "sabotage": "no rollback, deadline 30 s",
                "sabotage_vars": {"gameday_error_rate_guard_enabled": False, "gameday_error_rate_rollback_deadline_seconds": 30},
                "expect_failed": ["rollback_within_3m"],
            },
            "alerts": ["ErrorRateHigh"],
            "fault": {"module": "veritas.chaos.runtime_fault", "options": {"fault": "error_rate", "percent": 20}, "summary": "20% 500s"},
            "criteria": [
                {
                    "id": "rollback_within_3m", "runbook": "Rollback triggers within 3 minutes",
                    "comparison": "<=", "unit": "s", "bound": "gameday_error_rate_rollback_deadline_seconds",
                },
                {
                    "id": "baseline", "runbook": "Error rate returns to baseline",
                    "comparison": "<=", "bound": "the steady state's error ratio + gameday_error_rate_tolerance",
                },
            ],
        },
    ],
}


def module_source(name: str, options: dict[str, Any]) -> str:
    doc = yaml.safe_dump({"module": name, "options": options})
    return f'DOCUMENTATION = r"""\n{doc}"""\n'


FILES: dict[str, str] = {
    "plugins/modules/pod_chaos.py": module_source(
        "pod_chaos", {"percent": {"type": "int"}, "force": {"type": "bool", "default": False}}
    ),
    "plugins/modules/runtime_fault.py": module_source(
        "runtime_fault", {"fault": {"type": "str"}, "percent": {"type": "int", "default": 20}, "state": {"default": "present"}}
    ),
    "playbooks/gameday.yml": """\
        - name: Game day
          hosts: "{{ veritas_gameday_hosts | default('localhost') }}"
          roles:
            - role: veritas.chaos.gameday
        """,
    "playbooks/gameday-pod-kill.yml": """\
        ---
        - name: Game day | pod kill
          ansible.builtin.import_playbook: gameday.yml
          vars: {gameday_scenario: pod_kill}
          tags: [scenario1, pod_kill]
        """,
    "playbooks/gameday-error-rate.yml": """\
        - name: Game day | error rate
          ansible.builtin.import_playbook: gameday.yml
          vars:
            gameday_scenario: error_rate
          tags: [scenario2, error_rate]
        """,
    "playbooks/gameday-canary.yml": """\
        - name: Canary | scenario 2
          ansible.builtin.import_playbook: gameday-error-rate.yml
          tags: [scenario2, error_rate]
        """,
    "playbooks/gameday-bluegreen.yml": """\
        - name: Blue-green | scenario 1
          ansible.builtin.import_playbook: gameday-pod-kill.yml
          tags: [scenario1, pod_kill]
        """,
    # Scenario 1: the fault in inject.yml, inside a block; the measures use !unsafe and a template.
    "roles/gameday/scenarios/pod_kill/inject.yml": """\
        - name: Scenario 1 | note the time
          ansible.builtin.set_fact:
            gameday_injected_at: "{{ now(utc=true).timestamp() }}"
        - name: Scenario 1 | the kill
          block:
            - name: Scenario 1 | kill every pod, forced
              veritas.chaos.pod_chaos:
                namespace: "{{ gameday_namespace }}"
                percent: "{{ gameday_pod_kill_percent }}"
                force: true
        """,
    "roles/gameday/scenarios/pod_kill/observe.yml": """\
        - name: Scenario 1 | wait
          ansible.builtin.pause: {seconds: 1}
        """,
    "roles/gameday/scenarios/pod_kill/measure.yml": """\
        - name: Scenario 1 | the criteria's measures
          ansible.builtin.set_fact:
            gameday_measures:
              traffic_zero_within_10s:
                measured: "{{ s1_last }}"
                evidence: {query: !unsafe "{{ raw }}"}
              no_5xx: "{{ gameday_alert.measure }}"
            gameday_notes: []
        """,
    "roles/gameday/defaults/main/pod_kill.yml": """\
        gameday_pod_kill_percent: 100
        gameday_pod_kill_deadline_seconds: 10
        gameday_pod_kill_guard_enabled: true
        """,
    # Scenario 2: inject.yml includes a helper; the restore and a clean-up helper remove the
    # fault (state absent), and clear.yml sorts before fault.yml.
    "roles/gameday/scenarios/error_rate/inject.yml": """\
        - name: Scenario 2 | inject
          ansible.builtin.include_tasks: fault.yml
        """,
    "roles/gameday/scenarios/error_rate/clear.yml": """\
        - name: Scenario 2 | clear
          veritas.chaos.runtime_fault: {fault: error_rate, percent: 99, state: absent}
        """,
    "roles/gameday/scenarios/error_rate/fault.yml": """\
        - name: Scenario 2 | 20% HTTP 500
          veritas.chaos.runtime_fault:
            fault: error_rate
            status_code: 500
        """,
    "roles/gameday/scenarios/error_rate/observe.yml": "[]\n",
    "roles/gameday/scenarios/error_rate/measure.yml": """\
        - name: Scenario 2 | the criteria's measures
          ansible.builtin.set_fact:
            gameday_measures:
              rollback_within_3m: {measured: "{{ s2_rollback_seconds }}"}
              baseline: {measured: "{{ s2_error_ratio }}", bound: "{{ s2_bound }}"}
        """,
    "roles/gameday/scenarios/error_rate/restore.yml": """\
        - name: Scenario 2 | remove the fault
          veritas.chaos.runtime_fault: {fault: error_rate, state: absent}
        """,
    "roles/gameday/defaults/main/error_rate.yml": """\
        gameday_error_rate_rollback_deadline_seconds: 180
        gameday_error_rate_guard_enabled: true
        gameday_error_rate_tolerance: 0.01
        """,
    "roles/gameday_report/tasks/main.yml": """\
        - name: Judge
          vars:
            __restore: {id: steady_state_restored, description: System restored to steady state, comparison: "==", bound: true}
          ansible.builtin.debug: {var: __restore}
        """,
    "molecule/gameday/molecule.yml": "scenario: {name: gameday}\n",
    "molecule/restore_after_interrupt/molecule.yml": "scenario: {name: restore_after_interrupt}\n",
    "molecule/run.sh": 'mapfile -t SCENARIOS < <("$REPO/.venv/bin/python" "$REPO/scenarios/registry.py" molecule)\n',
    "Makefile": """\
        gameday-canary: venv
        \tansible-playbook playbooks/gameday-canary.yml
        gameday: venv
        \tansible-playbook playbooks/gameday-bluegreen.yml
        """,
    "extensions/prometheus/veritas-rules.yml": """\
        groups:
          - name: alerts
            rules:
              - {alert: PodLost, expr: up == 0}
              - {alert: ErrorRateHigh, expr: errors > 0.05}
        """,
}


def write(root: Path, path: str, text: str) -> None:
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(textwrap.dedent(text), encoding="utf-8")


def replace(root: Path, path: str, old: str, new: str) -> None:
    text = (root / path).read_text(encoding="utf-8")
    assert old in text, f"{old!r} is not in {path}"
    (root / path).write_text(text.replace(old, new), encoding="utf-8")


@pytest.fixture
def data() -> dict[str, Any]:
    """The small collection's registry, to break a copy of."""
    return copy.deepcopy(REGISTRY)


@pytest.fixture
def root(tmp_path: Path, data: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Path:
    """The small collection: every file the checks read, agreeing with its registry."""
    monkeypatch.setenv("VERITAS_RUNBOOK", str(tmp_path / "no-runbook.md"))
    for path, text in FILES.items():
        write(tmp_path, path, text)
    write(tmp_path, "scenarios/registry.yml", yaml.safe_dump(data, sort_keys=False))
    table = reg.readme_table(reg.from_data(data, tmp_path))
    write(tmp_path, "README.md", f"# the collection\n\n{reg.README_BEGIN}\n\n{table}\n{reg.README_END}\n")
    sabotage = reg.sabotage_table(reg.from_data(data, tmp_path))
    write(tmp_path, "molecule/README.md", f"# molecule\n\n{reg.SABOTAGE_BEGIN}\n\n{sabotage}\n{reg.SABOTAGE_END}\n")
    return tmp_path


def entry(data: dict[str, Any], scenario_id: str) -> dict[str, Any]:
    return next(s for s in data["scenarios"] if s["id"] == scenario_id)


def criterion(scenario: dict[str, Any], criterion_id: str) -> dict[str, Any]:
    return next(c for c in scenario["criteria"] if c["id"] == criterion_id)


def found(data: dict[str, Any], root: Path, check) -> list[str]:
    return check(reg.from_data(data, root), root)


@pytest.mark.parametrize("name", list(reg.CHECKS))
def test_the_small_collection_passes(data, root, name):
    assert reg.CHECKS[name](reg.from_data(data, root), root) == []


def test_cli_check_of_the_small_collection(capsys, root):
    assert reg.main(["check"], root / "scenarios" / "registry.yml", root) == 0
    out = capsys.readouterr().out
    assert "scenarios: 2 game days, 5 criteria (+ 1 each from the report); 0 mismatch(es); runbook not found" in out


# --- validation names the entry and field at fault ------------------------------------------


def invalid(data: dict[str, Any], root: Path) -> str:
    with pytest.raises(reg.RegistryError) as caught:
        reg.from_data(data, root)
    return str(caught.value)


def test_schema(data, root):
    scenario = reg.from_data(data, root).scenarios[0]
    assert scenario.molecule == reg.Molecule(
        sabotage="guard off", sabotage_vars={"gameday_pod_kill_guard_enabled": False}, expect_failed=("traffic_zero_within_10s",)
    )
    assert [c.optional for c in scenario.criteria] == [False, False, True]
    assert (scenario.folder, scenario.defaults_file) == ("roles/gameday/scenarios/pod_kill", "roles/gameday/defaults/main/pod_kill.yml")


def test_role_is_no_field_any_more(data, root):
    entry(data, "pod_kill")["role"] = "gameday_pod_kill"
    assert "scenarios[0] (pod_kill): unknown field 'role'" in invalid(data, root)


@pytest.mark.parametrize("field", ["gameday", "negative"])
def test_molecule_scenario_names_are_no_fields_any_more(data, root, field):
    entry(data, "error_rate")["molecule"][field] = "error_rate"
    assert f"scenarios[1] (error_rate).molecule: unknown field {field!r}" in invalid(data, root)


def test_missing_sabotage_vars(data, root):
    del entry(data, "pod_kill")["molecule"]["sabotage_vars"]
    assert "scenarios[0] (pod_kill).molecule: missing field 'sabotage_vars'" in invalid(data, root)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({}, "(pod_kill).molecule.sabotage_vars: must set at least one variable"),
        (["gameday_pod_kill_guard_enabled"], "(pod_kill).molecule.sabotage_vars: must be a mapping"),
        ("guard off", "(pod_kill).molecule.sabotage_vars: must be a mapping"),
    ],
)
def test_sabotage_vars_is_a_mapping_with_a_variable(data, root, value, expected):
    entry(data, "pod_kill")["molecule"]["sabotage_vars"] = value
    assert expected in invalid(data, root)


def test_sabotage_is_a_line_of_text(data, root):
    entry(data, "pod_kill")["molecule"]["sabotage"] = {"gameday_pod_kill_guard_enabled": False}
    assert "(pod_kill).molecule.sabotage: must be a non-empty string" in invalid(data, root)


def test_optional_is_a_boolean(data, root):
    criterion(entry(data, "pod_kill"), "retried")["optional"] = "yes"
    assert "scenarios[0] (pod_kill).criteria[2] (retried).optional: must be a boolean (true or false), got 'yes'" in invalid(data, root)


def test_expected_failure_may_be_an_optional_criterion(data, root):
    # The negative run asserts the criterion is in its report and failed: an unmeasured one fails it.
    entry(data, "pod_kill")["molecule"]["expect_failed"] = ["retried"]
    scenario = next(s for s in reg.from_data(data, root).scenarios if s.id == "pod_kill")
    assert scenario.molecule.expect_failed == ("retried",)


def test_expected_failure_that_is_no_criterion(data, root):
    entry(data, "error_rate")["molecule"]["expect_failed"] = ["rollback_within_3"]
    assert "(error_rate).molecule.expect_failed: 'rollback_within_3' is not one of its criteria" in invalid(data, root)


def test_no_expected_failure(data, root):
    entry(data, "error_rate")["molecule"]["expect_failed"] = []
    assert "(error_rate).molecule.expect_failed: must name at least one criterion" in invalid(data, root)


@pytest.mark.parametrize(
    "path",
    [
        "roles/gameday/scenarios/pod_kill/inject.yml",
        "roles/gameday/scenarios/pod_kill/observe.yml",
        "roles/gameday/scenarios/pod_kill/measure.yml",
        "roles/gameday/defaults/main/pod_kill.yml",
    ],
)
def test_scenario_file_that_does_not_exist(data, root, path):
    (root / path).unlink()
    assert f"scenarios[0] (pod_kill).id: {path} does not exist" in invalid(data, root)


def test_restore_is_optional(data, root):
    (root / "roles/gameday/scenarios/error_rate/restore.yml").unlink()
    reg.from_data(data, root)


def test_scenario_without_a_folder(data, root):
    entry(data, "pod_kill")["id"] = "pod_kill_forced"
    entry(data, "pod_kill_forced")["tags"] = ["scenario1", "pod_kill_forced"]
    assert "scenarios[0] (pod_kill_forced).id: roles/gameday/scenarios/pod_kill_forced/inject.yml does not exist" in invalid(data, root)


@pytest.mark.parametrize("field", ["description", "runbook"])
def test_criterion_words_are_plain_text(data, root, field):
    criterion(entry(data, "pod_kill"), "no_5xx")[field] = "No 5xx errors on {{ target }}"
    assert f"(pod_kill).criteria[1] (no_5xx).{field}: must be plain text" in invalid(data, root)


def test_unknown_field(data, root):
    entry(data, "error_rate")["owner"] = "sre"
    assert "scenarios[1] (error_rate): unknown field 'owner'" in invalid(data, root)


def test_missing_field_of_a_criterion(data, root):
    del criterion(entry(data, "error_rate"), "baseline")["comparison"]
    assert "scenarios[1] (error_rate).criteria[1] (baseline): missing field 'comparison'" in invalid(data, root)


def test_wrong_type(data, root):
    entry(data, "error_rate")["number"] = "2"
    assert "scenarios[1] (error_rate).number: must be an integer" in invalid(data, root)


def test_duplicate_id(data, root):
    entry(data, "error_rate")["id"] = "pod_kill"
    assert "id 'pod_kill' is used by more than one entry" in invalid(data, root)


def test_run_named_twice(data, root):
    data["molecule_extra"].append("pod_kill_negative")
    assert "molecule run 'pod_kill_negative' is named by more than one entry" in invalid(data, root)


def test_duplicate_key_in_the_file(root):
    text = (root / "scenarios" / "registry.yml").read_text(encoding="utf-8").replace("  number: 2\n", "  number: 2\n  number: 3\n", 1)
    with pytest.raises(reg.RegistryError, match="key 'number' appears twice"):
        reg.load_text(text, root)


def test_playbook_that_does_not_exist(data, root):
    entry(data, "error_rate")["playbook"] = "gameday-errors.yml"
    assert "scenarios[1] (error_rate).playbook: playbooks/gameday-errors.yml does not exist" in invalid(data, root)


def test_unknown_topology(data, root):
    entry(data, "error_rate")["topology"] = "shadow"
    assert "(error_rate).topology: 'shadow' is not one of canary, bluegreen" in invalid(data, root)


def test_fault_module_that_does_not_exist(data, root):
    entry(data, "error_rate")["fault"]["module"] = "veritas.chaos.http_fault"
    assert "(error_rate).fault.module: 'veritas.chaos.http_fault' is not a module of veritas.chaos" in invalid(data, root)


def test_section_that_is_not_number_and_title(data, root):
    entry(data, "error_rate")["runbook_section"] = "Scenario 3: Error Rate"
    assert "(error_rate).runbook_section" in invalid(data, root)


def test_bad_comparison(data, root):
    criterion(entry(data, "error_rate"), "baseline")["comparison"] = "=<"
    assert "criteria[1] (baseline).comparison: '=<' is not one of" in invalid(data, root)


def test_tag_of_two_game_days(data, root):
    entry(data, "error_rate")["topology"] = "bluegreen"
    entry(data, "error_rate")["tags"].append("scenario1")
    assert "topologies.bluegreen: tag 'scenario1' would select more than one of its game days" in invalid(data, root)


# --- molecule: one scenario, two runs per game day ------------------------------------------


def test_molecule_runs(data, root):
    """Topologies in the registry's order (canary first), each game day then its negative run."""
    runs = reg.from_data(data, root).molecule_runs()
    assert runs == ["error_rate", "error_rate_negative", "pod_kill", "pod_kill_negative", "restore_after_interrupt"]


COPY_VARS = {"veritas_namespace": "lab-copy", "gameday_traffic": {"backend": "httproute", "name": "route"}}


def with_copy(data, root, copy=None):
    data["topology_copies"] = {"canary_route": copy or {"of": "canary", "game_days": ["error_rate"]}}
    write(root, "molecule/shared/vars/copies/canary_route.yml", yaml.safe_dump(COPY_VARS))
    return data


def test_a_topology_copy_plays_its_game_days_after_the_topologys_runs(data, root):
    registry = reg.from_data(with_copy(data, root), root)
    assert registry.molecule_runs() == [
        "error_rate", "error_rate_negative", "error_rate_on_canary_route",
        "pod_kill", "pod_kill_negative", "restore_after_interrupt",
    ]
    values = reg.molecule_vars(registry, "error_rate_on_canary_route", root)
    assert values["gameday_scenario"] == "error_rate" and values["molecule_copy"] == "canary_route"
    assert {k: values[k] for k in COPY_VARS} == COPY_VARS
    assert "molecule_negative" not in values
    assert "molecule_copy" not in reg.molecule_vars(registry, "error_rate", root)


@pytest.mark.parametrize(
    "copy, expected",
    [
        ({"of": "nowhere", "game_days": ["error_rate"]}, "topology_copies.canary_route.of: 'nowhere' is not one of"),
        ({"of": "canary", "game_days": ["pod_kill"]}, "'pod_kill' is no game day of the canary topology"),
        ({"of": "canary"}, "topology_copies.canary_route"),
    ],
)
def test_a_topology_copy_names_its_topology_and_that_topologys_game_days(data, root, copy, expected):
    assert expected in invalid(with_copy(data, root, copy), root)


def test_a_topology_copy_needs_its_variables_file(data, root):
    data["topology_copies"] = {"canary_other": {"of": "canary", "game_days": ["error_rate"]}}
    assert "molecule/shared/vars/copies/canary_other.yml does not exist" in invalid(data, root)


def test_molecule_vars_of_a_game_day(data, root):
    assert reg.molecule_vars(reg.from_data(data, root), "pod_kill") == {
        "gameday_scenario": "pod_kill",
        "molecule_report_scenario": "pod_kill",
        "molecule_topology": "bluegreen",
        "molecule_gameday_playbook": "gameday-pod-kill.yml",
        "molecule_run": "pod_kill",
    }


def test_molecule_vars_of_a_negative_run(data, root):
    assert reg.molecule_vars(reg.from_data(data, root), "error_rate_negative") == {
        "gameday_scenario": "error_rate",
        "molecule_report_scenario": "error_rate",
        "molecule_topology": "canary",
        "molecule_gameday_playbook": "gameday-error-rate.yml",
        "molecule_run": "error_rate_negative",
        "molecule_negative": {
            "sabotage": {"gameday_error_rate_guard_enabled": False, "gameday_error_rate_rollback_deadline_seconds": 30},
            "expect_failed": ["rollback_within_3m"],
            "silence": [],
        },
        "veritas_gameday_hosts": [],
    }


def test_further_negative_runs_follow_the_first_with_their_own_sabotage(data, root):
    entry = data["scenarios"][1]
    entry["molecule"]["silence"] = []
    entry["molecule"]["more"] = [{
        "sabotage": "alert silenced", "sabotage_vars": {"gameday_error_rate_guard_enabled": True},
        "silence": [], "expect_failed": ["rollback_within_3m"],
    }]
    registry = reg.from_data(data, root)
    runs = registry.molecule_runs()
    assert runs.index("error_rate_negative_2") == runs.index("error_rate_negative") + 1
    values = reg.molecule_vars(registry, "error_rate_negative_2")
    assert values["molecule_negative"]["sabotage"] == {"gameday_error_rate_guard_enabled": True}
    assert values["molecule_run"] == "error_rate_negative_2"


def test_a_further_negative_run_must_fail_a_criterion_of_its_own(data, root):
    data["scenarios"][1]["molecule"]["more"] = [{
        "sabotage": "x", "sabotage_vars": {"gameday_error_rate_guard_enabled": True}, "expect_failed": ["no_such"],
    }]
    assert "(error_rate).molecule.more[0].expect_failed: 'no_such' is not one of its criteria" in invalid(data, root)


def test_molecule_vars_do_not_share_the_registry(data, root):
    registry = reg.from_data(data, root)
    reg.molecule_vars(registry, "pod_kill_negative")["molecule_negative"]["sabotage"]["x"] = 1
    assert registry.scenarios[0].molecule.sabotage_vars == {"gameday_pod_kill_guard_enabled": False}


def test_cli_molecule(capsys, root):
    assert reg.main(["molecule"], root / "scenarios" / "registry.yml", root) == 0
    assert capsys.readouterr().out.splitlines() == [
        "error_rate", "error_rate_negative", "pod_kill", "pod_kill_negative", "restore_after_interrupt",
    ]


@pytest.mark.parametrize("run", ["pod_kill", "pod_kill_negative", "error_rate_negative"])
def test_cli_molecule_vars(capsys, data, root, run):
    assert reg.main(["molecule-vars", run], root / "scenarios" / "registry.yml", root) == 0
    out = capsys.readouterr().out
    assert out.startswith("---\n")
    assert yaml.safe_load(out) == reg.molecule_vars(reg.from_data(data, root), run)


def test_cli_molecule_vars_of_an_unknown_run(capsys, root):
    assert reg.main(["molecule-vars", "pod_kil"], root / "scenarios" / "registry.yml", root) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert (
        "'pod_kil' is no run of molecule/gameday; the runs are: error_rate, error_rate_negative, pod_kill, pod_kill_negative"
        in captured.err
    )


def test_cli_molecule_vars_of_an_extra_scenario(capsys, root):
    assert reg.main(["molecule-vars", "restore_after_interrupt"], root / "scenarios" / "registry.yml", root) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "'restore_after_interrupt' is a molecule scenario of its own (molecule_extra)" in captured.err


def test_cli_molecule_vars_needs_a_run(capsys):
    with pytest.raises(SystemExit) as caught:
        reg.main(["molecule-vars"])
    assert caught.value.code == 2


def test_cli_of_an_invalid_registry(capsys, root):
    (root / "roles/gameday/scenarios/pod_kill/observe.yml").unlink()
    assert reg.main(["molecule"], root / "scenarios" / "registry.yml", root) == 1
    assert "roles/gameday/scenarios/pod_kill/observe.yml does not exist" in capsys.readouterr().err


# --- each consistency check catches a mismatch -----------------------------------------------


def test_playbook_with_the_wrong_scenario(data, root):
    replace(root, "playbooks/gameday-pod-kill.yml", "gameday_scenario: pod_kill", "gameday_scenario: error_rate")
    assert found(data, root, reg.check_playbooks) == [
        "pod_kill: playbooks/gameday-pod-kill.yml sets gameday_scenario 'error_rate', the registry id is 'pod_kill'"
    ]


def test_playbook_without_its_tags(data, root):
    replace(root, "playbooks/gameday-error-rate.yml", "tags: [scenario2, error_rate]", "tags: [error_rate]")
    assert found(data, root, reg.check_playbooks) == [
        "error_rate: playbooks/gameday-error-rate.yml: its tags ['error_rate'] lack scenario2"
    ]


def test_playbook_that_is_a_play_of_its_own(data, root):
    write(root, "playbooks/gameday-error-rate.yml", "- name: old\n  hosts: localhost\n  roles: [veritas.chaos.gameday_error_rate]\n")
    assert found(data, root, reg.check_playbooks) == [
        (
            "error_rate: playbooks/gameday-error-rate.yml is a play with name, hosts, roles, "
            "expected the ansible.builtin.import_playbook of gameday.yml"
        )
    ]


def test_playbook_that_imports_another(data, root):
    replace(root, "playbooks/gameday-error-rate.yml", "import_playbook: gameday.yml", "import_playbook: gameday-pod-kill.yml")
    assert found(data, root, reg.check_playbooks) == [
        (
            "error_rate: playbooks/gameday-error-rate.yml imports 'gameday-pod-kill.yml', "
            "expected the ansible.builtin.import_playbook of gameday.yml"
        )
    ]


def test_playbook_with_another_play(data, root):
    with (root / "playbooks/gameday-pod-kill.yml").open("a", encoding="utf-8") as playbook:
        playbook.write("- name: after\n  hosts: localhost\n  tasks: []\n")
    assert found(data, root, reg.check_playbooks) == [
        "pod_kill: playbooks/gameday-pod-kill.yml has 2 plays, expected one: the ansible.builtin.import_playbook of gameday.yml"
    ]


def test_combined_playbook_tags(data, root):
    entry(data, "error_rate")["tags"] = ["scenario2", "errors"]
    assert found(data, root, reg.check_combined_playbooks) == [
        (
            "playbooks/gameday-canary.yml: the import of gameday-error-rate.yml has tags ['scenario2', 'error_rate'], "
            "the registry says ['scenario2', 'errors']"
        )
    ]


def test_combined_playbook_of_another_topology(data, root):
    entry(data, "error_rate")["topology"] = "bluegreen"
    assert found(data, root, reg.check_combined_playbooks) == [
        "playbooks/gameday-canary.yml imports ['gameday-error-rate.yml'], the registry's canary game days are []",
        (
            "playbooks/gameday-bluegreen.yml imports ['gameday-pod-kill.yml'], "
            "the registry's bluegreen game days are ['gameday-pod-kill.yml', 'gameday-error-rate.yml']"
        ),
    ]


def test_measure_id_missing(data, root):
    replace(root, "roles/gameday/scenarios/pod_kill/measure.yml", "      no_5xx:", "      no_5xx_at_all:")
    assert found(data, root, reg.check_scenario_folders) == [
        "pod_kill: roles/gameday/scenarios/pod_kill/measure.yml sets no measure for criterion 'no_5xx'",
        (
            "pod_kill: roles/gameday/scenarios/pod_kill/measure.yml measures 'no_5xx_at_all', which is no criterion "
            "of the registry entry (its criteria: traffic_zero_within_10s, no_5xx, retried)"
        ),
    ]


def test_measure_id_unknown(data, root):
    replace(root, "roles/gameday/scenarios/error_rate/measure.yml", "      baseline:", "      alert: {measured: 1}\n      baseline:")
    assert found(data, root, reg.check_scenario_folders) == [
        (
            "error_rate: roles/gameday/scenarios/error_rate/measure.yml measures 'alert', which is no criterion "
            "of the registry entry (its criteria: rollback_within_3m, baseline)"
        )
    ]


def test_optional_measure_may_be_there(data, root):
    replace(root, "roles/gameday/scenarios/pod_kill/measure.yml", "      no_5xx:", "      retried: {measured: 1.0}\n      no_5xx:")
    assert found(data, root, reg.check_scenario_folders) == []


def test_measures_of_each_branch(data, root):
    """Two set_facts (say, one per branch of a when): each one must measure the criteria."""
    with (root / "roles/gameday/scenarios/error_rate/measure.yml").open("a", encoding="utf-8") as measure:
        measure.write("- name: Scenario 2 | no rollback\n  ansible.builtin.set_fact:\n    gameday_measures: {baseline: {measured: 0}}\n")
    assert found(data, root, reg.check_scenario_folders) == [
        (
            "error_rate: roles/gameday/scenarios/error_rate/measure.yml (task 'Scenario 2 | no rollback') "
            "sets no measure for criterion 'rollback_within_3m'"
        )
    ]


def test_measures_that_are_no_mapping(data, root):
    write(root, "roles/gameday/scenarios/error_rate/measure.yml", """\
        - name: Scenario 2 | measures
          ansible.builtin.set_fact:
            gameday_measures: "{{ __measures | items2dict }}"
        """)
    assert found(data, root, reg.check_scenario_folders) == [
        (
            "error_rate: roles/gameday/scenarios/error_rate/measure.yml has no set_fact of gameday_measures "
            "(a mapping of criterion id to measure)"
        )
    ]


def test_bound_variable_missing_from_the_defaults(data, root):
    replace(root, "roles/gameday/defaults/main/pod_kill.yml", "gameday_pod_kill_deadline_seconds", "gameday_pod_kill_deadline")
    assert found(data, root, reg.check_scenario_folders) == [
        "pod_kill: criterion traffic_zero_within_10s's bound gameday_pod_kill_deadline_seconds is not in roles/gameday/defaults/main/pod_kill.yml"
    ]


def test_sabotage_var_missing_from_the_defaults(data, root):
    entry(data, "error_rate")["molecule"]["sabotage_vars"]["gameday_error_rate_guard"] = False
    assert found(data, root, reg.check_scenario_folders) == [
        "error_rate: molecule.sabotage_vars gameday_error_rate_guard is not in roles/gameday/defaults/main/error_rate.yml"
    ]


@pytest.mark.parametrize(
    ("scenario_id", "options", "expected"),
    [
        ("pod_kill", {"percent": 50}, "pod_kill: roles/gameday/scenarios/pod_kill: veritas.chaos.pod_chaos percent is 100, the registry says 50"),
        ("pod_kill", {"force": False}, "pod_kill: roles/gameday/scenarios/pod_kill: veritas.chaos.pod_chaos force is True, the registry says False"),
        # Left to the module's default (DOCUMENTATION): percent 20.
        ("error_rate", {"percent": 30}, "error_rate: roles/gameday/scenarios/error_rate: veritas.chaos.runtime_fault percent is 20, the registry says 30"),
        (
            "error_rate", {"status_code": 503},
            "error_rate: roles/gameday/scenarios/error_rate: veritas.chaos.runtime_fault status_code is 500, the registry says 503",
        ),
    ],
)
def test_wrong_fault_option(data, root, scenario_id, options, expected):
    entry(data, scenario_id)["fault"]["options"].update(options)
    assert found(data, root, reg.check_faults) == [expected]


def test_fault_option_the_registry_cannot_read(data, root):
    replace(root, "roles/gameday/scenarios/pod_kill/inject.yml", '"{{ gameday_pod_kill_percent }}"', '"{{ 50 + 50 }}"')
    assert found(data, root, reg.check_faults) == [
        "pod_kill: roles/gameday/scenarios/pod_kill: veritas.chaos.pod_chaos percent is '{{ 50 + 50 }}', which the registry cannot read"
    ]


def test_fault_of_inject_comes_first(data, root):
    """observe.yml injecting again with other options does not change the scenario's default fault."""
    with (root / "roles/gameday/scenarios/pod_kill/observe.yml").open("a", encoding="utf-8") as observe:
        observe.write("- name: again\n  veritas.chaos.pod_chaos: {namespace: x, percent: 10}\n")
    assert found(data, root, reg.check_faults) == []
    (root / "roles/gameday/scenarios/pod_kill/inject.yml").write_text("[]\n", encoding="utf-8")
    assert found(data, root, reg.check_faults) == [
        "pod_kill: roles/gameday/scenarios/pod_kill: veritas.chaos.pod_chaos percent is 10, the registry says 100",
        "pod_kill: roles/gameday/scenarios/pod_kill: veritas.chaos.pod_chaos force is False, the registry says True",
    ]


def test_fault_that_is_never_injected(data, root):
    (root / "roles/gameday/scenarios/error_rate/fault.yml").unlink()
    assert found(data, root, reg.check_faults) == [
        "error_rate: roles/gameday/scenarios/error_rate has no task that injects with veritas.chaos.runtime_fault"
    ]


def test_report_criterion(data, root):
    data["report_criteria"][0]["description"] = "Steady state restored"
    assert found(data, root, reg.check_report_criteria) == [
        (
            "report_criteria (roles/gameday_report/tasks): steady_state_restored's description is "
            "'System restored to steady state', the registry says 'Steady state restored'"
        )
    ]
    data["report_criteria"] = []
    assert found(data, root, reg.check_report_criteria) == [
        "report_criteria (roles/gameday_report/tasks): 'steady_state_restored' of the role is not in the registry"
    ]


def test_molecule_scenario_of_the_game_days_missing(data, root):
    (root / "molecule/gameday/molecule.yml").unlink()
    assert found(data, root, reg.check_molecule) == [
        "molecule/gameday/molecule.yml does not exist (the scenario every game day runs as)"
    ]


def test_molecule_extra_missing(data, root):
    data["molecule_extra"].append("restore_twice")
    assert found(data, root, reg.check_molecule) == ["molecule_extra: molecule/restore_twice/molecule.yml does not exist"]


def test_molecule_scenario_of_one_game_day(data, root):
    write(root, "molecule/pod_kill_negative/molecule.yml", "scenario: {name: pod_kill_negative}\n")
    assert found(data, root, reg.check_molecule) == [
        (
            "molecule/pod_kill_negative is neither molecule/gameday nor in molecule_extra "
            "(a game day is a run of molecule/gameday, `registry.py molecule-vars`)"
        )
    ]


def test_sabotage_table_that_drifted_from_the_registry(data, root):
    replace(root, "molecule/README.md", "`pod_kill_negative`", "`pod_kill_negative_2`")
    assert found(data, root, reg.check_molecule) == [
        "molecule/README.md's criterion -> sabotage table differs from `registry.py sabotage-table` (paste its output between the markers)"
    ]


def test_sabotage_table_names_every_criterion_and_the_unshown_ones(data, root):
    table = reg.sabotage_table(reg.from_data(data, root))
    registry = reg.from_data(data, root)
    for s in registry.scenarios:
        for c in s.criteria:
            assert f"| `{c.id}` |" in table
    failing = {c for s in registry.scenarios for n in s.molecule.negatives() for c in n.expect_failed}
    unshown = [c.id for s in registry.scenarios for c in s.criteria if c.id not in failing]
    assert table.count("**not shown to fail**") == len(unshown)
    total = sum(len(s.criteria) for s in registry.scenarios)
    assert table.endswith(f"{total - len(unshown)} of {total} criteria are shown to fail by a negative run.\n")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('mapfile -t SCENARIOS < <(python "$REPO/scenarios/registry.py" molecule)\n', []),
        ("for s in a b; do python scenarios/registry.py molecule-vars $s; done\n", ["molecule/run.sh does not read its runs"]),
        ("SCENARIOS=(pod_kill pod_kill_negative)\n", ["molecule/run.sh does not read its runs"]),
    ],
)
def test_run_sh(data, root, text, expected):
    write(root, "molecule/run.sh", text)
    problems = found(data, root, reg.check_run_sh)
    assert len(problems) == len(expected)
    assert all(problem.startswith(prefix) for problem, prefix in zip(problems, expected))


def test_readme_table(data, root):
    assert reg.readme_table(reg.from_data(data, root)) == textwrap.dedent("""\
        | # | scenario (runbook) | playbook | topology | folder | criteria (+ `steady_state_restored`) |
        | --- | --- | --- | --- | --- | --- |
        | 1 | Pod Kill | `gameday-pod-kill.yml` | bluegreen | `roles/gameday/scenarios/pod_kill` | 3 |
        | 2 | Error Rate | `gameday-error-rate.yml` | canary | `roles/gameday/scenarios/error_rate` | 2 |
        | 2 | in sequence (`make gameday-canary`) | `gameday-canary.yml` (tags `scenario2`) | canary | | |
        | 1 | in sequence (`make gameday`) | `gameday-bluegreen.yml` (tags `scenario1`) | bluegreen | | |
        """)


def test_cli_readme_table(capsys, data, root):
    assert reg.main(["readme-table"], root / "scenarios" / "registry.yml", root) == 0
    assert capsys.readouterr().out == reg.readme_table(reg.from_data(data, root))


def test_readme_table_out_of_date(data, root):
    entry(data, "error_rate")["title"] = "Elevated Error Rate"
    entry(data, "error_rate")["runbook_section"] = "Scenario 2: Elevated Error Rate"
    assert found(data, root, reg.check_readme)[0].startswith("README.md's game-day table differs from `registry.py readme-table`")


def test_readme_without_markers(data, root):
    (root / "README.md").write_text("# veritas.chaos\n", encoding="utf-8")
    assert found(data, root, reg.check_readme)[0].startswith("README.md has no generated game-day table")


def test_makefile_target(data, root):
    data["topologies"]["canary"]["make_target"] = "gameday"
    assert found(data, root, reg.check_makefile) == ["topologies.canary: make gameday does not run playbooks/gameday-canary.yml"]


def test_lab_alert(data, root):
    entry(data, "pod_kill")["alerts"] = ["PodGone"]
    assert found(data, root, reg.check_lab_alerts) == [
        "pod_kill: extensions/prometheus/veritas-rules.yml has no alert rule PodGone"
    ]


def test_check_names_a_file_it_cannot_read(data, root):
    write(root, "roles/gameday/scenarios/pod_kill/measure.yml", "- name: broken\n  set_fact: {a: [}\n")
    problems = reg.check(reg.from_data(data, root), root)
    assert [p for p in problems if not p.startswith(("scenario folders:", "faults:"))] == []
    assert any(p.startswith("scenario folders: could not run: ") and "pod_kill/measure.yml" in p for p in problems)


def test_runbook_lines(data, root):
    registry = reg.from_data(data, root)
    text = "\n".join(
        f"#### {s.runbook_section}\n" + "\n".join(f"- [ ] {c.runbook}" for c in s.criteria) for s in registry.scenarios
    )
    assert reg.check_runbook(registry, text) == []
    changed = text.replace("- [ ] No 5xx errors", "- [ ] No 5xx errors\n- [ ] Pager rings")
    changed = changed.replace("Rollback triggers within 3 minutes", "Rollback triggers within 5 minutes")
    changed += "\n#### Scenario 7: Region Failover\n- [ ] Traffic moves\n"
    assert reg.check_runbook(registry, changed) == [
        "the runbook's 'Scenario 7: Region Failover' is in no registry entry",
        "pod_kill: the runbook's success criterion 'Pager rings' is measured by no criterion of the registry",
        (
            "error_rate: criterion rollback_within_3m's runbook line 'Rollback triggers within 3 minutes' "
            "is not in the runbook's 'Scenario 2: Error Rate'"
        ),
        "error_rate: the runbook's success criterion 'Rollback triggers within 5 minutes' is measured by no criterion of the registry",
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

# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The game-day journal: safe summaries, the report, and real ansible-playbook runs with the callback on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
from ansible_collections.veritas.chaos.plugins.callback.gameday_journal import (
    REDACTED,
    CallbackModule,
    collect_scenarios,
    is_secret_key,
    overall_verdict,
    redact,
    render_markdown,
    safe_summary,
)

REPO = Path(__file__).resolve().parents[4]
COLLECTIONS = REPO / ".collections"
ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")


# ---- pure helpers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "api_key",
        "apiKey",
        "token",
        "bearer_token",
        "prometheus_password",
        "kubeconfig",
        "Authorization",
        "client-key-data",
        "private_key",
        "secret",
        "K8S_AUTH_API_KEY",
    ],
)
def test_secret_keys(key):
    assert is_secret_key(key)


@pytest.mark.parametrize(
    "key",
    ["tokens_per_second", "prompt_tokens", "sessions_lost", "keys", "msg", "monkey"],
)
def test_ordinary_keys(key):
    assert not is_secret_key(key)


def test_safe_summary_no_log_is_censored():
    summary = safe_summary({"msg": "S3CRET", "_ansible_no_log": True, "changed": True})
    assert summary == {"censored": summary["censored"]}
    assert "S3CRET" not in json.dumps(safe_summary({"msg": "S3CRET"}, no_log=True))


def test_safe_summary_drops_and_redacts():
    summary = safe_summary(
        {
            "msg": "calling with Authorization: Bearer abc.def-S3CRET",
            "invocation": {"module_args": {"api_key": "S3CRET"}},
            "diff": {"before": "S3CRET"},
            "stdout_lines": ["S3CRET"],
            "nested": {
                "auth": {"token": "S3CRET", "kubeconfig": "apiVersion: v1 ... S3CRET"}
            },
            "ansible_facts": {"api_key": "S3CRET", "weight": 10},
            "config": "users:\n- user:\n    client-key-data: S3CRET\n",
            "key_pem": "-----BEGIN RSA PRIVATE KEY-----\nS3CRET\n-----END RSA PRIVATE KEY-----",
            "long": "x" * 1000,
            "results": [{"changed": True}, {"failed": True}, {"skipped": True}, {}],
            "_ansible_verbose_always": True,
            "changed": True,
        }
    )
    text = json.dumps(summary)
    assert "S3CRET" not in text
    assert summary["nested"]["auth"] == {"token": REDACTED, "kubeconfig": REDACTED}
    assert summary["ansible_facts"] == ["api_key", "weight"]
    assert summary["results"] == {"items": 4, "changed": 1, "failed": 1, "skipped": 1}
    assert (
        "invocation" not in summary
        and "diff" not in summary
        and "changed" not in summary
    )
    assert len(summary["long"]) < 300
    assert summary["msg"].startswith("calling with Authorization: Bearer <redacted>")


def test_safe_summary_is_bounded():
    summary = safe_summary(
        {"msg": "ok", "rc": 0, **{f"k{index}": "v" * 200 for index in range(50)}}
    )
    assert summary["msg"] == "ok" and summary["rc"] == 0 and "truncated" in summary
    assert len(json.dumps(summary)) <= 2000


def test_redact_for_report_keeps_structure():
    assert redact(
        {"evidence": {"api_key": "x", "load": "a.jsonl"}, "list": [{"password": 1}]}
    ) == {
        "evidence": {"api_key": REDACTED, "load": "a.jsonl"},
        "list": [{"password": REDACTED}],
    }


@pytest.mark.parametrize(
    ("verdicts", "run_failed", "overall"),
    [
        (["pass", "pass"], False, "pass"),
        (["pass", "fail"], False, "fail"),
        (["pass", "inconclusive"], False, "inconclusive"),
        (["pass"], True, "inconclusive"),
        (["fail"], True, "fail"),
        ([], False, "inconclusive"),
    ],
)
def test_overall_verdict(verdicts, run_failed, overall):
    scenarios = {
        f"s{index}": {"verdict": verdict} for index, verdict in enumerate(verdicts)
    }
    assert overall_verdict(scenarios, run_failed) == overall


def test_collect_scenarios_merges_run_and_hosts():
    custom = {
        "_run": {"veritas_gameday": {"s1": {"verdict": "pass"}}, "other": 1},
        "node1": {
            "veritas_gameday": {
                "s2": {"verdict": "fail", "evidence": {"token": "S3CRET"}}
            }
        },
    }
    scenarios = collect_scenarios(custom)
    assert scenarios == {
        "s1": {"verdict": "pass", "id": "s1"},
        "s2": {"verdict": "fail", "id": "s2", "evidence": {"token": REDACTED}},
    }


def test_markdown_lists_criteria_timings_and_links(tmp_path):
    evidence = tmp_path / "load.jsonl"
    evidence.write_text("{}\n")
    report = {
        "name": "gameday-canary",
        "verdict": "fail",
        "playbook": "playbooks/gameday-canary.yml",
        "started": "2026-02-18T10:00:00.000Z",
        "finished": "2026-02-18T10:05:00.000Z",
        "duration_seconds": 300.0,
        "run": {"outcome": "failed"},
        "journal": "journal.jsonl",
        "scenarios": {
            "elevated_error_rate": {
                "name": "Scenario 2: Elevated Error Rate Injection",
                "runbook": "runbook.md, Game Day Scenarios, Scenario 2",
                "verdict": "fail",
                "restored": False,
                "escalation": {
                    "level": "L2",
                    "contact": "Platform team",
                    "response_time": "30 minutes",
                    "reasons": ["automatic rollback failed"],
                },
                "criteria": [
                    {
                        "id": "rollback",
                        "description": "Rollback triggers within 3 minutes",
                        "measured": None,
                        "bound": 180,
                        "comparison": "<=",
                        "unit": "s",
                        "status": "INCONCLUSIVE",
                        "evidence": {},
                    },
                    {
                        "id": "detect",
                        "description": "Error rate detected within 1 minute",
                        "measured": 75.5,
                        "bound": 60,
                        "comparison": "<=",
                        "unit": "s",
                        "status": "FAIL",
                        "evidence": {
                            "load": str(evidence),
                            "samples": 12,
                            "ledger": "veritas-lab/veritas-ledger-run-1",
                            "source": "http://127.0.0.1:19093/api/v2/alerts",
                        },
                    },
                ],
                "timings": {"injected_at": 1771408800.0, "detection_seconds": 75.5},
                "evidence": {
                    "load": str(evidence),
                    "alerts": str(tmp_path / "missing.jsonl"),
                },
                "notes": ["guard disabled (negative run)"],
            }
        },
    }
    run_dir = tmp_path / "reports" / "run"
    markdown = render_markdown(report, str(run_dir))
    assert "- Overall verdict: **FAIL**" in markdown
    assert "## Scenario 2: Elevated Error Rate Injection: FAIL" in markdown
    assert "- Restored to steady state: **NO**" in markdown
    assert (
        "- Escalation: L2 (Platform team, 30 minutes): automatic rollback failed"
        in markdown
    )
    assert (
        "| Rollback triggers within 3 minutes | not measured | <= 180 s | INCONCLUSIVE |  |"
        in markdown
    )
    assert (
        f"| Error rate detected within 1 minute | 75.5 s | <= 60 s | FAIL | [load]({evidence}), samples: 12, "
        "ledger: veritas-lab/veritas-ledger-run-1, source: http://127.0.0.1:19093/api/v2/alerts |"
        in markdown
    )
    assert "| injected_at | 2026-02-18T10:00:00.000Z (1771408800) |" in markdown
    assert f"- [alerts]({tmp_path / 'missing.jsonl'}) (missing)" in markdown
    assert "- guard disabled (negative run)" in markdown


# ---- the callback driven with fake objects ---------------------------------------------------


def _task(name, uuid, action="ansible.builtin.command", tags=(), no_log=False):
    return SimpleNamespace(
        _uuid=uuid, get_name=lambda: name, action=action, tags=list(tags), no_log=no_log
    )


def _result(task, data, host="node1"):
    return SimpleNamespace(
        task=task, host=SimpleNamespace(get_name=lambda: host), result=data
    )


def test_callback_with_fake_objects(tmp_path):
    callback = CallbackModule()
    callback._plugin_options = {"dir": str(tmp_path)}
    callback._origins = {"dir": "direct"}
    callback.v2_playbook_on_start(
        SimpleNamespace(_file_name="playbooks/gameday-canary.yml")
    )
    callback.v2_playbook_on_play_start(
        SimpleNamespace(get_name=lambda: "Canary game days", hosts=["localhost"])
    )
    kill = _task(
        "Kill the canary pods", "u1", "veritas.chaos.pod_chaos", tags=["scenario1"]
    )
    callback.v2_playbook_on_task_start(kill, False)
    callback.v2_runner_on_ok(
        _result(kill, {"changed": True, "deleted": ["canary-0"], "api_key": "S3CRET"})
    )
    secret = _task("Log in", "u2", no_log=True)
    callback.v2_playbook_on_task_start(secret, False)
    callback.v2_runner_on_failed(
        _result(secret, {"failed": True, "msg": "S3CRET"}), ignore_errors=True
    )
    callback.v2_runner_on_unreachable(
        _result(kill, {"unreachable": True, "msg": "ssh: timed out"}, host="node2")
    )
    callback.v2_runner_on_skipped(
        _result(kill, {"skipped": True, "skip_reason": "Conditional result was False"})
    )
    callback.v2_runner_retry(_result(kill, {"attempts": 2, "retries": 5}))
    stats = SimpleNamespace(
        processed={"node1": 1, "node2": 1},
        summarize=lambda host: {
            "ok": 1,
            "failures": 0,
            "unreachable": int(host == "node2"),
            "changed": 1,
            "skipped": 0,
            "rescued": 0,
            "ignored": 1,
        },
        custom={
            "_run": {
                "veritas_gameday": {
                    "canary_pod_termination": {"verdict": "pass", "criteria": []}
                }
            }
        },
    )
    callback.v2_playbook_on_stats(stats)

    (run_dir,) = list(tmp_path.iterdir())
    assert run_dir.name.endswith("-gameday-canary")
    records = [
        json.loads(line)
        for line in (run_dir / "journal.jsonl").read_text().splitlines()
    ]
    assert [record["event"] for record in records] == [
        "playbook_start",
        "play_start",
        "task_start",
        "task_result",
        "task_start",
        "task_result",
        "task_result",
        "task_result",
        "retry",
        "playbook_end",
    ]
    results = [record for record in records if record["event"] == "task_result"]
    assert [(r["status"], r["host"], r["changed"], r["failed"]) for r in results] == [
        ("changed", "node1", True, False),
        ("failed", "node1", False, True),
        ("unreachable", "node2", False, True),
        ("skipped", "node1", False, False),
    ]
    assert (
        results[0]["tags"] == ["scenario1"] and results[0]["play"] == "Canary game days"
    )
    assert results[0]["summary"] == {"deleted": ["canary-0"], "api_key": REDACTED}
    assert results[1]["ignore_errors"] is True and "censored" in results[1]["summary"]
    offsets = [record["offset"] for record in records]
    assert offsets == sorted(offsets)
    assert all(record["ts"].endswith("Z") for record in records)
    assert "S3CRET" not in (run_dir / "journal.jsonl").read_text()
    report = json.loads((run_dir / "report.json").read_text())
    # node2 was unreachable, so a passing scenario does not make the run a pass.
    assert report["verdict"] == "inconclusive" and report["run"]["outcome"] == "failed"
    assert report["scenarios"]["canary_pod_termination"]["verdict"] == "pass"


# ---- real ansible-playbook runs --------------------------------------------------------------

PLAYBOOK = textwrap.dedent(
    """\
    - name: Tiny game day
      hosts: localhost
      gather_facts: false
      connection: local
      vars:
        measured_weight_seconds: 4.2
      tasks:
        - name: Use a secret
          ansible.builtin.debug:
            msg: "password is S3CRET-NOLOG"
          no_log: true
        - name: Set a fact named like a secret
          ansible.builtin.set_fact:
            api_key: S3CRET-FACT
        - name: Show a kubeconfig
          ansible.builtin.debug:
            msg:
              kubeconfig: "users: [{user: {token: S3CRET-KUBE}}]"
          tags: [inject]
        - name: Change something
          ansible.builtin.debug:
            msg: changed
          changed_when: true
        - name: Fail but go on
          ansible.builtin.fail:
            msg: expected failure
          ignore_errors: true
        - name: Skip something
          ansible.builtin.debug:
            msg: skipped
          when: false
        - name: Report
          ansible.builtin.include_role:
            name: veritas.chaos.gameday_report
          vars:
            gameday_report_scenario: canary_pod_termination
            gameday_report_title: "Scenario 1: Canary Pod Termination"
            gameday_report_criteria:
              - id: canary_weight_zero
                description: Canary traffic drops to 0% within 10 seconds
                measured: "{{ measured_weight_seconds }}"
                bound: 10
                comparison: "<="
                unit: s
              - id: control_latency
                description: Control group latency increases < 10%
                measured: "{{ 0.2 | veritas.chaos.percent_change(0.2082, 1) }}"
                bound: 10
                comparison: "<"
                unit: "%"
            gameday_report_timings:
              injected_at: "2026-02-18T10:00:00Z"
              detected_at: "2026-02-18T10:00:04.2Z"
            gameday_report_restored: true
            gameday_report_escalation: {failed_components: 1, auto_recovered: true}
            gameday_report_evidence: {load: load.jsonl}
    """
)


def _run_playbook(workdir, extra_args=(), env=None, config=None):
    config = config or workdir / "ansible.cfg"
    if not config.exists():
        config.write_text(
            "[defaults]\n"
            f"collections_path = {COLLECTIONS}\n"
            "callbacks_enabled = veritas.chaos.gameday_journal\n"
            "stdout_callback = default\n"
            "retry_files_enabled = false\n"
        )
    (workdir / "play.yml").write_text(PLAYBOOK)
    run_env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ANSIBLE_", "VERITAS_"))
    }
    run_env.update(
        ANSIBLE_CONFIG=str(config),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOCALHOST_WARNING="false",
    )
    run_env.update(env or {})
    return subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", "localhost,", "play.yml", *extra_args],
        cwd=workdir,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


needs_collection = pytest.mark.skipif(
    not (COLLECTIONS / "ansible_collections" / "veritas" / "chaos").exists()
    or not ANSIBLE_PLAYBOOK.exists(),
    reason="needs `make collection-link` and ansible-playbook in the venv",
)


@needs_collection
def test_real_run_passes_writes_journal_and_report(tmp_path):
    journal_dir = tmp_path / "journal"
    proc = _run_playbook(tmp_path, env={"VERITAS_JOURNAL_DIR": str(journal_dir)})
    assert proc.returncode == 0, proc.stdout + proc.stderr

    (run_dir,) = list(journal_dir.iterdir())
    assert run_dir.name.endswith("-play")
    last_line = proc.stdout.strip().splitlines()[-1]
    assert last_line == f"veritas.chaos game day report: {run_dir / 'report.md'}"

    journal_text = (run_dir / "journal.jsonl").read_text()
    assert "S3CRET" not in journal_text
    records = [json.loads(line) for line in journal_text.splitlines()]
    by_task = {
        record["task"]: record for record in records if record["event"] == "task_result"
    }
    assert by_task["Use a secret"]["summary"].keys() == {"censored"}
    assert by_task["Show a kubeconfig"]["tags"] == ["inject"]
    assert by_task["Change something"]["status"] == "changed"
    assert (
        by_task["Fail but go on"]["status"] == "failed"
        and by_task["Fail but go on"]["ignore_errors"] is True
    )
    assert by_task["Skip something"]["status"] == "skipped"
    assert (
        records[0]["event"] == "playbook_start" and records[1]["event"] == "play_start"
    )
    assert records[-1]["event"] == "playbook_end"

    report = json.loads((run_dir / "report.json").read_text())
    assert report["verdict"] == "pass"
    scenario = report["scenarios"]["canary_pod_termination"]
    assert scenario["verdict"] == "pass"
    assert scenario["name"] == "Scenario 1: Canary Pod Termination"
    assert (
        scenario["runbook"]
        == "runbook.md, Game Day Scenarios, Scenario 1: Canary Pod Termination"
    )
    assert [c["id"] for c in scenario["criteria"]] == [
        "canary_weight_zero",
        "control_latency",
        "steady_state_restored",
    ]
    assert (
        scenario["criteria"][1]["line"]
        == "Control group latency increases < 10%: 4.1% < 10% PASS"
    )
    assert scenario["timings"]["detection_seconds"] == 4.2
    assert scenario["escalation"]["level"] == "L1"
    assert scenario["restored"] is True
    assert scenario["evidence"] == {"load": "load.jsonl"}
    assert (
        "S3CRET"
        not in (run_dir / "report.json").read_text()
        + (run_dir / "report.md").read_text()
    )
    markdown = (run_dir / "report.md").read_text()
    assert "## Scenario 1: Canary Pod Termination: PASS" in markdown


@needs_collection
def test_real_negative_run_fails_after_publishing(tmp_path):
    project = tmp_path / "project"
    elsewhere = tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    config = project / "ansible.cfg"
    config.write_text(
        "[defaults]\n"
        f"collections_path = {COLLECTIONS}\n"
        "callbacks_enabled = veritas.chaos.gameday_journal\n"
        "[veritas_journal]\n"
        "dir = out/reports\n"
    )
    proc = _run_playbook(
        elsewhere, extra_args=["-e", '{"measured_weight_seconds": 12.5}'], config=config
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert (
        "Canary traffic drops to 0% within 10 seconds: 12.5 s <= 10 s FAIL"
        in proc.stdout
    )

    # A relative dir in ansible.cfg is relative to the folder of that ansible.cfg, not to the cwd.
    (run_dir,) = list((project / "out" / "reports").iterdir())
    assert proc.stdout.strip().splitlines()[-1].endswith(str(run_dir / "report.md"))
    report = json.loads((run_dir / "report.json").read_text())
    assert report["verdict"] == "fail"
    assert report["run"]["outcome"] == "failed"
    scenario = report["scenarios"]["canary_pod_termination"]
    assert scenario["verdict"] == "fail"
    assert [c["passed"] for c in scenario["criteria"]] == [False, True, True]

# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: gameday_journal
type: notification
short_description: Game-day journal (timeline) and report for veritas.chaos game days
version_added: 1.0.0
description:
  - Writes a timeline of the run as JSON lines, one record per playbook start, play start, task start, retry and
    task result (ok, changed, failed, skipped, unreachable), each with the UTC wall-clock time, the monotonic offset
    in seconds since the playbook started, the play, the task name and tags, the host, changed and failed, and a
    short summary of the result.
  - The summary is safe to share. A result of a task with C(no_log) (or C(_ansible_no_log)) is reduced to a
    censored marker. Otherwise internal keys, C(invocation), C(diff), full standard output and fact values are
    dropped; values under keys that name a secret (for example C(api_key), C(token), C(password), C(secret),
    C(kubeconfig), C(authorization), C(private_key)) are replaced by C(<redacted>), as are bearer tokens, private
    keys and kubeconfig credentials inside strings; long values are truncated.
  - At the end of the run it reads the custom stats published under C(veritas_gameday) by
    the C(veritas.chaos.gameday_report) role (or directly with
    M(ansible.builtin.set_stats) using C(per_host=false) and C(aggregate=true)) and writes C(report.json) and
    C(report.md) next to C(journal.jsonl) in a folder per run, C(<dir>/<UTC start YYYYmmddTHHMMSSZ>-<playbook name>/).
  - The last line of the run is the path of C(report.md).
  - "The published result, per scenario id: C(veritas_gameday: {<id>: {id, name, runbook, verdict, criteria, timings,
    escalation, restored, evidence, notes, reported_at}}). C(verdict) is V(pass), V(fail) or V(inconclusive).
    C(criteria) is the list returned by P(veritas.chaos.evaluate_criteria#filter) (id, description, measured, bound,
    comparison, unit, passed, status, line, evidence). C(timings) holds C(injected_at), C(detected_at),
    C(rolled_back_at) and C(restored_at) (ISO 8601 or null) and C(detection_seconds), C(rollback_seconds) and
    C(restore_seconds) (seconds after the injection, or null). C(escalation) is the result of
    P(veritas.chaos.escalation_level#filter) (level, contact, response_time, response_minutes, criteria, reasons).
    C(restored) is true, false or null (not known). C(evidence) maps a name (for example C(load), C(alerts)) to a
    file path, which the report links. See C(docs/journal.md)."
  - The overall verdict of the report is V(fail) when any scenario failed; V(inconclusive) when no scenario
    reported, any scenario is inconclusive, or the run itself failed (a failed or unreachable host); else V(pass).
  - The journal never fails the run; when its folder cannot be written it warns and turns itself off.
author:
  - Veritas SPARK team (@veritas-spark)
requirements:
  - Enable it in C(ansible.cfg) with C(callbacks_enabled = veritas.chaos.gameday_journal) in C([defaults]).
options:
  dir:
    description:
      - Folder in which each run gets its own sub-folder with C(journal.jsonl), C(report.json) and C(report.md).
      - A relative path set in C(ansible.cfg), and the default, are relative to the folder of the C(ansible.cfg)
        in use (the project root); a relative path from the environment is relative to the current directory;
        without a configuration file both are relative to the current directory.
    type: str
    default: reports
    env:
      - name: VERITAS_JOURNAL_DIR
    ini:
      - section: veritas_journal
        key: dir
"""

import json
import math
import os
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ansible import constants as C
from ansible import context
from ansible.plugins.callback import CallbackBase

REPORT_SCHEMA = "veritas.chaos/gameday-report/v1"
CENSORED = "the output has been hidden due to the fact that 'no_log: true' was specified for this result"
REDACTED = "<redacted>"
SECRET_WORDS = frozenset(
    {
        "password",
        "passwd",
        "passphrase",
        "secret",
        "token",
        "apikey",
        "kubeconfig",
        "authorization",
        "credential",
        "credentials",
        "cookie",
    }
)
SECRET_PAIRS = (
    "api_key",
    "private_key",
    "client_key",
    "key_data",
    "access_key",
    "secret_key",
    "auth_key",
)
SECRET_IN_TEXT = (
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1" + REDACTED),
    (
        re.compile(
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|$)",
            re.DOTALL,
        ),
        REDACTED,
    ),
    (
        re.compile(
            r"(?i)\b(client-key-data|client-certificate-data|token|password|api[_-]?key)(\s*[:=]\s*)\S+"
        ),
        r"\1\2" + REDACTED,
    ),
)
DROPPED_KEYS = frozenset(
    {"invocation", "diff", "stdout_lines", "stderr_lines", "exception", "module_stdout"}
)
NAMES_ONLY_KEYS = frozenset({"ansible_facts", "ansible_stats"})
MAX_TEXT = 240
MAX_ITEMS = 10
MAX_DEPTH = 3
MAX_SUMMARY = 2000


def is_secret_key(key: Any) -> bool:
    """Whether a dict key names a secret (api_key, bearer_token, kubeconfig, ...); 'tokens' or 'sessions' do not."""
    if not isinstance(key, str):
        return False
    normalized = re.sub(r"[^a-z0-9]+", "_", key.lower()).strip("_")
    if any(pair in normalized for pair in SECRET_PAIRS):
        return True
    return any(part in SECRET_WORDS for part in normalized.split("_"))


def redact_text(text: str) -> str:
    for pattern, replacement in SECRET_IN_TEXT:
        text = pattern.sub(replacement, text)
    return text


def plain(value: Any) -> Any:
    """Native JSON-able copy of a value (Ansible's tagged and lazy types become dict, list, str...)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return None if math.isnan(value) else float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(item) for item in value]
    return str(value)


def redact(value: Any) -> Any:
    """Copy of a plain value with secrets replaced, at any depth, without truncation (for the report)."""
    if isinstance(value, dict):
        return {
            key: REDACTED if is_secret_key(key) else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def _shorten(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        value = redact_text(value)
        return (
            value
            if len(value) <= MAX_TEXT
            else value[:MAX_TEXT] + f"... ({len(value)} chars)"
        )
    if isinstance(value, dict):
        if depth >= MAX_DEPTH:
            return f"<{len(value)} keys>"
        short = {}
        for index, (key, item) in enumerate(value.items()):
            if index == MAX_ITEMS:
                short["..."] = f"{len(value) - MAX_ITEMS} more keys"
                break
            short[key] = REDACTED if is_secret_key(key) else _shorten(item, depth + 1)
        return short
    if isinstance(value, list):
        if depth >= MAX_DEPTH:
            return f"<{len(value)} items>"
        short_list = [_shorten(item, depth + 1) for item in value[:MAX_ITEMS]]
        if len(value) > MAX_ITEMS:
            short_list.append(f"... {len(value) - MAX_ITEMS} more items")
        return short_list
    return value


def safe_summary(result: Mapping[str, Any], no_log: bool = False) -> dict[str, Any]:
    """A short summary of a task result that is safe to write down (see the plugin's description)."""
    result = plain(result) if isinstance(result, Mapping) else {}
    if no_log or result.get("_ansible_no_log"):
        return {"censored": CENSORED}
    summary: dict[str, Any] = {}
    for key, value in result.items():
        if (
            key.startswith("_ansible")
            or key in DROPPED_KEYS
            or key in ("changed", "failed")
        ):
            continue
        if is_secret_key(key):
            summary[key] = REDACTED
        elif key in NAMES_ONLY_KEYS and isinstance(value, dict):
            data = value.get("data") if key == "ansible_stats" else value
            summary[key] = sorted(data) if isinstance(data, dict) else []
        elif key == "results" and isinstance(value, list):
            summary[key] = {
                "items": len(value),
                "changed": sum(
                    1
                    for item in value
                    if isinstance(item, dict) and item.get("changed")
                ),
                "failed": sum(
                    1 for item in value if isinstance(item, dict) and item.get("failed")
                ),
                "skipped": sum(
                    1
                    for item in value
                    if isinstance(item, dict) and item.get("skipped")
                ),
            }
        else:
            summary[key] = _shorten(value, 1)
    if len(json.dumps(summary, default=str)) > MAX_SUMMARY:
        kept = {
            key: summary[key]
            for key in ("msg", "rc", "verdict", "skip_reason")
            if key in summary
        }
        kept["truncated"] = f"summary of {len(summary)} keys cut to {len(kept)}"
        summary = {
            key: (_shorten(value, MAX_DEPTH) if key != "truncated" else value)
            for key, value in kept.items()
        }
    return summary


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def overall_verdict(
    scenarios: Mapping[str, Mapping[str, Any]], run_failed: bool
) -> str:
    verdicts = [scenario.get("verdict") for scenario in scenarios.values()]
    if "fail" in verdicts:
        return "fail"
    if not verdicts or run_failed or any(verdict != "pass" for verdict in verdicts):
        return "inconclusive"
    return "pass"


def collect_scenarios(custom_stats: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The veritas_gameday results from AggregateStats.custom ('_run' first, then any per-host ones)."""
    scenarios: dict[str, dict[str, Any]] = {}
    hosts = sorted(custom_stats, key=lambda name: (name != "_run", name))
    for host in hosts:
        data = custom_stats.get(host) or {}
        published = data.get("veritas_gameday") if isinstance(data, Mapping) else None
        if not isinstance(published, Mapping):
            continue
        for scenario_id, result in published.items():
            result = (
                plain(result)
                if isinstance(result, Mapping)
                else {"verdict": None, "notes": [str(result)]}
            )
            result.setdefault("id", str(scenario_id))
            scenarios.setdefault(str(scenario_id), {}).update(redact(result))
    return scenarios


def _cell(value: Any) -> str:
    if value is None:
        text = "—"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = f"{value:.3f}".rstrip("0").rstrip(".")
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, sort_keys=True)
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _with_unit(value: Any, unit: str) -> str:
    if not unit or isinstance(value, bool) or value is None:
        return _cell(value)
    return f"{_cell(value)}{unit}" if unit == "%" else f"{_cell(value)} {unit}"


def _timing(key: str, value: Any) -> str:
    """Epoch seconds under a *_at key are shown as UTC ISO 8601 (with the raw value)."""
    if (
        key.endswith("_at")
        and isinstance(value, (int, float))
        and not isinstance(value, bool)
    ):
        try:
            return f"{iso(datetime.fromtimestamp(value, UTC))} ({_cell(value)})"
        except (OverflowError, OSError, ValueError):
            return _cell(value)
    return _cell(value)


FILE_SUFFIXES = (".jsonl", ".json", ".md", ".log", ".csv", ".txt", ".yml", ".yaml", ".html")


def _is_file_ref(value: Any) -> bool:
    """A path to a file the run wrote (linked), not any text with a slash (a URL, a namespace/name)."""
    if not isinstance(value, str) or not value or "://" in value or "\n" in value:
        return False
    return os.path.isabs(value) or os.path.exists(value) or value.endswith(FILE_SUFFIXES)


def _link(name: str, path: Any, run_dir: str) -> str:
    if not _is_file_ref(path):
        return f"{name}: {_cell(path)}"
    if os.path.isabs(path):
        target = link = path
    else:
        target = os.path.join(os.getcwd(), path)
        link = os.path.relpath(target, run_dir)
    missing = "" if os.path.exists(target) else " (missing)"
    return f"[{name}]({link}){missing}"


def render_markdown(report: Mapping[str, Any], run_dir: str) -> str:
    lines = [
        f"# Game day report: {report['name']}",
        "",
        f"- Overall verdict: **{str(report['verdict']).upper()}**",
        f"- Playbook: `{report['playbook']}`",
        f"- Started: {report['started']}; finished: {report['finished']} ({_cell(report['duration_seconds'])} s)",
        f"- Run: {report['run']['outcome']}"
        + (" (check mode)" if report["run"].get("check_mode") else ""),
        f"- Journal: [{report['journal']}]({report['journal']})",
        "",
    ]
    if not report["scenarios"]:
        lines += [
            "No scenario published a result (`veritas_gameday` custom stats are empty).",
            "",
        ]
    for scenario_id, scenario in report["scenarios"].items():
        title = scenario.get("name") or scenario_id
        lines += [
            f"## {title}: {str(scenario.get('verdict') or 'unknown').upper()}",
            "",
            f"- Scenario id: `{scenario_id}`",
            f"- Runbook: {scenario.get('runbook') or '—'}",
        ]
        restored = scenario.get("restored")
        restored_text = (
            {True: "yes", False: "**NO**"}.get(restored, "not known")
            if isinstance(restored, bool) or restored is None
            else _cell(restored)
        )
        lines.append(f"- Restored to steady state: {restored_text}")
        escalation = scenario.get("escalation") or {}
        if escalation:
            contact = ", ".join(
                part
                for part in (escalation.get("contact"), escalation.get("response_time"))
                if part
            )
            reasons = "; ".join(escalation.get("reasons") or [])
            lines.append(
                f"- Escalation: {escalation.get('level', '—')}"
                + (f" ({contact})" if contact else "")
                + (f": {reasons}" if reasons else "")
            )
        lines += [
            "",
            "| Criterion | Measured | Bound | Result | Evidence |",
            "| --- | --- | --- | --- | --- |",
        ]
        for criterion in scenario.get("criteria") or []:
            unit = criterion.get("unit") or ""
            measured = criterion.get("measured")
            measured_text = (
                "not measured" if measured is None else _with_unit(measured, unit)
            )
            bound_text = f"{criterion.get('comparison', '')} {_with_unit(criterion.get('bound'), unit)}"
            evidence = criterion.get("evidence") or {}
            evidence_text = ", ".join(
                _link(key, value, run_dir)
                if _is_file_ref(value)
                else f"{key}: {_cell(value)}"
                for key, value in evidence.items()
            )
            lines.append(
                f"| {_cell(criterion.get('description') or criterion.get('id'))} | {measured_text} | {_cell(bound_text)} "
                f"| {_cell(criterion.get('status'))} | {_cell(evidence_text) if evidence_text else ''} |"
            )
        timings = scenario.get("timings") or {}
        if timings:
            lines += ["", "| Timing | Value |", "| --- | --- |"]
            lines += [
                f"| {_cell(key)} | {_timing(key, value)} |"
                for key, value in timings.items()
            ]
        evidence = scenario.get("evidence") or {}
        if evidence:
            lines += ["", "Evidence:", ""]
            lines += [
                f"- {_link(str(key), value, run_dir)}"
                for key, value in evidence.items()
            ]
        notes = scenario.get("notes") or []
        if notes:
            lines += ["", "Notes:", ""]
            lines += [f"- {note}" for note in notes]
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


class CallbackModule(CallbackBase):
    """Journal and report of a veritas.chaos game day."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "veritas.chaos.gameday_journal"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._run_dir: str | None = None
        self._journal: str | None = None
        self._started: datetime | None = None
        self._started_monotonic = time.monotonic()
        self._playbook = ""
        self._play = ""
        self._task_started: dict[str, float] = {}

    # ---- where to write ---------------------------------------------------------------------

    def _base_dir(self) -> str:
        try:
            value, origin = self.get_option_and_origin("dir")
        except (KeyError, AttributeError):
            value, origin = "reports", "default"
        value = os.path.expanduser(str(value or "reports"))
        if os.path.isabs(value):
            return value
        if origin and os.path.isfile(str(origin)):
            anchor = os.path.dirname(os.path.abspath(str(origin)))
        elif origin == "default" and C.CONFIG_FILE:
            anchor = os.path.dirname(os.path.abspath(C.CONFIG_FILE))
        else:
            anchor = os.getcwd()
        return os.path.join(anchor, value)

    def _open(self, playbook_name: str) -> None:
        stem = (
            re.sub(
                r"[^A-Za-z0-9._-]+",
                "_",
                os.path.splitext(os.path.basename(playbook_name))[0],
            )
            or "playbook"
        )
        base = os.path.join(self._base_dir(), f"{self._started:%Y%m%dT%H%M%SZ}-{stem}")
        run_dir, suffix = base, 1
        try:
            while True:
                try:
                    os.makedirs(run_dir)
                    break
                except FileExistsError:
                    suffix += 1
                    run_dir = f"{base}-{suffix}"
            self._run_dir = run_dir
            self._journal = os.path.join(run_dir, "journal.jsonl")
            with open(self._journal, "a", encoding="utf-8"):
                pass
        except OSError as exc:
            self._display.warning(
                f"veritas.chaos.gameday_journal: cannot write the journal under {base}: {exc}; journal off"
            )
            self.disabled = True

    def _write(self, event: str, **fields: Any) -> None:
        if self._journal is None:
            return
        record = {
            "ts": iso(utc_now()),
            "offset": round(time.monotonic() - self._started_monotonic, 3),
            "event": event,
        }
        record.update(fields)
        try:
            with open(self._journal, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(plain(record), default=str) + "\n")
        except OSError as exc:
            self._display.warning(
                f"veritas.chaos.gameday_journal: cannot write the journal: {exc}; journal off"
            )
            self._journal = None

    # ---- events -----------------------------------------------------------------------------

    def v2_playbook_on_start(self, playbook: Any) -> None:
        path = getattr(playbook, "_file_name", "") or ""
        if self._started is None:
            self._started = utc_now()
            self._started_monotonic = time.monotonic()
            self._playbook = path
            self._open(path)
        self._write(
            "playbook_start",
            playbook=path,
            check_mode=bool(context.CLIARGS.get("check", False)),
            tags=list(context.CLIARGS.get("tags") or []),
            skip_tags=list(context.CLIARGS.get("skip_tags") or []),
        )

    def v2_playbook_on_play_start(self, play: Any) -> None:
        self._play = play.get_name()
        hosts = play.hosts if isinstance(play.hosts, list) else [play.hosts]
        self._write("play_start", play=self._play, hosts=[str(host) for host in hosts])

    def _task_start(self, task: Any, handler: bool) -> None:
        self._task_started[task._uuid] = time.monotonic()
        self._write(
            "task_start",
            play=self._play,
            task=task.get_name(),
            action=task.action,
            tags=list(task.tags or []),
            handler=handler,
        )

    def v2_playbook_on_task_start(self, task: Any, is_conditional: bool) -> None:
        self._task_start(task, handler=False)

    def v2_playbook_on_handler_task_start(self, task: Any) -> None:
        self._task_start(task, handler=True)

    def _result(self, status: str, result: Any, **extra: Any) -> None:
        task = result.task
        data = result.result
        started = self._task_started.get(task._uuid)
        no_log = bool(task.no_log) if isinstance(task.no_log, bool) else False
        self._write(
            "task_result",
            play=self._play,
            task=task.get_name(),
            action=task.action,
            tags=list(task.tags or []),
            host=result.host.get_name(),
            status=status,
            changed=bool(data.get("changed", False)),
            failed=status in ("failed", "unreachable"),
            seconds=round(time.monotonic() - started, 3)
            if started is not None
            else None,
            summary=safe_summary(data, no_log=no_log),
            **extra,
        )

    def v2_runner_on_ok(self, result: Any) -> None:
        self._result("changed" if result.result.get("changed", False) else "ok", result)

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._result("failed", result, ignore_errors=bool(ignore_errors))

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._result("skipped", result)

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._result("unreachable", result)

    def v2_runner_retry(self, result: Any) -> None:
        data = result.result
        self._write(
            "retry",
            play=self._play,
            task=result.task.get_name(),
            host=result.host.get_name(),
            attempts=data.get("attempts"),
            retries=data.get("retries"),
        )

    def v2_playbook_on_stats(self, stats: Any) -> None:
        if self._run_dir is None:
            return
        finished = utc_now()
        hosts = {host: stats.summarize(host) for host in sorted(stats.processed)}
        run_failed = any(
            counts.get("failures") or counts.get("unreachable")
            for counts in hosts.values()
        )
        scenarios = collect_scenarios(getattr(stats, "custom", {}) or {})
        report = {
            "schema": REPORT_SCHEMA,
            "name": os.path.splitext(os.path.basename(self._playbook))[0] or "playbook",
            "playbook": self._playbook,
            "started": iso(self._started) if self._started else None,
            "finished": iso(finished),
            "duration_seconds": round(time.monotonic() - self._started_monotonic, 3),
            "verdict": overall_verdict(scenarios, run_failed),
            "run": {
                "outcome": "failed" if run_failed else "ok",
                "check_mode": bool(context.CLIARGS.get("check", False)),
                "hosts": hosts,
            },
            "journal": "journal.jsonl",
            "scenarios": scenarios,
        }
        self._write(
            "playbook_end",
            verdict=report["verdict"],
            outcome=report["run"]["outcome"],
            hosts=hosts,
        )
        report_md = os.path.join(self._run_dir, "report.md")
        try:
            with open(
                os.path.join(self._run_dir, "report.json"), "w", encoding="utf-8"
            ) as handle:
                json.dump(plain(report), handle, indent=2, default=str)
                handle.write("\n")
            with open(report_md, "w", encoding="utf-8") as handle:
                handle.write(render_markdown(report, self._run_dir))
        except OSError as exc:
            self._display.warning(
                f"veritas.chaos.gameday_journal: cannot write the report in {self._run_dir}: {exc}"
            )
            return
        self._display.banner("GAME DAY REPORT")
        for scenario_id, scenario in scenarios.items():
            level = (scenario.get("escalation") or {}).get("level", "—")
            self._display.display(
                f"{scenario_id}: {str(scenario.get('verdict')).upper()} (escalation {level})"
            )
        self._display.display(
            f"overall: {report['verdict'].upper()}"
            + ("" if scenarios else " (no game day ran in this playbook: nothing to judge)")
        )
        self._display.display(f"veritas.chaos game day report: {report_md}")

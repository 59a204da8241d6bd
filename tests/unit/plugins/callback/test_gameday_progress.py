# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stdout callback: a calm progress line instead of FAILED - RETRYING, with real task results and a real run."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from ansible import constants as C
from ansible.executor.task_result import CallbackTaskResult
from ansible.inventory.host import Host
from ansible.playbook.task import Task
from ansible_collections.veritas.chaos.plugins.callback import gameday_progress
from ansible_collections.veritas.chaos.plugins.callback.gameday_progress import (
    CallbackModule,
    progress_line,
    running_line,
    seconds_left,
)

REPO = Path(__file__).resolve().parents[4]
COLLECTIONS = REPO / ".collections"
ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")
WAIT = "Scenario 1 | observe the canary's replacement"


class RecordingDisplay:
    """Stands in for ansible's Display: keeps what would be printed, with its colour."""

    def __init__(self, verbosity: int = 0) -> None:
        self.verbosity = verbosity
        self.lines: list[tuple[str, str | None]] = []

    def display(
        self,
        msg,
        color=None,
        stderr=False,
        screen_only=False,
        log_only=False,
        newline=True,
    ):
        self.lines.append((msg, color))

    def banner(self, msg, color=None, cows=True):
        self.lines.append((f"BANNER {msg}", color))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_callback(verbosity: int = 0, interval: float = 10.0):
    clock = Clock()
    callback = CallbackModule(clock=clock, heartbeat=False)
    shown = RecordingDisplay(verbosity)
    callback._display = shown
    # The default callback's options at their defaults (ansible.builtin.default_callback), and ours.
    callback._plugin_options = {
        "check_mode_markers": False,
        "display_failed_stderr": False,
        "display_ok_hosts": True,
        "display_skipped_hosts": True,
        "pretty_results": None,
        "result_format": "json",
        "show_custom_stats": False,
        "show_per_host_start": False,
        "show_task_path_on_failure": False,
        "progress_interval": interval,
    }
    return callback, shown, clock


def retry_result(
    attempt: int,
    attempts: int,
    delay=1,
    name: str = WAIT,
    host: str = "localhost",
    task: Task | None = None,
) -> CallbackTaskResult:
    """What the task executor sends for a retry: attempts, retries (all attempts) and the task's fields."""
    task = task or Task()
    data = {
        "attempts": attempt,
        "retries": attempts,
        "changed": False,
        "failed": False,
        "msg": "not yet",
    }
    fields = {
        "name": name,
        "action": "veritas.chaos.gameday_info",
        "delay": delay,
        "retries": attempts - 1,
    }
    return CallbackTaskResult(Host(host), task, data, fields)


# ---- pure helpers ---------------------------------------------------------------------------


def test_progress_line_names_the_wait_attempt_and_time_left():
    assert progress_line(WAIT, "localhost", 3, 60, 57) == (
        "  waiting [localhost]: Scenario 1 | observe the canary's replacement (attempt 3/60, up to 57 s left)"
    )
    assert (
        progress_line("wait", "", 1, 2, 1)
        == "  waiting: wait (attempt 1/2, up to 1 s left)"
    )


@pytest.mark.parametrize(
    ("attempt", "attempts", "step", "left"),
    [
        (3, 60, 1.0, 57),
        (1, 151, 1.0, 150),
        (9, 10, 2.5, 3),
        (10, 10, 5.0, 0),
        (12, 10, 1.0, 0),
        (1, 3, 0.4, 1),
    ],
)
def test_seconds_left(attempt, attempts, step, left):
    assert seconds_left(attempt, attempts, step) == left


def test_documentation_is_a_stdout_callback_like_the_default():
    tree = ast.parse(Path(gameday_progress.__file__).read_text())
    (doc,) = [
        node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and node.targets[0].id == "DOCUMENTATION"
    ]
    spec = yaml.safe_load(doc)
    assert spec["name"] == "gameday_progress" and spec["type"] == "stdout"
    assert spec["extends_documentation_fragment"] == [
        "ansible.builtin.default_callback",
        "ansible.builtin.result_format_callback",
    ]
    assert spec["options"]["progress_interval"]["default"] == 10


# ---- the retry line, from real task results --------------------------------------------------


def test_retry_is_a_progress_line_in_a_neutral_colour():
    callback, shown, _clock = make_callback()
    callback.v2_runner_retry(retry_result(3, 60))
    assert shown.lines == [
        (
            "  waiting [localhost]: Scenario 1 | observe the canary's replacement (attempt 3/60, up to 57 s left)",
            C.COLOR_VERBOSE,
        )
    ]
    msg, colour = shown.lines[0]
    assert "FAILED" not in msg and "RETRYING" not in msg
    assert colour not in (
        C.COLOR_ERROR,
        C.COLOR_WARN,
        C.COLOR_UNREACHABLE,
        C.COLOR_DEBUG,
    )


def test_time_left_uses_the_task_delay():
    callback, shown, _clock = make_callback()
    callback.v2_runner_retry(retry_result(1, 31, delay=2))
    assert shown.lines[0][0].endswith("(attempt 1/31, up to 60 s left)")


@pytest.mark.parametrize(("delay", "left"), [(-3, 4), ("5", 20), (None, 20), (0, 0)])
def test_odd_delays(delay, left):
    """A negative delay waits 1 s, as the task executor does; a missing one is the task's (5 s by default)."""
    callback, shown, _clock = make_callback()
    result = retry_result(1, 5, delay=delay)
    if delay is None:
        result = CallbackTaskResult(
            Host("localhost"), Task(), dict(result.result), {"name": WAIT}
        )
    callback.v2_runner_retry(result)
    assert shown.lines[0][0].endswith(f"(attempt 1/5, up to {left} s left)")


def test_time_left_counts_how_long_an_attempt_takes():
    """Attempts that take 2 s on top of a 1 s delay: the time left is 3 s a step, not the delay alone."""
    callback, shown, clock = make_callback(interval=0)
    task = Task()
    callback.v2_runner_on_start(Host("localhost"), task)
    for attempt in (1, 2, 3):
        clock.now += 2  # the attempt
        callback.v2_runner_retry(retry_result(attempt, 20, delay=1, task=task))
        clock.now += 1  # the delay
    assert [line for line, _colour in shown.lines] == [
        f"  waiting [localhost]: {WAIT} (attempt 1/20, up to 57 s left)",
        f"  waiting [localhost]: {WAIT} (attempt 2/20, up to 54 s left)",
        f"  waiting [localhost]: {WAIT} (attempt 3/20, up to 51 s left)",
    ]


def test_without_a_start_the_time_left_is_measured_between_retries():
    """The next item of a loop (no start of its own): the delay first, then what the retries show."""
    callback, shown, clock = make_callback(interval=0)
    task = Task()
    for attempt in (1, 2, 3):
        callback.v2_runner_retry(retry_result(attempt, 20, delay=1, task=task))
        clock.now += 4
    assert [line for line, _colour in shown.lines] == [
        f"  waiting [localhost]: {WAIT} (attempt 1/20, up to 19 s left)",
        f"  waiting [localhost]: {WAIT} (attempt 2/20, up to 72 s left)",
        f"  waiting [localhost]: {WAIT} (attempt 3/20, up to 68 s left)",
    ]


def test_a_long_wait_shows_progress_every_interval():
    """A 30 s observation window polled every second: a line at the start and one every 10 s, not 30."""
    callback, shown, clock = make_callback(interval=10)
    task = Task()
    for attempt in range(1, 31):
        callback.v2_runner_retry(
            retry_result(
                attempt, 151, name="Load | wait for run to end - s3", task=task
            )
        )
        clock.now += 1
    assert [line for line, _colour in shown.lines] == [
        "  waiting [localhost]: Load | wait for run to end - s3 (attempt 1/151, up to 150 s left)",
        "  waiting [localhost]: Load | wait for run to end - s3 (attempt 11/151, up to 140 s left)",
        "  waiting [localhost]: Load | wait for run to end - s3 (attempt 21/151, up to 130 s left)",
    ]


def test_each_wait_and_each_host_gets_its_first_line():
    callback, shown, clock = make_callback(interval=10)
    first, second = Task(), Task()
    callback.v2_runner_retry(retry_result(1, 5, name="first wait", task=first))
    callback.v2_runner_retry(
        retry_result(1, 5, name="first wait", host="node2", task=first)
    )
    callback.v2_runner_retry(retry_result(2, 5, name="first wait", task=first))
    callback.v2_runner_retry(retry_result(1, 5, name="second wait", task=second))
    clock.now += 1
    # the next item of a loop starts counting again: a new wait
    callback.v2_runner_retry(retry_result(1, 5, name="second wait", task=second))
    assert [line for line, _colour in shown.lines] == [
        "  waiting [localhost]: first wait (attempt 1/5, up to 4 s left)",
        "  waiting [node2]: first wait (attempt 1/5, up to 4 s left)",
        "  waiting [localhost]: second wait (attempt 1/5, up to 4 s left)",
        "  waiting [localhost]: second wait (attempt 1/5, up to 4 s left)",
    ]


def test_very_verbose_shows_every_retry_with_its_result():
    callback, shown, _clock = make_callback(verbosity=3, interval=10)
    task = Task()
    callback.v2_runner_retry(retry_result(1, 4, task=task))
    callback.v2_runner_retry(retry_result(2, 4, task=task))
    assert len(shown.lines) == 2
    assert all(
        " Result was: " in line and '"msg": "not yet"' in line
        for line, _colour in shown.lines
    )
    assert {colour for _line, colour in shown.lines} == {C.COLOR_VERBOSE}


def named_task(name: str, action: str = "ansible.builtin.wait_for") -> Task:
    task = Task()
    task.name = name
    task.action = action
    return task


def ok_result(
    task: Task, host: str = "localhost", item: bool = False
) -> CallbackTaskResult:
    data = {"changed": False, "failed": False}
    if item:
        data["item"] = "x"
    return CallbackTaskResult(
        Host(host), task, data, {"name": task.name, "action": task.action}
    )


def test_running_line():
    assert running_line("Load | wait for the end of s3", "localhost", 20.7) == (
        "  still running [localhost]: Load | wait for the end of s3 (20 s so far)"
    )


def test_a_long_task_without_retries_shows_it_is_still_running():
    """The observation window as one wait_for: a line every 10 s while it runs, none after it ended."""
    callback, shown, clock = make_callback(interval=10)
    task = named_task("Load | wait for the end of s3 (up to 30 s)")
    callback.v2_runner_on_start(Host("localhost"), task)
    for second in range(1, 31):
        clock.now += 1
        callback.heartbeat_tick(clock.now)
        assert len(shown.lines) == second // 10, second
    assert shown.lines == [
        (
            f"  still running [localhost]: Load | wait for the end of s3 (up to 30 s) ({n} s so far)",
            C.COLOR_VERBOSE,
        )
        for n in (10, 20, 30)
    ]
    callback.v2_runner_on_ok(ok_result(task))
    shown.lines.clear()
    clock.now += 60
    callback.heartbeat_tick(clock.now)
    assert all("still running" not in line for line, _colour in shown.lines)


def test_a_pause_and_a_wait_with_retries_get_no_still_running_line():
    callback, shown, clock = make_callback(interval=10)
    callback.v2_runner_on_start(
        Host("localhost"), named_task("steady load", "ansible.builtin.pause")
    )
    waiting = named_task("wait for Ready", "veritas.chaos.gameday_info")
    callback.v2_runner_on_start(Host("node2"), waiting)
    callback.v2_runner_retry(
        retry_result(1, 60, name="wait for Ready", host="node2", task=waiting)
    )
    for _second in range(30):
        clock.now += 1
        callback.heartbeat_tick(clock.now)
    assert [line for line, _colour in shown.lines] == [
        "  waiting [node2]: wait for Ready (attempt 1/60, up to 59 s left)"
    ]


def test_the_next_loop_item_counts_its_own_time():
    """Item 1 waited long; item 2's first retry counts from when item 1 ended, not from the task's start."""
    callback, shown, clock = make_callback(interval=0)
    task = named_task("wait per item", "ansible.builtin.command")
    callback.v2_runner_on_start(Host("localhost"), task)
    clock.now += 50
    callback.v2_runner_item_on_ok(ok_result(task, item=True))
    clock.now += 1
    callback.v2_runner_retry(
        retry_result(1, 11, delay=1, name="wait per item", task=task)
    )
    assert (
        shown.lines[-1][0]
        == "  waiting [localhost]: wait per item (attempt 1/11, up to 20 s left)"
    )


# ---- a real ansible-playbook run with the callback as stdout callback --------------------------

PLAYBOOK = textwrap.dedent(
    """\
    - name: Wait for a counter
      hosts: localhost
      gather_facts: false
      connection: local
      vars:
        ansible_python_interpreter: "{{ ansible_playbook_python }}"
      tasks:
        - name: Wait until the counter reaches 3
          ansible.builtin.shell: n=$(( $(cat count 2>/dev/null || echo 0) + 1 )); echo $n > count; echo $n
          args:
            chdir: "{{ playbook_dir }}"
          register: counter
          until: counter.stdout | int >= 3
          retries: 5
          delay: "{{ 1 }}"
          changed_when: false

        - name: Pause a moment
          ansible.builtin.pause:
            seconds: 2

        - name: Sleep a while
          ansible.builtin.command: sleep 3
          changed_when: false
    """
)

needs_collection = pytest.mark.skipif(
    not (COLLECTIONS / "ansible_collections" / "veritas" / "chaos").exists()
    or not ANSIBLE_PLAYBOOK.exists(),
    reason="needs `make collection-link` and ansible-playbook in the venv",
)


def _run(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    (workdir / "ansible.cfg").write_text(
        "[defaults]\n"
        f"collections_path = {COLLECTIONS}\n"
        "stdout_callback = veritas.chaos.gameday_progress\n"
        "retry_files_enabled = false\n"
    )
    (workdir / "play.yml").write_text(PLAYBOOK)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ANSIBLE_", "VERITAS_"))
    }
    env.update(
        ANSIBLE_CONFIG=str(workdir / "ansible.cfg"),
        ANSIBLE_FORCE_COLOR="1",
        ANSIBLE_LOCALHOST_WARNING="false",
        VERITAS_PROGRESS_INTERVAL="0",
    )
    return subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", "localhost,", "play.yml", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@needs_collection
@pytest.mark.parametrize("args", [(), ("-v",)])
def test_real_run_prints_progress_not_failed_retrying(tmp_path, args):
    proc = _run(tmp_path, *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "RETRYING" not in proc.stdout and "[ERROR]" not in proc.stdout + proc.stderr
    blue, green, red = "\x1b[0;34m", "\x1b[0;32m", "\x1b[0;31m"
    waits = [line for line in proc.stdout.splitlines() if "waiting" in line]
    assert [line.split(", up to ")[0] for line in waits] == [
        f"{blue}  waiting [localhost]: Wait until the counter reaches 3 (attempt 1/6",
        f"{blue}  waiting [localhost]: Wait until the counter reaches 3 (attempt 2/6",
    ]
    # 5 attempts left after the first, each at least the 1 s delay (and the time a shell takes)
    assert 5 <= int(waits[0].split(", up to ")[1].split()[0]) <= 60
    assert f"{green}ok: [localhost]" in proc.stdout
    running = [line for line in proc.stdout.splitlines() if "still running" in line]
    assert running, proc.stdout
    assert all(
        line.startswith(f"{blue}  still running [localhost]: Sleep a while (")
        and line.endswith(f" s so far){chr(27)}[0m")
        for line in running
    ), running
    assert "Pausing for 2 seconds" in proc.stdout
    assert red not in proc.stdout and "\x1b[1;31m" not in proc.stdout
    assert (tmp_path / "count").read_text().strip() == "3"

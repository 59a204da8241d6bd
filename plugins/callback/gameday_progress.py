# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: gameday_progress
type: stdout
short_description: The default screen output, with a calm progress line for a task that waits
version_added: 1.0.0
description:
  - The output of P(ansible.builtin.default#callback), but for two things, both about a task that takes a while.
  - 'A task that waits with C(until), C(retries) and C(delay) gets, instead of the default retry line
    "FAILED - RETRYING: [host]: <task> (N retries left).", a progress line in a neutral colour (the colour of
    verbose messages, C(COLOR_VERBOSE)) that says what the task waits for (its name), the attempt out of all attempts,
    and how long the wait can still take at most, for example
    "  waiting [localhost]: Scenario 1 | observe the canary''s replacement (attempt 3/60, up to 57 s left)".'
  - The time left is the attempts left times the step of the wait, the task's C(delay) plus the time one attempt takes
    as measured from the task's start and between its retries (never less than C(delay)).
  - A retry is a wait still going on, not a failure. When the attempts run out the task fails as the default callback
    shows it.
  - The first retry of a wait is always shown, later ones at most every O(progress_interval) seconds. With C(-vvv)
    every retry is shown, with its result, as the default callback does.
  - 'A task that runs longer than O(progress_interval) seconds without retries (a C(wait_for), a module that polls
    by itself such as M(veritas.chaos.cache_warmup)) gets a line in the same colour every O(progress_interval)
    seconds while it runs, for example "  still running [localhost]: Load | wait for the end of s3 (20 s so far)".
    M(ansible.builtin.pause) is left alone: it says how long it pauses, and may be waiting for someone to type.'
  - Enable it in C(ansible.cfg) with C(stdout_callback = veritas.chaos.gameday_progress) in C([defaults]). Where
    another stdout callback is in use (for example ansible-runner's C(awx_display)) it is not loaded and changes
    nothing.
author:
  - Veritas SPARK team (@veritas-spark)
extends_documentation_fragment:
  - ansible.builtin.default_callback
  - ansible.builtin.result_format_callback
requirements:
  - Set as the stdout callback in the configuration.
options:
  progress_interval:
    description:
      - Least number of seconds between two progress lines of the same host and task. The first retry of each
        wait is always shown. V(0) shows every retry, and a task running without retries every second.
    type: float
    default: 10
    env:
      - name: VERITAS_PROGRESS_INTERVAL
    ini:
      - section: veritas_progress
        key: interval
"""

import contextlib
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from ansible import constants as C
from ansible.plugins.callback.default import CallbackModule as DefaultCallback

PROGRESS_INTERVAL = 10.0
# Says itself how long it pauses, and may be waiting for someone to type.
QUIET_ACTIONS = frozenset({"pause", "ansible.builtin.pause", "ansible.legacy.pause"})


def _number(value: Any, fallback: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return fallback


def seconds_left(attempt: int, attempts: int, step: float) -> int:
    """At most how many seconds a wait can still take: the attempts left times one step, rounded up."""
    return math.ceil(max(0, attempts - attempt) * max(0.0, step) - 1e-9)


def progress_line(
    task_name: str, host_label: str, attempt: int, attempts: int, left: int
) -> str:
    """The line shown for a retry: what is awaited, attempt k of n, and the time left at most."""
    host = f" [{host_label}]" if host_label else ""
    return f"  waiting{host}: {task_name} (attempt {attempt}/{attempts}, up to {left} s left)"


def running_line(task_name: str, host_label: str, elapsed: float) -> str:
    """The line shown while a task without retries keeps running."""
    host = f" [{host_label}]" if host_label else ""
    return f"  still running{host}: {task_name} ({int(elapsed)} s so far)"


class _Running:
    """A task a host is running: since when (and its current loop item), when a progress line was last shown."""

    __slots__ = ("item_started", "last_shown", "name", "quiet", "started", "task")

    def __init__(self, task: str, name: str, started: float, quiet: bool) -> None:
        self.task = task
        self.name = name
        self.started = started
        self.item_started = started
        self.quiet = quiet
        self.last_shown = started


class _Wait:
    """One host's wait on one task (its retries): the attempt it counts from, and whether a line was shown."""

    __slots__ = ("last_attempt", "last_shown", "since", "since_attempt", "task")

    def __init__(
        self, task: str, attempt: int, now: float, started: float | None, delay: float
    ) -> None:
        self.task = task
        if started is not None:
            # The first attempt ran from the task's start with no delay before it: count as if the delay came first.
            self.since_attempt, self.since = 0, started - delay
        else:  # its start is not known: count from this retry on
            self.since_attempt, self.since = attempt, now
        self.last_attempt = attempt
        self.last_shown: float | None = None

    def step(self, attempt: int, now: float, delay: float) -> float:
        """Seconds from one attempt to the next (the delay and the attempt itself), measured; never below delay."""
        if attempt > self.since_attempt:
            return max(delay, (now - self.since) / (attempt - self.since_attempt))
        return delay


class CallbackModule(DefaultCallback):
    """ansible.builtin.default with progress lines instead of FAILED - RETRYING, and for long tasks."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "veritas.chaos.gameday_progress"

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, heartbeat: bool = True
    ) -> None:
        super().__init__()
        self._clock = clock
        # Per host (each runs one task at a time): the task it runs, and the wait of its retries.
        self._running: dict[str, _Running] = {}
        self._waits: dict[str, _Wait] = {}
        self._heartbeat_wanted = heartbeat
        self._heartbeat: threading.Thread | None = None
        self._stopped = threading.Event()

    def _progress_interval(self) -> float:
        try:
            value = self.get_option("progress_interval")
        except KeyError:  # options not loaded (the plugin was built by hand)
            return PROGRESS_INTERVAL
        return max(0.0, _number(value, PROGRESS_INTERVAL))

    # ---- a task without retries that runs long ------------------------------------------------

    def heartbeat_tick(self, now: float) -> None:
        """Shows a line for each host whose task has run a progress interval since its last line."""
        interval = max(1.0, self._progress_interval())
        for host, run in list(self._running.items()):
            wait = self._waits.get(host)
            if run.quiet or (wait is not None and wait.task == run.task):
                continue  # a pause says itself how long; a wait has its retry lines
            if now - run.last_shown >= interval:
                run.last_shown = now
                self._display.display(
                    running_line(run.name, host, now - run.started),
                    color=C.COLOR_VERBOSE,
                )

    def _beat(self) -> None:
        while not self._stopped.wait(1.0):
            with contextlib.suppress(Exception):  # progress must never break the run
                self.heartbeat_tick(self._clock())

    def _task_ended(self, result: Any) -> None:
        host = result.host.get_name()
        self._running.pop(host, None)
        self._waits.pop(host, None)

    def _item_ended(self, result: Any) -> None:
        host = result.host.get_name()
        self._waits.pop(host, None)
        run = self._running.get(host)
        if run is not None:
            run.item_started = self._clock()

    def v2_runner_on_start(self, host: Any, task: Any) -> None:
        name = host.get_name()
        self._running[name] = _Running(
            getattr(task, "_uuid", "") or "",
            task.get_name().strip(),
            self._clock(),
            getattr(task, "action", "") in QUIET_ACTIONS,
        )
        self._waits.pop(name, None)
        if self._heartbeat_wanted and self._heartbeat is None:
            self._heartbeat = threading.Thread(
                target=self._beat, name="veritas-gameday-progress", daemon=True
            )
            self._heartbeat.start()
        super().v2_runner_on_start(host, task)

    def v2_runner_on_ok(self, result: Any) -> None:
        self._task_ended(result)
        super().v2_runner_on_ok(result)

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._task_ended(result)
        super().v2_runner_on_failed(result, ignore_errors=ignore_errors)

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._task_ended(result)
        super().v2_runner_on_skipped(result)

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._task_ended(result)
        super().v2_runner_on_unreachable(result)

    def v2_runner_item_on_ok(self, result: Any) -> None:
        self._item_ended(result)
        super().v2_runner_item_on_ok(result)

    def v2_runner_item_on_failed(self, result: Any) -> None:
        self._item_ended(result)
        super().v2_runner_item_on_failed(result)

    def v2_runner_item_on_skipped(self, result: Any) -> None:
        self._item_ended(result)
        super().v2_runner_item_on_skipped(result)

    def v2_playbook_on_stats(self, stats: Any) -> None:
        self._stopped.set()
        super().v2_playbook_on_stats(stats)

    # ---- a task that retries ------------------------------------------------------------------

    def v2_runner_retry(self, result: Any) -> None:
        data: Mapping[str, Any] = result.result
        fields: Mapping[str, Any] = result.task_fields or {}
        attempts = int(_number(data.get("retries"), 0))
        attempt = int(_number(data.get("attempts"), 0))
        delay = _number(fields.get("delay", getattr(result.task, "delay", None)), 1.0)
        if delay < 0:  # what the task executor does with a negative delay
            delay = 1.0
        now = self._clock()

        host, task = result.host.get_name(), getattr(result.task, "_uuid", "") or ""
        run = self._running.get(host)
        if run is not None and run.task != task:
            run = None
        wait = self._waits.get(host)
        # A new wait: the task's (or its loop item's) first retry, or else one not seen from the start.
        if wait is None or wait.task != task or attempt <= wait.last_attempt:
            started = run.item_started if run is not None and attempt == 1 else None
            wait = self._waits[host] = _Wait(task, attempt, now, started, delay)
        left = seconds_left(attempt, attempts, wait.step(attempt, now, delay))
        wait.last_attempt = attempt

        verbose = self._run_is_verbose(result, verbosity=2)
        due = (
            wait.last_shown is None
            or now - wait.last_shown >= self._progress_interval()
        )
        if not (due or verbose):
            return
        wait.last_shown = now
        if run is not None:
            run.last_shown = now
        msg = progress_line(
            result.task_name or str(result.task),
            self.host_label(result),
            attempt,
            attempts,
            left,
        )
        if verbose:
            msg += f" Result was: {self._dump_results(data)}"
        self._display.display(msg, color=C.COLOR_VERBOSE)

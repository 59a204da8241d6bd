# Records the wall time of every task whose name starts with "bench " (for bench_traffic_split.py).
from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: bench_timer
type: aggregate
short_description: Writes per-task wall times of "bench ..." tasks to BENCH_TIMINGS_FILE
description:
  - Used by bench/bench_traffic_split.py; not part of the collection.
requirements:
  - enabled with callbacks_enabled
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_timer"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._started: dict[str, float] = {}
        self._rows: list[dict[str, object]] = []

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._started[task._uuid] = time.perf_counter()

    def _finish(self, result, status):
        task = result._task
        name = task.get_name()
        if not name.startswith("bench "):
            return
        elapsed = time.perf_counter() - self._started[task._uuid]
        self._rows.append(
            {
                "task": name,
                "seconds": elapsed,
                "status": status,
                "changed": bool(result._result.get("changed")),
            }
        )

    def v2_runner_on_ok(self, result):
        self._finish(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._finish(result, "failed")

    def v2_playbook_on_stats(self, stats):
        with open(os.environ["BENCH_TIMINGS_FILE"], "w", encoding="utf-8") as handle:
            json.dump(self._rows, handle, indent=1)

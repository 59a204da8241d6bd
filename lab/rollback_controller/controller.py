#!/usr/bin/env python3
"""The lab's stand-in for the platform's canary rollback controller.

Samples the canary's error rate and P99 from Prometheus at a fixed interval, forever, with the
very same verdict logic as the veritas.chaos.canary_analysis module (plugins/module_utils/
_analysis.py, imported through the collection, not copied), and rolls the canary back (traffic
ConfigMap to control 100 / canary 0, plugins/module_utils/_rollback.py) after N consecutive
failing samples. No data, a query error or an unreachable Prometheus is inconclusive: never an
action, and an `alert` decision once the controller has been blind for N samples in a row.

Every decision is one JSON line (event: start, sample, rollback, alert, paused, stop, error).
While the pause file exists, samples are still taken and logged but no action is taken (the
"guard disabled" negative runs of the game days).

  python lab/rollback_controller/controller.py --namespace veritas-lab --interval 1
  lab/rollback_controller/up.sh | down.sh | status.sh      (as a lab process)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TextIO

REPO_ROOT = Path(__file__).resolve().parents[2]
LAB_DIR = Path(os.environ.get("LAB_DIR", REPO_ROOT / ".lab"))


def import_collection() -> None:
    """Make ansible_collections.veritas.chaos importable: the link `make collection-link`
    creates, or a private one in a temporary folder when it is missing."""
    link_root = REPO_ROOT / ".collections"
    if not (link_root / "ansible_collections" / "veritas" / "chaos").exists():
        link_root = Path(tempfile.mkdtemp(prefix="veritas-rollback-controller."))
        (link_root / "ansible_collections" / "veritas").mkdir(parents=True)
        (link_root / "ansible_collections" / "veritas" / "chaos").symlink_to(REPO_ROOT)
    sys.path.insert(0, str(link_root))


import_collection()

from ansible_collections.veritas.chaos.plugins.module_utils._analysis import (
    ERROR_RATIO_RECORD,
    FAIL,
    INCONCLUSIVE,
    LATENCY_P99_RECORD,
    Analyzer,
    Settings,
    default_query,
    isoformat,
)
from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError
from ansible_collections.veritas.chaos.plugins.module_utils._prometheus import (
    PrometheusClient,
)


class DecisionLog:
    """JSON lines, flushed at once, so that a game day can follow the controller live."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, event: str, **fields: Any) -> dict[str, Any]:
        now = time.time()
        record = {"ts": isoformat(now), "timestamp": round(now, 3), "event": event}
        record.update(fields)
        self.stream.write(json.dumps(record, sort_keys=True) + "\n")
        self.stream.flush()
        return record


class Controller:
    def __init__(self, args: argparse.Namespace, log: DecisionLog) -> None:
        self.args = args
        self.log = log
        self.settings = Settings(
            interval=args.interval,
            consecutive_failures=args.consecutive_failures,
            error_rate_threshold=args.error_rate_threshold,
            latency_threshold_seconds=args.latency_threshold,
            until_stopped=True,
        )
        self.settings.validate()
        self.error_rate_query = args.error_rate_query or default_query(
            ERROR_RATIO_RECORD, args.variant, args.namespace
        )
        self.latency_query = args.latency_query or default_query(
            LATENCY_P99_RECORD, args.variant, args.namespace
        )
        self.prometheus = PrometheusClient(
            args.prometheus_url, timeout=args.query_timeout
        )
        self.analyzer = Analyzer(self.settings)
        self.blind = 0
        self.stopping = False
        self.client: Any = None

    def kube(self) -> Any:
        if self.client is None:
            from ansible_collections.veritas.chaos.plugins.module_utils._client import (
                get_client,
            )

            self.client = get_client({"kubeconfig": self.args.kubeconfig})
        return self.client

    def preflight(self) -> None:
        from ansible_collections.veritas.chaos.plugins.module_utils._guard import (
            guard_namespace,
        )

        guard_namespace(
            self.kube(),
            self.args.namespace,
            {
                "allow_production": self.args.allow_production,
                "production_label": "environment",
                "production_value": "production",
            },
        )

    def paused(self) -> bool:
        return bool(self.args.pause_file) and os.path.exists(self.args.pause_file)

    def roll_back(self, detected: float) -> None:
        from ansible_collections.veritas.chaos.plugins.module_utils._rollback import (
            rollback_traffic,
        )
        from ansible_collections.veritas.chaos.plugins.module_utils._traffic import (
            ConfigMapBackend,
        )

        first_fail = self.analyzer.streak_start
        try:
            outcome = rollback_traffic(
                self.kube(),
                ConfigMapBackend(self.args.control_key, self.args.canary_key),
                self.args.namespace,
                self.args.configmap,
                dry_run=self.args.dry_run,
            )
        except ChaosError as exc:
            self.log.write("error", action="rollback", msg=exc.msg, reason=exc.reason)
            return
        done = time.time()
        self.log.write(
            "rollback" if outcome["changed"] else "rollback_not_needed",
            namespace=self.args.namespace,
            configmap=self.args.configmap,
            dry_run=self.args.dry_run,
            changed=outcome["changed"],
            previous_weights=outcome["previous_weights"],
            weights=outcome["weights"],
            first_fail_at=isoformat(first_fail) if first_fail else None,
            detected_at=isoformat(detected),
            rollback_at=isoformat(done),
            seconds_from_first_fail=round(done - first_fail, 3) if first_fail else None,
            seconds_from_detection=round(done - detected, 3),
        )

    def step(self, moment: float) -> None:
        error_rate = self.prometheus.query(self.error_rate_query, moment)
        p99 = self.prometheus.query(self.latency_query, moment)
        measurement = self.analyzer.add(moment, error_rate, p99)
        self.log.write("sample", **measurement.as_dict())
        if measurement.verdict == INCONCLUSIVE:
            self.blind += 1
            if self.blind == self.settings.consecutive_failures:
                self.log.write(
                    "alert",
                    alert="metrics_unavailable",
                    inconclusive_samples=self.blind,
                    reason=measurement.reason,
                    action="none: no automatic rollback without data",
                )
        else:
            if self.blind >= self.settings.consecutive_failures:
                self.log.write(
                    "alert_resolved",
                    alert="metrics_unavailable",
                    inconclusive_samples=self.blind,
                )
            self.blind = 0
        if measurement.verdict == FAIL and self.analyzer.failed:
            if self.paused():
                self.log.write(
                    "paused",
                    decision="would_rollback",
                    pause_file=self.args.pause_file,
                    consecutive_failures=self.analyzer.streak,
                )
            else:
                self.roll_back(moment)
            # a new window after every decision, so one degradation is acted on once
            self.analyzer.reset()

    def run(self) -> int:
        self.log.write(
            "start",
            pid=os.getpid(),
            prometheus_url=self.prometheus.url,
            namespace=self.args.namespace,
            configmap=self.args.configmap,
            queries={
                "error_rate": self.error_rate_query,
                "latency": self.latency_query,
            },
            thresholds={
                "error_rate": self.settings.error_rate_threshold,
                "latency_seconds": self.settings.latency_threshold_seconds,
                "consecutive_failures": self.settings.consecutive_failures,
            },
            interval=self.settings.interval,
            dry_run=self.args.dry_run,
            pause_file=self.args.pause_file,
        )
        try:
            self.preflight()
        except ChaosError as exc:
            self.log.write("error", action="preflight", msg=exc.msg, reason=exc.reason)
            return 2
        started = time.time()
        slot = 0
        taken = 0
        while not self.stopping:
            due = started + slot * self.settings.interval
            wait = due - time.time()
            if wait > 0:
                time.sleep(wait)
                if self.stopping:
                    break
            elif wait < -self.settings.interval:
                # fell behind (e.g. a slow Prometheus): skip the missed slots, keep the cadence
                slot = int((time.time() - started) / self.settings.interval)
            self.step(time.time())
            slot += 1
            taken += 1
            if self.args.max_samples and taken >= self.args.max_samples:
                break
        self.log.write("stop", samples=taken)
        return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--prometheus-url",
        default=os.environ.get("VERITAS_PROMETHEUS_URL", "http://127.0.0.1:19090"),
    )
    ap.add_argument(
        "--kubeconfig",
        default=os.environ.get("KUBECONFIG", str(LAB_DIR / "kubeconfig")),
    )
    ap.add_argument("--namespace", default="veritas-lab")
    ap.add_argument("--configmap", default="veritas-traffic-config")
    ap.add_argument("--control-key", default="control")
    ap.add_argument("--canary-key", default="canary")
    ap.add_argument("--variant", default="canary")
    ap.add_argument(
        "--error-rate-query", help="PromQL; default the lab's recording rule"
    )
    ap.add_argument("--latency-query", help="PromQL; default the lab's recording rule")
    ap.add_argument("--error-rate-threshold", type=float, default=0.05)
    ap.add_argument("--latency-threshold", type=float, default=0.5, help="seconds")
    ap.add_argument(
        "--interval", type=float, default=1.0, help="seconds between samples"
    )
    ap.add_argument("--consecutive-failures", type=int, default=3)
    ap.add_argument("--query-timeout", type=float, default=2.0)
    ap.add_argument(
        "--pause-file",
        default=str(LAB_DIR / "run" / "rollback-controller.paused"),
        help="while this file exists, decisions are logged but not acted on",
    )
    ap.add_argument("--allow-production", action="store_true")
    ap.add_argument(
        "--dry-run", action="store_true", help="roll back as a server-side dry run"
    )
    ap.add_argument(
        "--max-samples", type=int, default=0, help="stop after N samples (0: never)"
    )
    ap.add_argument(
        "--log", default="-", help="JSON-lines decision log (default stdout)"
    )
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with contextlib.ExitStack() as stack:
        stream: TextIO = sys.stdout
        if args.log != "-":
            stream = stack.enter_context(open(args.log, "a", encoding="utf-8"))
        log = DecisionLog(stream)
        try:
            controller = Controller(args, log)
        except ChaosError as exc:
            log.write(
                "error",
                action="configure",
                msg=exc.msg,
                reason=exc.reason,
                field=exc.details.get("field"),
            )
            return 2

        def stop(signum: int, _frame: Any) -> None:
            controller.stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        return controller.run()


if __name__ == "__main__":
    sys.exit(main())

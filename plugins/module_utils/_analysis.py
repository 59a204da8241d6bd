# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Canary analysis verdicts: small pure functions, plus a sampling loop with injected I/O.

Three outcomes everywhere: ``pass``, ``fail`` and ``inconclusive``. No data (an empty
vector, NaN), a query error or an unreachable Prometheus is *inconclusive*: it never
counts as a failure and never triggers an automatic action (runbook: "No automatic
rollback without confirmed degradation").

This file imports nothing but the standard library and the collection's error type, so
that the lab's rollback controller (lab/rollback_controller) runs the very same logic.
"""

from __future__ import annotations

import datetime
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError

PASS = "pass"
FAIL = "fail"
INCONCLUSIVE = "inconclusive"
VERDICTS = (PASS, FAIL, INCONCLUSIVE)

# Runbook "Containment Mechanisms": 5% error rate, 500 ms P99, 3 consecutive failures.
DEFAULT_ERROR_RATE_THRESHOLD = 0.05
DEFAULT_LATENCY_THRESHOLD_SECONDS = 0.5
DEFAULT_CONSECUTIVE_FAILURES = 3

ERROR_RATIO_RECORD = "veritas:error_ratio:rate30s"
LATENCY_P99_RECORD = "veritas:latency_p99_seconds:rate30s"


def default_query(record: str, variant: str, namespace: str | None = None) -> str:
    """The PromQL for a recording rule of one variant; the worst series when several match.

    >>> default_query("veritas:error_ratio:rate30s", "canary")
    'max(veritas:error_ratio:rate30s{variant="canary"})'
    """
    matchers = [f'variant="{variant}"']
    if namespace:
        matchers.append(f'namespace="{namespace}"')
    return "max({}{{{}}})".format(record, ",".join(matchers))


@dataclass(frozen=True)
class Reading:
    """One metric reading: a value, or the reason there is none (no_data, query_error, ...)."""

    value: float | None
    reason: str | None = None

    @classmethod
    def of(cls, value: float | None, reason: str | None = None) -> Reading:
        if value is None:
            return cls(None, reason or "no_data")
        if math.isnan(value):
            return cls(
                None, "no_data: the query returned NaN (no requests in the window)"
            )
        return cls(float(value), None)


def metric_verdict(value: float | None, threshold: float) -> str:
    """pass when value <= threshold, fail when above it, inconclusive without a value.

    The boundary passes: the runbook's rules trigger on values *exceeding* the thresholds,
    as do the lab's alert rules (``> 0.05``).
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return INCONCLUSIVE
    return FAIL if value > threshold else PASS


def sample_verdict(
    error_rate: Reading,
    p99_seconds: Reading,
    error_rate_threshold: float,
    latency_threshold_seconds: float,
) -> tuple[str, str]:
    """The verdict of one sample and why.

    A sample fails when any metric is confirmed above its threshold (a confirmed breach of
    one metric is confirmed degradation even while the other has no data); it passes when
    every metric is confirmed within its threshold; otherwise it is inconclusive.
    """
    checks = (
        ("error_rate", error_rate, error_rate_threshold, "{:.4g}"),
        ("p99_seconds", p99_seconds, latency_threshold_seconds, "{:.4g}s"),
    )
    failures: list[str] = []
    missing: list[str] = []
    for name, reading, threshold, fmt in checks:
        verdict = metric_verdict(reading.value, threshold)
        if verdict == FAIL:
            failures.append(
                f"{name} {fmt.format(reading.value)} > {fmt.format(threshold)}"
            )
        elif verdict == INCONCLUSIVE:
            missing.append(f"{name}: {reading.reason or 'no_data'}")
    if failures:
        return FAIL, "; ".join(failures)
    if missing:
        return INCONCLUSIVE, "; ".join(missing)
    return PASS, "within thresholds"


def update_streak(streak: int, verdict: str) -> int:
    """The consecutive-failure count after one more sample.

    A fail extends the streak, a pass resets it to 0, and an inconclusive sample leaves it
    as it is: missing data neither confirms nor disproves degradation, so it can neither
    trigger a rollback nor hide a failure that continues on both sides of a scrape gap.
    """
    if verdict == FAIL:
        return streak + 1
    if verdict == PASS:
        return 0
    return streak


def planned_samples(
    interval: float, duration: float | None, samples: int | None
) -> int | None:
    """How many samples a window takes (one at its start, then one per interval); None = until stopped."""
    counts: list[int] = []
    if samples is not None:
        counts.append(samples)
    if duration is not None:
        counts.append(math.floor(duration / interval + 1e-9) + 1)
    return min(counts) if counts else None


def default_min_samples(planned: int | None) -> int:
    """A pass needs at least half of the planned window observed healthy (at least 1)."""
    if planned is None:
        return 1
    return max(1, math.ceil(planned / 2))


def window_verdict(
    verdicts: list[str], consecutive_failures: int, min_samples: int
) -> tuple[str, str]:
    """The verdict of a window of sample verdicts (in order).

    fail: some run of ``consecutive_failures`` fails, with only inconclusive samples allowed
    in between (see update_streak). pass: no such run and at least ``min_samples`` passing
    samples. inconclusive: neither (too little data to call it either way).
    """
    streak = 0
    for index, verdict in enumerate(verdicts):
        streak = update_streak(streak, verdict)
        if streak >= consecutive_failures:
            return (
                FAIL,
                f"{consecutive_failures} consecutive failing samples (at sample {index + 1})",
            )
    passes = verdicts.count(PASS)
    if passes >= min_samples:
        return (
            PASS,
            f"{passes} passing samples (at least {min_samples} needed), no failure streak",
        )
    inconclusive = verdicts.count(INCONCLUSIVE)
    return (
        INCONCLUSIVE,
        (
            f"only {passes} passing samples of {len(verdicts)} "
            f"(at least {min_samples} needed); {inconclusive} inconclusive"
        ),
    )


def longest_inconclusive_run(verdicts: list[str]) -> int:
    longest = current = 0
    for verdict in verdicts:
        current = current + 1 if verdict == INCONCLUSIVE else 0
        longest = max(longest, current)
    return longest


def should_alert(verdict: str, verdicts: list[str], consecutive_failures: int) -> bool:
    """Alertable: the window is inconclusive, or the guard was blind for as long as it needs
    to detect a failure (``consecutive_failures`` inconclusive samples in a row)."""
    if verdict == INCONCLUSIVE:
        return True
    return longest_inconclusive_run(verdicts) >= consecutive_failures


def validate_settings(
    interval: float,
    duration: float | None,
    samples: int | None,
    consecutive_failures: int,
    min_samples: int | None,
    error_rate_threshold: float,
    latency_threshold_seconds: float,
    until_stopped: bool = False,
) -> None:
    """Bad settings raise a ChaosError naming the field and the allowed values."""

    def bad(option: str, allowed: str, value: Any) -> ChaosError:
        return ChaosError(
            f"{option} must be {allowed}, got {value!r}.",
            reason="invalid_input",
            field=option,
        )

    if not interval > 0 or math.isinf(interval):
        raise bad("interval", "a number of seconds greater than 0", interval)
    if duration is not None and (duration < 0 or math.isinf(duration)):
        raise bad("duration", "a number of seconds of at least 0", duration)
    if samples is not None and samples < 1:
        raise bad("samples", "an integer of at least 1", samples)
    if consecutive_failures < 1:
        raise bad(
            "consecutive_failures", "an integer of at least 1", consecutive_failures
        )
    if min_samples is not None and min_samples < 1:
        raise bad("min_samples", "an integer of at least 1", min_samples)
    if not 0 <= error_rate_threshold <= 1:
        raise bad(
            "error_rate_threshold",
            "a ratio from 0 to 1 (0.05 is 5%)",
            error_rate_threshold,
        )
    if not latency_threshold_seconds > 0:
        raise bad(
            "latency_threshold",
            "a number of seconds greater than 0",
            latency_threshold_seconds,
        )
    if until_stopped:
        return
    planned = planned_samples(interval, duration, samples)
    if planned is None:
        raise ChaosError(
            "Set duration or samples (or both) to bound the analysis window.",
            reason="invalid_input",
            field="duration, samples",
        )
    if min_samples is not None and min_samples > planned:
        raise ChaosError(
            f"min_samples must be at most the {planned} samples the window takes, got {min_samples}.",
            reason="invalid_input",
            field="min_samples",
        )


def isoformat(moment: float) -> str:
    """A Unix time as an ISO 8601 UTC string with milliseconds."""
    stamp = datetime.datetime.fromtimestamp(moment, datetime.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


@dataclass
class Measurement:
    time: float
    error_rate: Reading
    p99_seconds: Reading
    verdict: str
    reason: str
    streak: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "time": isoformat(self.time),
            "timestamp": round(self.time, 3),
            "error_rate": self.error_rate.value,
            "p99_seconds": self.p99_seconds.value,
            "verdict": self.verdict,
            "reason": self.reason,
            "consecutive_failures": self.streak,
        }


@dataclass
class Settings:
    interval: float = 10.0
    duration: float | None = None
    samples: int | None = None
    consecutive_failures: int = DEFAULT_CONSECUTIVE_FAILURES
    min_samples: int | None = None
    error_rate_threshold: float = DEFAULT_ERROR_RATE_THRESHOLD
    latency_threshold_seconds: float = DEFAULT_LATENCY_THRESHOLD_SECONDS
    until_stopped: bool = False

    def validate(self) -> None:
        validate_settings(
            self.interval,
            self.duration,
            self.samples,
            self.consecutive_failures,
            self.min_samples,
            self.error_rate_threshold,
            self.latency_threshold_seconds,
            self.until_stopped,
        )

    @property
    def planned(self) -> int | None:
        if self.until_stopped:
            return None
        return planned_samples(self.interval, self.duration, self.samples)

    @property
    def effective_min_samples(self) -> int:
        if self.min_samples is not None:
            return self.min_samples
        return default_min_samples(self.planned)


# query(promql, at_unix_time) -> Reading; never raises for Prometheus trouble.
QueryFunc = Callable[[str, float], Reading]


@dataclass
class WindowResult:
    verdict: str
    reason: str
    measurements: list[Measurement] = field(default_factory=list)
    started: float = 0.0
    ended: float = 0.0
    first_fail_time: float | None = None
    detected_time: float | None = None
    stopped: bool = False

    @property
    def verdicts(self) -> list[str]:
        return [m.verdict for m in self.measurements]


class Analyzer:
    """Feeds samples one at a time and knows the window's state (used by the loop and the controller)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.measurements: list[Measurement] = []
        self.streak = 0
        self.streak_start: float | None = None

    def add(
        self, moment: float, error_rate: Reading, p99_seconds: Reading
    ) -> Measurement:
        verdict, reason = sample_verdict(
            error_rate,
            p99_seconds,
            self.settings.error_rate_threshold,
            self.settings.latency_threshold_seconds,
        )
        before = self.streak
        self.streak = update_streak(self.streak, verdict)
        if self.streak == 0:
            self.streak_start = None
        elif before == 0 and self.streak == 1:
            self.streak_start = moment
        measurement = Measurement(
            moment, error_rate, p99_seconds, verdict, reason, self.streak
        )
        self.measurements.append(measurement)
        return measurement

    @property
    def failed(self) -> bool:
        return self.streak >= self.settings.consecutive_failures

    def reset(self) -> None:
        """Start a new window (the controller does this after a rollback)."""
        self.measurements = []
        self.streak = 0
        self.streak_start = None

    def verdict(self) -> tuple[str, str]:
        return window_verdict(
            [m.verdict for m in self.measurements],
            self.settings.consecutive_failures,
            self.settings.effective_min_samples,
        )


def take_sample(
    query: QueryFunc, error_rate_query: str, latency_query: str, moment: float
) -> tuple[Reading, Reading]:
    """Both readings, evaluated by Prometheus at the same instant."""
    return query(error_rate_query, moment), query(latency_query, moment)


def run_window(
    settings: Settings,
    query: QueryFunc,
    error_rate_query: str,
    latency_query: str,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    on_sample: Callable[[Measurement], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> WindowResult:
    """Sample at a fixed cadence until the window ends or the failure streak is reached.

    The cadence is anchored to the start (sample k is due at start + k * interval), so a
    slow query does not stretch the window; a sample that is overdue is taken at once.
    """
    analyzer = Analyzer(settings)
    planned = settings.planned
    started = clock()
    result = WindowResult(verdict=INCONCLUSIVE, reason="", started=started)
    index = 0
    while planned is None or index < planned:
        if should_stop is not None and should_stop():
            result.stopped = True
            break
        due = started + index * settings.interval
        wait = due - clock()
        if wait > 0:
            sleep(wait)
        moment = clock()
        error_rate, p99 = take_sample(query, error_rate_query, latency_query, moment)
        measurement = analyzer.add(moment, error_rate, p99)
        if on_sample is not None:
            on_sample(measurement)
        index += 1
        if analyzer.failed:
            result.first_fail_time = analyzer.streak_start
            result.detected_time = moment
            break
    result.measurements = analyzer.measurements
    result.ended = clock()
    result.verdict, result.reason = analyzer.verdict()
    return result


def summarize(result: WindowResult, settings: Settings) -> dict[str, Any]:
    """The counts and alert flag a module or the controller reports for a window."""
    verdicts = result.verdicts
    inconclusive_reasons = [
        m.reason for m in result.measurements if m.verdict == INCONCLUSIVE
    ]
    return {
        "verdict": result.verdict,
        "verdict_reason": result.reason,
        "samples": len(verdicts),
        "passed": verdicts.count(PASS),
        "failed": verdicts.count(FAIL),
        "inconclusive": verdicts.count(INCONCLUSIVE),
        "alert": should_alert(result.verdict, verdicts, settings.consecutive_failures),
        "inconclusive_reason": inconclusive_reasons[-1]
        if inconclusive_reasons
        else None,
        "started_at": isoformat(result.started),
        "ended_at": isoformat(result.ended),
        "first_fail_at": isoformat(result.first_fail_time)
        if result.first_fail_time is not None
        else None,
        "detected_at": isoformat(result.detected_time)
        if result.detected_time is not None
        else None,
    }

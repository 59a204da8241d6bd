# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The canary verdict rules: boundaries, consecutive counting, inconclusive never a fail."""

from __future__ import annotations

import math

import pytest
from ansible_collections.veritas.chaos.plugins.module_utils._analysis import (
    FAIL,
    INCONCLUSIVE,
    PASS,
    Analyzer,
    Reading,
    Settings,
    default_min_samples,
    default_query,
    metric_verdict,
    planned_samples,
    run_window,
    sample_verdict,
    should_alert,
    summarize,
    update_streak,
    validate_settings,
    window_verdict,
)
from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError

OK = Reading(0.01)
SLOW_OK = Reading(0.1)


def fail_reading() -> Reading:
    return Reading(0.2)


# --- one metric, one sample -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "threshold", "expected"),
    [
        (0.0, 0.05, PASS),
        (0.0499, 0.05, PASS),
        (0.05, 0.05, PASS),  # the threshold itself passes: rules trigger on "exceeding"
        (0.050001, 0.05, FAIL),
        (1.0, 0.05, FAIL),
        (0.5, 0.5, PASS),
        (0.5001, 0.5, FAIL),
        (None, 0.05, INCONCLUSIVE),
        (math.nan, 0.05, INCONCLUSIVE),
    ],
)
def test_metric_verdict_boundaries(value, threshold, expected):
    assert metric_verdict(value, threshold) == expected


def test_reading_of_nan_is_no_data():
    reading = Reading.of(math.nan)
    assert reading.value is None
    assert reading.reason.startswith("no_data")
    assert Reading.of(None).reason == "no_data"
    assert Reading.of(0.3).value == 0.3


def test_sample_passes_when_both_within_thresholds():
    verdict, reason = sample_verdict(Reading(0.05), Reading(0.5), 0.05, 0.5)
    assert verdict == PASS
    assert reason == "within thresholds"


def test_sample_fails_on_error_rate_alone():
    verdict, reason = sample_verdict(Reading(0.2), Reading(0.1), 0.05, 0.5)
    assert verdict == FAIL
    assert "error_rate 0.2 > 0.05" in reason


def test_sample_fails_on_latency_alone():
    verdict, reason = sample_verdict(Reading(0.0), Reading(1.5), 0.05, 0.5)
    assert verdict == FAIL
    assert "p99_seconds 1.5s > 0.5s" in reason


def test_confirmed_breach_fails_even_when_the_other_metric_has_no_data():
    verdict, _reason = sample_verdict(Reading(0.3), Reading(None, "no_data"), 0.05, 0.5)
    assert verdict == FAIL


@pytest.mark.parametrize(
    "reason",
    [
        "no_data: empty vector",
        "query_error: bad_data: parse error",
        "unreachable: http://127.0.0.1:1: refused",
    ],
)
def test_missing_metric_is_inconclusive_never_fail(reason):
    verdict, why = sample_verdict(Reading(None, reason), Reading(0.1), 0.05, 0.5)
    assert verdict == INCONCLUSIVE
    assert reason in why
    verdict, _reason = sample_verdict(
        Reading(None, reason), Reading(None, reason), 0.05, 0.5
    )
    assert verdict == INCONCLUSIVE


# --- consecutive counting ---------------------------------------------------------------


def test_streak_extends_on_fail_resets_on_pass_holds_on_inconclusive():
    assert update_streak(0, FAIL) == 1
    assert update_streak(2, FAIL) == 3
    assert update_streak(2, PASS) == 0
    assert update_streak(2, INCONCLUSIVE) == 2
    assert update_streak(0, INCONCLUSIVE) == 0


def test_window_fails_on_n_consecutive():
    verdict, reason = window_verdict([PASS, FAIL, FAIL, FAIL], 3, 1)
    assert verdict == FAIL
    assert "at sample 4" in reason


def test_pass_resets_the_count():
    # 2 fails, a pass, 2 fails: never 3 in a row
    verdicts = [FAIL, FAIL, PASS, FAIL, FAIL, PASS]
    assert window_verdict(verdicts, 3, 1)[0] == PASS


def test_fail_pass_alternating_never_fails():
    assert window_verdict([FAIL, PASS] * 10, 2, 1)[0] == PASS


def test_inconclusive_does_not_count_as_fail():
    assert window_verdict([INCONCLUSIVE] * 10, 3, 1)[0] == INCONCLUSIVE
    assert window_verdict([FAIL, FAIL, INCONCLUSIVE, PASS, PASS], 3, 1)[0] == PASS


def test_inconclusive_gap_neither_extends_nor_resets():
    assert window_verdict([FAIL, FAIL, INCONCLUSIVE, FAIL], 3, 1)[0] == FAIL
    assert (
        window_verdict([FAIL, INCONCLUSIVE, INCONCLUSIVE, FAIL], 3, 1)[0]
        == INCONCLUSIVE
    )
    # two confirmed fails around a gap are still only two
    assert window_verdict([FAIL, INCONCLUSIVE, FAIL, PASS, PASS], 3, 2)[0] == PASS


def test_consecutive_failures_of_one_fails_on_first_fail():
    assert window_verdict([PASS, FAIL], 1, 1)[0] == FAIL


def test_window_needs_min_samples_to_pass():
    assert window_verdict([PASS, INCONCLUSIVE, INCONCLUSIVE], 3, 2)[0] == INCONCLUSIVE
    assert window_verdict([PASS, PASS, INCONCLUSIVE], 3, 2)[0] == PASS
    assert window_verdict([], 3, 1)[0] == INCONCLUSIVE


@pytest.mark.parametrize(
    ("interval", "duration", "samples", "expected"),
    [
        (1.0, 10.0, None, 11),
        (0.5, 2.0, None, 5),
        (10.0, 5.0, None, 1),
        (1.0, None, 4, 4),
        (1.0, 10.0, 4, 4),
        (1.0, 2.0, 40, 3),
        (0.1, 0.3, None, 4),  # float rounding must not lose the last sample
        (1.0, None, None, None),
    ],
)
def test_planned_samples(interval, duration, samples, expected):
    assert planned_samples(interval, duration, samples) == expected


def test_default_min_samples_is_half_rounded_up():
    assert default_min_samples(1) == 1
    assert default_min_samples(5) == 3
    assert default_min_samples(6) == 3
    assert default_min_samples(None) == 1


def test_alert_on_inconclusive_verdict_or_blind_streak():
    assert should_alert(INCONCLUSIVE, [INCONCLUSIVE], 3)
    assert not should_alert(PASS, [PASS, INCONCLUSIVE, INCONCLUSIVE, PASS], 3)
    assert should_alert(PASS, [PASS, INCONCLUSIVE, INCONCLUSIVE, INCONCLUSIVE, PASS], 3)
    assert not should_alert(FAIL, [FAIL, FAIL, FAIL], 3)


# --- settings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"interval": 0}, "interval"),
        ({"interval": -1}, "interval"),
        ({"duration": -1}, "duration"),
        ({"samples": 0}, "samples"),
        ({"consecutive_failures": 0}, "consecutive_failures"),
        ({"min_samples": 0}, "min_samples"),
        ({"min_samples": 11}, "min_samples"),
        ({"error_rate_threshold": 5}, "error_rate_threshold"),
        ({"error_rate_threshold": -0.1}, "error_rate_threshold"),
        ({"latency_threshold_seconds": 0}, "latency_threshold"),
        ({"duration": None, "samples": None}, "duration, samples"),
    ],
)
def test_bad_settings_name_the_field(kwargs, field):
    args = {
        "interval": 1.0,
        "duration": None,
        "samples": 10,
        "consecutive_failures": 3,
        "min_samples": None,
        "error_rate_threshold": 0.05,
        "latency_threshold_seconds": 0.5,
    }
    args.update(kwargs)
    with pytest.raises(ChaosError) as info:
        validate_settings(**args)
    assert info.value.reason == "invalid_input"
    assert info.value.details["field"] == field
    assert field.split(",")[0] in info.value.msg


def test_until_stopped_needs_no_window():
    validate_settings(1.0, None, None, 3, None, 0.05, 0.5, until_stopped=True)


def test_default_query():
    assert (
        default_query("veritas:error_ratio:rate30s", "canary")
        == 'max(veritas:error_ratio:rate30s{variant="canary"})'
    )
    assert (
        default_query("r", "canary", "veritas-lab")
        == 'max(r{variant="canary",namespace="veritas-lab"})'
    )


# --- the loop with a fake clock ---------------------------------------------------------


class FakeTime:
    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def scripted(
    readings: list[tuple[Reading, Reading]], fake: FakeTime, cost: float = 0.0
):
    """A query function that answers from a script: (error_rate, p99) per sample."""
    calls: list[tuple[str, float]] = []

    def query(promql: str, at: float) -> Reading:
        calls.append((promql, at))
        index = (len(calls) - 1) // 2
        fake.now += cost
        pair = readings[min(index, len(readings) - 1)]
        return pair[0] if promql == "err" else pair[1]

    return query, calls


def test_run_window_stops_early_on_failure_and_times_the_streak():
    fake = FakeTime()
    good = (OK, SLOW_OK)
    bad = (fail_reading(), SLOW_OK)
    query, calls = scripted([good, bad, bad, bad, good, good], fake)
    settings = Settings(interval=1.0, samples=10, consecutive_failures=3)
    result = run_window(
        settings, query, "err", "lat", clock=fake.clock, sleep=fake.sleep
    )
    assert result.verdict == FAIL
    assert len(result.measurements) == 4  # stopped at the 3rd consecutive fail
    assert result.first_fail_time == 1_000_001.0
    assert result.detected_time == 1_000_003.0
    assert [m.streak for m in result.measurements] == [0, 1, 2, 3]
    # both queries of a sample are evaluated at the same instant
    assert calls[2][1] == calls[3][1]


def test_run_window_pass_with_reset():
    fake = FakeTime()
    good = (OK, SLOW_OK)
    bad = (fail_reading(), SLOW_OK)
    query, _calls = scripted([bad, bad, good, bad, bad, good], fake)
    settings = Settings(interval=0.5, samples=6, consecutive_failures=3, min_samples=2)
    result = run_window(
        settings, query, "err", "lat", clock=fake.clock, sleep=fake.sleep
    )
    assert result.verdict == PASS
    assert len(result.measurements) == 6
    assert result.first_fail_time is None
    # with the default (half of the window must pass) two passes of six are not enough
    fake = FakeTime()
    query, _calls = scripted([bad, bad, good, bad, bad, good], fake)
    settings = Settings(interval=0.5, samples=6, consecutive_failures=3)
    result = run_window(
        settings, query, "err", "lat", clock=fake.clock, sleep=fake.sleep
    )
    assert result.verdict == INCONCLUSIVE


def test_run_window_no_data_is_inconclusive_and_alerts():
    fake = FakeTime()
    none = (
        Reading(None, "no_data: empty vector"),
        Reading(None, "no_data: empty vector"),
    )
    query, _calls = scripted([none], fake)
    settings = Settings(interval=1.0, samples=5)
    result = run_window(
        settings, query, "err", "lat", clock=fake.clock, sleep=fake.sleep
    )
    assert result.verdict == INCONCLUSIVE
    summary = summarize(result, settings)
    assert summary["alert"] is True
    assert "no_data" in summary["inconclusive_reason"]
    assert summary["failed"] == 0


def test_run_window_keeps_the_cadence_when_queries_are_slow():
    fake = FakeTime()
    query, _calls = scripted([(OK, SLOW_OK)], fake, cost=0.2)  # 0.4 s per sample
    settings = Settings(interval=1.0, samples=3)
    result = run_window(
        settings, query, "err", "lat", clock=fake.clock, sleep=fake.sleep
    )
    times = [m.time - result.started for m in result.measurements]
    assert times == pytest.approx([0.0, 1.0, 2.0])


def test_run_window_should_stop():
    fake = FakeTime()
    query, _calls = scripted([(OK, SLOW_OK)], fake)
    stops = iter([False, False, True])
    settings = Settings(interval=1.0, until_stopped=True)
    result = run_window(
        settings,
        query,
        "err",
        "lat",
        clock=fake.clock,
        sleep=fake.sleep,
        should_stop=lambda: next(stops),
    )
    assert result.stopped
    assert len(result.measurements) == 2


def test_analyzer_streak_start_resets_after_pass():
    analyzer = Analyzer(Settings(interval=1, samples=10))
    analyzer.add(1.0, fail_reading(), OK)
    analyzer.add(2.0, OK, OK)
    analyzer.add(3.0, fail_reading(), OK)
    analyzer.add(4.0, Reading(None, "no_data"), Reading(None, "no_data"))
    assert analyzer.streak == 1
    assert analyzer.streak_start == 3.0
    analyzer.add(5.0, fail_reading(), OK)
    analyzer.add(6.0, fail_reading(), OK)
    assert analyzer.failed
    assert analyzer.streak_start == 3.0
    analyzer.reset()
    assert analyzer.streak == 0 and analyzer.measurements == []

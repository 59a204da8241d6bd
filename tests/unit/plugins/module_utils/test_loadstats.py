# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_loadstats: one statistics function for the load generator's summary and the criteria."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible_collections.veritas.chaos.plugins.module_utils import _loadstats
from ansible_collections.veritas.chaos.plugins.module_utils._loadstats import (
    DEFAULT_MIN_SAMPLES,
    check_record,
    percentile,
    record_time,
    summarize_run,
    window_stats,
)


def rec(sent, status=200, latency_ms=10.0, variant="control", pod="control-0", **extra):
    return {"sent": sent, "status": status, "latency_ms": latency_ms, "variant": variant, "pod": pod, **extra}


def steady(n, start=1000.0, step=0.01, **kw):
    return [rec(start + i * step, **kw) for i in range(n)]


@pytest.mark.parametrize(
    ("values", "pct", "expected"),
    [
        ([], 50, None),
        ([7.0], 99, 7.0),
        ([1.0, 2.0], 50, 1.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.0),
        ([float(i) for i in range(1, 101)], 99, 99.0),
        ([float(i) for i in range(1, 101)], 100, 100.0),
        ([float(i) for i in range(1, 101)], 0, 1.0),
    ],
)
def test_percentile_nearest_rank(values, pct, expected):
    assert percentile(values, pct) == expected


def test_error_ratio_counts_5xx_4xx_and_transport_errors():
    records = (steady(90) + [rec(2000, status=503)] * 4 + [rec(2000, status=404)] * 2
               + [rec(2000, status=0, variant="", pod="")] * 4)
    w = window_stats(records)
    assert w["measured"] is True
    assert (w["count"], w["ok"], w["errors"]) == (100, 90, 10)
    assert (w["http_5xx"], w["http_4xx"], w["transport_errors"], w["answered"]) == (4, 2, 4, 96)
    assert w["error_ratio"] == 0.1


def test_3xx_is_ok():
    w = window_stats(steady(30, status=302))
    assert (w["ok"], w["errors"], w["error_ratio"]) == (30, 0, 0.0)


def test_empty_window_is_not_measured_and_never_zero():
    w = window_stats([])
    assert w["measured"] is False
    assert (w["count"], w["errors"], w["ok"]) == (0, 0, 0)
    for key in ("error_ratio", "p50_ms", "p90_ms", "p99_ms", "max_ms", "shares", "first_sent", "last_sent"):
        assert w[key] is None, key
    assert w["variants"] == {}
    assert w["by_variant"] == {}


def test_tiny_window_keeps_counts_but_no_ratio():
    w = window_stats(steady(DEFAULT_MIN_SAMPLES - 1, status=500))
    assert w["measured"] is False
    assert w["count"] == DEFAULT_MIN_SAMPLES - 1
    assert w["errors"] == DEFAULT_MIN_SAMPLES - 1
    assert isinstance(w["errors"], int)
    assert w["error_ratio"] is None
    assert w["p99_ms"] is None
    assert w["shares"] is None
    assert w["variants"] == {"control": DEFAULT_MIN_SAMPLES - 1}


def test_min_samples_is_the_boundary():
    records = steady(5)
    assert window_stats(records, min_samples=5)["measured"] is True
    assert window_stats(records, min_samples=5)["error_ratio"] == 0.0
    assert window_stats(records, min_samples=6)["measured"] is False
    assert window_stats(records, min_samples=6)["min_samples"] == 6


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "20", None])
def test_min_samples_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError, match="min_samples"):
        window_stats(steady(30), min_samples=bad)


def test_window_is_half_open_on_sent_time():
    records = [rec(t) for t in (9.99, 10.0, 10.5, 11.0, 11.01)]
    w = window_stats(records, since=10.0, until=11.0, min_samples=1)
    assert w["count"] == 2
    assert (w["first_sent"], w["last_sent"]) == (10.0, 10.5)
    assert window_stats(records, since=11.0, min_samples=1)["count"] == 2
    assert window_stats(records, until=10.0, min_samples=1)["count"] == 1


def test_window_that_ends_before_it_starts_is_refused():
    with pytest.raises(ValueError, match="ends"):
        window_stats(steady(30), since=20.0, until=10.0)


def test_unsent_request_counts_at_its_due_time_as_an_error():
    # A request the generator never sent (sent 0, "not completed") is still a failed request of
    # its window, not a request from 1970 that every `since` leaves out.
    records = steady(29, start=100.0) + [{"seq": 29, "due": 100.5, "sent": 0.0, "status": 0, "error": "not completed"}]
    assert record_time(records[-1]) == 100.5
    w = window_stats(records, since=100.0)
    assert (w["count"], w["transport_errors"], w["errors"]) == (30, 1, 1)


def test_latency_percentiles_of_answered_requests_only():
    records = [rec(1000 + i, latency_ms=float(i + 1)) for i in range(100)]
    records += [rec(1200, status=0, latency_ms=5000.0, variant="", pod="")]
    w = window_stats(records)
    assert (w["p50_ms"], w["p90_ms"], w["p99_ms"], w["max_ms"]) == (50.0, 90.0, 99.0, 100.0)
    # a 5xx answer has a latency and counts
    w = window_stats(records + [rec(1300, status=503, latency_ms=9000.0)])
    assert w["max_ms"] == 9000.0


def test_shares_per_variant_and_colour_among_answered():
    records = steady(90, variant="control") + steady(10, variant="canary", pod="canary-0")
    records += [rec(2000, status=0, variant="", pod="")] * 5
    w = window_stats(records)
    assert w["variants"] == {"canary": 10, "control": 90}
    assert w["shares"] == {"canary": 0.1, "control": 0.9}
    assert w["by_variant"]["canary"]["share"] == 0.1
    assert w["pods"] == {"canary-0": 10, "control-0": 90}
    colours = window_stats(steady(30, variant="blue", pod="blue-0") + steady(30, variant="green", pod="green-0"))
    assert colours["shares"] == {"blue": 0.5, "green": 0.5}


def test_missing_variant_header_is_dash():
    w = window_stats(steady(30, variant="", pod=""))
    assert w["variants"] == {"-": 30}
    assert w["pods"] == {}


def test_by_variant_measures_each_variant_on_its_own():
    records = steady(90, variant="control") + steady(5, variant="canary", status=500)
    w = window_stats(records)
    assert w["by_variant"]["control"]["measured"] is True
    assert w["by_variant"]["control"]["error_ratio"] == 0.0
    canary = w["by_variant"]["canary"]
    assert (canary["measured"], canary["count"], canary["errors"], canary["error_ratio"]) == (False, 5, 5, None)


def test_variant_filter_and_its_sample():
    records = steady(90, variant="control") + steady(10, variant="canary", pod="canary-0", status=503)
    w = window_stats(records, variant="canary")
    assert (w["count"], w["errors"], w["measured"]) == (10, 10, False)
    assert window_stats(records, variant="canary", min_samples=10)["error_ratio"] == 1.0
    assert window_stats(records, variant="blue")["count"] == 0


def test_exclude_pods():
    records = steady(30, variant="canary", pod="canary-old") + steady(25, start=2000, variant="canary", pod="canary-new")
    w = window_stats(records, exclude_pods=["canary-old"])
    assert w["count"] == 25
    assert w["pods"] == {"canary-new": 25}
    assert w["first_sent"] == 2000
    assert window_stats(records, exclude_pods=None)["count"] == 55


def test_last_sent_by_variant():
    records = steady(30, variant="control") + [rec(1005.0, variant="canary"), rec(1003.0, variant="canary")]
    w = window_stats(records)
    assert w["last_sent_by_variant"]["canary"] == 1005.0
    assert w["last_sent_by_variant"]["control"] == pytest.approx(1000.29)


def test_wrong_answers_and_checked():
    records = steady(20, correct=True) + steady(3, correct=False) + steady(7)
    w = window_stats(records)
    assert (w["checked"], w["wrong_answers"]) == (23, 3)


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({"sent": "soon", "status": 200}, "sent"),
        ({"sent": 1.0, "status": "ok"}, "status"),
        ({"sent": 1.0, "status": 200, "latency_ms": [1]}, "latency_ms"),
        ({"sent": True, "status": 200}, "sent"),
        ({"sent": 1.0, "status": 200, "correct": "yes"}, "correct"),
        ({"sent": 1.0, "status": 200, "variant": 3}, "variant"),
    ],
)
def test_check_record_names_the_bad_field(record, field):
    with pytest.raises(ValueError, match=field):
        check_record(record)
    with pytest.raises(ValueError, match=field):
        window_stats([record])


def test_a_record_must_be_a_mapping():
    with pytest.raises(ValueError, match="mapping"):
        window_stats([[1, 2]])


def test_pure_standard_library_only():
    source = Path(_loadstats.__file__).read_text()
    imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert all("ansible" not in line for line in imports), imports


def test_the_run_summary_is_window_stats():
    records = [
        {"seq": i, "due": 1000 + i * 0.01, "sent": 1000 + i * 0.01, "latency_ms": float(i % 17),
         "status": 503 if i % 10 == 0 else 200, "variant": "canary" if i % 10 == 3 else "control",
         "pod": f"p{i % 3}", "correct": (i % 7 != 0)}
        for i in range(300)
    ]
    summary = summarize_run(records)
    stats = window_stats(records)
    for key in ("count", "ok", "errors", "error_ratio", "p50_ms", "p99_ms", "wrong_answers", "measured"):
        assert summary[key] == stats[key], key
    assert summary["total"] == 300
    assert summary["variants"] == stats["by_variant"]
    assert summary["variants"]["canary"]["share"] == 0.1
    assert [row["count"] for row in summary["seconds"]] == [100, 100, 100]
    # the summary of a tiny run is not measured either
    tiny = summarize_run(records[:5])
    assert tiny["measured"] is False
    assert tiny["error_ratio"] is None
    assert summarize_run([])["measured"] is False

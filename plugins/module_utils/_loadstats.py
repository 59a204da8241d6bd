# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Statistics of recorded load responses: the one function behind every load number.

The load module's run summary (``http_load``: :func:`summarize_run`) and the ``load_window``
lookup (the game days' criteria) both call :func:`window_stats`, so a steady state and a criterion measured
over the same records give the same numbers.

A record is a mapping with ``sent`` (epoch seconds; 0 when never sent, then ``due`` is its
time), ``status`` (HTTP status, 0 on a transport error), ``latency_ms``, ``variant`` and
``pod`` (the ``X-Veritas-Variant`` and ``X-Veritas-Pod`` headers) and optionally ``correct``
(the answer was checked: true or false; null when not checked).

A window with fewer than ``min_samples`` requests is *not measured*: its ratios, percentiles
and shares are None, never a number that could pass a criterion. Counts stay integers.

Pure: standard library only, no I/O, nothing imported from Ansible, so that the load
generator loads this very file.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# Below this many requests a window's ratios and percentiles say too little: one error in 10
# requests is 10 %, a P99 of 19 values is their maximum.
DEFAULT_MIN_SAMPLES = 20
NO_VARIANT = "-"


class LoadRecordError(ValueError):
    """A record, or a window asked for, that the statistics cannot use; the message names the field."""


def percentile(sorted_values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile of an ascending sequence; None when it is empty."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(pct / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def _number(record: Mapping[str, Any], key: str, default: float = 0.0) -> float:
    value = record.get(key)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise LoadRecordError(f"record {key!r} must be a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise LoadRecordError(f"record {key!r} must be a number, got {value!r}") from None


def _status(record: Mapping[str, Any]) -> int:
    return int(_number(record, "status"))


def record_time(record: Mapping[str, Any]) -> float:
    """When the request was sent; its due time when it never was (a request left unsent)."""
    sent = _number(record, "sent")
    return sent if sent else _number(record, "due")


def check_record(record: Any) -> Mapping[str, Any]:
    """The record itself when its fields have the types above; otherwise a LoadRecordError naming the field."""
    if not isinstance(record, Mapping):
        raise LoadRecordError(f"a record must be a mapping, got {type(record).__name__}: {record!r}")
    for key in ("sent", "due", "status", "latency_ms"):
        _number(record, key)
    if record.get("correct") not in (None, True, False):
        raise LoadRecordError(f"record 'correct' must be true, false or null, got {record['correct']!r}")
    for key in ("variant", "pod"):
        if not isinstance(record.get(key) or "", str):
            raise LoadRecordError(f"record {key!r} must be a string, got {record[key]!r}")
    return record


def _is_ok(status: int) -> bool:
    return 200 <= status < 400


def _stats(picked: list[Mapping[str, Any]], min_samples: int, detail: bool) -> dict[str, Any]:
    count = len(picked)
    measured = count > 0 and count >= min_samples
    statuses = [_status(r) for r in picked]
    answered = [r for r, status in zip(picked, statuses) if status]
    ok = sum(1 for status in statuses if _is_ok(status))
    errors = count - ok
    latencies = sorted(_number(r, "latency_ms") for r in answered)
    checked = [r for r in picked if r.get("correct") is not None]
    stats: dict[str, Any] = {
        "measured": measured,
        "min_samples": min_samples,
        "count": count,
        "answered": len(answered),
        "ok": ok,
        "errors": errors,
        "http_4xx": sum(1 for status in statuses if 400 <= status < 500),
        "http_5xx": sum(1 for status in statuses if status >= 500),
        "transport_errors": count - len(answered),
        "checked": len(checked),
        "wrong_answers": sum(1 for r in checked if r.get("correct") is False),
        "error_ratio": round(errors / count, 6) if measured else None,
        "p50_ms": percentile(latencies, 50) if measured else None,
        "p90_ms": percentile(latencies, 90) if measured else None,
        "p99_ms": percentile(latencies, 99) if measured else None,
        "max_ms": latencies[-1] if measured and latencies else None,
        "first_sent": min((record_time(r) for r in picked), default=None),
        "last_sent": max((record_time(r) for r in picked), default=None),
    }
    if not detail:
        return stats
    by_variant: dict[str, list[Mapping[str, Any]]] = {}
    pods: dict[str, int] = {}
    for record in answered:
        by_variant.setdefault(record.get("variant") or NO_VARIANT, []).append(record)
        if record.get("pod"):
            pods[record["pod"]] = pods.get(record["pod"], 0) + 1
    variants = {name: len(rs) for name, rs in sorted(by_variant.items())}
    stats.update(
        variants=variants,
        shares={name: round(n / len(answered), 6) for name, n in variants.items()} if measured else None,
        pods=dict(sorted(pods.items())),
        last_sent_by_variant={name: max(record_time(r) for r in rs) for name, rs in sorted(by_variant.items())},
        by_variant={
            name: {
                **_stats(rs, min_samples, detail=False),
                "share": round(len(rs) / len(answered), 6) if measured else None,
            }
            for name, rs in sorted(by_variant.items())
        },
    )
    return stats


def window_stats(
    records: Iterable[Mapping[str, Any]],
    since: float | None = None,
    until: float | None = None,
    variant: str | None = None,
    exclude_pods: Iterable[str] | None = (),
    min_samples: int = DEFAULT_MIN_SAMPLES,
) -> dict[str, Any]:
    """Statistics of the requests sent in [since, until), optionally only those one variant answered.

    Returns ``measured`` (at least ``min_samples`` requests in the window), the counts
    ``count`` (requests), ``answered`` (with an HTTP status), ``ok`` (2xx/3xx), ``errors``
    (every other request), ``http_4xx``, ``http_5xx``, ``transport_errors``, ``checked``
    (answers checked) and ``wrong_answers``; ``error_ratio`` and the latency percentiles
    ``p50_ms``, ``p90_ms``, ``p99_ms``, ``max_ms`` of the answered requests (None when not
    measured); ``variants`` and ``pods`` (answered requests per variant header, ``-`` when it
    is missing, and per pod), ``shares`` (each variant's share of the answered requests, None
    when not measured), ``by_variant`` (the same statistics and ``share`` per variant, each
    variant measured on its own requests), ``first_sent``, ``last_sent`` and
    ``last_sent_by_variant`` (epoch seconds).
    """
    if isinstance(min_samples, bool) or not isinstance(min_samples, int) or min_samples < 1:
        raise LoadRecordError(f"min_samples must be an integer of at least 1, got {min_samples!r}")
    if since is not None and until is not None and until < since:
        raise LoadRecordError(f"the window ends ({until}) before it starts ({since})")
    excluded = set(exclude_pods or ())
    picked = []
    for record in records:
        record = check_record(record)
        moment = record_time(record)
        if since is not None and moment < since:
            continue
        if until is not None and moment >= until:
            continue
        if variant is not None and (record.get("variant") or None) != variant:
            continue
        if excluded and record.get("pod") in excluded:
            continue
        picked.append(record)
    return _stats(picked, min_samples, detail=True)


def _without(stats: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in stats.items() if k not in keys}


def summarize_run(
    records: Iterable[Mapping[str, Any]], min_samples: int = DEFAULT_MIN_SAMPLES
) -> dict[str, Any]:
    """Summary of a whole load run: totals, per variant and per second (by due time).

    Every number is :func:`window_stats`'; the dictionary (``http_load``'s summary) has ``total``, ``started`` (first due time), ``duration_s``,
    ``achieved_rate``, the whole run's statistics without its per-variant keys, ``variants``
    (the whole run's ``by_variant``) and ``seconds`` (per second of due time, ``second`` and
    that second's statistics without the per-variant keys).
    """
    rows = [check_record(record) for record in records]
    if not rows:
        empty = window_stats([], min_samples=min_samples)
        return {"total": 0, **empty, "variants": {}, "seconds": []}
    start = min(_number(row, "due") for row in rows)
    whole = window_stats(rows, min_samples=min_samples)
    by_second: dict[int, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_second.setdefault(int(_number(row, "due") - start), []).append(row)
    seconds = [
        {
            "second": sec,
            **_without(
                window_stats(by_second[sec], min_samples=min_samples),
                "by_variant",
                "shares",
                "pods",
                "last_sent_by_variant",
            ),
        }
        for sec in sorted(by_second)
    ]
    duration = max(_number(row, "due") for row in rows) - start
    total = len(rows)
    return {
        "total": total,
        "started": start,
        "duration_s": round(duration, 3),
        "achieved_rate": (
            round((total - 1) / duration, 2) if duration > 0 else float(total)
        ),
        **_without(whole, "variants", "by_variant", "last_sent_by_variant"),
        "variants": whole["by_variant"],
        "seconds": seconds,
    }

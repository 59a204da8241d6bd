# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Confirm an injection through Prometheus: wait until an instant query meets a condition.

Used by runtime_fault (confirm_with=prometheus): "the error ratio rose above 0.1",
"the pod's metrics are gone". The condition must hold for every returned sample, and an
empty result only satisfies ``no_data``, so a query that matches nothing never confirms
an ``above``/``below`` condition by accident.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import Any

from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError
from ansible_collections.veritas.chaos.plugins.module_utils._prometheus import (
    PrometheusClient,
)

CONDITIONS: tuple[str, ...] = ("above", "below", "no_data")


def parse_query_response(body: Any) -> list[dict[str, Any]]:
    """Samples of an instant query response ({labels, value}); a ChaosError if it failed."""
    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body)
        except ValueError as exc:
            raise ChaosError(
                "Prometheus returned something other than JSON.",
                reason="prometheus_error",
            ) from exc
    if not isinstance(body, dict) or body.get("status") != "success":
        error = body.get("error") if isinstance(body, dict) else None
        raise ChaosError(
            f"Prometheus query failed: {error or body!r}", reason="prometheus_error"
        )
    data = body.get("data") or {}
    kind = data.get("resultType")
    result = data.get("result")
    if kind in ("scalar", "string"):
        return [{"labels": {}, "value": _value(result)}]
    if kind != "vector":
        raise ChaosError(
            f"The query must return an instant vector or a scalar, got {kind}.",
            reason="invalid_input",
            field="prometheus.query",
        )
    return [
        {
            "labels": dict(sample.get("metric") or {}),
            "value": _value(sample.get("value")),
        }
        for sample in result or []
    ]


def _value(pair: Any) -> float:
    try:
        return float(pair[1])
    except (TypeError, ValueError, IndexError):
        return math.nan


def condition_holds(
    samples: list[dict[str, Any]], condition: str, threshold: float | None
) -> bool:
    """above/below: every sample is a number beyond threshold (and there is one); no_data: none."""
    if condition == "no_data":
        return not samples
    if not samples or threshold is None:
        return False
    values = [sample["value"] for sample in samples]
    if any(math.isnan(value) for value in values):
        return False
    if condition == "above":
        return all(value > threshold for value in values)
    if condition == "below":
        return all(value < threshold for value in values)
    raise ChaosError(
        "prometheus.condition must be one of {}, got {!r}.".format(
            ", ".join(CONDITIONS), condition
        ),
        reason="invalid_input",
        field="prometheus.condition",
    )


def validate_confirm_options(options: dict[str, Any] | None) -> None:
    if not options:
        raise ChaosError(
            "confirm_with=prometheus needs the prometheus option (url, query, condition, threshold).",
            reason="invalid_input",
            field="prometheus",
        )
    for field in ("url", "query"):
        if not str(options.get(field) or "").strip():
            raise ChaosError(
                f"prometheus.{field} is required with confirm_with=prometheus.",
                reason="invalid_input",
                field=f"prometheus.{field}",
            )
    condition = options.get("condition")
    if condition not in CONDITIONS:
        raise ChaosError(
            "prometheus.condition must be one of {}, got {!r}.".format(
                ", ".join(CONDITIONS), condition
            ),
            reason="invalid_input",
            field="prometheus.condition",
        )
    if condition != "no_data" and options.get("threshold") is None:
        raise ChaosError(
            f"prometheus.threshold is required with prometheus.condition={condition}.",
            reason="invalid_input",
            field="prometheus.threshold",
        )
    for field in ("timeout", "interval"):
        value = options.get(field)
        if value is not None and value <= 0:
            raise ChaosError(
                f"prometheus.{field} must be a number above 0, got {value}.",
                reason="invalid_input",
                field=f"prometheus.{field}",
            )


def instant_query(
    base_url: str,
    query: str,
    validate_certs: bool = True,
    bearer_token: str | None = None,
    timeout: float = 10,
) -> list[dict[str, Any]]:
    """Run an instant query; the samples, or a ChaosError (unreachable, HTTP error, bad query)."""
    try:
        client = PrometheusClient(
            base_url,
            timeout=timeout,
            bearer_token=bearer_token,
            validate_certs=validate_certs,
        )
    except ChaosError as exc:
        # Not an http(s) URL: no answer, as with a refused connection (retried until timeout).
        raise ChaosError(
            f"Prometheus at {base_url} unreachable: {exc.msg}",
            reason="prometheus_error",
        ) from exc
    try:
        # An HTTP error's JSON body comes back as the answer: Prometheus explains itself there.
        payload = client.fetch(query)
    except ValueError as exc:
        raise ChaosError(
            "Prometheus returned something other than JSON.", reason="prometheus_error"
        ) from exc
    except Exception as exc:  # connection refused, TLS, timeout
        raise ChaosError(
            f"Prometheus at {base_url} unreachable: {exc}", reason="prometheus_error"
        ) from exc
    return parse_query_response(payload)


def wait_for_condition(
    options: dict[str, Any],
    query: Callable[[], list[dict[str, Any]]],
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll query() until the condition holds or options['timeout'] passes.

    Returns {confirmed, seconds, checks, samples, last_error}; query errors are retried
    until the deadline (Prometheus may lag a scrape or two behind the injection).
    """
    condition = options["condition"]
    threshold = options.get("threshold")
    timeout = float(options.get("timeout") or 60)
    interval = float(options.get("interval") or 2)
    start = clock()
    checks = 0
    samples: list[dict[str, Any]] = []
    last_error: str | None = None
    while True:
        checks += 1
        try:
            samples = query()
            last_error = None
            if condition_holds(samples, condition, threshold):
                return {
                    "confirmed": True,
                    "seconds": round(clock() - start, 3),
                    "checks": checks,
                    "samples": samples,
                    "last_error": None,
                }
        except ChaosError as exc:
            if exc.reason == "invalid_input":
                raise
            last_error = exc.msg
        if clock() - start + interval > timeout:
            return {
                "confirmed": False,
                "seconds": round(clock() - start, 3),
                "checks": checks,
                "samples": samples,
                "last_error": last_error,
            }
        sleep(interval)

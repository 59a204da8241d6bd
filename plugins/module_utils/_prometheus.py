# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A thin client for the Prometheus HTTP API instant query (``/api/v1/query``).

Standard library plus ansible's ``module_utils.urls`` (no third-party package). Every problem (unreachable, HTTP error, a PromQL error, an
unexpected answer, an empty vector, NaN) becomes a Reading without a value and with a
reason, because for the canary analysis each of them means the same thing: no data,
so the sample is inconclusive. Nothing here raises for Prometheus trouble.
"""

from __future__ import annotations

import json
import math
import ssl
import urllib.error
import urllib.parse
from typing import Any

from ansible.module_utils.urls import ConnectionError as UrlConnectionError
from ansible.module_utils.urls import Request, make_context
from ansible_collections.veritas.chaos.plugins.module_utils._analysis import Reading
from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError

NO_DATA = "no_data"
QUERY_ERROR = "query_error"
UNREACHABLE = "unreachable"
BAD_RESPONSE = "bad_response"


def validate_url(url: str) -> str:
    parsed = urllib.parse.urlparse(url or "")
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ChaosError(
            f"prometheus_url must be an http:// or https:// URL, got {url!r}.",
            reason="invalid_input",
            field="prometheus_url",
        )
    return url.rstrip("/")


def reading_from_response(payload: Any) -> Reading:
    """The value of an instant-query answer: the largest sample of a vector, or a scalar.

    An empty vector is no data; several series give the worst (largest) value, so that a
    query that forgot to aggregate cannot hide a failing series.
    """
    if not isinstance(payload, dict):
        return Reading(None, f"{BAD_RESPONSE}: not a JSON object")
    if payload.get("status") != "success":
        error = payload.get("error") or "status {}".format(payload.get("status"))
        return Reading(
            None, f"{QUERY_ERROR}: {payload.get('errorType', 'error')}: {error}"
        )
    data = payload.get("data") or {}
    result_type = data.get("resultType")
    result = data.get("result")
    values: list[float] = []
    try:
        if result_type == "vector":
            for series in result or []:
                values.append(float(series["value"][1]))
        elif result_type == "scalar":
            values.append(float(result[1]))
        else:
            return Reading(
                None,
                f"{BAD_RESPONSE}: resultType {result_type!r}, need vector or scalar",
            )
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        return Reading(None, f"{BAD_RESPONSE}: {exc}")
    if not values:
        return Reading(None, f"{NO_DATA}: empty vector")
    numbers = [value for value in values if not math.isnan(value)]
    if not numbers:
        return Reading(None, f"{NO_DATA}: NaN (no requests in the rate window)")
    return Reading(max(numbers), None)


class PrometheusClient:
    """GET /api/v1/query with optional bearer token or basic auth and TLS settings."""

    def __init__(
        self,
        url: str,
        timeout: float = 5.0,
        bearer_token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        validate_certs: bool = True,
        ca_cert: str | None = None,
    ) -> None:
        self.url = validate_url(url)
        self.timeout = timeout
        self.headers = {
            "Accept": "application/json",
            "User-Agent": "veritas.chaos/1.0.0",
        }
        if bearer_token:
            self.headers["Authorization"] = f"Bearer {bearer_token}"
        basic = bool(username) and not bearer_token
        # One TLS context for the client's life: building one per request (open_url does)
        # loads the CA store each time, about 150 ms, too slow for a 1 s sampling interval.
        self.request = Request(
            headers=self.headers,
            timeout=timeout,
            validate_certs=validate_certs,
            url_username=username if basic else None,
            url_password=password if basic else None,
            force_basic_auth=basic,
            use_netrc=False,
            context=make_context(cafile=ca_cert, validate_certs=validate_certs)
            if self.url.startswith("https://")
            # never used for http://, but Request would build a full one per call without it
            else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT),
        )

    def query_url(self, promql: str, at: float | None = None) -> str:
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return f"{self.url}/api/v1/query?{urllib.parse.urlencode(params)}"

    def fetch(self, promql: str, at: float | None = None) -> Any:
        """The decoded JSON answer; transport errors are raised to query()."""
        try:
            with self.request.open("GET", self.query_url(promql, at)) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            # Prometheus answers 400/422/503 with a JSON error body: keep its message.
            body = exc.read()
            try:
                return json.loads(body)
            except ValueError:
                return {
                    "status": "error",
                    "errorType": f"http_{exc.code}",
                    "error": body.decode("utf-8", errors="replace")[:200] or exc.reason,
                }

    def query(self, promql: str, at: float | None = None) -> Reading:
        try:
            payload = self.fetch(promql, at)
        except ValueError as exc:
            return Reading(None, f"{BAD_RESPONSE}: not JSON: {exc}")
        except (urllib.error.URLError, UrlConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            return Reading(None, f"{UNREACHABLE}: {self.url}: {reason}")
        return reading_from_response(payload)

    def reachable(self) -> tuple[bool, str | None]:
        """Whether Prometheus answers a trivial query (for pre-flight checks)."""
        reading = self.query("vector(1)")
        return reading.value is not None, reading.reason

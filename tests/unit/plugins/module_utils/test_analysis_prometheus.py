# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Prometheus query client against a tiny real HTTP server on 127.0.0.1 (prom_stub)."""

from __future__ import annotations

import pytest
from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError
from ansible_collections.veritas.chaos.plugins.module_utils._prometheus import (
    PrometheusClient,
    reading_from_response,
    validate_url,
)
from prom_stub import free_port


def vector(*values):
    return {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {"metric": {"variant": "canary", "n": str(i)}, "value": [1.0, str(v)]}
                for i, v in enumerate(values)
            ],
        },
    }


def test_value_and_evaluation_time(prom):
    prom.answers["err"] = vector(0.07)
    reading = PrometheusClient(prom.url).query("err", 1700000000.25)
    assert reading.value == pytest.approx(0.07)
    assert reading.reason is None
    request = prom.requests[-1]
    assert request["_path"] == ["/api/v1/query"]
    assert request["time"] == ["1700000000.250"]


def test_several_series_give_the_worst(prom):
    prom.answers["err"] = vector(0.01, 0.3, "NaN")
    assert PrometheusClient(prom.url).query("err").value == pytest.approx(0.3)


def test_empty_vector_is_no_data(prom):
    prom.answers["err"] = vector()
    reading = PrometheusClient(prom.url).query("err")
    assert reading.value is None
    assert reading.reason == "no_data: empty vector"


def test_nan_is_no_data(prom):
    prom.answers["err"] = vector("NaN")
    reading = PrometheusClient(prom.url).query("err")
    assert reading.value is None
    assert reading.reason.startswith("no_data")


def test_promql_error_is_a_query_error(prom):
    prom.answers["bad("] = (
        400,
        {"status": "error", "errorType": "bad_data", "error": "parse error"},
    )
    reading = PrometheusClient(prom.url).query("bad(")
    assert reading.value is None
    assert reading.reason == "query_error: bad_data: parse error"


def test_http_error_without_json(prom):
    prom.answers["x"] = (503, b"Service Unavailable")
    reading = PrometheusClient(prom.url).query("x")
    assert reading.value is None
    assert reading.reason.startswith("query_error: http_503")


def test_garbage_is_a_bad_response(prom):
    prom.answers["x"] = b"<html>"
    assert PrometheusClient(prom.url).query("x").reason.startswith("bad_response")


def test_unreachable_is_reported_not_raised():
    reading = PrometheusClient(f"http://127.0.0.1:{free_port()}", timeout=1).query("x")
    assert reading.value is None
    assert reading.reason.startswith("unreachable: http://127.0.0.1:")


def test_bearer_token_is_sent(prom):
    PrometheusClient(prom.url, bearer_token="s3cret").query("x")
    assert prom.requests[-1]["_auth"] == ["Bearer s3cret"]


def test_basic_auth_is_sent(prom):
    PrometheusClient(prom.url, username="u", password="p").query("x")
    assert prom.requests[-1]["_auth"] == ["Basic dTpw"]


def test_scalar_result():
    payload = {
        "status": "success",
        "data": {"resultType": "scalar", "result": [1, "0.5"]},
    }
    assert reading_from_response(payload).value == 0.5


def test_matrix_is_rejected():
    payload = {"status": "success", "data": {"resultType": "matrix", "result": []}}
    assert reading_from_response(payload).reason.startswith("bad_response")


@pytest.mark.parametrize("url", ["", "localhost:9090", "ftp://x", "http://"])
def test_bad_url_names_the_field(url):
    with pytest.raises(ChaosError) as info:
        validate_url(url)
    assert info.value.details["field"] == "prometheus_url"

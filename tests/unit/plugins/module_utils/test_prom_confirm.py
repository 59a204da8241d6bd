from __future__ import annotations

import math

import pytest
from ansible_collections.veritas.chaos.plugins.module_utils import _prom_confirm as pc
from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError
from prom_stub import free_port


def vector(*values):
    return {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {"metric": {"pod": f"p{i}"}, "value": [1.0, str(v)]}
                for i, v in enumerate(values)
            ],
        },
    }


def test_parse_query_response():
    assert pc.parse_query_response(vector(0.5)) == [
        {"labels": {"pod": "p0"}, "value": 0.5}
    ]
    scalar = pc.parse_query_response(
        {"status": "success", "data": {"resultType": "scalar", "result": [1.0, "3"]}}
    )
    assert scalar == [{"labels": {}, "value": 3.0}]
    assert math.isnan(pc.parse_query_response(vector("NaN"))[0]["value"])
    with pytest.raises(ChaosError) as caught:
        pc.parse_query_response({"status": "error", "error": "parse error at char 3"})
    assert (
        caught.value.reason == "prometheus_error" and "parse error" in caught.value.msg
    )
    with pytest.raises(ChaosError) as matrix:
        pc.parse_query_response(
            {"status": "success", "data": {"resultType": "matrix", "result": []}}
        )
    assert matrix.value.reason == "invalid_input"
    with pytest.raises(ChaosError):
        pc.parse_query_response(b"<html>")


def samples(*values):
    return pc.parse_query_response(vector(*values))


@pytest.mark.parametrize(
    ("values", "condition", "threshold", "holds"),
    [
        ((0.2,), "above", 0.1, True),
        ((0.1,), "above", 0.1, False),  # strictly above
        ((0.2, 0.05), "above", 0.1, False),  # every sample must meet it
        ((), "above", 0.1, False),  # no data never confirms above/below
        (("NaN",), "above", 0.1, False),
        ((0.01,), "below", 0.05, True),
        ((), "below", 0.05, False),
        ((), "no_data", None, True),
        ((1,), "no_data", None, False),
    ],
)
def test_condition_holds(values, condition, threshold, holds):
    assert pc.condition_holds(samples(*values), condition, threshold) is holds


def test_validate_confirm_options():
    pc.validate_confirm_options({"url": "u", "query": "q", "condition": "no_data"})
    for options, field in [
        (None, "prometheus"),
        (
            {"url": "", "query": "q", "condition": "above", "threshold": 1},
            "prometheus.url",
        ),
        ({"url": "u", "query": "q", "condition": "sideways"}, "prometheus.condition"),
        ({"url": "u", "query": "q", "condition": "below"}, "prometheus.threshold"),
        (
            {
                "url": "u",
                "query": "q",
                "condition": "above",
                "threshold": 1,
                "timeout": 0,
            },
            "prometheus.timeout",
        ),
    ]:
        with pytest.raises(ChaosError) as caught:
            pc.validate_confirm_options(options)
        assert caught.value.details["field"] == field


def test_instant_query_returns_the_samples(prom):
    query = 'up{job="x"} == 0'
    prom.answers[query] = vector(0.5, 2)
    found = pc.instant_query(prom.url + "/", query, bearer_token="s3cret")
    assert found == [
        {"labels": {"pod": "p0"}, "value": 0.5},
        {"labels": {"pod": "p1"}, "value": 2.0},
    ]
    request = prom.requests[-1]
    assert request["_path"] == ["/api/v1/query"] and request["query"] == [query]
    assert request["_auth"] == ["Bearer s3cret"]


def prometheus_error(call):
    with pytest.raises(ChaosError) as caught:
        call()
    assert caught.value.reason == "prometheus_error"
    return caught.value.msg


def test_instant_query_keeps_the_message_of_a_promql_error(prom):
    prom.answers["bad("] = (
        400,
        {"status": "error", "errorType": "bad_data", "error": "parse error at char 4"},
    )
    assert "parse error at char 4" in prometheus_error(
        lambda: pc.instant_query(prom.url, "bad(")
    )


def test_instant_query_http_error_without_json(prom):
    prom.answers["x"] = (503, b"Service Unavailable")
    assert "Service Unavailable" in prometheus_error(
        lambda: pc.instant_query(prom.url, "x")
    )


def test_instant_query_garbage(prom):
    prom.answers["x"] = b"<html>"
    assert "other than JSON" in prometheus_error(
        lambda: pc.instant_query(prom.url, "x")
    )


def test_instant_query_unreachable_or_no_url_is_retried_not_invalid():
    # prometheus_error (not invalid_input): wait_for_condition retries it until its timeout.
    url = f"http://127.0.0.1:{free_port()}"
    assert "unreachable" in prometheus_error(
        lambda: pc.instant_query(url, "x", timeout=1)
    )
    assert "unreachable" in prometheus_error(
        lambda: pc.instant_query("prometheus:9090", "x")
    )


def test_instant_query_rejects_a_matrix(prom):
    prom.answers["x[1m]"] = {
        "status": "success",
        "data": {"resultType": "matrix", "result": []},
    }
    with pytest.raises(ChaosError) as caught:
        pc.instant_query(prom.url, "x[1m]")
    assert caught.value.reason == "invalid_input"


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_wait_for_condition_retries_errors_until_the_metric_moves():
    clock = Clock()
    answers = [
        ChaosError("unreachable", reason="prometheus_error"),
        samples(0.01),
        samples(0.3),
    ]

    def query():
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    outcome = pc.wait_for_condition(
        {"condition": "above", "threshold": 0.1, "timeout": 30, "interval": 2},
        query,
        clock,
        clock.sleep,
    )
    assert outcome["confirmed"] and outcome["checks"] == 3 and outcome["seconds"] == 4.0
    assert outcome["samples"][0]["value"] == 0.3 and outcome["last_error"] is None


def test_wait_for_condition_times_out_with_the_last_error():
    clock = Clock()

    def query():
        raise ChaosError("connection refused", reason="prometheus_error")

    outcome = pc.wait_for_condition(
        {"condition": "above", "threshold": 0.1, "timeout": 5, "interval": 2},
        query,
        clock,
        clock.sleep,
    )
    assert not outcome["confirmed"] and outcome["last_error"] == "connection refused"
    assert outcome["seconds"] <= 5


def test_wait_for_condition_stops_on_a_bad_query():
    def query():
        raise ChaosError("matrix", reason="invalid_input")

    with pytest.raises(ChaosError):
        pc.wait_for_condition(
            {"condition": "above", "threshold": 0.1, "timeout": 5, "interval": 1},
            query,
            Clock(),
            lambda s: None,
        )

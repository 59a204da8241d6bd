# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""vegeta's results (``vegeta encode --to json``) as load records that load_window reads."""

from __future__ import annotations

import hashlib
import json

import pytest
from ansible_collections.veritas.chaos.plugins.module_utils._loadimport import (
    LoadImportError,
    answer_hash,
    completion_text,
    parse_rfc3339,
    records_jsonl,
    vegeta_records,
)
from ansible_collections.veritas.chaos.plugins.module_utils._loadstats import (
    check_record,
    window_stats,
)

# 2026-11-29T12:00:00Z
T0 = 1795953600.0

# Four lines as vegeta writes them: an answer (body: a completions response, base64), a 500,
# a transport error (code 0), and an answer without the variant headers, at whole seconds.
VEGETA_LINES = [
    (
        '{"attack":"staging","seq":0,"code":200,"timestamp":"2026-11-29T13:00:00.123456789+01:00",'
        '"latency":12345678,"bytes_out":61,"bytes_in":139,"error":"",'
        '"body":"eyJpZCI6ImNtcGwtMSIsIm9iamVjdCI6InRleHRfY29tcGxldGlvbiIsIm1vZGVsIjoibGxhbWEtN2IiLCJjaG9pY2Vz'
        "IjpbeyJpbmRleCI6MCwidGV4dCI6InRoZSBtb2RlbCBhbnN3ZXJzIHdpdGggc3RlYWR5IHRva2VucyIsImZpbmlzaF9yZWFzb24i"
        'OiJsZW5ndGgifV19","method":"POST","url":"https://llm.staging.example.com/v1/completions",'
        '"headers":{"Content-Type":["application/json"],"X-Veritas-Variant":["canary"],'
        '"X-Veritas-Pod":["runtime-canary-7d9f-abcde"]}}'
    ),
    (
        '{"attack":"staging","seq":1,"code":500,"timestamp":"2026-11-29T12:00:00.223456789Z",'
        '"latency":2000000,"bytes_out":61,"bytes_in":16,"error":"500 Internal Server Error",'
        '"body":"eyJlcnJvciI6ImJvb20ifQ==","method":"POST",'
        '"url":"https://llm.staging.example.com/v1/completions",'
        '"headers":{"X-Veritas-Variant":["control"],"X-Veritas-Pod":["runtime-control-0"]}}'
    ),
    "",
    (
        '{"attack":"staging","seq":2,"code":0,"timestamp":"2026-11-29T12:00:00.3Z","latency":5000000000,'
        '"bytes_out":0,"bytes_in":0,"error":"Post \\"https://llm.staging.example.com/v1/completions\\": '
        'context deadline exceeded (Client.Timeout exceeded while awaiting headers)","body":"",'
        '"method":"POST","url":"https://llm.staging.example.com/v1/completions","headers":{}}'
    ),
    (
        '{"attack":"staging","seq":3,"code":200,"timestamp":"2026-11-29T12:00:01Z","latency":1500000,'
        '"bytes_out":61,"bytes_in":2,"error":"","body":"e30=","method":"POST",'
        '"url":"https://llm.staging.example.com/v1/completions","headers":{"content-type":["application/json"]}}'
    ),
]

FIELDS = {
    "seq",
    "due",
    "sent",
    "done",
    "latency_ms",
    "latency_from_due_ms",
    "status",
    "variant",
    "pod",
    "error",
    "correct",
    "prompt_index",
    "answer",
}


def test_vegeta_lines_become_load_records():
    records = vegeta_records(VEGETA_LINES)

    assert len(records) == 4
    assert all(set(r) == FIELDS for r in records)
    ok, failed, lost, plain = records

    assert ok["seq"] == 0
    assert ok["sent"] == pytest.approx(T0 + 0.123456, abs=1e-6)
    assert ok["due"] == ok["sent"]
    assert ok["latency_ms"] == 12.346
    assert ok["latency_from_due_ms"] == 12.346
    assert ok["done"] == pytest.approx(ok["sent"] + 0.012345678, abs=1e-6)
    assert ok["status"] == 200
    assert ok["variant"] == "canary"
    assert ok["pod"] == "runtime-canary-7d9f-abcde"
    assert ok["error"] == ""
    assert ok["correct"] is None
    assert ok["prompt_index"] is None
    expected = hashlib.sha256(b"the model answers with steady tokens").hexdigest()[:16]
    assert ok["answer"] == expected == "75d6bbb6bf69c72a"

    assert failed["status"] == 500
    assert failed["error"] == "500 Internal Server Error"
    assert failed["variant"] == "control"
    assert failed["answer"] is None
    assert failed["sent"] == pytest.approx(T0 + 0.223456, abs=1e-6)

    assert lost["status"] == 0
    assert lost["error"].startswith(
        'Post "https://llm.staging.example.com/v1/completions"'
    )
    assert lost["latency_ms"] == 5000.0
    assert lost["variant"] == lost["pod"] == ""
    assert lost["sent"] == pytest.approx(T0 + 0.3, abs=1e-6)

    assert plain["sent"] == T0 + 1
    assert plain["variant"] == ""
    assert plain["answer"] is None  # "{}" has no choices


def test_the_records_are_what_load_window_reads():
    records = [
        json.loads(line)
        for line in records_jsonl(vegeta_records(VEGETA_LINES)).splitlines()
    ]
    for record in records:
        check_record(record)
    stats = window_stats(records, min_samples=1)
    assert stats["count"] == 4
    assert stats["ok"] == 2
    assert stats["http_5xx"] == 1
    assert stats["transport_errors"] == 1
    assert stats["variants"] == {"-": 1, "canary": 1, "control": 1}
    assert stats["pods"] == {"runtime-canary-7d9f-abcde": 1, "runtime-control-0": 1}
    assert stats["max_ms"] == 12.346
    assert window_stats(records, since=T0 + 1, min_samples=1)["count"] == 1


def test_other_header_names():
    line = VEGETA_LINES[0].replace("X-Veritas-Variant", "X-Colour")
    (record,) = vegeta_records(
        [line], variant_header="x-colour", pod_header="X-Missing"
    )
    assert record["variant"] == "canary"
    assert record["pod"] == ""


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("not json", "line 1 is not JSON"),
        ("[1, 2]", "line 1: a vegeta result must be a JSON object"),
        ('{"code": 200, "latency": 1}', "line 1: vegeta 'timestamp'"),
        (
            '{"code": 200, "timestamp": "yesterday", "latency": 1}',
            "not an RFC 3339 time",
        ),
        (
            '{"code": "200", "timestamp": "2026-11-29T12:00:00Z", "latency": 1}',
            "vegeta 'code' must be a number",
        ),
    ],
)
def test_a_line_that_is_not_a_vegeta_result_is_named(line, words):
    with pytest.raises(
        LoadImportError, match=words.replace("(", r"\(").replace(")", r"\)")
    ):
        vegeta_records([line])


def test_rfc3339_times():
    assert parse_rfc3339("2026-11-29T12:00:00Z") == T0
    assert parse_rfc3339("2026-11-29T14:00:00.5+02:00") == T0 + 0.5
    assert parse_rfc3339("2026-11-29T12:00:00.000000001Z") == T0


def test_completion_text_and_answer_hash():
    assert completion_text(b'{"choices": [{"text": "a"}]}') == "a"
    assert (
        completion_text(
            '{"choices": [{"message": {"role": "assistant", "content": "b"}}]}'
        )
        == "b"
    )
    assert completion_text({"choices": []}) is None
    assert completion_text(b"\xff not json") is None
    assert answer_hash("a") == hashlib.sha256(b"a").hexdigest()[:16]

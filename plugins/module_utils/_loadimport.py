# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Other load tools' results as load records (the ``http_load`` module's, the ``load_window`` lookup's).

A load record is a mapping with ``seq``, ``due``, ``sent``, ``done`` (epoch seconds),
``latency_ms``, ``latency_from_due_ms``, ``status`` (0 on a transport error), ``variant`` and
``pod`` (response headers), ``error``, ``correct`` (null: not checked), ``prompt_index`` and
``answer`` (null when unknown); see ``_loadstats.py``.

vegeta: ``vegeta encode --to json`` writes one JSON object per result with ``seq``,
``timestamp`` (RFC 3339, when the request was sent), ``latency`` (nanoseconds), ``code`` (0
when no response came), ``error``, ``headers`` (the response headers, each a list of values)
and ``body`` (the response body, base64). vegeta does not record when a request was due, so
``due`` is the send time and ``latency_from_due_ms`` the latency.

Pure: standard library only, no I/O.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

DEFAULT_VARIANT_HEADER = "X-Veritas-Variant"
DEFAULT_POD_HEADER = "X-Veritas-Pod"
ANSWER_HEX_CHARS = 16

_RFC3339 = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<time>\d{2}:\d{2}:\d{2})"
    r"(?:\.(?P<frac>\d+))?(?P<zone>[Zz]|[+-]\d{2}:\d{2})$"
)


class LoadImportError(ValueError):
    """A result that cannot be read; the message names the line and the field."""


def answer_hash(text: str) -> str:
    """The short sha256 (hex) that a record keeps of an answer's text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:ANSWER_HEX_CHARS]


def completion_text(data: Any) -> str | None:
    """``choices[0].text`` (or ``choices[0].message.content``) of a completions response body."""
    if isinstance(data, (bytes, bytearray)):
        try:
            data = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            return None
    elif isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            return None
    try:
        choice = data["choices"][0]
    except (KeyError, IndexError, TypeError):
        return None
    if not isinstance(choice, Mapping):
        return None
    text = choice.get("text")
    if isinstance(text, str):
        return text
    message = choice.get("message")
    if isinstance(message, Mapping) and isinstance(message.get("content"), str):
        return message["content"]
    return None


def parse_rfc3339(value: str) -> float:
    """Epoch seconds of an RFC 3339 time (nanoseconds are cut to microseconds)."""
    match = _RFC3339.match(value.strip()) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"not an RFC 3339 time: {value!r}")
    frac = (match.group("frac") or "")[:6].ljust(6, "0")
    zone = match.group("zone")
    zone = "+00:00" if zone in ("Z", "z") else zone
    moment = datetime.datetime.fromisoformat(
        f"{match.group('date')}T{match.group('time')}.{frac}{zone}"
    )
    return moment.timestamp()


def _header(headers: Any, name: str) -> str:
    if not isinstance(headers, Mapping):
        return ""
    wanted = name.lower()
    for key, value in headers.items():
        if str(key).lower() != wanted:
            continue
        if isinstance(value, (list, tuple)):
            value = value[0] if value else ""
        return "" if value is None else str(value)
    return ""


def vegeta_record(
    result: Mapping[str, Any],
    index: int = 0,
    variant_header: str = DEFAULT_VARIANT_HEADER,
    pod_header: str = DEFAULT_POD_HEADER,
) -> dict[str, Any]:
    """One vegeta result (a decoded ``vegeta encode --to json`` line) as a load record."""
    if not isinstance(result, Mapping):
        raise LoadImportError(f"a vegeta result must be a JSON object, got {result!r}")
    try:
        sent = parse_rfc3339(result.get("timestamp"))
    except ValueError as exc:
        raise LoadImportError(f"vegeta 'timestamp': {exc}") from None
    latency_ns = result.get("latency", 0) or 0
    code = result.get("code", 0) or 0
    for key, value in (("latency", latency_ns), ("code", code)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise LoadImportError(f"vegeta {key!r} must be a number, got {value!r}")
    seq = result.get("seq", index)
    if isinstance(seq, bool) or not isinstance(seq, int):
        seq = index
    latency_ms = round(latency_ns / 1e6, 3)
    answer = None
    body = result.get("body")
    if 200 <= code < 300 and isinstance(body, str) and body:
        try:
            text = completion_text(base64.b64decode(body, validate=True))
        except (binascii.Error, ValueError):
            text = None
        answer = None if text is None else answer_hash(text)
    headers = result.get("headers")
    return {
        "seq": seq,
        "due": sent,
        "sent": sent,
        "done": round(sent + latency_ns / 1e9, 6),
        "latency_ms": latency_ms,
        "latency_from_due_ms": latency_ms,
        "status": int(code),
        "variant": _header(headers, variant_header),
        "pod": _header(headers, pod_header),
        "error": str(result.get("error") or "")[:200],
        "correct": None,
        "prompt_index": None,
        "answer": answer,
    }


def vegeta_records(
    lines: Iterable[str],
    variant_header: str = DEFAULT_VARIANT_HEADER,
    pod_header: str = DEFAULT_POD_HEADER,
) -> list[dict[str, Any]]:
    """Load records from the lines of ``vegeta encode --to json``; blank lines are skipped.

    A line that is not a vegeta result raises LoadImportError naming the line (1-based).
    """
    records = []
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        try:
            result = json.loads(line)
        except ValueError as exc:
            raise LoadImportError(f"line {number} is not JSON: {exc}") from None
        try:
            records.append(
                vegeta_record(result, len(records), variant_header, pod_header)
            )
        except LoadImportError as exc:
            raise LoadImportError(f"line {number}: {exc}") from None
    return records


def records_jsonl(records: Iterable[Mapping[str, Any]]) -> str:
    """Records as the JSON lines the ``load_window`` lookup reads."""
    return "".join(
        json.dumps(dict(record), sort_keys=False) + "\n" for record in records
    )

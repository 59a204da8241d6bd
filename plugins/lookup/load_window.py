# Copyright (c) veritas.chaos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lookup plugin: statistics of a load run's records within a time window."""

from __future__ import annotations

DOCUMENTATION = r"""
name: load_window
author: veritas.chaos contributors (@veritas-chaos)
short_description: Statistics of recorded load responses within a time window
version_added: 1.0.0
description:
  - Reads the JSON-lines file of a load run (one record per request, as the lab's load
    generator writes it with C(--out)) on the controller and returns statistics of the
    requests sent in the window [O(since), O(until)).
  - Each record has C(sent) (epoch seconds), C(status) (HTTP status, 0 on a transport
    error), C(latency_ms), C(variant) and C(pod) (from the C(X-Veritas-Variant) and
    C(X-Veritas-Pod) response headers), and optionally C(correct).
options:
  _terms:
    description: Path of the records file.
    required: true
  since:
    description: Start of the window, epoch seconds (inclusive). Default the first record.
    type: float
  until:
    description: End of the window, epoch seconds (exclusive). Default after the last record.
    type: float
  variant:
    description: Only requests answered by this variant (or colour).
    type: str
  exclude_pods:
    description: Leave out requests answered by these pods.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Control latency after the kill
  ansible.builtin.set_fact:
    after: "{{ lookup('veritas.chaos.load_window', load_file, since=kill_time, variant='control') }}"
"""

RETURN = r"""
_raw:
  description: One dictionary of statistics.
  type: list
  elements: dict
  contains:
    count:
      description: Requests sent in the window.
      type: int
    ok:
      description: Responses with a 2xx or 3xx status.
      type: int
    http_5xx:
      description: Responses with a 5xx status.
      type: int
    transport_errors:
      description: Requests with no HTTP response.
      type: int
    errors:
      description: Requests that did not succeed (5xx, 4xx or transport error).
      type: int
    error_ratio:
      description: errors / count, 0 when the window is empty.
      type: float
    wrong_answers:
      description: Responses whose answer was checked and found wrong.
      type: int
    p50_ms:
      description: Median latency of the answered requests (null when none).
      type: float
    p99_ms:
      description: 99th percentile latency of the answered requests (null when none).
      type: float
    variants:
      description: Requests per variant (the variant header's value, C(-) when absent).
      type: dict
    shares:
      description: Share of each variant among the answered requests.
      type: dict
    pods:
      description: Requests per answering pod.
      type: dict
    first_sent:
      description: Epoch time of the first request in the window (null when empty).
      type: float
    last_sent_by_variant:
      description: Epoch time of the last request answered by each variant.
      type: dict
"""

import json
import math

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase


def percentile(sorted_values: list, pct: float):
    """Nearest-rank percentile of an ascending list; None when empty."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(pct / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


def window_stats(records: list, since=None, until=None, variant=None, exclude_pods=()) -> dict:
    """Pure: statistics of the records sent in [since, until), optionally one variant."""
    excluded = set(exclude_pods or ())
    picked = [
        r for r in records
        if (since is None or r.get("sent", 0) >= since)
        and (until is None or r.get("sent", 0) < until)
        and (variant is None or r.get("variant") == variant)
        and r.get("pod") not in excluded
    ]
    answered = [r for r in picked if r.get("status")]
    ok = sum(1 for r in picked if 200 <= r.get("status", 0) < 400)
    latencies = sorted(float(r.get("latency_ms", 0)) for r in answered)
    variants: dict = {}
    pods: dict = {}
    last_sent: dict = {}
    for r in answered:
        v = r.get("variant") or "-"
        variants[v] = variants.get(v, 0) + 1
        if r.get("pod"):
            pods[r["pod"]] = pods.get(r["pod"], 0) + 1
        last_sent[v] = max(last_sent.get(v, 0), r.get("sent", 0))
    count = len(picked)
    return {
        "count": count,
        "ok": ok,
        "http_5xx": sum(1 for r in picked if r.get("status", 0) >= 500),
        "transport_errors": sum(1 for r in picked if not r.get("status")),
        "errors": count - ok,
        "error_ratio": round((count - ok) / count, 6) if count else 0.0,
        "wrong_answers": sum(1 for r in picked if r.get("correct") is False),
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "variants": variants,
        "shares": {v: round(n / len(answered), 6) for v, n in variants.items()} if answered else {},
        "pods": pods,
        "first_sent": min((r.get("sent", 0) for r in picked), default=None),
        "last_sent_by_variant": last_sent,
    }


def read_records(path: str) -> list:
    records = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            line = line.strip()
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except ValueError as exc:
                raise AnsibleLookupError(f"load_window: {path} line {number} is not JSON: {exc}") from exc
    return records


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        if len(terms) != 1:
            raise AnsibleLookupError("load_window takes exactly one term: the records file")
        try:
            records = read_records(terms[0])
        except OSError as exc:
            raise AnsibleLookupError(f"load_window: cannot read {terms[0]}: {exc}") from exc
        return [window_stats(records, self.get_option("since"), self.get_option("until"),
                             self.get_option("variant"), self.get_option("exclude_pods"))]

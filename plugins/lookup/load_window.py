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
  - Each record has C(sent) (epoch seconds; a request that was never sent counts at its
    C(due) time), C(status) (HTTP status, 0 on a transport error), C(latency_ms), C(variant)
    and C(pod) (from the C(X-Veritas-Variant) and C(X-Veritas-Pod) response headers), and
    optionally C(correct) (the answer was checked and was right or wrong).
  - The statistics are those of M(veritas.chaos.http_load)'s run summary (one function,
    C(plugins/module_utils/_loadstats.py)).
  - A window with fewer than O(min_samples) requests is not measured; RV(_raw[].measured) is
    V(false) and the error ratio, percentiles and shares are V(null), so a criterion built on
    them is inconclusive, never a pass. Counts (RV(_raw[].count), RV(_raw[].errors), ...) stay
    integers; a criterion that uses a count as its measurement must check
    RV(_raw[].measured) itself, for example C(w.errors if w.measured else none).
  - A line that is not a JSON object, or a record field of the wrong type, fails the lookup naming the
    file and line; blank lines are skipped.
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
    description:
      - Only requests answered by this variant (or colour). RV(_raw[].measured) then counts
        only that variant's requests.
    type: str
  exclude_pods:
    description: Leave out requests answered by these pods.
    type: list
    elements: str
    default: []
  min_samples:
    description:
      - Fewest requests in the window for it to be measured.
      - The default, 20, is a floor, not a target; at the lab's 100 requests per second a
        one-second window holds 100.
    type: int
    default: 20
"""

EXAMPLES = r"""
- name: Control latency after the kill
  ansible.builtin.set_fact:
    after: "{{ lookup('veritas.chaos.load_window', load_file, since=kill_time, variant='control') }}"

- name: Errors after the kill, not measured when the load recorded too little
  ansible.builtin.set_fact:
    errors_after_kill: "{{ w.errors if w.measured else none }}"
  vars:
    w: "{{ lookup('veritas.chaos.load_window', load_file, since=kill_time, min_samples=50) }}"
"""

RETURN = r"""
_raw:
  description: One dictionary of statistics.
  type: list
  elements: dict
  contains:
    measured:
      description: The window holds at least O(min_samples) requests.
      type: bool
    min_samples:
      description: The O(min_samples) the window was judged with.
      type: int
    count:
      description: Requests sent in the window.
      type: int
    answered:
      description: Requests with an HTTP response.
      type: int
    ok:
      description: Responses with a 2xx or 3xx status.
      type: int
    errors:
      description: Requests that did not succeed (5xx, 4xx or transport error).
      type: int
    http_4xx:
      description: Responses with a 4xx status.
      type: int
    http_5xx:
      description: Responses with a 5xx status.
      type: int
    transport_errors:
      description: Requests with no HTTP response.
      type: int
    checked:
      description: Responses whose answer was checked (records with C(correct) set).
      type: int
    wrong_answers:
      description: Responses whose answer was checked and found wrong.
      type: int
    error_ratio:
      description: errors / count; null when not measured.
      type: float
    p50_ms:
      description: Median latency of the answered requests; null when not measured.
      type: float
    p90_ms:
      description: 90th percentile latency of the answered requests; null when not measured.
      type: float
    p99_ms:
      description: 99th percentile latency of the answered requests; null when not measured.
      type: float
    max_ms:
      description: Highest latency of the answered requests; null when not measured.
      type: float
    variants:
      description: Answered requests per variant (the variant header's value, C(-) when absent).
      type: dict
    shares:
      description: Share (0-1) of each variant among the answered requests; null when not measured.
      type: dict
    by_variant:
      description:
        - Per variant, the same counts, ratios and percentiles (each variant measured on its own
          requests) and its C(share).
      type: dict
    pods:
      description: Answered requests per answering pod.
      type: dict
    first_sent:
      description: Epoch time of the first request in the window (null when empty).
      type: float
    last_sent:
      description: Epoch time of the last request in the window (null when empty).
      type: float
    last_sent_by_variant:
      description: Epoch time of the last request answered by each variant.
      type: dict
"""

import json

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible_collections.veritas.chaos.plugins.module_utils._loadstats import (
    LoadRecordError,
    check_record,
    window_stats,
)


def read_records(path: str) -> list:
    """Every record of a JSON-lines file; a line that is not a JSON object is an error naming it."""
    records = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise AnsibleLookupError(f"load_window: {path} line {number} is not JSON: {exc}") from exc
            if not isinstance(record, dict):
                raise AnsibleLookupError(
                    f"load_window: {path} line {number} is not a record (a JSON object): {line[:80]}"
                )
            try:
                records.append(check_record(record))
            except LoadRecordError as exc:
                raise AnsibleLookupError(f"load_window: {path} line {number}: {exc}") from exc
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
        try:
            stats = window_stats(
                records,
                since=self.get_option("since"),
                until=self.get_option("until"),
                variant=self.get_option("variant"),
                exclude_pods=self.get_option("exclude_pods"),
                min_samples=self.get_option("min_samples"),
            )
        except LoadRecordError as exc:
            raise AnsibleLookupError(f"load_window: {terms[0]}: {exc}") from exc
        return [stats]

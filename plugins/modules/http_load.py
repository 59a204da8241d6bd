# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: http_load
short_description: Send steady open-loop HTTP load to a completions endpoint in the background and summarize it
version_added: 1.1.0
description:
  - O(state=started) starts a load run as a detached background process in its own session (double fork and
    C(setsid), standard input and output closed, like ansible's C(async_wrapper)) and returns at once with its
    RV(pid) and the paths of its files, so that the run can be recorded in the game day's ledger by identity
    (M(veritas.chaos.gameday_ledger), O(veritas.chaos.gameday_ledger#module:processes)) while the scenario runs.
  - O(state=finished) waits up to O(timeout) seconds for that run to end and returns its RV(summary).
  - Open loop at a steady rate; request I(i) is due at start + I(i) / O(rate) whatever earlier requests did (a
    slow or failing target does not slow the load down). A pool of O(concurrency) keep-alive connections sends
    them. O(rate) x O(duration) requests in all.
  - Every request becomes one record, a line of the JSON-lines file RV(records), written as its response
    arrives (see the notes for its fields). The summary is computed from the records by the collection's one
    statistics function (the one the P(veritas.chaos.load_window#lookup) lookup uses), so a criterion read later
    from the records gives the same numbers.
  - By default each request is an OpenAI-compatible completions request (C(POST) with a JSON O(body)) whose
    prompt cycles through O(prompt_count) prompts made from O(prompt_template).
  - Answers can be checked against an earlier run (O(verify_against)) without knowing anything about the model.
  - Bounded; O(rate) at most 2000 requests per second, O(duration) at most 3600 seconds, at most 1,000,000
    requests in a run. A value out of range fails naming the option and the allowed range, and starts nothing.
  - Runs where the task runs; delegate the task to C(localhost) to load a target from the controller.
author:
  - Veritas SPARK team (@veritas-spark)
options:
  state:
    description:
      - V(started) starts a run in the background; V(finished) waits for a run's end and reads its summary.
    type: str
    choices: [started, finished]
    default: started
  records:
    description:
      - Path of the run's records (JSON lines). The run's other files are named after it - with a C(.jsonl)
        suffix removed, C(<base>.summary.json) (the summary), C(<base>.rc) (the run's exit code, written last)
        and C(<base>.log) (its output).
      - Required with O(state=started); it, the summary and the exit-code file must not exist yet (the records
        of an earlier run are never overwritten), and its folder must exist.
      - With O(state=finished), the O(records) of the run to wait for, unless O(handle) is given.
    type: path
  handle:
    description:
      - With O(state=finished), the RV(handle) that O(state=started) returned. It also gives the run's process,
        so that a run that died without finishing (for example killed by a restore) is reported at once, and
        its planned end, from which the default O(timeout) is computed.
    type: dict
  url:
    description:
      - The endpoint, C(http://) or C(https://), for example V(https://llm.staging.example.com/v1/completions).
        Any host; no credentials in the URL (use O(api_key) or O(headers)). Required with O(state=started).
      - Connections go straight to the host; proxy settings are not used.
    type: str
  rate:
    description:
      - Requests per second, above 0 and at most 2000. Required with O(state=started).
    type: float
  duration:
    description:
      - Seconds the load lasts, above 0 and at most 3600; O(rate) x O(duration) at most 1,000,000. Required
        with O(state=started).
    type: float
  concurrency:
    description:
      - Keep-alive connections (and worker threads) sending the requests, 1 to 512. A request waits for a free
        connection; it keeps its due time, so the wait shows in the records' C(latency_from_due_ms).
    type: int
    default: 64
  request_timeout:
    description:
      - Seconds one request may take (connect, send and read), above 0 and at most 300.
    type: float
    default: 5
  method:
    description:
      - HTTP method of every request.
    type: str
    default: POST
  headers:
    description:
      - Extra request headers. C(Content-Type) is C(application/json) for a JSON O(body) unless set here.
      - Values of C(Authorization), C(Proxy-Authorization), C(Cookie), C(X-Api-Key) and C(Api-Key) are masked in
        the module's result, but ansible's own log of the task's arguments shows O(headers); prefer O(api_key)
        for a token.
    type: dict
    default: {}
  api_key:
    description:
      - >-
        Sent as C(Authorization: Bearer <api_key>) (the OpenAI API's scheme), never logged; it replaces an
        C(Authorization) header of O(headers).
    type: str
  validate_certs:
    description:
      - Check the HTTPS server's certificate and host name. V(false) only for a test endpoint.
    type: bool
    default: true
  ca_path:
    description:
      - PEM file of the certificate authorities to trust for HTTPS instead of the system's.
    type: path
  body:
    description:
      - The request body. A dictionary or list is sent as JSON; in its strings, V({model}), V({prompt}),
        V({max_tokens}), V({prompt_index}) and V({seq}) are replaced by the request's values, and a string that is
        exactly one placeholder becomes the value itself (a number for V({max_tokens})), or is left out of
        its dictionary when that value is null (V({model}) without O(model)).
      - A string that is not JSON is sent as text with the same placeholders replaced (not escaped).
      - >-
        The default is the OpenAI-compatible completions request
        C({"model": "{model}", "prompt": "{prompt}", "max_tokens": "{max_tokens}", "temperature": 0}).
    type: raw
  model:
    description:
      - The V({model}) of O(body). Real OpenAI-compatible servers (vLLM, TGI, ...) need it; the lab runtime
        answers with its own model when it is missing.
    type: str
  max_tokens:
    description:
      - The V({max_tokens}) of O(body), 1 to 65536.
    type: int
    default: 16
  prompt_template:
    description:
      - Prompt I(i) is this text with V({i}) replaced by I(i); request I(seq) sends prompt I(seq) modulo O(prompt_count).
      - The default, V(veritas lab prompt {i}) with the default O(prompt_count), is the corpus the lab runtime's
        cache warm-up (M(veritas.chaos.cache_warmup)) loads, so that a warm cache serves the load.
    type: str
    default: veritas lab prompt {i}
  prompt_count:
    description:
      - How many prompts the load cycles through, 1 to 1000000.
    type: int
    default: 64
  variant_header:
    description:
      - Response header whose value is the record's C(variant) (which variant or colour answered).
    type: str
    default: X-Veritas-Variant
  pod_header:
    description:
      - Response header whose value is the record's C(pod) (which replica answered).
    type: str
    default: X-Veritas-Pod
  verify_against:
    description:
      - Records file of an earlier run (a steady state, a known-good release) to check answers against. For each
        prompt, the reference is the most common C(answer) of that run's 2xx responses; a new 2xx
        response's C(correct) is V(true) when its answer equals its prompt's reference, V(false)
        otherwise, and V(null) when its prompt has no reference (and for every error response).
      - Assumes deterministic decoding (temperature 0, as the default O(body) asks) so that the same prompt gives
        the same answer, and the same O(prompt_template), O(prompt_count), O(model), O(max_tokens) and O(body)
        as the earlier run (a prompt is known by its index).
      - The file must hold at least one 2xx record with an answer, or nothing starts.
    type: path
  timeout:
    description:
      - With O(state=finished), seconds to wait for the run to end (V(0) looks once).
      - Default - until the run's planned end plus its O(request_timeout) plus 120 seconds when O(handle) is
        given, otherwise 3720 seconds (the longest run plus 120).
    type: float
extends_documentation_fragment:
  - veritas.chaos.attributes
attributes:
  check_mode:
    support: full
    details:
      - O(state=started) checks the options, starts nothing and returns what it would run (RV(msg), RV(requests)).
      - O(state=finished) reads a run that has already ended, and does not wait for one that has not.
  diff_mode:
    support: none
  idempotent:
    support: none
    details: Every O(state=started) starts a new run (with new files); O(state=finished) changes nothing.
notes:
  - A record (one line of RV(records)) has C(seq) (0-based request number), C(due), C(sent), C(done) (epoch
    seconds; C(sent) is 0 for a request never sent), C(latency_ms) (from sending to the end of the response),
    C(latency_from_due_ms) (from the due time), C(status) (HTTP status; 0 = transport error, no response),
    C(variant) and C(pod) (the O(variant_header) and O(pod_header) response headers, empty when absent),
    C(error) (the transport error, or C(HTTP <status>) and the start of the body for a 4xx or 5xx answer),
    C(correct) (see O(verify_against); null when not checked), C(prompt_index) and C(answer) (the first 16 hex
    digits of the sha256 of C(choices[0].text), or of C(choices[0].message.content), of a 2xx JSON answer;
    null otherwise).
  - Results of another load tool (k6, vegeta, ...) can be read by the P(veritas.chaos.load_window#lookup) lookup
    once they are JSON lines of such records. The lookup needs C(sent), C(status), C(latency_ms), and uses
    C(variant), C(pod) and C(correct) when present; C(due) stands in for C(sent) when it is 0. For vegeta,
    C(plugins/module_utils/_loadimport.py) converts the lines of C(vegeta encode --to json) (C(vegeta_records)).
    For k6, write one such record per response (for example from a C(handleSummary) or a JSON output filter).
  - The run's process writes its exit code to C(<base>.rc) last - 0 when every request was sent and answered or
    timed out (HTTP errors are results, not failures), 143 when stopped by SIGTERM (the records and summary of
    what was sent are still written), 1 when it failed (see C(<base>.log)).
  - The records of the largest runs are held in memory until the summary is written.
seealso:
  - module: veritas.chaos.gameday_ledger
  - plugin: veritas.chaos.load_window
    plugin_type: lookup
"""

EXAMPLES = r"""
- name: Start 100 requests per second for 5 minutes against staging, in the background
  veritas.chaos.http_load:
    state: started
    url: https://llm.staging.example.com/v1/completions
    model: llama-7b
    rate: 100
    duration: 300
    api_key: "{{ staging_api_key }}"
    records: "{{ gameday_dir }}/load-{{ run_id }}.jsonl"
  delegate_to: localhost
  register: load

- name: Record the load in the run's ledger, so that a restore stops exactly this process
  veritas.chaos.gameday_ledger:
    namespace: veritas
    name: "{{ ledger_name }}"
    run_id: "{{ run_id }}"
    processes:
      - pid: "{{ load.pid }}"
        what: load against staging

# ... inject the fault, observe ...

- name: Wait for the end of the load and read its summary
  veritas.chaos.http_load:
    state: finished
    handle: "{{ load.handle }}"
  delegate_to: localhost
  register: load_result

- name: Error ratio and P99 of the whole run
  ansible.builtin.debug:
    msg: "{{ load_result.summary.error_ratio }} / {{ load_result.summary.p99_ms }} ms"

- name: Canary error ratio after the kill, from the same records
  ansible.builtin.debug:
    msg: "{{ lookup('veritas.chaos.load_window', load.records, since=kill_time, variant='canary').error_ratio }}"

- name: A second run whose answers are checked against the first (a known-good release)
  veritas.chaos.http_load:
    url: https://llm.staging.example.com/v1/completions
    model: llama-7b
    rate: 50
    duration: 60
    records: /var/tmp/gameday/after-upgrade.jsonl
    verify_against: /var/tmp/gameday/before-upgrade.jsonl
  delegate_to: localhost
  register: checked_load

- name: A chat completions endpoint behind a self-signed test certificate
  veritas.chaos.http_load:
    url: https://10.0.0.12:8443/v1/chat/completions
    validate_certs: false
    body:
      model: "{model}"
      messages:
        - role: user
          content: "{prompt}"
      max_tokens: "{max_tokens}"
      temperature: 0
    model: llama-7b
    rate: 20
    duration: 30
    records: /var/tmp/gameday/chat.jsonl
  delegate_to: localhost
"""

RETURN = r"""
pid:
  description:
    - The process running the load (it leads its own session and process group); record it in the run's ledger.
  returned: state is started and not check mode
  type: int
  sample: 48213
records:
  description: Path of the run's records (JSON lines, one record per request).
  returned: always
  type: str
  sample: /var/tmp/gameday/load-run1.jsonl
summary:
  description:
    - With O(state=started), the path the summary will be written to.
    - With O(state=finished), the summary of the run (null in check mode when the run has not ended); every number
      is that of the C(load_window) lookup's statistics, and a run of fewer than 20 requests is not measured
      (RV(summary.measured) false, ratios and percentiles null).
  returned: always
  type: raw
  sample: /var/tmp/gameday/load-run1.summary.json
  contains:
    total:
      description: Requests in the run.
      type: int
    started:
      description: Due time of the first request (epoch seconds).
      type: float
    duration_s:
      description: Seconds from the first due time to the last.
      type: float
    achieved_rate:
      description: Requests per second, by due time.
      type: float
    measured:
      description: The run holds at least 20 requests.
      type: bool
    min_samples:
      description: Fewest requests for a measurement.
      type: int
    count:
      description: Requests (as RV(summary.total)).
      type: int
    answered:
      description: Requests with an HTTP response.
      type: int
    ok:
      description: Responses with a 2xx or 3xx status.
      type: int
    errors:
      description: Requests that did not succeed (4xx, 5xx or transport error).
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
      description: Answers checked (O(verify_against)).
      type: int
    wrong_answers:
      description: Answers checked and found different from the reference.
      type: int
    error_ratio:
      description: errors / count; null when not measured.
      type: float
    p50_ms:
      description: Median latency of the answered requests; null when not measured.
      type: float
    p90_ms:
      description: 90th percentile latency; null when not measured.
      type: float
    p99_ms:
      description: 99th percentile latency; null when not measured.
      type: float
    max_ms:
      description: Highest latency; null when not measured.
      type: float
    first_sent:
      description: Epoch time of the first request.
      type: float
    last_sent:
      description: Epoch time of the last request.
      type: float
    shares:
      description: Share (0-1) of each variant among the answered requests; null when not measured.
      type: dict
    pods:
      description: Answered requests per pod.
      type: dict
    variants:
      description: Per variant (C(-) when the header was absent), its counts, ratios, percentiles and C(share).
      type: dict
    seconds:
      description: Per second of due time, C(second) and that second's counts, ratios and percentiles.
      type: list
      elements: dict
rc_file:
  description: Path of the file the run writes its exit code to when it ends.
  returned: always
  type: str
  sample: /var/tmp/gameday/load-run1.rc
log:
  description: Path of the run's output (a line per second, then the totals; a traceback if it failed).
  returned: always
  type: str
  sample: /var/tmp/gameday/load-run1.log
handle:
  description:
    - Everything O(state=finished) needs - RV(pid), the process's start time in clock ticks (C(start_ticks)) and
      C(host) (where it runs),
      RV(records), RV(summary), RV(rc_file), RV(log), C(url), C(rate), C(duration), RV(requests),
      C(request_timeout), C(started) and C(ends) (epoch seconds).
    - In check mode C(pid) and C(start_ticks) are null (O(state=finished) in check mode then does not wait).
  returned: state is started
  type: dict
  sample: {"pid": 48213, "start_ticks": 912345, "records": /var/tmp/gameday/load-run1.jsonl, "rate": 100.0}
requests:
  description: Requests the run sends (O(rate) x O(duration), rounded); with O(state=finished), those planned when known.
  returned: always
  type: int
  sample: 30000
rc:
  description: The run's exit code (0 = it ran to its end).
  returned: state is finished and the run has ended
  type: int
  sample: 0
finished:
  description: Whether the run has ended (false only in check mode, which does not wait).
  returned: state is finished
  type: bool
  sample: true
msg:
  description: What was started, or would be in check mode.
  returned: state is started
  type: str
  sample: started 30000 POST requests to https://llm.staging.example.com/v1/completions at 100/s for 300 s (pid 48213)
"""

import collections
import errno
import http.client
import json
import math
import os
import queue
import re
import signal
import socket
import ssl
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError
from ansible_collections.veritas.chaos.plugins.module_utils._ledger import (
    process_start_ticks,  # a zombie counts as gone: the load has exited
)
from ansible_collections.veritas.chaos.plugins.module_utils._loadimport import (
    answer_hash,
    completion_text,
)
from ansible_collections.veritas.chaos.plugins.module_utils._loadstats import (
    summarize_run,
)
from ansible_collections.veritas.chaos.plugins.module_utils._runner import run_module

MAX_RATE = 2000.0
MAX_DURATION = 3600.0
MAX_REQUESTS = 1_000_000
MAX_CONCURRENCY = 512
MAX_REQUEST_TIMEOUT = 300.0
MAX_PROMPTS = 1_000_000
MAX_TOKENS = 65536
# The longest run plus some slack: how long finished waits when it does not know the run's end.
UNKNOWN_END_TIMEOUT = MAX_DURATION + 120.0
FINISH_SLACK = 120.0
POLL_SECONDS = 0.2
STOP_POLL_SECONDS = 0.05
# Once stopped, in-flight requests get this long before they are recorded as not completed.
STOP_GRACE_SECONDS = 1.0
RC_STOPPED = 128 + signal.SIGTERM
ERROR_CHARS = 200
SECRET_HEADERS = frozenset(
    ("authorization", "proxy-authorization", "cookie", "x-api-key", "api-key")
)
DEFAULT_BODY = {
    "model": "{model}",
    "prompt": "{prompt}",
    "max_tokens": "{max_tokens}",
    "temperature": 0,
}
_PLACEHOLDER = re.compile(r"\{(model|prompt|max_tokens|prompt_index|seq)\}")
_DROP = object()
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


# ---------------------------------------------------------------- the plan


def _invalid(field: str, allowed: str, value: Any) -> ChaosError:
    return ChaosError(
        f"{field} must be {allowed}, got {value!r}; nothing was started.",
        reason="invalid_input",
        field=field,
    )


def _number_in(
    params: dict[str, Any], field: str, low: float, high: float, allowed: str
) -> None:
    value = params[field]
    if value is None or math.isnan(value) or not low < value <= high:
        raise _invalid(field, allowed, value)


def base_path(records: str) -> str:
    return records.removesuffix(".jsonl")


def run_paths(records: str) -> dict[str, str]:
    """The run's files, named after its records file."""
    records = os.path.abspath(records)
    base = base_path(records)
    return {
        "records": records,
        "summary": base + ".summary.json",
        "rc_file": base + ".rc",
        "log": base + ".log",
    }


def parse_url(url: str | None) -> dict[str, Any]:
    if not url or not isinstance(url, str):
        raise _invalid("url", "an http:// or https:// URL", url)
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise _invalid("url", "an http:// or https:// URL", url) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _invalid("url", "an http:// or https:// URL with a host", url)
    if parts.username is not None or parts.password is not None:
        raise _invalid(
            "url", "a URL without credentials (use api_key or headers)", "<redacted>"
        )
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return {
        "scheme": parts.scheme,
        "host": parts.hostname,
        "port": port or (443 if parts.scheme == "https" else 80),
        "path": path,
    }


def render(template: Any, values: dict[str, Any]) -> Any:
    """The template with its placeholders replaced; _DROP for a lone placeholder whose value is null."""
    if isinstance(template, str):
        whole = _PLACEHOLDER.fullmatch(template)
        if whole:
            value = values[whole.group(1)]
            return _DROP if value is None else value
        return _PLACEHOLDER.sub(
            lambda m: "" if values[m.group(1)] is None else str(values[m.group(1)]),
            template,
        )
    if isinstance(template, dict):
        out = {}
        for key, item in template.items():
            item = render(item, values)
            if item is not _DROP:
                out[key] = item
        return out
    if isinstance(template, list):
        return [
            None if item is _DROP else item
            for item in (render(i, values) for i in template)
        ]
    return template


def body_template(body: Any) -> tuple[Any, bool]:
    """(template, is_json): a dict or list (or a string holding one) is a JSON template."""
    if body is None:
        return DEFAULT_BODY, True
    if isinstance(body, (dict, list)):
        return body, True
    if isinstance(body, str):
        try:
            parsed = json.loads(body)
        except ValueError:
            return body, False
        if isinstance(parsed, (dict, list)):
            return parsed, True
        return body, False
    raise _invalid("body", "a dictionary, a list or a string", body)


def prompt_text(template: str, index: int) -> str:
    return template.replace("{i}", str(index))


def request_body(plan: dict[str, Any], seq: int) -> tuple[bytes, int]:
    index = seq % plan["prompt_count"]
    values = {
        "model": plan["model"],
        "prompt": prompt_text(plan["prompt_template"], index),
        "max_tokens": plan["max_tokens"],
        "prompt_index": index,
        "seq": seq,
    }
    rendered = render(plan["body"], values)
    if plan["body_is_json"]:
        return json.dumps(rendered).encode("utf-8"), index
    return str(rendered).encode("utf-8"), index


def _reference_error(path: str, why: str) -> ChaosError:
    return ChaosError(
        f"verify_against: {path} {why}; nothing was started.",
        reason="invalid_input",
        field="verify_against",
    )


def reference_answers(records: list[Any]) -> dict[int, str]:
    """prompt_index -> the most common answer of the 2xx records that have one."""
    answers: dict[int, collections.Counter] = {}
    for record in records:
        status, index, answer = (
            record.get("status"),
            record.get("prompt_index"),
            record.get("answer"),
        )
        if (
            isinstance(status, int)
            and 200 <= status < 300
            and isinstance(index, int)
            and not isinstance(index, bool)
            and isinstance(answer, str)
            and answer
        ):
            answers.setdefault(index, collections.Counter())[answer] += 1
    # A tie goes to the smallest hash, so that the choice never depends on the order.
    return {
        index: min(counter.items(), key=lambda item: (-item[1], item[0]))[0]
        for index, counter in answers.items()
    }


def read_references(path: str) -> dict[int, str]:
    """The reference answers of an earlier run's records file."""
    records = []
    try:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    raise _reference_error(path, f"line {number} is not JSON") from None
                if not isinstance(record, dict):
                    raise _reference_error(path, f"line {number} is not a record")
                records.append(record)
    except OSError as exc:
        raise _reference_error(path, f"cannot be read ({exc.strerror})") from None
    references = reference_answers(records)
    if not references:
        raise _reference_error(
            path,
            "holds no 2xx record with a prompt_index and an answer (records of an "
            "http_load run), so there is nothing to check against",
        )
    return references


def ssl_context(params: dict[str, Any]) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=params["ca_path"])
    except (OSError, ssl.SSLError) as exc:
        raise ChaosError(
            f"ca_path must be a readable PEM file of certificate authorities, got {params['ca_path']!r} "
            f"({exc}); nothing was started.",
            reason="invalid_input",
            field="ca_path",
        ) from None
    if not params["validate_certs"]:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def build_plan(params: dict[str, Any]) -> dict[str, Any]:
    """Every option of a start checked; the plan the run follows. Raises ChaosError naming the option."""
    target = parse_url(params["url"])
    _number_in(
        params,
        "rate",
        0,
        MAX_RATE,
        f"a number above 0 and at most {MAX_RATE:g} (requests per second)",
    )
    _number_in(
        params,
        "duration",
        0,
        MAX_DURATION,
        f"a number above 0 and at most {MAX_DURATION:g} (seconds)",
    )
    requests = round(params["rate"] * params["duration"])
    if requests > MAX_REQUESTS:
        raise ChaosError(
            f"rate x duration must be at most {MAX_REQUESTS:,} requests, got {params['rate']:g} x "
            f"{params['duration']:g} = {requests:,}; nothing was started.",
            reason="invalid_input",
            field="duration",
        )
    if requests < 1:
        raise ChaosError(
            f"rate x duration must make at least 1 request, got {params['rate']:g} x {params['duration']:g}; "
            "nothing was started.",
            reason="invalid_input",
            field="duration",
        )
    _number_in(
        params,
        "concurrency",
        0,
        MAX_CONCURRENCY,
        f"an integer from 1 to {MAX_CONCURRENCY}",
    )
    _number_in(
        params,
        "request_timeout",
        0,
        MAX_REQUEST_TIMEOUT,
        f"a number above 0 and at most {MAX_REQUEST_TIMEOUT:g} (seconds)",
    )
    _number_in(
        params, "max_tokens", 0, MAX_TOKENS, f"an integer from 1 to {MAX_TOKENS}"
    )
    _number_in(
        params, "prompt_count", 0, MAX_PROMPTS, f"an integer from 1 to {MAX_PROMPTS}"
    )
    method = (params["method"] or "").strip().upper()
    if not _TOKEN.match(method):
        raise _invalid("method", "an HTTP method such as POST or GET", params["method"])
    for field in ("variant_header", "pod_header"):
        if not _TOKEN.match(params[field] or ""):
            raise _invalid(field, "an HTTP header name", params[field])
    headers = {}
    for name, value in (params["headers"] or {}).items():
        if (
            not _TOKEN.match(str(name))
            or value is None
            or re.search(r"[\r\n]", str(value))
        ):
            raise _invalid(
                "headers", "header names mapped to one-line values", str(name)
            )
        headers[str(name)] = str(value)
    if params["api_key"]:
        if re.search(r"[\r\n]", params["api_key"]):
            raise _invalid("api_key", "a one-line token", "<redacted>")
        headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        headers["Authorization"] = "Bearer " + params["api_key"]
    template, is_json = body_template(params["body"])
    if is_json and not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = "application/json"
    plan = {
        **target,
        "url": params["url"].strip(),
        "method": method,
        "rate": float(params["rate"]),
        "duration": float(params["duration"]),
        "requests": requests,
        "concurrency": params["concurrency"],
        "request_timeout": float(params["request_timeout"]),
        "headers": headers,
        "body": template,
        "body_is_json": is_json,
        "model": params["model"],
        "max_tokens": params["max_tokens"],
        "prompt_template": params["prompt_template"],
        "prompt_count": params["prompt_count"],
        "variant_header": params["variant_header"],
        "pod_header": params["pod_header"],
        "references": {},
    }
    try:
        request_body(plan, 0)
    except (TypeError, ValueError) as exc:
        raise _invalid(
            "body", f"a template that renders as JSON ({exc})", params["body"]
        ) from None
    if target["scheme"] == "https":
        plan["ssl_context"] = ssl_context(params)
    elif params["ca_path"]:
        raise _invalid("ca_path", "unset for an http:// URL", params["ca_path"])
    if params["verify_against"]:
        plan["references"] = read_references(params["verify_against"])
    return plan


# ---------------------------------------------------------------- the run


def new_record(seq: int, due: float, prompt_index: int | None) -> dict[str, Any]:
    return {
        "seq": seq,
        "due": due,
        "sent": 0.0,
        "done": 0.0,
        "latency_ms": 0.0,
        "latency_from_due_ms": 0.0,
        "status": 0,
        "variant": "",
        "pod": "",
        "error": "",
        "correct": None,
        "prompt_index": prompt_index,
        "answer": None,
    }


def connect(plan: dict[str, Any]) -> http.client.HTTPConnection:
    if plan["scheme"] == "https":
        return http.client.HTTPSConnection(
            plan["host"],
            plan["port"],
            timeout=plan["request_timeout"],
            context=plan["ssl_context"],
        )
    return http.client.HTTPConnection(
        plan["host"], plan["port"], timeout=plan["request_timeout"]
    )


def preflight(plan: dict[str, Any]) -> None:
    """One connection (with its TLS handshake), no request: a target that cannot be reached starts nothing."""
    conn = connect(plan)
    try:
        conn.connect()
    except ssl.SSLCertVerificationError as exc:
        raise ChaosError(
            f"The certificate of {plan['host']}:{plan['port']} is not trusted ({exc.verify_message or exc}); "
            "set ca_path to its authority, or validate_certs=false for a test endpoint. Nothing was started.",
            reason="tls_error",
            field="validate_certs",
        ) from None
    except ssl.SSLError as exc:
        raise ChaosError(
            f"TLS handshake with {plan['host']}:{plan['port']} failed ({exc}); nothing was started.",
            reason="tls_error",
            field="url",
        ) from None
    except OSError as exc:
        raise ChaosError(
            f"Cannot connect to {plan['host']}:{plan['port']} ({type(exc).__name__}: {exc}); nothing was started.",
            reason="unreachable",
            field="url",
        ) from None
    finally:
        conn.close()


def send_one(
    conn: http.client.HTTPConnection | None,
    plan: dict[str, Any],
    rec: dict[str, Any],
    body: bytes,
) -> http.client.HTTPConnection | None:
    """Send one request on conn (a new one when None) and fill rec; returns the connection to keep."""
    rec["sent"] = time.time()
    t0 = time.monotonic()
    try:
        if conn is None:
            conn = connect(plan)
        conn.request(plan["method"], plan["path"], body=body, headers=plan["headers"])
        resp = conn.getresponse()
        data = resp.read()
        rec["status"] = resp.status
        rec["variant"] = resp.getheader(plan["variant_header"], "") or ""
        rec["pod"] = resp.getheader(plan["pod_header"], "") or ""
        if (
            resp.getheader("Connection", "") or ""
        ).lower() == "close" or resp.will_close:
            conn.close()
            conn = None
        if 200 <= resp.status < 300:
            text = completion_text(data)
            rec["answer"] = None if text is None else answer_hash(text)
            reference = plan["references"].get(rec["prompt_index"])
            if reference is not None:
                rec["correct"] = rec["answer"] == reference
        elif resp.status >= 400:
            snippet = data[:120].decode("utf-8", "replace").replace("\n", " ")
            rec["error"] = f"HTTP {resp.status}: {snippet}"[:ERROR_CHARS]
    except (OSError, http.client.HTTPException) as exc:
        rec["status"] = 0
        rec["error"] = f"{type(exc).__name__}: {exc}"[:ERROR_CHARS]
        if conn is not None:
            conn.close()
        conn = None
    rec["done"] = time.time()
    rec["latency_ms"] = round((time.monotonic() - t0) * 1000, 3)
    rec["latency_from_due_ms"] = round((rec["done"] - rec["due"]) * 1000, 3)
    return conn


class StopFlag:
    """A stop request that a signal handler may set (a threading.Event could deadlock there)."""

    def __init__(self) -> None:
        self.stopped = False

    def set(self) -> None:
        self.stopped = True

    def is_set(self) -> bool:
        return self.stopped

    def wait(self, seconds: float) -> bool:
        """Sleep up to seconds, in short steps; whether a stop was asked for."""
        end = time.monotonic() + seconds
        while not self.stopped:
            left = end - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(left, STOP_POLL_SECONDS))
        return self.stopped


def run_load(
    plan: dict[str, Any],
    sink: Callable[[dict[str, Any]], None] | None = None,
    stop: StopFlag | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    """Send the plan's requests on schedule; (every scheduled request's record in seq order, stopped early).

    sink(record) is called once per record (in completion order, under a lock); a request not answered
    when the workers are given up on is recorded with the error "not completed".
    """
    stop = stop or StopFlag()
    total, rate = plan["requests"], plan["rate"]
    work: queue.Queue = queue.Queue()
    records: list[dict[str, Any] | None] = [None] * total
    lock = threading.Lock()
    counts = {"done": 0, "errors": 0}
    start = time.time() + 0.05
    mono0 = time.monotonic() + 0.05

    closed = []

    def deliver(rec: dict[str, Any]) -> None:
        with lock:
            if closed:  # given up on: already recorded as not completed
                return
            records[rec["seq"]] = rec
            counts["done"] += 1
            if not 200 <= rec["status"] < 400:
                counts["errors"] += 1
            if sink is not None:
                sink(rec)

    def worker() -> None:
        conn = None
        while True:
            item = work.get()
            if item is None:
                break
            seq, due = item
            body, index = request_body(plan, seq)
            rec = new_record(seq, due, index)
            conn = send_one(conn, plan, rec, body)
            deliver(rec)
        if conn is not None:
            conn.close()

    threads = [
        threading.Thread(target=worker, daemon=True, name=f"http_load-{n}")
        for n in range(min(plan["concurrency"], total))
    ]
    for thread in threads:
        thread.start()
    scheduled = 0
    next_report = 1
    for seq in range(total):
        delay = mono0 + seq / rate - time.monotonic()
        if delay > 0 and stop.wait(delay):
            break
        if stop.is_set():
            break
        work.put((seq, start + seq / rate))
        scheduled = seq + 1
        if progress is not None and time.time() - start >= next_report:
            with lock:
                line = f"t={next_report:>4}s sent={scheduled} responses={counts['done']} errors={counts['errors']}"
            progress(line)
            next_report += 1
    for thread in threads:
        work.put(None)  # one end marker per worker
    stopped = scheduled < total
    grace = STOP_GRACE_SECONDS if stopped else plan["request_timeout"] + 5
    deadline = time.monotonic() + grace
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    out = []
    with lock:
        closed.append(True)
        for seq in range(scheduled):
            rec = records[seq]
            if rec is None:
                rec = new_record(seq, start + seq / rate, seq % plan["prompt_count"])
                rec["error"] = "not completed"
                records[seq] = rec
                if sink is not None:
                    sink(rec)
            out.append(rec)
    return out, stopped


# ---------------------------------------------------------------- the background process


def _write_atomic(path: str, text: str) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def background_main(
    plan: dict[str, Any], paths: dict[str, str], records_file, log
) -> int:
    """The detached process's work: the run, its records, its summary; returns its exit code."""
    stop = StopFlag()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    signal.signal(signal.SIGHUP, signal.SIG_IGN)

    def say(line: str) -> None:
        log.write(line + "\n")
        log.flush()

    def sink(rec: dict[str, Any]) -> None:
        records_file.write(json.dumps(rec) + "\n")

    say(
        f"http_load pid {os.getpid()}: {plan['requests']} {plan['method']} requests to {plan['url']} "
        f"at {plan['rate']:g}/s for {plan['duration']:g} s, records {paths['records']}"
    )
    records, stopped = run_load(plan, sink=sink, stop=stop, progress=say)
    records_file.flush()
    summary = summarize_run(records)
    _write_atomic(paths["summary"], json.dumps(summary, indent=2) + "\n")
    say(
        f"{'stopped by a signal' if stopped else 'done'}: total={summary['total']} ok={summary.get('ok', 0)} "
        f"errors={summary.get('errors', 0)} error_ratio={summary.get('error_ratio')} "
        f"p50_ms={summary.get('p50_ms')} p99_ms={summary.get('p99_ms')} rate={summary.get('achieved_rate')}/s"
    )
    return RC_STOPPED if stopped else 0


def _detached_child(
    plan: dict[str, Any], paths: dict[str, str], report_fd: int
) -> None:
    """The grandchild: a session of its own, stdio away from ansible, the run; never returns."""
    rc = 1
    try:
        os.setsid()
        os.chdir("/")
        null = os.open(os.devnull, os.O_RDWR)
        log_fd = os.open(paths["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(null, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(null)
        log = os.fdopen(log_fd, "a", encoding="utf-8")
        records_file = open(  # noqa: SIM115 - closed below, before the exit code
            paths["records"], "a", encoding="utf-8", buffering=1
        )
        os.write(report_fd, f"pid {os.getpid()}\n".encode())
        os.close(report_fd)
        report_fd = -1
        try:
            rc = background_main(plan, paths, records_file, log)
        except BaseException:  # noqa: BLE001 - the log is the only place left to say it
            traceback.print_exc(file=log)
            log.flush()
            rc = 1
        records_file.close()
        _write_atomic(paths["rc_file"], f"{rc}\n")
    except BaseException as exc:  # noqa: BLE001
        if report_fd >= 0:
            try:
                os.write(report_fd, f"error {type(exc).__name__}: {exc}\n".encode())
            except OSError:
                pass
        rc = 2
    finally:
        os._exit(rc)


def start_detached(plan: dict[str, Any], paths: dict[str, str]) -> int:
    """Double fork: the grandchild runs the load in its own session; returns its pid once it is running."""
    read_fd, write_fd = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked process
        try:
            os.close(read_fd)
            if os.fork() == 0:
                _detached_child(plan, paths, write_fd)
        finally:
            os._exit(0)
    os.close(write_fd)
    chunks = []
    while True:
        chunk = os.read(read_fd, 4096)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read_fd)
    while True:
        try:
            os.waitpid(child, 0)
            break
        except ChildProcessError:
            break
        except OSError as exc:
            if exc.errno != errno.EINTR:
                raise
    answer = b"".join(chunks).decode("utf-8", "replace").strip()
    if answer.startswith("pid "):
        return int(answer.split()[1])
    raise ChaosError(
        f"The load process could not start: {answer or 'it exited without a word'}.",
        reason="start_failed",
        log=paths["log"],
    )


# ---------------------------------------------------------------- the states


def _claim(paths: dict[str, str]) -> None:
    """Create the records file, refusing an existing run's files (nothing is overwritten)."""
    for key in ("summary", "rc_file"):
        if os.path.exists(paths[key]):
            raise ChaosError(
                f"records: {paths[key]} of an earlier run exists; choose another records path. Nothing was started.",
                reason="invalid_input",
                field="records",
            )
    try:
        with open(paths["records"], "x", encoding="utf-8"):
            pass
    except FileExistsError:
        raise ChaosError(
            f"records: {paths['records']} exists (an earlier run's records are never overwritten); choose "
            "another path. Nothing was started.",
            reason="invalid_input",
            field="records",
        ) from None
    except OSError as exc:
        raise ChaosError(
            f"records: cannot create {paths['records']} ({exc.strerror}); its folder must exist. "
            "Nothing was started.",
            reason="invalid_input",
            field="records",
        ) from None


def start(params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    if not params["records"]:
        raise _invalid(
            "records", "the path of the run's records file (state=started)", None
        )
    plan = build_plan(params)
    paths = run_paths(params["records"])
    what = (
        f"{plan['requests']} {plan['method']} requests to {plan['url']} at {plan['rate']:g}/s "
        f"for {plan['duration']:g} s"
    )
    result: dict[str, Any] = {"changed": True, **paths, "requests": plan["requests"]}
    started = time.time()
    handle = {
        "pid": None,
        "start_ticks": None,
        "host": socket.gethostname(),
        **paths,
        "url": plan["url"],
        "rate": plan["rate"],
        "duration": plan["duration"],
        "requests": plan["requests"],
        "request_timeout": plan["request_timeout"],
        "started": round(started, 3),
        "ends": round(started + plan["duration"], 3),
    }
    if check_mode:
        result["handle"] = handle
        result["msg"] = (
            f"would start {what} with {plan['concurrency']} connections, records {paths['records']}"
        )
        return result
    if not os.path.isdir(os.path.dirname(paths["records"])):
        raise _invalid("records", "a path in an existing folder", params["records"])
    preflight(plan)
    _claim(paths)
    try:
        pid = start_detached(plan, paths)
    except BaseException:
        try:
            if os.path.getsize(paths["records"]) == 0:
                os.unlink(paths["records"])
        except OSError:
            pass
        raise
    handle.update(pid=pid, start_ticks=process_start_ticks(pid))
    result.update(pid=pid, handle=handle, msg=f"started {what} (pid {pid})")
    return result


def _log_tail(path: str, lines: int = 15) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return "".join(collections.deque(handle, maxlen=lines)).strip()
    except OSError:
        return ""


def _finish_target(params: dict[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
    handle = params["handle"]
    if handle:
        if not isinstance(handle.get("records"), str) or not handle["records"]:
            raise _invalid(
                "handle",
                "the handle that state=started returned (with records)",
                handle,
            )
        paths = run_paths(handle["records"])
        for key in ("summary", "rc_file", "log"):
            if isinstance(handle.get(key), str) and handle[key]:
                paths[key] = handle[key]
        return paths, handle
    if not params["records"]:
        raise _invalid(
            "records", "the run's records path, or handle (state=finished)", None
        )
    return run_paths(params["records"]), {}


def _read_rc(path: str) -> int | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return int(handle.read().strip())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return -1


def finish(params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    paths, handle = _finish_target(params)
    where = {key: paths[key] for key in ("records", "rc_file", "log")}
    timeout = params["timeout"]
    if timeout is None:
        try:
            timeout = (
                max(0.0, float(handle["ends"]) - time.time())
                + float(handle.get("request_timeout") or 0)
                + FINISH_SLACK
            )
        except (KeyError, TypeError, ValueError):
            timeout = UNKNOWN_END_TIMEOUT
    elif math.isnan(timeout) or timeout < 0:
        raise _invalid("timeout", "a number of seconds, 0 or more", timeout)
    result: dict[str, Any] = {
        "changed": False,
        **where,
        "finished": False,
        "summary": None,
    }
    if isinstance(handle.get("requests"), int):
        result["requests"] = handle["requests"]
    pid = handle.get("pid")
    ticks = handle.get("start_ticks")
    # The process can be watched only on the host that started it.
    watch = (
        isinstance(pid, int)
        and isinstance(ticks, int)
        and handle.get("host") == socket.gethostname()
    )
    deadline = time.monotonic() + timeout
    rc = _read_rc(paths["rc_file"])
    if rc is None and check_mode:
        result["msg"] = (
            "check mode: the run has not ended (or was not started); not waiting"
        )
        return result
    while rc is None:
        if watch and process_start_ticks(pid) != ticks:
            rc = _read_rc(paths["rc_file"])
            if rc is None:
                raise ChaosError(
                    f"The load process {pid} ended without finishing its run (killed?); no exit code in "
                    f"{paths['rc_file']}. Its records so far: {paths['records']}. Its log: "
                    f"{_log_tail(paths['log']) or '(empty)'}",
                    reason="load_failed",
                    **where,
                )
            break
        if time.monotonic() >= deadline:
            raise ChaosError(
                f"Timed out after {timeout:g} seconds waiting for the load run of {paths['records']} to end "
                f"(no {paths['rc_file']} yet).",
                reason="timeout",
                **where,
            )
        time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
        rc = _read_rc(paths["rc_file"])
    summary = None
    try:
        with open(paths["summary"], encoding="utf-8") as fh:
            summary = json.load(fh)
    except (OSError, ValueError):
        summary = None
    result.update(finished=True, rc=rc, summary=summary)
    if rc != 0:
        why = (
            "was stopped by SIGTERM before its end"
            if rc == RC_STOPPED
            else f"failed with exit code {rc}"
        )
        raise ChaosError(
            f"The load run of {paths['records']} {why}. Its log: {_log_tail(paths['log']) or '(empty)'}",
            reason="load_failed",
            rc=rc,
            summary=summary,
            **where,
        )
    if summary is None:
        raise ChaosError(
            f"The load run of {paths['records']} ended (exit code 0) but its summary {paths['summary']} "
            "cannot be read.",
            reason="load_failed",
            rc=rc,
            **where,
        )
    return result


def http_load(params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    if params["state"] == "started":
        return start(params, check_mode)
    return finish(params, check_mode)


ARGUMENT_SPEC: dict[str, dict[str, Any]] = {
    "state": {
        "type": "str",
        "choices": ["started", "finished"],
        "default": "started",
    },
    "records": {"type": "path"},
    "handle": {"type": "dict"},
    "url": {"type": "str"},
    "rate": {"type": "float"},
    "duration": {"type": "float"},
    "concurrency": {"type": "int", "default": 64},
    "request_timeout": {"type": "float", "default": 5},
    "method": {"type": "str", "default": "POST"},
    "headers": {"type": "dict", "default": {}},
    "api_key": {"type": "str", "no_log": True},
    "validate_certs": {"type": "bool", "default": True},
    "ca_path": {"type": "path"},
    "body": {"type": "raw"},
    "model": {"type": "str"},
    "max_tokens": {"type": "int", "default": 16, "no_log": False},
    "prompt_template": {"type": "str", "default": "veritas lab prompt {i}"},
    "prompt_count": {"type": "int", "default": 64},
    "variant_header": {"type": "str", "default": "X-Veritas-Variant"},
    "pod_header": {"type": "str", "default": "X-Veritas-Pod"},
    "verify_against": {"type": "path"},
    "timeout": {"type": "float"},
}


def main() -> None:
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        required_if=[("state", "started", ("url", "rate", "duration", "records"))],
        mutually_exclusive=[("handle", "records")],
        supports_check_mode=True,
    )
    for name, value in (module.params["headers"] or {}).items():
        if str(name).lower() in SECRET_HEADERS and value:
            module.no_log_values.add(str(value))

    def action() -> dict[str, Any]:
        return http_load(module.params, module.check_mode)

    run_module(module, action, needs_kubernetes=False)


if __name__ == "__main__":
    main()

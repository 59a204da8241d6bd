# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""load_window over recorded load files: what the game days' criteria read."""

from __future__ import annotations

import json

import pytest
import yaml
from ansible import constants as C
from ansible.errors import AnsibleLookupError
from ansible_collections.veritas.chaos.plugins.lookup import load_window as plugin
from ansible_collections.veritas.chaos.plugins.module_utils._loadstats import (
    DEFAULT_MIN_SAMPLES,
)

NAME = "veritas.chaos.load_window"


def new_lookup():
    """The lookup with the options of its DOCUMENTATION, as the plugin loader sets it up."""
    options = yaml.safe_load(plugin.DOCUMENTATION)["options"]
    if not C.config.has_configuration_definition("lookup", NAME):
        C.config.initialize_plugin_configuration_definitions("lookup", NAME, options)
    lookup = plugin.LookupModule()
    lookup._load_name = NAME
    return lookup


@pytest.fixture
def load_window():
    lookup = new_lookup()

    def run(path, **options):
        (result,) = lookup.run([str(path)], variables={}, **options)
        return result

    return run


def write(tmp_path, records, name="load.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def rec(sent, status=200, latency_ms=10.0, variant="control", pod="control-0", **extra):
    return {"seq": 0, "due": sent, "sent": sent, "done": sent + latency_ms / 1000, "latency_ms": latency_ms,
            "latency_from_due_ms": latency_ms, "status": status, "variant": variant, "pod": pod,
            "error": "" if status else "ConnectionRefusedError", "correct": extra.pop("correct", None), **extra}


def run_at_100_rps(start, seconds, canary_every=10, **kw):
    """A steady 100 requests/s: every `canary_every`-th answered by the canary."""
    out = []
    for i in range(int(seconds * 100)):
        canary = canary_every and i % canary_every == 0
        out.append(rec(start + i / 100, variant="canary" if canary else "control",
                       pod="canary-a" if canary else f"control-{i % 4}", **kw))
    return out


def test_error_ratio_of_the_window(load_window, tmp_path):
    records = run_at_100_rps(1000, 1) + [rec(1001.0 + i / 100, status=503) for i in range(10)]
    records += [rec(1001.2, status=0, variant="", pod="")] * 5
    w = load_window(write(tmp_path, records))
    assert w["measured"] is True
    assert (w["count"], w["errors"], w["http_5xx"], w["transport_errors"]) == (115, 15, 10, 5)
    assert w["error_ratio"] == round(15 / 115, 6)


def test_default_min_samples_is_documented_and_applied(load_window, tmp_path):
    documented = yaml.safe_load(plugin.DOCUMENTATION)["options"]["min_samples"]["default"]
    assert documented == DEFAULT_MIN_SAMPLES  # the load generator's summary uses the same floor
    w = load_window(write(tmp_path, run_at_100_rps(1000, 0.19, canary_every=0)))
    assert (w["count"], w["measured"], w["min_samples"]) == (19, False, 20)
    w = load_window(write(tmp_path, run_at_100_rps(1000, 0.2, canary_every=0)))
    assert (w["count"], w["measured"]) == (20, True)


def test_empty_window_is_not_measured(load_window, tmp_path):
    path = write(tmp_path, run_at_100_rps(1000, 2))
    w = load_window(path, since=5000.0)
    assert w["measured"] is False
    assert (w["count"], w["errors"]) == (0, 0)
    assert w["error_ratio"] is None and w["p99_ms"] is None and w["shares"] is None
    empty = load_window(write(tmp_path, [], name="empty.jsonl"))
    assert (empty["measured"], empty["count"], empty["error_ratio"]) == (False, 0, None)


def test_tiny_window_of_failures_is_not_a_ratio(load_window, tmp_path):
    path = write(tmp_path, [rec(1000 + i, status=500) for i in range(3)])
    w = load_window(path)
    assert (w["measured"], w["errors"], w["error_ratio"]) == (False, 3, None)
    assert load_window(path, min_samples=3)["error_ratio"] == 1.0


def test_min_samples_option_is_checked(load_window, tmp_path):
    path = write(tmp_path, run_at_100_rps(1000, 1))
    assert load_window(path, min_samples="50")["min_samples"] == 50
    with pytest.raises(AnsibleLookupError, match="min_samples"):
        load_window(path, min_samples=0)


def test_wrong_answers(load_window, tmp_path):
    records = run_at_100_rps(1000, 1, correct=True)
    records += [rec(1001 + i / 100, correct=False) for i in range(4)]
    records += [rec(1002, status=503)]  # an error is not checked
    w = load_window(write(tmp_path, records))
    assert (w["checked"], w["wrong_answers"]) == (104, 4)
    after = load_window(write(tmp_path, records), since=1001.0, min_samples=1)
    assert (after["checked"], after["wrong_answers"]) == (4, 4)


def test_per_variant_shares_and_filter(load_window, tmp_path):
    path = write(tmp_path, run_at_100_rps(1000, 5))
    w = load_window(path)
    assert w["variants"] == {"canary": 50, "control": 450}
    assert w["shares"] == {"canary": 0.1, "control": 0.9}
    assert w["by_variant"]["canary"]["share"] == 0.1
    canary = load_window(path, variant="canary")
    assert canary["count"] == 50
    assert canary["pods"] == {"canary-a": 50}
    assert canary["shares"] == {"canary": 1.0}


def test_per_colour(load_window, tmp_path):
    records = [rec(1000 + i / 100, variant="blue", pod=f"blue-{i % 3}") for i in range(200)]
    records += [rec(1002 + i / 100, variant="green", pod="green-0", status=503) for i in range(30)]
    path = write(tmp_path, records)
    w = load_window(path)
    assert w["variants"] == {"blue": 200, "green": 30}
    assert w["by_variant"]["green"]["error_ratio"] == 1.0
    assert w["by_variant"]["blue"]["error_ratio"] == 0.0
    assert load_window(path, variant="green")["errors"] == 30


def test_time_window_since_until(load_window, tmp_path):
    path = write(tmp_path, run_at_100_rps(1000, 3))
    w = load_window(path, since=1001.0, until=1002.0)
    assert w["count"] == 100
    assert w["first_sent"] == 1001.0
    assert w["last_sent"] == pytest.approx(1001.99)
    # options come from Jinja as text
    assert load_window(path, since="1002.5")["count"] == 50
    assert load_window(path, until=1000.5)["count"] == 50
    with pytest.raises(AnsibleLookupError, match="before it starts"):
        load_window(path, since=1002.0, until=1001.0)


def test_percentiles(load_window, tmp_path):
    records = [rec(1000 + i / 100, latency_ms=float(i + 1)) for i in range(200)]
    records.append(rec(1003, status=0, latency_ms=5000.0, variant="", pod=""))
    w = load_window(write(tmp_path, records))
    assert (w["p50_ms"], w["p90_ms"], w["p99_ms"], w["max_ms"]) == (100.0, 180.0, 198.0, 200.0)


def test_exclude_pods(load_window, tmp_path):
    records = [rec(1000 + i / 100, variant="canary", pod="canary-old") for i in range(30)]
    records += [rec(1001 + i / 100, variant="canary", pod="canary-new") for i in range(40)]
    path = write(tmp_path, records)
    w = load_window(path, exclude_pods=["canary-old"])
    assert w["pods"] == {"canary-new": 40}
    assert w["first_sent"] == 1001.0
    assert load_window(path, exclude_pods=["canary-old", "canary-new"])["count"] == 0


def test_canary_after_a_kill_replacements_included(load_window, tmp_path):
    # Canary killed at 1005: its pod answers until 1005.3, the replacement from 1011.
    records = run_at_100_rps(1000, 20)
    for r in records:
        if r["variant"] == "canary" and 1005.3 <= r["sent"] < 1011:
            r.update(variant="control", pod="control-9")
        elif r["variant"] == "canary" and r["sent"] >= 1011:
            r["pod"] = "canary-b"
    path = write(tmp_path, records)
    canary = load_window(path, since=1005.0, variant="canary")
    assert canary["last_sent_by_variant"]["canary"] == pytest.approx(1019.9)
    assert canary["pods"] == {"canary-a": 3, "canary-b": 90}
    assert load_window(path, since=1005.0, variant="canary", exclude_pods=["canary-b"])["last_sent"] == pytest.approx(1005.2)


def test_blank_lines_are_skipped(load_window, tmp_path):
    path = tmp_path / "gaps.jsonl"
    path.write_text("\n" + json.dumps(rec(1000)) + "\n\n   \n" + json.dumps(rec(1001)) + "\n")
    assert load_window(path, min_samples=1)["count"] == 2


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"sent": 1000.0, "status": 200', "line 2 is not JSON"),
        ("[1, 2, 3]", "line 2 is not a record"),
        ('{"sent": "later", "status": 200}', "line 2: record 'sent' must be a number"),
        ('{"sent": 1000.0, "status": "OK"}', "line 2: record 'status' must be a number"),
    ],
)
def test_malformed_lines_name_file_and_line(load_window, tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(rec(1000)) + "\n" + line + "\n" + json.dumps(rec(1001)) + "\n")
    with pytest.raises(AnsibleLookupError, match=message) as caught:
        load_window(path)
    assert str(path) in str(caught.value)


def test_missing_file_and_wrong_terms(load_window, tmp_path):
    with pytest.raises(AnsibleLookupError, match="cannot read"):
        load_window(tmp_path / "nowhere.jsonl")
    with pytest.raises(AnsibleLookupError, match="exactly one term"):
        new_lookup().run([], variables={})

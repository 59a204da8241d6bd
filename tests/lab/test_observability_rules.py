"""Observability: the generated Prometheus / Alertmanager configuration is valid, the lab loads
the collection's rule file (extensions/prometheus/veritas-rules.yml) as it ships, and the
recording and alert rules compute what the game days rely on (`promtool test rules` on series
shaped like the runtime's and HAProxy's metrics; tests/prometheus has the rule file's own)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "lab" / "observability"))

import obs

CFG = obs.load_config()
DP = obs.load_dataplane()
S = obs.suffix(CFG)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    for tool in ("promtool", "amtool", "prometheus", "prometheus-alertmanager"):
        assert shutil.which(tool), f"{tool} is not installed (lab/observability/up.sh installs it)"
    out = tmp_path_factory.mktemp("obs")
    obs.render(CFG, DP, out / "lab", out)
    return out


def run(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def test_configuration_is_valid_and_intervals_come_from_one_place(rendered):
    res = run("promtool", "check", "config", str(rendered / "prometheus.yml"))
    assert res.returncode == 0, res.stdout + res.stderr
    res = run("amtool", "check-config", str(rendered / "alertmanager.yml"))
    assert res.returncode == 0, res.stdout + res.stderr
    prom = yaml.safe_load((rendered / "prometheus.yml").read_text())
    assert prom["global"]["scrape_interval"] == CFG["scrape_interval"]
    assert prom["global"]["evaluation_interval"] == CFG["evaluation_interval"]
    assert all("scrape_interval" not in j for j in prom["scrape_configs"])
    # the rules are the shipped file, byte for byte; its groups have no interval of their own,
    # so config.yml's evaluation_interval applies to them
    assert (rendered / "rules.yml").read_bytes() == obs.RULES_FILE.read_bytes()
    for g in yaml.safe_load((rendered / "rules.yml").read_text())["groups"]:
        assert "interval" not in g
    assert prom["rule_files"] == [str(rendered / "rules.yml")]
    jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
    assert jobs["veritas-runtime"]["file_sd_configs"][0]["files"][0].endswith("run/targets/*.json")
    port = DP["haproxy"]["stats_port"]
    assert jobs["haproxy"]["static_configs"][0]["targets"] == [f"127.0.0.1:{port}"]
    am = yaml.safe_load((rendered / "alertmanager.yml").read_text())
    assert am["receivers"][0]["webhook_configs"][0]["url"] == f"http://{CFG['webhook']['listen']}/alerts"


RT = 'job="veritas-runtime",namespace="ns",instance="{i}",pod="{p}",variant="{v}"'


def series(labels: str, values: str, metric: str = "") -> dict:
    return {"series": f"{metric}{{{labels}}}", "values": values}


def hist(i, p, v, fast_per_s, slow_per_s, colour=None):
    """vllm:e2e_request_latency_seconds buckets: fast requests at 0.1 s, slow ones at 2 s."""
    lab = RT.format(i=i, p=p, v=v) + (f',colour="{colour}"' if colour else "")
    out = []
    for le in ("0.3", "0.5", "0.8", "1.0", "2.5", "+Inf"):
        rate = fast_per_s + (slow_per_s if float(le) >= 2.5 else 0)
        out.append(series(f'{lab},le="{le}"', f"0+{rate}x120", "vllm:e2e_request_latency_seconds_bucket"))
    return out


def test_recording_and_alert_rules(rendered, tmp_path):
    req = "veritas_http_requests_total"
    inp = [
        # canary: 8 ok + 2 errors a second = 20% errors; health checks must not dilute it
        series(RT.format(i="k", p="canary-1", v="canary") + ',handler="completions",code="200"', "0+8x120", req),
        series(RT.format(i="k", p="canary-1", v="canary") + ',handler="completions",code="500"', "0+2x120", req),
        series(RT.format(i="k", p="canary-1", v="canary") + ',handler="health",code="200"', "0+50x120", req),
        # control: no errors, and slow: 20% of requests take 2 s -> P99 > 500 ms
        series(RT.format(i="c", p="control-1", v="control") + ',handler="completions",code="200"', "0+10x120", req),
        # green (blue-green pods get variant = colour by relabelling, colour label too)
        series(RT.format(i="g", p="green-1", v="green") + ',colour="green",handler="completions",code="200"',
               "0+9x120", req),
        series(RT.format(i="g", p="green-1", v="green") + ',colour="green",handler="completions",code="503"',
               "0+1x120", req),
        *hist("k", "canary-1", "canary", 10, 0),
        *hist("c", "control-1", "control", 8, 2),
        # presence and up: canary's metrics are fine, control answers /metrics without series,
        # green's target is down
        series(RT.format(i="k", p="canary-1", v="canary"), "1x120", "up"),
        series(RT.format(i="k", p="canary-1", v="canary"), "0x120", "vllm:num_requests_running"),
        series(RT.format(i="c", p="control-1", v="control"), "1x120", "up"),
        series(RT.format(i="g", p="green-1", v="green"), "0x120", "up"),
        # GPU gauge
        series(RT.format(i="g", p="green-1", v="green"), "0x120", "veritas_gpu_available"),
        series(RT.format(i="k", p="canary-1", v="canary"), "1x120", "veritas_gpu_available"),
        # the proxy's view
        series('job="haproxy",proxy="control",code="2xx"', "0+90x120", "haproxy_backend_http_responses_total"),
        series('job="haproxy",proxy="canary",code="2xx"', "0+8x120", "haproxy_backend_http_responses_total"),
        series('job="haproxy",proxy="canary",code="5xx"', "0+2x120", "haproxy_backend_http_responses_total"),
        series('job="haproxy"', "1x120", "up"),
    ]

    def expr(e, *samples):
        return {"expr": e, "eval_time": "60s",
                "exp_samples": [{"labels": lbl, "value": v} for lbl, v in samples]}

    def firing(name, extra=""):
        return f'count by (alertname, variant, reason) (ALERTS{{alertstate="firing",alertname="{name}"{extra}}})'

    tests = [
        expr(f'veritas:error_ratio:{S}{{variant="canary"}}',
             (f'veritas:error_ratio:{S}{{namespace="ns",variant="canary"}}', 0.2)),
        expr(f'veritas:error_ratio:{S}{{variant="control"}}',
             (f'veritas:error_ratio:{S}{{namespace="ns",variant="control"}}', 0)),
        expr(f'veritas:error_ratio:{S}{{variant="green"}}',
             (f'veritas:error_ratio:{S}{{namespace="ns",variant="green"}}', 0.1)),
        expr(f"veritas_colour:error_ratio:{S}",
             (f'veritas_colour:error_ratio:{S}{{namespace="ns",colour="green"}}', 0.1)),
        expr(f'veritas:proxy_error_ratio:{S}{{variant="canary"}}',
             (f'veritas:proxy_error_ratio:{S}{{variant="canary"}}', 0.2)),
        expr(f'veritas:proxy_share:{S}{{variant="canary"}}', (f'veritas:proxy_share:{S}{{variant="canary"}}', 0.1)),
        expr(f'veritas:latency_p99_seconds:{S}{{variant="canary"}} < bool 0.5',
             ('{namespace="ns",variant="canary"}', 1)),
        expr(f'veritas:latency_p99_seconds:{S}{{variant="control"}} > bool 0.5',
             ('{namespace="ns",variant="control"}', 1)),
        expr(firing("VeritasErrorRateHigh"), ('{alertname="VeritasErrorRateHigh",variant="canary"}', 1),
             ('{alertname="VeritasErrorRateHigh",variant="green"}', 1)),
        expr(firing("VeritasLatencyP99High"), ('{alertname="VeritasLatencyP99High",variant="control"}', 1)),
        expr(firing("VeritasMetricsOutage"),
             ('{alertname="VeritasMetricsOutage",variant="green",reason="target_down"}', 1),
             ('{alertname="VeritasMetricsOutage",variant="control",reason="series_absent"}', 1)),
        expr(firing("VeritasGPUUnavailable"), ('{alertname="VeritasGPUUnavailable",variant="green"}', 1)),
    ]
    spec = {
        "rule_files": [str(rendered / "rules.yml")],
        "evaluation_interval": CFG["evaluation_interval"],
        "tests": [{"interval": "1s", "input_series": inp, "promql_expr_test": tests}],
    }
    # all runtime metrics gone -> the outage alert with reason no_runtime_metrics
    spec["tests"].append({
        "interval": "1s",
        "input_series": [series('job="haproxy"', "1x60", "up")],
        "promql_expr_test": [expr(firing("VeritasMetricsOutage"),
                                  ('{alertname="VeritasMetricsOutage",reason="no_runtime_metrics"}', 1))],
    })
    f = tmp_path / "rules_test.yml"
    f.write_text(yaml.safe_dump(spec, sort_keys=False))
    res = run("promtool", "test", "rules", str(f))
    assert res.returncode == 0, res.stdout + res.stderr

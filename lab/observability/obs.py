#!/usr/bin/env python3
"""Generates the lab's Prometheus and Alertmanager configuration from config.yml.

  obs.py render --out DIR [--lab-dir L]    prometheus.yml, rules.yml, alertmanager.yml into DIR
  obs.py addresses [--format text|json|env]

Intervals, windows, thresholds and metric names live in config.yml only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DEFAULT_CONFIG = HERE / "config.yml"
DATAPLANE_CONFIG = REPO / "lab" / "dataplane" / "config.yml"
RUNTIME_JOB = "veritas-runtime"
PROXY_JOB = "haproxy"


def load_config(path=None) -> dict:
    path = Path(path or os.environ.get("OBSERVABILITY_CONFIG") or DEFAULT_CONFIG)
    with open(path) as fh:
        return yaml.safe_load(fh)


def load_dataplane(path=None) -> dict:
    path = Path(path or os.environ.get("DATAPLANE_CONFIG") or DATAPLANE_CONFIG)
    with open(path) as fh:
        return yaml.safe_load(fh)


def addresses(cfg: dict) -> dict:
    return {
        "prometheus": f"http://{cfg['prometheus']['listen']}",
        "alertmanager": f"http://{cfg['alertmanager']['listen']}",
        "webhook": f"http://{cfg['webhook']['listen']}/alerts",
    }


def suffix(cfg: dict) -> str:
    return "rate" + str(cfg["rate_window"])


def runtime_relabel() -> list[dict]:
    """Blue-green pods have no `variant` label: their colour becomes the variant, so that
    veritas:*{variant} covers control, canary, blue and green; `colour` is set for blue-green."""
    return [
        {
            "source_labels": ["deployment"],
            "regex": "(?:.*-)?(blue|green)",
            "target_label": "colour",
            "replacement": "$1",
        },
        {
            "source_labels": ["variant", "colour"],
            "regex": ";(.+)",
            "target_label": "variant",
            "replacement": "$1",
        },
    ]


def prometheus_config(cfg: dict, dp: dict, lab_dir: Path, out: Path) -> dict:
    rt = cfg["runtime"]
    h = dp["haproxy"]
    # Debian's Prometheus is built without kubernetes_sd_configs: the runtime pods come from the
    # file the supervisor writes (one target per Running pod, at its local address).
    runtime_job = {
        "job_name": RUNTIME_JOB,
        "file_sd_configs": [{"files": [str(lab_dir / rt["targets_glob"])], "refresh_interval": "1s"}],
        "relabel_configs": runtime_relabel(),
    }
    return {
        "global": {
            "scrape_interval": cfg["scrape_interval"],
            "scrape_timeout": cfg["scrape_timeout"],
            "evaluation_interval": cfg["evaluation_interval"],
            "external_labels": {"lab": "veritas"},
        },
        "rule_files": [str(out / "rules.yml")],
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [cfg["alertmanager"]["listen"]]}]}]
        },
        "scrape_configs": [
            runtime_job,
            {
                "job_name": PROXY_JOB,
                "static_configs": [{"targets": [f"{h['bind']}:{h['stats_port']}"]}],
                "metric_relabel_configs": [
                    {"source_labels": ["__name__"], "regex": "haproxy_(backend|frontend|server|process)_.*",
                     "action": "keep"},
                ],
            },
            {"job_name": "alertmanager", "static_configs": [{"targets": [cfg["alertmanager"]["listen"]]}]},
            {"job_name": "prometheus", "static_configs": [{"targets": [cfg["prometheus"]["listen"]]}]},
        ],
    }


def rules(cfg: dict, dp: dict) -> dict:
    rt, th, fr = cfg["runtime"], cfg["thresholds"], cfg["for"]
    s, w = suffix(cfg), cfg["rate_window"]
    job = f'job="{RUNTIME_JOB}"'
    variants = "|".join(dp["canary"]["variants"] + dp["bluegreen"]["colours"])
    recs = []
    for by, pre_ in (("variant", "veritas"), ("colour", "veritas_colour")):
        k = f"namespace, {by}"
        only = "" if by == "variant" else ',colour=~".+"'
        req = f'{rt["requests_metric"]}{{{job},{rt["requests_matchers"]}{only}}}'
        err = f'{rt["requests_metric"]}{{{job},{rt["requests_matchers"]},code=~"{rt["error_code_regex"]}"{only}}}'
        hist = f'{rt["latency_histogram"]}_bucket{{{job}{only}}}'
        recs += [
            {"record": f"{pre_}:requests:{s}", "expr": f"sum by ({k}) (rate({req}[{w}]))"},
            {"record": f"{pre_}:errors:{s}", "expr": f"sum by ({k}) (rate({err}[{w}]))"},
            {
                "record": f"{pre_}:error_ratio:{s}",
                "expr": f"(({pre_}:errors:{s} or {pre_}:requests:{s} * 0) / {pre_}:requests:{s})",
            },
            {
                "record": f"{pre_}:latency_p99_seconds:{s}",
                "expr": f"histogram_quantile(0.99, sum by ({k}, le) (rate({hist}[{w}])))",
            },
            {
                "record": f"{pre_}:latency_p50_seconds:{s}",
                "expr": f"histogram_quantile(0.5, sum by ({k}, le) (rate({hist}[{w}])))",
            },
        ]
    # A short-window error ratio per variant for a fast rollback guard (the lab scrapes every
    # second, so a few seconds hold enough samples); the game days' lab inventory points the
    # guard at it.
    fw = cfg.get("fast_rate_window")
    if fw:
        req = f'{rt["requests_metric"]}{{{job},{rt["requests_matchers"]}}}'
        err = f'{rt["requests_metric"]}{{{job},{rt["requests_matchers"]},code=~"{rt["error_code_regex"]}"}}'
        recs.append({
            "record": f"veritas:error_ratio:rate{fw}",
            "expr": (f"(sum by (namespace, variant) (rate({err}[{fw}])) or sum by (namespace, variant) "
                     f"(rate({req}[{fw}])) * 0) / sum by (namespace, variant) (rate({req}[{fw}]))"),
        })
    pb = f'haproxy_backend_http_responses_total{{job="{PROXY_JOB}",proxy=~"{variants}"}}'
    recs += [
        {
            "record": f"veritas:proxy_responses:{s}",
            "expr": f'label_replace(sum by (proxy, code) (rate({pb}[{w}])), "variant", "$1", "proxy", "(.*)")',
        },
        {
            "record": f"veritas:proxy_error_ratio:{s}",
            "expr": (
                f'sum by (variant) (veritas:proxy_responses:{s}{{code="5xx"}})'
                f" / sum by (variant) (veritas:proxy_responses:{s})"
            ),
        },
    ]
    ctl, can = dp["canary"]["variants"][:2]
    recs.append({
        "record": f"veritas:proxy_share:{s}",
        "expr": (
            f'sum by (variant) (veritas:proxy_responses:{s}{{variant=~"{ctl}|{can}"}})'
            f' / ignoring (variant) group_left sum(veritas:proxy_responses:{s}{{variant=~"{ctl}|{can}"}})'
        ),
    })

    presence = f'{rt["presence_metric"]}{{{job}}}'

    def alert(name, expr, for_, severity, summary, **labels):
        return {
            "alert": name,
            "expr": expr,
            "for": for_,
            "labels": {"severity": severity, **labels},
            "annotations": {"summary": summary},
        }

    alerts = [
        alert(
            # On the fast window when the lab has one, so the alert fires before a fast guard's
            # rollback has ended the errors (the 30 s ratio would not pass 5% by then).
            "VeritasErrorRateHigh",
            f"veritas:error_ratio:rate{cfg['fast_rate_window']} > {th['error_ratio']}" if cfg.get("fast_rate_window")
            else f"veritas:error_ratio:{s} > {th['error_ratio']}", fr["error_ratio"],
            "critical",
            "error ratio of {{ $labels.variant }} in {{ $labels.namespace }} is {{ $value | humanizePercentage }}"
            f" (> {th['error_ratio']:.0%})",
        ),
        alert(
            "VeritasLatencyP99High", f"veritas:latency_p99_seconds:{s} > {th['latency_p99_seconds']}",
            fr["latency_p99"], "critical",
            "P99 latency of {{ $labels.variant }} in {{ $labels.namespace }} is {{ $value | humanizeDuration }}"
            f" (> {th['latency_p99_seconds']}s)",
        ),
        alert(
            "VeritasMetricsOutage", f"up{{{job}}} == 0", fr["metrics_outage"], "warning",
            "metrics of pod {{ $labels.pod }} ({{ $labels.variant }}) cannot be scraped",
            reason="target_down",
        ),
        alert(
            "VeritasMetricsOutage", f"(up{{{job}}} == 1) unless on (instance) {presence}",
            fr["metrics_outage"], "warning",
            "pod {{ $labels.pod }} ({{ $labels.variant }}) answers /metrics without its series",
            reason="series_absent",
        ),
        alert(
            "VeritasMetricsOutage", f"absent({presence})", fr["metrics_outage"], "critical",
            "no runtime metrics at all", reason="no_runtime_metrics",
        ),
        alert(
            "VeritasMetricsOutage", f'up{{job="{PROXY_JOB}"}} == 0', fr["metrics_outage"], "warning",
            "the proxy's metrics cannot be scraped", reason="proxy_down",
        ),
        # A runtime pod scraped within the last minute that is gone now (killed, crashed, evicted):
        # the health-check alert of the runbook's scenario 1. One alert per variant that lost a pod.
        alert(
            "VeritasCanaryInstanceLost",
            f'count by (namespace, variant) (max_over_time(up{{{job},variant="canary"}}[1m])'
            f' unless on (pod) up{{{job},variant="canary"}}) > 0',
            fr["instance_lost"], "warning",
            "{{ $value }} canary runtime pod(s) in {{ $labels.namespace }} disappeared in the last minute",
            reason="instance_lost",
        ),
        alert(
            "VeritasGPUUnavailable", f'{rt["gpu_metric"]}{{{job}}} == 0', fr["gpu_unavailable"], "critical",
            "GPU unavailable on pod {{ $labels.pod }} ({{ $labels.variant }})",
        ),
    ]
    interval = cfg["evaluation_interval"]
    return {
        "groups": [
            {"name": "veritas-recording", "interval": interval, "rules": recs},
            {"name": "veritas-alerts", "interval": interval, "rules": alerts},
        ]
    }


def alertmanager_config(cfg: dict) -> dict:
    am = cfg["alertmanager"]
    return {
        "global": {"resolve_timeout": am["resolve_timeout"]},
        "route": {
            "receiver": "veritas-webhook",
            "group_by": ["..."],  # every alert is its own group: no batching delays
            "group_wait": am["group_wait"],
            "group_interval": am["group_interval"],
            "repeat_interval": am["repeat_interval"],
        },
        "receivers": [
            {
                "name": "veritas-webhook",
                "webhook_configs": [
                    {"url": f"http://{cfg['webhook']['listen']}/alerts", "send_resolved": True, "max_alerts": 0}
                ],
            }
        ],
    }


def render(cfg: dict, dp: dict, lab_dir: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, data in (
        ("prometheus.yml", prometheus_config(cfg, dp, lab_dir, out)),
        ("rules.yml", rules(cfg, dp)),
        ("alertmanager.yml", alertmanager_config(cfg)),
    ):
        text = "# Generated by lab/observability/obs.py from config.yml - do not edit.\n"
        text += yaml.safe_dump(data, sort_keys=False, width=200)
        (out / name).write_text(text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("command", choices=["render", "addresses", "get"])
    ap.add_argument("key", nargs="?", help="for get: a dotted key of config.yml")
    ap.add_argument("--config")
    ap.add_argument("--dataplane-config")
    ap.add_argument("--out")
    ap.add_argument("--lab-dir", default=os.environ.get("LAB_DIR", str(REPO / ".lab")))
    ap.add_argument("--format", choices=["text", "json", "env"], default="text")
    a = ap.parse_args(argv)
    cfg = load_config(a.config)
    if a.command == "render":
        lab_dir = Path(a.lab_dir).resolve()
        render(cfg, load_dataplane(a.dataplane_config), lab_dir, Path(a.out or lab_dir / "observability"))
    elif a.command == "get":
        v = cfg
        for part in a.key.split("."):
            v = v[part]
        print(v)
    else:
        addr = addresses(cfg)
        if a.format == "json":
            print(json.dumps(addr))
        elif a.format == "env":
            for k, v in addr.items():
                print(f"OBSERVABILITY_{k.upper()}={v}")
        else:
            for k, v in addr.items():
                print(f"{k:13s} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Generates the lab's Prometheus and Alertmanager configuration from config.yml.

  obs.py render --out DIR [--lab-dir L]    prometheus.yml, alertmanager.yml into DIR, and rules.yml:
                                           a copy of extensions/prometheus/veritas-rules.yml
  obs.py addresses [--format text|json|env]
  obs.py get KEY                           a dotted key of config.yml

Scrape and evaluation intervals and addresses live in config.yml; the rules (windows,
thresholds, `for`, metric names) in the collection's extensions/prometheus/veritas-rules.yml.
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
# The recording and alerting rules: the collection's rule file, loaded as it ships (`render`
# copies it to rules.yml). Its job names are these two.
RULES_FILE = REPO / "extensions" / "prometheus" / "veritas-rules.yml"
RUNTIME_JOB = "veritas-runtime"
PROXY_JOB = "haproxy"
# What `render` requires of the rule file: the alerts the game days wait for (scenarios/registry.yml;
# scenarios/registry.py's lab-alerts check looks for each name, quoted, in this file) and the
# records their guards query, veritas:<name>:<rate_window>.
GAMEDAY_ALERTS = ("VeritasCanaryInstanceLost", "VeritasErrorRateHigh", "VeritasMetricsOutage",
                  "VeritasGPUUnavailable", "VeritasLatencyP99High")
GAMEDAY_RECORDS = ("error_ratio", "latency_p99_seconds")


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
    """The suffix of the rule file's record names (rate30s): config.yml's rate_window names the
    file's window for the lab's tests, and `render` refuses a file whose records do not match."""
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


def check_rules(cfg: dict, text: str) -> None:
    """The shipped rule file has what the lab and its game days need: every alert a game day
    waits for and the records of the configured window (config.yml's rate_window names it,
    the file sets it). Raises ValueError otherwise."""
    data = yaml.safe_load(text)
    names = {r.get("record") or r.get("alert") for g in data["groups"] for r in g["rules"]}
    missing = [n for n in (*GAMEDAY_ALERTS, *(f"veritas:{r}:{suffix(cfg)}" for r in GAMEDAY_RECORDS))
               if n not in names]
    if missing:
        raise ValueError(f"{RULES_FILE} has no rule {', '.join(missing)}")


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
        ("alertmanager.yml", alertmanager_config(cfg)),
    ):
        text = "# Generated by lab/observability/obs.py from config.yml - do not edit.\n"
        text += yaml.safe_dump(data, sort_keys=False, width=200)
        (out / name).write_text(text)
    # The rules are the collection's, byte for byte: the lab tests what a team installs.
    rules = RULES_FILE.read_text(encoding="utf-8")
    check_rules(cfg, rules)
    (out / "rules.yml").write_text(rules, encoding="utf-8")


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

"""The collection's Prometheus rules (extensions/prometheus): the PrometheusRule manifest is the
rule file's rendering, the rule file defines every record and alert the game days use, the lab
loads exactly that file, and (where promtool is installed) tests/prometheus/run.sh passes."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
EXT = REPO / "extensions" / "prometheus"
RULES = EXT / "veritas-rules.yml"
MANIFEST = EXT / "veritas-prometheusrule.yaml"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


render_prometheusrule = _load("render_prometheusrule", EXT / "render_prometheusrule.py")


@pytest.fixture(scope="module")
def obs():
    return _load("veritas_lab_obs", REPO / "lab" / "observability" / "obs.py")


def rule_file() -> dict:
    return yaml.safe_load(RULES.read_text(encoding="utf-8"))


def rules_by_name() -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for group in rule_file()["groups"]:
        for rule in group["rules"]:
            out.setdefault(rule.get("record") or rule["alert"], []).append(rule)
    return out


# --- the PrometheusRule manifest --------------------------------------------------------------


def test_prometheusrule_manifest_is_the_rendering_of_the_rule_file():
    expected = render_prometheusrule.render(RULES.read_text(encoding="utf-8"))
    assert MANIFEST.read_text(encoding="utf-8") == expected, (
        "extensions/prometheus/veritas-prometheusrule.yaml is stale: run python3 extensions/prometheus/render_prometheusrule.py"
    )


def test_prometheusrule_manifest_holds_the_rule_files_groups():
    manifest = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    assert manifest["apiVersion"] == "monitoring.coreos.com/v1"
    assert manifest["kind"] == "PrometheusRule"
    assert manifest["metadata"]["name"] == "veritas-rules"
    assert manifest["spec"]["groups"] == rule_file()["groups"]


def test_render_check_mode_reports_a_stale_manifest(tmp_path, capsys):
    out = tmp_path / "manifest.yaml"
    assert render_prometheusrule.main(["--out", str(out)]) == 0
    assert render_prometheusrule.main(["--out", str(out), "--check"]) == 0
    out.write_text(out.read_text(encoding="utf-8").replace("> 0.05", "> 0.5"), encoding="utf-8")
    assert render_prometheusrule.main(["--out", str(out), "--check"]) == 1
    assert "is not the rendering" in capsys.readouterr().err


def test_render_refuses_what_a_prometheusrule_cannot_hold():
    with pytest.raises(ValueError, match="groups"):
        render_prometheusrule.render("rules: []\n")
    with pytest.raises(ValueError, match="unknown keys"):
        render_prometheusrule.render("groups: [{name: g, rules: [{record: a, expr: b, typo: c}]}]\n")


# --- the rule file ----------------------------------------------------------------------------


def test_rule_file_groups_and_a_comment_above_every_rule():
    groups = rule_file()["groups"]
    assert [g["name"] for g in groups] == ["veritas-recording", "veritas-alerts"]
    # No interval of their own: the Prometheus' global evaluation_interval applies (the lab's is 1 s).
    assert all("interval" not in g for g in groups)
    lines = RULES.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if re.match(r"\s*- (record|alert):", line):
            assert lines[i - 1].lstrip().startswith("#"), f"line {i + 1} has no comment above it: {line.strip()}"


def test_every_alert_a_game_day_waits_for_is_defined_with_its_labels():
    registry = yaml.safe_load((REPO / "scenarios" / "registry.yml").read_text(encoding="utf-8"))
    expected = {a for s in registry["scenarios"] for a in s.get("alerts") or []}
    assert expected == {"VeritasCanaryInstanceLost", "VeritasErrorRateHigh", "VeritasMetricsOutage", "VeritasGPUUnavailable"}
    rules = rules_by_name()
    assert expected | {"VeritasLatencyP99High"} <= set(rules)
    for name in expected | {"VeritasLatencyP99High"}:
        for rule in rules[name]:
            assert rule["labels"]["severity"] in ("warning", "critical"), name
            assert rule["annotations"]["summary"], name
    reasons = sorted(r["labels"]["reason"] for r in rules["VeritasMetricsOutage"])
    assert reasons == ["no_runtime_metrics", "proxy_down", "series_absent", "target_down"]
    assert rules["VeritasCanaryInstanceLost"][0]["labels"]["reason"] == "instance_lost"
    # Game day 2 keeps only the alerts with variant="canary": by (namespace, variant) records.
    assert "veritas:error_ratio:rate3s" in rules["VeritasErrorRateHigh"][0]["expr"]
    assert "veritas:error_ratio:rate30s" in rules["VeritasErrorRateHigh"][0]["expr"]


def _collection_text(suffixes: tuple[str, ...]) -> str:
    paths = [REPO / "scenarios" / "registry.yml"]
    for top in ("roles", "playbooks", "inventories", "plugins"):
        paths += [p for p in (REPO / top).rglob("*") if p.is_file() and p.suffix in suffixes]
    return "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in paths)


def test_every_record_and_alert_the_collection_names_is_defined():
    text = _collection_text((".yml", ".yaml", ".py", ".j2", ".md"))
    used = set(re.findall(r"\bveritas(?:_colour)?:[a-z0-9_]+:rate[0-9]+[smh]\b", text))
    # game day 4 names two of them in a regex: veritas:(error_ratio|latency_p99_seconds):rate30s
    used |= {"veritas:error_ratio:rate30s", "veritas:latency_p99_seconds:rate30s", "veritas:error_ratio:rate3s"}
    records = {r["record"] for g in rule_file()["groups"] for r in g["rules"] if "record" in r}
    assert used <= records, sorted(used - records)
    # alert names as the roles, playbooks, inventories and the modules' docs (YAML) spell them
    alerts_used = set(re.findall(r"\bVeritas[A-Z][A-Za-z0-9]+\b", _collection_text((".yml", ".yaml", ".md"))))
    alerts = {r["alert"] for g in rule_file()["groups"] for r in g["rules"] if "alert" in r}
    assert alerts_used <= alerts, sorted(alerts_used - alerts)


def test_queries_use_vllm_names_where_vllm_has_one():
    exprs = " ".join(r["expr"] for g in rule_file()["groups"] for r in g["rules"])
    metrics = set(re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{", exprs))
    raw = {m for m in metrics if not m.startswith(("veritas:", "veritas_colour:"))}
    assert raw == {
        "veritas_http_requests_total",  # HTTP codes: vLLM's server has http_requests_total{status="5xx"}
        "vllm:e2e_request_latency_seconds_bucket",
        "vllm:num_requests_running",
        "veritas_gpu_available",  # vLLM has no GPU gauge
        "haproxy_backend_http_responses_total",
        "up",
    }
    assert set(re.findall(r'job="([^"]+)"', exprs)) == {"veritas-runtime", "haproxy"}


# --- the lab ----------------------------------------------------------------------------------


def test_the_lab_loads_exactly_the_shipped_rule_file(obs, tmp_path):
    cfg, dp = obs.load_config(), obs.load_dataplane()
    out = tmp_path / "obs"
    obs.render(cfg, dp, tmp_path / "lab", out)
    assert (out / "rules.yml").read_bytes() == RULES.read_bytes()
    prom = yaml.safe_load((out / "prometheus.yml").read_text(encoding="utf-8"))
    assert prom["rule_files"] == [str(out / "rules.yml")]
    assert prom["global"]["evaluation_interval"] == cfg["evaluation_interval"]
    assert {j["job_name"] for j in prom["scrape_configs"]} >= {obs.RUNTIME_JOB, obs.PROXY_JOB}
    assert (obs.RUNTIME_JOB, obs.PROXY_JOB) == ("veritas-runtime", "haproxy")
    # config.yml no longer claims the rules' values
    assert not {"fast_rate_window", "thresholds", "for"} & set(cfg)
    assert not {"requests_metric", "latency_histogram", "presence_metric", "gpu_metric"} & set(cfg["runtime"])
    assert not hasattr(obs, "rules")


def test_the_lab_refuses_a_rule_file_without_what_the_game_days_need(obs):
    cfg = obs.load_config()
    text = RULES.read_text(encoding="utf-8")
    obs.check_rules(cfg, text)
    with pytest.raises(ValueError, match="VeritasGPUUnavailable"):
        obs.check_rules(cfg, text.replace("alert: VeritasGPUUnavailable", "alert: SomethingElse"))
    with pytest.raises(ValueError, match="veritas:error_ratio:rate1m"):
        obs.check_rules({**cfg, "rate_window": "1m"}, text)


# --- promtool ---------------------------------------------------------------------------------


def test_promtool_check_and_unit_tests_pass():
    res = subprocess.run([str(REPO / "tests" / "prometheus" / "run.sh")], capture_output=True, text=True, check=False)
    if res.returncode == 2:
        pytest.skip("promtool is not installed (Debian's prometheus package): " + res.stderr.strip())
    assert res.returncode == 0, res.stdout + res.stderr

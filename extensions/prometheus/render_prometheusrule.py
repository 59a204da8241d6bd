# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Render veritas-rules.yml (a Prometheus rule file) as a PrometheusRule manifest for the
Prometheus Operator (monitoring.coreos.com/v1), so that the two never drift.

  python3 render_prometheusrule.py            write veritas-prometheusrule.yaml beside this script
  python3 render_prometheusrule.py --check    exit 1 when the manifest is not the rule file's rendering
  python3 render_prometheusrule.py --stdout   print the manifest

Options: --rules FILE (default: veritas-rules.yml here), --out FILE (default:
veritas-prometheusrule.yaml here). Needs PyYAML.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
RULES = HERE / "veritas-rules.yml"
MANIFEST = HERE / "veritas-prometheusrule.yaml"
NAME = "veritas-rules"
HEADER = (
    "# Generated from veritas-rules.yml by render_prometheusrule.py: do not edit by hand, edit the rule\n"
    "# file and run `python3 extensions/prometheus/render_prometheusrule.py`. Apply it into the namespace\n"
    "# your Prometheus Operator watches for rules (ruleNamespaceSelector), and add the labels its\n"
    "# ruleSelector wants (for example release: <your kube-prometheus-stack release>).\n"
)
# The keys a rule of a PrometheusRule may carry, in the order they are written.
RULE_KEYS = ("record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations")
GROUP_KEYS = ("name", "interval", "limit", "rules")


class RuleFileError(ValueError):
    """The rule file is not one a PrometheusRule can hold."""


# The manifest is written by hand rather than by yaml.dump, whose folding breaks a line only
# after passing the width (PromQL has long words): block style, sequences indented under their
# key, and a string longer than FOLD_AT as a folded block scalar (`>-`) wrapped at spaces to
# WIDTH columns. The unit tests check that it loads back to the rule file's groups.
WIDTH = 110
FOLD_AT = 80


def _scalar(value: object) -> str:
    """`value` as a one-line YAML scalar (plain where it can be, quoted otherwise)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=float("inf"), allow_unicode=True)
    return text.removesuffix("\n...\n").rstrip("\n")


def _foldable(value: object) -> bool:
    return (isinstance(value, str) and len(value) > FOLD_AT and value == value.strip()
            and not any(c in value for c in "\n\t\r") and "  " not in value)


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    for word in text.split(" "):
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def _entry(indent: int, head: str, value: object) -> list[str]:
    pad = " " * indent
    if isinstance(value, (dict, list)) and value:
        return [pad + head, *_block(value, indent + 2)]
    if _foldable(value):
        return [pad + head + " >-", *(pad + "  " + line for line in _wrap(value, WIDTH - indent - 2))]
    return [pad + head + " " + _scalar(value)]


def _block(node: dict | list, indent: int) -> list[str]:
    lines: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            lines += _entry(indent, _scalar(key) + ":", value)
        return lines
    for item in node:
        sub = _block(item, indent + 2) if isinstance(item, (dict, list)) and item else [" " * (indent + 2) + _scalar(item)]
        lines += [" " * indent + "- " + sub[0][indent + 2:], *sub[1:]]
    return lines


def load_rules(text: str) -> list[dict]:
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or not isinstance(data.get("groups"), list):
        raise RuleFileError("not a Prometheus rule file: no list `groups`")
    groups = []
    for group in data["groups"]:
        unknown = set(group) - set(GROUP_KEYS)
        if unknown:
            raise RuleFileError(f"group {group.get('name')!r}: keys a PrometheusRule has not: {sorted(unknown)}")
        rules = []
        for rule in group.get("rules") or []:
            unknown = set(rule) - set(RULE_KEYS)
            if unknown:
                raise RuleFileError(f"rule {rule.get('record') or rule.get('alert')!r}: unknown keys {sorted(unknown)}")
            rules.append({k: rule[k] for k in RULE_KEYS if k in rule})
        groups.append({**{k: group[k] for k in GROUP_KEYS if k in group and k != "rules"}, "rules": rules})
    return groups


def manifest(groups: list[dict], name: str = NAME) -> dict:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": name,
            "labels": {
                "app.kubernetes.io/name": name,
                "app.kubernetes.io/part-of": "veritas-chaos",
            },
        },
        "spec": {"groups": groups},
    }


def render(rules_text: str, name: str = NAME) -> str:
    """The manifest's text for a rule file's text (deterministic: same input, same bytes)."""
    return HEADER + "---\n" + "\n".join(_block(manifest(load_rules(rules_text), name), 0)) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rules", type=Path, default=RULES)
    ap.add_argument("--out", type=Path, default=MANIFEST)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="compare with --out instead of writing it")
    mode.add_argument("--stdout", action="store_true", help="print instead of writing --out")
    a = ap.parse_args(argv)
    try:
        text = render(a.rules.read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError) as exc:
        print(f"render_prometheusrule: {exc}", file=sys.stderr)
        return 2
    if a.stdout:
        sys.stdout.write(text)
    elif a.check:
        current = a.out.read_text(encoding="utf-8") if a.out.is_file() else None
        if current != text:
            print(f"{a.out} is not the rendering of {a.rules}: run python3 {Path(__file__).name}", file=sys.stderr)
            return 1
        print(f"{a.out.name} matches {a.rules.name}")
    else:
        a.out.write_text(text, encoding="utf-8")
        print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

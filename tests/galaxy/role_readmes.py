# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The roles' README.md files: the part that describes a role's variables comes from its
meta/argument_specs.yml, so it cannot drift from what the role validates.

Each roles/<role>/README.md has a generated block between two markers (what the role does
and its variables, per entry point); the rest (example playbook, license, author) is
written by hand. `write` creates missing READMEs and rewrites the generated blocks;
`check` fails when a role has no README or its block differs from its argument spec.

Usage: python tests/galaxy/role_readmes.py write|check
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BEGIN = "<!-- generated from meta/argument_specs.yml by `python tests/galaxy/role_readmes.py write`: do not edit by hand -->"
END = "<!-- end of the generated part -->"

# Ansible's documentation markup (C(), V(), O(), M(), P(), ...) in Markdown.
_MARKUP = re.compile(r"\b([CVOMPIBURE]|RV)\(([^()]*)\)")
_LINK = re.compile(r"\bL\(([^,()]*),\s*([^()]*)\)")
_INVENTORY_VAR = re.compile(r"\bveritas_[a-z0-9_]+")


def markdown(text: str) -> str:
    text = _LINK.sub(lambda m: f"[{m.group(1)}]({m.group(2)})", text)

    def one(match: re.Match) -> str:
        kind, value = match.group(1), match.group(2)
        if kind in ("I", "B"):
            return f"*{value}*" if kind == "I" else f"**{value}**"
        if kind == "U":
            return f"<{value}>"
        if kind in ("O", "RV") and "#" in value:
            # O(veritas.chaos.canary_analysis#module:rollback=true): the text names the module already.
            option = value.partition("#")[2]
            return f"`{option.partition(':')[2] or option}`"
        if kind == "P":
            return f"`{value.partition('#')[0]}`"
        return f"`{value}`"

    return _MARKUP.sub(one, text)


def lines_of(description) -> list[str]:
    if description is None:
        return []
    if isinstance(description, str):
        description = [description]
    return [" ".join(markdown(str(item)).split()) for item in description]


def inline(value) -> str:
    if isinstance(value, str):
        return f"`{value}`" if value else '`""`'
    return f"`{json.dumps(value)}`"


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def default_cell(name: str, option: dict, role_defaults: dict) -> str:
    parts = []
    if option.get("required"):
        parts.append("**required**")
    elif "default" in option:
        parts.append(inline(option["default"]))
    else:
        parts.append("none")
    role_default = role_defaults.get(name)
    if isinstance(role_default, str) and "{{" in role_default:
        names = sorted(set(_INVENTORY_VAR.findall(role_default)))
        if names:
            parts.append("the role default reads " + ", ".join(f"`{n}`" for n in names))
    return "; ".join(parts)


def generated_block(role: Path) -> str:
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text(encoding="utf-8"))["argument_specs"]
    defaults_file = role / "defaults" / "main.yml"
    role_defaults = (yaml.safe_load(defaults_file.read_text(encoding="utf-8")) or {}) if defaults_file.is_file() else {}
    out = [BEGIN, ""]
    for entry_point, spec in specs.items():
        heading = "What it does" if entry_point == "main" else f"Entry point `{entry_point}` (`tasks_from: {entry_point}`)"
        out += [f"## {heading}", ""]
        if entry_point != "main" and spec.get("short_description"):
            out += [markdown(spec["short_description"]) + ".", ""]
        out += [f"- {line}" for line in lines_of(spec.get("description"))] + [""]
        options = spec.get("options") or {}
        out += ["### Variables" if entry_point == "main" else f"### Variables of `{entry_point}`", ""]
        if not options:
            out += ["None.", ""]
            continue
        out += ["| variable | type | default | description |", "| --- | --- | --- | --- |"]
        # Required ones first, then in the argument spec's order.
        ordered = sorted(options.items(), key=lambda item: not item[1].get("required", False))
        for name, option in ordered:
            kind = option.get("type", "str")
            if kind == "list" and option.get("elements"):
                kind = f"list of {option['elements']}"
            if option.get("choices"):
                kind += " (" + ", ".join(f"`{c}`" for c in option["choices"]) + ")"
            description = " ".join(lines_of(option.get("description")))
            out.append(
                f"| `{name}` | {cell(kind)} | {cell(default_cell(name, option, role_defaults))} | {cell(description)} |"
            )
        out.append("")
    out.append(END)
    return "\n".join(out)


def meta_info(role: Path) -> dict:
    meta = yaml.safe_load((role / "meta" / "main.yml").read_text(encoding="utf-8")) or {}
    return meta.get("galaxy_info") or {}


def new_readme(role: Path) -> str:
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text(encoding="utf-8"))["argument_specs"]
    info = meta_info(role)
    title = markdown(specs.get("main", {}).get("short_description", role.name))
    return "\n".join([
        f"# veritas.chaos.{role.name}",
        "",
        f"{title}.",
        "",
        generated_block(role),
        "",
        "## Example playbook",
        "",
        "```yaml",
        "- name: Example",
        "  hosts: localhost",
        "  gather_facts: false",
        "  roles:",
        f"    - role: veritas.chaos.{role.name}",
        "```",
        "",
        "## License",
        "",
        f"{info.get('license', 'GPL-3.0-or-later')} (the collection's `COPYING`).",
        "",
        "## Author",
        "",
        f"{info.get('author', 'veritas.chaos contributors')}.",
        "",
    ])


def roles() -> list[Path]:
    return sorted(p for p in (ROOT / "roles").iterdir() if (p / "meta" / "argument_specs.yml").is_file())


def split(text: str) -> tuple[str, str, str] | None:
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        return None
    return text[:start], text[start:end + len(END)], text[end + len(END):]


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in ("write", "check"):
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    problems = []
    for role in roles():
        readme = role / "README.md"
        block = generated_block(role)
        if not readme.is_file():
            if argv[1] == "write":
                readme.write_text(new_readme(role), encoding="utf-8")
                print(f"wrote {readme.relative_to(ROOT)}")
            else:
                problems.append(f"{readme.relative_to(ROOT)}: missing (galaxy-importer refuses a role without one)")
            continue
        text = readme.read_text(encoding="utf-8")
        parts = split(text)
        if parts is None:
            problems.append(f"{readme.relative_to(ROOT)}: no generated block (markers {BEGIN!r} ... {END!r})")
            continue
        if parts[1] != block:
            if argv[1] == "write":
                readme.write_text(parts[0] + block + parts[2], encoding="utf-8")
                print(f"updated {readme.relative_to(ROOT)}")
            else:
                problems.append(f"{readme.relative_to(ROOT)}: variables differ from meta/argument_specs.yml")
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print("run: python tests/galaxy/role_readmes.py write", file=sys.stderr)
        return 1
    if argv[1] == "check":
        print(f"role READMEs: {len(roles())} roles, every README matches its argument spec")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env bash
# Checks the collection's Prometheus rules (extensions/prometheus/veritas-rules.yml):
#   1. promtool check rules   the file is valid (syntax, PromQL, templates)
#   2. promtool test rules    tests/prometheus/veritas-rules.test.yml: the records compute what
#                             the game days read and the alerts fire (and do not) when they should
#   3. the PrometheusRule manifest is the rule file's rendering (render_prometheusrule.py --check),
#      when a Python with PyYAML is at hand
# Exit code: 0 when all pass, 1 when one fails, 2 when promtool is missing.
#
# promtool: $PROMTOOL if set, else the one on PATH (Debian's `prometheus` package has it), else a
# promtool the lab has cached ($VERITAS_LAB_CACHE, default ~/.cache/veritas-lab, or .lab/).
#
# Usage: tests/prometheus/run.sh
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
RULES=$ROOT/extensions/prometheus/veritas-rules.yml
TESTS=$HERE/veritas-rules.test.yml

find_promtool() {
  if [ -n "${PROMTOOL:-}" ]; then
    echo "$PROMTOOL"
    return 0
  fi
  if command -v promtool >/dev/null 2>&1; then
    command -v promtool
    return 0
  fi
  local cache=${VERITAS_LAB_CACHE:-$HOME/.cache/veritas-lab} candidate
  shopt -s nullglob
  for candidate in "$cache"/prometheus*/promtool "$cache"/bin/promtool \
                   "$ROOT"/.lab/prometheus*/promtool "$ROOT"/.lab/bin/promtool; do
    if [ -x "$candidate" ]; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

if ! PROMTOOL=$(find_promtool); then
  echo "tests/prometheus/run.sh: promtool not found: install Debian's prometheus package" \
       "(apt-get install prometheus; do not start its service) or set PROMTOOL" >&2
  exit 2
fi

failed=()
echo "== promtool check rules ($("$PROMTOOL" --version 2>&1 | head -n1))"
"$PROMTOOL" check rules "$RULES" || failed+=("check rules")
echo "== promtool test rules"
"$PROMTOOL" test rules "$TESTS" || failed+=("test rules")

PY=
for candidate in "$ROOT/.venv/bin/python" python3; do
  if "$candidate" -c 'import yaml' >/dev/null 2>&1; then
    PY=$candidate
    break
  fi
done
echo "== PrometheusRule manifest"
if [ -n "$PY" ]; then
  "$PY" "$ROOT/extensions/prometheus/render_prometheusrule.py" --check || failed+=("manifest")
else
  echo "skipped: no Python with PyYAML (python3 -m pip install pyyaml)"
fi

if [ ${#failed[@]} -gt 0 ]; then
  echo "tests/prometheus/run.sh: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "tests/prometheus/run.sh: all passed"

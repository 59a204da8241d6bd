#!/usr/bin/env bash
# ansible-test sanity for veritas.chaos, with no ignore files.
#
# ansible-test needs the collection at ansible_collections/veritas/chaos/. Rather than move the
# repo, this copies what the collection ships (tracked and untracked-but-not-ignored files,
# minus galaxy.yml's build_ignore) and its tests into a temporary tree, makes it a throwaway git
# repo so ansible-test sees exactly those files, and runs the tests there. ansible-test's --venv mode
# bootstraps pip from ci-files.testing.ansible.com, which this machine cannot reach, so the
# tests run --local in a dedicated virtualenv (PyPI only, cached outside the repo) where
# --requirements installs each test's pinned tools without touching .venv.
#
# Usage: lab/bin/sanity.sh [extra ansible-test sanity args, e.g. --test validate-modules]
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VENV=${VENV:-$REPO/.venv}
PYTHON_VERSION=${SANITY_PYTHON:-3.11}

# ansible-test's shellcheck test needs the tool; Debian has it.
if ! command -v shellcheck >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  { apt-get install -y -qq shellcheck || { apt-get update -qq && apt-get install -y -qq shellcheck; }; } >/dev/null 2>&1 \
    || echo "sanity: could not install shellcheck; its test will be skipped" >&2
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/veritas-sanity.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
DEST=$WORK/ansible_collections/veritas/chaos
mkdir -p "$DEST"

cd "$REPO"
"$VENV/bin/python" - "$DEST" <<'PY'
import fnmatch
import os
import shutil
import subprocess
import sys

import yaml

dest = sys.argv[1]
with open("galaxy.yml", encoding="utf-8") as handle:
    ignores = yaml.safe_load(handle).get("build_ignore") or []
# The built collection leaves the tests out, but ansible-test checks them too (all of tests/
# but the lab's tests and ansible-test's own output).
ignores = [p for p in ignores if not p.startswith("tests/")] + ["tests/lab", "tests/output"]

def ignored(path):
    parts = path.split("/")
    for pattern in ignores:
        # Same idea as ansible-galaxy: a pattern matches the path or any leading directory of it.
        for depth in range(1, len(parts) + 1):
            if fnmatch.fnmatch("/".join(parts[:depth]), pattern):
                return True
    return False

files = subprocess.run(
    ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
    check=True, capture_output=True,
).stdout.decode().split("\0")
count = 0
for path in files:
    if not path or ignored(path) or not os.path.isfile(path):
        continue
    target = os.path.join(dest, path)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.copy2(path, target, follow_symlinks=False)
    count += 1
print(f"sanity: copied {count} files to {dest}")
PY

cd "$DEST"
git init -q
git add -A
git -c user.name=sanity -c user.email=sanity@localhost commit -qm sanity --no-gpg-sign

CORE_VERSION=$("$VENV/bin/python" -c 'import ansible.release as r; print(r.__version__)')
SANITY_VENV=${SANITY_VENV:-${VERITAS_LAB_CACHE:-$HOME/.cache/veritas-lab}/sanity-venv-$CORE_VERSION-py$PYTHON_VERSION}
if [ ! -x "$SANITY_VENV/bin/ansible-test" ]; then
  "python$PYTHON_VERSION" -m venv "$SANITY_VENV"
  "$SANITY_VENV/bin/pip" install -q --upgrade pip
  "$SANITY_VENV/bin/pip" install -q "ansible-core==$CORE_VERSION"
fi
# ansible-test bootstraps pip in its per-test virtualenvs with get-pip.py from
# ci-files.testing.ansible.com (unreachable here); a stand-in with the same command line
# installs the requested pip from PyPI on top of the interpreter's bundled ensurepip.
PIP_VERSION=$(grep -ohP "pip='\K[0-9.]+" "$SANITY_VENV"/lib/python*/site-packages/ansible_test/_internal/python_requirements.py 2>/dev/null | head -1)
PIP_VERSION=${PIP_VERSION:-24.2}
GET_PIP=$HOME/.ansible/test/cache/get_pip_${PIP_VERSION//./_}.py
if [ ! -f "$GET_PIP" ]; then
  mkdir -p "$(dirname "$GET_PIP")"
  cat > "$GET_PIP" <<'GETPIP'
# Stand-in for get-pip.py (written by veritas.chaos lab/bin/sanity.sh): ensurepip, then pip from PyPI.
# ensurepip runs in its own process: in-process it sets PIP_CONFIG_FILE=/dev/null, which would
# hide /etc/pip.conf (the machine's CA bundle) from the pip call after it.
import subprocess
import sys

requested = [arg for arg in sys.argv[1:] if not arg.startswith("-")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"], stdout=subprocess.DEVNULL)
subprocess.check_call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--quiet", *requested])
GETPIP
fi

export PATH="$SANITY_VENV/bin:$PATH"
exec "$SANITY_VENV/bin/ansible-test" sanity --color no --local --python "$PYTHON_VERSION" --requirements "$@"

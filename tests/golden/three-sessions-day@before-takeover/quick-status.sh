#!/usr/bin/env bash
# Seed quick-status: the hub at a glance, via `evhub status`.
set -euo pipefail
hub="$(dirname "$0")/.."
run_evhub() {
  if command -v evhub >/dev/null 2>&1; then exec evhub --hub "$hub" "$@"; fi
  if python3 -c "import evhub" >/dev/null 2>&1; then exec python3 -m evhub --hub "$hub" "$@"; fi
  echo "error: evhub is not installed here: activate the environment that has it, or pip install evhub" >&2
  exit 1
}
run_evhub status "$@"

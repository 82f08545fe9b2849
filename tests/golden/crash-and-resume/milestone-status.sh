#!/usr/bin/env bash
# Seed milestone-status: every milestone, or one with its steps when ID is given.
set -euo pipefail
hub="$(dirname "$0")/.."
run_evhub() {
  if command -v evhub >/dev/null 2>&1; then exec evhub --hub "$hub" "$@"; fi
  if python3 -c "import evhub" >/dev/null 2>&1; then exec python3 -m evhub --hub "$hub" "$@"; fi
  echo "error: evhub is not installed here: activate the environment that has it, or pip install evhub" >&2
  exit 1
}
if [ "$#" -ge 1 ]; then run_evhub milestone show "$@"; fi
run_evhub milestone list

#!/usr/bin/env bash
# Seed update-milestone: set a step's status (acting session from EVHUB_SESSION).
set -euo pipefail
if [ "$#" -lt 3 ]; then echo "usage: update-milestone.sh <id> <step> <status> [note]" >&2; exit 2; fi
hub="$(dirname "$0")/.."
run_evhub() {
  if command -v evhub >/dev/null 2>&1; then exec evhub --hub "$hub" "$@"; fi
  if python3 -c "import evhub" >/dev/null 2>&1; then exec python3 -m evhub --hub "$hub" "$@"; fi
  echo "error: evhub is not installed here: activate the environment that has it, or pip install evhub" >&2
  exit 1
}
if [ "$#" -ge 4 ]; then run_evhub milestone step "$1" "$2" "$3" --note "$4"; fi
run_evhub milestone step "$1" "$2" "$3"

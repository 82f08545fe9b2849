#!/usr/bin/env bash
# Seed save-progress: record progress in mode auto, quick, milestone or full.
set -euo pipefail
if [ "$#" -lt 2 ]; then echo "usage: save-progress.sh <mode> <session>" >&2; exit 2; fi
hub="$(dirname "$0")/.."
run_evhub() {
  if command -v evhub >/dev/null 2>&1; then exec evhub --hub "$hub" "$@"; fi
  if python3 -c "import evhub" >/dev/null 2>&1; then exec python3 -m evhub --hub "$hub" "$@"; fi
  echo "error: evhub is not installed here: activate the environment that has it, or pip install evhub" >&2
  exit 1
}
mode="$1" session="$2"
shift 2
run_evhub save --mode "$mode" --session "$session" "$@"

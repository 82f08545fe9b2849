#!/usr/bin/env bash
# Seed claim-priority: claim PRIORITY for session ID.
set -euo pipefail
if [ "$#" -lt 2 ]; then echo "usage: claim-priority.sh <priority> <id>" >&2; exit 2; fi
hub="$(dirname "$0")/../.."
run_evhub() {
  if command -v evhub >/dev/null 2>&1; then exec evhub --hub "$hub" "$@"; fi
  if python3 -c "import evhub" >/dev/null 2>&1; then exec python3 -m evhub --hub "$hub" "$@"; fi
  echo "error: evhub is not installed here: activate the environment that has it, or pip install evhub" >&2
  exit 1
}
priority="$1" id="$2"
shift 2
run_evhub claim "$priority" --session "$id" "$@"

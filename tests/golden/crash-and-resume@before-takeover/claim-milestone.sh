#!/usr/bin/env bash
# Seed claim-milestone: make SESSION the owner of milestone ID and claim its priority.
set -euo pipefail
if [ "$#" -lt 2 ]; then echo "usage: claim-milestone.sh <id> <session>" >&2; exit 2; fi
hub="$(dirname "$0")/.."
run_evhub() {
  if command -v evhub >/dev/null 2>&1; then exec evhub --hub "$hub" "$@"; fi
  if python3 -c "import evhub" >/dev/null 2>&1; then exec python3 -m evhub --hub "$hub" "$@"; fi
  echo "error: evhub is not installed here: activate the environment that has it, or pip install evhub" >&2
  exit 1
}
id="$1" session="$2"
shift 2
run_evhub milestone claim "$id" --session "$session" "$@"

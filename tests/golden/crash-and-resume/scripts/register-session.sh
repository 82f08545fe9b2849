#!/usr/bin/env bash
# Seed register-session: say hello as ID (prints the export EVHUB_SESSION line).
set -euo pipefail
if [ "$#" -lt 1 ]; then echo "usage: register-session.sh <id>" >&2; exit 2; fi
hub="$(dirname "$0")/../.."
run_evhub() {
  if command -v evhub >/dev/null 2>&1; then exec evhub --hub "$hub" "$@"; fi
  if python3 -c "import evhub" >/dev/null 2>&1; then exec python3 -m evhub --hub "$hub" "$@"; fi
  echo "error: evhub is not installed here: activate the environment that has it, or pip install evhub" >&2
  exit 1
}
id="$1"
shift
run_evhub hello "$id" "$@"

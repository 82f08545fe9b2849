#!/usr/bin/env bash
# Seed create-milestone: a new milestone with one step per extra argument.
set -euo pipefail
if [ "$#" -lt 2 ]; then echo "usage: create-milestone.sh <title> <priority> [step...]" >&2; exit 2; fi
hub="$(dirname "$0")/.."
run_evhub() {
  if command -v evhub >/dev/null 2>&1; then exec evhub --hub "$hub" "$@"; fi
  if python3 -c "import evhub" >/dev/null 2>&1; then exec python3 -m evhub --hub "$hub" "$@"; fi
  echo "error: evhub is not installed here: activate the environment that has it, or pip install evhub" >&2
  exit 1
}
title="$1" priority="$2"
shift 2
steps=()
for s in "$@"; do steps+=(--step "$s"); done
run_evhub milestone create --priority "$priority" ${steps[@]+"${steps[@]}"} -- "$title"

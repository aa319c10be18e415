#!/usr/bin/env bash
# Run the official openEO conformance suite against this project's local backend and print the summary:
# openeo-test-suite 0.2.2 (general API, process metadata, collections, individual processes through the REST API)
# and schemathesis on openapi.yaml, through the project's conformance kit (its run.sh, shims and assets).
#
#   . .venv/bin/activate && tools/conformance.sh [KIT_DIR]        # ~10-15 min on 2 cores
#
# KIT_DIR (or $CONFORMANCE_KIT): the kit folder with run.sh; default ../shared/conformance next to the checkout.
# OTS_VENV (suite venv, created on the first run; default ~/.cache/s1ndvi/ots-venv), PORT (default 18070) and WORK
# (reports folder) are passed on. The reports end up in WORK/ots/reports (summary.txt, junit XML, logs).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
KIT=${1:-${CONFORMANCE_KIT:-$ROOT/../shared/conformance}}
if [[ ! -f $KIT/run.sh ]]; then
    echo "conformance: no kit at '$KIT' (expected run.sh there); pass its folder or set CONFORMANCE_KIT" >&2
    exit 2
fi
command -v s1ndvi >/dev/null || { echo "conformance: s1ndvi not on PATH: activate the project's venv" >&2; exit 2; }
export OTS_VENV=${OTS_VENV:-$HOME/.cache/s1ndvi/ots-venv}
export PORT=${PORT:-18070}
mkdir -p "$(dirname "$OTS_VENV")"
cd "$ROOT"
bash "$KIT/run.sh"

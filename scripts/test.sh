#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite, notebooks included, on up to 4 processes
# (pytest-xdist; most of a slow test is single-threaded graph tracing and kernel start-up).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export TF_CPP_MIN_LOG_LEVEL=2 MPLBACKEND=Agg
exec .venv/bin/python -m pytest -q --durations=15 --numprocesses auto --maxprocesses 4 --dist load "$@"

#!/usr/bin/env bash
# The newcomer's first command: fetches ONNX Runtime if needed, builds nodal,
# and runs the whole system on this machine with no servers to start
# (nodal demo). Extra arguments go to `nodal demo` (e.g. --scale 0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh ort
exec cargo run --release --locked -- demo "$@"

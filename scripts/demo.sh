#!/usr/bin/env bash
# The newcomer's first command: fetches ONNX Runtime if needed, builds the
# `nodal` binary, and runs the whole system on this machine with no servers
# to start (nodal demo). Extra arguments go to `nodal demo` (e.g. --scale 0.1).
#
# It builds only the binary. Dependency features are pinned in the
# workspace so that this build and the test command's (every target) enable
# the same features: the test command reuses all of it (docs/benchmarks.md,
# "Build").
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build ort
cargo build --release --locked -p nodal --bin nodal
exec target/release/nodal demo "$@"

#!/usr/bin/env bash
# The newcomer's first command: fetches ONNX Runtime if needed, builds nodal,
# and runs the whole system on this machine with no servers to start
# (nodal demo). Extra arguments go to `nodal demo` (e.g. --scale 0.1).
#
# It builds exactly what scripts/test.sh builds (the whole workspace, all
# targets): a narrower build unifies dependency features differently and
# would compile much of the tree a second time when the other one runs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build ort
cargo build --release --locked --workspace --all-targets
exec target/release/nodal demo "$@"

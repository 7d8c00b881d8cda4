#!/usr/bin/env bash
# Re-validate the shipped models with nodal itself and write JPEG references.
#   models/train/validate.sh [cytology-origin|ptc-ln]
# Runs `nodal demo` (synth → submit → coordinator + workers → statistics, all
# real code) over seed 42 at scale $SCALE into .cache/validate, then
# revalidate.py: the cards' held_out become the run's validation/metrics.json,
# tile.codec the archives' codec, and the Python reference (Pillow +
# onnxruntime over the stored tiles) must match every case within 1e-5.
# Needs scripts/setup.sh build ort pyref. See docs/models.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
SEED=${SEED:-42}
SCALE=${SCALE:-0.2}
VERSION=${VERSION:-}  # empty: each card keeps its version
out="$root/.cache/validate"
python="$root/.cache/pyref-venv/bin/python"
[ -x "$python" ] || { echo "validate.sh: run scripts/setup.sh pyref first" >&2; exit 1; }

cd "$root"
cargo build --release -q --locked --workspace --all-targets  # what test.sh builds: no second build
command="nodal demo --scale $SCALE --seed $SEED"
target/release/nodal demo --scale "$SCALE" --seed "$SEED" --out "$out" --quiet
cd "$here"
"$python" revalidate.py --demo "$out" --models "$root/models" ${VERSION:+--version "$VERSION"} --command "$command" ${1:+--only "$1"}

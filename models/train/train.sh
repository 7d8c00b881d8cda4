#!/usr/bin/env bash
# Re-train, export and verify nodal's shipped models from synthetic data.
#   models/train/train.sh [cytology-origin|ptc-ln]
# Makes a venv under .cache/train-venv (pinned requirements.txt), writes
# `nodal synth` data under .cache/train-data, submits every site with the real
# `nodal submit` into the local store .cache/train-data/store (the tiles the
# model trains on are the ones production stores), trains on CPU, exports ONNX
# with onnx.helper, checks it with Python onnxruntime, and writes model.onnx,
# card.json and reference/ into models/<name>/. Then run validate.sh, so the
# card's held-out figures are the ones nodal computes. See docs/models.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv="$root/.cache/train-venv"
data="$root/.cache/train-data"
only=${1:-}
SEED=${SEED:-42}
CYTOLOGY_SCALE=${CYTOLOGY_SCALE:-0.2}
ULTRASOUND_SCALE=${ULTRASOUND_SCALE:-1.0}

log() { printf 'train.sh: %s\n' "$*" >&2; }
start=$(date +%s)

if [ ! -x "$venv/bin/python" ]; then
  log "creating $venv"
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt"

cd "$root"
cargo build --release -q -p nodal --bin nodal
nodal="$root/target/release/nodal"
if [ -z "$only" ] || [ "$only" = cytology-origin ]; then
  rm -rf "$data/cy"
  log "nodal synth: cytology at scale $CYTOLOGY_SCALE"
  "$nodal" synth --study cytology --scale "$CYTOLOGY_SCALE" --seed "$SEED" --out "$data/cy" --quiet
fi
if [ -z "$only" ] || [ "$only" = ptc-ln ]; then
  rm -rf "$data/us"
  log "nodal synth: ultrasound at scale $ULTRASOUND_SCALE"
  "$nodal" synth --study ultrasound --scale "$ULTRASOUND_SCALE" --seed "$SEED" --out "$data/us" --quiet
fi
submit_study() {  # study, synth study folder
  local site
  for site in "$2"/*/; do
    [ -f "$site/cases.csv" ] || continue
    "$nodal" submit --study "$1" --site "$(basename "$site")" "$site" --store "file://$data/store" --quiet
  done
}
rm -rf "$data/store"
[ -d "$data/cy/cytology" ] && submit_study cytology "$data/cy/cytology"
[ -d "$data/us/ultrasound" ] && submit_study ultrasound "$data/us/ultrasound"
log "data ready after $(( $(date +%s) - start )) s"

cd "$here"
"$venv/bin/python" train.py --store "$data/store" --cytology "$data/cy/cytology" --ultrasound "$data/us/ultrasound" \
  --models "$root/models" ${only:+--only "$only"}
log "done in $(( $(date +%s) - start )) s"

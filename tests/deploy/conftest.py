"""Shared helpers of the deployment tests (tests/deploy): the repository's
paths, the chart rendered with real Helm code (helm-python-sdk), the nodal
binary and the tools scripts/setup.sh installs (`setup.sh deploy`)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import helm_python as helm
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "nodal"
CI_VALUES = ["default", "gpu", "minimal"]
NODAL = Path(os.environ.get("NODAL_BIN", ROOT / "target" / "release" / "nodal"))
ORT_DYLIB = ROOT / ".cache" / "onnxruntime" / "libonnxruntime.so.1.31.1"
S3S_FS = ROOT / ".cache" / "tools" / "bin" / "s3s-fs"
BROKER = os.environ.get("NODAL_TEST_BROKER", "amqp://guest:guest@127.0.0.1:5672/%2f")
# Kinds the Kubernetes schemas do not know; each is checked by its own test.
CUSTOM_KINDS = {"ScaledObject", "TriggerAuthentication", "ServiceMonitor", "PrometheusRule"}


def ci_values(name: str) -> dict:
    """The values file helm/nodal/ci/<name>-values.yaml."""
    return yaml.safe_load((CHART / "ci" / f"{name}-values.yaml").read_text())


def render(values: dict, name: str = "nodal", namespace: str = "nodal") -> list[dict]:
    """Every object the chart renders with `values`, NOTES.txt left out."""
    chart = helm.Chart.load(str(CHART))
    try:
        rendered = chart.render(values, name=name, namespace=namespace, is_install=True)
    finally:
        chart.close()
    docs = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


def notes(values: dict) -> str:
    """The chart's NOTES.txt rendered with `values`."""
    chart = helm.Chart.load(str(CHART))
    try:
        rendered = chart.render(values, name="nodal", namespace="nodal", is_install=True)
    finally:
        chart.close()
    return next(text for path, text in rendered.items() if path.endswith("NOTES.txt"))


def of_kind(docs: list[dict], kind: str) -> list[dict]:
    """The objects of one kind."""
    return [d for d in docs if d["kind"] == kind]


def containers(docs: list[dict]) -> list[tuple[dict, dict]]:
    """(Deployment, container) for every container of every Deployment."""
    return [(d, c) for d in of_kind(docs, "Deployment") for c in d["spec"]["template"]["spec"]["containers"]]


def env_of(container: dict) -> dict[str, dict]:
    """A container's environment, by variable name."""
    return {e["name"]: e for e in container.get("env", [])}


def need_binary() -> Path:
    """The built nodal binary; fails naming the command that builds it."""
    if not NODAL.is_file():
        pytest.fail(f"{NODAL} is missing: run `cargo build --release -p nodal` (scripts/test.sh builds it)")
    return NODAL


def help_text(*subcommand: str) -> str:
    """`nodal <subcommand> --help`."""
    out = subprocess.run([str(need_binary()), *subcommand, "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"nodal {' '.join(subcommand)} --help failed: {out.stderr}"
    return out.stdout


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 5, headers: dict | None = None) -> tuple[int, bytes]:
    """GET `url`: the status and the body (an HTTP error is a status, not an exception)."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_http(url: str, status: int = 200, timeout: float = 60, what: str = "") -> bytes:
    """Poll `url` until it answers `status`; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            code, body = http_get(url, timeout=2)
            if code == status:
                return body
            last = f"status {code}: {body[:200]!r}"
        except OSError as e:
            last = str(e)
        time.sleep(0.25)
    pytest.fail(f"{what or url} did not answer {status} within {timeout} s (last: {last})")


def rabbitmqctl(*args: str) -> str:
    """Run rabbitmqctl against the machine's broker (as root, or with sudo)."""
    command = ["rabbitmqctl", *args]
    if os.geteuid() != 0 and shutil.which("sudo"):
        command = ["sudo", "-n", *command]
    out = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"{' '.join(command)}: {out.stderr}"
    return out.stdout


def delete_queues(prefix: str) -> None:
    """Delete the queues a test made on the machine's broker."""
    for line in rabbitmqctl("list_queues", "-q", "--no-table-headers", "name").splitlines():
        name = line.strip()
        if name.startswith(prefix + "."):
            subprocess.run(["rabbitmqctl", "delete_queue", name], capture_output=True, timeout=60)

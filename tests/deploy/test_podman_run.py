"""A real run in containers: the CPU image built by deploy/build-image.sh,
the chart rendered for this machine (host network, the machine's RabbitMQ,
an s3s-fs on loopback), the coordinator and two workers started from the
rendered Deployments by `podman kube play`, a scale-0.01 synthetic archive
of both studies submitted, both models run, and every case found exactly
once in predictions.csv or failures.csv. The jobs queue's depth is sampled
through the run (target/deploy/queue-depth.csv; the KEDA simulation's
fixture was recorded this way) and the timings written to
target/deploy/podman-run.json.

Two adaptations to podman 4.3, in the test only: the rendered Secrets become
podman secrets (kube play reads a secretKeyRef from a podman secret holding
the JSON of the data), and the containers' ports are dropped (kube play
turns them into port mappings, which it refuses on the host network)."""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml

from conftest import (
    BROKER,
    ROOT,
    S3S_FS,
    delete_queues,
    free_port,
    http_get,
    need_binary,
    render,
    wait_http,
)

OUT = ROOT / "target" / "deploy"
# The scale; NODAL_DEPLOY_SCALE and NODAL_DEPLOY_JOB_TILES make a
# longer run (the KEDA fixture was recorded at 0.1 and 64).
SCALE = os.environ.get("NODAL_DEPLOY_SCALE", "0.01")
JOB_TILES = int(os.environ.get("NODAL_DEPLOY_JOB_TILES", "32"))
RUN_TIMEOUT = 300 if SCALE == "0.01" else 1800
STUDIES = {"cytology": "cytology-origin", "ultrasound": "ptc-ln"}


def podman_env() -> dict:
    """The environment podman runs with here (deploy/containers.conf)."""
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(ROOT / "deploy" / "containers.conf"))
    return env


def podman(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    out = subprocess.run(["podman", *args], capture_output=True, text=True, env=podman_env(), timeout=timeout)
    if check:
        assert out.returncode == 0, f"podman {' '.join(args)}: {out.stdout}{out.stderr}"
    return out


def podman_can_run_containers() -> str | None:
    """None when podman runs containers here, else why not."""
    if shutil.which("podman") is None:
        return "podman is not installed (scripts/setup.sh deploy installs it)"
    info = subprocess.run(["podman", "info"], capture_output=True, text=True, env=podman_env())
    if info.returncode != 0:
        return f"podman cannot run containers on this machine: {info.stderr.strip()[:300]}"
    return None


class QueueSampler(threading.Thread):
    """Samples, four times a second, the jobs of the runs not yet answered
    (the coordinator's `jobs_in_flight`: ready on the jobs queue or held by
    a worker) and those the workers hold unacknowledged (their
    `nodal_worker_in_flight_jobs`): ready = the first less the second. The
    broker's own counts (rabbitmqctl, its management API) refresh only every
    5 s, too coarse to see a worker's jobs in hand."""

    def __init__(self, api: str, auth: dict, worker_ports: list[int]):
        super().__init__(daemon=True)
        self.api, self.auth, self.worker_ports = api, auth, worker_ports
        self.runs: list[str] = []
        self.rows, self.stopped = [], threading.Event()
        self.started_at = time.monotonic()

    def sample(self) -> tuple[int, int]:
        total = 0
        for run in list(self.runs):
            status, body = http_get(f"{self.api}/runs/{run}", headers=self.auth)
            if status == 200:
                total += json.loads(body)["jobs_in_flight"]
        held = 0
        for port in self.worker_ports:
            page = http_get(f"http://127.0.0.1:{port}/metrics")[1].decode()
            held += int(float(next(line.split()[-1] for line in page.splitlines()
                                   if line.startswith("nodal_worker_in_flight_jobs "))))
        return max(total - held, 0), held

    def run(self):
        while not self.stopped.is_set():
            try:
                ready, unacked = self.sample()
                self.rows.append((round(time.monotonic() - self.started_at, 2), ready, unacked))
            except (OSError, StopIteration, ValueError):
                pass
            self.stopped.wait(0.25)

    def write(self, path: Path):
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["t_seconds", "ready", "unacked"])
            w.writerows(self.rows)


def pool(port: int) -> dict:
    """A one-replica CPU worker pool on its own port (the host network has one port space)."""
    return {
        "enabled": True, "device": "cpu", "pipelines": 1, "threads": 1, "replicas": 1, "port": port,
        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}},
        "autoscaling": {"enabled": False, "minReplicas": 0, "maxReplicas": 1, "jobsPerReplica": 0, "activationJobs": 0,
                        "pollingInterval": 15, "cooldownPeriod": 300, "scaleDownStabilizationSeconds": 300,
                        "scaleDownPeriodSeconds": 60},
        "pdb": {"maxUnavailable": 1},
    }


def podman_secrets(docs: list[dict]) -> dict[str, str]:
    """The rendered Secrets as podman secrets: podman 4.3's kube play reads a
    secretKeyRef from a podman secret holding the JSON of the Secret's data."""
    secrets = {}
    for doc in docs:
        if doc["kind"] == "Secret":
            data = {k: base64.b64encode(v.encode()).decode() for k, v in doc["stringData"].items()}
            secrets[doc["metadata"]["name"]] = json.dumps(data)
    return secrets


def for_podman(doc: dict) -> dict:
    """`doc` as podman 4.3's kube play takes it on the host network: it turns
    every containerPort into a port mapping, which it then refuses with host
    networking, so the ports go and the probes name their port by number."""
    if doc["kind"] != "Deployment":
        return doc
    for container in doc["spec"]["template"]["spec"]["containers"]:
        ports = {p["name"]: p["containerPort"] for p in container.pop("ports", [])}
        for key in ("livenessProbe", "readinessProbe", "startupProbe"):
            get = container.get(key, {}).get("httpGet")
            if get:
                get["port"] = ports.get(get["port"], get["port"])
        pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("httpGet")
        if pre_stop:
            pre_stop["port"] = ports.get(pre_stop["port"], pre_stop["port"])
    return doc


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """An s3s-fs on loopback with one bucket."""
    if not S3S_FS.is_file():
        pytest.fail(f"{S3S_FS} is missing: run scripts/setup.sh s3")
    data = tmp_path_factory.mktemp("s3")
    (data / "nodal").mkdir()
    port = free_port()
    keys = ("nodal-deploy", "nodal-deploy-secret")
    log = open(data.parent / "s3s-fs.log", "w")
    proc = subprocess.Popen([str(S3S_FS), "--host", "127.0.0.1", "--port", str(port), "--access-key", keys[0],
                             "--secret-key", keys[1], str(data)], stdout=log, stderr=subprocess.STDOUT)
    wait_http(f"http://127.0.0.1:{port}/", status=403, timeout=30, what="s3s-fs")
    yield {"endpoint": f"http://127.0.0.1:{port}", "data": data, "bucket": "nodal", "keys": keys}
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


def test_the_chart_runs_both_studies_in_podman_pods(s3):
    why_not = podman_can_run_containers()
    if why_not:
        pytest.skip(why_not)
    binary = need_binary()
    OUT.mkdir(parents=True, exist_ok=True)
    timings = {}

    started = time.monotonic()
    built = subprocess.run([str(ROOT / "deploy" / "build-image.sh")], capture_output=True, text=True, env=podman_env())
    assert built.returncode == 0, built.stderr
    timings["image_build_seconds"] = round(time.monotonic() - started, 1)
    image = subprocess.run([str(ROOT / "deploy" / "build-image.sh"), "--print-tag"], capture_output=True, text=True).stdout.strip()
    version = podman("run", "--rm", image, "--version")
    assert version.stdout.startswith("nodal "), version.stdout
    # The entrypoint is the binary, there is no shell, and it runs as 10001.
    config = json.loads(podman("image", "inspect", image).stdout)[0]["Config"]
    assert config["Entrypoint"] == ["/usr/bin/nodal"] and config["User"] == "10001:10001"
    assert podman("run", "--rm", "--entrypoint", "/bin/sh", image, "-c", "true", check=False).returncode != 0

    work = Path(tempfile.mkdtemp(prefix="nodal-podman-"))
    prefix = f"nodal-pods-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "AWS_ENDPOINT_URL": s3["endpoint"], "AWS_ACCESS_KEY_ID": s3["keys"][0],
           "AWS_SECRET_ACCESS_KEY": s3["keys"][1], "AWS_REGION": "us-east-1"}
    token = subprocess.run([str(binary), "token", "--name", "operator", "--role", "operator", "--tokens-file",
                            str(work / "tokens.json")], capture_output=True, text=True, check=True).stdout.strip()
    cport, wa, wb = free_port(), free_port(), free_port()
    values = {
        "image": {"repository": image.rsplit(":", 1)[0], "tag": image.rsplit(":", 1)[1], "pullPolicy": "Never"},
        "hostNetwork": True,
        "broker": {"url": BROKER, "queuePrefix": prefix},
        "store": {"url": f"s3://{s3['bucket']}", "endpoint": s3["endpoint"], "accessKey": s3["keys"][0],
                  "secretKey": s3["keys"][1], "pathStyle": "true"},
        "tokens": {"json": (work / "tokens.json").read_text()},
        "coordinator": {"port": cport, "jobTiles": JOB_TILES},
        "networkPolicy": {"enabled": False},
        "workers": {"gracePeriodSecs": 5, "terminationGracePeriodSeconds": 15,
                    "pools": {"cpu": {"enabled": False}, "a": pool(wa), "b": pool(wb)}},
    }
    docs = render(values, name="nodal-pods")
    deployments = [d["metadata"]["name"] for d in docs if d["kind"] == "Deployment"]
    assert sorted(deployments) == ["nodal-pods-coordinator", "nodal-pods-worker-a", "nodal-pods-worker-b"]
    play = work / "play.yaml"
    play.write_text(yaml.safe_dump_all([for_podman(d) for d in docs if d["kind"] != "Secret"]))
    secrets = podman_secrets(docs)
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    api = f"http://127.0.0.1:{cport}"
    sampler = QueueSampler(api, auth, [wa, wb])
    try:
        for name, data in secrets.items():
            (work / f"{name}.json").write_text(data)
            podman("secret", "create", name, str(work / f"{name}.json"))
        started = time.monotonic()
        podman("kube", "play", "--network", "host", str(play))
        wait_http(f"http://127.0.0.1:{cport}/readyz", timeout=60, what="the coordinator pod")
        for port in (wa, wb):
            wait_http(f"http://127.0.0.1:{port}/readyz", timeout=60, what=f"the worker pod on {port}")
        timings["pods_ready_seconds"] = round(time.monotonic() - started, 1)
        # The chart's restricted security context is what the pods really run under.
        for container in ("nodal-pods-coordinator-pod-0-coordinator", "nodal-pods-worker-a-pod-0-worker"):
            [info] = json.loads(podman("inspect", container).stdout)
            assert info["HostConfig"]["ReadonlyRootfs"] is True, container
            assert info["Config"]["User"].startswith("10001"), container
            assert info["EffectiveCaps"] in (None, []), f"{container}: {info['EffectiveCaps']}"

        synth = work / "synth"
        subprocess.run([str(binary), "synth", "--out", str(synth), "--scale", SCALE, "--quiet"], check=True,
                       capture_output=True)
        started = time.monotonic()
        for study in STUDIES:
            for site in sorted(p for p in (synth / study).iterdir() if (p / "cases.csv").is_file()):
                subprocess.run([str(binary), "submit", "--study", study, "--site", site.name, str(site), "--store",
                                f"s3://{s3['bucket']}", "--quiet"], check=True, capture_output=True, env=env)
        timings["submit_seconds"] = round(time.monotonic() - started, 1)
        manifests = [json.loads(p.read_text()) for p in (s3["data"] / s3["bucket"] / "archives").glob("*/manifest.json")]

        sampler.start()
        started = time.monotonic()
        runs = {}
        for study, model in STUDIES.items():
            archives = sorted(m["archive_id"] for m in manifests if m["study"] == study)
            assert len(archives) >= 2, f"{study}: several sites"
            body = json.dumps({"archives": archives, "model": model, "label": f"podman {study}"}).encode()
            request = urllib.request.Request(f"{api}/runs", data=body, headers=auth, method="POST")
            with urllib.request.urlopen(request, timeout=30) as response:
                assert response.status == 201
                runs[study] = json.loads(response.read())["run_id"]
                sampler.runs.append(runs[study])
        finished = {}
        while len(finished) < len(runs):
            assert time.monotonic() - started < RUN_TIMEOUT, f"runs not finished in {RUN_TIMEOUT} s: {pod_logs()}"
            for study, run in runs.items():
                status, body = http_get(f"{api}/runs/{run}", headers=auth)
                assert status == 200, body
                state = json.loads(body)
                assert state["state"] != "failed", f"{study}: {state}\n{pod_logs()}"
                if state["state"] == "finished":
                    finished[study] = state
            time.sleep(1)
        timings["runs_seconds"] = round(time.monotonic() - started, 1)
        sampler.stopped.set()
        sampler.join(timeout=30)

        workers_seen = set()
        for study, run in runs.items():
            files = {}
            for name in ("predictions.csv", "failures.csv", "run.json"):
                status, body = http_get(f"{api}/runs/{run}/files/{name}", headers=auth)
                assert status == 200, f"{study} {name}: {status}"
                files[name] = body.decode()
                (OUT / f"{study}-{name}").write_text(files[name])
            predicted = [r["case_id"] for r in csv.DictReader(io.StringIO(files["predictions.csv"]))]
            failed = [r["case_id"] for r in csv.DictReader(io.StringIO(files["failures.csv"])) if r["level"] == "case"]
            submitted = [c["case_id"] for m in manifests if m["study"] == study for c in m["cases"]]
            seen = predicted + failed
            assert sorted(seen) == sorted(submitted), f"{study}: every case exactly once in predictions.csv or failures.csv"
            assert len(predicted) > 3 * len(failed), f"{study}: most cases predicted"
            workers_seen |= set(json.loads(files["run.json"])["workers"])
            assert finished[study]["tiles_done"] == finished[study]["tiles_total"]
        assert any("worker-a" in w for w in workers_seen) and any("worker-b" in w for w in workers_seen), workers_seen

        pages = [http_get(f"http://127.0.0.1:{p}/metrics")[1].decode() for p in (wa, wb)]
        for page in pages:
            ok = [line for line in page.splitlines() if line.startswith('nodal_worker_tiles_total{outcome="ok"}')]
            assert ok and float(ok[0].split()[-1]) > 0, "each worker pod ran tiles"
        timings["cases"] = {s: len([c for m in manifests if m["study"] == s for c in m["cases"]]) for s in STUDIES}
    finally:
        sampler.stopped.set()
        if sampler.is_alive():
            sampler.join(timeout=30)
        sampler.write(OUT / "queue-depth.csv")
        down_started = time.monotonic()
        podman("kube", "down", str(play), check=False)
        timings["down_seconds"] = round(time.monotonic() - down_started, 1)
        for name in secrets:
            podman("secret", "rm", name, check=False)
        delete_queues(prefix)
        (OUT / "podman-run.json").write_text(json.dumps(timings, indent=2) + "\n")
        shutil.rmtree(work, ignore_errors=True)
    assert max(r[2] for r in sampler.rows) > 0, "the sampler saw jobs held by workers"


def pod_logs() -> str:
    """The last lines of every nodal pod's log, for a failure message."""
    names = podman("ps", "-a", "--format", "{{.Names}}", check=False).stdout.split()
    return "\n".join(
        f"== {n}\n{podman('logs', '--tail', '30', n, check=False).stdout}{podman('logs', '--tail', '30', n, check=False).stderr}"
        for n in names if "nodal-pods-" in n and "infra" not in n
    )

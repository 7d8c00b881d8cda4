"""What ties the deployment files to the binary: every environment variable
and flag the chart and the compose file give nodal exists in
`nodal <role> --help`; the grace periods, ports and probes agree with the
binary's; every PromQL expression of the dashboard and the alert rules
parses (promtool) and names only metrics a running coordinator and worker
really export (scraped here) or that a named exporter provides."""

from __future__ import annotations

import re
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest
import yaml

from conftest import (
    BROKER,
    CHART,
    CI_VALUES,
    ORT_DYLIB,
    ROOT,
    ci_values,
    containers,
    delete_queues,
    env_of,
    free_port,
    help_text,
    http_get,
    need_binary,
    render,
    wait_http,
)

RULES = CHART / "files" / "nodal-rules.yaml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "rules.test.yaml"
DASHBOARD = CHART / "files" / "nodal-dashboard.json"
COMPOSE = ROOT / "deploy" / "compose.yaml"

# Metrics the dashboard and rules take from other exporters, and which.
EXTERNAL_METRICS = {
    "up": "Prometheus itself",
    "rabbitmq_queue_messages_ready": "RabbitMQ's rabbitmq_prometheus plugin (per-object metrics)",
    "rabbitmq_queue_messages_unacked": "RabbitMQ's rabbitmq_prometheus plugin (per-object metrics)",
    "rabbitmq_queue_consumers": "RabbitMQ's rabbitmq_prometheus plugin (per-object metrics)",
    "kube_pod_container_status_restarts_total": "kube-state-metrics",
}
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "rate", "increase", "irate", "histogram_quantile", "by", "on",
    "without", "ignoring", "and", "or", "unless", "group_left", "group_right", "bool", "offset", "abs",
    "clamp_min", "absent", "humanizePercentage",
}


def help_env_and_flags(role: str) -> tuple[set[str], set[str]]:
    """The environment variables and long flags `nodal <role> --help` lists."""
    text = help_text(role)
    return set(re.findall(r"\[env: ([A-Z0-9_]+)[=\]]", text)), set(re.findall(r"(--[a-z0-9-]+)", text))


def rendered_nodal_containers():
    """(values file, deployment name, role, container) for every nodal container of every CI values file."""
    for values in CI_VALUES:
        for deployment, container in containers(render(ci_values(values))):
            yield values, deployment["metadata"]["name"], container["args"][0], container


def test_every_variable_and_flag_the_chart_sets_exists_in_the_binary():
    roles = {}
    checked = 0
    for values, name, role, container in rendered_nodal_containers():
        if role not in roles:
            roles[role] = help_env_and_flags(role)
        env_names, flags = roles[role]
        for var in env_of(container):
            assert var in env_names, f"{name} ({values} values) sets {var}, which `nodal {role}` does not read"
            checked += 1
        for arg in container["args"][1:]:
            if arg.startswith("--"):
                assert arg.split("=")[0] in flags, f"{name} passes {arg}, unknown to `nodal {role}`"
    assert set(roles) == {"coordinator", "worker"}
    assert checked > 30


def test_every_variable_the_compose_file_sets_exists_in_the_binary():
    compose = yaml.safe_load(COMPOSE.read_text())
    nodal_services = {n: s for n, s in compose["services"].items() if str(s.get("image", "")).startswith("localhost/nodal")}
    assert set(nodal_services) == {"coordinator", "worker-1", "worker-2"}
    for name, service in nodal_services.items():
        role = service["command"][0]
        env_names, _ = help_env_and_flags(role)
        for var in service["environment"]:
            assert var in env_names, f"compose service {name} sets {var}, which `nodal {role}` does not read"


def default_of(role: str, flag: str) -> str:
    """The default `nodal <role> --help` shows for `flag`."""
    text = help_text(role)
    block = text[text.index(flag):]
    block = block[: block.index("\n\n  -") if "\n\n  -" in block else len(block)]
    match = re.search(r"\[default: ([^\]]+)\]", block)
    assert match, f"no default shown for {flag}"
    return match.group(1)


def test_grace_periods_ports_and_probes_agree_with_the_binary():
    binary_grace = int(default_of("worker", "--grace-period-secs"))
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    assert defaults["workers"]["gracePeriodSecs"] == binary_grace, "the chart's drain grace is the binary's default"
    for values, name, role, container in rendered_nodal_containers():
        deployment = next(
            d for d in render(ci_values(values)) if d["kind"] == "Deployment" and d["metadata"]["name"] == name
        )
        pod = deployment["spec"]["template"]["spec"]
        env = env_of(container)
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        listen = env["NODAL_LISTEN" if role == "coordinator" else "NODAL_WORKER_LISTEN"]["value"]
        port_name = "http" if role == "coordinator" else "metrics"
        assert listen == f"0.0.0.0:{ports[port_name]}", f"{name}: listens where its port and probes point"
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            assert container[probe]["httpGet"]["port"] == port_name, f"{name} {probe}"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        if role == "worker":
            grace = int(env["NODAL_GRACE_PERIOD_SECS"]["value"])
            assert pod["terminationGracePeriodSeconds"] > grace, f"{name}: the pod outlives the drain"
            assert container["lifecycle"]["preStop"]["httpGet"] == {"path": "/drain", "port": "metrics"}


def test_rules_parse_and_their_unit_tests_pass():
    check = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 6 rules found" in check.stdout
    tests = subprocess.run(["promtool", "test", "rules", str(RULE_TESTS)], capture_output=True, text=True, cwd=RULE_TESTS.parent)
    assert tests.returncode == 0, tests.stdout + tests.stderr


def dashboard_exprs() -> list[str]:
    """The dashboard's PromQL, Grafana's variables given values."""
    import json

    panels = json.loads(DASHBOARD.read_text())["panels"]
    exprs = [t["expr"] for p in panels for t in p["targets"]]
    return [e.replace("$__rate_interval", "5m").replace("$prefix", "nodal") for e in exprs]


def rule_exprs() -> list[str]:
    """The alert rules' PromQL."""
    return [r["expr"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def test_the_dashboard_is_generated_and_its_promql_parses():
    fresh = subprocess.run(["python3", str(ROOT / "deploy" / "grafana" / "dashboard.py"), "--check"], capture_output=True, text=True)
    assert fresh.returncode == 0, fresh.stderr
    exprs = dashboard_exprs()
    assert len(exprs) > 20
    rules = {"groups": [{"name": "dashboard", "rules": [{"record": f"dashboard:expr{i}", "expr": e} for i, e in enumerate(exprs)]}]}
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        yaml.safe_dump(rules, f)
        f.flush()
        check = subprocess.run(["promtool", "check", "rules", f.name], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    # and promtool does catch a broken expression
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        yaml.safe_dump({"groups": [{"name": "g", "rules": [{"record": "r:x", "expr": "sum(rate(nodal_worker_jobs_total[5m])"}]}]}, f)
        f.flush()
        assert subprocess.run(["promtool", "check", "rules", f.name], capture_output=True).returncode != 0


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # strings (label values)
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = re.sub(r"\b(by|on|without|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text))
    return {w for w in words if w not in PROMQL_WORDS}


def test_metric_name_extraction_sees_every_selector():
    assert metric_names('sum by (le) (rate(nodal_worker_fetch_seconds_bucket{job="w"}[5m])) > 0.5') == {
        "nodal_worker_fetch_seconds_bucket"
    }
    assert metric_names("max(a_total) and on() sum(b) == 0") == {"a_total", "b"}


@pytest.fixture(scope="module")
def scraped() -> dict[str, str]:
    """/metrics of a real coordinator and worker started here (file store, the machine's RabbitMQ)."""
    binary = need_binary()
    prefix = f"nodal-deploy-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        store = f"file://{tmp}/store"
        common = ["--store", store, "--broker", BROKER, "--queue-prefix", prefix]
        cport, wport = free_port(), free_port()
        logs = {n: open(Path(tmp) / f"{n}.log", "w") for n in ("coordinator", "worker")}
        procs = {
            "coordinator": subprocess.Popen(
                [str(binary), "coordinator", *common, "--listen", f"127.0.0.1:{cport}", "--insecure-no-auth"],
                stdout=logs["coordinator"], stderr=subprocess.STDOUT, cwd=tmp),
        }
        try:
            wait_http(f"http://127.0.0.1:{cport}/readyz", what="the coordinator")
            procs["worker"] = subprocess.Popen(
                [str(binary), "worker", *common, "--listen", f"127.0.0.1:{wport}", "--ort-dylib", str(ORT_DYLIB)],
                stdout=logs["worker"], stderr=subprocess.STDOUT, cwd=tmp)
            wait_http(f"http://127.0.0.1:{wport}/readyz", what="the worker")
            assert http_get(f"http://127.0.0.1:{wport}/healthz")[0] == 200
            pages = {
                "coordinator": http_get(f"http://127.0.0.1:{cport}/metrics")[1].decode(),
                "worker": http_get(f"http://127.0.0.1:{wport}/metrics")[1].decode(),
            }
            # The pod's preStop hook: GET /drain answers once drained, and the worker exits.
            status, body = http_get(f"http://127.0.0.1:{wport}/drain", timeout=60)
            assert (status, body) == (200, b"drained\n")
            assert procs["worker"].wait(timeout=30) == 0
            yield pages
        finally:
            for p in procs.values():
                if p.poll() is None:
                    p.terminate()
                    p.wait(timeout=30)
            for f in logs.values():
                f.close()
            delete_queues(prefix)


def exported(pages: dict[str, str]) -> set[str]:
    """Every series name on the scraped pages."""
    return {line.split("{")[0].split(" ")[0] for page in pages.values() for line in page.splitlines() if line and not line.startswith("#")}


@pytest.mark.parametrize("source", ["dashboard", "rules"])
def test_every_metric_used_is_exported_by_the_binary_or_a_named_exporter(scraped, source):
    names = exported(scraped)
    assert "nodal_worker_tiles_total" in names and "nodal_coordinator_runs" in names
    exprs = dashboard_exprs() if source == "dashboard" else rule_exprs()
    used = set().union(*(metric_names(e) for e in exprs))
    unknown = {m for m in used if m not in names and m not in EXTERNAL_METRICS}
    assert unknown == set(), f"the {source} uses metrics nobody exports: {sorted(unknown)}"
    assert any(m.startswith("nodal_") for m in used)


def test_scraped_metrics_pass_promtools_lint(scraped):
    for role, page in scraped.items():
        check = subprocess.run(["promtool", "check", "metrics"], input=page, capture_output=True, text=True)
        assert check.returncode == 0, f"{role}: {check.stdout}{check.stderr}"

"""The Helm chart renders, lints strictly and validates against the schemas
of Kubernetes 1.29 and the newest 1.x (kubernetes-validate --strict), its
KEDA and Prometheus Operator objects against the project's schemas, and its
values against values.schema.json; the operational promises (autoscaling on
ready + unacknowledged jobs, the restricted security context, the GPU pool)
hold in what it renders."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import helm_python as helm
import jsonschema
import kubernetes_validate.utils as kv
import pytest

from conftest import CHART, CI_VALUES, CUSTOM_KINDS, ci_values, containers, env_of, notes, of_kind, render

KUBE_VERSIONS = ["1.29.0", kv.latest_version()]
SCHEMAS = Path(__file__).parent / "schemas"


def custom_schema(kind: str) -> dict:
    """The project's schema for a custom kind."""
    name = "keda" if kind in ("ScaledObject", "TriggerAuthentication") else "monitoring"
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text())


@pytest.mark.parametrize("values", CI_VALUES)
@pytest.mark.parametrize("kube", KUBE_VERSIONS)
def test_chart_lints_strictly(values, kube):
    report = helm.lint(str(CHART), ci_values(values), strict=True, kube_version=f"v{kube}")
    assert report["errors"] == [], report
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert problems == [], problems


@pytest.mark.parametrize("values", CI_VALUES)
@pytest.mark.parametrize("kube", KUBE_VERSIONS)
def test_every_object_passes_the_kubernetes_schemas_strictly(values, kube):
    docs = render(ci_values(values))
    assert docs, "the chart renders objects"
    skipped = set()
    for doc in docs:
        where = f"{doc['kind']}/{doc['metadata']['name']} ({values} values, Kubernetes {kube})"
        if doc["kind"] in CUSTOM_KINDS:
            skipped.add(doc["kind"])
            continue
        try:
            kv.validate(doc, kube, strict=True)
        except kv.ValidationError as e:
            pytest.fail(f"{where}: {e.message} at {'.'.join(map(str, e.path))}")


@pytest.mark.parametrize("values", CI_VALUES)
def test_custom_objects_pass_the_projects_schemas(values):
    docs = [d for d in render(ci_values(values)) if d["kind"] in CUSTOM_KINDS]
    for doc in docs:
        jsonschema.validate(doc, custom_schema(doc["kind"]))
    kinds = {d["kind"] for d in docs}
    expected = {"default": {"ScaledObject", "TriggerAuthentication"}, "gpu": CUSTOM_KINDS, "minimal": set()}[values]
    assert kinds == expected


def test_the_custom_schemas_refuse_a_misspelt_field():
    docs = render(ci_values("gpu"))
    for kind, path, wrong in [
        ("ScaledObject", ["spec"], "minReplicasCount"),
        ("ScaledObject", ["spec", "triggers", 0, "metadata"], "queueLenght"),
        ("TriggerAuthentication", ["spec", "secretTargetRef", 0], "paramter"),
        ("ServiceMonitor", ["spec", "endpoints", 0], "intervall"),
    ]:
        doc = copy.deepcopy(of_kind(docs, kind)[0])
        node = doc
        for step in path:
            node = node[step]
        node[wrong] = "1"
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(doc, custom_schema(kind))


def test_a_misspelt_kubernetes_field_fails_strict_validation():
    doc = copy.deepcopy(of_kind(render(ci_values("default")), "Deployment")[0])
    doc["spec"]["template"]["spec"]["terminationGracePeriodSecond"] = 30
    with pytest.raises(kv.ValidationError):
        kv.validate(doc, KUBE_VERSIONS[0], strict=True)


def test_workers_scale_on_ready_and_unacknowledged_jobs():
    values = ci_values("default")
    docs = render(values)
    [scaled] = of_kind(docs, "ScaledObject")
    [trigger] = scaled["spec"]["triggers"]
    meta = trigger["metadata"]
    # KEDA's amqp protocol counts ready messages only: busy workers would be
    # scaled away as soon as the queue looked empty.
    assert meta["protocol"] == "http"
    assert meta.get("excludeUnacknowledged", "false") == "false"
    assert meta["mode"] == "QueueLength"
    assert meta["queueName"] == "nodal.jobs"
    pool = ci_values("default").get("workers", {}).get("pools", {}).get("cpu", {})
    defaults = helm.Chart.load(str(CHART)).values["workers"]
    pipelines = pool.get("pipelines", defaults["pools"]["cpu"]["pipelines"])
    assert int(meta["value"]) == defaults["prefetch"] * pipelines, "one replica per full worker's jobs"
    assert scaled["spec"]["scaleTargetRef"]["name"] == "nodal-worker-cpu"
    assert scaled["spec"]["minReplicaCount"] == 0
    [auth] = of_kind(docs, "TriggerAuthentication")
    assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
    [ref] = auth["spec"]["secretTargetRef"]
    secret = next(s for s in of_kind(docs, "Secret") if s["metadata"]["name"] == ref["name"])
    assert secret["stringData"][ref["key"]] == values["broker"]["managementUrl"]
    worker = next(d for d in of_kind(docs, "Deployment") if d["metadata"]["name"] == "nodal-worker-cpu")
    assert "replicas" not in worker["spec"], "KEDA owns the replica count"


def test_autoscaling_without_the_management_api_is_refused():
    values = ci_values("default")
    values["broker"]["managementUrl"] = ""
    with pytest.raises(helm.HelmError, match="management API"):
        render(values)


@pytest.mark.parametrize("values", CI_VALUES)
def test_every_container_runs_restricted(values):
    docs = render(ci_values(values))
    for deployment, container in containers(docs):
        pod = deployment["spec"]["template"]["spec"]
        where = f"{deployment['metadata']['name']}/{container['name']}"
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert pod["securityContext"]["runAsUser"] != 0, where
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert pod["automountServiceAccountToken"] is False, where
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True, where
        assert sc["allowPrivilegeEscalation"] is False, where
        assert sc["capabilities"]["drop"] == ["ALL"], where
        assert "add" not in sc["capabilities"], where
        assert any(m["mountPath"] == "/tmp" for m in container["volumeMounts"]), f"{where}: a writable /tmp"
        assert "hostNetwork" not in pod, f"{where}: host network only on request"


def test_gpu_pool_asks_for_a_gpu_and_runs_one_pipeline_on_cuda():
    docs = render(ci_values("gpu"))
    deployments = {d["metadata"]["name"]: d for d in of_kind(docs, "Deployment")}
    assert "nodal-worker-cpu" not in deployments
    gpu = deployments["nodal-worker-gpu"]
    pod = gpu["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    env = env_of(container)
    assert env["NODAL_DEVICE"]["value"] == "cuda"
    assert env["NODAL_WORKER_PIPELINES"]["value"] == "1"
    assert container["image"] == "registry.example.org/nodal-cuda:0.1.0"
    assert env["NODAL_BROKER"]["valueFrom"]["secretKeyRef"]["name"] == "nodal-broker"
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"]["name"] == "nodal-s3"
    assert of_kind(docs, "Secret") == [], "existing Secrets are used, none made"
    [rule] = of_kind(docs, "PrometheusRule")
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert {"NodalRunStalled", "NodalDeadLettersRising", "NodalJobsWithoutConsumers",
            "NodalWorkersRestarting", "NodalStoreErrors"} <= alerts
    [dashboard] = of_kind(docs, "ConfigMap")
    assert json.loads(dashboard["data"]["nodal.json"])["uid"] == "nodal-overview"


def test_coordinator_is_one_replica_recreated_and_ready_only_as_leader():
    docs = render(ci_values("default"))
    coordinator = next(d for d in of_kind(docs, "Deployment") if d["metadata"]["name"] == "nodal-coordinator")
    assert coordinator["spec"]["replicas"] == 1
    assert coordinator["spec"]["strategy"] == {"type": "Recreate"}
    [container] = coordinator["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    [service] = [s for s in of_kind(docs, "Service") if s["metadata"]["name"] == "nodal-coordinator"]
    assert service["spec"]["selector"] == coordinator["spec"]["selector"]["matchLabels"]
    pdbs = {p["metadata"]["name"]: p for p in of_kind(docs, "PodDisruptionBudget")}
    assert pdbs["nodal-coordinator"]["spec"]["maxUnavailable"] == 1, "a drain can move it"


@pytest.mark.parametrize(
    "change, message",
    [
        ({"coordinator": {"replicas": 2}}, "replicas"),
        ({"workers": {"pools": {"cpu": {"device": "tpu"}}}}, "device"),
        ({"store": {"url": "ftp://x"}}, "url"),
        ({"workers": {"prefetch": 0}}, "prefetch"),
        ({"coordinatr": {}}, "coordinatr"),
    ],
)
def test_values_schema_refuses_bad_values(change, message):
    chart = helm.Chart.load(str(CHART))
    good = merge(copy.deepcopy(chart.values), ci_values("default"))
    chart.validate_schema(good)
    with pytest.raises(helm.HelmError, match=message):
        chart.validate_schema(merge(copy.deepcopy(good), change))


def test_a_grace_period_the_pod_cannot_wait_for_is_refused():
    values = ci_values("default")
    values["workers"] = {"gracePeriodSecs": 60, "terminationGracePeriodSeconds": 45}
    with pytest.raises(helm.HelmError, match="must exceed workers.gracePeriodSecs"):
        render(values)


def test_notes_name_the_pools_and_the_queue():
    text = notes(ci_values("default"))
    assert "nodal.jobs" in text and "cpu: device cpu, 4 pipeline(s)" in text
    assert "kubectl -n nodal port-forward svc/nodal-coordinator 8080:8080" in text


def merge(base: dict, change: dict) -> dict:
    """`base` with `change` merged in, recursively (as Helm merges values)."""
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base


def test_network_policy_admits_the_api_and_prometheus():
    values = ci_values("default")
    site_ingress = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
    values["networkPolicy"] = {"apiFrom": [site_ingress]}
    policies = {p["metadata"]["name"]: p for p in of_kind(render(values), "NetworkPolicy")}
    [api] = policies["nodal-coordinator"]["spec"]["ingress"]
    prometheus = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    assert api["from"] == [site_ingress, prometheus]
    [metrics] = policies["nodal-workers"]["spec"]["ingress"]
    assert metrics["from"] == [prometheus] and metrics["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    open_policies = {p["metadata"]["name"]: p for p in of_kind(render(ci_values("default")), "NetworkPolicy")}
    assert "from" not in open_policies["nodal-coordinator"]["spec"]["ingress"][0], "API open by default"

#!/usr/bin/env python3
"""Writes nodal's Grafana dashboard, helm/nodal/files/nodal-dashboard.json
(deploy/grafana/nodal-dashboard.json links to it), from the panels below.

    python3 deploy/grafana/dashboard.py          # write it
    python3 deploy/grafana/dashboard.py --check  # exit 1 if the file is stale

Every expression uses nodal's real metric names (tests/deploy checks them
against a scrape of a running coordinator and worker), RabbitMQ's
rabbitmq_prometheus plugin for the queue, and kube-state-metrics for pods.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "helm" / "nodal" / "files" / "nodal-dashboard.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"


@dataclass
class Target:
    """One PromQL query of a panel, with its legend."""

    expr: str
    legend: str

    def to_json(self, ref: str) -> dict:
        return {
            "datasource": DATASOURCE,
            "expr": self.expr,
            "legendFormat": self.legend,
            "refId": ref,
        }


@dataclass
class Panel:
    """A time-series or stat panel on a 24-column grid."""

    title: str
    description: str
    targets: list[Target]
    unit: str = "short"
    kind: str = "timeseries"
    width: int = 12
    height: int = 8
    stacked: bool = False
    extra: dict = field(default_factory=dict)

    def to_json(self, panel_id: int, x: int, y: int) -> dict:
        custom = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never"}
        if self.stacked:
            custom["stacking"] = {"mode": "normal", "group": "A"}
        return {
            "id": panel_id,
            "type": self.kind,
            "title": self.title,
            "description": self.description,
            "datasource": DATASOURCE,
            "gridPos": {"x": x, "y": y, "w": self.width, "h": self.height},
            "fieldConfig": {
                "defaults": {"unit": self.unit, **({"custom": custom} if self.kind == "timeseries" else {})},
                "overrides": [],
            },
            "options": {"legend": {"displayMode": "list", "placement": "bottom"}}
            if self.kind == "timeseries"
            else {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "value"},
            "targets": [t.to_json(chr(ord("A") + i)) for i, t in enumerate(self.targets)],
            **self.extra,
        }


def quantiles(metric: str, what: str) -> list[Target]:
    """p50 and p95 of a histogram, over every worker."""
    return [
        Target(f"histogram_quantile({q}, sum by (le) (rate({metric}_bucket[{RATE}])))", f"{what} p{int(q * 100)}")
        for q in (0.5, 0.95)
    ]


def panels() -> list[Panel]:
    """The dashboard, top to bottom."""
    jobs_queue = 'queue=~"$prefix\\\\.jobs"'
    return [
        Panel("Runs by state", "Runs the coordinator knows, by state.",
              [Target("sum by (state) (nodal_coordinator_runs)", "{{state}}")], kind="stat", width=8, height=5),
        Panel("Leader", "1 while a coordinator holds the lease and drives runs.",
              [Target("max(nodal_coordinator_leader)", "leader")], kind="stat", width=4, height=5),
        Panel("Workers", "Worker pods consuming jobs (ready).",
              [Target('count(up{job=~".*worker.*"} == 1)', "workers")], kind="stat", width=4, height=5),
        Panel("Jobs queue depth", "Jobs ready and unacknowledged (held by workers) on the jobs queue: what KEDA scales on.",
              [Target(f"sum by (queue) (rabbitmq_queue_messages_ready{{{jobs_queue}}})", "ready {{queue}}"),
               Target(f"sum by (queue) (rabbitmq_queue_messages_unacked{{{jobs_queue}}})", "unacked {{queue}}"),
               Target("sum(nodal_worker_in_flight_jobs)", "in flight (workers)")], width=8, height=5),
        Panel("Tiles per second", "Tiles with a model output, and tiles that failed, by outcome.",
              [Target(f'sum(rate(nodal_worker_tiles_total{{outcome="ok"}}[{RATE}]))', "ok"),
               Target(f'sum by (outcome) (rate(nodal_worker_tiles_total{{outcome!="ok"}}[{RATE}]))', "{{outcome}}")],
              unit="ops"),
        Panel("Batch fill", "Tiles per inference batch over the batch size (1 = full batches).",
              [Target(f"sum(rate(nodal_worker_batch_fill_ratio_sum[{RATE}])) / sum(rate(nodal_worker_batch_fill_ratio_count[{RATE}]))", "mean"),
               *quantiles("nodal_worker_batch_fill_ratio", "fill")], unit="percentunit"),
        Panel("Queue wait", "Time a decoded tile waits for its batch to go to inference.",
              quantiles("nodal_worker_queue_wait_seconds", "wait"), unit="s"),
        Panel("Fetch, decode, infer", "Per-stage time: one range fetch, one tile decode, one batch inference, one result publish (p95).",
              [Target(f"histogram_quantile(0.95, sum by (le) (rate(nodal_worker_{stage}_seconds_bucket[{RATE}])))", stage)
               for stage in ("fetch", "decode", "infer", "publish")], unit="s"),
        Panel("Jobs by outcome", "Jobs the workers settled, by outcome.",
              [Target(f"sum by (outcome) (rate(nodal_worker_jobs_total[{RATE}]))", "{{outcome}}")], unit="ops", stacked=True),
        Panel("Dead letters", "Messages sent to the dead-letter queue: by the coordinator (by reason) and by workers.",
              [Target(f"sum by (reason) (increase(nodal_coordinator_dead_lettered_total[{RATE}]))", "coordinator {{reason}}"),
               Target(f'sum(increase(nodal_worker_jobs_total{{outcome="dead_lettered"}}[{RATE}]))', "workers")]),
        Panel("Store requests and errors", "Worker store calls by operation, and those failing after retries.",
              [Target(f"sum by (op) (rate(nodal_worker_store_requests_total[{RATE}]))", "{{op}}"),
               Target(f"sum by (op) (rate(nodal_worker_store_errors_total[{RATE}]))", "errors {{op}}")], unit="reqps"),
        Panel("Store throughput", "Bytes the workers read and wrote, by operation.",
              [Target(f"sum by (op) (rate(nodal_worker_store_bytes_total[{RATE}]))", "{{op}}")], unit="Bps"),
        Panel("Coordinator results", "Results received, by outcome; jobs published and re-published after stalls.",
              [Target(f"sum by (outcome) (rate(nodal_coordinator_results_total[{RATE}]))", "results {{outcome}}"),
               Target(f"sum(rate(nodal_coordinator_jobs_published_total[{RATE}]))", "published"),
               Target(f"sum(rate(nodal_coordinator_jobs_republished_total[{RATE}]))", "re-published"),
               Target(f"sum(rate(nodal_coordinator_jobs_failed_total[{RATE}]))", "given up")], unit="ops"),
        Panel("Model load and finalise", "Time to load a model on a worker, and to write a run's result files.",
              [*quantiles("nodal_worker_model_load_seconds", "model load"),
               Target(f"histogram_quantile(0.95, sum by (le) (rate(nodal_coordinator_finalize_seconds_bucket[{RATE}])))", "finalise p95")],
              unit="s"),
        Panel("Worker restarts", "Container restarts of worker pods (kube-state-metrics).",
              [Target(f'sum by (pod) (increase(kube_pod_container_status_restarts_total{{container="worker"}}[{RATE}]))', "{{pod}}")]),
    ]


def layout(all_panels: list[Panel]) -> list[dict]:
    """Place the panels left to right, wrapping at 24 columns."""
    out, x, y, row_height = [], 0, 0, 0
    for i, panel in enumerate(all_panels, start=1):
        if x + panel.width > 24:
            x, y, row_height = 0, y + row_height, 0
        out.append(panel.to_json(i, x, y))
        x += panel.width
        row_height = max(row_height, panel.height)
    return out


def dashboard() -> dict:
    """The whole dashboard model."""
    return {
        "uid": "nodal-overview",
        "title": "nodal",
        "description": "nodal runs: throughput, batching, stage times, jobs, dead letters, the jobs queue.",
        "tags": ["nodal"],
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "timezone": "utc",
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus"},
                {"name": "prefix", "label": "Queue prefix", "type": "custom", "query": "nodal",
                 "current": {"text": "nodal", "value": "nodal"}},
            ]
        },
        "panels": layout(panels()),
    }


def main() -> int:
    text = json.dumps(dashboard(), indent=2) + "\n"
    if "--check" in sys.argv[1:]:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT} is stale: run python3 deploy/grafana/dashboard.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

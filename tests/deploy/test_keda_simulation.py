"""KEDA's scaling of a worker pool, simulated on a queue-depth series
recorded from a real run (fixtures/queue-depth.csv: the jobs ready on the
queue and held unacknowledged by the two workers, four times a second,
during test_podman_run.py with NODAL_DEPLOY_SCALE=0.1
NODAL_DEPLOY_JOB_TILES=64; see its QueueSampler).

The rule is the chart's rendered ScaledObject, run as KEDA and the HPA run
it: KEDA polls the metric every pollingInterval, activates the pool from 0
when the metric exceeds activationValue and returns it to 0 after
cooldownPeriod without activity; the HPA (every sync period) asks for
ceil(metric / value) replicas (AverageValue target, 10 % tolerance), scales
up at once and down only to the highest recommendation of the stabilisation
window, removing at most one pod per scaleDown period.

The property: the pool never has fewer replicas than it takes to hold the
jobs workers have in hand (unacknowledged / jobs per replica), so no worker
holding jobs is scaled away. Counting ready *and* unacknowledged messages
(KEDA's http protocol, as the chart renders it) keeps it with the chart's
timings and with aggressive ones; counting ready messages only (KEDA's amqp
protocol) breaks it on the same series."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import ci_values, of_kind, render

FIXTURE = Path(__file__).parent / "fixtures" / "queue-depth.csv"
HPA_TOLERANCE = 0.1


@dataclass
class Rule:
    """The scaling parameters of one rendered ScaledObject."""

    value: float
    activation: float
    polling: int
    cooldown: int
    min_replicas: int
    max_replicas: int
    stabilization: int
    down_period: int
    counts_unacked: bool

    @classmethod
    def rendered(cls, autoscaling: dict | None = None) -> "Rule":
        values = ci_values("default")
        values["workers"] = {"pools": {"cpu": {"pipelines": 1, "threads": 1, "autoscaling": autoscaling or {}}}}
        [scaled] = of_kind(render(values), "ScaledObject")
        spec = scaled["spec"]
        [trigger] = spec["triggers"]
        meta = trigger["metadata"]
        down = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
        [policy] = down["policies"]
        assert policy["type"] == "Pods" and policy["value"] == 1
        return cls(
            value=float(meta["value"]),
            activation=float(meta.get("activationValue", "0")),
            polling=spec["pollingInterval"],
            cooldown=spec["cooldownPeriod"],
            min_replicas=spec["minReplicaCount"],
            max_replicas=spec["maxReplicaCount"],
            stabilization=down["stabilizationWindowSeconds"],
            down_period=policy["periodSeconds"],
            counts_unacked=meta["protocol"] == "http" and meta.get("excludeUnacknowledged", "false") == "false",
        )


@dataclass
class Sample:
    t: float
    ready: int
    unacked: int


def recorded() -> list[Sample]:
    rows = list(csv.DictReader(FIXTURE.open()))
    return [Sample(float(r["t_seconds"]), int(r["ready"]), int(r["unacked"])) for r in rows]


def at(series: list[Sample], t: float) -> Sample:
    """The last sample at or before `t` (the metric KEDA would read then)."""
    last = series[0]
    for s in series:
        if s.t > t:
            break
        last = s
    return last


STEP = 0.25  # seconds: the fixture's sampling period


def simulate(rule: Rule, series: list[Sample], hpa_sync: float, phase: float = 0) -> list[tuple[float, int]]:
    """Replicas over the series, step by step, starting from zero, and on
    past its end (the queue empty, as it stayed) until a cooldown could end.
    KEDA's first poll and the HPA's first sync come `phase` seconds in."""
    replicas, last_active, history, out = 0, -math.inf, [], []
    last_poll = series[0].t + phase - rule.polling
    last_sync = series[0].t + phase - hpa_sync
    last_scale_down = -math.inf
    t, end = series[0].t, series[-1].t + rule.cooldown + rule.polling + hpa_sync
    while t <= end:
        s = at(series, t)
        metric = s.ready + (s.unacked if rule.counts_unacked else 0)
        if t - last_poll >= rule.polling:
            last_poll = t
            if metric > rule.activation:
                last_active = t
                if replicas == 0:
                    replicas = max(rule.min_replicas, 1)
            elif replicas > 0 and rule.min_replicas == 0 and t - last_active >= rule.cooldown:
                replicas = 0
        if replicas > 0 and t - last_sync >= hpa_sync:
            last_sync = t
            ratio = metric / (replicas * rule.value)
            desired = replicas if abs(ratio - 1) <= HPA_TOLERANCE else math.ceil(metric / rule.value)
            desired = min(max(desired, max(rule.min_replicas, 1)), rule.max_replicas)
            history = [(ht, d) for ht, d in history if t - ht < rule.stabilization] + [(t, desired)]
            if desired > replicas:
                replicas = desired
            else:
                recommended = max(d for _, d in history)
                if recommended < replicas and t - last_scale_down >= rule.down_period:
                    replicas -= 1
                    last_scale_down = t
        out.append((round(t, 2), replicas))
        t += STEP
    return out


def phases(rule: Rule) -> list[float]:
    """Every offset, a second apart, of KEDA's polling against the series."""
    return [float(p) for p in range(rule.polling)]


def busy_workers_scaled_away(rule: Rule, series: list[Sample], hpa_sync: float) -> list[tuple[float, float, int, int]]:
    """(phase, t, replicas, replicas needed to hold the jobs in hand)
    wherever, at any polling phase, a scale-down left fewer replicas than the
    jobs in hand need. (Scaling up from zero lags by up to a polling
    interval; that delays work, it removes no one.)"""
    lost = []
    for phase in phases(rule):
        before = 0
        for t, replicas in simulate(rule, series, hpa_sync, phase):
            needed = math.ceil(at(series, t).unacked / rule.value)
            if replicas < before and replicas < needed:
                lost.append((phase, t, replicas, needed))
            before = replicas
    return lost


# Timings an operator may choose, with the pool capped at the two workers
# the recorded run had.
AGGRESSIVE = {"pollingInterval": 1, "cooldownPeriod": 2, "scaleDownStabilizationSeconds": 0,
              "scaleDownPeriodSeconds": 1, "maxReplicas": 2}


def test_the_recorded_series_has_work_in_hand_with_an_empty_queue():
    series = recorded()
    assert len(series) > 20, "a real run, sampled"
    assert max(s.ready for s in series) > 0
    tail = [s for s in series if s.ready == 0 and s.unacked > 0]
    assert len(tail) >= 4, "there are moments when every job left is held by a worker"
    assert (series[-1].ready, series[-1].unacked) == (0, 0), "recorded until the queue was done"


def test_the_chart_counts_unacknowledged_jobs():
    rule = Rule.rendered()
    assert rule.counts_unacked
    assert rule.value == 4, "jobs per replica: prefetch 4 x 1 pipeline"
    assert (rule.polling, rule.cooldown, rule.stabilization) == (15, 300, 300)


@pytest.mark.parametrize("timings", ["chart", "aggressive"])
def test_no_worker_holding_jobs_is_scaled_away(timings):
    rule = Rule.rendered(AGGRESSIVE if timings == "aggressive" else None)
    series = recorded()
    hpa_sync = 15 if timings == "chart" else 1
    assert busy_workers_scaled_away(rule, series, hpa_sync) == []
    runs = [simulate(rule, series, hpa_sync, phase) for phase in phases(rule)]
    assert any(max(r for _, r in run) >= 2 for run in runs), "the pool scaled out on the backlog"
    if timings == "aggressive":
        assert all(run[-1][1] == 0 for run in runs), "and back to zero once the queue was done"


def test_counting_ready_jobs_only_would_scale_busy_workers_away():
    rule = Rule.rendered(AGGRESSIVE)
    rule.counts_unacked = False
    lost = busy_workers_scaled_away(rule, recorded(), hpa_sync=1)
    assert lost, "KEDA's amqp protocol (ready messages only) leaves busy workers without a pod"


def test_activation_waits_for_work_and_cooldown_keeps_the_pool():
    rule = Rule.rendered({"activationJobs": 100})
    assert all(max(r for _, r in simulate(rule, recorded(), 15, p)) == 0 for p in phases(rule)), (
        "no activation while the jobs stay at or below activationValue"
    )
    rule = Rule.rendered(AGGRESSIVE | {"cooldownPeriod": 3600})
    series = recorded()
    within = [r for t, r in simulate(rule, series, 1) if t <= series[-1].t + 600]
    assert max(within) >= 1 and within[-1] >= 1, "no return to zero within the cooldown"

//! Supervision: consume the results queue (each result stored once),
//! publish jobs, and re-publish the jobs of stalled runs.

use super::*;
use crate::metrics::{dead_reason, result_outcome};

impl Engine {
    /// Consume the results queue until shutdown, storing each result once.
    pub(super) async fn collect_results(&self, shutdown: CancellationToken) {
        let queue = self.inner.broker.queues().results.clone();
        let policy = RetryPolicy {
            max_attempts: u32::MAX,
            ..RetryPolicy::default()
        };
        let mut attempt = 1;
        let mut sub = loop {
            let subscribed = tokio::select! {
                _ = shutdown.cancelled() => return,
                s = self.inner.broker.subscribe(&queue, self.inner.config.results_prefetch) => s,
            };
            match subscribed {
                Ok(s) => break s,
                Err(e) => {
                    attempt += 1;
                    warn!(error = %e, "cannot subscribe to results; retrying");
                    tokio::time::sleep(policy.delay(attempt)).await;
                }
            }
        };
        loop {
            let delivery = tokio::select! {
                _ = shutdown.cancelled() => return,
                d = sub.next() => d,
            };
            let Some(delivery) = delivery else { return };
            self.handle_result(delivery).await;
        }
    }

    /// Store one result delivery under its job id, then ack it.
    pub(super) async fn handle_result(&self, delivery: Delivery) {
        let m = &self.inner.metrics;
        let result = match wire::decode(&delivery.body) {
            Ok(Message::Result(r)) => r,
            Ok(Message::Job(job) | Message::HandedBack(HandedBack { job, .. })) => {
                warn!(job_id = %job.job_id, "a job arrived on the results queue; dead-lettering it");
                m.dead_lettered
                    .with_label_values(&[dead_reason::WRONG_KIND])
                    .inc();
                settle(delivery.acker.reject().await);
                return;
            }
            Err(e) => {
                warn!(error = %e, bytes = delivery.body.len(), "undecodable result; dead-lettering it");
                m.dead_lettered
                    .with_label_values(&[dead_reason::UNDECODABLE])
                    .inc();
                settle(delivery.acker.reject().await);
                return;
            }
        };
        let (run_id, job_id) = (result.run_id, result.job_id);
        let known = self
            .runs()
            .get(&run_id)
            .map(|r| (r.state.clone(), r.job(job_id).is_some()));
        match known {
            Some((RunState::Running, true)) => {}
            Some((RunState::Running, false)) => {
                warn!(%run_id, %job_id, "result for a job the run does not have; dead-lettering it");
                m.dead_lettered
                    .with_label_values(&[dead_reason::UNKNOWN_JOB])
                    .inc();
                settle(delivery.acker.reject().await);
                return;
            }
            Some(_) => {
                m.results.with_label_values(&[result_outcome::LATE]).inc();
                settle(delivery.acker.ack().await);
                return;
            }
            None => {
                let finished = self.inner.store.head(&run_record_key(run_id)).await;
                if matches!(finished, Ok(Some(_))) {
                    m.results.with_label_values(&[result_outcome::LATE]).inc();
                    settle(delivery.acker.ack().await);
                } else {
                    warn!(%run_id, %job_id, "result for an unknown run; dead-lettering it");
                    m.dead_lettered
                        .with_label_values(&[dead_reason::UNKNOWN_RUN])
                        .inc();
                    settle(delivery.acker.reject().await);
                }
                return;
            }
        }
        let key = part_key(run_id, job_id);
        let stored = retry(RetryPolicy::default(), StoreError::is_transient, || {
            self.inner.store.put(&key, delivery.body.clone())
        })
        .await;
        if let Err(e) = stored {
            error!(%run_id, %job_id, error = %e, "cannot store result; returning it to the queue");
            settle(delivery.acker.requeue().await);
            return;
        }
        let tiles_ok: u64 = result.cases.iter().map(|c| c.tiles_ok).sum();
        let recorded = self.runs().get_mut(&run_id).map(|run| {
            run.record_result(
                job_id,
                tiles_ok,
                result.tile_failures.len() as u64,
                &result.worker,
                Instant::now(),
            )
        });
        match recorded {
            Some(Recorded::New) => {
                m.results.with_label_values(&[result_outcome::NEW]).inc();
                m.tiles_done.inc_by(tiles_ok);
            }
            _ => m
                .results
                .with_label_values(&[result_outcome::DUPLICATE])
                .inc(),
        }
        settle(delivery.acker.ack().await);
        self.inner.kick.notify_one();
        self.notify_changed();
    }

    /// Publish, re-publish and finalize runs until shutdown.
    pub(super) async fn supervise(&self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.inner.config.check_interval) => {}
                _ = self.inner.kick.notified() => {}
            }
            self.tick().await;
        }
    }

    /// One supervision pass over the running runs.
    pub(super) async fn tick(&self) {
        let running: Vec<Uuid> = self
            .runs()
            .iter()
            .filter(|(_, r)| r.state == RunState::Running)
            .map(|(id, _)| *id)
            .collect();
        let mut depth = None;
        for run_id in running {
            let first = self
                .runs()
                .get(&run_id)
                .map(LiveRun::unpublished)
                .unwrap_or_default();
            self.publish(run_id, &first).await;
            if !first.is_empty()
                && self
                    .runs()
                    .get(&run_id)
                    .is_some_and(|r| r.unpublished().is_empty())
            {
                self.mark_published(run_id).await;
            }
            let settled = self.runs().get(&run_id).is_some_and(LiveRun::is_settled);
            if settled {
                self.spawn_finalize(run_id);
                continue;
            }
            if depth.is_none() {
                depth = Some(
                    self.inner
                        .broker
                        .depth(&self.inner.broker.queues().jobs)
                        .await,
                );
            }
            if !matches!(depth, Some(Ok(0))) {
                continue;
            }
            let (config, metrics) = (&self.inner.config, &self.inner.metrics);
            let again = match self.runs().get_mut(&run_id) {
                Some(run) => {
                    let before = run.status(Instant::now()).jobs_failed;
                    let again = run.overdue(
                        Instant::now(),
                        config.stall_timeout,
                        config.max_publishes,
                        config.job_deadline,
                    );
                    let failed = run.status(Instant::now()).jobs_failed - before;
                    metrics.jobs_failed.inc_by(failed as u64);
                    if failed > 0 {
                        warn!(%run_id, failed, "gave up on jobs with no result");
                    }
                    again
                }
                None => continue,
            };
            if !again.is_empty() {
                warn!(%run_id, jobs = again.len(), "run stalled; publishing its overdue jobs again");
                metrics.jobs_republished.inc_by(again.len() as u64);
                self.publish(run_id, &again).await;
            }
            if self.runs().get(&run_id).is_some_and(LiveRun::is_settled) {
                self.spawn_finalize(run_id);
            }
        }
        self.update_run_gauges();
    }

    /// Store that every job of a run was published once, so that a resumed
    /// run does not publish them again. Failing costs only duplicates after
    /// a restart, so it is logged, not retried forever.
    async fn mark_published(&self, run_id: Uuid) {
        let key = published_key(run_id);
        let jobs = self.runs().get(&run_id).map_or(0, |r| r.jobs.len());
        let body = Bytes::from(serde_json::json!({ "jobs": jobs }).to_string());
        let stored = retry(RetryPolicy::default(), StoreError::is_transient, || {
            self.inner.store.put(&key, body.clone())
        })
        .await;
        if let Err(e) = stored {
            warn!(%run_id, error = %e, "cannot record that every job was published; a restart would publish them again");
        }
    }

    /// Publish jobs `indices` of a run, with confirms; a job that cannot be
    /// published stays unpublished and is tried again at the next pass.
    pub(super) async fn publish(&self, run_id: Uuid, indices: &[usize]) {
        let queue = self.inner.broker.queues().jobs.clone();
        for &i in indices {
            let job = match self.runs().get(&run_id) {
                Some(run) => run.plan.jobs[i].clone(),
                None => return,
            };
            let body = match wire::encode(&Message::Job(job)) {
                Ok(b) => Bytes::from(b),
                Err(e) => {
                    error!(%run_id, index = i, error = %e, "cannot encode job");
                    continue;
                }
            };
            let published = retry(
                RetryPolicy::default(),
                |e: &BrokerError| e.transient,
                || self.inner.broker.publish(&queue, body.clone()),
            )
            .await;
            match published {
                Ok(()) => {
                    if let Some(run) = self.runs().get_mut(&run_id) {
                        run.mark_published(i, Instant::now());
                    }
                    self.inner.metrics.jobs_published.inc();
                }
                Err(e) => {
                    warn!(%run_id, index = i, error = %e, "cannot publish job; will retry");
                    return;
                }
            }
        }
    }
}

/// Log a failed settle: the broker redelivers what was not settled.
fn settle(outcome: Result<(), BrokerError>) {
    if let Err(e) = outcome {
        warn!(error = %e, "could not settle a delivery; the broker will redeliver it");
    }
}

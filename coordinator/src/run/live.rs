//! One run's live bookkeeping: which jobs are out, done or given up on, and
//! the progress derived from that. Pure state, no I/O; time is passed in.

use super::{Cancellation, RunSpec, RunState, RunStatus};
use crate::plan::Plan;
use chrono::{DateTime, Utc};
use nodal_types::manifest::Manifest;
use nodal_types::model_card::ModelCard;
use nodal_types::wire::Job;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Where one job stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    /// Not yet published, or published and awaiting a result.
    Pending {
        /// When it was last published.
        published_at: Option<Instant>,
        /// How often it was published.
        publishes: u32,
    },
    /// Its result is stored.
    Done,
    /// Given up on, with the reason.
    Failed(String),
    /// Still pending when the run was cancelled: never to be run.
    Cancelled,
}

/// What recording a result did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The first result for this job.
    New,
    /// The job already had a result (a redelivery); it overwrote itself.
    Duplicate,
    /// No job of that id in this run.
    UnknownJob,
}

/// A run the coordinator is driving.
#[derive(Debug)]
pub struct LiveRun {
    /// The stored spec.
    pub spec: RunSpec,
    /// The model card.
    pub card: Arc<ModelCard>,
    /// The archives' manifests with the SHA-256 of their bytes, in request order.
    pub manifests: Arc<Vec<(Manifest, String)>>,
    /// The plan (jobs and pre-run exclusions).
    pub plan: Arc<Plan>,
    /// State of each job, by plan index.
    pub jobs: Vec<JobState>,
    index: HashMap<Uuid, usize>,
    /// Where the run stands.
    pub state: RunState,
    /// Workers that returned results.
    pub workers: BTreeSet<String>,
    /// Re-publications so far.
    pub republished: u64,
    tiles_done: u64,
    tiles_failed: u64,
    started: Instant,
    last_progress: Instant,
    /// When the result files were written.
    pub finished_at: Option<DateTime<Utc>>,
    /// Set once an operator cancelled the run.
    pub cancelled: Option<Cancellation>,
}

impl LiveRun {
    /// Start tracking a planned run at `now`.
    pub fn new(
        spec: RunSpec,
        card: Arc<ModelCard>,
        manifests: Arc<Vec<(Manifest, String)>>,
        plan: Arc<Plan>,
        now: Instant,
    ) -> Self {
        let index = plan
            .jobs
            .iter()
            .enumerate()
            .map(|(i, j)| (j.job_id, i))
            .collect();
        let jobs = vec![
            JobState::Pending {
                published_at: None,
                publishes: 0
            };
            plan.jobs.len()
        ];
        Self {
            spec,
            card,
            manifests,
            plan,
            jobs,
            index,
            state: RunState::Running,
            workers: BTreeSet::new(),
            republished: 0,
            tiles_done: 0,
            tiles_failed: 0,
            started: now,
            last_progress: now,
            finished_at: None,
            cancelled: None,
        }
    }

    /// The planned job with this id.
    pub fn job(&self, job_id: Uuid) -> Option<&Job> {
        self.index.get(&job_id).map(|i| &self.plan.jobs[*i])
    }

    /// Mark a job done because its result was already stored (resume).
    pub fn mark_stored(&mut self, job_id: Uuid) {
        if let Some(i) = self.index.get(&job_id) {
            if self.jobs[*i] != JobState::Done {
                self.tiles_done += self.plan.jobs[*i].tile_count() as u64;
            }
            self.jobs[*i] = JobState::Done;
        }
    }

    /// Count every job not yet published as published once at `now`: on
    /// resume, when the store says they all were (they are in the queue or
    /// with a worker; the stall rule publishes any that were lost).
    pub fn mark_all_published(&mut self, now: Instant) {
        for s in &mut self.jobs {
            if let JobState::Pending {
                published_at,
                publishes: publishes @ 0,
            } = s
            {
                *published_at = Some(now);
                *publishes = 1;
            }
        }
    }

    /// Jobs still to publish for the first time, by index.
    pub fn unpublished(&self) -> Vec<usize> {
        self.jobs
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s, JobState::Pending { publishes: 0, .. }))
            .map(|(i, _)| i)
            .collect()
    }

    /// Note that job `index` was published at `now`.
    pub fn mark_published(&mut self, index: usize, now: Instant) {
        if let Some(JobState::Pending {
            published_at,
            publishes,
        }) = self.jobs.get_mut(index)
        {
            *published_at = Some(now);
            *publishes += 1;
        }
    }

    /// Record a stored result for `job_id` at `now`.
    pub fn record_result(
        &mut self,
        job_id: Uuid,
        tiles_ok: u64,
        tiles_failed: u64,
        worker: &str,
        now: Instant,
    ) -> Recorded {
        let Some(&i) = self.index.get(&job_id) else {
            return Recorded::UnknownJob;
        };
        self.workers.insert(worker.to_string());
        self.last_progress = now;
        match self.jobs[i] {
            JobState::Done => Recorded::Duplicate,
            _ => {
                self.jobs[i] = JobState::Done;
                self.tiles_done += tiles_ok;
                self.tiles_failed += tiles_failed;
                Recorded::New
            }
        }
    }

    /// When the run has made no progress for `stall` and jobs are still
    /// pending: the jobs to publish again. A job already published
    /// `max_publishes` times is not published again; it is given up on
    /// (marked failed) once `give_up_after` has passed since its last
    /// publication with no result — longer than the workers' transient
    /// deadline, so that a job handed back through a long store outage is
    /// never given up while a worker still tries it.
    pub fn overdue(
        &mut self,
        now: Instant,
        stall: Duration,
        max_publishes: u32,
        give_up_after: Duration,
    ) -> Vec<usize> {
        if now.duration_since(self.last_progress) < stall {
            return Vec::new();
        }
        let mut again = Vec::new();
        for (i, s) in self.jobs.iter_mut().enumerate() {
            if let JobState::Pending {
                published_at: Some(at),
                publishes,
            } = s
            {
                if now.duration_since(*at) < stall {
                    continue;
                }
                if *publishes >= max_publishes {
                    if now.duration_since(*at) < give_up_after {
                        continue;
                    }
                    *s = JobState::Failed(format!(
                        "no result after {publishes} publications (dead-lettered or lost; see the dead-letter queue)"
                    ));
                    self.tiles_failed += self.plan.jobs[i].tile_count() as u64;
                } else {
                    again.push(i);
                }
            }
        }
        self.republished += again.len() as u64;
        again
    }

    /// Cancel the run: every job still pending is never to be run, so the
    /// run is settled. Results already stored are kept; one that arrives
    /// before finalisation still counts.
    pub fn cancel(&mut self, cancellation: Cancellation) {
        for s in &mut self.jobs {
            if matches!(s, JobState::Pending { .. }) {
                *s = JobState::Cancelled;
            }
        }
        self.cancelled = Some(cancellation);
    }

    /// True when every job is done, given up on or cancelled.
    pub fn is_settled(&self) -> bool {
        self.jobs
            .iter()
            .all(|s| !matches!(s, JobState::Pending { .. }))
    }

    /// The run's progress at `now`.
    pub fn status(&self, now: Instant) -> RunStatus {
        let count = |f: fn(&JobState) -> bool| self.jobs.iter().filter(|s| f(s)).count();
        let tiles_total = self.plan.tile_count();
        let elapsed = now.duration_since(self.started).as_secs_f64();
        let settled = self.tiles_done + self.tiles_failed;
        let rate = if elapsed > 0.0 {
            settled as f64 / elapsed
        } else {
            0.0
        };
        let left = (tiles_total as u64).saturating_sub(settled);
        RunStatus {
            run_id: self.spec.run_id,
            label: self.spec.label.clone(),
            model: format!("{}@{}", self.spec.model.name, self.spec.model.version),
            archives: self.spec.archives.clone(),
            state: self.state.clone(),
            jobs_total: self.jobs.len(),
            jobs_done: count(|s| *s == JobState::Done),
            jobs_failed: count(|s| matches!(s, JobState::Failed(_))),
            jobs_cancelled: count(|s| *s == JobState::Cancelled),
            jobs_in_flight: count(|s| {
                matches!(
                    s,
                    JobState::Pending {
                        published_at: Some(_),
                        ..
                    }
                )
            }),
            tiles_total,
            tiles_done: self.tiles_done,
            tiles_failed: self.tiles_failed,
            tiles_per_second: rate,
            eta_seconds: (rate > 0.0 && left > 0).then(|| left as f64 / rate),
            created_at: self.spec.created_at,
            finished_at: self.finished_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::job_id;
    use nodal_types::wire::{JobCase, ModelRef};

    fn run_with_jobs(n: u32) -> LiveRun {
        let run_id = Uuid::from_u128(5);
        let model = ModelRef {
            name: "m".into(),
            version: "1".into(),
            card_key: "k".into(),
            onnx_sha256: "h".into(),
        };
        let jobs = (0..n)
            .map(|i| Job {
                run_id,
                job_id: job_id(run_id, i),
                index: i,
                model: model.clone(),
                archive_id: "a".into(),
                cases: vec![JobCase {
                    case_id: format!("c{i}"),
                    part: 0,
                    tiles: vec![nodal_testkit::fixtures::job_tile("t"); 10],
                    report: None,
                }],
                traceparent: None,
            })
            .collect();
        let spec = RunSpec {
            run_id,
            label: None,
            archives: vec!["a".into()],
            model,
            job_tiles: 10,
            created_at: Utc::now(),
        };
        LiveRun::new(
            spec,
            Arc::new(nodal_testkit::fixtures::card()),
            Arc::new(Vec::new()),
            Arc::new(Plan {
                jobs,
                left_out: vec![],
            }),
            Instant::now(),
        )
    }

    #[test]
    fn duplicates_count_once_and_unknown_jobs_are_flagged() {
        let mut run = run_with_jobs(2);
        let t = Instant::now();
        let id = job_id(run.spec.run_id, 0);
        assert_eq!(run.record_result(id, 10, 0, "w1", t), Recorded::New);
        assert_eq!(run.record_result(id, 10, 0, "w2", t), Recorded::Duplicate);
        assert_eq!(
            run.record_result(Uuid::nil(), 1, 0, "w", t),
            Recorded::UnknownJob
        );
        let s = run.status(t);
        assert_eq!((s.jobs_done, s.tiles_done), (1, 10));
        assert!(!run.is_settled());
    }

    #[test]
    fn stalled_jobs_are_republished_then_given_up() {
        let mut run = run_with_jobs(2);
        let t0 = Instant::now();
        run.mark_published(0, t0);
        run.mark_published(1, t0);
        run.record_result(job_id(run.spec.run_id, 1), 10, 0, "w", t0);
        let stall = Duration::from_secs(30);
        let give_up = Duration::from_secs(600);
        assert!(
            run.overdue(t0 + Duration::from_secs(5), stall, 2, give_up)
                .is_empty()
        );
        let t1 = t0 + Duration::from_secs(31);
        assert_eq!(run.overdue(t1, stall, 2, give_up), vec![0]);
        run.mark_published(0, t1);
        let t2 = t1 + Duration::from_secs(31);
        assert!(run.overdue(t2, stall, 2, give_up).is_empty());
        assert!(
            matches!(run.jobs[0], JobState::Pending { publishes: 2, .. }),
            "published enough, but not given up before its deadline"
        );
        let t3 = t1 + give_up;
        assert!(run.overdue(t3, stall, 2, give_up).is_empty());
        assert!(matches!(run.jobs[0], JobState::Failed(_)));
        assert!(run.is_settled());
        assert_eq!(run.status(t3).tiles_failed, 10);
        assert_eq!(run.republished, 1);
    }

    #[test]
    fn a_resumed_run_marked_published_publishes_nothing_until_it_stalls() {
        let mut run = run_with_jobs(3);
        let t0 = Instant::now();
        run.mark_stored(job_id(run.spec.run_id, 0));
        assert_eq!(run.unpublished(), vec![1, 2]);
        run.mark_all_published(t0);
        assert!(run.unpublished().is_empty(), "nothing to publish at once");
        assert_eq!(run.jobs[0], JobState::Done, "a stored job stays done");
        let stall = Duration::from_secs(30);
        let give_up = Duration::from_secs(600);
        assert!(
            run.overdue(t0 + Duration::from_secs(29), stall, 4, give_up)
                .is_empty()
        );
        assert_eq!(
            run.overdue(t0 + Duration::from_secs(31), stall, 4, give_up),
            vec![1, 2],
            "lost jobs come back through the stall rule"
        );
    }
}

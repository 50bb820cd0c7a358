//! Background scoring jobs: large image sets are scored by a worker thread while the
//! client polls `GET /v1/jobs/{id}`. The queue is bounded; a full queue is refused
//! ([`JobError::QueueFull`], which the HTTP layer answers with 429).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::{Score, ScoreError};
use crate::models::reference::ReferenceInfo;

/// Finished jobs kept for polling; older ones are forgotten first.
const KEEP_FINISHED: usize = 256;
/// Retry-After seconds suggested when the queue is full.
pub const RETRY_AFTER_S: u64 = 30;

/// Where a job is.
#[derive(Debug, Clone)]
pub enum JobState {
    /// Waiting for the worker.
    Queued,
    /// Being scored.
    Running,
    /// Finished with its output.
    Done(JobOutput),
    /// Finished with an error.
    Failed(Arc<ScoreError>),
}

/// Why a job could not be queued.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The queue is full; retry after the given seconds.
    #[error("the scoring job queue is full; retry later")]
    QueueFull {
        /// Suggested wait in seconds.
        retry_after_s: u64,
    },
    /// The worker thread is gone.
    #[error("the job worker is not running")]
    WorkerGone,
}

/// What `GET /v1/jobs/{id}` shows of a job.
#[derive(Debug, Clone)]
pub struct JobView {
    /// Job id.
    pub id: String,
    /// Where it is.
    pub state: JobState,
    /// Images scored so far.
    pub done: u64,
    /// Images to score.
    pub total: u64,
    /// Time since it was queued.
    pub age: Duration,
}

/// One job as clients see it.
pub struct Job {
    /// Id for `/v1/jobs/{id}`.
    pub id: String,
    /// Images to score.
    pub total: u64,
    /// Images scored so far.
    pub done: Arc<AtomicU64>,
    state: Mutex<JobState>,
    created: Instant,
}

impl Job {
    /// A snapshot for clients.
    pub fn view(&self) -> JobView {
        JobView {
            id: self.id.clone(),
            state: self.state.lock().unwrap_or_else(PoisonError::into_inner).clone(),
            done: self.done.load(Ordering::Relaxed),
            total: self.total,
            age: self.created.elapsed(),
        }
    }

    fn set(&self, s: JobState) {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner) = s;
    }

    fn finished(&self) -> bool {
        matches!(
            *self.state.lock().unwrap_or_else(PoisonError::into_inner),
            JobState::Done(_) | JobState::Failed(..)
        )
    }
}

/// What a job produces: a score, or a new reference (built from images).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum JobOutput {
    /// A score (`/v1/fid`, `/v1/models/{name}/fid`).
    Score(Box<Score>),
    /// A stored reference (`/v1/references/{name}` with images).
    Reference(ReferenceInfo),
}

/// Work a job does, with a progress counter.
pub type Task = Box<dyn FnOnce(&AtomicU64) -> Result<JobOutput, ScoreError> + Send>;

/// Jobs by id, plus ids in submission order (for retention).
type Table = (BTreeMap<String, Arc<Job>>, VecDeque<String>);

/// The job table and the queue feeding the worker thread.
pub struct Jobs {
    tx: SyncSender<(Arc<Job>, Task)>,
    table: Mutex<Table>,
    depth: prometheus::IntGauge,
    capacity: usize,
    counter: AtomicU64,
    epoch: u64,
}

/// Summary returned with 202.
#[derive(Debug, Serialize)]
pub struct Accepted {
    /// Job id.
    pub id: String,
    /// Always `queued`.
    pub status: &'static str,
    /// Where to poll.
    pub href: String,
    /// Images to score.
    pub total: u64,
}

impl Jobs {
    /// A queue of `capacity` waiting jobs and one worker thread; `depth` tracks queued+running.
    pub fn new(capacity: usize, depth: prometheus::IntGauge) -> Self {
        let (tx, rx) = sync_channel::<(Arc<Job>, Task)>(capacity.max(1));
        let gauge = depth.clone();
        // One worker: scoring saturates the extractor anyway, and this keeps order fair.
        let spawned = std::thread::Builder::new()
            .name("pagan-jobs".into())
            .spawn(move || {
                while let Ok((job, task)) = rx.recv() {
                    job.set(JobState::Running);
                    let done = job.done.clone();
                    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| task(&done)))
                        .unwrap_or_else(|_| Err(ScoreError::Runtime("the scoring job panicked".into())));
                    match outcome {
                        Ok(score) => job.set(JobState::Done(score)),
                        Err(e) => {
                            tracing::warn!(job = %job.id, error = %e, "job failed");
                            job.set(JobState::Failed(Arc::new(e)));
                        }
                    }
                    gauge.dec();
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "could not start the job worker; jobs will stay queued");
        }
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Jobs {
            tx,
            table: Mutex::new((BTreeMap::new(), VecDeque::new())),
            depth,
            capacity: capacity.max(1),
            counter: AtomicU64::new(0),
            epoch,
        }
    }

    /// Queues `task` over `total` images; refused when the queue is full.
    pub fn submit(&self, total: u64, task: Task) -> Result<Accepted, JobError> {
        let k = self.counter.fetch_add(1, Ordering::Relaxed);
        let id = format!("{:x}-{k}", self.epoch);
        let job = Arc::new(Job {
            id: id.clone(),
            total,
            done: Arc::new(AtomicU64::new(0)),
            state: Mutex::new(JobState::Queued),
            created: Instant::now(),
        });
        match self.tx.try_send((job.clone(), task)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(Self::full_error()),
            Err(TrySendError::Disconnected(_)) => return Err(JobError::WorkerGone),
        }
        self.depth.inc();
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        let (jobs, order) = &mut *table;
        jobs.insert(id.clone(), job);
        order.push_back(id.clone());
        // Forget the oldest finished jobs beyond the retention count.
        while order.len() > KEEP_FINISHED {
            let Some(oldest) = order.front().cloned() else {
                break;
            };
            if jobs.get(&oldest).is_some_and(|j| !j.finished()) {
                break;
            }
            order.pop_front();
            jobs.remove(&oldest);
        }
        Ok(Accepted {
            href: format!("/v1/jobs/{id}"),
            id,
            status: "queued",
            total,
        })
    }

    /// Whether a submission now would most likely be refused (every waiting slot taken
    /// and one job running): lets a handler answer 429 before reading a large body.
    /// Only a hint; [`Jobs::submit`] decides.
    pub fn looks_full(&self) -> bool {
        usize::try_from(self.depth.get()).is_ok_and(|d| d > self.capacity)
    }

    /// The error a full queue gives.
    pub fn full_error() -> JobError {
        JobError::QueueFull {
            retry_after_s: RETRY_AFTER_S,
        }
    }

    /// A job by id.
    pub fn get(&self, id: &str) -> Option<Arc<Job>> {
        self.table
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .0
            .get(id)
            .cloned()
    }
}

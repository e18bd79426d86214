//! The status update manager: reliable, ordered delivery of each task's status updates to the
//! master, as Mesos' `TaskStatusUpdateManager` does it.
//!
//! Per task, a FIFO of updates. The head is in flight: it is sent, resent with backoff (1 s
//! doubling, capped at 30 s) until the master acknowledges its uuid, and only then is the next
//! one sent. A stray or stale acknowledgement changes nothing. An update whose uuid the stream
//! already holds (or already had acknowledged) is not queued twice.
//!
//! Pure: the actor sends what this returns and schedules the retries it asks for.

use meso::protocol::{ExecutorId, FrameworkId, StatusSource, StatusUpdate, TaskId, TaskStatus};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// First retry delay of an unacknowledged update.
pub const RETRY_MIN: Duration = Duration::from_secs(1);
/// Largest retry delay.
pub const RETRY_MAX: Duration = Duration::from_secs(30);
/// Acknowledged uuids remembered per task, to recognise late duplicates.
const ACKED_MEMORY: usize = 64;

/// One task of one framework.
pub type StreamKey = (FrameworkId, TaskId);

/// Send `update` now and, unless acknowledged before, call [`StatusUpdateManager::retry`] after
/// `retry_in`.
#[derive(Debug, Clone, PartialEq)]
pub struct Send {
    pub update: StatusUpdate,
    pub retry_in: Duration,
}

/// What became of an update handed to [`StatusUpdateManager::update`].
#[derive(Debug, Clone, PartialEq)]
pub enum Admitted {
    /// It is the head of its stream: send it.
    SendNow(Send),
    /// Queued behind an update still in flight.
    Queued,
    /// The stream holds it already (in flight or queued).
    Duplicate,
    /// It was acknowledged already; the sender may be told again.
    AlreadyAcked,
}

/// What an acknowledgement did.
#[derive(Debug, Clone, PartialEq)]
pub struct Acked {
    /// The update that was in flight and is now done.
    pub acked: StatusUpdate,
    /// The next update of the stream, to send now.
    pub next: Option<Send>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UpdateError {
    #[error("status update for task {0} has no uuid")]
    NoUuid(TaskId),
}

#[derive(Debug, Default)]
struct Stream {
    queue: VecDeque<StatusUpdate>,
    /// Delay before the next resend of the head.
    backoff: Duration,
    acked: VecDeque<[u8; 16]>,
}

impl Stream {
    fn holds(&self, uuid: [u8; 16]) -> bool {
        self.queue.iter().any(|u| u.status.uuid == Some(uuid))
    }
}

/// All streams of one agent.
#[derive(Debug, Default)]
pub struct StatusUpdateManager {
    streams: HashMap<StreamKey, Stream>,
}

impl StatusUpdateManager {
    pub fn new() -> StatusUpdateManager {
        StatusUpdateManager::default()
    }

    /// Takes a new update of a task (its `status.uuid` must be set).
    pub fn update(
        &mut self,
        framework_id: FrameworkId,
        executor_id: Option<ExecutorId>,
        source: StatusSource,
        status: TaskStatus,
    ) -> Result<Admitted, UpdateError> {
        let uuid = status
            .uuid
            .ok_or_else(|| UpdateError::NoUuid(status.task_id.clone()))?;
        let key = (framework_id.clone(), status.task_id.clone());
        let stream = self.streams.entry(key).or_default();
        if stream.acked.contains(&uuid) {
            return Ok(Admitted::AlreadyAcked);
        }
        if stream.holds(uuid) {
            return Ok(Admitted::Duplicate);
        }
        stream.queue.push_back(StatusUpdate {
            framework_id,
            status,
            executor_id,
            source,
        });
        if stream.queue.len() > 1 {
            return Ok(Admitted::Queued);
        }
        stream.backoff = RETRY_MIN;
        Ok(Admitted::SendNow(Send {
            update: stream.queue[0].clone(),
            retry_in: RETRY_MIN,
        }))
    }

    /// The master acknowledged `uuid` for the task. `None` (and nothing changes) unless `uuid` is
    /// the update in flight.
    pub fn ack(&mut self, key: &StreamKey, uuid: [u8; 16]) -> Option<Acked> {
        let stream = self.streams.get_mut(key)?;
        if stream.queue.front()?.status.uuid != Some(uuid) {
            return None;
        }
        let acked = stream.queue.pop_front()?;
        stream.acked.push_back(uuid);
        if stream.acked.len() > ACKED_MEMORY {
            stream.acked.pop_front();
        }
        stream.backoff = RETRY_MIN;
        let next = stream.queue.front().map(|u| Send {
            update: u.clone(),
            retry_in: RETRY_MIN,
        });
        Some(Acked { acked, next })
    }

    /// The retry timer of `uuid` fired: if it is still in flight, resend it, with the next retry
    /// twice as late (up to [`RETRY_MAX`]).
    pub fn retry(&mut self, key: &StreamKey, uuid: [u8; 16]) -> Option<Send> {
        let stream = self.streams.get_mut(key)?;
        let head = stream.queue.front()?;
        if head.status.uuid != Some(uuid) {
            return None;
        }
        stream.backoff = (stream.backoff * 2).clamp(RETRY_MIN, RETRY_MAX);
        Some(Send {
            update: head.clone(),
            retry_in: stream.backoff,
        })
    }

    /// The update in flight of every stream (to resend after reregistering with a master).
    pub fn in_flight(&self) -> Vec<StatusUpdate> {
        self.streams
            .values()
            .filter_map(|s| s.queue.front().cloned())
            .collect()
    }

    /// The latest status of the task that the manager holds, acknowledged or not.
    pub fn latest(&self, key: &StreamKey) -> Option<&TaskStatus> {
        self.streams
            .get(key)
            .and_then(|s| s.queue.back())
            .map(|u| &u.status)
    }

    /// Whether the task has updates not yet acknowledged.
    pub fn pending(&self, key: &StreamKey) -> usize {
        self.streams.get(key).map_or(0, |s| s.queue.len())
    }

    /// Forgets a task whose stream is empty; `false` (and nothing changes) if updates are pending.
    pub fn forget(&mut self, key: &StreamKey) -> bool {
        match self.streams.get(key) {
            Some(s) if !s.queue.is_empty() => false,
            _ => {
                self.streams.remove(key);
                true
            }
        }
    }

    /// Whether the stream of the task knows `uuid` already: `AlreadyAcked` or `Duplicate`.
    pub fn seen(&self, key: &StreamKey, uuid: [u8; 16]) -> Option<Admitted> {
        let stream = self.streams.get(key)?;
        if stream.acked.contains(&uuid) {
            Some(Admitted::AlreadyAcked)
        } else if stream.holds(uuid) {
            Some(Admitted::Duplicate)
        } else {
            None
        }
    }

    /// The stream of a task as it is checkpointed: pending updates (oldest first) and the
    /// acknowledged uuids remembered.
    pub fn snapshot(&self, key: &StreamKey) -> (Vec<StatusUpdate>, Vec<[u8; 16]>) {
        self.streams.get(key).map_or((Vec::new(), Vec::new()), |s| {
            (
                s.queue.iter().cloned().collect(),
                s.acked.iter().copied().collect(),
            )
        })
    }

    /// Takes back a checkpointed stream; returns its head, to send now (and retry).
    pub fn restore(
        &mut self,
        key: StreamKey,
        pending: Vec<StatusUpdate>,
        acked: Vec<[u8; 16]>,
    ) -> Option<Send> {
        let mut stream = Stream {
            queue: pending
                .into_iter()
                .filter(|u| u.status.uuid.is_some())
                .collect(),
            backoff: RETRY_MIN,
            acked: acked.into_iter().collect(),
        };
        while stream.acked.len() > ACKED_MEMORY {
            stream.acked.pop_front();
        }
        let head = stream.queue.front().map(|u| Send {
            update: u.clone(),
            retry_in: RETRY_MIN,
        });
        self.streams.insert(key, stream);
        head
    }

    /// Drops every stream of a framework (it is shut down: nobody will acknowledge).
    pub fn forget_framework(&mut self, framework_id: &FrameworkId) {
        self.streams.retain(|(fw, _), _| fw != framework_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meso::protocol::{new_uuid, TaskState};

    fn key() -> StreamKey {
        (FrameworkId::new("fw"), TaskId::new("t"))
    }

    fn status(state: TaskState) -> TaskStatus {
        TaskStatus::new(TaskId::new("t"), state, 0).reliable()
    }

    fn add(m: &mut StatusUpdateManager, s: &TaskStatus) -> Admitted {
        m.update(
            FrameworkId::new("fw"),
            None,
            StatusSource::Executor,
            s.clone(),
        )
        .unwrap()
    }

    fn uuid(s: &TaskStatus) -> [u8; 16] {
        s.uuid.unwrap()
    }

    /// Mesos sends one update per task at a time, in order: the next goes out only on the
    /// acknowledgement of the one before.
    #[test]
    fn updates_go_in_order_one_in_flight() {
        let mut m = StatusUpdateManager::new();
        let (a, b, c) = (
            status(TaskState::Starting),
            status(TaskState::Running),
            status(TaskState::Finished),
        );
        let Admitted::SendNow(first) = add(&mut m, &a) else {
            panic!("the first update is sent at once")
        };
        assert_eq!(first.update.status, a);
        assert_eq!(first.retry_in, RETRY_MIN);
        assert_eq!(add(&mut m, &b), Admitted::Queued);
        assert_eq!(add(&mut m, &c), Admitted::Queued);
        assert_eq!(m.in_flight().len(), 1);
        let acked = m.ack(&key(), uuid(&a)).unwrap();
        assert_eq!(acked.acked.status, a);
        assert_eq!(acked.next.unwrap().update.status, b);
        let acked = m.ack(&key(), uuid(&b)).unwrap();
        assert_eq!(acked.next.unwrap().update.status, c);
        let acked = m.ack(&key(), uuid(&c)).unwrap();
        assert!(acked.next.is_none());
        assert_eq!(m.pending(&key()), 0);
        assert!(m.forget(&key()));
    }

    /// An acknowledgement of another uuid (stale, queued-but-not-sent, or invented) is ignored.
    #[test]
    fn stray_acks_change_nothing() {
        let mut m = StatusUpdateManager::new();
        let (a, b) = (status(TaskState::Running), status(TaskState::Finished));
        add(&mut m, &a);
        add(&mut m, &b);
        assert!(m.ack(&key(), new_uuid()).is_none());
        assert!(m.ack(&key(), uuid(&b)).is_none(), "b is not in flight yet");
        let other = (FrameworkId::new("fw"), TaskId::new("other"));
        assert!(m.ack(&other, uuid(&a)).is_none());
        assert_eq!(m.pending(&key()), 2);
        assert!(m.ack(&key(), uuid(&a)).is_some());
        assert!(
            m.ack(&key(), uuid(&a)).is_none(),
            "a second ack of a is stale"
        );
        assert_eq!(m.pending(&key()), 1);
        assert!(!m.forget(&key()), "b is pending");
    }

    /// An executor resending an update the agent holds does not make it go twice.
    #[test]
    fn duplicates_are_not_queued_twice() {
        let mut m = StatusUpdateManager::new();
        let (a, b) = (status(TaskState::Running), status(TaskState::Finished));
        add(&mut m, &a);
        add(&mut m, &b);
        assert_eq!(add(&mut m, &a), Admitted::Duplicate);
        assert_eq!(add(&mut m, &b), Admitted::Duplicate);
        assert_eq!(m.pending(&key()), 2);
        m.ack(&key(), uuid(&a)).unwrap();
        assert_eq!(add(&mut m, &a), Admitted::AlreadyAcked);
        assert_eq!(m.pending(&key()), 1);
    }

    /// Resends back off 1 s, 2 s, 4 s ... up to 30 s, and restart at 1 s for the next update.
    #[test]
    fn retries_back_off_up_to_the_cap() {
        let mut m = StatusUpdateManager::new();
        let (a, b) = (status(TaskState::Running), status(TaskState::Finished));
        add(&mut m, &a);
        add(&mut m, &b);
        let delays: Vec<u64> = (0..8)
            .map(|_| m.retry(&key(), uuid(&a)).unwrap().retry_in.as_secs())
            .collect();
        assert_eq!(delays, [2, 4, 8, 16, 30, 30, 30, 30]);
        assert!(m.retry(&key(), uuid(&b)).is_none(), "b is not in flight");
        let next = m.ack(&key(), uuid(&a)).unwrap().next.unwrap();
        assert_eq!(next.retry_in, RETRY_MIN);
        assert!(m.retry(&key(), uuid(&a)).is_none(), "a is done");
        assert_eq!(m.retry(&key(), uuid(&b)).unwrap().retry_in.as_secs(), 2);
    }

    #[test]
    fn updates_without_uuid_are_refused() {
        let mut m = StatusUpdateManager::new();
        let s = TaskStatus::new(TaskId::new("t"), TaskState::Running, 0);
        assert_eq!(
            m.update(FrameworkId::new("fw"), None, StatusSource::Executor, s),
            Err(UpdateError::NoUuid(TaskId::new("t")))
        );
        assert_eq!(m.pending(&key()), 0);
    }

    #[test]
    fn a_framework_is_forgotten_whole() {
        let mut m = StatusUpdateManager::new();
        add(&mut m, &status(TaskState::Running));
        m.forget_framework(&FrameworkId::new("fw"));
        assert!(m.in_flight().is_empty());
    }

    /// A stream written out and read back goes on where it was.
    #[test]
    fn a_restored_stream_goes_on() {
        let mut m = StatusUpdateManager::new();
        let (a, b, c) = (
            status(TaskState::Starting),
            status(TaskState::Running),
            status(TaskState::Finished),
        );
        add(&mut m, &a);
        add(&mut m, &b);
        add(&mut m, &c);
        m.ack(&key(), uuid(&a)).unwrap();
        assert_eq!(m.seen(&key(), uuid(&a)), Some(Admitted::AlreadyAcked));
        assert_eq!(m.seen(&key(), uuid(&c)), Some(Admitted::Duplicate));
        assert_eq!(m.seen(&key(), new_uuid()), None);
        let (pending, acked) = m.snapshot(&key());
        let mut again = StatusUpdateManager::new();
        let head = again.restore(key(), pending, acked).unwrap();
        assert_eq!(head.update.status, b);
        assert_eq!(add(&mut again, &a), Admitted::AlreadyAcked);
        assert_eq!(add(&mut again, &c), Admitted::Duplicate);
        assert_eq!(
            again
                .ack(&key(), uuid(&b))
                .unwrap()
                .next
                .unwrap()
                .update
                .status,
            c
        );
    }
}

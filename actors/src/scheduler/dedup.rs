//! The driver's pure bookkeeping: which status update uuids were seen and acknowledged, and the
//! registration backoff.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

/// First delay between registration attempts.
pub const REGISTER_BACKOFF_MIN: Duration = Duration::from_millis(500);
/// Largest delay between registration attempts.
pub const REGISTER_BACKOFF_MAX: Duration = Duration::from_secs(8);

/// The delay after `delay`: doubled, capped at [`REGISTER_BACKOFF_MAX`].
pub fn next_backoff(delay: Duration) -> Duration {
    (delay * 2).min(REGISTER_BACKOFF_MAX)
}

/// What to do with a status update that carries a uuid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// First sight: hand it to the framework.
    Deliver,
    /// Seen and acknowledged before: acknowledge again (the first ack may have been lost), do not
    /// deliver again.
    Reacknowledge,
    /// Seen, delivered, not acknowledged yet by the framework (explicit mode): nothing to do.
    Ignore,
}

/// Uuids of the status updates delivered to the framework, and of those acknowledged. Bounded: the
/// oldest are forgotten past `capacity` (an update that old is long acknowledged).
#[derive(Debug)]
pub struct SeenUuids {
    capacity: usize,
    order: VecDeque<[u8; 16]>,
    delivered: HashSet<[u8; 16]>,
    acked: HashSet<[u8; 16]>,
}

impl SeenUuids {
    pub fn new(capacity: usize) -> SeenUuids {
        SeenUuids {
            capacity: capacity.max(1),
            order: VecDeque::new(),
            delivered: HashSet::new(),
            acked: HashSet::new(),
        }
    }

    /// Classifies an incoming update and records it as delivered when it is new.
    pub fn observe(&mut self, uuid: [u8; 16]) -> Verdict {
        if self.delivered.contains(&uuid) {
            return if self.acked.contains(&uuid) {
                Verdict::Reacknowledge
            } else {
                Verdict::Ignore
            };
        }
        if self.order.len() >= self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.delivered.remove(&old);
                self.acked.remove(&old);
            }
        }
        self.order.push_back(uuid);
        self.delivered.insert(uuid);
        Verdict::Deliver
    }

    /// Records that the framework acknowledged `uuid`.
    pub fn acknowledged(&mut self, uuid: [u8; 16]) {
        if self.delivered.contains(&uuid) {
            self.acked.insert(uuid);
        }
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_half_a_second_up_to_eight() {
        let mut d = REGISTER_BACKOFF_MIN;
        let mut seen = vec![d];
        for _ in 0..6 {
            d = next_backoff(d);
            seen.push(d);
        }
        let ms: Vec<u128> = seen.iter().map(|d| d.as_millis()).collect();
        assert_eq!(ms, vec![500, 1000, 2000, 4000, 8000, 8000, 8000]);
    }

    /// A resent update (same uuid) is acknowledged again but not shown to the framework twice,
    /// as the Mesos driver does with the agent's retries.
    #[test]
    fn duplicates_are_reacknowledged_not_redelivered() {
        let mut seen = SeenUuids::new(10);
        let u = [7u8; 16];
        assert_eq!(seen.observe(u), Verdict::Deliver);
        assert_eq!(seen.observe(u), Verdict::Ignore);
        seen.acknowledged(u);
        assert_eq!(seen.observe(u), Verdict::Reacknowledge);
        assert_eq!(seen.len(), 1);
    }

    #[test]
    fn acknowledging_an_unseen_uuid_records_nothing() {
        let mut seen = SeenUuids::new(10);
        seen.acknowledged([1; 16]);
        assert_eq!(seen.observe([1; 16]), Verdict::Deliver);
    }

    #[test]
    fn the_oldest_uuids_are_forgotten_past_capacity() {
        let mut seen = SeenUuids::new(2);
        for i in 0..3u8 {
            assert_eq!(seen.observe([i; 16]), Verdict::Deliver);
        }
        assert_eq!(seen.len(), 2);
        assert_eq!(seen.observe([0; 16]), Verdict::Deliver);
        assert_eq!(seen.observe([2; 16]), Verdict::Ignore);
    }
}

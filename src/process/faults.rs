//! Fault injection on a node's outgoing frames, driven by a seed so that a run can be replayed.
//!
//! Each outgoing remote frame is, in this order: dropped with probability `drop`, else sent twice with
//! probability `duplicate`, else held back for a random time up to `max_delay_ms` with probability
//! `delay`. A delay holds back every later frame to the same peer too, as latency on a connection
//! would: frames are never reordered, so the layer's FIFO promise holds under faults. Cutting the
//! link to a peer closes the connection (links fire `Exited`), drops frames to it and refuses to
//! reconnect until healed.

use rand::{rngs::SmallRng, Rng, SeedableRng};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultConfig {
    pub seed: u64,
    /// Probability in [0, 1] that a frame is dropped.
    pub drop: f64,
    /// Probability that a frame is sent twice.
    pub duplicate: f64,
    /// Probability that a frame is delayed.
    pub delay: f64,
    /// Longest delay, in milliseconds of the runtime's clock.
    pub max_delay_ms: u64,
}

impl FaultConfig {
    /// No faults at all, with a seed: a starting point for `..FaultConfig::seeded(7)`.
    pub fn seeded(seed: u64) -> FaultConfig {
        FaultConfig {
            seed,
            drop: 0.0,
            duplicate: 0.0,
            delay: 0.0,
            max_delay_ms: 0,
        }
    }
}

/// What to do with one outgoing frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Send,
    Drop,
    Duplicate,
    Delay(Duration),
}

#[derive(Debug)]
pub(crate) struct Faults {
    config: Option<FaultConfig>,
    rng: SmallRng,
    cut: HashSet<SocketAddr>,
    /// Frames held back per peer, and until when.
    held: HashMap<SocketAddr, Held>,
}

#[derive(Debug)]
struct Held {
    until: tokio::time::Instant,
    /// Each frame with the incarnation of the peer it was sent to (None: nothing was connected).
    frames: Vec<(Option<u64>, Vec<u8>)>,
    flusher: bool,
}

impl Faults {
    pub(crate) fn new(config: Option<FaultConfig>) -> Faults {
        let seed = config.map_or(0, |c| c.seed);
        Faults {
            config,
            rng: SmallRng::seed_from_u64(seed),
            cut: HashSet::new(),
            held: HashMap::new(),
        }
    }

    pub(crate) fn set(&mut self, config: Option<FaultConfig>) {
        *self = Faults {
            cut: std::mem::take(&mut self.cut),
            held: std::mem::take(&mut self.held),
            ..Faults::new(config)
        };
    }

    pub(crate) fn active(&self) -> bool {
        self.config.is_some() || !self.cut.is_empty() || !self.held.is_empty()
    }

    /// Holds `copies` of `frame`, sent to the peer's `incarnation`, back if frames to `peer` are
    /// being held, or if `until` starts a hold; returns false if the frame may go now.
    pub(crate) fn hold(
        &mut self,
        peer: SocketAddr,
        incarnation: Option<u64>,
        frame: &[u8],
        copies: usize,
        until: Option<tokio::time::Instant>,
    ) -> bool {
        let held = match (self.held.get_mut(&peer), until) {
            (Some(held), _) => held,
            (None, Some(until)) => self.held.entry(peer).or_insert(Held {
                until,
                frames: Vec::new(),
                flusher: false,
            }),
            (None, None) => return false,
        };
        if let Some(until) = until {
            held.until = held.until.max(until);
        }
        for _ in 0..copies {
            held.frames.push((incarnation, frame.to_vec()));
        }
        true
    }

    /// Whether a task must be started to release the frames held for `peer` (once per hold).
    pub(crate) fn needs_flusher(&mut self, peer: SocketAddr) -> bool {
        self.held
            .get_mut(&peer)
            .is_some_and(|h| !std::mem::replace(&mut h.flusher, true))
    }

    pub(crate) fn held_until(&self, peer: SocketAddr) -> Option<tokio::time::Instant> {
        self.held.get(&peer).map(|h| h.until)
    }

    /// Ends the hold on `peer`, handing back its frames (with the incarnation each was sent to)
    /// in the order they were sent.
    pub(crate) fn release(&mut self, peer: SocketAddr) -> Vec<(Option<u64>, Vec<u8>)> {
        self.held
            .remove(&peer)
            .map(|h| h.frames)
            .unwrap_or_default()
    }

    pub(crate) fn is_cut(&self, peer: SocketAddr) -> bool {
        self.cut.contains(&peer)
    }

    pub(crate) fn cut(&mut self, peer: SocketAddr) {
        self.cut.insert(peer);
        self.held.remove(&peer);
    }

    pub(crate) fn heal(&mut self, peer: SocketAddr) {
        self.cut.remove(&peer);
    }

    pub(crate) fn verdict(&mut self, peer: SocketAddr) -> Verdict {
        if self.is_cut(peer) {
            return Verdict::Drop;
        }
        let Some(c) = self.config else {
            return Verdict::Send;
        };
        if self.rng.gen_bool(c.drop.clamp(0.0, 1.0)) {
            Verdict::Drop
        } else if self.rng.gen_bool(c.duplicate.clamp(0.0, 1.0)) {
            Verdict::Duplicate
        } else if c.max_delay_ms > 0 && self.rng.gen_bool(c.delay.clamp(0.0, 1.0)) {
            Verdict::Delay(Duration::from_millis(
                self.rng.gen_range(1..=c.max_delay_ms),
            ))
        } else {
            Verdict::Send
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(seed: u64) -> Vec<Verdict> {
        let config = FaultConfig {
            drop: 0.2,
            duplicate: 0.2,
            delay: 0.3,
            max_delay_ms: 50,
            ..FaultConfig::seeded(seed)
        };
        let mut f = Faults::new(Some(config));
        let peer = "127.0.0.1:1".parse().unwrap();
        (0..200).map(|_| f.verdict(peer)).collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_faults() {
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
        let v = run(42);
        for kind in [Verdict::Drop, Verdict::Duplicate, Verdict::Send] {
            assert!(v.contains(&kind), "{kind:?} never chosen");
        }
        assert!(v.iter().any(|x| matches!(x, Verdict::Delay(_))));
    }

    #[test]
    fn held_frames_keep_their_order_and_the_hold_extends() {
        let mut f = Faults::new(None);
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let t0 = tokio::time::Instant::now();
        assert!(
            !f.hold(peer, Some(1), b"a", 1, None),
            "nothing held: send now"
        );
        assert!(f.hold(peer, Some(1), b"b", 1, Some(t0 + Duration::from_millis(10))));
        assert!(f.needs_flusher(peer));
        assert!(!f.needs_flusher(peer), "one flusher per hold");
        assert!(
            f.hold(peer, Some(1), b"c", 2, None),
            "behind a hold: held too"
        );
        assert!(f.hold(peer, None, b"d", 1, Some(t0 + Duration::from_millis(30))));
        assert_eq!(f.held_until(peer), Some(t0 + Duration::from_millis(30)));
        assert!(f.active());
        let frames = vec![
            (Some(1), b"b".to_vec()),
            (Some(1), b"c".to_vec()),
            (Some(1), b"c".to_vec()),
            (None, b"d".to_vec()),
        ];
        assert_eq!(f.release(peer), frames);
        assert!(!f.hold(peer, Some(1), b"e", 1, None));
    }

    #[test]
    fn a_cut_peer_drops_everything_until_healed() {
        let mut f = Faults::new(None);
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let other: SocketAddr = "127.0.0.1:2".parse().unwrap();
        assert!(!f.active());
        f.cut(peer);
        assert!(f.active());
        assert_eq!(f.verdict(peer), Verdict::Drop);
        assert_eq!(f.verdict(other), Verdict::Send);
        f.heal(peer);
        assert_eq!(f.verdict(peer), Verdict::Send);
    }
}

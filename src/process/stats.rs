//! Counters of the process layer. Every dropped message is counted under its reason.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

macro_rules! counters {
    ($($name:ident: $doc:literal,)*) => {
        /// A snapshot of a node's counters.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct Stats {
            $(#[doc = $doc] pub $name: u64,)*
        }

        #[derive(Debug, Default)]
        pub(crate) struct Counters {
            $(pub(crate) $name: AtomicU64,)*
        }

        impl Counters {
            pub(crate) fn snapshot(&self) -> Stats {
                Stats { $($name: self.$name.load(Relaxed),)* }
            }
        }
    };
}

counters! {
    remote_sent: "Frames queued for a remote node.",
    remote_received: "Frames received and delivered to a local actor.",
    dropped_no_local_actor: "Local sends to a name or message type nobody registered, or to an actor that stopped.",
    dropped_unknown_actor: "Received frames for an actor this node does not have, or that stopped.",
    dropped_unknown_message: "Received frames whose message name the target actor does not handle.",
    dropped_decode: "Received frames whose envelope or payload failed to decode.",
    dropped_queue_full: "Frames dropped because the queue to a peer was over its bound.",
    dropped_stale_incarnation: "Frames queued for a peer that came back with a new incarnation.",
    dropped_unreachable: "Frames dropped after reconnecting to a peer failed for good.",
    dropped_encode: "Messages that could not be encoded (a name too long, say).",
    dropped_fault: "Frames dropped by fault injection or a cut link.",
    duplicated_fault: "Frames sent twice by fault injection.",
    delayed_fault: "Frames delayed by fault injection.",
    connections_accepted: "Connections accepted from peers.",
    connections_dialed: "Connections dialed to peers.",
    connections_closed: "Connections closed, for any reason.",
    closed_bad_frame: "Connections closed for a frame over the limit or a bad handshake.",
    exited_sent: "Exited notifications delivered to linking actors.",
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }
}

impl Stats {
    /// All frames and messages dropped, whatever the reason.
    pub fn dropped(&self) -> u64 {
        self.dropped_no_local_actor
            + self.dropped_unknown_actor
            + self.dropped_unknown_message
            + self.dropped_decode
            + self.dropped_queue_full
            + self.dropped_stale_incarnation
            + self.dropped_unreachable
            + self.dropped_encode
            + self.dropped_fault
    }
}

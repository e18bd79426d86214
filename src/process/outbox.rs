//! The frames waiting for one peer: pure bookkeeping, no sockets.
//!
//! Frames are appended as bytes. When the connection that drains them is lost, what is left is
//! *held* for the incarnation it was meant for; frames sent after that are meant for whoever answers
//! at the address next. When a connection comes up, held frames go first if the peer is the same
//! incarnation, and are dropped if it restarted in between.

use crate::codec::{CodecError, LEN_PREFIX_BYTES};

#[derive(Debug, Default)]
pub(crate) struct Queue {
    buf: Vec<u8>,
    frames: u64,
    held: Option<Held>,
}

#[derive(Debug)]
struct Held {
    incarnation: Option<u64>,
    buf: Vec<u8>,
    frames: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PushError {
    Full,
    TooLarge(usize),
    Encode(CodecError),
}

impl Queue {
    pub(crate) fn frames(&self) -> u64 {
        self.frames + self.held.as_ref().map_or(0, |h| h.frames)
    }

    fn bytes(&self) -> usize {
        self.buf.len() + self.held.as_ref().map_or(0, |h| h.buf.len())
    }

    /// Appends one frame written by `encode`. Returns whether the live buffer was empty before (the
    /// writer needs waking). On error nothing is appended.
    pub(crate) fn push_with<R>(
        &mut self,
        max_queued_bytes: usize,
        frame_limit_bytes: usize,
        encode: impl FnOnce(&mut Vec<u8>) -> Result<R, CodecError>,
    ) -> Result<bool, PushError> {
        if self.bytes() >= max_queued_bytes {
            return Err(PushError::Full);
        }
        let start = self.buf.len();
        if let Err(e) = encode(&mut self.buf) {
            self.buf.truncate(start);
            return Err(PushError::Encode(e));
        }
        let body = self.buf.len() - start - LEN_PREFIX_BYTES;
        if body > frame_limit_bytes {
            self.buf.truncate(start);
            return Err(PushError::TooLarge(body));
        }
        self.frames += 1;
        Ok(start == 0)
    }

    /// Hands the live frames to the writer (swapping buffers keeps both allocations).
    pub(crate) fn take(&mut self, spare: &mut Vec<u8>) {
        std::mem::swap(&mut self.buf, spare);
        self.buf.clear();
        self.frames = 0;
    }

    /// The connection to the peer (of `incarnation`, if known) is gone: hold what it did not write.
    pub(crate) fn hold(&mut self, incarnation: Option<u64>) {
        if self.frames == 0 || self.held.is_some() {
            // Held frames already wait for an earlier connection's incarnation; later frames join
            // the live buffer and go to whoever answers next.
            return;
        }
        let buf = std::mem::take(&mut self.buf);
        self.held = Some(Held {
            incarnation,
            buf,
            frames: std::mem::take(&mut self.frames),
        });
    }

    /// A connection to the peer of `incarnation` is up. Held frames go first if they were meant for
    /// it; otherwise they are dropped. Returns how many were dropped.
    pub(crate) fn resume(&mut self, incarnation: u64) -> u64 {
        let Some(held) = self.held.take() else {
            return 0;
        };
        if held.incarnation.is_some_and(|i| i != incarnation) {
            return held.frames;
        }
        let mut buf = held.buf;
        buf.extend_from_slice(&self.buf);
        self.buf = buf;
        self.frames += held.frames;
        0
    }

    /// Drops everything; returns how many frames.
    pub(crate) fn clear(&mut self) -> u64 {
        let n = self.frames();
        *self = Queue::default();
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::encode_frame;

    fn push(q: &mut Queue, n: u8) -> Result<bool, PushError> {
        q.push_with(1 << 20, 1024, |b| encode_frame(b, "a", "b", "m", &n))
    }

    fn drain(q: &mut Queue) -> Vec<u8> {
        let mut spare = Vec::new();
        q.take(&mut spare);
        // Each test frame ends with its one-byte payload.
        let mut out = Vec::new();
        let mut rest = &spare[..];
        while let Some(len) = crate::codec::frame_len(rest) {
            let end = LEN_PREFIX_BYTES + len;
            out.push(rest[end - 1]);
            rest = &rest[end..];
        }
        out
    }

    #[test]
    fn the_first_frame_wakes_the_writer() {
        let mut q = Queue::default();
        assert_eq!(push(&mut q, 1), Ok(true));
        assert_eq!(push(&mut q, 2), Ok(false));
        assert_eq!(drain(&mut q), vec![1, 2]);
        assert_eq!(push(&mut q, 3), Ok(true));
    }

    #[test]
    fn held_frames_go_first_to_the_same_incarnation() {
        let mut q = Queue::default();
        push(&mut q, 1).unwrap();
        q.hold(Some(7));
        push(&mut q, 2).unwrap();
        assert_eq!(q.frames(), 2);
        assert_eq!(q.resume(7), 0);
        assert_eq!(drain(&mut q), vec![1, 2]);
    }

    #[test]
    fn held_frames_are_dropped_for_a_new_incarnation_later_ones_are_not() {
        let mut q = Queue::default();
        push(&mut q, 1).unwrap();
        push(&mut q, 2).unwrap();
        q.hold(Some(7));
        push(&mut q, 3).unwrap();
        assert_eq!(q.resume(8), 2);
        assert_eq!(drain(&mut q), vec![3]);
    }

    #[test]
    fn frames_queued_before_any_connection_go_to_whoever_answers() {
        let mut q = Queue::default();
        push(&mut q, 1).unwrap();
        assert_eq!(q.resume(5), 0);
        q.hold(None);
        assert_eq!(q.resume(9), 0);
        assert_eq!(drain(&mut q), vec![1]);
    }

    #[test]
    fn bounds_and_errors_leave_the_queue_as_it_was() {
        let mut q = Queue::default();
        let full = q.push_with(10, 1024, |b| encode_frame(b, "a", "b", "m", &vec![0u8; 32]));
        assert_eq!(full, Ok(true));
        let over = q.push_with(10, 1024, |b| encode_frame(b, "a", "b", "m", &1u8));
        assert_eq!(over, Err(PushError::Full));
        assert_eq!(q.frames(), 1);
        let mut q = Queue::default();
        let big = q.push_with(1 << 20, 16, |b| {
            encode_frame(b, "a", "b", "m", &vec![0u8; 64])
        });
        assert!(matches!(big, Err(PushError::TooLarge(_))));
        let long = "x".repeat(300);
        let bad = q.push_with(1 << 20, 1024, |b| encode_frame(b, &long, "b", "m", &1u8));
        assert!(matches!(bad, Err(PushError::Encode(_))));
        assert_eq!(q.frames(), 0);
        assert_eq!(q.clear(), 0);
    }
}

//! The process layer: typed, location-transparent mailboxes over actix and TCP (meso's libprocess).
//!
//! # Layout
//! - [`upid`]: `name@ip:port`, the address of one actor.
//! - [`node`]: [`Node`], one per OS process: the registry of local actors, `send`, `link`.
//! - [`spawn`]: declaring an actor's messages and starting it (`Spawn`); `Process`, its send handle.
//! - `routes`: per-thread and per-connection caches of where messages go.
//! - `outbox`: the frames waiting for one peer, held across a reconnect per incarnation.
//! - `transport`: the TCP side: listener, one connection per peer, reader and batching writer,
//!   reconnects with jittered backoff.
//! - [`handshake`]: the hello each side sends first (protocol version, advertised address, incarnation).
//! - [`faults`]: seeded drop, duplicate, delay, cut and heal, for tests of the protocols above.
//! - [`stats`]: counters of what was sent, received and dropped, and why.
//!
//! What the layer promises (at-most-once, FIFO per sender and receiver, what a reconnect does) is
//! written in `docs/semantics.md`.

pub mod faults;
pub mod handshake;
pub mod node;
mod outbox;
mod routes;
pub mod spawn;
pub mod stats;
mod transport;
pub mod upid;

pub use faults::FaultConfig;
pub use node::{Node, NodeConfig, ProcessError};
pub use spawn::{Process, Spawn};
pub use stats::Stats;
pub use upid::{Upid, UpidError};

/// A message that can cross the wire: a plain serde type with a stable name.
pub trait WireMessage: serde::Serialize + serde::de::DeserializeOwned + Send + 'static {
    /// Stable name on the wire, like `meso.RegisterFramework`.
    const NAME: &'static str;
}

/// A message as an actor receives it: the sender's Upid and the typed value.
///
/// The sender of a remote message is the peer node of the connection it came over (the address
/// its handshake advertised), completed with the actor name its envelope gives. Peers are not yet
/// authenticated: the advertised address is taken on trust, so the layer is for a trusted network
/// until the handshake carries credentials (see `docs/semantics.md`).
#[derive(Debug)]
pub struct Incoming<M> {
    pub from: Upid,
    pub msg: M,
}

impl<M> actix::Message for Incoming<M> {
    type Result = ();
}

/// Sent to an actor that linked to `0` when the node of `0` disconnects, crashes or restarts, or
/// cannot be reached. Once per link: link again to hear again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exited(pub Upid);

impl actix::Message for Exited {
    type Result = ();
}

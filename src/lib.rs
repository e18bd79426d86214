//! meso: a cluster manager in the style of Apache Mesos, on an actor runtime in the style of libprocess.
//!
//! # Layout
//! - [`process`]: the libprocess layer. [`process::Upid`] names an actor as `name@ip:port`;
//!   [`process::Node`] (one per OS process) spawns named actix actors, delivers typed messages to local
//!   actors without serialization and to remote ones as length-prefixed frames over one TCP connection
//!   per peer, links actors to remote ones (`Exited`), and injects faults for tests.
//! - [`codec`]: the one place that knows the wire format (bincode 2.x and the frame layout).
//! - [`resources`]: Mesos resource strings, fixed-point scalars, ranges and sets.
//! - [`protocol`]: one struct per wire message, the ids, task states.
//! - [`allocator`]: DRF with decline filters; pure, no actors, no I/O.
//!
//! The roles (master, agent, scheduler and executor drivers) and the `meso` binary live in the
//! `meso-actors` crate under `actors/`.

pub mod allocator;
pub mod codec;
pub mod process;
pub mod protocol;
pub mod resources;

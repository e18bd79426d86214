//! The master: the actor and its pure core.
//!
//! # Layout
//! - [`actor`]: [`start_master`], the table of messages the master handles, the clock and timers.
//! - [`state`]: [`state::MasterState`], registration of frameworks and agents, their removal,
//!   allocation into offers; events in, messages out.
//! - `operations`: the task flows of `MasterState` (accept, decline, kill, status updates,
//!   acknowledgements, reconciliation).
//! - `inspect`: the books opened (used + offered + free per agent), answered to `InspectMaster`.
//! - [`book`]: outstanding offers. [`validation`]: what an accept launches. [`tasks`]: the task
//!   state machine.

pub mod actor;
mod agents;
pub mod book;
mod frameworks;
mod inspect;
mod operations;
pub mod registry;
pub mod state;
pub mod tasks;
pub mod validation;

#[cfg(test)]
mod state_duplicate_tests;
#[cfg(test)]
mod state_failover_tests;
#[cfg(test)]
mod state_field_tests;
#[cfg(test)]
mod state_tests;

pub use actor::{start_master, MasterConfig, MasterError};

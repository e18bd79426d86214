//! The roles of meso and the `meso` binary.
//!
//! # Layout
//! - [`master`]: the master actor and its pure core (offer book, accept validation, task tracker).
//! - [`agent`]: the agent actor and its pure pieces (resource detection, sandboxes, launcher).
//! - [`scheduler`]: the scheduler driver: the `Scheduler` trait and `SchedulerDriver` handle.
//! - [`executor`]: the executor driver (`Executor` trait) and the built-in command executor.
//! - [`local`]: a master and N agents in one process.
//! - [`cli`]: the `meso` command line (`master`, `agent`, `local`, `execute`, `executor`).

pub mod agent;
pub mod cli;
pub mod executor;
pub mod local;
pub mod master;
pub mod scheduler;

//! The executor side: the driver that connects an [`Executor`] to its agent, and the built-in
//! command executor (`meso executor`).
//!
//! # Layout
//! - [`driver`]: the [`Executor`] trait, the [`ExecutorDriver`] handle, [`run_executor`].
//! - [`env`]: what the agent tells an executor through its environment.
//! - [`command`]: the command executor, which runs one shell command as one task.

pub mod command;
pub mod driver;
pub mod env;

pub use command::run_command_executor;
pub use driver::{run_executor, Executor, ExecutorDriver};
pub use env::{EnvError, ExecutorEnv};

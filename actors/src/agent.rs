//! The agent: runs tasks for the master, each under an executor in its own process group, and
//! delivers their status updates reliably.
//!
//! # Layout
//! - [`actor`]: the agent actor, its handler table and its timers.
//! - [`state`]: pure bookkeeping of frameworks, executors and tasks.
//! - [`status_updates`]: the pure status update manager (ordered, acknowledged, retried).
//! - [`checkpoint`], [`recovery`]: what is written to disk, and taking it back after a restart.
//! - [`sandbox`], [`launcher`], [`resources_detect`]: disk layout, child processes, resources.

pub mod actor;
pub mod checkpoint;
pub mod launcher;
pub mod recovery;
pub mod resources_detect;
pub mod sandbox;
pub mod state;
pub mod status_updates;

use meso::process::{Node, ProcessError, Upid};
use meso::resources::Resources;
use std::path::PathBuf;

/// How an agent runs.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The actor name: `agent`, or `agent-1`, `agent-2`... for several agents on one node.
    pub name: String,
    pub master: Upid,
    /// Sandboxes and checkpoints go under it.
    pub work_dir: PathBuf,
    pub resources: Resources,
    pub attributes: Vec<(String, String)>,
    /// The `meso` binary, run as `<program> executor` for command tasks.
    pub executor_program: PathBuf,
    /// Default time between SIGTERM and SIGKILL when killing a task.
    pub kill_grace_ms: u64,
    /// How long executors wait for this agent to come back after losing it (Mesos's
    /// `--recovery_timeout`); then they kill their tasks and exit.
    pub recovery_timeout_ms: u64,
    pub hostname: String,
}

impl AgentConfig {
    pub fn new(
        master: Upid,
        work_dir: PathBuf,
        resources: Resources,
        executor_program: PathBuf,
    ) -> AgentConfig {
        AgentConfig {
            name: "agent".to_string(),
            master,
            work_dir,
            resources,
            attributes: Vec::new(),
            executor_program,
            kill_grace_ms: 3_000,
            recovery_timeout_ms: default_recovery_timeout_ms(),
            hostname: default_hostname(),
        }
    }
}

/// 15 minutes, or `MESO_RECOVERY_TIMEOUT_MS` from the environment when it is set (tests use it
/// so that executors they leave behind do not linger).
pub fn default_recovery_timeout_ms() -> u64 {
    std::env::var("MESO_RECOVERY_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(crate::executor::env::DEFAULT_RECOVERY_TIMEOUT_MS)
}

fn default_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("cannot start the agent actor: {0}")]
    Process(#[from] ProcessError),
    #[error("cannot use work directory {path}: {source}")]
    WorkDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Starts the agent actor `config.name` on `node`; it registers with `config.master` at once.
pub fn start_agent(node: &Node, config: AgentConfig) -> Result<Upid, AgentError> {
    actor::start(node, config, None)
}

/// Like [`start_agent`], with a receiver that is told when the agent actor has stopped (for
/// instance after the master sent `ShutdownAgent`), so that a `meso agent` process can exit.
pub fn start_agent_with_stop(
    node: &Node,
    config: AgentConfig,
) -> Result<(Upid, tokio::sync::oneshot::Receiver<()>), AgentError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let upid = actor::start(node, config, Some(tx))?;
    Ok((upid, rx))
}

//! The agent's pure pieces: resource detection, sandbox layout and checkpoint files, and the
//! process-group launcher.

pub mod launcher;
pub mod resources_detect;
pub mod sandbox;

use meso::process::{Node, Upid};
use meso::resources::Resources;
use std::path::PathBuf;

/// How an agent runs.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub name: String,
    pub master: Upid,
    pub work_dir: PathBuf,
    pub resources: Resources,
    pub attributes: Vec<(String, String)>,
    pub executor_program: PathBuf,
    pub kill_grace_ms: u64,
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
            kill_grace_ms: 3000,
            hostname: String::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Process(#[from] meso::process::ProcessError),
}

/// Starts the agent actor on `node`.
pub fn start_agent(_node: &Node, _config: AgentConfig) -> Result<Upid, AgentError> {
    todo!()
}

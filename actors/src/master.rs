//! The master's pure core: the offer book, accept validation and the task state machine.

pub mod book;
pub mod tasks;
pub mod validation;

use meso::process::{Node, Upid};
use std::path::PathBuf;

/// How a master runs.
#[derive(Debug, Clone)]
pub struct MasterConfig {
    pub allocation_interval_ms: u64,
    pub offer_timeout_ms: Option<u64>,
    pub work_dir: Option<PathBuf>,
}

impl Default for MasterConfig {
    fn default() -> MasterConfig {
        MasterConfig {
            allocation_interval_ms: 1000,
            offer_timeout_ms: None,
            work_dir: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    #[error(transparent)]
    Process(#[from] meso::process::ProcessError),
}

/// Starts the master actor, named `master`, on `node`.
pub fn start_master(_node: &Node, _config: MasterConfig) -> Result<Upid, MasterError> {
    todo!()
}

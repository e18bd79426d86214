//! The agent's pure pieces: resource detection, sandbox layout and checkpoint files, and the
//! process-group launcher.

pub mod launcher;
pub mod resources_detect;
pub mod sandbox;

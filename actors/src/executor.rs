//! (lands with its issue)

/// The `meso executor` subcommand: returns the process exit code.
pub fn run_command_executor() -> i32 {
    todo!()
}

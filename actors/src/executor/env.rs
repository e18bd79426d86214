//! The environment an agent gives an executor process.

use meso::process::Upid;
use meso::protocol::{AgentId, ExecutorId, FrameworkId};
use std::path::PathBuf;

/// Kill grace period when the agent gives none.
pub const DEFAULT_KILL_GRACE_MS: u64 = 3_000;
/// How long an executor waits for a lost agent to come back, unless `MESO_RECOVERY_TIMEOUT_MS`
/// says otherwise: 15 minutes, like Mesos' `recovery_timeout`.
pub const DEFAULT_RECOVERY_TIMEOUT_MS: u64 = 15 * 60 * 1000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvError {
    #[error("{0} is not set (an executor is started by an agent, which sets it)")]
    Missing(&'static str),
    #[error("{name} is not valid: {why}")]
    Invalid { name: &'static str, why: String },
}

/// What the agent sets: `MESO_AGENT_UPID`, `MESOS_AGENT_ID`, `MESOS_FRAMEWORK_ID`,
/// `MESOS_EXECUTOR_ID`, `MESOS_SANDBOX` (or `MESOS_DIRECTORY`) and `MESO_KILL_GRACE_MS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutorEnv {
    pub agent: Upid,
    pub agent_id: AgentId,
    pub framework_id: FrameworkId,
    pub executor_id: ExecutorId,
    pub sandbox: PathBuf,
    pub kill_grace_ms: u64,
    /// How long to wait for a lost agent to come back before shutting down.
    pub recovery_timeout_ms: u64,
}

impl ExecutorEnv {
    /// Reads this process's environment.
    pub fn from_env() -> Result<ExecutorEnv, EnvError> {
        ExecutorEnv::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `get` (a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<ExecutorEnv, EnvError> {
        let need = |name: &'static str| {
            get(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or(EnvError::Missing(name))
        };
        let agent = need("MESO_AGENT_UPID")?
            .parse::<Upid>()
            .map_err(|e| EnvError::Invalid {
                name: "MESO_AGENT_UPID",
                why: e.to_string(),
            })?;
        let sandbox = need("MESOS_SANDBOX").or_else(|_| need("MESOS_DIRECTORY"))?;
        let kill_grace_ms = match get("MESO_KILL_GRACE_MS") {
            None => DEFAULT_KILL_GRACE_MS,
            Some(v) => v.trim().parse().map_err(|_| EnvError::Invalid {
                name: "MESO_KILL_GRACE_MS",
                why: format!("`{v}` is not a number of milliseconds"),
            })?,
        };
        let recovery_timeout_ms = match get("MESO_RECOVERY_TIMEOUT_MS") {
            None => DEFAULT_RECOVERY_TIMEOUT_MS,
            Some(v) => v.trim().parse().map_err(|_| EnvError::Invalid {
                name: "MESO_RECOVERY_TIMEOUT_MS",
                why: format!("`{v}` is not a number of milliseconds"),
            })?,
        };
        Ok(ExecutorEnv {
            agent,
            agent_id: AgentId::new(need("MESOS_AGENT_ID")?),
            framework_id: FrameworkId::new(need("MESOS_FRAMEWORK_ID")?),
            executor_id: ExecutorId::new(need("MESOS_EXECUTOR_ID")?),
            sandbox: PathBuf::from(sandbox),
            kill_grace_ms,
            recovery_timeout_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn full() -> HashMap<&'static str, String> {
        [
            ("MESO_AGENT_UPID", "agent@127.0.0.1:5051"),
            ("MESOS_AGENT_ID", "a1"),
            ("MESOS_FRAMEWORK_ID", "f1"),
            ("MESOS_EXECUTOR_ID", "e1"),
            ("MESOS_SANDBOX", "/tmp/sb"),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_string()))
        .collect()
    }

    fn read(vars: &HashMap<&'static str, String>) -> Result<ExecutorEnv, EnvError> {
        ExecutorEnv::from_lookup(|k| vars.get(k).cloned())
    }

    #[test]
    fn a_complete_environment_reads() {
        let env = read(&full()).unwrap();
        assert_eq!(env.agent.to_string(), "agent@127.0.0.1:5051");
        assert_eq!(env.kill_grace_ms, DEFAULT_KILL_GRACE_MS);
        assert_eq!(env.recovery_timeout_ms, DEFAULT_RECOVERY_TIMEOUT_MS);
        let mut vars = full();
        vars.insert("MESO_RECOVERY_TIMEOUT_MS", "2500".into());
        assert_eq!(read(&vars).unwrap().recovery_timeout_ms, 2500);
        vars.insert("MESO_RECOVERY_TIMEOUT_MS", "later".into());
        assert!(read(&vars).is_err());
        assert_eq!(env.sandbox, PathBuf::from("/tmp/sb"));
    }

    #[test]
    fn missing_or_bad_variables_are_named() {
        let mut vars = full();
        vars.remove("MESOS_EXECUTOR_ID");
        assert_eq!(read(&vars), Err(EnvError::Missing("MESOS_EXECUTOR_ID")));
        let mut vars = full();
        vars.insert("MESO_AGENT_UPID", "garbage".into());
        assert!(matches!(
            read(&vars),
            Err(EnvError::Invalid {
                name: "MESO_AGENT_UPID",
                ..
            })
        ));
        let mut vars = full();
        vars.insert("MESO_KILL_GRACE_MS", "soon".into());
        assert!(matches!(read(&vars), Err(EnvError::Invalid { .. })));
        let mut vars = full();
        vars.remove("MESOS_SANDBOX");
        vars.insert("MESOS_DIRECTORY", "/tmp/d".into());
        assert_eq!(read(&vars).unwrap().sandbox, PathBuf::from("/tmp/d"));
    }
}

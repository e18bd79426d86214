//! The command executor (`meso executor`): runs its one task's command in its own process group,
//! reports STARTING, RUNNING and the end, and exits once the end is acknowledged (or after 5 s).

use super::driver::{run_executor, Executor, ExecutorDriver};
use crate::agent::launcher;
use meso::protocol::*;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long the executor waits for the acknowledgement of its terminal update before exiting.
pub const EXIT_AFTER_TERMINAL: Duration = Duration::from_secs(5);

struct Running {
    task_id: TaskId,
    pgid: i32,
    grace: Option<u64>,
    kill_requested: Arc<AtomicBool>,
    done: Arc<AtomicBool>,
}

/// Runs shell commands, one task per executor.
#[derive(Default)]
pub struct CommandExecutor {
    running: Option<Running>,
    launched: bool,
}

/// The terminal state and message for a command that ended with `status`.
pub fn outcome(status: &ExitStatus, kill_requested: bool) -> (TaskState, String) {
    match (status.code(), status.signal()) {
        (Some(0), _) => (TaskState::Finished, "command exited with status 0".into()),
        _ if kill_requested => (TaskState::Killed, "command killed".into()),
        (Some(code), _) => (TaskState::Failed, format!("exited with status {code}")),
        (None, Some(sig)) => (TaskState::Failed, format!("terminated by signal {sig}")),
        _ => (TaskState::Failed, "ended in an unknown way".into()),
    }
}

fn status(task_id: &TaskId, state: TaskState) -> TaskStatus {
    TaskStatus::new(task_id.clone(), state, 0)
}

fn fail(driver: &ExecutorDriver, task_id: &TaskId, message: String) {
    tracing::warn!(task = %task_id, "{message}");
    let s = status(task_id, TaskState::Failed)
        .with_reason(TaskStatusReason::CommandExecutorFailed)
        .with_message(message);
    driver.send_status_update(s);
    exit_later(driver);
}

fn exit_later(driver: &ExecutorDriver) {
    let driver = driver.clone();
    actix::spawn(async move {
        tokio::time::sleep(EXIT_AFTER_TERMINAL).await;
        // An agent that is away (restarting) gets the end when it is back.
        driver.stop_when_connected();
    });
}

impl CommandExecutor {
    fn start(&mut self, driver: &ExecutorDriver, task: TaskInfo, command: CommandInfo) {
        let task_id = task.task_id.clone();
        let mut cmd = match launcher::build_command(&command) {
            Ok(cmd) => cmd,
            Err(e) => return fail(driver, &task_id, format!("cannot run the command: {e}")),
        };
        let env = driver.env();
        cmd.current_dir(&env.sandbox)
            .env_remove("MESO_AGENT_UPID")
            .env("MESOS_SANDBOX", &env.sandbox)
            .env("MESOS_TASK_ID", task_id.as_str())
            .env("MESOS_AGENT_ID", env.agent_id.as_str())
            .env("MESOS_FRAMEWORK_ID", env.framework_id.as_str())
            .envs(command.environment.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .process_group(0);
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) => return fail(driver, &task_id, format!("cannot start the command: {e}")),
        };
        let Some(pgid) = child.id().and_then(|p| i32::try_from(p).ok()) else {
            return fail(driver, &task_id, "the command has no pid".to_string());
        };
        tracing::info!(task = %task_id, pgid, "command started: {}", command.value);
        driver.send_status_update(status(&task_id, TaskState::Running));
        let kill_requested = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicBool::new(false));
        self.running = Some(Running {
            task_id: task_id.clone(),
            pgid,
            grace: task.kill_grace_period_ms,
            kill_requested: kill_requested.clone(),
            done: done.clone(),
        });
        let driver = driver.clone();
        actix::spawn(async move {
            let update = match child.wait().await {
                Ok(exit) => {
                    let (state, message) = outcome(&exit, kill_requested.load(Ordering::SeqCst));
                    tracing::info!(task = %task_id, "{message}");
                    status(&task_id, state).with_message(message)
                }
                Err(e) => status(&task_id, TaskState::Failed)
                    .with_reason(TaskStatusReason::CommandExecutorFailed)
                    .with_message(format!("cannot wait for the command: {e}")),
            };
            done.store(true, Ordering::SeqCst);
            driver.send_status_update(update);
            exit_later(&driver);
        });
    }

    fn kill(&mut self, driver: &ExecutorDriver, task_id: &TaskId, grace: Option<Duration>) {
        let Some(running) = &self.running else {
            tracing::warn!(task = %task_id, "ignoring a kill: no task is running");
            return;
        };
        if running.task_id != *task_id || running.done.load(Ordering::SeqCst) {
            tracing::warn!(task = %task_id, "ignoring a kill: the task is not running");
            return;
        }
        if running.kill_requested.swap(true, Ordering::SeqCst) {
            return;
        }
        let grace = grace
            .or(running.grace.map(Duration::from_millis))
            .unwrap_or(driver.default_kill_grace());
        let pgid = running.pgid;
        tracing::info!(task = %task_id, pgid, ?grace, "killing the command");
        actix::spawn(async move {
            if let Err(e) = launcher::kill_group(pgid, grace).await {
                tracing::warn!("cannot kill process group {pgid}: {e}");
            }
        });
    }
}

impl Executor for CommandExecutor {
    fn registered(
        &mut self,
        _driver: &ExecutorDriver,
        executor_info: ExecutorInfo,
        _framework_info: FrameworkInfo,
        agent_info: AgentInfo,
    ) {
        tracing::info!(executor = %executor_info.executor_id, agent = %agent_info.hostname, "registered");
    }

    fn launch_task(&mut self, driver: &ExecutorDriver, task: TaskInfo) {
        let task_id = task.task_id.clone();
        if self.launched {
            let s = status(&task_id, TaskState::Failed)
                .with_reason(TaskStatusReason::CommandExecutorFailed)
                .with_message("the command executor runs a single task");
            driver.send_status_update(s);
            return;
        }
        self.launched = true;
        driver.send_status_update(status(&task_id, TaskState::Starting));
        match task.command.clone() {
            Some(command) => self.start(driver, task, command),
            None => fail(driver, &task_id, "the task has no command".to_string()),
        }
    }

    fn kill_task(&mut self, driver: &ExecutorDriver, task_id: TaskId) {
        self.kill(driver, &task_id, None);
    }

    fn kill_task_with_grace(
        &mut self,
        driver: &ExecutorDriver,
        task_id: TaskId,
        grace: Option<Duration>,
    ) {
        self.kill(driver, &task_id, grace);
    }

    fn acknowledged(&mut self, driver: &ExecutorDriver, status: &TaskStatus) {
        if status.state.is_terminal() {
            driver.stop();
        }
    }

    fn shutdown(&mut self, driver: &ExecutorDriver) {
        match &self.running {
            Some(r) if !r.done.load(Ordering::SeqCst) => {
                let task_id = r.task_id.clone();
                self.kill(driver, &task_id, None);
            }
            _ => driver.stop(),
        }
    }

    fn error(&mut self, _driver: &ExecutorDriver, message: String) {
        tracing::error!("{message}");
    }
}

/// The whole `meso executor` subcommand: returns the process exit code.
pub fn run_command_executor() -> i32 {
    run_executor(CommandExecutor::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_and_signals_map_to_states() {
        let code = |c: i32| ExitStatus::from_raw(c << 8);
        let signal = ExitStatus::from_raw;
        assert_eq!(outcome(&code(0), false).0, TaskState::Finished);
        assert_eq!(outcome(&code(0), true).0, TaskState::Finished);
        assert_eq!(
            outcome(&code(3), false),
            (TaskState::Failed, "exited with status 3".to_string())
        );
        assert_eq!(
            outcome(&signal(9), false),
            (TaskState::Failed, "terminated by signal 9".to_string())
        );
        assert_eq!(outcome(&signal(15), true).0, TaskState::Killed);
        assert_eq!(outcome(&code(143), true).0, TaskState::Killed);
    }
}

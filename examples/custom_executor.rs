//! A custom executor written against `meso_actors::executor::Executor`.
//!
//! Each task's `data` is read as whitespace-separated integers; the executor reports
//! TASK_RUNNING, then TASK_FINISHED with `sum = <total>` in the message (or TASK_FAILED when the
//! data is not a list of integers). It keeps running until the agent shuts it down.
//!
//! Build it with `cargo build --example custom_executor`, then have a framework launch tasks with
//! `TaskInfo.executor` set (and `TaskInfo.command` unset):
//!
//! ```text
//! ExecutorInfo {
//!     executor_id: ExecutorId::new("summer"),
//!     framework_id,
//!     command: CommandInfo::shell("/path/to/target/debug/examples/custom_executor"),
//!     resources: Resources::parse("cpus:0.1;mem:32")?,
//!     name: "summer".into(),
//! }
//! ```
//!
//! The agent starts it through `sh -c` in the sandbox, with the environment the driver reads
//! (`MESO_AGENT_UPID`, `MESOS_FRAMEWORK_ID`, `MESOS_EXECUTOR_ID`, ...); every task sent to the same
//! executor id reaches this one process.

use meso::protocol::{
    AgentInfo, ExecutorInfo, FrameworkInfo, TaskId, TaskInfo, TaskState, TaskStatus,
};
use meso_actors::executor::{run_executor, Executor, ExecutorDriver};

struct Summer;

fn sum(data: &[u8]) -> Result<i64, String> {
    let text = std::str::from_utf8(data).map_err(|_| "data is not UTF-8".to_string())?;
    text.split_whitespace().try_fold(0i64, |acc, word| {
        let n: i64 = word
            .parse()
            .map_err(|_| format!("`{word}` is not an integer"))?;
        acc.checked_add(n)
            .ok_or_else(|| "the sum overflows".to_string())
    })
}

impl Executor for Summer {
    fn registered(
        &mut self,
        _driver: &ExecutorDriver,
        executor_info: ExecutorInfo,
        framework_info: FrameworkInfo,
        _agent_info: AgentInfo,
    ) {
        eprintln!(
            "executor {} registered for framework {}",
            executor_info.executor_id, framework_info.name
        );
    }

    fn launch_task(&mut self, driver: &ExecutorDriver, task: TaskInfo) {
        let id = task.task_id.clone();
        driver.send_status_update(TaskStatus::new(id.clone(), TaskState::Running, 0));
        let end = match sum(&task.data) {
            Ok(total) => {
                TaskStatus::new(id, TaskState::Finished, 0).with_message(format!("sum = {total}"))
            }
            Err(why) => TaskStatus::new(id, TaskState::Failed, 0).with_message(why),
        };
        driver.send_status_update(end);
    }

    fn kill_task(&mut self, driver: &ExecutorDriver, task_id: TaskId) {
        // Tasks finish as soon as they start, so a kill finds nothing running.
        eprintln!("kill of {task_id}: nothing to kill");
        let _ = driver;
    }

    fn shutdown(&mut self, driver: &ExecutorDriver) {
        driver.stop();
    }

    fn error(&mut self, _driver: &ExecutorDriver, message: String) {
        eprintln!("executor error: {message}");
    }
}

fn main() {
    std::process::exit(run_executor(Summer));
}

//! The protocol: ids, task states, the descriptions frameworks, tasks and agents exchange, and one
//! plain serde struct per wire message (in [`messages`], re-exported here).
//!
//! Every type here is plain serde (no flattening, no tagging, nothing skipped) because the wire
//! format is bincode, which is not self-describing.

use crate::process::Upid;
use crate::resources::Resources;
use serde::{Deserialize, Serialize};
use std::fmt;

pub mod messages;
pub use messages::*;

#[cfg(test)]
mod tests;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub struct $name(String);

        impl $name {
            pub fn new(id: impl Into<String>) -> $name {
                $name(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> $name {
                $name(id.to_string())
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> $name {
                $name(id)
            }
        }
    };
}

id_type!(
    /// A framework, assigned by the master on first registration.
    FrameworkId
);
id_type!(
    /// An agent, assigned by the master on first registration.
    AgentId
);
id_type!(
    /// One offer, assigned by the master; unique for the master's lifetime.
    OfferId
);
id_type!(
    /// A task, chosen by its framework; unique within that framework.
    TaskId
);
id_type!(
    /// An executor, chosen by its framework; unique within that framework on one agent.
    ExecutorId
);

/// A fresh random (v4) uuid, as carried by status updates that need acknowledgement.
pub fn new_uuid() -> [u8; 16] {
    uuid::Uuid::new_v4().into_bytes()
}

/// The state of a task, as in Mesos.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TaskState {
    /// Accepted by the master, not yet running on the agent.
    Staging,
    /// The executor is starting the task.
    Starting,
    Running,
    /// Ended with success. Terminal.
    Finished,
    /// Ended with failure. Terminal.
    Failed,
    /// A kill is under way.
    Killing,
    /// Killed on request. Terminal.
    Killed,
    /// Invalid description; never launched. Terminal.
    Error,
    /// Lost (legacy, for frameworks that are not partition aware). Terminal.
    Lost,
    /// Never launched (partition aware). Terminal.
    Dropped,
    /// On an agent the master cannot reach; it may come back.
    Unreachable,
    /// Known to be gone for good (partition aware). Terminal.
    Gone,
    /// The master knows nothing about the task (reconciliation answer).
    Unknown,
}

impl TaskState {
    pub const ALL: [TaskState; 13] = [
        TaskState::Staging,
        TaskState::Starting,
        TaskState::Running,
        TaskState::Finished,
        TaskState::Failed,
        TaskState::Killing,
        TaskState::Killed,
        TaskState::Error,
        TaskState::Lost,
        TaskState::Dropped,
        TaskState::Unreachable,
        TaskState::Gone,
        TaskState::Unknown,
    ];

    /// Whether the task can never change state again (and its resources are free).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::Finished
                | TaskState::Failed
                | TaskState::Killed
                | TaskState::Error
                | TaskState::Lost
                | TaskState::Dropped
                | TaskState::Gone
        )
    }

    /// The Mesos spelling, like `TASK_RUNNING`.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Staging => "TASK_STAGING",
            TaskState::Starting => "TASK_STARTING",
            TaskState::Running => "TASK_RUNNING",
            TaskState::Finished => "TASK_FINISHED",
            TaskState::Failed => "TASK_FAILED",
            TaskState::Killing => "TASK_KILLING",
            TaskState::Killed => "TASK_KILLED",
            TaskState::Error => "TASK_ERROR",
            TaskState::Lost => "TASK_LOST",
            TaskState::Dropped => "TASK_DROPPED",
            TaskState::Unreachable => "TASK_UNREACHABLE",
            TaskState::Gone => "TASK_GONE",
            TaskState::Unknown => "TASK_UNKNOWN",
        }
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a task reached its state (a subset of Mesos' reasons, with plainer names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TaskStatusReason {
    /// The command executor could not run the command.
    CommandExecutorFailed,
    /// The task's executor exited.
    ExecutorTerminated,
    /// The executor did not register in time.
    ExecutorRegistrationTimeout,
    /// The executor did not reregister in time after an agent restart.
    ExecutorReregistrationTimeout,
    /// The executor unregistered or disconnected.
    ExecutorUnregistered,
    /// An accept named an offer that is unknown, used, another framework's, or from another agent.
    InvalidOffers,
    /// The task asks for more than what the offers hold.
    InvalidResources,
    /// The framework already has a task with this id.
    DuplicateTaskId,
    /// The task description is invalid (no command, empty command, no resources...).
    InvalidTask,
    /// A kill arrived before the task was launched.
    TaskKilledDuringLaunch,
    /// The agent was removed from the cluster.
    AgentRemoved,
    /// The agent disconnected from the master.
    AgentDisconnected,
    /// The agent restarted and the task did not survive.
    AgentRestarted,
    /// The agent is not known to the master.
    AgentUnknown,
    /// The framework was removed.
    FrameworkRemoved,
    /// Answer to an explicit or implicit reconciliation.
    Reconciliation,
    /// The container could not be launched.
    ContainerLaunchFailed,
    /// The container went over a resource limit.
    ContainerLimitation,
    /// The task is not known.
    TaskUnknown,
    /// The master disconnected from the agent or the framework.
    MasterDisconnected,
}

/// Who produced a status update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StatusSource {
    Master,
    Agent,
    Executor,
}

/// One observation of a task's state.
///
/// `uuid` is present on updates that must be acknowledged (reliable delivery through the agent)
/// and absent on answers to reconciliation and other updates generated by the master.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskStatus {
    pub task_id: TaskId,
    pub state: TaskState,
    pub reason: Option<TaskStatusReason>,
    pub message: String,
    pub agent_id: Option<AgentId>,
    pub executor_id: Option<ExecutorId>,
    pub uuid: Option<[u8; 16]>,
    pub timestamp_ms: u64,
    pub healthy: Option<bool>,
}

impl TaskStatus {
    /// A status with no reason, message, agent, executor, uuid or health.
    pub fn new(task_id: TaskId, state: TaskState, timestamp_ms: u64) -> TaskStatus {
        TaskStatus {
            task_id,
            state,
            reason: None,
            message: String::new(),
            agent_id: None,
            executor_id: None,
            uuid: None,
            timestamp_ms,
            healthy: None,
        }
    }

    pub fn with_reason(mut self, reason: TaskStatusReason) -> TaskStatus {
        self.reason = Some(reason);
        self
    }

    pub fn with_message(mut self, message: impl Into<String>) -> TaskStatus {
        self.message = message.into();
        self
    }

    pub fn with_agent(mut self, agent_id: AgentId) -> TaskStatus {
        self.agent_id = Some(agent_id);
        self
    }

    pub fn with_executor(mut self, executor_id: ExecutorId) -> TaskStatus {
        self.executor_id = Some(executor_id);
        self
    }

    /// Marks the status as needing acknowledgement, with a fresh uuid.
    pub fn reliable(mut self) -> TaskStatus {
        self.uuid = Some(new_uuid());
        self
    }
}

/// What a framework says about itself when registering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameworkInfo {
    pub name: String,
    pub user: String,
    /// The role offers are made for; `*` is the default role.
    pub role: String,
    /// How long the master keeps the framework's tasks after its scheduler disconnects.
    pub failover_timeout_s: f64,
    /// Whether agents checkpoint the framework's tasks so they survive an agent restart.
    pub checkpoint: bool,
    /// Whether the framework understands `Unreachable`, `Dropped` and `Gone`.
    pub partition_aware: bool,
    /// Set when reregistering, or when the framework picks its own id.
    pub id: Option<FrameworkId>,
    pub hostname: String,
}

impl FrameworkInfo {
    pub fn new(name: impl Into<String>, user: impl Into<String>) -> FrameworkInfo {
        FrameworkInfo {
            name: name.into(),
            user: user.into(),
            ..FrameworkInfo::default()
        }
    }
}

impl Default for FrameworkInfo {
    fn default() -> FrameworkInfo {
        FrameworkInfo {
            name: String::new(),
            user: String::new(),
            role: "*".to_string(),
            failover_timeout_s: 0.0,
            checkpoint: true,
            partition_aware: false,
            id: None,
            hostname: String::new(),
        }
    }
}

/// A command to run: through `sh -c` when `shell`, otherwise `value` is the program and
/// `arguments` its argv (including argv\[0\]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandInfo {
    pub shell: bool,
    pub value: String,
    pub arguments: Vec<String>,
    pub environment: Vec<(String, String)>,
}

impl CommandInfo {
    /// A command run through the shell.
    pub fn shell(value: impl Into<String>) -> CommandInfo {
        CommandInfo {
            shell: true,
            value: value.into(),
            arguments: Vec::new(),
            environment: Vec::new(),
        }
    }

    /// A program run directly with the given argv.
    pub fn exec(program: impl Into<String>, arguments: Vec<String>) -> CommandInfo {
        CommandInfo {
            shell: false,
            value: program.into(),
            arguments,
            environment: Vec::new(),
        }
    }
}

impl Default for CommandInfo {
    fn default() -> CommandInfo {
        CommandInfo::shell("")
    }
}

/// A custom executor, run by the agent, that runs a framework's tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutorInfo {
    pub executor_id: ExecutorId,
    pub framework_id: FrameworkId,
    pub command: CommandInfo,
    pub resources: Resources,
    pub name: String,
}

/// A task to launch: exactly one of `command` (run by the built-in command executor) or
/// `executor` (run by that custom executor) is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskInfo {
    pub name: String,
    pub task_id: TaskId,
    pub agent_id: AgentId,
    pub resources: Resources,
    pub command: Option<CommandInfo>,
    pub executor: Option<ExecutorInfo>,
    /// Opaque bytes handed to the executor.
    pub data: Vec<u8>,
    /// How long a kill waits between SIGTERM and SIGKILL; the agent's default when absent.
    pub kill_grace_period_ms: Option<u64>,
}

impl TaskInfo {
    /// A task run by the command executor.
    pub fn command(
        task_id: TaskId,
        agent_id: AgentId,
        resources: Resources,
        command: CommandInfo,
    ) -> TaskInfo {
        TaskInfo {
            name: task_id.as_str().to_string(),
            task_id,
            agent_id,
            resources,
            command: Some(command),
            executor: None,
            data: Vec::new(),
            kill_grace_period_ms: None,
        }
    }
}

/// Resources of one agent offered to one framework.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Offer {
    pub id: OfferId,
    pub framework_id: FrameworkId,
    pub agent_id: AgentId,
    pub hostname: String,
    pub resources: Resources,
    pub attributes: Vec<(String, String)>,
    pub agent_upid: Upid,
}

/// How long resources declined (or left unused by an accept) stay away from the framework.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Filters {
    pub refuse_seconds: f64,
}

impl Default for Filters {
    fn default() -> Filters {
        Filters {
            refuse_seconds: 5.0,
        }
    }
}

/// What a framework does with accepted offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Operation {
    Launch { tasks: Vec<TaskInfo> },
}

/// An agent's description of itself; `id` is set once the master assigned one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentInfo {
    pub id: Option<AgentId>,
    pub hostname: String,
    pub resources: Resources,
    pub attributes: Vec<(String, String)>,
    pub port: u16,
}

/// The master, as told to frameworks and agents on registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterInfo {
    /// Unique for each master run.
    pub id: String,
    pub upid: Upid,
}

/// A task as an agent reports it when reregistering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentTask {
    pub framework_id: FrameworkId,
    pub task: TaskInfo,
    pub state: TaskState,
    /// The latest status the agent knows, if any.
    pub status: Option<TaskStatus>,
}

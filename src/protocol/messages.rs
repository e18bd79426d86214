//! One struct per wire message. Each line of documentation says who sends it to whom.
//!
//! Every message implements [`WireMessage`] with the name `meso.<TypeName>`; all names are listed
//! in [`MESSAGE_NAMES`].

use super::*;
use crate::process::{Upid, WireMessage};

macro_rules! wire {
    ($($t:ident),* $(,)?) => {
        $(
            impl WireMessage for $t {
                const NAME: &'static str = concat!("meso.", stringify!($t));
            }
        )*

        /// The wire names of all messages of the protocol.
        pub const MESSAGE_NAMES: &[&str] = &[$(<$t as WireMessage>::NAME),*];
    };
}

// ---- scheduler <-> master ----

/// Scheduler -> master: first registration of a framework.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisterFramework {
    pub framework: FrameworkInfo,
}

/// Scheduler -> master: registration of a framework that has an id (`framework.id` is set);
/// `failover` when a new scheduler instance takes over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReregisterFramework {
    pub framework: FrameworkInfo,
    pub failover: bool,
}

/// Master -> scheduler: the framework is registered under `framework_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameworkRegistered {
    pub framework_id: FrameworkId,
    pub master_info: MasterInfo,
}

/// Master -> scheduler: the framework is reregistered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameworkReregistered {
    pub framework_id: FrameworkId,
    pub master_info: MasterInfo,
}

/// Scheduler -> master: the framework is done; its tasks are killed and it is removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnregisterFramework {
    pub framework_id: FrameworkId,
}

/// Scheduler -> master: stop sending offers; the framework stays registered until failover.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeactivateFramework {
    pub framework_id: FrameworkId,
}

/// Master -> scheduler: new offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceOffers {
    pub offers: Vec<Offer>,
}

/// Master -> scheduler: an offer is no longer valid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RescindOffer {
    pub offer_id: OfferId,
}

/// Scheduler -> master: use offers (all from one agent) for the given operations; what is left
/// unused is filtered from the framework as `filters` says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AcceptOffers {
    pub framework_id: FrameworkId,
    pub offer_ids: Vec<OfferId>,
    pub operations: Vec<Operation>,
    pub filters: Filters,
}

/// Scheduler -> master: give offers back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeclineOffers {
    pub framework_id: FrameworkId,
    pub offer_ids: Vec<OfferId>,
    pub filters: Filters,
}

/// Scheduler -> master: clear the framework's filters and resume offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviveOffers {
    pub framework_id: FrameworkId,
}

/// Scheduler -> master: send no more offers until revived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuppressOffers {
    pub framework_id: FrameworkId,
}

/// Scheduler -> master: kill a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KillTask {
    pub framework_id: FrameworkId,
    pub task_id: TaskId,
    pub agent_id: Option<AgentId>,
}

/// Scheduler -> master: send the latest state of these tasks (of all the framework's tasks when
/// empty).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReconcileTasks {
    pub framework_id: FrameworkId,
    pub statuses: Vec<(TaskId, Option<AgentId>)>,
}

/// Agent -> master -> scheduler (or master -> scheduler): a task changed state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusUpdate {
    pub framework_id: FrameworkId,
    pub status: TaskStatus,
    pub executor_id: Option<ExecutorId>,
    pub source: StatusSource,
}

/// Scheduler -> master -> agent: a status update with this uuid was received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusUpdateAcknowledgement {
    pub agent_id: AgentId,
    pub framework_id: FrameworkId,
    pub task_id: TaskId,
    pub uuid: [u8; 16],
}

/// Master -> scheduler: the framework is refused or removed, with why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameworkError {
    pub message: String,
}

/// Master -> scheduler: an agent is gone, with all its executors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentLost {
    pub agent_id: AgentId,
}

/// Agent -> master -> scheduler: an executor exited with `status` (a wait status).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutorExited {
    pub agent_id: AgentId,
    pub framework_id: FrameworkId,
    pub executor_id: ExecutorId,
    pub status: i32,
}

/// Executor -> agent -> master -> scheduler: opaque data from an executor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutorToFramework {
    pub framework_id: FrameworkId,
    pub executor_id: ExecutorId,
    pub agent_id: AgentId,
    pub data: Vec<u8>,
}

/// Scheduler -> master -> agent -> executor: opaque data for an executor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameworkToExecutor {
    pub framework_id: FrameworkId,
    pub executor_id: ExecutorId,
    pub agent_id: AgentId,
    pub data: Vec<u8>,
}

/// Master -> scheduler: the master is alive (sent periodically).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {}

// ---- agent <-> master ----

/// Agent -> master: first registration of an agent (`agent.id` is unset).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisterAgent {
    pub agent: AgentInfo,
    pub version: String,
}

/// Agent -> master: registration of an agent that has an id, with what it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReregisterAgent {
    pub agent: AgentInfo,
    pub version: String,
    pub tasks: Vec<AgentTask>,
    pub executors: Vec<ExecutorInfo>,
    /// The frameworks of those tasks and executors (with their ids set).
    pub frameworks: Vec<FrameworkInfo>,
}

/// Master -> agent: the agent is registered under `agent_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRegistered {
    pub agent_id: AgentId,
    pub master_info: MasterInfo,
}

/// Master -> agent: the agent is reregistered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentReregistered {
    pub agent_id: AgentId,
    pub master_info: MasterInfo,
}

/// Agent -> master: the agent is leaving for good; its tasks are lost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnregisterAgent {
    pub agent_id: AgentId,
}

/// Master -> agent: health check; `connected` says whether the master considers it registered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ping {
    pub connected: bool,
}

/// Agent -> master: answer to [`Ping`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pong {}

/// Master -> agent: run a task for a framework whose scheduler is `scheduler`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunTask {
    pub framework: FrameworkInfo,
    pub framework_id: FrameworkId,
    pub scheduler: Upid,
    pub task: TaskInfo,
}

/// Master -> agent: kill a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KillTaskOnAgent {
    pub framework_id: FrameworkId,
    pub task_id: TaskId,
    pub kill_grace_period_ms: Option<u64>,
}

/// Master -> agent: kill all of a framework's executors and tasks and forget it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShutdownFramework {
    pub framework_id: FrameworkId,
}

/// Master -> agent, or agent -> executor: shut this executor down (killing its tasks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShutdownExecutor {
    pub framework_id: FrameworkId,
    pub executor_id: ExecutorId,
}

/// Master -> agent: the agent is removed from the cluster and must stop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShutdownAgent {
    pub message: String,
}

/// Master -> agent: the scheduler of a framework moved to a new address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateFramework {
    pub framework_id: FrameworkId,
    pub scheduler: Upid,
}

/// Anyone -> master: how are your books? Answered with `MasterInspection`, for at most
/// `max_agents` agents from the `first_agent`-th on (in agent id order): a frame is capped, and the
/// books of tens of thousands of agents are not, so a large cluster is read in pages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InspectMaster {
    pub first_agent: u64,
    pub max_agents: u64,
}

impl InspectMaster {
    /// Every agent's account in one answer (fine for clusters of a few thousand agents).
    pub fn all() -> InspectMaster {
        InspectMaster {
            first_agent: 0,
            max_agents: u64::MAX,
        }
    }
}

/// What one agent's resources are doing, as the master sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentAccount {
    pub agent_id: AgentId,
    pub total: Resources,
    /// Held by live tasks and executors.
    pub used: Resources,
    /// In outstanding offers.
    pub offered: Resources,
    /// Neither: available to the allocator.
    pub free: Resources,
}

/// Master -> whoever asked: per agent, used + offered + free, and every way that fails to add up
/// to the agent's total (empty when the books balance).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MasterInspection {
    /// The page asked for.
    pub agents: Vec<AgentAccount>,
    /// How many agents the master has in all.
    pub agents_total: u64,
    /// Every way the books of this page (and the allocator's, as a whole) fail to balance.
    pub problems: Vec<String>,
}

// ---- executor <-> agent ----

/// Executor -> agent: the executor started and is ready for tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisterExecutor {
    pub framework_id: FrameworkId,
    pub executor_id: ExecutorId,
}

/// Agent -> executor: registration accepted, with everything the executor needs to know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutorRegistered {
    pub executor_info: ExecutorInfo,
    pub framework_id: FrameworkId,
    pub framework_info: FrameworkInfo,
    pub agent_id: AgentId,
    pub agent_info: AgentInfo,
}

/// Agent -> executor: the agent restarted; reregister.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReconnectExecutor {
    pub agent_id: AgentId,
}

/// Executor -> agent: reregistration after an agent restart, with the executor's tasks and its
/// unacknowledged updates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReregisterExecutor {
    pub framework_id: FrameworkId,
    pub executor_id: ExecutorId,
    pub tasks: Vec<TaskInfo>,
    pub updates: Vec<TaskStatus>,
}

/// Agent -> executor: reregistration accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutorReregistered {
    pub agent_id: AgentId,
    pub agent_info: AgentInfo,
}

/// Agent -> executor: launch a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaunchTask {
    pub framework_id: FrameworkId,
    pub task: TaskInfo,
}

/// Agent -> executor: kill a task, waiting up to the grace period between SIGTERM and SIGKILL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KillTaskInExecutor {
    pub framework_id: FrameworkId,
    pub task_id: TaskId,
    pub kill_grace_period_ms: Option<u64>,
}

/// Executor -> agent: a task changed state; `status.uuid` is set and must be acknowledged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutorStatusUpdate {
    pub framework_id: FrameworkId,
    pub executor_id: ExecutorId,
    pub status: TaskStatus,
}

/// Agent -> executor: the update with this uuid is safely recorded by the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutorStatusAck {
    pub framework_id: FrameworkId,
    pub task_id: TaskId,
    pub uuid: [u8; 16],
}

wire!(
    RegisterFramework,
    ReregisterFramework,
    FrameworkRegistered,
    FrameworkReregistered,
    UnregisterFramework,
    DeactivateFramework,
    ResourceOffers,
    RescindOffer,
    AcceptOffers,
    DeclineOffers,
    ReviveOffers,
    SuppressOffers,
    KillTask,
    ReconcileTasks,
    StatusUpdate,
    StatusUpdateAcknowledgement,
    FrameworkError,
    AgentLost,
    ExecutorExited,
    ExecutorToFramework,
    FrameworkToExecutor,
    Heartbeat,
    RegisterAgent,
    ReregisterAgent,
    AgentRegistered,
    AgentReregistered,
    UnregisterAgent,
    Ping,
    Pong,
    RunTask,
    KillTaskOnAgent,
    ShutdownFramework,
    ShutdownExecutor,
    ShutdownAgent,
    UpdateFramework,
    InspectMaster,
    MasterInspection,
    RegisterExecutor,
    ExecutorRegistered,
    ReconnectExecutor,
    ReregisterExecutor,
    ExecutorReregistered,
    LaunchTask,
    KillTaskInExecutor,
    ExecutorStatusUpdate,
    ExecutorStatusAck,
);

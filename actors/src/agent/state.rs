//! The agent's bookkeeping of frameworks, executors and tasks, without processes or messages.
//!
//! Decisions come back as values: which executor to launch, which tasks to hand an executor that
//! registered, which status updates the agent itself must make (TASK_KILLED for a task killed
//! before its executor registered, TASK_FAILED for tasks whose executor died). A task gets at
//! most one terminal state: once one is recorded, the agent never makes another.

use meso::process::Upid;
use meso::protocol::{
    AgentId, AgentTask, CommandInfo, ExecutorId, ExecutorInfo, FrameworkId, FrameworkInfo, TaskId,
    TaskInfo, TaskState, TaskStatus, TaskStatusReason,
};
use meso::resources::Resources;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::{Path, PathBuf};

pub type ExecutorKey = (FrameworkId, ExecutorId);
pub type TaskKey = (FrameworkId, TaskId);

/// How many ended or killed-while-unknown tasks the agent remembers, to recognise a
/// `RunTask` or `KillTaskOnAgent` that the network delivered late or twice.
pub const RECENT_TASKS: usize = 4096;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StateError {
    #[error("task {0} must have exactly one of a command and an executor")]
    InvalidTask(TaskId),
    #[error("task {0} of framework {1} is known already")]
    DuplicateTask(TaskId, FrameworkId),
    #[error("executor {0} of framework {1} is not known")]
    UnknownExecutor(ExecutorId, FrameworkId),
    #[error("executor {0} registered already from {1}")]
    AlreadyRegistered(ExecutorId, Upid),
    #[error("task {0} of framework {1} is not known")]
    UnknownTask(TaskId, FrameworkId),
    #[error("task {0} reached a terminal state already")]
    AlreadyTerminal(TaskId),
    #[error("task {0} does not belong to executor {1}")]
    WrongExecutor(TaskId, ExecutorId),
    #[error("task {0} of framework {1} ended already on this agent")]
    Ended(TaskId, FrameworkId),
    #[error("task {0} of framework {1} was killed before it arrived")]
    KilledBeforeArrival(TaskId, FrameworkId),
}

#[derive(Debug, Clone)]
pub struct FrameworkRecord {
    pub info: FrameworkInfo,
    pub scheduler: Upid,
}

#[derive(Debug, Clone)]
pub struct ExecutorRecord {
    pub info: ExecutorInfo,
    /// Set once it registered.
    pub upid: Option<Upid>,
    /// Set once its process started: its pid, which is also its session and group id.
    pub pgid: Option<i32>,
    pub sandbox: Option<PathBuf>,
    /// Tasks not yet sent to it (it has not registered).
    pub queued: Vec<TaskInfo>,
    /// Every task it was given that the agent still tracks.
    pub tasks: BTreeSet<TaskId>,
    /// The run of this executor (its sandbox and checkpoints are named after it).
    pub run_id: String,
    /// Taken back from checkpoints after an agent restart: not a child of this agent.
    pub recovered: bool,
}

#[derive(Debug, Clone)]
pub struct TaskRecord {
    pub task: TaskInfo,
    pub executor_id: ExecutorId,
    /// The run of its executor.
    pub run_id: String,
    pub state: TaskState,
    /// The uuid of its terminal update, once there is one.
    pub terminal_uuid: Option<[u8; 16]>,
    pub latest: Option<TaskStatus>,
    /// A kill was passed on to its executor already.
    pub kill_sent: bool,
}

/// What to do with a task that arrived in `RunTask`.
#[derive(Debug, Clone, PartialEq)]
pub enum RunOutcome {
    /// Start this new executor; the task waits for it to register.
    Launch(ExecutorInfo),
    /// The executor is starting; the task waits for it to register.
    Queued,
    /// The executor is registered at this Upid: send it the task.
    Send(Upid),
}

/// What a kill request comes to.
#[derive(Debug, Clone, PartialEq)]
pub enum KillOutcome {
    /// The agent never had the task (its `RunTask` was lost or is late): report `status`
    /// (TASK_LOST, or TASK_DROPPED for a partition-aware framework); a later `RunTask` for it
    /// is refused.
    UnknownTask {
        status: TaskStatus,
    },
    /// The task ended, or is being killed, or was answered as unknown already: nothing to do.
    AlreadyTerminal,
    AlreadyKilling,
    /// The task never reached its executor: report `status` (TASK_KILLED). When the executor has
    /// nothing else left to run, `kill_group` is the process group to kill.
    KilledBeforeLaunch {
        status: TaskStatus,
        executor: ExecutorKey,
        kill_group: Option<i32>,
    },
    /// Ask the executor at this Upid to kill it.
    AskExecutor {
        executor: ExecutorKey,
        upid: Upid,
    },
}

/// What the agent remembers of a task it no longer tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recent {
    /// It ended and its terminal update was acknowledged.
    Ended,
    /// A kill came while the agent did not know it; it was reported ended.
    KilledUnknown,
}

/// The last [`RECENT_TASKS`] tasks the agent stopped tracking, oldest forgotten first.
#[derive(Debug, Default)]
struct RecentTasks {
    kinds: HashMap<TaskKey, Recent>,
    order: VecDeque<TaskKey>,
}

impl RecentTasks {
    fn get(&self, key: &TaskKey) -> Option<Recent> {
        self.kinds.get(key).copied()
    }

    fn remember(&mut self, key: TaskKey, kind: Recent) {
        if self.kinds.insert(key.clone(), kind).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > RECENT_TASKS {
            if let Some(old) = self.order.pop_front() {
                self.kinds.remove(&old);
            }
        }
    }
}

/// Frameworks, executors and tasks of one agent.
#[derive(Debug, Default)]
pub struct AgentState {
    pub agent_id: Option<AgentId>,
    frameworks: HashMap<FrameworkId, FrameworkRecord>,
    executors: HashMap<ExecutorKey, ExecutorRecord>,
    tasks: HashMap<TaskKey, TaskRecord>,
    recent: RecentTasks,
}

/// The executor that runs command tasks: `<program> executor`, one per task, with the task's id.
pub fn command_executor_info(
    program: &Path,
    framework_id: &FrameworkId,
    task: &TaskInfo,
) -> ExecutorInfo {
    let program = program.display().to_string();
    ExecutorInfo {
        executor_id: ExecutorId::new(task.task_id.as_str()),
        framework_id: framework_id.clone(),
        command: CommandInfo::exec(program.clone(), vec![program, "executor".to_string()]),
        resources: Resources::new(),
        name: format!("command executor for {}", task.task_id),
    }
}

impl AgentState {
    pub fn new() -> AgentState {
        AgentState::default()
    }

    /// Points a known framework at its new scheduler; returns its info.
    pub fn update_scheduler(&mut self, id: &FrameworkId, scheduler: Upid) -> Option<FrameworkInfo> {
        let record = self.frameworks.get_mut(id)?;
        record.scheduler = scheduler;
        Some(record.info.clone())
    }

    pub fn framework(&self, id: &FrameworkId) -> Option<&FrameworkRecord> {
        self.frameworks.get(id)
    }

    pub fn executor(&self, key: &ExecutorKey) -> Option<&ExecutorRecord> {
        self.executors.get(key)
    }

    pub fn task(&self, key: &TaskKey) -> Option<&TaskRecord> {
        self.tasks.get(key)
    }

    pub fn executors(&self) -> impl Iterator<Item = (&ExecutorKey, &ExecutorRecord)> {
        self.executors.iter()
    }

    /// Takes a task from `RunTask`.
    pub fn run_task(
        &mut self,
        framework: FrameworkInfo,
        framework_id: FrameworkId,
        scheduler: Upid,
        task: TaskInfo,
        executor_program: &Path,
        new_run_id: &str,
    ) -> Result<RunOutcome, StateError> {
        let info = match (&task.command, &task.executor) {
            (Some(_), None) => command_executor_info(executor_program, &framework_id, &task),
            (None, Some(info)) => {
                let mut info = info.clone();
                info.framework_id = framework_id.clone();
                info
            }
            _ => return Err(StateError::InvalidTask(task.task_id.clone())),
        };
        let task_key = (framework_id.clone(), task.task_id.clone());
        if self.tasks.contains_key(&task_key) {
            return Err(StateError::DuplicateTask(task.task_id, framework_id));
        }
        match self.recent.get(&task_key) {
            Some(Recent::Ended) => return Err(StateError::Ended(task.task_id, framework_id)),
            Some(Recent::KilledUnknown) => {
                return Err(StateError::KilledBeforeArrival(task.task_id, framework_id))
            }
            None => {}
        }
        let key = (framework_id.clone(), info.executor_id.clone());
        if task.command.is_some() && self.executors.contains_key(&key) {
            // A command executor is named after its one task.
            return Err(StateError::DuplicateTask(task.task_id, framework_id));
        }
        self.frameworks.insert(
            framework_id.clone(),
            FrameworkRecord {
                info: framework,
                scheduler,
            },
        );
        let run_id = self
            .executors
            .get(&key)
            .map_or(new_run_id, |ex| ex.run_id.as_str())
            .to_string();
        self.tasks.insert(
            task_key,
            TaskRecord {
                task: task.clone(),
                executor_id: info.executor_id.clone(),
                run_id,
                state: TaskState::Staging,
                terminal_uuid: None,
                latest: None,
                kill_sent: false,
            },
        );
        let outcome = match self.executors.get_mut(&key) {
            Some(ex) => {
                ex.tasks.insert(task.task_id.clone());
                match &ex.upid {
                    Some(upid) => RunOutcome::Send(upid.clone()),
                    None => {
                        ex.queued.push(task);
                        RunOutcome::Queued
                    }
                }
            }
            None => {
                let mut tasks = BTreeSet::new();
                tasks.insert(task.task_id.clone());
                self.executors.insert(
                    key,
                    ExecutorRecord {
                        info: info.clone(),
                        upid: None,
                        pgid: None,
                        sandbox: None,
                        queued: vec![task],
                        tasks,
                        run_id: new_run_id.to_string(),
                        recovered: false,
                    },
                );
                RunOutcome::Launch(info)
            }
        };
        Ok(outcome)
    }

    /// The executor's process started.
    pub fn launched(&mut self, key: &ExecutorKey, pgid: i32, sandbox: PathBuf) {
        if let Some(ex) = self.executors.get_mut(key) {
            ex.pgid = Some(pgid);
            ex.sandbox = Some(sandbox);
        }
    }

    /// The executor registered from `upid`: returns the tasks to send it. A repeated registration
    /// from the same Upid (the answer was lost) is accepted and sends nothing new.
    pub fn register_executor(
        &mut self,
        key: &ExecutorKey,
        upid: Upid,
    ) -> Result<Vec<TaskInfo>, StateError> {
        let ex = self
            .executors
            .get_mut(key)
            .ok_or_else(|| StateError::UnknownExecutor(key.1.clone(), key.0.clone()))?;
        match &ex.upid {
            Some(known) if *known != upid => {
                Err(StateError::AlreadyRegistered(key.1.clone(), known.clone()))
            }
            _ => {
                ex.upid = Some(upid);
                Ok(std::mem::take(&mut ex.queued))
            }
        }
    }

    /// Records a status update of a task (from its executor when `executor` is set). Refused
    /// after a terminal state, unless it is that same terminal update again.
    pub fn record_update(
        &mut self,
        framework_id: &FrameworkId,
        executor: Option<&ExecutorId>,
        status: &TaskStatus,
    ) -> Result<(), StateError> {
        let key = (framework_id.clone(), status.task_id.clone());
        let task = self
            .tasks
            .get_mut(&key)
            .ok_or_else(|| StateError::UnknownTask(key.1.clone(), key.0.clone()))?;
        if let Some(ex) = executor {
            if *ex != task.executor_id {
                return Err(StateError::WrongExecutor(key.1, ex.clone()));
            }
        }
        if let Some(uuid) = task.terminal_uuid {
            return if status.uuid == Some(uuid) {
                Ok(())
            } else {
                Err(StateError::AlreadyTerminal(key.1))
            };
        }
        task.state = status.state;
        task.latest = Some(status.clone());
        if status.state.is_terminal() {
            task.terminal_uuid = Some(status.uuid.unwrap_or([0; 16]));
        }
        Ok(())
    }

    fn agent_status(
        &self,
        task_id: TaskId,
        executor_id: ExecutorId,
        state: TaskState,
        reason: TaskStatusReason,
        message: String,
        now_ms: u64,
    ) -> TaskStatus {
        let mut status = TaskStatus::new(task_id, state, now_ms)
            .with_reason(reason)
            .with_message(message)
            .with_executor(executor_id)
            .reliable();
        status.agent_id = self.agent_id.clone();
        status
    }

    /// Makes and records an agent-made terminal update, unless the task has a terminal state.
    fn make_terminal(
        &mut self,
        key: &TaskKey,
        state: TaskState,
        reason: TaskStatusReason,
        message: String,
        now_ms: u64,
    ) -> Option<TaskStatus> {
        let task = self.tasks.get(key)?;
        if task.terminal_uuid.is_some() {
            return None;
        }
        let status = self.agent_status(
            key.1.clone(),
            task.executor_id.clone(),
            state,
            reason,
            message,
            now_ms,
        );
        self.record_update(&key.0, None, &status).ok()?;
        Some(status)
    }

    fn live_tasks(&self, framework_id: &FrameworkId, ex: &ExecutorRecord) -> usize {
        ex.tasks
            .iter()
            .filter(|t| {
                self.tasks
                    .get(&(framework_id.clone(), (*t).clone()))
                    .is_some_and(|r| r.terminal_uuid.is_none())
            })
            .count()
    }

    /// A kill of a task the agent does not track: unless it ended here lately or was answered
    /// already, it is remembered and reported ended (as a Mesos agent does, so that the master
    /// does not keep it staging forever).
    fn kill_unknown(&mut self, key: &TaskKey, now_ms: u64) -> KillOutcome {
        if self.recent.get(key).is_some() {
            return KillOutcome::AlreadyTerminal;
        }
        self.recent.remember(key.clone(), Recent::KilledUnknown);
        let partition_aware = self
            .frameworks
            .get(&key.0)
            .is_some_and(|f| f.info.partition_aware);
        let state = if partition_aware {
            TaskState::Dropped
        } else {
            TaskState::Lost
        };
        let mut status = TaskStatus::new(key.1.clone(), state, now_ms)
            .with_reason(TaskStatusReason::TaskUnknown)
            .with_message("task unknown to the agent".to_string())
            .reliable();
        status.agent_id = self.agent_id.clone();
        KillOutcome::UnknownTask { status }
    }

    /// A kill request from the master.
    pub fn kill_task(&mut self, key: &TaskKey, now_ms: u64) -> KillOutcome {
        let Some(task) = self.tasks.get_mut(key) else {
            return self.kill_unknown(key, now_ms);
        };
        if task.terminal_uuid.is_some() {
            return KillOutcome::AlreadyTerminal;
        }
        if task.kill_sent {
            return KillOutcome::AlreadyKilling;
        }
        let ex_key = (key.0.clone(), task.executor_id.clone());
        let Some(ex) = self.executors.get_mut(&ex_key) else {
            return KillOutcome::AlreadyTerminal;
        };
        if let Some(upid) = &ex.upid {
            task.kill_sent = true;
            return KillOutcome::AskExecutor {
                executor: ex_key,
                upid: upid.clone(),
            };
        }
        ex.queued.retain(|t| t.task_id != key.1);
        let Some(status) = self.make_terminal(
            key,
            TaskState::Killed,
            TaskStatusReason::TaskKilledDuringLaunch,
            "killed before its executor registered".to_string(),
            now_ms,
        ) else {
            return KillOutcome::AlreadyTerminal;
        };
        let ex = &self.executors[&ex_key];
        let kill_group = match self.live_tasks(&key.0, ex) {
            0 => ex.pgid,
            _ => None,
        };
        KillOutcome::KilledBeforeLaunch {
            status,
            executor: ex_key,
            kill_group,
        }
    }

    /// The executor did not report a terminal state for a task it was asked to kill: the agent
    /// reports TASK_KILLED itself and returns it with the executor's process group.
    pub fn kill_timed_out(&mut self, key: &TaskKey, now_ms: u64) -> Option<(TaskStatus, i32)> {
        let ex_id = self.tasks.get(key)?.executor_id.clone();
        let pgid = self.executors.get(&(key.0.clone(), ex_id))?.pgid?;
        let status = self.make_terminal(
            key,
            TaskState::Killed,
            TaskStatusReason::ExecutorTerminated,
            "the executor did not kill the task in time; its processes were killed".to_string(),
            now_ms,
        )?;
        Some((status, pgid))
    }

    /// The executor's process ended (`how` says how, like `exited with status 1`): it is
    /// forgotten, and every task of it without a terminal state gets TASK_FAILED.
    pub fn executor_exited(
        &mut self,
        key: &ExecutorKey,
        how: &str,
        now_ms: u64,
    ) -> Option<(ExecutorRecord, Vec<TaskStatus>)> {
        self.executor_ended(
            key,
            TaskState::Failed,
            TaskStatusReason::ExecutorTerminated,
            how,
            now_ms,
        )
    }

    /// Like [`AgentState::executor_exited`], with the state and reason given to unfinished
    /// tasks (TASK_LOST with AgentRestarted for an executor killed because the agent restarted).
    pub fn executor_ended(
        &mut self,
        key: &ExecutorKey,
        state: TaskState,
        reason: TaskStatusReason,
        how: &str,
        now_ms: u64,
    ) -> Option<(ExecutorRecord, Vec<TaskStatus>)> {
        let ex = self.executors.remove(key)?;
        let mut statuses = Vec::new();
        for task_id in &ex.tasks {
            let task_key = (key.0.clone(), task_id.clone());
            if let Some(status) = self.make_terminal(
                &task_key,
                state,
                reason,
                format!("executor {} {how}", key.1),
                now_ms,
            ) {
                statuses.push(status);
            }
        }
        Some((ex, statuses))
    }

    /// Forgets a task whose terminal update was acknowledged; `false` if it is not terminal.
    pub fn forget_task(&mut self, key: &TaskKey) -> bool {
        match self.tasks.get(key) {
            Some(t) if t.terminal_uuid.is_some() => {}
            _ => return false,
        }
        let Some(task) = self.tasks.remove(key) else {
            return false;
        };
        self.recent.remember(key.clone(), Recent::Ended);
        if let Some(ex) = self.executors.get_mut(&(key.0.clone(), task.executor_id)) {
            ex.tasks.remove(&key.1);
        }
        true
    }

    /// Forgets a framework with its tasks and executors, returning the process groups of its
    /// executors.
    pub fn remove_framework(&mut self, framework_id: &FrameworkId) -> Vec<i32> {
        self.frameworks.remove(framework_id);
        let gone: Vec<TaskKey> = self
            .tasks
            .keys()
            .filter(|(fw, _)| fw == framework_id)
            .cloned()
            .collect();
        for key in gone {
            self.tasks.remove(&key);
            // A late RunTask of a framework shut down must not start anything.
            self.recent.remember(key, Recent::Ended);
        }
        let mut groups = Vec::new();
        self.executors.retain(|(fw, _), ex| {
            if fw == framework_id {
                groups.extend(ex.pgid);
                false
            } else {
                true
            }
        });
        groups
    }

    /// Takes back a framework from checkpoints.
    pub fn recover_framework(&mut self, id: FrameworkId, info: FrameworkInfo, scheduler: Upid) {
        self.frameworks
            .insert(id, FrameworkRecord { info, scheduler });
    }

    /// Takes back an executor run from checkpoints; `live` when its process may still run
    /// (otherwise only its tasks are taken back). Each task comes with its latest status.
    pub fn recover_run(
        &mut self,
        key: ExecutorKey,
        info: ExecutorInfo,
        run_id: &str,
        live: Option<(Option<Upid>, Option<i32>)>,
        tasks: Vec<(TaskInfo, Option<TaskStatus>)>,
    ) {
        let mut ids = BTreeSet::new();
        for (task, latest) in tasks {
            let state = latest.as_ref().map_or(TaskState::Staging, |s| s.state);
            let terminal_uuid = latest
                .as_ref()
                .filter(|s| s.state.is_terminal())
                .map(|s| s.uuid.unwrap_or([0; 16]));
            ids.insert(task.task_id.clone());
            self.tasks.insert(
                (key.0.clone(), task.task_id.clone()),
                TaskRecord {
                    task,
                    executor_id: key.1.clone(),
                    run_id: run_id.to_string(),
                    state,
                    terminal_uuid,
                    latest,
                    kill_sent: false,
                },
            );
        }
        if let Some((upid, pgid)) = live {
            self.executors.insert(
                key,
                ExecutorRecord {
                    info,
                    upid,
                    pgid,
                    sandbox: None,
                    queued: Vec::new(),
                    tasks: ids,
                    run_id: run_id.to_string(),
                    recovered: true,
                },
            );
        }
    }

    /// How many tasks the agent still tracks in this run of an executor.
    pub fn tasks_of_run(&self, framework_id: &FrameworkId, ex: &ExecutorId, run: &str) -> usize {
        self.tasks
            .iter()
            .filter(|((fw, _), t)| fw == framework_id && t.executor_id == *ex && t.run_id == run)
            .count()
    }

    /// Whether the task has reached a terminal state.
    pub fn is_terminal(&self, key: &TaskKey) -> bool {
        self.tasks
            .get(key)
            .is_some_and(|t| t.terminal_uuid.is_some())
    }

    /// Every task, as reported when reregistering.
    pub fn agent_tasks(&self) -> Vec<AgentTask> {
        self.tasks
            .iter()
            .map(|((fw, _), t)| AgentTask {
                framework_id: fw.clone(),
                task: t.task.clone(),
                state: t.state,
                status: t.latest.clone(),
            })
            .collect()
    }

    /// Executors and frameworks, as reported when reregistering.
    pub fn executor_infos(&self) -> Vec<ExecutorInfo> {
        self.executors.values().map(|e| e.info.clone()).collect()
    }

    pub fn framework_infos(&self) -> Vec<FrameworkInfo> {
        self.frameworks
            .iter()
            .map(|(id, f)| {
                let mut info = f.info.clone();
                info.id = Some(id.clone());
                info
            })
            .collect()
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;

//! The task-related flows of [`MasterState`]: accept, decline, revive and suppress, kill, status
//! updates and their acknowledgements, executor exits and reconciliation.

use super::state::{master_update, ExecutorEntry, MasterState, Outgoing, Sends};
use super::validation::{validate_accept, AcceptDecision};
use meso::process::Upid;
use meso::protocol::*;

impl MasterState {
    /// `AcceptOffers`, as [`validate_accept`] decides: rejected tasks get a status update from
    /// the master, valid ones are tracked as staging and sent to their agent, and what the offers
    /// held beyond them goes back to the allocator under the accept's filters.
    pub fn accept_offers(&mut self, from: &Upid, msg: AcceptOffers, now_ms: u64) -> Sends {
        let Some(framework_id) = self.framework_by_upid.get(from).cloned() else {
            tracing::warn!("ignoring AcceptOffers from {from}: not a registered scheduler");
            return Vec::new();
        };
        let (tasks, executors) = (&self.tasks, &self.executors);
        let decision = validate_accept(
            &mut self.book,
            &framework_id,
            &msg,
            |task_id| tasks.contains(&framework_id, task_id),
            |key| executors.contains_key(key),
        );
        let partition_aware = self
            .frameworks
            .get(&framework_id)
            .is_some_and(|f| f.info.partition_aware);
        let scheduler = from.clone();
        let task_info = |task_id: &TaskId| {
            msg.operations.iter().find_map(|op| match op {
                Operation::Launch { tasks } => tasks.iter().find(|t| &t.task_id == task_id),
            })
        };
        let task_agent = |task_id: &TaskId| task_info(task_id).map(|t| t.agent_id.clone());
        // A frame can arrive twice: the second copy of an accept finds its offers used (by the
        // first copy) and its task ids taken. A task the master already tracks with the very same
        // description was launched by that first copy; reporting it LOST or ERROR would tell the
        // framework a falsehood about a task that runs.
        let tracker = &self.tasks;
        let repeated = |task_id: &TaskId| {
            let same = task_info(task_id).is_some_and(|info| {
                tracker
                    .live_or_completed(&framework_id, task_id)
                    .is_some_and(|t| &t.info == info)
            });
            if same {
                tracing::info!("ignoring a repeated launch of task {task_id} of {framework_id}");
            }
            same
        };
        let mut out = Vec::new();
        match decision {
            AcceptDecision::InvalidOffers {
                reason,
                tasks_lost,
                offers_to_recover,
            } => {
                tracing::warn!("accept of framework {framework_id} has invalid offers: {reason}");
                let state = if partition_aware {
                    TaskState::Dropped
                } else {
                    TaskState::Lost
                };
                for lost in tasks_lost.into_iter().filter(|t| !repeated(&t.task_id)) {
                    let mut status = TaskStatus::new(lost.task_id.clone(), state, now_ms)
                        .with_reason(lost.reason)
                        .with_message(lost.message);
                    status.agent_id = task_agent(&lost.task_id);
                    out.push((
                        scheduler.clone(),
                        master_update(framework_id.clone(), status),
                    ));
                }
                for (agent_id, resources) in offers_to_recover {
                    self.recover(&agent_id, &framework_id, &resources);
                }
            }
            AcceptDecision::Launch {
                agent_id,
                launched,
                errors,
                unused,
            } => {
                let errors = errors.into_iter().filter(|(id, reason, _)| {
                    *reason != TaskStatusReason::DuplicateTaskId || !repeated(id)
                });
                for (task_id, reason, message) in errors {
                    let status = TaskStatus::new(task_id, TaskState::Error, now_ms)
                        .with_reason(reason)
                        .with_message(message)
                        .with_agent(agent_id.clone());
                    out.push((
                        scheduler.clone(),
                        master_update(framework_id.clone(), status),
                    ));
                }
                out.extend(self.launch(&framework_id, &scheduler, &agent_id, launched, now_ms));
                let refuse = msg.filters.refuse_seconds;
                if let Err(e) = self.allocator.decline(
                    framework_id.as_str(),
                    agent_id.as_str(),
                    &unused,
                    refuse,
                    now_ms,
                ) {
                    tracing::warn!(
                        "cannot recover {unused} unused by framework {framework_id}: {e}"
                    );
                } else if !unused.is_empty() {
                    self.want_allocation();
                }
            }
        }
        out
    }

    /// Tracks validated tasks as staging and sends each to its agent. Should the agent be gone
    /// (which removing an agent's offers prevents), the tasks are lost at once.
    fn launch(
        &mut self,
        framework_id: &FrameworkId,
        scheduler: &Upid,
        agent_id: &AgentId,
        tasks: Vec<TaskInfo>,
        now_ms: u64,
    ) -> Sends {
        let mut out = Vec::new();
        let agent_upid = self.agents.get(agent_id).map(|a| a.upid.clone());
        let framework = self.frameworks.get(framework_id).map(|f| f.info.clone());
        for task in tasks {
            let (Some(to), Some(framework)) = (&agent_upid, &framework) else {
                let status = TaskStatus::new(task.task_id.clone(), TaskState::Lost, now_ms)
                    .with_reason(TaskStatusReason::AgentUnknown)
                    .with_message(format!("agent {agent_id} is gone"))
                    .with_agent(agent_id.clone());
                self.recover(agent_id, framework_id, &task.resources);
                out.push((
                    scheduler.clone(),
                    master_update(framework_id.clone(), status),
                ));
                continue;
            };
            if let Err(e) = self
                .tasks
                .add(framework_id.clone(), agent_id.clone(), task.clone())
            {
                // Validation already refused duplicates; give the resources back all the same.
                tracing::warn!("cannot track task {}: {e}", task.task_id);
                self.recover(agent_id, framework_id, &task.resources);
                continue;
            }
            if let Some(executor) = &task.executor {
                self.executors
                    .entry((agent_id.clone(), executor.executor_id.clone()))
                    .or_insert_with(|| ExecutorEntry {
                        framework_id: framework_id.clone(),
                        resources: executor.resources.clone(),
                    });
            }
            tracing::info!(
                "launching task {} of {framework_id} on {agent_id}",
                task.task_id
            );
            let run = RunTask {
                framework: framework.clone(),
                framework_id: framework_id.clone(),
                scheduler: scheduler.clone(),
                task,
            };
            out.push((to.clone(), Outgoing::RunTask(Box::new(run))));
        }
        out
    }

    /// `DeclineOffers`: the offers' resources go back, filtered from the framework as asked.
    pub fn decline_offers(&mut self, from: &Upid, msg: DeclineOffers, now_ms: u64) -> Sends {
        let Some(framework_id) = self.sender_framework("DeclineOffers", from, &msg.framework_id)
        else {
            return Vec::new();
        };
        for offer_id in &msg.offer_ids {
            let ours = self
                .book
                .get(offer_id)
                .is_some_and(|o| o.framework_id == framework_id);
            if !ours {
                tracing::warn!("ignoring decline of offer {offer_id} by {framework_id}: not its outstanding offer");
                continue;
            }
            let Some(offer) = self.book.remove_offer(offer_id) else {
                continue;
            };
            if let Err(e) = self.allocator.decline(
                framework_id.as_str(),
                offer.agent_id.as_str(),
                &offer.resources,
                msg.filters.refuse_seconds,
                now_ms,
            ) {
                tracing::warn!("cannot recover declined offer {offer_id}: {e}");
            } else {
                self.want_allocation();
            }
        }
        Vec::new()
    }

    /// `ReviveOffers`: filters cleared, suppression ended.
    pub fn revive_offers(&mut self, from: &Upid, msg: ReviveOffers) -> Sends {
        if let Some(id) = self.sender_framework("ReviveOffers", from, &msg.framework_id) {
            if let Err(e) = self.allocator.revive(id.as_str()) {
                tracing::warn!("cannot revive framework {id}: {e}");
            }
            self.want_allocation();
        }
        Vec::new()
    }

    /// `SuppressOffers`: no offers until revived (outstanding ones stay).
    pub fn suppress_offers(&mut self, from: &Upid, msg: SuppressOffers) -> Sends {
        if let Some(id) = self.sender_framework("SuppressOffers", from, &msg.framework_id) {
            if let Err(e) = self.allocator.suppress(id.as_str()) {
                tracing::warn!("cannot suppress framework {id}: {e}");
            }
        }
        Vec::new()
    }

    /// `KillTask`: a live task's agent is told to kill it; a task the master does not know is
    /// answered `TASK_LOST` (as Mesos answers through reconciliation). A kill of a task that
    /// ended (a repeated frame, or one that crossed the task's end) changes nothing.
    pub fn kill_task(&mut self, from: &Upid, msg: KillTask, now_ms: u64) -> Sends {
        let Some(framework_id) = self.sender_framework("KillTask", from, &msg.framework_id) else {
            return Vec::new();
        };
        // A completed task is terminal too: a repeated or late kill of it changes nothing.
        let task = self.tasks.live_or_completed(&framework_id, &msg.task_id);
        match task.map(|t| (t.state, self.agents.get(&t.agent_id), t)) {
            Some((state, _, _)) if state.is_terminal() => {
                tracing::info!("kill of task {} which is already {state}", msg.task_id);
                Vec::new()
            }
            Some((_, Some(agent), task)) => {
                let kill = KillTaskOnAgent {
                    framework_id,
                    task_id: msg.task_id,
                    kill_grace_period_ms: task.info.kill_grace_period_ms,
                };
                vec![(agent.upid.clone(), Outgoing::KillTaskOnAgent(kill))]
            }
            Some((_, None, _)) | None => {
                let mut status = TaskStatus::new(msg.task_id.clone(), TaskState::Lost, now_ms)
                    .with_reason(TaskStatusReason::Reconciliation)
                    .with_message(format!("kill of task {}: task unknown", msg.task_id));
                status.agent_id = msg.agent_id;
                vec![(from.clone(), master_update(framework_id, status))]
            }
        }
    }

    /// `StatusUpdate` from an agent: the tracker follows it (a terminal one gives the task's
    /// resources back, once), and it goes to the framework unchanged. Updates for tasks or from
    /// agents the master does not know are forwarded all the same, as Mesos does; updates of a
    /// framework that unregistered are acknowledged by the master so the agent stops resending.
    pub fn status_update(&mut self, from: &Upid, msg: StatusUpdate) -> Sends {
        let framework_id = msg.framework_id.clone();
        let agent_id = self.agent_by_upid.get(from).cloned();
        if self.removed_frameworks.contains(&framework_id) {
            return match (agent_id, msg.status.uuid) {
                (Some(agent_id), Some(uuid)) => {
                    let ack = StatusUpdateAcknowledgement {
                        agent_id,
                        framework_id,
                        task_id: msg.status.task_id,
                        uuid,
                    };
                    vec![(from.clone(), Outgoing::StatusUpdateAcknowledgement(ack))]
                }
                _ => Vec::new(),
            };
        }
        if !self.frameworks.contains_key(&framework_id) {
            tracing::warn!("ignoring StatusUpdate from {from}: unknown framework {framework_id}");
            return Vec::new();
        }
        let task_id = &msg.status.task_id;
        let task_agent = self
            .tasks
            .get(&framework_id, task_id)
            .map(|t| t.agent_id.clone());
        match (&agent_id, &task_agent) {
            (None, _) => {
                tracing::warn!("status update for task {task_id} from unknown agent {from}")
            }
            (_, None) => {
                tracing::warn!("status update for unknown task {task_id} of {framework_id}")
            }
            (Some(a), Some(t)) if a != t => {
                tracing::warn!("status update for task {task_id} of agent {t} comes from agent {a}")
            }
            (Some(a), Some(_)) => match self.tasks.update(&framework_id, msg.status.clone()) {
                Ok(transition) => {
                    if let Some(resources) = transition.released {
                        let agent = a.clone();
                        self.recover(&agent, &framework_id, &resources);
                    }
                }
                Err(e) => tracing::info!("status update from {from} not applied: {e}"),
            },
        }
        match self.scheduler_of(&framework_id) {
            Some(to) => vec![(to.clone(), Outgoing::StatusUpdate(msg))],
            None => Vec::new(),
        }
    }

    /// `StatusUpdateAcknowledgement` from a scheduler: goes to the task's agent. Once the
    /// terminal update of a task is acknowledged, the master forgets the task.
    pub fn acknowledge(&mut self, from: &Upid, msg: StatusUpdateAcknowledgement) -> Sends {
        let Some(framework_id) =
            self.sender_framework("StatusUpdateAcknowledgement", from, &msg.framework_id)
        else {
            return Vec::new();
        };
        let Some(agent) = self.agents.get(&msg.agent_id) else {
            tracing::warn!(
                "ignoring StatusUpdateAcknowledgement from {from}: unknown agent {}",
                msg.agent_id
            );
            return Vec::new();
        };
        let to = agent.upid.clone();
        let done = self
            .tasks
            .get(&framework_id, &msg.task_id)
            .is_some_and(|t| {
                t.state.is_terminal() && t.latest.as_ref().and_then(|s| s.uuid) == Some(msg.uuid)
            });
        if done {
            self.tasks.complete(&framework_id, &msg.task_id);
        }
        vec![(to, Outgoing::StatusUpdateAcknowledgement(msg))]
    }

    /// `ExecutorExited` from an agent: its resources go back, and the framework hears of it.
    pub fn executor_exited(&mut self, from: &Upid, msg: ExecutorExited) -> Sends {
        match self.agent_by_upid.get(from) {
            Some(id) if id == &msg.agent_id => {}
            _ => {
                tracing::warn!(
                    "ignoring ExecutorExited from {from}: it is not agent {}",
                    msg.agent_id
                );
                return Vec::new();
            }
        }
        let key = (msg.agent_id.clone(), msg.executor_id.clone());
        if let Some(executor) = self.executors.remove(&key) {
            self.recover(&msg.agent_id, &executor.framework_id, &executor.resources);
        }
        match self.scheduler_of(&msg.framework_id) {
            Some(to) => vec![(to.clone(), Outgoing::ExecutorExited(msg))],
            None => Vec::new(),
        }
    }

    /// `ReconcileTasks`: the latest known state of the listed tasks, or of all the framework's
    /// tasks when the list is empty (implicit reconciliation), with reason `Reconciliation` and
    /// no uuid. A listed task that completed (its terminal update acknowledged) is answered with
    /// that terminal state while the master remembers it.
    ///
    /// A task the master does not know is `TASK_LOST` for frameworks that are not partition
    /// aware; partition-aware ones get `TASK_GONE` when the named agent is registered (the task
    /// cannot be there) and `TASK_UNKNOWN` otherwise.
    pub fn reconcile_tasks(&mut self, from: &Upid, msg: ReconcileTasks, now_ms: u64) -> Sends {
        let Some(framework_id) = self.sender_framework("ReconcileTasks", from, &msg.framework_id)
        else {
            return Vec::new();
        };
        let partition_aware = self
            .frameworks
            .get(&framework_id)
            .is_some_and(|f| f.info.partition_aware);
        let known = |task: &super::tasks::TrackedTask| {
            let mut status = task.latest.clone().unwrap_or_else(|| {
                TaskStatus::new(task.info.task_id.clone(), task.state, now_ms)
                    .with_agent(task.agent_id.clone())
            });
            status.state = task.state;
            status.reason = Some(TaskStatusReason::Reconciliation);
            status.uuid = None;
            status.timestamp_ms = now_ms;
            status
        };
        let mut statuses = Vec::new();
        if msg.statuses.is_empty() {
            statuses.extend(self.tasks.for_framework(&framework_id).map(known));
        }
        for (task_id, agent_id) in msg.statuses {
            // A completed task is answered with how it ended, not as unknown.
            if let Some(task) = self.tasks.live_or_completed(&framework_id, &task_id) {
                statuses.push(known(task));
                continue;
            }
            // An agent of the registry that has not reregistered since a restart may still
            // report the task: no answer yet (the framework asks again), as in Mesos.
            if agent_id
                .as_ref()
                .is_some_and(|a| self.recovered.contains_key(a))
            {
                continue;
            }
            let agent_known = agent_id
                .as_ref()
                .is_some_and(|a| self.agents.contains_key(a));
            let agent_unreachable = agent_id
                .as_ref()
                .is_some_and(|a| self.unreachable.contains_key(a));
            let state = match (partition_aware, agent_known, agent_unreachable) {
                (false, _, _) => TaskState::Lost,
                (true, _, true) => TaskState::Unreachable,
                (true, true, false) => TaskState::Gone,
                (true, false, false) => TaskState::Unknown,
            };
            let mut status = TaskStatus::new(task_id, state, now_ms)
                .with_reason(TaskStatusReason::Reconciliation)
                .with_message("task unknown to the master");
            status.agent_id = agent_id;
            statuses.push(status);
        }
        statuses
            .into_iter()
            .map(|s| (from.clone(), master_update(framework_id.clone(), s)))
            .collect()
    }

    /// `ExecutorToFramework` from an agent: goes to the framework's scheduler.
    pub fn executor_to_framework(&mut self, from: &Upid, msg: ExecutorToFramework) -> Sends {
        if self.agent_by_upid.get(from) != Some(&msg.agent_id) {
            tracing::warn!(
                "ignoring ExecutorToFramework from {from}: it is not agent {}",
                msg.agent_id
            );
            return Vec::new();
        }
        match self.scheduler_of(&msg.framework_id) {
            Some(to) => vec![(to.clone(), Outgoing::ExecutorToFramework(msg))],
            None => Vec::new(),
        }
    }

    /// `FrameworkToExecutor` from a scheduler: goes to the named agent.
    pub fn framework_to_executor(&mut self, from: &Upid, msg: FrameworkToExecutor) -> Sends {
        if self
            .sender_framework("FrameworkToExecutor", from, &msg.framework_id)
            .is_none()
        {
            return Vec::new();
        }
        match self.agents.get(&msg.agent_id) {
            Some(agent) => vec![(agent.upid.clone(), Outgoing::FrameworkToExecutor(msg))],
            None => {
                tracing::warn!(
                    "ignoring FrameworkToExecutor from {from}: unknown agent {}",
                    msg.agent_id
                );
                Vec::new()
            }
        }
    }
}

//! The agent's side of surviving its own restart: checkpointing what it runs, taking it back
//! from disk, reconnecting to executors that are still alive, and failing the tasks of those
//! that died while it was down.

use super::actor::Agent;
use super::checkpoint::{run_action, RunAction};
use super::launcher;
use super::state::{ExecutorKey, TaskKey};
use super::status_updates::Admitted;
use actix::{AsyncContext, Context, Handler};
use meso::process::{Incoming, Upid};
use meso::protocol::*;
use std::time::Duration;

/// How long an executor found alive after a restart has to reregister.
pub const REREGISTER_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the agent checks that an executor it did not start (it took it back after a
/// restart) is still alive.
const WATCH_EVERY: Duration = Duration::from_millis(500);

impl Agent {
    /// Checkpoints a task that arrived in `RunTask` (with its framework when new or changed,
    /// and its executor when it is a new one).
    pub(super) fn checkpoint_run_task(
        &self,
        framework_id: &FrameworkId,
        task: &TaskInfo,
        framework: Option<(&FrameworkInfo, &Upid)>,
        new_executor: bool,
    ) {
        let Some(agent_id) = self.state.agent_id.clone() else {
            return;
        };
        let key = (framework_id.clone(), task.task_id.clone());
        let Some(record) = self.state.task(&key) else {
            return;
        };
        let ex_key = (framework_id.clone(), record.executor_id.clone());
        let Some(run) = self.run_paths(framework_id, &record.executor_id, &record.run_id) else {
            return;
        };
        let result = (|| {
            if let Some((info, scheduler)) = framework {
                self.checkpointer
                    .framework(&agent_id, framework_id, info, scheduler)?;
            }
            if new_executor {
                if let Some(ex) = self.state.executor(&ex_key) {
                    self.checkpointer.executor(&run, &ex.info)?;
                }
            }
            self.checkpointer.task(&run, task)
        })();
        if let Err(e) = result {
            tracing::error!(task = %task.task_id, "cannot checkpoint the task: {e}");
        }
    }

    /// A task's terminal update was acknowledged: it is forgotten, on disk too.
    pub(super) fn task_done(&mut self, key: &TaskKey) {
        let Some(task) = self.state.task(key).cloned() else {
            // An update the agent made for a task it never had (a kill of an unknown task).
            self.updates.forget(key);
            return;
        };
        self.state.forget_task(key);
        self.updates.forget(key);
        let Some(run) = self.run_paths(&key.0, &task.executor_id, &task.run_id) else {
            return;
        };
        let result = self.checkpointer.remove_task(&run, &key.1).and_then(|()| {
            let ex_key = (key.0.clone(), task.executor_id.clone());
            let running = self
                .state
                .executor(&ex_key)
                .is_some_and(|e| e.run_id == task.run_id);
            let left = self
                .state
                .tasks_of_run(&key.0, &task.executor_id, &task.run_id);
            match (running, left) {
                (false, 0) => self.checkpointer.remove_run(&run),
                _ => Ok(()),
            }
        });
        if let Err(e) = result {
            tracing::warn!(task = %key.1, "cannot remove the task's checkpoint: {e}");
        }
    }

    /// A status update from an executor (alone, or carried by its reregistration).
    pub(super) fn executor_update(
        &mut self,
        from: &Upid,
        key: &ExecutorKey,
        mut status: TaskStatus,
        what: &str,
        ctx: &mut Context<Self>,
    ) {
        let registered_from = self.state.executor(key).and_then(|e| e.upid.as_ref());
        if registered_from != Some(from) {
            tracing::warn!(
                "ignoring {what} from {from}: not the registered executor {}",
                key.1
            );
            return;
        }
        let Some(uuid) = status.uuid else {
            tracing::warn!("ignoring {what} from {from}: no uuid");
            return;
        };
        let task_key = (key.0.clone(), status.task_id.clone());
        let ack = ExecutorStatusAck {
            framework_id: key.0.clone(),
            task_id: status.task_id.clone(),
            uuid,
        };
        // A resend of an update the agent holds already is not new information.
        match self.updates.seen(&task_key, uuid) {
            Some(Admitted::AlreadyAcked) => return self.process.send(from, ack),
            Some(_) => return,
            None => {}
        }
        status.agent_id = status.agent_id.or(self.state.agent_id.clone());
        status.executor_id = Some(key.1.clone());
        if let Err(e) = self.state.record_update(&key.0, Some(&key.1), &status) {
            tracing::warn!("ignoring {what} from {from}: {e}");
            return;
        }
        tracing::debug!(task = %status.task_id, state = %status.state, "status update from the executor");
        let admitted = self.forward(
            key.0.clone(),
            Some(key.1.clone()),
            StatusSource::Executor,
            status,
            ctx,
        );
        if admitted == Some(Admitted::AlreadyAcked) {
            self.process.send(from, ack);
        }
    }

    /// Takes back what the checkpoints of the work directory hold (called once, at start).
    pub(super) fn recover(&mut self, ctx: &mut Context<Self>) {
        let Some(recovered) = self.checkpointer.recover() else {
            return;
        };
        tracing::info!(agent_id = %recovered.agent_id, runs = recovered.runs.len(), "recovering from checkpoints");
        self.state.agent_id = Some(recovered.agent_id.clone());
        for fw in recovered.frameworks {
            match fw.scheduler {
                Some(scheduler) => self.state.recover_framework(fw.id, fw.info, scheduler),
                None => tracing::warn!(framework = %fw.id, "no scheduler address checkpointed"),
            }
        }
        for run in recovered.runs {
            let key = (run.framework_id.clone(), run.info.executor_id.clone());
            let checkpointing = self
                .state
                .framework(&key.0)
                .is_none_or(|f| f.info.checkpoint);
            let action = run_action(&run, checkpointing, launcher::process_alive);
            let mut tasks = Vec::new();
            for t in run.tasks {
                let task_key = (key.0.clone(), t.task.task_id.clone());
                if let Some(send) = self
                    .updates
                    .restore(task_key, t.stream.pending, t.stream.acked)
                {
                    self.send_update(send, ctx);
                }
                tasks.push((t.task, t.stream.latest));
            }
            let live = Some((run.upid.clone(), run.pgid));
            self.state
                .recover_run(key.clone(), run.info, &run.run_id, live, tasks);
            tracing::info!(executor = %key.1, run = %run.run_id, ?action, "recovered an executor run");
            self.act_on_recovered(key, action, ctx);
        }
    }

    fn act_on_recovered(&mut self, key: ExecutorKey, action: RunAction, ctx: &mut Context<Self>) {
        let grace = Duration::from_millis(self.config.kill_grace_ms);
        match action {
            RunAction::Ended => {
                let how = (
                    TaskState::Failed,
                    TaskStatusReason::ExecutorTerminated,
                    "ended before the agent restarted",
                );
                self.executor_ended(&key, how, None, false, ctx);
            }
            RunAction::Died => {
                // Its task may have outlived it, in another group of its session.
                if let Some(sid) = self.state.executor(&key).and_then(|e| e.pgid) {
                    self.kill_session(sid, grace);
                }
                let how = (
                    TaskState::Failed,
                    TaskStatusReason::ExecutorTerminated,
                    "exited while the agent was down",
                );
                self.executor_ended(&key, how, None, true, ctx);
            }
            RunAction::Kill(pgid) => {
                let checkpointing = self
                    .state
                    .framework(&key.0)
                    .is_none_or(|f| f.info.checkpoint);
                if let Some(upid) = self.state.executor(&key).and_then(|e| e.upid.clone()) {
                    let msg = ShutdownExecutor {
                        framework_id: key.0.clone(),
                        executor_id: key.1.clone(),
                    };
                    self.process.send(&upid, msg);
                }
                // A dead executor may have left its task running in its session.
                let sid = pgid.or(self.state.executor(&key).and_then(|e| e.pgid));
                if let Some(sid) = sid {
                    ctx.run_later(grace, move |a, _| a.kill_session(sid, grace));
                }
                let how = if checkpointing {
                    (
                        TaskState::Failed,
                        TaskStatusReason::ExecutorReregistrationTimeout,
                        "had not registered when the agent restarted; it was killed",
                    )
                } else {
                    (
                        TaskState::Lost,
                        TaskStatusReason::AgentRestarted,
                        "was killed: the agent restarted and the framework does not checkpoint",
                    )
                };
                self.executor_ended(&key, how, None, true, ctx);
            }
            RunAction::Reconnect(upid) => {
                let Some(agent_id) = self.state.agent_id.clone() else {
                    return;
                };
                self.awaiting_reregistration.insert(key.clone());
                self.process.link(&upid);
                self.process.send(&upid, ReconnectExecutor { agent_id });
                let k = key.clone();
                ctx.run_later(REREGISTER_TIMEOUT, move |a, ctx| {
                    a.reregistration_timed_out(&k, ctx)
                });
                self.watch(key, ctx);
            }
        }
    }

    fn reregistration_timed_out(&mut self, key: &ExecutorKey, ctx: &mut Context<Self>) {
        if !self.awaiting_reregistration.contains(key) {
            return;
        }
        tracing::warn!(executor = %key.1, "the executor did not reregister in time; killing it");
        if let Some(pgid) = self.state.executor(key).and_then(|e| e.pgid) {
            self.kill_session(pgid, Duration::from_secs(1));
        }
        let how = (
            TaskState::Failed,
            TaskStatusReason::ExecutorReregistrationTimeout,
            "did not reregister after the agent restarted",
        );
        self.executor_ended(key, how, None, true, ctx);
    }

    /// Checks now and then that a recovered executor (not a child of this agent) still runs.
    fn watch(&mut self, key: ExecutorKey, ctx: &mut Context<Self>) {
        let run = self.state.executor(&key).map(|e| e.run_id.clone());
        ctx.run_later(WATCH_EVERY, move |a, ctx| {
            let current = a.state.executor(&key).map(|e| e.run_id.clone());
            if current.is_none() || current != run {
                return;
            }
            if a.check_recovered(&key, ctx) {
                a.watch(key, ctx);
            }
        });
    }

    /// Whether the recovered executor is alive; when it is not, it is gone.
    fn check_recovered(&mut self, key: &ExecutorKey, ctx: &mut Context<Self>) -> bool {
        let Some(ex) = self.state.executor(key) else {
            return false;
        };
        if !ex.recovered {
            return false;
        }
        if ex.pgid.is_some_and(launcher::process_alive) {
            return true;
        }
        tracing::info!(executor = %key.1, "a recovered executor exited");
        if let Some(sid) = ex.pgid {
            let grace = Duration::from_millis(self.config.kill_grace_ms);
            self.kill_session(sid, grace);
        }
        let how = (
            TaskState::Failed,
            TaskStatusReason::ExecutorTerminated,
            "exited",
        );
        self.executor_ended(key, how, None, true, ctx);
        false
    }

    /// A link to something other than the master broke: if it was a recovered executor, see
    /// whether its process is gone.
    pub(super) fn executor_link_exited(&mut self, upid: &Upid, ctx: &mut Context<Self>) {
        let keys: Vec<ExecutorKey> = self
            .state
            .executors()
            .filter(|(_, e)| e.recovered && e.upid.as_ref() == Some(upid))
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            self.check_recovered(&key, ctx);
        }
    }
}

impl Handler<Incoming<ReregisterExecutor>> for Agent {
    type Result = ();
    fn handle(&mut self, m: Incoming<ReregisterExecutor>, ctx: &mut Context<Self>) {
        let key = (m.msg.framework_id.clone(), m.msg.executor_id.clone());
        let known = self.state.executor(&key).and_then(|e| e.upid.as_ref());
        if known != Some(&m.from) {
            tracing::warn!(
                "ignoring ReregisterExecutor from {}: not the executor {} this agent recovered",
                m.from,
                key.1
            );
            return;
        }
        let Some(agent_id) = self.state.agent_id.clone() else {
            return;
        };
        self.awaiting_reregistration.remove(&key);
        tracing::info!(executor = %key.1, tasks = m.msg.tasks.len(), updates = m.msg.updates.len(), "executor reregistered");
        let reply = ExecutorReregistered {
            agent_id,
            agent_info: self.agent_info(),
        };
        self.process.send(&m.from, reply);
        for status in m.msg.updates {
            self.executor_update(&m.from, &key, status, "ReregisterExecutor", ctx);
        }
    }
}

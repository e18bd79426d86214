//! The agent actor: translates messages into calls on [`AgentState`] and the
//! [`StatusUpdateManager`], and their decisions into sends, launches and kills.

use super::checkpoint::{Checkpointer, RunPaths, StreamCheckpoint};
use super::launcher;
use super::sandbox::{self, Layout};
use super::state::{AgentState, ExecutorKey, KillOutcome, RunOutcome, TaskKey};
use super::status_updates::{Admitted, Send, StatusUpdateManager};
use super::{AgentConfig, AgentError};
use actix::{Actor, ActorContext, AsyncContext, Context, Handler, Message};
use meso::process::{Exited, Incoming, Node, Process, Upid};
use meso::protocol::*;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const REGISTER_MIN: Duration = Duration::from_millis(500);
const REGISTER_MAX: Duration = Duration::from_secs(8);
/// How long past its grace period an executor has to report a killed task.
const KILL_SLACK: Duration = Duration::from_secs(5);
const VERSION: &str = env!("CARGO_PKG_VERSION");

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// How a process ended, in words.
pub fn describe_exit(status: &ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => format!("terminated by signal {sig}"),
        _ => "ended".to_string(),
    }
}

/// Local: an executor's process ended (sent by the task that waits for it).
struct ExecutorProcessExited {
    key: ExecutorKey,
    pgid: i32,
    status: Result<ExitStatus, String>,
}

impl Message for ExecutorProcessExited {
    type Result = ();
}

pub struct Agent {
    pub(super) config: AgentConfig,
    pub(super) process: Process,
    pub(super) layout: Layout,
    pub(super) checkpointer: Checkpointer,
    pub(super) state: AgentState,
    pub(super) updates: StatusUpdateManager,
    pub(super) registered: bool,
    /// Bumped each time registration starts over; older retry timers stop.
    round: u64,
    /// Executors found alive after a restart, asked to reregister and not yet back.
    pub(super) awaiting_reregistration: std::collections::HashSet<ExecutorKey>,
    /// Executor ends to tell the master once registered (they happened while disconnected).
    exits_to_report: Vec<ExecutorExited>,
    /// Told when the actor stops.
    on_stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// Kills of executors' sessions under way (SIGTERM, grace, SIGKILL): a shutdown waits for
    /// them, so that nothing that ignores SIGTERM outlives the agent.
    kills: Vec<tokio::task::JoinHandle<()>>,
}

pub(super) fn start(
    node: &Node,
    config: AgentConfig,
    on_stop: Option<tokio::sync::oneshot::Sender<()>>,
) -> Result<Upid, AgentError> {
    std::fs::create_dir_all(&config.work_dir).map_err(|source| AgentError::WorkDir {
        path: config.work_dir.clone(),
        source,
    })?;
    let process = node
        .process(&config.name)
        .map_err(meso::process::ProcessError::from)?;
    let layout = Layout::new(config.work_dir.clone());
    let agent = Agent {
        checkpointer: Checkpointer::new(layout.clone()),
        layout,
        config: config.clone(),
        process,
        state: AgentState::new(),
        updates: StatusUpdateManager::new(),
        registered: false,
        round: 0,
        awaiting_reregistration: Default::default(),
        exits_to_report: Vec::new(),
        on_stop,
        kills: Vec::new(),
    };
    let (upid, _) = node
        .actor::<Agent>(&config.name)
        .handle::<RunTask>()
        .handle::<KillTaskOnAgent>()
        .handle::<AgentRegistered>()
        .handle::<AgentReregistered>()
        .handle::<StatusUpdateAcknowledgement>()
        .handle::<ShutdownFramework>()
        .handle::<UpdateFramework>()
        .handle::<ShutdownAgent>()
        .handle::<Ping>()
        .handle::<RegisterExecutor>()
        .handle::<ExecutorStatusUpdate>()
        .handle::<ReregisterExecutor>()
        .exited()
        .start(agent)?;
    Ok(upid)
}

impl Actor for Agent {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        tracing::info!(agent = %self.process.me(), master = %self.config.master, "agent started");
        self.recover(ctx);
        self.start_registering(ctx);
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        tracing::info!(agent = %self.process.me(), "agent stopped");
        if let Some(tx) = self.on_stop.take() {
            let _ = tx.send(());
        }
    }
}

impl Agent {
    pub(super) fn master(&self) -> &Upid {
        &self.config.master
    }

    fn is_from_master(&self, from: &Upid, what: &str) -> bool {
        if from != self.master() {
            tracing::warn!("ignoring {what} from {from}: not the master");
            return false;
        }
        true
    }

    pub(super) fn agent_info(&self) -> AgentInfo {
        AgentInfo {
            id: self.state.agent_id.clone(),
            hostname: self.config.hostname.clone(),
            resources: self.config.resources.clone(),
            attributes: self.config.attributes.clone(),
            port: self.process.me().port(),
        }
    }

    // ---- registration ----

    fn start_registering(&mut self, ctx: &mut Context<Self>) {
        self.registered = false;
        self.round += 1;
        self.try_register(self.round, REGISTER_MIN, ctx);
    }

    fn try_register(&mut self, round: u64, delay: Duration, ctx: &mut Context<Self>) {
        if self.registered || round != self.round {
            return;
        }
        if self.state.agent_id.is_some() {
            let msg = ReregisterAgent {
                agent: self.agent_info(),
                version: VERSION.to_string(),
                tasks: self.state.agent_tasks(),
                executors: self.state.executor_infos(),
                frameworks: self.state.framework_infos(),
            };
            self.process.send(self.master(), msg);
        } else {
            let msg = RegisterAgent {
                agent: self.agent_info(),
                version: VERSION.to_string(),
            };
            self.process.send(self.master(), msg);
        }
        let next = (delay * 2).min(REGISTER_MAX);
        ctx.run_later(delay, move |a, ctx| a.try_register(round, next, ctx));
    }

    fn registered_as(&mut self, agent_id: AgentId, what: &str) {
        if let Some(known) = &self.state.agent_id {
            if *known != agent_id {
                tracing::warn!("master gave id {agent_id} in {what}, but this agent is {known}");
            }
        }
        if self.registered {
            return;
        }
        tracing::info!(%agent_id, "{what}");
        let mut info = self.agent_info();
        info.id = Some(agent_id.clone());
        if let Err(e) = self.checkpointer.agent(&info, &agent_id) {
            tracing::error!("cannot checkpoint the agent: {e}");
        }
        self.state.agent_id = Some(agent_id);
        self.registered = true;
        self.process.link(&self.config.master.clone());
        // Whatever was in flight while disconnected goes again now.
        self.resend_in_flight(None);
        for exited in std::mem::take(&mut self.exits_to_report) {
            self.process.send(self.master(), exited);
        }
    }

    // ---- status updates ----

    pub(super) fn send_update(&mut self, send: Send, ctx: &mut Context<Self>) {
        let key = (
            send.update.framework_id.clone(),
            send.update.status.task_id.clone(),
        );
        let Some(uuid) = send.update.status.uuid else {
            return;
        };
        if self.registered {
            self.process.send(self.master(), send.update);
        }
        ctx.run_later(send.retry_in, move |a, ctx| {
            if let Some(again) = a.updates.retry(&key, uuid) {
                a.send_update(again, ctx);
            }
        });
    }

    /// Where the checkpoints of a run go (once the agent has an id).
    pub(super) fn run_paths(
        &self,
        fw: &FrameworkId,
        ex: &ExecutorId,
        run: &str,
    ) -> Option<RunPaths> {
        Some(RunPaths {
            agent: self.state.agent_id.clone()?,
            framework: fw.clone(),
            executor: ex.clone(),
            run: run.to_string(),
        })
    }

    /// Writes the status update stream of a task to disk.
    pub(super) fn checkpoint_stream(&self, key: &TaskKey) {
        let Some(task) = self.state.task(key) else {
            return;
        };
        let Some(run) = self.run_paths(&key.0, &task.executor_id, &task.run_id) else {
            return;
        };
        let (pending, acked) = self.updates.snapshot(key);
        let stream = StreamCheckpoint {
            pending,
            acked,
            latest: task.latest.clone(),
        };
        if let Err(e) = self.checkpointer.stream(&run, &key.1, &stream) {
            tracing::error!(task = %key.1, "cannot checkpoint status updates: {e}");
        }
    }

    /// Hands an update to the status update manager, which checkpoints it before it is sent;
    /// returns what it made of it.
    pub(super) fn forward(
        &mut self,
        framework_id: FrameworkId,
        executor_id: Option<ExecutorId>,
        source: StatusSource,
        status: TaskStatus,
        ctx: &mut Context<Self>,
    ) -> Option<Admitted> {
        let key = (framework_id.clone(), status.task_id.clone());
        let admitted = self
            .updates
            .update(framework_id, executor_id, source, status);
        if matches!(admitted, Ok(Admitted::SendNow(_) | Admitted::Queued)) {
            self.checkpoint_stream(&key);
        }
        match admitted {
            Ok(Admitted::SendNow(send)) => {
                self.send_update(send.clone(), ctx);
                Some(Admitted::SendNow(send))
            }
            Ok(other) => Some(other),
            Err(e) => {
                tracing::warn!("dropping a status update: {e}");
                None
            }
        }
    }

    pub(super) fn agent_made(
        &mut self,
        framework_id: &FrameworkId,
        status: TaskStatus,
        ctx: &mut Context<Self>,
    ) {
        tracing::info!(task = %status.task_id, state = %status.state, "{}", status.message);
        let executor_id = status.executor_id.clone();
        self.forward(
            framework_id.clone(),
            executor_id,
            StatusSource::Agent,
            status,
            ctx,
        );
    }

    // ---- executors ----

    fn launch_executor(&mut self, key: ExecutorKey, info: ExecutorInfo, ctx: &mut Context<Self>) {
        let result = self.spawn_executor(&key, &info);
        match result {
            Ok((launched, sandbox)) => {
                let pgid = launched.pgid;
                tracing::info!(executor = %key.1, framework = %key.0, pgid, sandbox = %sandbox.display(), "executor launched");
                self.state.launched(&key, pgid, sandbox);
                let run = self.state.executor(&key).map(|e| e.run_id.clone());
                if let Some(run) = run.and_then(|r| self.run_paths(&key.0, &key.1, &r)) {
                    if let Err(e) = self.checkpointer.forked_pid(&run, pgid) {
                        tracing::error!(executor = %key.1, "cannot checkpoint the executor's pid: {e}");
                    }
                }
                let addr = ctx.address();
                let mut child = launched.child;
                actix::spawn(async move {
                    let status = child.wait().await.map_err(|e| e.to_string());
                    addr.do_send(ExecutorProcessExited { key, pgid, status });
                });
            }
            Err(why) => {
                tracing::warn!(executor = %key.1, "cannot launch executor: {why}");
                self.executor_gone(&key, &format!("could not be started: {why}"), None, ctx);
            }
        }
    }

    fn spawn_executor(
        &self,
        key: &ExecutorKey,
        info: &ExecutorInfo,
    ) -> Result<(launcher::Launched, std::path::PathBuf), String> {
        let agent_id = self
            .state
            .agent_id
            .clone()
            .ok_or("the agent has no id yet")?;
        let run_id = self
            .state
            .executor(key)
            .map_or_else(sandbox::new_run_id, |e| e.run_id.clone());
        let sandbox = self
            .layout
            .create_sandbox(&agent_id, &key.0, &key.1, &run_id)
            .map_err(|e| format!("cannot create the sandbox: {e}"))?;
        let dir = sandbox.display().to_string();
        let env = vec![
            ("MESO_AGENT_UPID".to_string(), self.process.me().to_string()),
            ("MESOS_AGENT_ID".to_string(), agent_id.to_string()),
            ("MESOS_FRAMEWORK_ID".to_string(), key.0.to_string()),
            ("MESOS_EXECUTOR_ID".to_string(), key.1.to_string()),
            ("MESOS_SANDBOX".to_string(), dir.clone()),
            ("MESOS_DIRECTORY".to_string(), dir),
            (
                "MESO_KILL_GRACE_MS".to_string(),
                self.config.kill_grace_ms.to_string(),
            ),
            (
                "MESO_RECOVERY_TIMEOUT_MS".to_string(),
                self.config.recovery_timeout_ms.to_string(),
            ),
        ];
        let launched =
            launcher::launch(&info.command, &env, &sandbox).map_err(|e| e.to_string())?;
        Ok((launched, sandbox))
    }

    /// Flow 8: the executor is gone; its unfinished tasks fail, and the master hears of it.
    fn executor_gone(
        &mut self,
        key: &ExecutorKey,
        how: &str,
        wait_status: Option<i32>,
        ctx: &mut Context<Self>,
    ) {
        let gone = (TaskState::Failed, TaskStatusReason::ExecutorTerminated, how);
        self.executor_ended(key, gone, wait_status, true, ctx);
    }

    /// The executor is gone: its unfinished tasks get `state` with `reason`, its run is marked
    /// ended on disk, and the master hears of it when `tell_master`.
    pub(super) fn executor_ended(
        &mut self,
        key: &ExecutorKey,
        (state, reason, how): (TaskState, TaskStatusReason, &str),
        wait_status: Option<i32>,
        tell_master: bool,
        ctx: &mut Context<Self>,
    ) {
        self.awaiting_reregistration.remove(key);
        let Some((ex, statuses)) = self.state.executor_ended(key, state, reason, how, now_ms())
        else {
            return;
        };
        for status in statuses {
            self.agent_made(&key.0, status, ctx);
        }
        if let Some(run) = self.run_paths(&key.0, &key.1, &ex.run_id) {
            let result = if self.state.tasks_of_run(&key.0, &key.1, &ex.run_id) == 0 {
                self.checkpointer.remove_run(&run)
            } else {
                self.checkpointer.executor_exited(&run)
            };
            if let Err(e) = result {
                tracing::error!(executor = %key.1, "cannot checkpoint the executor's end: {e}");
            }
        }
        if !tell_master {
            return;
        }
        if let Some(agent_id) = self.state.agent_id.clone() {
            let msg = ExecutorExited {
                agent_id,
                framework_id: key.0.clone(),
                executor_id: key.1.clone(),
                status: wait_status.unwrap_or(-1),
            };
            if self.registered {
                self.process.send(self.master(), msg);
            } else {
                self.exits_to_report.push(msg);
            }
        }
    }

    /// Sends the updates in flight (of one framework, or all) to the master again now.
    fn resend_in_flight(&self, framework: Option<&FrameworkId>) {
        for update in self.updates.in_flight() {
            if framework.is_none_or(|f| *f == update.framework_id) {
                self.process.send(self.master(), update);
            }
        }
    }

    /// Kills every process of an executor's session (its id is the executor's pid): the
    /// executor and whatever it started, in any process group, even once the executor is gone.
    pub(super) fn kill_session(&mut self, sid: i32, grace: Duration) {
        self.kills.retain(|k| !k.is_finished());
        self.kills.push(actix::spawn(async move {
            match launcher::kill_session(sid, grace).await {
                Ok(launcher::KillOutcome::AlreadyGone) => {}
                Ok(outcome) => tracing::info!(sid, ?outcome, "killed the executor's session"),
                Err(e) => tracing::warn!("cannot kill session {sid}: {e}"),
            }
        }));
    }

    fn grace_for(&self, key: &TaskKey, asked: Option<u64>) -> Duration {
        let task = self
            .state
            .task(key)
            .and_then(|t| t.task.kill_grace_period_ms);
        Duration::from_millis(asked.or(task).unwrap_or(self.config.kill_grace_ms))
    }
}

// ---- the handler table ----

impl Handler<Incoming<AgentRegistered>> for Agent {
    type Result = ();
    fn handle(&mut self, m: Incoming<AgentRegistered>, _: &mut Context<Self>) {
        if self.is_from_master(&m.from, "AgentRegistered") {
            self.registered_as(m.msg.agent_id, "registered with the master");
        }
    }
}

impl Handler<Incoming<AgentReregistered>> for Agent {
    type Result = ();
    fn handle(&mut self, m: Incoming<AgentReregistered>, _: &mut Context<Self>) {
        if self.is_from_master(&m.from, "AgentReregistered") {
            self.registered_as(m.msg.agent_id, "reregistered with the master");
        }
    }
}

impl Handler<Exited> for Agent {
    type Result = ();
    fn handle(&mut self, m: Exited, ctx: &mut Context<Self>) {
        if m.0 == self.config.master {
            tracing::warn!(master = %m.0, "lost the master; registering again");
            self.start_registering(ctx);
        } else {
            self.executor_link_exited(&m.0, ctx);
        }
    }
}

impl Handler<Incoming<Ping>> for Agent {
    type Result = ();
    fn handle(&mut self, m: Incoming<Ping>, ctx: &mut Context<Self>) {
        if !self.is_from_master(&m.from, "Ping") {
            return;
        }
        self.process.send(&m.from, Pong {});
        if !m.msg.connected && self.registered {
            tracing::warn!("the master does not count this agent as connected; registering again");
            self.start_registering(ctx);
        }
    }
}

impl Handler<Incoming<RunTask>> for Agent {
    type Result = ();
    fn handle(&mut self, m: Incoming<RunTask>, ctx: &mut Context<Self>) {
        if !self.is_from_master(&m.from, "RunTask") {
            return;
        }
        // Only while registered (as Mesos's agent takes RunTask only when RUNNING): a RunTask
        // that reaches a restarted agent before its reregistration is done was sent by a master
        // that does not know yet what the agent runs, and that will hold the task lost once the
        // agent's report leaves it out. Launching it anyway would run a task told lost.
        if !self.registered {
            tracing::warn!("ignoring RunTask from {}: not registered yet", m.from);
            return;
        }
        let RunTask {
            framework,
            framework_id,
            scheduler,
            task,
        } = m.msg;
        let task_id = task.task_id.clone();
        let program = self.config.executor_program.clone();
        let known = self.state.framework(&framework_id);
        let framework_changed =
            known.is_none_or(|f| f.scheduler != scheduler || f.info != framework);
        let outcome = self.state.run_task(
            framework.clone(),
            framework_id.clone(),
            scheduler.clone(),
            task.clone(),
            &program,
            &sandbox::new_run_id(),
        );
        if outcome.is_ok() {
            let new_executor = matches!(outcome, Ok(RunOutcome::Launch(_)));
            let framework = framework_changed.then_some((&framework, &scheduler));
            self.checkpoint_run_task(&framework_id, &task, framework, new_executor);
        }
        match outcome {
            Ok(RunOutcome::Launch(info)) => {
                let key = (framework_id, info.executor_id.clone());
                self.launch_executor(key, info, ctx);
            }
            Ok(RunOutcome::Queued) => {
                tracing::debug!(task = %task_id, "queued until its executor registers")
            }
            Ok(RunOutcome::Send(upid)) => {
                self.process.send(&upid, LaunchTask { framework_id, task });
            }
            Err(e) => tracing::warn!("ignoring RunTask from {}: {e}", m.from),
        }
    }
}

impl Handler<Incoming<RegisterExecutor>> for Agent {
    type Result = ();
    fn handle(&mut self, m: Incoming<RegisterExecutor>, _: &mut Context<Self>) {
        let key = (m.msg.framework_id.clone(), m.msg.executor_id.clone());
        let tasks = match self.state.register_executor(&key, m.from.clone()) {
            Ok(tasks) => tasks,
            Err(e) => {
                tracing::warn!("ignoring RegisterExecutor from {}: {e}", m.from);
                return;
            }
        };
        let (Some(agent_id), Some(ex), Some(fw)) = (
            self.state.agent_id.clone(),
            self.state.executor(&key),
            self.state.framework(&key.0),
        ) else {
            tracing::warn!("ignoring RegisterExecutor from {}: no agent id", m.from);
            return;
        };
        let msg = ExecutorRegistered {
            executor_info: ex.info.clone(),
            framework_id: key.0.clone(),
            framework_info: fw.info.clone(),
            agent_id,
            agent_info: self.agent_info(),
        };
        tracing::info!(executor = %key.1, from = %m.from, "executor registered");
        if let Some(run) = self.run_paths(&key.0, &key.1, &ex.run_id) {
            if let Err(e) = self.checkpointer.executor_upid(&run, &m.from) {
                tracing::error!(executor = %key.1, "cannot checkpoint the executor's address: {e}");
            }
        }
        self.process.send(&m.from, msg);
        for task in tasks {
            let framework_id = key.0.clone();
            self.process
                .send(&m.from, LaunchTask { framework_id, task });
        }
    }
}

impl Handler<Incoming<ExecutorStatusUpdate>> for Agent {
    type Result = ();
    fn handle(&mut self, m: Incoming<ExecutorStatusUpdate>, ctx: &mut Context<Self>) {
        let ExecutorStatusUpdate {
            framework_id,
            executor_id,
            status,
        } = m.msg;
        let key = (framework_id, executor_id);
        self.executor_update(&m.from, &key, status, "ExecutorStatusUpdate", ctx);
    }
}

impl Handler<Incoming<StatusUpdateAcknowledgement>> for Agent {
    type Result = ();
    fn handle(&mut self, m: Incoming<StatusUpdateAcknowledgement>, ctx: &mut Context<Self>) {
        if !self.is_from_master(&m.from, "StatusUpdateAcknowledgement") {
            return;
        }
        let key: TaskKey = (m.msg.framework_id.clone(), m.msg.task_id.clone());
        let Some(acked) = self.updates.ack(&key, m.msg.uuid) else {
            tracing::debug!(task = %key.1, "ignoring a stale or unknown acknowledgement");
            return;
        };
        if acked.acked.source == StatusSource::Executor {
            let upid = self.state.task(&key).and_then(|t| {
                let ex_key = (key.0.clone(), t.executor_id.clone());
                self.state.executor(&ex_key).and_then(|e| e.upid.clone())
            });
            if let Some(upid) = upid {
                let ack = ExecutorStatusAck {
                    framework_id: key.0.clone(),
                    task_id: key.1.clone(),
                    uuid: m.msg.uuid,
                };
                self.process.send(&upid, ack);
            }
        }
        match acked.next {
            Some(next) => {
                self.checkpoint_stream(&key);
                self.send_update(next, ctx);
            }
            None if acked.acked.status.state.is_terminal() => self.task_done(&key),
            None => self.checkpoint_stream(&key),
        }
    }
}

impl Handler<Incoming<KillTaskOnAgent>> for Agent {
    type Result = ();
    fn handle(&mut self, m: Incoming<KillTaskOnAgent>, ctx: &mut Context<Self>) {
        if !self.is_from_master(&m.from, "KillTaskOnAgent") {
            return;
        }
        let key: TaskKey = (m.msg.framework_id.clone(), m.msg.task_id.clone());
        let grace = self.grace_for(&key, m.msg.kill_grace_period_ms);
        match self.state.kill_task(&key, now_ms()) {
            KillOutcome::UnknownTask { status } => {
                tracing::warn!(task = %key.1, framework = %key.0, "kill of a task unknown to the agent; reporting it {}", status.state);
                self.forward(key.0.clone(), None, StatusSource::Agent, status, ctx);
            }
            KillOutcome::AlreadyTerminal => {
                tracing::info!(task = %key.1, "kill of a task that already ended")
            }
            KillOutcome::AlreadyKilling => {
                tracing::info!(task = %key.1, "ignoring KillTaskOnAgent from {}: the kill is under way", m.from)
            }
            KillOutcome::KilledBeforeLaunch {
                status, kill_group, ..
            } => {
                self.agent_made(&key.0, status, ctx);
                if let Some(pgid) = kill_group {
                    self.kill_session(pgid, grace);
                }
            }
            KillOutcome::AskExecutor { upid, .. } => {
                let msg = KillTaskInExecutor {
                    framework_id: key.0.clone(),
                    task_id: key.1.clone(),
                    kill_grace_period_ms: Some(grace.as_millis() as u64),
                };
                self.process.send(&upid, msg);
                ctx.run_later(grace + KILL_SLACK, move |a, ctx| {
                    if let Some((status, pgid)) = a.state.kill_timed_out(&key, now_ms()) {
                        a.agent_made(&key.0, status, ctx);
                        a.kill_session(pgid, Duration::from_secs(1));
                    }
                });
            }
        }
    }
}

impl Handler<ExecutorProcessExited> for Agent {
    type Result = ();
    fn handle(&mut self, m: ExecutorProcessExited, ctx: &mut Context<Self>) {
        let (how, raw) = match &m.status {
            Ok(status) => (describe_exit(status), Some(status.into_raw())),
            Err(e) => (format!("could not be waited for: {e}"), None),
        };
        tracing::info!(executor = %m.key.1, pgid = m.pgid, "executor {how}");
        // What it left behind (its task, in a group of its own) goes with it.
        let grace = Duration::from_millis(self.config.kill_grace_ms);
        self.kill_session(m.pgid, grace);
        self.executor_gone(&m.key, &how, raw, ctx);
    }
}

impl Handler<Incoming<ShutdownFramework>> for Agent {
    type Result = ();
    fn handle(&mut self, m: Incoming<ShutdownFramework>, _: &mut Context<Self>) {
        if !self.is_from_master(&m.from, "ShutdownFramework") {
            return;
        }
        let fw = m.msg.framework_id;
        tracing::info!(framework = %fw, "shutting the framework down");
        self.updates.forget_framework(&fw);
        let grace = Duration::from_millis(self.config.kill_grace_ms);
        for pgid in self.state.remove_framework(&fw) {
            self.kill_session(pgid, grace);
        }
        if let Some(agent_id) = self.state.agent_id.clone() {
            if let Err(e) = self.checkpointer.remove_framework(&agent_id, &fw) {
                tracing::error!(framework = %fw, "cannot remove the framework's checkpoints: {e}");
            }
        }
    }
}

impl Handler<Incoming<UpdateFramework>> for Agent {
    type Result = ();
    /// A framework failed over to a new scheduler: remember (and checkpoint) where it is now, and
    /// resend its updates still unacknowledged at once, as Mesos does, rather than at their next
    /// retry (up to 30 s away): the new scheduler gets what the old one missed now.
    fn handle(&mut self, m: Incoming<UpdateFramework>, _: &mut Context<Self>) {
        if !self.is_from_master(&m.from, "UpdateFramework") {
            return;
        }
        let UpdateFramework {
            framework_id,
            scheduler,
        } = m.msg;
        let Some(info) = self
            .state
            .update_scheduler(&framework_id, scheduler.clone())
        else {
            return tracing::debug!(
                "ignoring UpdateFramework for unknown framework {framework_id}"
            );
        };
        if let Some(agent_id) = self.state.agent_id.clone() {
            if let Err(e) = self
                .checkpointer
                .framework(&agent_id, &framework_id, &info, &scheduler)
            {
                tracing::error!(framework = %framework_id, "cannot checkpoint the framework: {e}");
            }
        }
        // While reregistering, the agent resends everything in flight once the master has it.
        if self.registered {
            self.resend_in_flight(Some(&framework_id));
        }
    }
}

impl Handler<Incoming<ShutdownAgent>> for Agent {
    type Result = ();
    fn handle(&mut self, m: Incoming<ShutdownAgent>, ctx: &mut Context<Self>) {
        if !self.is_from_master(&m.from, "ShutdownAgent") {
            return;
        }
        tracing::info!("the master shut this agent down: {}", m.msg.message);
        let grace = Duration::from_millis(self.config.kill_grace_ms);
        let kills: Vec<_> = self
            .state
            .executors()
            .filter_map(|(_, ex)| ex.pgid)
            .map(|sid| actix::spawn(launcher::kill_session(sid, grace)))
            .collect();
        // Kills already under way (a framework shut down, a task killed) are waited for too.
        let under_way = std::mem::take(&mut self.kills);
        // Whoever waits for the agent to stop hears of it once its executors are gone.
        let on_stop = self.on_stop.take();
        actix::spawn(async move {
            for kill in kills {
                match kill.await {
                    Ok(Err(e)) => tracing::warn!("cannot kill an executor's session: {e}"),
                    Err(e) => tracing::warn!("an executor's kill did not finish: {e}"),
                    Ok(Ok(_)) => {}
                }
            }
            for kill in under_way {
                let _ = kill.await;
            }
            if let Some(tx) = on_stop {
                let _ = tx.send(());
            }
        });
        self.process.node().unregister(&self.config.name);
        ctx.stop();
    }
}

//! The executor driver: an actor named `executor` that registers with the agent, turns the
//! agent's messages into calls on an [`Executor`], and sends what the executor reports.

use super::env::ExecutorEnv;
use actix::{Actor, Addr, AsyncContext, Context, Handler, Message};
use meso::process::{Exited, Incoming, Node, NodeConfig, Process, Upid};
use meso::protocol::*;
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const REGISTER_MIN: Duration = Duration::from_millis(500);
const REGISTER_MAX: Duration = Duration::from_secs(8);
/// After reregistering with a restarted agent, how long a stop asked for while the agent was
/// away waits for the last acknowledgements.
const STOP_AFTER_REREGISTER: Duration = Duration::from_secs(5);
/// Exit code when the agent is lost for good.
const EXIT_AGENT_LOST: i32 = 1;

/// What an executor does; every callback gets the driver to answer through.
pub trait Executor: 'static {
    /// The agent accepted the executor.
    fn registered(
        &mut self,
        driver: &ExecutorDriver,
        executor_info: ExecutorInfo,
        framework_info: FrameworkInfo,
        agent_info: AgentInfo,
    );

    /// Run a task; report its states with [`ExecutorDriver::send_status_update`].
    fn launch_task(&mut self, driver: &ExecutorDriver, task: TaskInfo);

    /// Kill a task and report TASK_KILLED.
    fn kill_task(&mut self, driver: &ExecutorDriver, task_id: TaskId);

    /// Like `kill_task`, with the grace period the kill request carries (if any).
    fn kill_task_with_grace(
        &mut self,
        driver: &ExecutorDriver,
        task_id: TaskId,
        _grace: Option<Duration>,
    ) {
        self.kill_task(driver, task_id)
    }

    /// Opaque data from the framework.
    fn framework_message(&mut self, _driver: &ExecutorDriver, _data: Vec<u8>) {}

    /// The agent has safely recorded this update.
    fn acknowledged(&mut self, _driver: &ExecutorDriver, _status: &TaskStatus) {}

    /// Kill every task and stop (call [`ExecutorDriver::stop`]).
    fn shutdown(&mut self, driver: &ExecutorDriver);

    /// Something went wrong that the executor should know about.
    fn error(&mut self, driver: &ExecutorDriver, message: String);
}

/// The executor's handle on its driver. Cheap to clone; usable from spawned tasks.
#[derive(Clone)]
pub struct ExecutorDriver {
    addr: Addr<ExecutorActor>,
    env: Arc<ExecutorEnv>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl ExecutorDriver {
    /// Sends a status update to the agent, filling in what is absent (uuid, timestamp, executor
    /// and agent ids). Returns its uuid.
    pub fn send_status_update(&self, mut status: TaskStatus) -> [u8; 16] {
        let uuid = *status.uuid.get_or_insert_with(new_uuid);
        if status.timestamp_ms == 0 {
            status.timestamp_ms = now_ms();
        }
        status
            .executor_id
            .get_or_insert(self.env.executor_id.clone());
        status.agent_id.get_or_insert(self.env.agent_id.clone());
        self.addr.do_send(Local::Status(status));
        uuid
    }

    /// Sends opaque data to the framework.
    pub fn send_framework_message(&self, data: Vec<u8>) {
        self.addr.do_send(Local::FrameworkMessage(data));
    }

    /// Stops the driver (exit code 0) now if the agent is connected; otherwise once the agent
    /// came back and had a few seconds to acknowledge what was sent while it was away, or when
    /// the recovery timeout ends the executor anyway.
    pub fn stop_when_connected(&self) {
        self.addr.do_send(Local::StopWhenConnected);
    }

    /// Stops the driver; the process exits with code 0.
    pub fn stop(&self) {
        self.addr.do_send(Local::Stop(0));
    }

    /// Stops the driver; the process exits with `code`.
    pub fn abort(&self, code: i32) {
        self.addr.do_send(Local::Stop(code));
    }

    pub fn sandbox(&self) -> &Path {
        &self.env.sandbox
    }

    pub fn env(&self) -> &ExecutorEnv {
        &self.env
    }

    /// The agent's default kill grace period.
    pub fn default_kill_grace(&self) -> Duration {
        Duration::from_millis(self.env.kill_grace_ms)
    }
}

enum Local {
    Status(TaskStatus),
    FrameworkMessage(Vec<u8>),
    Stop(i32),
    StopWhenConnected,
}

impl Message for Local {
    type Result = ();
}

/// The task ids an executor was asked to launch and to kill, so that a frame the network
/// delivered twice reaches the executor once.
#[derive(Debug, Default)]
pub struct Seen {
    launched: HashSet<TaskId>,
    killed: HashSet<TaskId>,
}

impl Seen {
    /// Whether this is the first launch of `task`.
    pub fn first_launch(&mut self, task: &TaskId) -> bool {
        self.launched.insert(task.clone())
    }

    /// Whether this is the first kill of `task`.
    pub fn first_kill(&mut self, task: &TaskId) -> bool {
        self.killed.insert(task.clone())
    }
}

pub struct ExecutorActor {
    executor: Box<dyn Executor>,
    driver: ExecutorDriver,
    process: Process,
    registered: bool,
    /// Updates the agent has not acknowledged yet, oldest first.
    unacked: Vec<TaskStatus>,
    /// Tasks launched and not yet done (terminal update acknowledged), for reregistration.
    tasks: Vec<TaskInfo>,
    /// Which launches and kills were handed to the executor already (duplicates are dropped).
    seen: Seen,
    /// Whether the agent checkpoints this framework (learnt at registration).
    checkpoint: bool,
    connected: bool,
    /// Bumped at each disconnection; older recovery timers do nothing.
    disconnections: u64,
    /// A stop asked for while disconnected, to do once reconnected.
    stop_when_connected: bool,
    stopping: bool,
}

impl Actor for ExecutorActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.process.link(&self.driver.env.agent.clone());
        self.try_register(REGISTER_MIN, ctx);
    }
}

impl ExecutorActor {
    fn agent(&self) -> &Upid {
        &self.driver.env.agent
    }

    fn is_from_agent(&self, from: &Upid, what: &str) -> bool {
        if from != self.agent() {
            tracing::warn!("ignoring {what} from {from}: not the agent");
            return false;
        }
        !self.stopping
    }

    fn try_register(&mut self, delay: Duration, ctx: &mut Context<Self>) {
        if self.registered || self.stopping {
            return;
        }
        let msg = RegisterExecutor {
            framework_id: self.driver.env.framework_id.clone(),
            executor_id: self.driver.env.executor_id.clone(),
        };
        self.process.send(self.agent(), msg);
        let next = (delay * 2).min(REGISTER_MAX);
        ctx.run_later(delay, move |a, ctx| a.try_register(next, ctx));
    }

    fn stop(&mut self, code: i32) {
        if !self.stopping {
            self.stopping = true;
            tracing::info!(code, "executor stopping");
            actix::System::current().stop_with_code(code);
        }
    }
}

impl Handler<Incoming<ExecutorRegistered>> for ExecutorActor {
    type Result = ();
    fn handle(&mut self, m: Incoming<ExecutorRegistered>, _: &mut Context<Self>) {
        if !self.is_from_agent(&m.from, "ExecutorRegistered") {
            return;
        }
        if self.registered {
            tracing::info!(
                "ignoring ExecutorRegistered from {}: registered already",
                m.from
            );
            return;
        }
        self.registered = true;
        self.checkpoint = m.msg.framework_info.checkpoint;
        let ExecutorRegistered {
            executor_info,
            framework_info,
            agent_info,
            ..
        } = m.msg;
        self.executor
            .registered(&self.driver, executor_info, framework_info, agent_info);
    }
}

impl Handler<Incoming<LaunchTask>> for ExecutorActor {
    type Result = ();
    fn handle(&mut self, m: Incoming<LaunchTask>, _: &mut Context<Self>) {
        if !self.is_from_agent(&m.from, "LaunchTask") {
            return;
        }
        if !self.seen.first_launch(&m.msg.task.task_id) {
            tracing::info!(
                "ignoring LaunchTask from {}: task {} was launched already",
                m.from,
                m.msg.task.task_id
            );
            return;
        }
        self.tasks.push(m.msg.task.clone());
        self.executor.launch_task(&self.driver, m.msg.task);
    }
}

impl Handler<Incoming<KillTaskInExecutor>> for ExecutorActor {
    type Result = ();
    fn handle(&mut self, m: Incoming<KillTaskInExecutor>, _: &mut Context<Self>) {
        if !self.is_from_agent(&m.from, "KillTaskInExecutor") {
            return;
        }
        if !self.seen.first_kill(&m.msg.task_id) {
            tracing::info!(
                "ignoring KillTaskInExecutor from {}: task {} is being killed already",
                m.from,
                m.msg.task_id
            );
            return;
        }
        let grace = m.msg.kill_grace_period_ms.map(Duration::from_millis);
        self.executor
            .kill_task_with_grace(&self.driver, m.msg.task_id, grace);
    }
}

impl Handler<Incoming<ExecutorStatusAck>> for ExecutorActor {
    type Result = ();
    fn handle(&mut self, m: Incoming<ExecutorStatusAck>, _: &mut Context<Self>) {
        if !self.is_from_agent(&m.from, "ExecutorStatusAck") {
            return;
        }
        let Some(i) = self.unacked.iter().position(|s| s.uuid == Some(m.msg.uuid)) else {
            tracing::info!(
                "ignoring ExecutorStatusAck from {}: no pending update of task {} has that uuid",
                m.from,
                m.msg.task_id
            );
            return;
        };
        let status = self.unacked.remove(i);
        if status.state.is_terminal() {
            self.tasks.retain(|t| t.task_id != status.task_id);
        }
        self.executor.acknowledged(&self.driver, &status);
    }
}

impl Handler<Incoming<FrameworkToExecutor>> for ExecutorActor {
    type Result = ();
    fn handle(&mut self, m: Incoming<FrameworkToExecutor>, _: &mut Context<Self>) {
        if self.is_from_agent(&m.from, "FrameworkToExecutor") {
            self.executor.framework_message(&self.driver, m.msg.data);
        }
    }
}

impl Handler<Incoming<ShutdownExecutor>> for ExecutorActor {
    type Result = ();
    fn handle(&mut self, m: Incoming<ShutdownExecutor>, _: &mut Context<Self>) {
        if self.is_from_agent(&m.from, "ShutdownExecutor") {
            self.executor.shutdown(&self.driver);
        }
    }
}

impl Handler<Incoming<ReconnectExecutor>> for ExecutorActor {
    type Result = ();
    fn handle(&mut self, m: Incoming<ReconnectExecutor>, _: &mut Context<Self>) {
        if !self.is_from_agent(&m.from, "ReconnectExecutor") {
            return;
        }
        if m.msg.agent_id != self.driver.env.agent_id {
            tracing::warn!(
                "ignoring ReconnectExecutor from {}: agent {} is not this executor's agent {}",
                m.from,
                m.msg.agent_id,
                self.driver.env.agent_id
            );
            return;
        }
        tracing::info!(agent = %m.from, unacked = self.unacked.len(), "the agent restarted; reregistering");
        self.process.link(&m.from);
        let msg = ReregisterExecutor {
            framework_id: self.driver.env.framework_id.clone(),
            executor_id: self.driver.env.executor_id.clone(),
            tasks: self.tasks.clone(),
            updates: self.unacked.clone(),
        };
        self.process.send(&m.from, msg);
    }
}

impl Handler<Incoming<ExecutorReregistered>> for ExecutorActor {
    type Result = ();
    fn handle(&mut self, m: Incoming<ExecutorReregistered>, ctx: &mut Context<Self>) {
        if !self.is_from_agent(&m.from, "ExecutorReregistered") {
            return;
        }
        tracing::info!(agent = %m.from, "reregistered with the agent");
        self.connected = true;
        if self.stop_when_connected {
            ctx.run_later(STOP_AFTER_REREGISTER, |a, _| a.stop(0));
        }
    }
}

impl Handler<Exited> for ExecutorActor {
    type Result = ();
    fn handle(&mut self, m: Exited, ctx: &mut Context<Self>) {
        if m.0 != *self.agent() || self.stopping {
            return;
        }
        self.connected = false;
        self.disconnections += 1;
        if self.registered && !self.checkpoint {
            tracing::warn!(agent = %m.0, "lost the agent, and the framework does not checkpoint: shutting down");
            self.executor.shutdown(&self.driver);
            ctx.run_later(
                Duration::from_millis(self.driver.env.kill_grace_ms) + STOP_AFTER_REREGISTER,
                |a, _| a.stop(EXIT_AGENT_LOST),
            );
            return;
        }
        let timeout = Duration::from_millis(self.driver.env.recovery_timeout_ms);
        tracing::warn!(agent = %m.0, "lost the agent; waiting {timeout:?} for it");
        let round = self.disconnections;
        ctx.run_later(timeout, move |a, _| {
            if !a.connected && !a.stopping && a.disconnections == round {
                a.executor
                    .error(&a.driver, "the agent did not come back".to_string());
                a.executor.shutdown(&a.driver);
                a.stop(EXIT_AGENT_LOST);
            }
        });
    }
}

impl Handler<Local> for ExecutorActor {
    type Result = ();
    fn handle(&mut self, m: Local, _: &mut Context<Self>) {
        let env = self.driver.env.clone();
        match m {
            Local::Status(status) => {
                self.unacked.push(status.clone());
                let msg = ExecutorStatusUpdate {
                    framework_id: env.framework_id.clone(),
                    executor_id: env.executor_id.clone(),
                    status,
                };
                self.process.send(self.agent(), msg);
            }
            Local::FrameworkMessage(data) => {
                let msg = ExecutorToFramework {
                    framework_id: env.framework_id.clone(),
                    executor_id: env.executor_id.clone(),
                    agent_id: env.agent_id.clone(),
                    data,
                };
                self.process.send(self.agent(), msg);
            }
            Local::Stop(code) => self.stop(code),
            Local::StopWhenConnected if self.connected => self.stop(0),
            Local::StopWhenConnected => {
                tracing::info!("stopping once the agent is back");
                self.stop_when_connected = true;
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error(transparent)]
    Process(#[from] meso::process::ProcessError),
    #[error(transparent)]
    Upid(#[from] meso::process::UpidError),
}

async fn start(executor: Box<dyn Executor>, env: ExecutorEnv) -> Result<(), StartError> {
    let node = Node::start(NodeConfig::default()).await?;
    let process = node.process("executor")?;
    let env = Arc::new(env);
    node.actor::<ExecutorActor>("executor")
        .handle::<ExecutorRegistered>()
        .handle::<LaunchTask>()
        .handle::<KillTaskInExecutor>()
        .handle::<ExecutorStatusAck>()
        .handle::<FrameworkToExecutor>()
        .handle::<ShutdownExecutor>()
        .handle::<ReconnectExecutor>()
        .handle::<ExecutorReregistered>()
        .exited()
        .start_with(|ctx| ExecutorActor {
            executor,
            driver: ExecutorDriver {
                addr: ctx.address(),
                env,
            },
            process,
            registered: false,
            unacked: Vec::new(),
            tasks: Vec::new(),
            seen: Seen::default(),
            checkpoint: true,
            connected: true,
            disconnections: 0,
            stop_when_connected: false,
            stopping: false,
        })?;
    Ok(())
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Runs `executor` under a driver until it stops; returns the process exit code. Reads the
/// environment the agent set; a missing or bad variable is reported on stderr (exit code 1).
pub fn run_executor(executor: impl Executor) -> i32 {
    let env = match ExecutorEnv::from_env() {
        Ok(env) => env,
        Err(e) => {
            eprintln!("meso executor: {e}");
            return 1;
        }
    };
    init_logging();
    tracing::info!(executor = %env.executor_id, agent = %env.agent, "executor starting");
    let system = actix::System::new();
    if let Err(e) = system.block_on(start(Box::new(executor), env)) {
        eprintln!("meso executor: cannot start: {e}");
        return 1;
    }
    match system.run_with_code() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("meso executor: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_is_launched_and_killed_once() {
        let mut seen = Seen::default();
        let (a, b) = (TaskId::new("a"), TaskId::new("b"));
        assert!(seen.first_launch(&a));
        assert!(!seen.first_launch(&a));
        assert!(seen.first_launch(&b));
        assert!(seen.first_kill(&a));
        assert!(!seen.first_kill(&a));
        assert!(seen.first_kill(&b));
    }
}

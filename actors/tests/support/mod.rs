//! Scaffolding shared by the agent integration tests: a fake master, a real agent actor on a node
//! of its own, waiting for what the fake master records (with timeouts), polling for files and
//! for process groups and sessions to go, finding a `sleep` by its argv in /proc, and a guard that
//! kills a `meso` child process.
//!
//! Each test file compiles this module on its own and uses only part of it.
#![allow(dead_code)]

pub mod framework;

use actix::{Actor, Context, Handler};
use meso::process::{Incoming, Node, NodeConfig, Process, Upid};
use meso::protocol::*;
use meso::resources::Resources;
use meso_actors::agent::launcher;
use meso_actors::agent::{start_agent_with_stop, AgentConfig};
use std::collections::HashSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::sync::oneshot;

/// The `meso` binary: the agent's executor program, and what `spawn_meso` runs.
pub const MESO: &str = env!("CARGO_BIN_EXE_meso");

/// What the fake master (or a fake executor) records.
#[derive(Debug)]
pub enum Event {
    Registered(Upid),
    Reregistered(ReregisterAgent),
    Update(StatusUpdate),
    ExecutorExited(ExecutorExited),
    /// A task given to a fake executor.
    Launched(TaskInfo),
}

/// How the fake master answers.
#[derive(Clone)]
pub struct MasterBehaviour {
    /// The id handed to the agent (and put in acknowledgements).
    pub agent_id: AgentId,
    /// Whether reliable updates are acknowledged at all.
    pub ack: bool,
    /// While set, RUNNING updates are recorded but not acknowledged.
    pub hold_running_acks: Arc<AtomicBool>,
    /// While set, a `ReregisterAgent` is recorded but not answered.
    pub hold_reregistration: Arc<AtomicBool>,
}

impl Default for MasterBehaviour {
    fn default() -> Self {
        MasterBehaviour {
            agent_id: AgentId::new("agent-1"),
            ack: true,
            hold_running_acks: Arc::new(AtomicBool::new(false)),
            hold_reregistration: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// Registers the agent (as `agent-1` by default), takes it back when it reregisters, records
/// every update and acknowledges it as its [`MasterBehaviour`] says, and records executor ends.
pub struct FakeMaster {
    process: Process,
    tx: UnboundedSender<Event>,
    behaviour: MasterBehaviour,
}

impl Actor for FakeMaster {
    type Context = Context<Self>;
}

impl FakeMaster {
    fn info(&self) -> MasterInfo {
        MasterInfo {
            id: "fake".into(),
            upid: self.process.me().clone(),
        }
    }
}

impl Handler<Incoming<RegisterAgent>> for FakeMaster {
    type Result = ();
    fn handle(&mut self, m: Incoming<RegisterAgent>, _: &mut Context<Self>) {
        let reply = AgentRegistered {
            agent_id: self.behaviour.agent_id.clone(),
            master_info: self.info(),
        };
        self.process.send(&m.from, reply);
        let _ = self.tx.send(Event::Registered(m.from));
    }
}

impl Handler<Incoming<ReregisterAgent>> for FakeMaster {
    type Result = ();
    fn handle(&mut self, m: Incoming<ReregisterAgent>, _: &mut Context<Self>) {
        if !self.behaviour.hold_reregistration.load(Ordering::SeqCst) {
            let reply = AgentReregistered {
                agent_id: self.behaviour.agent_id.clone(),
                master_info: self.info(),
            };
            self.process.send(&m.from, reply);
        }
        let _ = self.tx.send(Event::Reregistered(m.msg));
    }
}

impl Handler<Incoming<StatusUpdate>> for FakeMaster {
    type Result = ();
    fn handle(&mut self, m: Incoming<StatusUpdate>, _: &mut Context<Self>) {
        let hold = self.behaviour.hold_running_acks.load(Ordering::SeqCst)
            && m.msg.status.state == TaskState::Running;
        if let (Some(uuid), true, false) = (m.msg.status.uuid, self.behaviour.ack, hold) {
            let ack = StatusUpdateAcknowledgement {
                agent_id: self.behaviour.agent_id.clone(),
                framework_id: m.msg.framework_id.clone(),
                task_id: m.msg.status.task_id.clone(),
                uuid,
            };
            self.process.send(&m.from, ack);
        }
        let _ = self.tx.send(Event::Update(m.msg));
    }
}

impl Handler<Incoming<ExecutorExited>> for FakeMaster {
    type Result = ();
    fn handle(&mut self, m: Incoming<ExecutorExited>, _: &mut Context<Self>) {
        let _ = self.tx.send(Event::ExecutorExited(m.msg));
    }
}

/// Starts a fake master named `master` on `node`; returns its process.
pub fn start_fake_master(
    node: &Node,
    tx: UnboundedSender<Event>,
    behaviour: MasterBehaviour,
) -> Process {
    let process = node.process("master").unwrap();
    let fake = FakeMaster {
        process: process.clone(),
        tx,
        behaviour,
    };
    node.actor::<FakeMaster>("master")
        .handle::<RegisterAgent>()
        .handle::<ReregisterAgent>()
        .handle::<StatusUpdate>()
        .handle::<ExecutorExited>()
        .start(fake)
        .unwrap();
    process
}

/// The events recorded, each waited for at most `timeout`.
pub struct Events {
    rx: UnboundedReceiver<Event>,
    timeout: Duration,
}

impl Events {
    pub fn new(rx: UnboundedReceiver<Event>, timeout: Duration) -> Self {
        Events { rx, timeout }
    }

    /// The next event; panics when none comes within the timeout.
    pub async fn next(&mut self, what: &str) -> Event {
        match tokio::time::timeout(self.timeout, self.rx.recv()).await {
            Ok(Some(e)) => e,
            _ => panic!("nothing arrived while waiting for {what}"),
        }
    }

    /// The next event if one comes before `deadline`.
    pub async fn next_before(&mut self, deadline: tokio::time::Instant) -> Option<Event> {
        tokio::time::timeout_at(deadline, self.rx.recv())
            .await
            .ok()
            .flatten()
    }

    /// An event already there.
    pub fn try_recv(&mut self) -> Result<Event, TryRecvError> {
        self.rx.try_recv()
    }

    /// Skips events up to the next registration; returns who registered.
    pub async fn wait_registered(&mut self) -> Upid {
        loop {
            if let Event::Registered(from) = self.next("registration").await {
                return from;
            }
        }
    }

    /// Skips events up to the next reregistration.
    pub async fn wait_reregistered(&mut self) -> ReregisterAgent {
        loop {
            if let Event::Reregistered(r) = self.next("reregistration").await {
                return r;
            }
        }
    }

    /// Skips events up to the first update in state RUNNING (of any task).
    pub async fn wait_running(&mut self) {
        loop {
            if let Event::Update(u) = self.next("RUNNING").await {
                if u.status.state == TaskState::Running {
                    return;
                }
            }
        }
    }

    /// Waits for an update of `task` in `state`; returns it.
    pub async fn wait_state(&mut self, task: &str, state: TaskState) -> StatusUpdate {
        loop {
            if let Event::Update(u) = self.next(&format!("{task} {state}")).await {
                if u.status.task_id.as_str() == task && u.status.state == state {
                    return u;
                }
            }
        }
    }

    /// Every update of `task` until its terminal one (updates of other tasks are skipped).
    pub async fn until_terminal(&mut self, task: &str) -> Vec<StatusUpdate> {
        let mut seen = Vec::new();
        loop {
            if let Event::Update(u) = self.next(&format!("{task} to end")).await {
                if u.status.task_id.as_str() == task {
                    let end = u.status.state.is_terminal();
                    seen.push(u);
                    if end {
                        return seen;
                    }
                }
            }
        }
    }

    /// After `quiet`, none of the events that arrived is an update.
    pub async fn assert_no_update_within(&mut self, quiet: Duration) {
        tokio::time::sleep(quiet).await;
        while let Ok(e) = self.try_recv() {
            assert!(!matches!(e, Event::Update(_)), "unexpected {e:?}");
        }
    }
}

/// How [`Cluster::start`] sets things up.
pub struct ClusterOptions {
    pub master_node: NodeConfig,
    pub master: MasterBehaviour,
    pub kill_grace_ms: u64,
    /// The work directory in memory when the machine has one (checkpoints sync every write).
    pub work_dir_in_memory: bool,
    /// How long [`Events::next`] waits.
    pub timeout: Duration,
    /// The agent's registration must be the very first event (rather than the first
    /// registration among them).
    pub registration_first: bool,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            master_node: NodeConfig::default(),
            master: MasterBehaviour::default(),
            kill_grace_ms: 1_000,
            work_dir_in_memory: false,
            timeout: Duration::from_secs(20),
            registration_first: true,
        }
    }
}

/// A fake master on one node, a real agent actor (executor program: the `meso` binary) on
/// another, over loopback TCP; the agent has registered.
pub struct Cluster {
    pub master: Process,
    pub master_node: Node,
    pub agent_node: Node,
    pub agent: Upid,
    /// Where the fake master records (for fakes started later).
    pub tx: UnboundedSender<Event>,
    pub events: Events,
    /// Told when the agent actor has stopped.
    pub stopped: Option<oneshot::Receiver<()>>,
    pub work_dir: tempfile::TempDir,
    /// Uuids of the updates seen so far, for tests that drop duplicates.
    pub seen: HashSet<[u8; 16]>,
}

impl Cluster {
    pub async fn start(options: ClusterOptions) -> Cluster {
        let master_node = Node::start(options.master_node).await.unwrap();
        let agent_node = Node::start(NodeConfig::default()).await.unwrap();
        let (tx, rx) = unbounded_channel();
        let mut events = Events::new(rx, options.timeout);
        let master = start_fake_master(&master_node, tx.clone(), options.master);
        let work_dir = if options.work_dir_in_memory {
            memory_work_dir()
        } else {
            tempfile::tempdir().unwrap()
        };
        let mut config = AgentConfig::new(
            master.me().clone(),
            work_dir.path().to_path_buf(),
            Resources::parse("cpus:2;mem:512").unwrap(),
            PathBuf::from(MESO),
        );
        config.kill_grace_ms = options.kill_grace_ms;
        config.recovery_timeout_ms = 20_000;
        let (agent, stopped) = start_agent_with_stop(&agent_node, config).unwrap();
        if options.registration_first {
            match events.next("registration").await {
                Event::Registered(from) => assert_eq!(from, agent),
                other => panic!("expected a registration, got {other:?}"),
            }
        } else {
            assert_eq!(events.wait_registered().await, agent);
        }
        Cluster {
            master,
            master_node,
            agent_node,
            agent,
            tx,
            events,
            stopped: Some(stopped),
            work_dir,
            seen: HashSet::new(),
        }
    }

    /// Sends the agent `task` of framework `fw` (which does not checkpoint).
    pub fn run(&self, task: TaskInfo) {
        self.master
            .send(&self.agent, run_task(&self.master, task, false));
    }

    pub fn kill(&self, id: &str, kill_grace_period_ms: Option<u64>) {
        let msg = KillTaskOnAgent {
            framework_id: FrameworkId::new("fw"),
            task_id: TaskId::new(id),
            kill_grace_period_ms,
        };
        self.master.send(&self.agent, msg);
    }

    pub fn shutdown_framework(&self) {
        let msg = ShutdownFramework {
            framework_id: FrameworkId::new("fw"),
        };
        self.master.send(&self.agent, msg);
    }

    pub fn runs_dir(&self, executor: &str) -> PathBuf {
        runs_dir(self.work_dir.path(), executor)
    }

    pub fn meta_runs_dir(&self, executor: &str) -> PathBuf {
        meta_runs_dir(self.work_dir.path(), executor)
    }

    /// The sandbox of the (only) run of `executor`.
    pub fn sandbox(&self, executor: &str) -> PathBuf {
        only_dir(&self.runs_dir(executor))
    }
}

/// A work directory in memory when the machine has one, else an ordinary temporary one.
pub fn memory_work_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().unwrap()
}

/// A command task `id` on `agent-1`.
pub fn command_task(id: &str, command: &str) -> TaskInfo {
    TaskInfo::command(
        TaskId::new(id),
        AgentId::new("agent-1"),
        Resources::parse("cpus:0.1;mem:32").unwrap(),
        CommandInfo::shell(command),
    )
}

/// A task `id` for the custom executor `executor` of framework `fw`, which runs `command`.
pub fn custom_task(id: &str, executor: &str, command: &str) -> TaskInfo {
    let mut task = command_task(id, "unused");
    task.command = None;
    task.executor = Some(ExecutorInfo {
        executor_id: ExecutorId::new(executor),
        framework_id: FrameworkId::new("fw"),
        command: CommandInfo::shell(command),
        resources: Resources::new(),
        name: "custom".into(),
    });
    task
}

/// `RunTask` for `task` of framework `fw`, scheduled by `scheduler`.
pub fn run_task(scheduler: &Process, task: TaskInfo, checkpoint: bool) -> RunTask {
    let mut framework = FrameworkInfo::new("test", "tester");
    framework.checkpoint = checkpoint;
    RunTask {
        framework,
        framework_id: FrameworkId::new("fw"),
        scheduler: scheduler.me().clone(),
        task,
    }
}

/// The runs (sandboxes) of `executor` of framework `fw` on `agent-1`.
pub fn runs_dir(work_dir: &Path, executor: &str) -> PathBuf {
    work_dir
        .join("agents/agent-1/frameworks/fw/executors")
        .join(executor)
        .join("runs")
}

/// The checkpointed runs of `executor` of framework `fw` on `agent-1`.
pub fn meta_runs_dir(work_dir: &Path, executor: &str) -> PathBuf {
    work_dir
        .join("meta/agents/agent-1/frameworks/fw/executors")
        .join(executor)
        .join("runs")
}

/// The one entry of `dir`; panics unless there is exactly one.
pub fn only_dir(dir: &Path) -> PathBuf {
    let mut dirs: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "one run in {}", dir.display());
    dirs.remove(0)
}

pub fn states(seen: &[TaskStatus]) -> Vec<TaskState> {
    seen.iter().map(|s| s.state).collect()
}

/// Calls `check` up to `tries` times, `every` apart, until it gives something.
pub async fn poll<T>(
    tries: usize,
    every: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Option<T> {
    for _ in 0..tries {
        if let Some(found) = check() {
            return Some(found);
        }
        tokio::time::sleep(every).await;
    }
    None
}

/// The text of `path` once it ends with a newline, looking every `every` (200 times at most).
pub async fn wait_file_every(path: &Path, every: Duration) -> String {
    poll(200, every, || {
        std::fs::read_to_string(path)
            .ok()
            .filter(|text| text.ends_with('\n'))
    })
    .await
    .unwrap_or_else(|| panic!("{} never appeared", path.display()))
}

/// The text of `path` once it ends with a newline (10 s at most).
pub async fn wait_file(path: &Path) -> String {
    wait_file_every(path, Duration::from_millis(50)).await
}

/// The pid (or process group) written to `path` with a newline.
pub async fn wait_pid(path: &Path) -> i32 {
    wait_file(path).await.trim().parse().unwrap()
}

/// Whether process group `pgid` is gone within `tries` looks, 50 ms apart.
pub async fn group_gone(pgid: i32, tries: usize) -> bool {
    let every = Duration::from_millis(50);
    poll(tries, every, || {
        (!launcher::group_alive(pgid)).then_some(())
    })
    .await
    .is_some()
}

/// Whether session `sid` is gone within `tries` looks, 50 ms apart.
pub async fn session_gone(sid: i32, tries: usize) -> bool {
    let every = Duration::from_millis(50);
    poll(tries, every, || {
        (!launcher::session_alive(sid)).then_some(())
    })
    .await
    .is_some()
}

/// Panics unless process group `pgid` is gone within 5 s (after a kill).
pub async fn assert_group_gone(pgid: i32) {
    if !group_gone(pgid, 100).await {
        panic!("a process of group {pgid} survived the kill");
    }
}

/// SIGKILL to process group `pgid`.
pub fn kill_group(pgid: i32) {
    // SAFETY: signalling a process group this test started has no memory effects.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
}

/// The processes whose argv is `sleep <seconds>`, directly or through `sh -c`. Callers pick a
/// duration no one else uses, so other processes on the machine do not count.
pub fn sleepers(seconds: &str) -> Vec<String> {
    let shell_command = format!("sleep {seconds}");
    let mut pids = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for entry in entries.flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let direct = args.len() == 2 && args[0].ends_with("sleep") && args[1] == seconds;
        let shell = args.len() == 3 && args[1] == "-c" && args[2] == shell_command;
        if direct || shell {
            pids.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    pids
}

/// A `meso` child process, killed and reaped when dropped, so a failing test leaves nothing
/// behind.
pub struct ChildGuard(Child);

impl ChildGuard {
    pub fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `meso`, with stdin and stdout closed, stderr inherited, `RUST_LOG` as the test's (`warn` when
/// unset), and the executors it starts waiting `recovery_ms` for a lost agent.
pub fn meso_command(recovery_ms: u64) -> Command {
    let mut command = Command::new(MESO);
    command
        .env("MESO_RECOVERY_TIMEOUT_MS", recovery_ms.to_string())
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_string()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    command
}

/// Starts `meso <args>` as [`meso_command`] does; executors a test leaves behind give up on
/// their agent after 20 s, not 15 minutes.
pub fn spawn_meso<I, S>(args: I) -> ChildGuard
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    ChildGuard(meso_command(20_000).args(args).spawn().expect("spawn meso"))
}

/// Processes started with [`spawn_meso`] (or given with [`Children::add`]), killed when dropped,
/// and then every process left in the work dirs it was told of ([`Children::watch_dir`]), so a
/// failing test leaves nothing behind.
#[derive(Default)]
pub struct Children {
    guards: Vec<ChildGuard>,
    dirs: Vec<PathBuf>,
}

impl Children {
    /// Starts `meso <args>`; returns its index for [`Children::kill`] and [`Children::signal`].
    pub fn spawn<I, S>(&mut self, args: I) -> usize
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.guards.push(spawn_meso(args));
        self.guards.len() - 1
    }

    /// Takes a child started otherwise (with its stdout piped, say); returns its index.
    pub fn add(&mut self, child: Child) -> usize {
        self.guards.push(ChildGuard(child));
        self.guards.len() - 1
    }

    /// Kills what is left in `dir` (processes that name it or run in it) when dropped.
    pub fn watch_dir(&mut self, dir: &Path) {
        self.dirs.push(dir.to_path_buf());
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self, i: usize) {
        let child = &mut self.guards[i].0;
        let _ = child.kill();
        let _ = child.wait();
    }

    pub fn signal(&self, i: usize, signal: i32) {
        let pid = self.guards[i].id() as i32;
        // SAFETY: kill(2) on a child we started and have not reaped.
        unsafe {
            libc::kill(pid, signal);
        }
    }

    /// Waits (polling) for child `i` to exit, up to `limit`.
    pub fn wait(&mut self, i: usize, limit: Duration) -> Option<ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.guards[i].0.try_wait().expect("wait") {
                return Some(status);
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything child `i` printed (its stdout must be piped), once it has exited.
    pub fn stdout(&mut self, i: usize) -> String {
        let mut out = String::new();
        if let Some(mut pipe) = self.guards[i].0.stdout.take() {
            let _ = std::io::Read::read_to_string(&mut pipe, &mut out);
        }
        out
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        self.guards.clear();
        for dir in &self.dirs {
            for (pid, _) in processes_of(dir) {
                // SAFETY: kill(2) on a process the test's own cluster left behind.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
    }
}

/// Whether `pid` runs (a zombie does not).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// The processes whose command line names `dir` or whose working directory is under it, each
/// with `cmdline (cwd)`.
pub fn processes_of(dir: &Path) -> Vec<(i32, String)> {
    let needle = dir.to_string_lossy().into_owned();
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(pid) = name.parse::<i32>() else {
            continue;
        };
        if !alive(pid) {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline"))
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .unwrap_or_default();
        let cwd: Option<PathBuf> = std::fs::read_link(entry.path().join("cwd")).ok();
        if cmdline.contains(&needle) || cwd.as_ref().is_some_and(|c| c.starts_with(dir)) {
            found.push((pid, format!("{cmdline}({cwd:?})")));
        }
    }
    found
}

/// Polls until no process of `dir` is left; panics naming them after `limit`.
pub async fn assert_none_left(dir: &Path, limit: Duration, after: &str) {
    let tries = (limit.as_millis() / 100) as usize;
    let gone = poll(tries, Duration::from_millis(100), || {
        processes_of(dir).is_empty().then_some(())
    })
    .await;
    assert!(
        gone.is_some(),
        "left behind {after}: {:?}",
        processes_of(dir)
    );
}

/// A free port below the kernel's ephemeral range (32768 and up): a process restarted on it
/// cannot find it taken by an outgoing connection's source port while it was down.
pub fn free_port() -> u16 {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    loop {
        let port = rng.gen_range(20_000..32_000);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

//! Status updates and kills through a real agent actor, with a fake master and (where the case
//! allows) a fake executor on another node over loopback TCP.

use actix::{Actor, Context, Handler};
use meso::process::{FaultConfig, Incoming, Node, NodeConfig, Process, Upid};
use meso::protocol::*;
use meso::resources::Resources;
use meso_actors::agent::launcher;
use meso_actors::agent::{start_agent, AgentConfig};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

#[derive(Debug)]
enum Event {
    Registered(Upid),
    Reregistered(ReregisterAgent),
    Update(StatusUpdate),
    ExecutorExited(ExecutorExited),
    Launched(TaskInfo),
}

/// Registers the agent as `agent-1`, takes it back when it reregisters, records every update
/// and acknowledges it.
struct FakeMaster {
    process: Process,
    tx: UnboundedSender<Event>,
}

impl Actor for FakeMaster {
    type Context = Context<Self>;
}

fn master_info(process: &Process) -> MasterInfo {
    MasterInfo {
        id: "fake".into(),
        upid: process.me().clone(),
    }
}

impl Handler<Incoming<RegisterAgent>> for FakeMaster {
    type Result = ();
    fn handle(&mut self, m: Incoming<RegisterAgent>, _: &mut Context<Self>) {
        let reply = AgentRegistered {
            agent_id: AgentId::new("agent-1"),
            master_info: master_info(&self.process),
        };
        self.process.send(&m.from, reply);
        let _ = self.tx.send(Event::Registered(m.from));
    }
}

impl Handler<Incoming<ReregisterAgent>> for FakeMaster {
    type Result = ();
    fn handle(&mut self, m: Incoming<ReregisterAgent>, _: &mut Context<Self>) {
        let reply = AgentReregistered {
            agent_id: AgentId::new("agent-1"),
            master_info: master_info(&self.process),
        };
        self.process.send(&m.from, reply);
        let _ = self.tx.send(Event::Reregistered(m.msg));
    }
}

impl Handler<Incoming<StatusUpdate>> for FakeMaster {
    type Result = ();
    fn handle(&mut self, m: Incoming<StatusUpdate>, _: &mut Context<Self>) {
        if let Some(uuid) = m.msg.status.uuid {
            let ack = StatusUpdateAcknowledgement {
                agent_id: AgentId::new("agent-1"),
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

fn start_fake_master(node: &Node, tx: UnboundedSender<Event>) -> Process {
    let process = node.process("master").unwrap();
    let fake = FakeMaster {
        process: process.clone(),
        tx,
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

/// Stands in for executor `ex` of framework `fw`: registers, and for each task it is given
/// reports RUNNING and FINISHED back to back (when `finish`), or only records it.
struct FakeExecutor {
    process: Process,
    agent: Upid,
    tx: UnboundedSender<Event>,
    finish: bool,
}

impl Actor for FakeExecutor {
    type Context = Context<Self>;
    fn started(&mut self, _: &mut Context<Self>) {
        let msg = RegisterExecutor {
            framework_id: FrameworkId::new("fw"),
            executor_id: ExecutorId::new("ex"),
        };
        self.process.send(&self.agent, msg);
    }
}

impl Handler<Incoming<ExecutorRegistered>> for FakeExecutor {
    type Result = ();
    fn handle(&mut self, _: Incoming<ExecutorRegistered>, _: &mut Context<Self>) {}
}

impl Handler<Incoming<ExecutorStatusAck>> for FakeExecutor {
    type Result = ();
    fn handle(&mut self, _: Incoming<ExecutorStatusAck>, _: &mut Context<Self>) {}
}

impl Handler<Incoming<LaunchTask>> for FakeExecutor {
    type Result = ();
    fn handle(&mut self, m: Incoming<LaunchTask>, _: &mut Context<Self>) {
        let task_id = m.msg.task.task_id.clone();
        let _ = self.tx.send(Event::Launched(m.msg.task));
        if !self.finish {
            return;
        }
        for state in [TaskState::Running, TaskState::Finished] {
            let msg = ExecutorStatusUpdate {
                framework_id: FrameworkId::new("fw"),
                executor_id: ExecutorId::new("ex"),
                status: TaskStatus::new(task_id.clone(), state, 1).reliable(),
            };
            self.process.send(&self.agent, msg);
        }
    }
}

fn start_fake_executor(node: &Node, agent: Upid, tx: UnboundedSender<Event>, finish: bool) {
    let process = node.process("executor").unwrap();
    let fake = FakeExecutor {
        process,
        agent,
        tx,
        finish,
    };
    node.actor::<FakeExecutor>("executor")
        .handle::<ExecutorRegistered>()
        .handle::<ExecutorStatusAck>()
        .handle::<LaunchTask>()
        .start(fake)
        .unwrap();
}

/// A work directory in memory when the machine has one (checkpoints sync every write).
fn work_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().unwrap()
}

struct Setup {
    master: Process,
    master_node: Node,
    agent_node: Node,
    agent: Upid,
    tx: UnboundedSender<Event>,
    rx: UnboundedReceiver<Event>,
    work_dir: tempfile::TempDir,
}

async fn setup_on(master_config: NodeConfig) -> Setup {
    let master_node = Node::start(master_config).await.unwrap();
    let agent_node = Node::start(NodeConfig::default()).await.unwrap();
    let (tx, mut rx) = unbounded_channel();
    let master = start_fake_master(&master_node, tx.clone());
    let work_dir = work_dir();
    let mut config = AgentConfig::new(
        master.me().clone(),
        work_dir.path().to_path_buf(),
        Resources::parse("cpus:2;mem:512").unwrap(),
        PathBuf::from(env!("CARGO_BIN_EXE_meso")),
    );
    config.kill_grace_ms = 500;
    let agent = start_agent(&agent_node, config).unwrap();
    loop {
        if let Event::Registered(from) = next(&mut rx, "registration").await {
            assert_eq!(from, agent);
            break;
        }
    }
    Setup {
        master,
        master_node,
        agent_node,
        agent,
        tx,
        rx,
        work_dir,
    }
}

async fn setup() -> Setup {
    setup_on(NodeConfig::default()).await
}

async fn next(rx: &mut UnboundedReceiver<Event>, what: &str) -> Event {
    match tokio::time::timeout(Duration::from_secs(12), rx.recv()).await {
        Ok(Some(e)) => e,
        _ => panic!("nothing arrived while waiting for {what}"),
    }
}

fn command_task(id: &str, command: &str) -> TaskInfo {
    TaskInfo::command(
        TaskId::new(id),
        AgentId::new("agent-1"),
        Resources::parse("cpus:0.1;mem:32").unwrap(),
        CommandInfo::shell(command),
    )
}

/// A task for the custom executor `ex`, whose process only sleeps (a fake stands in for it).
fn custom_task(id: &str) -> TaskInfo {
    let mut task = command_task(id, "unused");
    task.command = None;
    task.executor = Some(ExecutorInfo {
        executor_id: ExecutorId::new("ex"),
        framework_id: FrameworkId::new("fw"),
        command: CommandInfo::shell("exec sleep 20"),
        resources: Resources::new(),
        name: "custom".into(),
    });
    task
}

impl Setup {
    fn run(&self, task: TaskInfo) {
        let msg = RunTask {
            framework: FrameworkInfo::new("test", "tester"),
            framework_id: FrameworkId::new("fw"),
            scheduler: self.master.me().clone(),
            task,
        };
        self.master.send(&self.agent, msg);
    }

    fn kill(&self, id: &str) {
        let msg = KillTaskOnAgent {
            framework_id: FrameworkId::new("fw"),
            task_id: TaskId::new(id),
            kill_grace_period_ms: Some(500),
        };
        self.master.send(&self.agent, msg);
    }

    fn shutdown_framework(&self) {
        let msg = ShutdownFramework {
            framework_id: FrameworkId::new("fw"),
        };
        self.master.send(&self.agent, msg);
    }

    fn runs_dir(&self, executor: &str) -> PathBuf {
        self.work_dir
            .path()
            .join("agents/agent-1/frameworks/fw/executors")
            .join(executor)
            .join("runs")
    }

    async fn wait_sandbox(&self, executor: &str) -> PathBuf {
        for _ in 0..200 {
            if let Ok(entries) = std::fs::read_dir(self.runs_dir(executor)) {
                if let Some(entry) = entries.flatten().next() {
                    return entry.path();
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("executor {executor} never got a sandbox");
    }

    /// Updates until `task`'s terminal one.
    async fn until_terminal(&mut self, task: &str) -> Vec<TaskStatus> {
        let mut seen = Vec::new();
        loop {
            if let Event::Update(u) = next(&mut self.rx, &format!("{task} to end")).await {
                if u.status.task_id.as_str() == task {
                    let end = u.status.state.is_terminal();
                    seen.push(u.status);
                    if end {
                        return seen;
                    }
                }
            }
        }
    }
}

/// Field case: an executor sends RUNNING then FINISHED back to back, with random delays (and a
/// few duplicates) injected into what the agent sends, 500 times: the framework (which drops
/// duplicate uuids, as the scheduler driver does) always sees RUNNING before FINISHED.
#[actix_rt::test]
async fn running_always_comes_before_finished_under_delays() {
    const ROUNDS: usize = 500;
    let seed = 4;
    let mut s = setup().await;
    s.agent_node.set_faults(Some(FaultConfig {
        delay: 0.5,
        max_delay_ms: 15,
        duplicate: 0.05,
        ..FaultConfig::seeded(seed)
    }));
    s.run(custom_task("t0"));
    s.wait_sandbox("ex").await;
    start_fake_executor(&s.master_node, s.agent.clone(), s.tx.clone(), true);
    for i in 1..ROUNDS {
        s.run(custom_task(&format!("t{i}")));
    }
    let mut seen: HashMap<TaskId, Vec<TaskState>> = HashMap::new();
    let mut uuids = HashSet::new();
    let mut finished = 0;
    while finished < ROUNDS {
        let Event::Update(u) = next(&mut s.rx, "updates").await else {
            continue;
        };
        if !uuids.insert(u.status.uuid) {
            continue;
        }
        let states = seen.entry(u.status.task_id.clone()).or_default();
        states.push(u.status.state);
        if u.status.state == TaskState::Finished {
            finished += 1;
            assert_eq!(
                *states,
                [TaskState::Running, TaskState::Finished],
                "task {} with seed {seed}",
                u.status.task_id
            );
        }
    }
    assert_eq!(seen.len(), ROUNDS);
    s.agent_node.set_faults(None);
    s.shutdown_framework();
}

/// Field case: a command `exit 0`, whose executor sends FINISHED and exits at once: exactly one
/// terminal update, FINISHED; the agent makes up no FAILED or LOST.
#[actix_rt::test]
async fn exit_zero_gives_exactly_one_terminal_update() {
    let mut s = setup().await;
    s.run(command_task("zero", "exit 0"));
    let seen = s.until_terminal("zero").await;
    assert_eq!(seen.last().unwrap().state, TaskState::Finished);
    loop {
        match next(&mut s.rx, "the executor's end").await {
            Event::ExecutorExited(e) => {
                assert_eq!(e.executor_id.as_str(), "zero");
                break;
            }
            Event::Update(u) => panic!("an update after FINISHED: {u:?}"),
            _ => {}
        }
    }
    // Anything the agent would make up comes right after the executor's end.
    tokio::time::sleep(Duration::from_millis(500)).await;
    while let Ok(e) = s.rx.try_recv() {
        assert!(!matches!(e, Event::Update(_)), "unexpected {e:?}");
    }
}

/// Field case: one executor with two tasks, both killed before the executor registered: two
/// TASK_KILLED, and the executor, registering afterwards, never receives either task.
#[actix_rt::test]
async fn two_tasks_killed_before_their_executor_registers() {
    let mut s = setup().await;
    s.run(custom_task("a"));
    s.run(custom_task("b"));
    s.wait_sandbox("ex").await;
    s.kill("a");
    s.kill("b");
    let mut killed = HashSet::new();
    while killed.len() < 2 {
        if let Event::Update(u) = next(&mut s.rx, "two kills").await {
            assert_eq!(u.status.state, TaskState::Killed, "{u:?}");
            assert_eq!(
                u.status.reason,
                Some(TaskStatusReason::TaskKilledDuringLaunch)
            );
            assert!(killed.insert(u.status.task_id));
        }
    }
    start_fake_executor(&s.master_node, s.agent.clone(), s.tx.clone(), false);
    tokio::time::sleep(Duration::from_millis(500)).await;
    while let Ok(e) = s.rx.try_recv() {
        match e {
            Event::Launched(t) => panic!("the executor received {}", t.task_id),
            Event::Update(u) => panic!("an update after the kills: {u:?}"),
            _ => {}
        }
    }
}

/// Item 6: a running task that traps SIGTERM gets it, then SIGKILL after the grace period;
/// TASK_KILLED, and no process of its group is left.
#[actix_rt::test]
async fn a_task_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let mut s = setup().await;
    let command = "trap 'echo term >> got_term' TERM; echo $$ > pgid; \
                   while true; do sleep 0.1; done";
    s.run(command_task("stubborn", command));
    loop {
        if let Event::Update(u) = next(&mut s.rx, "RUNNING").await {
            if u.status.state == TaskState::Running {
                break;
            }
        }
    }
    let sandbox = s.wait_sandbox("stubborn").await;
    let pgid = wait_line(&sandbox.join("pgid")).await.parse().unwrap();
    // Let the shell install its trap.
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.kill("stubborn");
    let seen = s.until_terminal("stubborn").await;
    assert_eq!(seen.last().unwrap().state, TaskState::Killed);
    assert!(
        wait_line(&sandbox.join("got_term"))
            .await
            .starts_with("term"),
        "the task got SIGTERM first"
    );
    for _ in 0..100 {
        if !launcher::group_alive(pgid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("a process of group {pgid} survived the kill");
}

async fn wait_line(path: &Path) -> String {
    for _ in 0..200 {
        if let Ok(text) = std::fs::read_to_string(path) {
            if text.ends_with('\n') {
                return text.trim().to_string();
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{} never appeared", path.display());
}

/// Item 1, the agent's side: the master goes away and comes back on the same address; the agent
/// reregisters with its id and the tasks it still runs.
#[actix_rt::test]
async fn the_agent_reregisters_when_the_master_comes_back() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut s = setup_on(NodeConfig::listen(addr)).await;
    s.run(custom_task("staged"));
    s.wait_sandbox("ex").await;
    s.master_node.shutdown();
    s.master_node.unregister("master");
    // The old listener closes once its task has been cancelled.
    let mut tries = 0;
    let master_node = loop {
        match Node::start(NodeConfig::listen(addr)).await {
            Ok(node) => break node,
            Err(e) if tries < 100 => {
                tries += 1;
                let _ = e;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("cannot listen on {addr} again: {e}"),
        }
    };
    let (tx, mut rx) = unbounded_channel();
    let _master = start_fake_master(&master_node, tx);
    let rereg = loop {
        if let Event::Reregistered(r) = next(&mut rx, "reregistration").await {
            break r;
        }
    };
    assert_eq!(rereg.agent.id, Some(AgentId::new("agent-1")));
    let task = rereg
        .tasks
        .iter()
        .find(|t| t.task.task_id.as_str() == "staged")
        .expect("the task is reported");
    assert_eq!(task.state, TaskState::Staging);
    assert!(rereg
        .frameworks
        .iter()
        .any(|f| f.id == Some(FrameworkId::new("fw"))));
    s.master = master_node.process("master").unwrap();
    s.shutdown_framework();
    tokio::time::sleep(Duration::from_millis(100)).await;
}
